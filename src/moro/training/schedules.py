"""Optimisers and learning-rate schedules of design.md, scaled to any number of steps.

- Tokenizer (design.md, "Mesh tokenizer"): AdamW, LR x0.2 at 50 % and 75 % of the steps
  (paper: 5e-4, wd 1e-5, 200k steps, milestones 100k / 150k) -> :func:`step_schedule`.
- MoRo stages (design.md, "Training"): AdamW wd 1e-4, linear warm-up from 0.01x over 2000 steps,
  cosine down to 0.1x -> :func:`warmup_cosine_schedule`.

Schedules are ``LambdaLR`` over plain functions of the step, so their state dict is tiny and a
resumed run continues on exactly the same curve.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["make_adamw", "step_factor", "step_schedule", "warmup_cosine_factor", "warmup_cosine_schedule"]


def make_adamw(params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float,
               groups: dict[float, Iterable[torch.nn.Parameter]] | None = None) -> torch.optim.AdamW:
    """AdamW over the parameters that require gradients (frozen ones are skipped).

    Args:
        groups: optional ``{lr: parameters}``: those parameters (among ``params``) get their own learning
            rate (e.g. a pretrained backbone a smaller one); the rest get ``lr``. Schedules scale every group.
    """
    if lr <= 0 or weight_decay < 0:
        raise ValueError(f"need lr > 0 and weight_decay >= 0, got lr={lr}, weight_decay={weight_decay}")
    trainable = [p for p in params if p.requires_grad]
    if not trainable:
        raise ValueError("no trainable parameters: unfreeze something before building the optimiser")
    param_groups, taken = [], set()
    for glr, gparams in (groups or {}).items():
        if glr <= 0:
            raise ValueError(f"need a group lr > 0, got {glr}")
        mine = [p for p in gparams if p.requires_grad and id(p) not in taken and any(p is q for q in trainable)]
        taken.update(id(p) for p in mine)
        if mine:
            param_groups.append({"params": mine, "lr": float(glr)})
    rest = [p for p in trainable if id(p) not in taken]
    if rest:
        param_groups.insert(0, {"params": rest, "lr": float(lr)})
    return torch.optim.AdamW(param_groups, lr=lr, weight_decay=weight_decay)


def step_factor(step: int, total_steps: int, milestones: Sequence[float] = (0.5, 0.75), gamma: float = 0.2) -> float:
    """LR multiplier at ``step`` (0-based): ``gamma ** #{m : step >= round(m * total_steps)}``."""
    return gamma ** sum(step >= round(m * total_steps) for m in milestones)


def step_schedule(
    optimizer: torch.optim.Optimizer, total_steps: int, milestones: Sequence[float] = (0.5, 0.75), gamma: float = 0.2
) -> LambdaLR:
    """Step decay at fractions of the run (tokenizer: x0.2 at 50 % and 75 %)."""
    if total_steps < 1 or not all(0.0 < m < 1.0 for m in milestones):
        raise ValueError(f"need total_steps >= 1 and milestones in (0, 1), got {total_steps}, {tuple(milestones)}")
    ms, g = tuple(float(m) for m in milestones), float(gamma)
    return LambdaLR(optimizer, lambda s: step_factor(s, total_steps, ms, g))


def warmup_cosine_factor(step: int, total_steps: int, warmup_steps: int = 2000, start: float = 0.01, end: float = 0.1) -> float:
    """LR multiplier: linear ``start -> 1`` over ``warmup_steps``, then cosine ``1 -> end`` at ``total_steps``."""
    if step < warmup_steps:
        return start + (1.0 - start) * step / warmup_steps
    t = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * t))


def warmup_cosine_schedule(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 2000, start: float = 0.01, end: float = 0.1
) -> LambdaLR:
    """The MoRo stages' schedule (design.md); ``warmup_steps`` is capped at ``total_steps``."""
    if total_steps < 1:
        raise ValueError(f"need total_steps >= 1, got {total_steps}")
    w = min(int(warmup_steps), total_steps)
    return LambdaLR(optimizer, lambda s: warmup_cosine_factor(s, total_steps, w, start, end))
