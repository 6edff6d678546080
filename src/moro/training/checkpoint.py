"""Resumable training checkpoints, shared by every training stage.

A training checkpoint is one ``torch.save`` of a dict (read back with ``weights_only=True``)::

    format      "moro-train-state"
    version     1
    kind        what is trained ("tokenizer", "moro/pose_pretrain", ...): resuming another kind is an error
    step        number of optimiser steps done
    config      the run's configuration (plain dict); a resume must match it
    meta        anything the stage wants to keep (hierarchy digest, provenance, ...)
    model       model.state_dict()
    optimizer   optimizer.state_dict()
    scheduler   scheduler.state_dict() or None
    rng         torch CPU RNG state (+ CUDA states when present)
    history     per-step records so far (list of dicts of floats)

Writes are atomic (:func:`moro.paths.atomic_write`): an interrupted save leaves the previous
checkpoint intact, so ``--resume`` always finds a complete file. Data pipelines must be a pure
function of (seed, step) for a resumed run to repeat an uninterrupted one exactly; this module
restores everything else (weights, optimiser moments, schedule position, RNG).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from moro.paths import atomic_write

__all__ = [
    "TRAIN_FORMAT",
    "TrainCheckpointError",
    "save_train_state",
    "load_train_state",
    "restore_train_state",
    "get_rng_state",
    "set_rng_state",
    "provenance",
]

TRAIN_FORMAT, TRAIN_VERSION = "moro-train-state", 1


class TrainCheckpointError(ValueError):
    """A training checkpoint that cannot be resumed as asked; the message says what to change."""


def get_rng_state() -> dict[str, Any]:
    """Torch RNG states (CPU, and every CUDA device when CUDA is initialised)."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_train_state(
    path: str | os.PathLike,
    *,
    kind: str,
    step: int,
    config: dict,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any = None,
    meta: dict | None = None,
    history: list[dict] | None = None,
) -> None:
    """Write a resumable checkpoint atomically (module docstring); tensors are moved to CPU."""
    payload = {
        "format": TRAIN_FORMAT,
        "version": TRAIN_VERSION,
        "kind": kind,
        "step": int(step),
        "config": config,
        "meta": meta or {},
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "rng": get_rng_state(),
        "history": list(history or []),
    }
    with atomic_write(path) as tmp:
        torch.save(payload, tmp)


def load_train_state(path: str | os.PathLike, kind: str | None = None, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_train_state`; check its format and ``kind``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training checkpoint not found: {path}; start without --resume to begin a new run")
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != TRAIN_FORMAT:
        raise TrainCheckpointError(f"{path} is not a moro training checkpoint (format {payload.get('format')!r})")
    if payload.get("version", 0) > TRAIN_VERSION:
        raise TrainCheckpointError(f"{path} has version {payload['version']} > {TRAIN_VERSION}; update moro")
    if kind is not None and payload.get("kind") != kind:
        raise TrainCheckpointError(f"{path} holds a '{payload.get('kind')}' run, not '{kind}'; pick another --out folder")
    return payload


def restore_train_state(
    payload: dict, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any = None, *, config: dict | None = None
) -> int:
    """Load weights, optimiser, schedule and RNG from ``payload``; return the step to continue from.

    Args:
        config: the new run's config; if given it must equal the stored one, except for keys the
            caller removed beforehand (e.g. an output folder). Differences are listed in the error.
    """
    if config is not None and payload["config"] != config:
        old = payload["config"]
        diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
        detail = ", ".join(f"{k}: {old.get(k)!r} -> {config.get(k)!r}" for k in diff)
        raise TrainCheckpointError(
            f"cannot resume: the run's settings changed ({detail}); resume with the original settings or start a new --out folder"
        )
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    if scheduler is not None:
        if payload.get("scheduler") is None:
            raise TrainCheckpointError("the checkpoint has no scheduler state but the run uses a schedule")
        scheduler.load_state_dict(payload["scheduler"])
    set_rng_state(payload["rng"])
    return int(payload["step"])


def provenance(argv: list[str] | None = None) -> dict[str, str]:
    """What produced a result: the command line and the git revision of moro's source (``+dirty`` if modified)."""
    argv = sys.argv if argv is None else argv
    command = " ".join([Path(argv[0]).name] + list(argv[1:])) if argv else ""
    root = Path(__file__).resolve().parents[3]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10
        )
        revision = rev.stdout.strip() or "unknown"
        if revision != "unknown" and dirty.stdout.strip():
            revision += "+dirty"
    except (OSError, subprocess.SubprocessError):
        revision = "unknown"
    return {"command": command, "git_revision": revision}
