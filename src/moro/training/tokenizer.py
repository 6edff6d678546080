"""Train the Mesh-VQ-VAE on local body meshes (``moro train tokenizer``).

Loss (design.md): ``1.0 * mean per-vertex error + 0.25 * commitment``; the codebook follows by
EMA. Optimiser: AdamW, LR x0.2 at 50 % and 75 % of the steps (:mod:`moro.training.schedules`).
Meshes: :class:`~moro.training.mesh_source.LocalMeshSource` (step-seeded, so runs resume exactly).

Output folder::

    DIR/last.ckpt       resumable training state (every ``checkpoint_every`` steps and at the end)
    DIR/tokenizer.ckpt  the trained tokenizer alone (float32, config, hierarchy, provenance), written at the end

Library code logs; the CLI draws the progress bar from the ``on_step`` callback.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from moro.body.model import BodyModel
from moro.tokenizer.checkpoint import save_tokenizer
from moro.tokenizer.presets import TokenizerPreset, tokenizer_preset
from moro.tokenizer.vqvae import MeshVQVAE
from moro.training.checkpoint import TrainCheckpointError, load_train_state, restore_train_state, save_train_state
from moro.training.mesh_source import HELD_OUT_SEED, LocalMeshSource
from moro.training.schedules import make_adamw, step_schedule

__all__ = [
    "TokenizerTrainConfig",
    "TRAIN_PRESETS",
    "TrainResult",
    "load_body",
    "load_preset_body",
    "build_tokenizer",
    "train_tokenizer",
    "STATE_FILE",
    "TOKENIZER_FILE",
]

log = logging.getLogger(__name__)

STATE_FILE, TOKENIZER_FILE = "last.ckpt", "tokenizer.ckpt"
KIND = "tokenizer"


@dataclass
class TokenizerTrainConfig:
    """One training run; stored in the training state (a resume must not change it)."""

    preset: str = "tiny"  # tokenizer preset (moro.tokenizer.presets): body mesh + architecture
    steps: int = 3600  # optimiser steps in total
    batch: int = 32  # meshes per step
    lr: float = 2e-3  # AdamW learning rate before the decays
    weight_decay: float = 1e-5  # AdamW weight decay (paper 1e-5)
    milestones: tuple[float, ...] = (0.5, 0.75)  # fractions of `steps` where the LR is multiplied by `gamma`
    gamma: float = 0.2  # LR decay factor (paper 0.2)
    seed: int = 0  # model init and mesh source seed
    checkpoint_every: int = 200  # steps between training-state saves (and on the last step)
    template_meshes: int = 256  # training meshes averaged into the template (when config.template_offset)

    def __post_init__(self) -> None:
        self.milestones = tuple(float(m) for m in self.milestones)
        if not 0 <= self.seed < HELD_OUT_SEED:
            raise ValueError(f"seed must lie in [0, {HELD_OUT_SEED}): seeds from {HELD_OUT_SEED} on are the held-out data")
        if min(self.steps, self.batch, self.checkpoint_every, self.template_meshes) < 1:
            raise ValueError(
                f"steps, batch, checkpoint_every and template_meshes must be >= 1, got "
                f"{self.steps}, {self.batch}, {self.checkpoint_every}, {self.template_meshes}"
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TokenizerTrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# Per preset: the paper's values for the authors' architecture; tiny's are ours (CPU, ~30 min; see models/README.md).
TRAIN_PRESETS: dict[str, dict] = {
    "paper": dict(steps=200_000, batch=256, lr=5e-4, weight_decay=1e-5, checkpoint_every=2000),
    "anny": dict(steps=200_000, batch=256, lr=5e-4, weight_decay=1e-5, checkpoint_every=2000),
    "tiny": dict(steps=3600, batch=32, lr=2e-3, weight_decay=1e-5, checkpoint_every=200),
}


def train_config(preset: str, **overrides) -> TokenizerTrainConfig:
    """The preset's training settings with ``overrides`` (None values are ignored)."""
    tokenizer_preset(preset)
    values = {**TRAIN_PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    return TokenizerTrainConfig(preset=preset, **values)


@dataclass
class TrainResult:
    step: int  # steps done
    seconds: float  # wall time of the training loop, all sessions of a resumed run together
    history: list[dict] = field(default_factory=list)  # per step: loss, vertex_mm, perplexity, lr, dead_codes
    state_path: Path | None = None
    tokenizer_path: Path | None = None  # None when the run stopped before its last step


def load_body(body_model: str, topology: str, smplx_path=None) -> BodyModel:
    """A tokenizer's body model: ``("anny", <topology>)`` (built and cached on first use) or ``("smplx", "body")``."""
    if body_model == "anny":
        from moro.body import load_anny

        return load_anny(topology)
    if body_model == "smplx" and topology == "body":
        from moro.body import load_smplx

        return load_smplx(smplx_path, body_only=True)
    raise ValueError(f"no tokenizer body model {body_model}/{topology}; use anny/<topology> or smplx/body")


def load_preset_body(preset: TokenizerPreset | str, smplx_path=None) -> BodyModel:
    """The body model whose mesh the preset tokenizes (Anny: built and cached on first use)."""
    p = tokenizer_preset(preset) if isinstance(preset, str) else preset
    return load_body(p.body_model, p.topology, smplx_path)


def build_tokenizer(preset: TokenizerPreset | str, body: BodyModel, seed: int = 0) -> MeshVQVAE:
    """A freshly initialised tokenizer of ``preset`` on ``body``'s mesh (weights drawn from ``seed``)."""
    p = tokenizer_preset(preset) if isinstance(preset, str) else preset
    if body.num_vertices != p.num_vertices:
        raise ValueError(
            f"preset '{p.name}' tokenizes {p.body_model}/{p.topology} meshes of {p.num_vertices} vertices, "
            f"but the body model {getattr(body, 'name', '?')} has {body.num_vertices}; load_preset_body('{p.name}') gives the right one"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MeshVQVAE.from_mesh(p.config(), body.faces.cpu().numpy(), body.num_vertices)


def _template(source, n: int) -> torch.Tensor:
    """(v, 3) mean of ``n`` training meshes (the pool of step 0, which training draws from anyway)."""
    return source.batch(0, n).vertices.mean(0)


def train_tokenizer(
    model: MeshVQVAE,
    source: LocalMeshSource | Any,
    config: TokenizerTrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    on_step: Callable[[dict], None] | None = None,
    stop_after: int | None = None,
    body_info: dict | None = None,
    meta: dict | None = None,
) -> TrainResult:
    """Train ``model`` on ``source`` meshes; write ``out_dir/last.ckpt`` and, at the end, ``tokenizer.ckpt``.

    Args:
        model: the tokenizer (freshly built, or any state when resuming: it is overwritten).
        source: training meshes, e.g. a LocalMeshSource: anything whose ``batch(step, b).vertices`` is a
            (b, v, 3) tensor that depends only on (step, b), and with a ``num_vertices``.
        config: the run's settings.
        out_dir: output folder (created).
        resume: continue from ``out_dir/last.ckpt``; the config and the hierarchy digest must match.
        on_step: called after every step with that step's record (``step`` is 1-based).
        stop_after: stop after this many steps in this call (the state is saved): an interruption, for tests.
        body_info: what the meshes are (stored in ``tokenizer.ckpt``).
        meta: extra provenance for ``tokenizer.ckpt`` (command line, git revision, ...).

    Returns:
        :class:`TrainResult`.
    """
    out_dir = Path(out_dir)
    state_path = out_dir / STATE_FILE
    if source.num_vertices != model.num_vertices:
        raise ValueError(
            f"the mesh source gives {source.num_vertices}-vertex meshes but the tokenizer expects {model.num_vertices}; "
            "build the tokenizer on the source's body model"
        )
    optimizer = make_adamw(model.parameters(), config.lr, config.weight_decay)
    scheduler = step_schedule(optimizer, config.steps, config.milestones, config.gamma)
    history: list[dict] = []
    start, seconds = 0, 0.0
    if resume:
        payload = load_train_state(state_path, kind=KIND)
        digest = payload["meta"].get("hierarchy_digest")
        if digest != model.hierarchy.digest:
            raise TrainCheckpointError(
                f"{state_path} was trained on hierarchy {str(digest)[:12]}..., this tokenizer has "
                f"{model.hierarchy.digest[:12]}...: another mesh topology or hierarchy spec; use another --out folder"
            )
        start = restore_train_state(payload, model, optimizer, scheduler, config=config.to_dict())
        history, seconds = list(payload["history"]), float(payload["meta"].get("seconds", 0.0))
        log.info("resumed %s at step %d of %d", state_path, start, config.steps)
    else:
        if state_path.exists():
            raise TrainCheckpointError(f"{state_path} exists; pass --resume to continue it, or choose another --out folder")
        torch.manual_seed(config.seed)  # quantizer restarts draw from the global generator
        if model.config.template_offset:
            model.set_template(_template(source, config.template_meshes))
    out_dir.mkdir(parents=True, exist_ok=True)

    def save(step: int) -> None:
        save_train_state(
            state_path, kind=KIND, step=step, config=config.to_dict(), model=model, optimizer=optimizer,
            scheduler=scheduler, meta={"hierarchy_digest": model.hierarchy.digest, "seconds": seconds}, history=history,
        )

    end = config.steps if stop_after is None else min(config.steps, start + stop_after)
    model.train()
    t_last = time.perf_counter()
    for step in range(start, end):
        vertices = source.batch(step, config.batch).vertices
        out = model(vertices)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        if not math.isfinite(out.loss.item()):
            raise FloatingPointError(f"loss became {out.loss.item()} at step {step + 1}; lower --lr or check the meshes")
        optimizer.step()
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        now = time.perf_counter()
        seconds += now - t_last
        t_last = now
        record = {
            "step": step + 1,
            "loss": out.loss.item(),
            "vertex_mm": out.vertex_error.item() * 1000.0,
            "perplexity": out.perplexity.item(),
            "codes_used": int(torch.unique(out.codes).numel()),
            "dead_codes": model.quantizer.dead_codes,
            "lr": lr,
        }
        history.append(record)
        if on_step is not None:
            on_step(record)
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == end:
            save(step + 1)
    if start >= end:
        log.info("%s already holds %d steps; nothing to do", state_path, start)
    model.eval()
    result = TrainResult(step=end, seconds=seconds, history=history, state_path=state_path)
    if end == config.steps:
        tok_path = out_dir / TOKENIZER_FILE
        last = history[-1] if history else {}
        summary = {"steps": end, "batch": config.batch, "train_seconds": round(seconds, 1),
                   "final_loss": last.get("loss"), "train_config": config.to_dict()}
        save_tokenizer(model, tok_path, body=body_info, preset=config.preset, meta={**(meta or {}), **summary})
        result.tokenizer_path = tok_path
    return result
