"""Gumbel-softmax sampling of token codes, hard with straight-through gradients (supplement A.5).

The geometric losses need a mesh from the predicted logits; sampling a code is not
differentiable, so training samples ``y = one_hot(argmax((logits + g) / tau))`` with Gumbel
noise g and back-propagates through the soft ``softmax((logits + g) / tau)`` (straight-through).
``y @ codebook`` then gives exactly one code vector per token in the forward pass.

Temperature: cosine-annealed from 1.0 to 0.01 over training; 0.5 during validation.
All noise comes from an explicit ``torch.Generator``. Shape letters: ``...`` any leading shape,
k codes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["GumbelConfig", "gumbel_temperature", "gumbel_softmax_hard"]


@dataclass
class GumbelConfig:
    """Temperature schedule of the Gumbel-softmax (paper values)."""

    tau_start: float = 1.0  # temperature at step 0
    tau_end: float = 0.01  # temperature at the last step
    tau_validation: float = 0.5  # fixed temperature for validation

    def __post_init__(self) -> None:
        for name in ("tau_start", "tau_end", "tau_validation"):
            if not getattr(self, name) > 0:
                raise ValueError(f"gumbel.{name} must be > 0, got {getattr(self, name)}")


def gumbel_temperature(step: int, total_steps: int, config: GumbelConfig | None = None) -> float:
    """Cosine annealing ``tau_end + (tau_start - tau_end) (1 + cos(pi s / S)) / 2``, s clamped to [0, S]."""
    cfg = config or GumbelConfig()
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    frac = min(max(step, 0), total_steps) / total_steps
    return cfg.tau_end + (cfg.tau_start - cfg.tau_end) * 0.5 * (1.0 + math.cos(math.pi * frac))


def gumbel_softmax_hard(logits: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Hard Gumbel-softmax sample with straight-through gradients.

    Args:
        logits: (..., k) unnormalised log-probabilities.
        tau: temperature > 0.
        generator: RNG on ``logits.device``; None draws nothing and returns the hard argmax with
            the straight-through softmax gradient (deterministic decoding).
    Returns:
        (..., k) one-hot values (forward) whose gradient is that of ``softmax((logits + g) / tau)``.
    """
    if tau <= 0:
        raise ValueError(f"Gumbel temperature must be > 0, got {tau}")
    if generator is not None:
        u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
        g = -torch.log(-torch.log(u.clamp(1e-20, 1.0 - 1e-7)))
        logits = logits + g
    y_soft = (logits / tau).softmax(dim=-1)
    y_hard = F.one_hot(y_soft.argmax(dim=-1), logits.shape[-1]).to(y_soft.dtype)
    return y_hard - y_soft.detach() + y_soft
