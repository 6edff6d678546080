"""One optimisation step of each MoRo stage: batch -> masked inputs -> network -> loss terms.

:class:`StageStep` is an ``nn.Module`` whose ``forward(batch, step)`` does the whole computation,
so a data-parallel wrapper (Lightning Fabric / DDP) sees every parameter use inside its forward
and synchronises the gradients. Ground truth is built here from body parameters (the same body
model and tokenizer as inference), so every stage and data source shares one definition:

* ``verts_local`` (b, t, v, 3): ``body(body_pose, betas)`` (root joint at the origin), mirrored
  with the left/right vertex permutation for flipped images;
* ``traj`` (b, t, 9): ``[6D(root_rot), root_trans]`` in the batch's frame (world for motion
  stages, camera for image / video stages), after the image augmentation (roll, mirror);
* ``joints`` (b, t, 22, 3): the regressor's joints of ``V_local R^T + t``; ``joints2d``: their
  pinhole projection with K; ``cano_traj``: the normalised canonical trajectory.

Loss terms: :func:`moro.model.losses.moro_losses`, filtered by the recipe (supplement A.5: the
``cano`` roll-out in motion pretraining; ``coarse`` and ``refined`` in image pretraining; ``cano`` and
``refined`` in video fine-tuning, plus ``coarse`` only when the image encoder trains there). Units: metres,
radians, pixels.
"""

from __future__ import annotations

import torch
from torch import nn

from moro.geometry import project_points, rotmat_to_rot6d
from moro.model.gumbel import gumbel_temperature
from moro.model.losses import moro_losses
from moro.model.masking import MaskingConfig, inference_masking, mask_tokens
from moro.training.recipes import StageRecipe

__all__ = ["Batch", "StageStep", "PARTS", "set_trainable", "perturb_rotation_translation", "mirror_vertices",
           "augment_camera_pose"]

PARTS = ("backbone", "image_encoder", "motion_encoder", "decoder", "smoother")
_MIRROR = torch.tensor([-1.0, 1.0, 1.0])


def _part(model: nn.Module, name: str) -> nn.Module | None:
    """The module of one MoRo part; the backbone may sit inside an ``ImageBranch`` (``image_encoder.backbone``)."""
    mod = getattr(model, name, None)
    if name == "backbone" and mod is None and getattr(model, "image_encoder", None) is not None:
        mod = getattr(model.image_encoder, "backbone", None)
    return mod


def freeze_modes(model: nn.Module, parts: tuple[str, ...]) -> None:
    """Put every frozen part (and the tokenizer) of a MoRo in training mode into eval mode.

    A frozen part must compute what it will compute at inference: the EfficientNet backbone's batch
    norms would otherwise normalise each video batch (2 clips of one person each) with its own
    statistics, which removes what the frames of a clip share (e.g. which way the body faces), and
    would overwrite their running statistics with those of the last batches.
    """
    if not model.training:
        return
    for name in PARTS:
        if name not in parts and (mod := _part(model, name)) is not None:
            mod.eval()
    if "backbone" in parts and "image_encoder" not in parts and (bb := _part(model, "backbone")) is not None:
        bb.train()  # a trained backbone inside a frozen image branch keeps training mode
    if getattr(model, "tokenizer", None) is not None:
        model.tokenizer.eval()


def set_trainable(model: nn.Module, parts: tuple[str, ...]) -> list[nn.Parameter]:
    """Freeze every MoRo parameter except those of ``parts``; return the trainable ones.

    The backbone may sit inside an ``ImageBranch`` (``image_encoder.backbone``): it follows
    ``backbone``, not ``image_encoder``.
    """
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown trainable part(s) {sorted(unknown)}; parts: {PARTS}")
    model.requires_grad_(False)
    for name in parts:
        mod = _part(model, name)
        if mod is None:
            raise ValueError(f"the stage trains '{name}' but this MoRo has none; build it with that part")
        mod.requires_grad_(True)
    if "backbone" not in parts and (bb := _part(model, "backbone")) is not None:
        bb.requires_grad_(False)  # a frozen backbone inside a trained image branch
    return [p for p in model.parameters() if p.requires_grad]


