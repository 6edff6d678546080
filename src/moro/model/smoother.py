"""Temporal smoother on pose-token embeddings, applied before the tokenizer decoder.

Each token slot's code-vector sequence (t frames x dc dims) is filtered over time by a small
shared 1-D CNN and added back through a learned gate:

    net = Conv1d(dc -> 64, k5, replicate pad) -> ReLU -> Conv1d(64 -> 64, k5, replicate pad)
          -> ReLU -> Conv1d(64 -> dc, k1)            (no biases)
    out = x + alpha * net(x),  alpha a 0-d parameter initialised to 0.1

Names equal the authors' ``smoother.alpha`` [] and ``smoother.net.{0,2,4}.weight`` (official
layout 3.6). Replicate padding keeps the clip length and works for any t >= 1.
Shape letters: b batch, t frames, n token slots, dc code dimension.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["SmootherConfig", "TokenSmoother"]


@dataclass
class SmootherConfig:
    """Architecture of :class:`TokenSmoother` (paper values)."""

    hidden: int = 64  # channels of the two k-wide convolutions
    kernel_size: int = 5  # temporal kernel, frames (odd, so the output stays aligned)
    num_layers: int = 2  # k-wide conv + ReLU pairs before the 1x1 projection back
    gate_init: float = 0.1  # initial alpha: the smoother starts as a small correction

    def __post_init__(self) -> None:
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"smoother.kernel_size must be odd and >= 1, got {self.kernel_size}")
        if self.hidden < 1 or self.num_layers < 1:
            raise ValueError(f"smoother.hidden and smoother.num_layers must be >= 1, got {self.hidden}, {self.num_layers}")


class TokenSmoother(nn.Module):
    """Gated residual temporal CNN over each token slot; (b, t, n, dc) -> (b, t, n, dc).

    Args:
        code_dim: dc (paper 9).
        config: :class:`SmootherConfig`.
    """

    def __init__(self, code_dim: int, config: SmootherConfig | None = None) -> None:
        super().__init__()
        cfg = config or SmootherConfig()
        layers: list[nn.Module] = []
        c_in = code_dim
        for _ in range(cfg.num_layers):
            layers += [
                nn.Conv1d(c_in, cfg.hidden, cfg.kernel_size, padding=cfg.kernel_size // 2,
                          padding_mode="replicate", bias=False),
                nn.ReLU(),
            ]
            c_in = cfg.hidden
        layers.append(nn.Conv1d(c_in, code_dim, 1, bias=False))
        self.net = nn.Sequential(*layers)
        self.alpha = nn.Parameter(torch.tensor(float(cfg.gate_init)))  # 0-d, as in the checkpoint
        self.code_dim = code_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(b, t, n, dc) token vectors -> smoothed (b, t, n, dc)."""
        if x.dim() != 4 or x.shape[-1] != self.code_dim:
            raise ValueError(f"smoother expects (b, t, n, {self.code_dim}) token vectors, got {tuple(x.shape)}")
        b, t, n, dc = x.shape
        seq = x.permute(0, 2, 3, 1).reshape(b * n, dc, t)  # one sequence per token slot
        delta = self.net(seq).reshape(b, n, dc, t).permute(0, 3, 1, 2)
        return x + self.alpha * delta
