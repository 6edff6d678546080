"""Input validation for the metric functions: conversion to float64 torch, shapes, finiteness.

Every public metric converts its inputs here once. Metrics are computed in float64 on the
input's device (reproducible to well below the reported precision, whatever the caller's dtype);
numpy arrays are converted with ``torch.from_numpy``. Wrong input raises ``ValueError`` naming
what was expected and how to fix it - nothing is broadcast and no sequence is shortened.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

DTYPE = torch.float64


def as_tensor(name: str, x: object) -> torch.Tensor:
    """Convert a torch tensor, numpy array or nested list to a float64 tensor (device kept)."""
    if isinstance(x, torch.Tensor):
        return x.to(DTYPE)
    if isinstance(x, (np.ndarray, list, tuple, float, int)):
        try:
            arr = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} must be numeric (a tensor or array), could not convert it: {err}") from None
        return torch.from_numpy(arr)
    raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")


def check_finite(name: str, x: torch.Tensor) -> None:
    """Raise if ``x`` (first axis = frames) holds NaN/inf, naming the first bad frame."""
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        frames = bad.reshape(bad.shape[0], -1).any(dim=-1).nonzero().flatten()
        raise ValueError(
            f"{name} contains NaN or inf in {int(frames.numel())} frame(s) (first: frame {int(frames[0])}); "
            f"metrics never skip frames silently - drop or fill those frames in every input (and the mask) "
            f"before scoring"
        )


def points(name: str, x: object, n_points: int | None = None, what: str = "J") -> torch.Tensor:
    """Validate one sequence of points: (F, N, 3) finite float64, F >= 1."""
    t = as_tensor(name, x)
    if t.dim() != 3 or t.shape[-1] != 3:
        hint = " (one sequence at a time: loop over sequences, then pool)" if t.dim() == 4 else ""
        raise ValueError(f"{name} must have shape (F, {what}, 3) in metres, got {tuple(t.shape)}{hint}")
    if t.shape[0] < 1 or t.shape[1] < 1:
        raise ValueError(f"{name} must hold at least one frame and one point, got shape {tuple(t.shape)}")
    if n_points is not None and t.shape[1] != n_points:
        raise ValueError(f"{name} must have shape (F, {n_points}, 3), got {tuple(t.shape)}")
    check_finite(name, t)
    return t


def pair(
    pred: object, gt: object, names: tuple[str, str] = ("pred", "gt"), what: str = "J"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a prediction / ground-truth pair of (F, N, 3) sequences with identical shapes."""
    p = points(names[0], pred, what=what)
    g = points(names[1], gt, what=what)
    if p.shape[0] != g.shape[0]:
        raise ValueError(
            f"{names[0]} has {p.shape[0]} frames but {names[1]} has {g.shape[0]}; predictions must cover exactly "
            f"the scored frames - select the same frame interval in both (sequences are never shortened silently)"
        )
    if p.shape[1] != g.shape[1]:
        raise ValueError(
            f"{names[0]} has {p.shape[1]} points per frame but {names[1]} has {g.shape[1]}; map both to the same "
            f"joint set (or vertex topology) first"
        )
    same_device(**{names[0]: p, names[1]: g})
    return p, g


def same_device(**tensors: torch.Tensor) -> None:
    devices = {t.device for t in tensors.values()}
    if len(devices) > 1:
        desc = ", ".join(f"{n} on {t.device}" for n, t in tensors.items())
        raise ValueError(f"inputs must be on one device, got {desc}; move them with .to(device)")


def same_frames(**tensors: torch.Tensor) -> int:
    """Require one frame count (first axis) across tensors; return it."""
    counts = {n: t.shape[0] for n, t in tensors.items()}
    if len(set(counts.values())) > 1:
        desc = ", ".join(f"{n}: {c}" for n, c in counts.items())
        raise ValueError(f"all inputs must cover the same frames, got frame counts {desc}; select the same interval")
    return next(iter(counts.values()))


def min_frames(name: str, x: torch.Tensor, n: int, metric: str) -> None:
    if x.shape[0] < n:
        raise ValueError(f"{metric} needs at least {n} frames, {name} has {x.shape[0]}; score a longer sequence")


def positive(name: str, value: float) -> float:
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


def joint_indices(name: str, idx: Sequence[int], n_joints: int) -> list[int]:
    out = [int(i) for i in idx]
    if not out or any(i < 0 or i >= n_joints for i in out):
        raise ValueError(
            f"{name} = {tuple(idx)} is out of range for {n_joints} joints; pass the indices of your joint set "
            f"(moro scores a 22-joint SMPL-style set: hips 1, 2; ankles 7, 8; toes 10, 11)"
        )
    return out


def visibility_mask(mask: object, frames: int, joints: int) -> torch.Tensor:
    """Validate a per-(frame, joint) visibility mask (1 = visible); return it as bool (F, J)."""
    m = mask if isinstance(mask, torch.Tensor) else torch.from_numpy(np.asarray(mask))
    if tuple(m.shape) != (frames, joints):
        raise ValueError(
            f"mask must have shape (F, J) = ({frames}, {joints}) with 1 = visible, got {tuple(m.shape)}; "
            f"it must cover exactly the scored frames (check the scored interval against the mask length)"
        )
    if m.dtype == torch.bool:
        return m
    mf = m.to(DTYPE)
    if not bool(((mf == 0) | (mf == 1)).all()):
        raise ValueError("mask must be boolean or hold only 0 and 1 (1 = visible); threshold soft masks first")
    return mf == 1