def _float32(out):
    """A MoRoOutput whose floating tensors are float32 (the network may have run under bf16 autocast)."""
    from dataclasses import replace as dc_replace

    def cast(x):
        if x is None:
            return None
        if isinstance(x, torch.Tensor):
            return x.float() if x.is_floating_point() else x
        if isinstance(x, tuple) and hasattr(x, "_fields"):
            return type(x)(*(cast(v) for v in x))
        return x

    return dc_replace(out, motion=cast(out.motion), decoder=cast(out.decoder), coarse_traj=cast(out.coarse_traj))


def _image_float32(image):
    """ImageFeatures with float32 tensors."""
    from dataclasses import fields as dc_fields, replace as dc_replace

    return dc_replace(image, **{f.name: getattr(image, f.name).float() for f in dc_fields(image)
                                if isinstance(getattr(image, f.name), torch.Tensor)})


def _rotz(theta: torch.Tensor) -> torch.Tensor:
    c, s = theta.cos(), theta.sin()
    z, o = torch.zeros_like(c), torch.ones_like(c)
    return torch.stack([c, -s, z, s, c, z, z, z, o], -1).view(*theta.shape, 3, 3)


def augment_camera_pose(R: torch.Tensor, t: torch.Tensor, roll: torch.Tensor | None = None,
                        flip: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The camera-frame root pose as the augmented crop shows it.

    Args:
        R (b, t, 3, 3) root rotations and t (b, t, 3) root translations (m), camera frame.
        roll: (b,) rad, the crop's rotation about the optical axis (``SynthTrainData.image_batch``), or None.
        flip: (b,) bool, mirrored crops (x -> -x), or None.
    Returns:
        (R, t) after the roll, then the mirror (``M R M`` with ``M = diag(-1, 1, 1)``; the mesh itself is
        mirrored with :func:`mirror_vertices`).
    """
    if roll is not None:
        Rz = _rotz(roll).to(R)[:, None]
        R, t = Rz @ R, (Rz @ t[..., None])[..., 0]
    if flip is not None and bool(flip.any()):
        f = flip.to(R.device)
        M = torch.diag(_MIRROR.to(R))
        R = torch.where(f[:, None, None, None], M @ R @ M, R)
        t = torch.where(f[:, None, None], t * _MIRROR.to(t), t)
    return R, t


def perturb_rotation_translation(R: torch.Tensor, t: torch.Tensor, rot_std: float, trans_std: float,
                                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Independent per-frame Gaussian noise: rotation by a random axis-angle with per-axis std ``rot_std`` (rad),
    translation with per-axis std ``trans_std`` (m). R (..., 3, 3), t (..., 3)."""
    if rot_std <= 0 and trans_std <= 0:
        return R, t
    from moro.geometry.rotations import rotvec_to_rotmat

    w = torch.randn(t.shape, generator=generator, device=t.device, dtype=t.dtype) * rot_std
    dt = torch.randn(t.shape, generator=generator, device=t.device, dtype=t.dtype) * trans_std
    return rotvec_to_rotmat(w) @ R, t + dt


def mirror_vertices(verts: torch.Tensor, flip: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """The mesh of a horizontally mirrored image: x -> -x and left/right vertices swapped, where ``flip``.

    Args: verts (b, ..., v, 3); flip (b,) bool; perm (v,) left/right vertex permutation.
    Returns: (b, ..., v, 3), unchanged where ``flip`` is False.
    """
    vm = verts[..., perm, :] * _MIRROR.to(verts)
    return torch.where(flip.view(-1, *([1] * (verts.dim() - 1))), vm, verts)


class Batch:
    """A batch dict in an opaque box: mixed-precision wrappers cast the floating tensors of dict inputs
    to bf16, which would round the ground truth (3 m at bf16 is +-1 cm); boxed, they stay float32."""

    def __init__(self, data: dict) -> None:
        self.data = data


class StageStep(nn.Module):
    """``forward(batch, step) -> {term: tensor, "total": tensor}`` for one stage (module docstring).

    Args:
        model: the MoRo being trained (with its joint regressor).
        body: the body model whose mesh the tokenizer encodes.
        recipe: the stage's :class:`~moro.training.recipes.StageRecipe`.
        mirror_perm: (v,) left/right vertex permutation (needed when the recipe flips images).
        seed: seeds the masking / Gumbel generators together with the step and rank.
        rank: data-parallel rank.
    """

    def __init__(self, model: nn.Module, body: nn.Module, recipe: StageRecipe, mirror_perm: torch.Tensor | None = None,
                 seed: int = 0, rank: int = 0) -> None:
        super().__init__()
        self.model = model
        self.body = body.requires_grad_(False)
        self.recipe = recipe
        self.register_buffer("mirror_perm", None if mirror_perm is None else mirror_perm.long(), persistent=False)
        self.seed, self.rank = int(seed), int(rank)
        self.masking = getattr(model.config, "masking", MaskingConfig())

    # ------------------------------------------------------------------ ground truth
    @torch.no_grad()
    def ground_truth(self, batch: dict) -> dict[str, torch.Tensor]:
        m = self.model
        b, t = batch["ids"].shape[:2]
        dev = batch["ids"].device
        verts = self.body(batch["body_pose"].flatten(0, 1), batch["betas"].repeat_interleave(t, 0)).vertices
        verts = verts.view(b, t, -1, 3)
        R, tr = augment_camera_pose(batch["root_rot"], batch["root_trans"], batch.get("roll"), batch.get("flip"))
        if "flip" in batch and bool(batch["flip"].any()):
            if self.mirror_perm is None:
                raise ValueError("a flipped batch needs the mirror permutation (StageStep(mirror_perm=...))")
            verts = mirror_vertices(verts, batch["flip"].to(dev), self.mirror_perm)
        traj = torch.cat((rotmat_to_rot6d(R), tr), -1)
        gt = {"labels_ids": batch["ids"], "verts_local": verts, "traj": traj, "R": R, "t": tr}
        if m.joint_regressor is not None:
            gt["joints"] = m.place_joints(m.joints(verts), traj)
            if "K" in batch:
                K = batch["K"].to(verts)[:, None].expand(b, t, 3, 3)
                gt["joints2d"], _ = project_points(gt["joints"], K, min_depth=0.1)
        if t > 1 or self.recipe.data == "clips":
            gt["cano_traj"] = m.canonical_input(traj)
        return gt

    # ------------------------------------------------------------------ forward
    def _generator(self, step: int, device) -> torch.Generator:
        return torch.Generator(device=device).manual_seed(
            (self.seed * 1_000_003 + self.rank * 7919 + int(step) * 104_729) % (2**62))

    def _pick_mode(self, g: torch.Generator) -> str:
        u = float(torch.rand((), generator=g, device=g.device))
        acc = 0.0
        for mode, p in self.recipe.masking:
            acc += p
            if u < acc:
                return mode
        return self.recipe.masking[-1][0]

    def forward(self, batch: dict, step: int, tau: float | None = None) -> dict[str, torch.Tensor]:
        """Loss terms of one batch at ``step``; ``tau`` fixes the Gumbel temperature (validation: 0.5).

        Under mixed precision (Fabric's bf16 autocast around this forward) only the network calls run
        in the low-precision dtype; ground truth, geometry, the mesh decoding and the losses run in float32.
        """
        if isinstance(batch, Batch):
            batch = batch.data
        dev = batch["ids"].device
        amp = torch.is_autocast_enabled(dev.type)
        amp_dtype = torch.get_autocast_dtype(dev.type)
        with torch.autocast(device_type=dev.type, enabled=False):
            return self._forward(batch, step, tau, lambda: torch.autocast(device_type=dev.type, dtype=amp_dtype,
                                                                          enabled=amp))

    def _forward(self, batch: dict, step: int, tau: float | None, net) -> dict[str, torch.Tensor]:
        r, m = self.recipe, self.model
        freeze_modes(m, r.trained_parts)
        dev = batch["ids"].device
        g = self._generator(step, dev)
        gt = self.ground_truth(batch)
        ids = gt["labels_ids"]
        b, t = ids.shape[:2]
        frac = step / max(1, r.steps)
        tau = gumbel_temperature(step, r.steps, m.config.gumbel) if tau is None else tau
        first_pose = (gt["R"][:, 0], gt["t"][:, 0])

        def run(token_ids, cano, image):
            with net():
                return _float32(m(token_ids, cano, image))

        image = None
        if r.data in ("images", "video"):
            bbox_info = self._bbox_info(batch["bbox"], batch["K"])
            with net(), torch.set_grad_enabled(r.data != "video" and torch.is_grad_enabled()):
                # backbone and image encoder are frozen in video fine-tuning
                image = m.encode_image(bbox_info, images=batch["images"])
            image = _image_float32(image)
        mode = self._pick_mode(g)
        if r.data in ("frames", "clips"):
            if r.trajectory == "zero":
                cano = None
            else:
                rs, ts = r.noise.at(frac) if r.noise is not None else (0.0, 0.0)
                Rn, tn = perturb_rotation_translation(gt["R"], gt["t"], rs, ts, g)
                cano = m.canonical_input(torch.cat((rotmat_to_rot6d(Rn), tn), -1))
            masked = mask_tokens(ids, mode, m.mask_id, g, self.masking)
            out = run(masked.input_ids, cano, None)
        elif r.data == "images":
            masked = mask_tokens(ids, "full", m.mask_id, g, self.masking)
            out = run(None, None, image)
        else:
            coarse_cano = m.canonical_input(image.coarse_traj.detach())
            if mode == "inference":
                def first_pass(all_masked):
                    o = run(all_masked, coarse_cano, image)
                    return o.logits, o.decoder.traj

                masked, refined = inference_masking(ids, first_pass, m.mask_id, g, self.masking)
                out = run(masked.input_ids, m.canonical_input(refined.detach()), image)
            else:
                masked = mask_tokens(ids, mode, m.mask_id, g, self.masking)
                out = run(masked.input_ids, coarse_cano, image)
        pred = m.predictions(out, tau, g, first_pose if out.motion is not None and t > 1 else None, batch.get("K"))
        return self._losses(out, pred, gt, masked, batch, frac, tau)

    def _losses(self, out, pred, gt, masked, batch, frac, tau) -> dict[str, torch.Tensor]:
        r, m = self.recipe, self.model
        truth = {"labels": masked.labels, "verts_local": gt["verts_local"]}
        for k in ("joints", "joints2d", "cano_traj"):
            if k in gt:
                truth[k] = gt[k]
        if "bbox" in batch:
            truth["bbox"] = batch["bbox"]
        in_finetune = r.translation_finetune > 0 and frac >= 1.0 - r.translation_finetune
        if r.data == "images" and not in_finetune:
            # before the translation finetune, each trajectory term sees the rotation only (its target
            # takes the prediction's own translation, detached), and no global 3D joints
            truth["traj"] = gt["traj"]
            for s in ("coarse", "refined"):
                if f"traj_{s}" in pred:
                    traj = gt["traj"].clone()
                    traj[..., 6:] = pred[f"traj_{s}"][..., 6:].detach()
                    truth[f"traj_{s}"] = traj
            for s in ("coarse", "refined", "cano"):
                pred.pop(f"joints_{s}", None)
        else:
            truth["traj"] = gt["traj"]
        if r.data == "video" and "image_encoder" not in r.trainable:
            # the coarse trajectory comes from the frozen image encoder: its terms train nothing of it and,
            # through the shared local mesh, would only push the pose to absorb its per-frame jitter
            for k in ("traj_coarse", "joints_coarse", "joints2d_coarse", "joints2d_valid_coarse"):
                pred.pop(k, None)
        if r.data == "frames":
            truth.pop("cano_traj", None)
            for k in [k for k in pred if k.startswith("joints")]:
                pred.pop(k)
        terms = moro_losses(pred, truth, m.config.loss, m.config.fps)
        if r.losses:
            keep = {k: v for k, v in terms.items() if k != "total" and any(k == p or k.startswith(p + "_") for p in r.losses)}
            keep["total"] = sum(m.config.loss.weight(k) * v for k, v in keep.items())
            terms = keep
        terms["tau"] = torch.tensor(tau)
        return terms

    @staticmethod
    def _bbox_info(bbox: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        """(b, t, 3) boxes, (b, 3, 3) K -> (b, t, 3) CLIFF bbox info."""
        from moro.geometry import cliff_bbox_info

        Kt = K[:, None].expand(*bbox.shape[:2], 3, 3).to(bbox)
        return cliff_bbox_info(bbox, Kt)
