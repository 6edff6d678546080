"""Backbone pose pretraining (``moro train backbone``): teach the image backbone the body's pose first.

The paper's backbone (HMR2.0's ViT-H) had been trained on millions of images to regress the body
before MoRo used it; the tiny preset's EfficientNet-Lite0 has ImageNet weights only. Its image stage
then never learnt to read the pose (models/README.md, eleventh session: the decoder's pose CE stays
at the training ids' marginal and every frame decodes one constant body), while a direct regression
head on the same backbone learns the pose of held-out sequences within a few hundred CPU steps
(twelfth session). This stage is that pretraining: the backbone and a throwaway head regress the
local mesh straight from the backbone tokens, on the image stage's own augmented crops.

The body's facing is in the image too and the video model needs it. The thirteenth session's run on
the root-less local mesh (``target="local"``) taught the backbone the pose but not the facing: the model
built on it turned the body over 90 degrees from the truth on 21 % of the bench frames (7.8 % before).
One L1 on the mesh turned by the crop's root rotation (``target="oriented"``) kept the facing but lost
the pose (models/README.md). The default, ``target="both"``, regresses the local mesh and, beside it,
the root rotation as the crop shows it (camera frame after the crop's roll and mirror).

Data flow per step (b crops; p patches of d features; v vertices):

    SynthTrainData.image_batch (flip, roll, photometric, box jitter; no part crops)
      -> images (b, 3, H, W) -> backbone tokens (b, p, d)
      -> PoseHead: per-patch Linear d -> c, flattened (p c) | mean over patches (d)
                   -> Linear -> GELU -> Linear (zero-initialised) -> offsets (v, 3)
      -> mesh = mean training mesh + offsets  (metres; root joint at the origin)
         [+ 6D root rotation R, starting at the identity, target "both"]
    truth: body(body_pose, betas), mirrored with the vertex permutation for flipped crops
           (target "oriented": turned by the root rotation of the augmented crop, steps.augment_camera_pose)
    loss: mean |pred - truth| over vertices and axes (metres); "both": + mean |truth R^T - truth R_true^T|

Output folder:

    backbone.pt   the backbone's weights in its package layout: ``build_backbone(name, pretrained=FILE)``
                  and ``moro train image_pretrain --backbone-weights FILE`` load it
    last.ckpt     resumable state (``--resume``); metrics.csv (per logged step; held-out rows)
    record.json   command, revision, settings and the held-out error against the mean mesh
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["BackbonePretrainConfig", "PoseHead", "TARGETS", "local_vertices", "pose_truth", "pose_loss", "heldout_index",
           "heldout_frames", "heldout_rotations", "heldout_error",
           "pretrain_backbone", "backbone_package_state", "BACKBONE_FILE"]

BACKBONE_FILE = "backbone.pt"
STATE_FILE = "last.ckpt"
METRICS_FILE = "metrics.csv"
RECORD_FILE = "record.json"
# BackbonePretrainConfig.target: "both" = the local mesh (L1) and the root rotation as the crop shows it (L1 of the
# true local mesh turned by the predicted vs the true rotation); "oriented" = one L1 on the turned mesh; "local" =
# the root-less local mesh only
TARGETS = ("both", "oriented", "local")
_STAGE = "backbone_pretrain"  # data-RNG stream name (SynthTrainData.rng)


@dataclass
class BackbonePretrainConfig:
    """Settings of one backbone pretraining run (stored in its state; a resume must not change them)."""

    out: str  # run folder
    data: str | list  # prepared training cache(s) (SynthTrainData's ``cache_dir``)
    val_data: str | None = None  # prepared held-out cache: error against the mean mesh every ``eval_every`` steps
    steps: int = 3000
    batch: int = 32
    lr: float = 3e-4  # backbone (ImageNet weights)
    head_lr: float = 1e-3  # the fresh head
    weight_decay: float = 1e-4
    warmup: int = 50
    log_every: int = 10
    checkpoint_every: int = 100
    eval_every: int = 250
    val_frames: int = 1024  # held-out frames evaluated (every k-th of the val sequences)
    seed: int = 0
    start_weights: str | None = None  # the backbone's starting file (e.g. an earlier run's backbone.pt); None = ImageNet
    target: str = "both"  # "both": local mesh + root rotation; "oriented": the mesh turned by the crop's root
    # rotation; "local": no root rotation (see TARGETS)
    rotation_weight: float = 1.0  # "both": weight of the rotation term against the local-mesh term
    max_seconds: float | None = None  # wall-time budget (the run stops early, resumable)
    progress: bool = True
    stop_after: int | None = None  # stop after this many steps in this call (tests: a simulated kill)
    workers: int = 0  # data-loader processes building the augmented batches (the batches do not depend on it)
    device: str | None = None  # torch device of the backbone and head; None = "cuda" where available, else "cpu"

    def key(self) -> dict:
        """What a resume must keep."""
        d = asdict(self)
        for k in ("out", "max_seconds", "progress", "stop_after", "workers", "device"):
            d.pop(k)
        return d


class PoseHead(nn.Module):
    """Backbone tokens -> local mesh (the pretraining's throwaway head).

    Args:
        num_patches: p; dim: d (backbone token width); num_vertices: v.
        mean_vertices: (v, 3) m, the prediction before training (the head's last layer starts at zero).
        reduce: c features kept per patch; hidden: MLP width.
    """

    def __init__(self, num_patches: int, dim: int, num_vertices: int, mean_vertices: torch.Tensor,
                 reduce: int = 64, hidden: int = 512, rotation: bool = False) -> None:
        super().__init__()
        if tuple(mean_vertices.shape) != (num_vertices, 3):
            raise ValueError(f"mean_vertices must be ({num_vertices}, 3), got {tuple(mean_vertices.shape)}")
        self.rotation = bool(rotation)
        self.reduce = nn.Linear(dim, reduce)
        out = num_vertices * 3 + (6 if rotation else 0)
        self.mlp = nn.Sequential(nn.Linear(num_patches * reduce + dim, hidden), nn.GELU(), nn.Linear(hidden, out))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)
        self.register_buffer("mean_vertices", mean_vertices.detach().float().clone())
        from moro.geometry.rotations import rotmat_to_rot6d

        self.register_buffer("identity6d", rotmat_to_rot6d(torch.eye(3)))

    def forward(self, tokens: torch.Tensor):
        """tokens (b, p, d) -> local vertices (b, v, 3) m; with ``rotation`` also the root rotation (b, 3, 3)
        (6D output, starting at the identity)."""
        from moro.geometry.rotations import rot6d_to_rotmat

        f = torch.cat((self.reduce(tokens).flatten(1), tokens.mean(1)), dim=1)
        y = self.mlp(f)
        n = self.mean_vertices.numel()
        verts = self.mean_vertices + y[:, :n].view(tokens.shape[0], -1, 3)
        if not self.rotation:
            return verts
        return verts, rot6d_to_rotmat(self.identity6d + y[:, n:])


def local_vertices(body, body_pose: torch.Tensor, betas: torch.Tensor, flip: torch.Tensor | None = None,
                   mirror_perm: torch.Tensor | None = None) -> torch.Tensor:
    """Ground-truth local mesh of single frames, as the image stage builds it.

    Args:
        body: the body model; body_pose (b, j - 1, 3, 3); betas (b, s).
        flip: (b,) bool, crops that were mirrored; mirror_perm: (v,) left/right vertex permutation.
    Returns:
        (b, v, 3) metres, root joint at the origin (no root rotation), mirrored (x -> -x, vertices
        permuted) where ``flip``.
    """
    from moro.training.steps import mirror_vertices

    with torch.no_grad():
        v = body(body_pose, betas).vertices
    if flip is not None and bool(flip.any()):
        if mirror_perm is None:
            raise ValueError("flipped crops need the mirror permutation")
        v = mirror_vertices(v, flip, mirror_perm)
    return v


def _sequence_vertices(body, seq, idx: list[int], oriented: bool = False) -> torch.Tensor:
    """(len(idx), v, 3) m: the ground-truth local meshes of frames ``idx`` of one cached sequence, turned by
    the root's camera-frame rotation where ``oriented``."""
    pose = torch.from_numpy(np.asarray(seq.lab["body_pose"][idx], np.float32))
    betas = torch.from_numpy(np.asarray(seq.lab["betas"], np.float32))[None].expand(len(idx), -1)
    v = local_vertices(body, pose, betas)
    if oriented:
        v = v @ torch.from_numpy(np.asarray(seq.lab["root_rot_cam"][idx], np.float32)).transpose(-1, -2)
    return v


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise ValueError(f"backbone pretraining target {target!r}: expected one of {TARGETS}")


def _crop_root_rotation(batch: dict) -> torch.Tensor:
    """(b, 3, 3): the root rotation an ``image_batch``'s augmented crops show (camera frame after roll and mirror)."""
    from moro.training.steps import augment_camera_pose

    return augment_camera_pose(batch["root_rot"], batch["root_trans"], batch["roll"], batch["flip"])[0][:, 0]


def pose_truth(body, batch: dict, mirror_perm: torch.Tensor, target: str = "oriented") -> torch.Tensor:
    """The mesh target of an ``image_batch`` (t = 1).

    Returns: (b, v, 3) m, the local mesh of each crop (mirrored where flipped); unless ``target="local"``
    turned by the root rotation the augmented crop shows (camera frame after roll and mirror).
    """
    _check_target(target)
    v = local_vertices(body, batch["body_pose"][:, 0], batch["betas"], batch["flip"], mirror_perm)
    return v if target == "local" else v @ _crop_root_rotation(batch).transpose(-1, -2)


def pose_loss(pred, body, batch: dict, mirror_perm: torch.Tensor, target: str,
              rotation_weight: float = 1.0) -> torch.Tensor:
    """Mean L1 (m) of the head's output ``pred`` on an ``image_batch``: (b, v, 3) vertices for "local" /
    "oriented"; for "both" a (vertices, rotation (b, 3, 3)) pair, scored as L1(local mesh) +
    ``rotation_weight`` x L1(true local mesh turned by the predicted rotation, by the true one)."""
    if target != "both":
        return (pred - pose_truth(body, batch, mirror_perm, target)).abs().mean()
    verts, R = pred
    local = pose_truth(body, batch, mirror_perm, "local")
    turned = (local @ R.transpose(-1, -2) - local @ _crop_root_rotation(batch).transpose(-1, -2)).abs().mean()
    return (verts - local).abs().mean() + rotation_weight * turned


def _to_cpu(pred):
    """The head's output (a tensor or a (vertices, rotation) pair) on the CPU, where the truth is built."""
    return tuple(p.cpu() for p in pred) if isinstance(pred, tuple) else pred.cpu()


def _vertices(pred):
    return pred[0] if isinstance(pred, tuple) else pred


def heldout_index(data, frames: int) -> list[tuple[int, int]]:
    """(sequence index, frame index) of every k-th frame of the sequences with images, ~``frames`` in all."""
    total = sum(s.frames for s in data.seqs)
    every = max(1, math.ceil(total / max(1, frames)))
    return [(k, i) for k, s in enumerate(data.seqs) if s.crops is not None for i in range(0, s.frames, every)]


def heldout_frames(data, body, frames: int, oriented: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Unaugmented crops (around the ground-truth box) of the frames of :func:`heldout_index`.

    Returns: images (f, 3, H, W) ImageNet-normalised; vertices (f, v, 3) m (local mesh; turned by the
    root's camera-frame rotation where ``oriented``).
    """
    where = heldout_index(data, frames)
    if not where:
        raise ValueError("the held-out data has no frames with images")
    images, verts = [], []
    for k in sorted({k for k, _ in where}):
        s = data.seqs[k]
        idx = [i for kk, i in where if kk == k]
        images += [data._crop_from_cache(s, i, s.lab["box_gt"][i].astype(np.float64), 0.0, False, None) for i in idx]
        verts.append(_sequence_vertices(body, s, idx, oriented))
    return torch.from_numpy(np.stack(images)), torch.cat(verts)


def heldout_rotations(data, frames: int) -> torch.Tensor:
    """(f, 3, 3): the root's camera-frame rotation in the frames of :func:`heldout_index`, in
    :func:`heldout_frames`' order (what their unaugmented crops show)."""
    where = heldout_index(data, frames)
    return torch.from_numpy(np.stack([np.asarray(data.seqs[k].lab["root_rot_cam"][i], np.float32) for k, i in where]))


HELDOUT_ROTATION_KEYS = ("rot_median_deg", "rot_over90_pct")


@torch.no_grad()
def heldout_error(backbone: nn.Module, head: PoseHead, images: torch.Tensor, verts: torch.Tensor, chunk: int = 128,
                  rotations: torch.Tensor | None = None) -> dict:
    """Mean vertex error (mm) of the head's local meshes on held-out crops, and of the head's mean mesh.

    Args: images (f, 3, H, W); verts (f, v, 3) m; rotations (f, 3, 3): the true root rotations the crops
    show (:func:`heldout_rotations`), scored where the head predicts one (target "both").
    Returns: {"v2v_mm", "mean_mesh_v2v_mm"}; with rotations and a rotation head also "rot_median_deg" (median
    angle between predicted and true root rotation, degrees) and "rot_over90_pct" (% of frames over 90 deg).
    """
    was = backbone.training, head.training
    backbone.eval()
    head.eval()
    dev = next(backbone.parameters()).device
    outs = [_to_cpu(head(backbone(images[k:k + chunk].to(dev)))) for k in range(0, len(images), chunk)]
    backbone.train(was[0])
    head.train(was[1])
    pred = torch.cat([_vertices(o) for o in outs])
    res = {"v2v_mm": float((pred - verts).norm(dim=-1).mean()) * 1000.0,
           "mean_mesh_v2v_mm": float((head.mean_vertices.cpu() - verts).norm(dim=-1).mean()) * 1000.0}
    if rotations is not None and isinstance(outs[0], tuple):
        from moro.geometry.rotations import geodesic_distance

        deg = torch.rad2deg(geodesic_distance(torch.cat([o[1] for o in outs]).float(), rotations.float()))
        res.update(rot_median_deg=float(deg.median()), rot_over90_pct=float((deg > 90.0).float().mean()) * 100.0)
    return res


def _rotation_text(ev: dict) -> str:
    if "rot_median_deg" not in ev:
        return ""
    return f"; root rotation median {ev['rot_median_deg']:.1f} deg, over 90 deg on {ev['rot_over90_pct']:.1f} %"


def backbone_package_state(backbone: nn.Module) -> dict[str, torch.Tensor]:
    """The backbone's weights in the layout its ``pretrained=FILE`` loader reads (EfficientNet: the package's)."""
    mod = getattr(backbone, "net", backbone)
    return {k: v.detach().cpu().clone() for k, v in mod.state_dict().items()}


def _mean_mesh(data, body, oriented: bool, max_frames: int = 2048) -> torch.Tensor:
    """(v, 3) m: the mean target mesh over (a subsample of) the training frames."""
    total = sum(s.frames for s in data.seqs)
    every = max(1, total // max_frames)
    acc, n = None, 0
    for s in data.seqs:
        idx = list(range(0, s.frames, every))
        v = _sequence_vertices(body, s, idx, oriented).double().sum(0)
        acc = v if acc is None else acc + v
        n += len(idx)
    return (acc / n).float()


def pretrain_backbone(cfg: BackbonePretrainConfig, backbone: nn.Module, body, resume: bool = False,
                      say=print) -> dict:
    """Train ``backbone`` (in place) with a :class:`PoseHead` on ``cfg.data``; write the output folder.

    Args:
        backbone: a moro backbone (``moro.model.backbones``) in its starting weights.
        body: the body model whose local mesh is regressed (the tokenizer's).
        resume: continue ``cfg.out/last.ckpt`` (same settings, else :class:`TrainCheckpointError`).
    Returns:
        the record written to ``record.json``.
    """
    from moro.training.checkpoint import load_train_state, provenance, restore_train_state, save_train_state
    from moro.training.engine import _CsvLog, step_loader
    from moro.training.recipes import recipe as get_recipe
    from moro.training.schedules import warmup_cosine_schedule
    from moro.training.synth_data import SynthTrainData, mirror_permutation
    from moro.paths import atomic_write

    _check_target(cfg.target)
    oriented = cfg.target == "oriented"  # "both" regresses (and evaluates) the local mesh + a rotation
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    made_by = provenance()  # the code that runs, not whatever the checkout holds when the run ends
    size = tuple(backbone.input_size)
    data = SynthTrainData(cfg.data, input_size=size, seed=cfg.seed)
    # the image stage's augmentation, without part crops (the head regresses the whole body)
    aug = replace(get_recipe("image_pretrain", "tiny"), crop_mode_prob=0.0)
    with torch.no_grad():
        perm = torch.from_numpy(mirror_permutation(body(body.identity_pose(), body.zero_betas()).vertices.cpu().numpy()))
        head = PoseHead(backbone.num_patches, backbone.dim, body.num_vertices, _mean_mesh(data, body, oriented),
                        rotation=cfg.target == "both")
    device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = nn.ModuleDict({"backbone": backbone, "head": head}).to(device)
    opt = torch.optim.AdamW([{"params": list(backbone.parameters()), "lr": cfg.lr},
                             {"params": list(head.parameters()), "lr": cfg.head_lr}], weight_decay=cfg.weight_decay)
    sched = warmup_cosine_schedule(opt, cfg.steps, cfg.warmup)
    key = {**cfg.key(), "data_settings": data.settings, "backbone": type(backbone).__name__, "input_size": list(size)}
    start, seconds = 0, 0.0
    if resume:
        payload = load_train_state(out / STATE_FILE, kind=f"moro/{_STAGE}")
        start = restore_train_state(payload, model, opt, sched, config=key)
        seconds = float(payload["meta"].get("seconds", 0.0))
        say(f"resumed {out / STATE_FILE} at step {start} of {cfg.steps}")
    val, val_rot = None, None
    if cfg.val_data:
        vdata = SynthTrainData(cfg.val_data, input_size=size, seed=cfg.seed)
        val = heldout_frames(vdata, body, cfg.val_frames, oriented)
        if cfg.target == "both":
            val_rot = heldout_rotations(vdata, cfg.val_frames)
    heldout_keys = ("v2v_mm", "mean_mesh_v2v_mm") + (HELDOUT_ROTATION_KEYS if val_rot is not None else ())
    csv_log = _CsvLog(out / METRICS_FILE, start if resume else None)
    bar = None
    if cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=start, desc=_STAGE, unit="step", dynamic_ncols=True)
    t0 = time.monotonic()
    model.train()
    step, loss_v, truncated, last_eval = start, float("nan"), False, None

    def save(at: int) -> None:
        save_train_state(out / STATE_FILE, kind=f"moro/{_STAGE}", step=at, config=key, model=model, optimizer=opt,
                         scheduler=sched, meta={"seconds": seconds + time.monotonic() - t0})
        with atomic_write(out / BACKBONE_FILE) as tmp:
            torch.save(backbone_package_state(backbone), tmp)

    # batch s comes from data.rng(_STAGE, s) alone; the loader's own generator keeps it from drawing on the global
    # RNG (the backbone's drop-connect), so a resume repeats the run
    loader = iter(step_loader(lambda s: data.image_batch(_STAGE, s, cfg.batch, aug), start, cfg.steps, cfg.workers,
                              torch.Generator().manual_seed(cfg.seed)))
    try:
        while step < cfg.steps:
            b = next(loader)
            pred = _to_cpu(head(backbone(b["images"][:, 0].to(device, non_blocking=True))))
            loss = pose_loss(pred, body, b, perm, cfg.target, cfg.rotation_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if not torch.isfinite(loss):
                raise RuntimeError(f"{_STAGE} step {step}: non-finite loss; lower --lr")
            opt.step()
            sched.step()
            step += 1
            loss_v = float(loss.detach())
            evaluate = val is not None and (step % cfg.eval_every == 0 or step == cfg.steps)
            if evaluate:
                last_eval = heldout_error(backbone, head, *val, rotations=val_rot)
                say(f"{_STAGE} step {step}: held-out v2v {last_eval['v2v_mm']:.1f} mm "
                    f"(mean mesh {last_eval['mean_mesh_v2v_mm']:.1f})" + _rotation_text(last_eval))
            if evaluate or step % cfg.log_every == 0 or step == cfg.steps:
                csv_log.write({"step": step, "lr": sched.get_last_lr()[0], "l1_mm": loss_v * 1000.0,
                               # every row has the held-out columns (blank between evaluations): the CSV's
                               # header comes from its first row
                               **(last_eval if evaluate else dict.fromkeys(heldout_keys, "")
                                  if val is not None else {})})
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"l1={loss_v * 1000:.1f}mm")
            over = cfg.max_seconds is not None and seconds + time.monotonic() - t0 > cfg.max_seconds
            if step % cfg.checkpoint_every == 0 or step == cfg.steps or over:
                save(step)
            if cfg.stop_after is not None and step - start >= cfg.stop_after:
                if step % cfg.checkpoint_every:
                    save(step)
                break
            if over and step < cfg.steps:
                truncated = True
                say(f"{_STAGE}: time budget reached after {step} of {cfg.steps} steps; stopping (resume with --resume)")
                break
    finally:
        if bar is not None:
            bar.close()
    if step == start:  # nothing ran (already complete): still leave the weights
        save(step)
    if val is not None and last_eval is None:
        last_eval = heldout_error(backbone, head, *val, rotations=val_rot)
    record = {"stage": _STAGE, "steps_done": step, "steps_planned": cfg.steps, "truncated": truncated,
              "seconds": seconds + time.monotonic() - t0, "final_l1_mm": loss_v * 1000.0, "heldout": last_eval,
              "settings": key, "backbone_file": str((out / BACKBONE_FILE).resolve()), **made_by}
    with atomic_write(out / RECORD_FILE) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=1, default=str))
    return record
