"""EMA vector quantizer: nearest-code lookup, codebook by exponential moving averages.

Training step (module in train mode), for latents z flattened to (n, d) and codes c = argmin_k |z - e_k|:

    N_k <- decay N_k + (1 - decay) #{c = k}            (ema_count)
    S_k <- decay S_k + (1 - decay) sum_{c = k} z       (ema_sum)
    e_k <- S_k / N~_k,   N~_k = (N_k + eps) / (sum N + K eps) * sum N    (Laplace smoothing)

then every code unused for `restart_after` consecutive training steps is restarted from a random
latent of the current batch (e_k = S_k = z, N_k = 1). A fresh quantizer starts with N = S = 0
and counts every code as dead, so its first training batch initialises the whole codebook from
data: used codes become the mean of their latents, the others random latents. Gradients: the
codebook gets none (it is a buffer); the encoder gets the commitment loss
`commitment_weight * mean |z - sg(e_c)|^2` and the straight-through estimate `z + sg(e_c - z)`.

Authors' names (`vq_vae.` prefix): `_embedding.weight` = codebook, `_ema_w` = ema_sum,
`_ema_cluster_size` = ema_count; their `code_count` has no counterpart (set steps_unused to 0
when importing a trained codebook). Under data-parallel training the counts and sums are per
process (no all-reduce yet).

Shape letters: n latent vectors, k codes, d code dimension; "..." any leading shape.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["QuantizerOutput", "VectorQuantizerEMA"]


class QuantizerOutput(NamedTuple):
    codes: torch.Tensor  # (...,) int64 code ids in [0, k)
    quantized: torch.Tensor  # (..., d) codebook vectors, straight-through to the input
    commit_loss: torch.Tensor  # () commitment_weight * mean squared distance to the chosen codes
    perplexity: torch.Tensor  # () exp(entropy) of the code histogram of this call, in [1, k]


class VectorQuantizerEMA(nn.Module):
    """Vector quantizer with an EMA codebook, Laplace smoothing and dead-code restarts.

    Args:
        num_codes: k, codebook size (paper 512).
        dim: d, code dimension (paper 9).
        decay: EMA decay of counts and sums (paper 0.99).
        commitment_weight: weight of the commitment loss (paper 0.25).
        epsilon: Laplace smoothing constant of the counts.
        restart_after: training steps without use after which a code is restarted.
    """

    def __init__(
        self,
        num_codes: int = 512,
        dim: int = 9,
        decay: float = 0.99,
        commitment_weight: float = 0.25,
        epsilon: float = 1e-5,
        restart_after: int = 100,
    ) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must lie in [0, 1), got {decay}")
        if num_codes < 1 or dim < 1 or restart_after < 1:
            raise ValueError(f"num_codes, dim and restart_after must be >= 1, got {num_codes}, {dim}, {restart_after}")
        self.num_codes, self.dim = num_codes, dim
        self.decay, self.commitment_weight, self.epsilon = decay, commitment_weight, epsilon
        self.restart_after = restart_after
        self.register_buffer("codebook", torch.randn(num_codes, dim))  # (k, d)
        self.register_buffer("ema_count", torch.zeros(num_codes))  # (k,) running count N_k
        self.register_buffer("ema_sum", torch.zeros(num_codes, dim))  # (k, d) running sum S_k; e_k = S_k / N~_k
        self.register_buffer("steps_unused", torch.full((num_codes,), float(restart_after)))  # (k,) fresh = dead

    @property
    def dead_codes(self) -> int:
        """Number of codes currently due for a restart."""
        return int((self.steps_unused >= self.restart_after).sum())

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Code ids of the nearest codebook vectors (L2): (..., d) -> (...,) int64."""
        self._check_latents(z)
        flat = z.reshape(-1, self.dim)
        e = self.codebook.to(flat.dtype)
        d2 = flat.pow(2).sum(1, keepdim=True) - 2.0 * flat @ e.t() + e.pow(2).sum(1)  # (n, k)
        return d2.argmin(dim=1).view(z.shape[:-1])

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Codebook vectors of code ids: (...,) int -> (..., d)."""
        if codes.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"codes must be an integer tensor, got {codes.dtype}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.num_codes):
            raise ValueError(
                f"code ids must lie in [0, {self.num_codes}), got [{int(codes.min())}, {int(codes.max())}]; "
                f"a [MASK] id ({self.num_codes}) must be replaced by a predicted code before decoding"
            )
        return F.embedding(codes.long(), self.codebook)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantize latents (..., d); in train mode also update the codebook (module docstring)."""
        codes = self.nearest(z)
        q = self.codebook[codes].to(z.dtype)  # (..., d)
        flat_codes = codes.reshape(-1)
        hist = torch.bincount(flat_codes, minlength=self.num_codes).to(torch.float32)  # (k,)
        if self.training:
            self._update(z.detach().reshape(-1, self.dim).float(), flat_codes, hist)
        commit = self.commitment_weight * F.mse_loss(z, q.detach())
        probs = hist / hist.sum().clamp_min(1.0)
        perplexity = torch.exp(-(probs * torch.log(probs + 1e-10)).sum())
        return QuantizerOutput(codes, z + (q - z).detach(), commit, perplexity)

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, codes: torch.Tensor, hist: torch.Tensor) -> None:
        sums = torch.zeros_like(self.ema_sum).index_add_(0, codes, flat)  # (k, d)
        self.ema_count.mul_(self.decay).add_(hist, alpha=1.0 - self.decay)
        self.ema_sum.mul_(self.decay).add_(sums, alpha=1.0 - self.decay)
        total = self.ema_count.sum()
        smoothed = (self.ema_count + self.epsilon) / (total + self.num_codes * self.epsilon) * total
        self.codebook.copy_(self.ema_sum / smoothed.unsqueeze(1))
        self.steps_unused.add_(1.0).masked_fill_(hist > 0, 0.0)
        dead = torch.nonzero(self.steps_unused >= self.restart_after).squeeze(1)
        if len(dead) == 0:
            return
        n = flat.shape[0]
        if n >= len(dead):  # distinct latents when the batch has enough
            pick = torch.randperm(n, device=flat.device)[: len(dead)]
        else:
            pick = torch.randint(n, (len(dead),), device=flat.device)
        self.codebook[dead] = flat[pick]
        self.ema_sum[dead] = flat[pick]
        self.ema_count[dead] = 1.0
        self.steps_unused[dead] = 0.0

    def _check_latents(self, z: torch.Tensor) -> None:
        if z.shape[-1] != self.dim:
            raise ValueError(f"latents must end with the code dimension {self.dim}, got shape {tuple(z.shape)}")
        if not z.is_floating_point():
            raise ValueError(f"latents must be floating point, got {z.dtype}")

    def extra_repr(self) -> str:
        return (
            f"codes={self.num_codes}, dim={self.dim}, decay={self.decay}, "
            f"commitment={self.commitment_weight}, restart_after={self.restart_after}"
        )
