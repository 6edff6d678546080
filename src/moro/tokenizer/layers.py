"""Spatially varying mesh convolution and learned pooling (Zhou et al. 2020), gather-based.

One `MeshLayer` is one layer of the authors' fully convolutional mesh autoencoder, with the same
parameter names and shapes (`weights`, `bias`, `w_weights`, `p_neighbors`, `weight_res`):

    conv(x)[u]  = sum_m K(u, m) x[nbr(u, m)] + bias,  K(u, m) = sum_w w_weights[u, m, w] mask[u, m] weights[w]
    pool(x)[u]  = sum_m a(u, m) x[nbr(u, m)],         a = |p_neighbors| mask / (sum_m |p_neighbors| mask + 1e-8)
    layer(x)    = ELU(conv(x)) sqrt(1 - r) + residual(x) sqrt(r)

with `weights[w]` read row-major as an (out, in) matrix, the input padded by one zero row at
index v (the padding id of the neighbour list), residual = identity (same vertices) or pool
(different vertex count), preceded by `weight_res` when channels change. r = 0: conv layer,
r = 1: pooling/unpooling layer.

Memory: features are vertex-major, (v, b, c), so a neighbour gather copies whole contiguous
rows. `neighbour_mix` gathers in bounded chunks and recomputes the gather in backward, so the
(u, m, b, i) neighbour tensor is never stored: a conv keeps its input and the (u, w, b, i)
mixed features for autograd. No (v, v) matrix and no per-slot (o, i) kernel is ever formed.
On CUDA the backward scatter (index_add_) is not bitwise deterministic.

Shape letters: v input vertices, u output vertices, b batch, m neighbour slots, w basis kernels
(M), i / o input / output feature channels, d any feature width.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from moro.tokenizer.neighbours import NeighbourList

__all__ = ["neighbour_mix", "mesh_conv", "mesh_pool", "pool_weights", "MeshLayer"]

_CHUNK_ELEMENTS = 1 << 24  # largest transient gather (elements) in neighbour_mix: 64 MiB in float32


class _NeighbourMix(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, ids: torch.Tensor, coeff: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, ids, coeff)
        u, m = ids.shape
        out = x.new_empty(u, coeff.shape[2], x.shape[1])
        for s in _chunks(u, m * x.shape[1]):
            g = x.index_select(0, ids[s].reshape(-1)).view(-1, m, x.shape[1])  # (u_chunk, m, d)
            torch.bmm(coeff[s].transpose(1, 2), g, out=out[s])
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, ids, coeff = ctx.saved_tensors
        u, m = ids.shape
        grad_out = grad_out.contiguous()
        grad_x = torch.zeros_like(x) if ctx.needs_input_grad[0] else None
        grad_coeff = torch.empty_like(coeff) if ctx.needs_input_grad[2] else None
        for s in _chunks(u, m * x.shape[1]):
            idx = ids[s].reshape(-1)
            if grad_x is not None:  # scatter d out / d x back to the gathered rows
                grad_x.index_add_(0, idx, torch.bmm(coeff[s], grad_out[s]).view(-1, x.shape[1]))
            if grad_coeff is not None:  # recompute the gather instead of storing it
                g = x.index_select(0, idx).view(-1, m, x.shape[1])
                torch.bmm(g, grad_out[s].transpose(1, 2), out=grad_coeff[s])
        return grad_x, None, grad_coeff


def _chunks(u: int, row_elements: int):
    step = max(1, _CHUNK_ELEMENTS // max(row_elements, 1))
    return [slice(a, min(a + step, u)) for a in range(0, u, step)]


def neighbour_mix(x: torch.Tensor, ids: torch.Tensor, coeff: torch.Tensor) -> torch.Tensor:
    """Per-vertex weighted sums of neighbour rows: out[u, k] = sum_m coeff[u, m, k] x[ids[u, m]].

    Args:
        x: (v, d) rows; padding ids must point at a zero row (or carry zero coefficients).
        ids: (u, m) int64 row indices into x.
        coeff: (u, m, k) mixing coefficients (k mixtures), same dtype as x.

    Returns:
        (u, k, d). Differentiable in x and coeff; memory O(v d + u k d) plus one bounded chunk.
        Under autocast (bf16 / fp16 training) both operands are promoted to the wider of their
        dtypes, so the mixed-precision forward never feeds bmm two different dtypes.
    """
    if x.dtype != coeff.dtype:
        dtype = torch.promote_types(x.dtype, coeff.dtype)
        x, coeff = x.to(dtype), coeff.to(dtype)
    return _NeighbourMix.apply(x.contiguous(), ids, coeff.contiguous())


def mesh_conv(
    x: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor, w_weights: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """Spatially varying mesh convolution (no activation), vertex-major.

    Args:
        x: (v, b, i) input features.
        ids: (u, m) neighbour ids, padding = v.  mask: (u, m) float, 0 on padding.
        weights: (w, o * i) basis kernels, row-major (o, i).  w_weights: (u, m, w).  bias: (o,).

    Returns:
        (u, b, o). Mixes the m neighbours into w basis coefficients first, (u, w, b, i), then
        applies the basis as one matmul; equal to the authors' formula at lower cost and memory.
    """
    v, b, c_in = x.shape
    num_basis, u = weights.shape[0], ids.shape[0]
    basis = weights.view(num_basis, -1, c_in)  # (w, o, i)
    coeff = w_weights * mask.unsqueeze(-1)  # (u, m, w)
    x_pad = F.pad(x, (0, 0, 0, 0, 0, 1)).view(v + 1, b * c_in)  # row v = 0 (padding)
    mixed = neighbour_mix(x_pad, ids, coeff).view(u, num_basis, b, c_in)
    mixed = mixed.permute(0, 2, 1, 3).reshape(u * b, num_basis * c_in)  # (u b, w i)
    basis_t = basis.permute(0, 2, 1).reshape(num_basis * c_in, -1)  # (w i, o)
    return torch.addmm(bias, mixed, basis_t).view(u, b, -1)


def pool_weights(p_neighbors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(u, m) pooling weights: |p_neighbors| on used slots, each row normalised to sum 1 (+1e-8)."""
    a = p_neighbors.abs() * mask
    return a / (a.sum(dim=1, keepdim=True) + 1e-8)


def mesh_pool(x: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, p_neighbors: torch.Tensor) -> torch.Tensor:
    """Learned pooling / unpooling, vertex-major: (v, b, d) -> (u, b, d), convex combinations of neighbours."""
    v, b, c = x.shape
    x_pad = F.pad(x, (0, 0, 0, 0, 0, 1)).view(v + 1, b * c)
    return neighbour_mix(x_pad, ids, pool_weights(p_neighbors, mask).unsqueeze(-1)).view(-1, b, c)


class MeshLayer(nn.Module):
    """One conv / pool / mixed layer over a fixed neighbour list (module docstring).

    Args:
        neighbours: u output vertices x m slots over v input vertices.
        in_channels, out_channels: i and o.
        num_basis: M, number of basis kernels (only used when residual_rate < 1).
        residual_rate: r in [0, 1]; 0 = conv only, 1 = pool/identity only.
        activation: apply ELU to the conv branch (the authors do on every conv layer but the last).
    """

    def __init__(
        self,
        neighbours: NeighbourList,
        in_channels: int,
        out_channels: int,
        num_basis: int = 9,
        residual_rate: float = 0.0,
        activation: bool = True,
    ) -> None:
        super().__init__()
        if not 0.0 <= residual_rate <= 1.0:
            raise ValueError(f"residual_rate must lie in [0, 1], got {residual_rate}")
        if residual_rate == 1.0 and in_channels != out_channels:
            raise ValueError("a pure pooling layer (residual_rate=1) keeps the channel count; set out_channels = in_channels")
        self.num_in, self.num_out = neighbours.num_in, neighbours.num_out
        self.in_channels, self.out_channels = in_channels, out_channels
        self.residual_rate, self.activation = float(residual_rate), activation
        # Topology, not learned: moved by .to(device) but kept out of the state dict.
        self.register_buffer("ids", torch.as_tensor(neighbours.ids, dtype=torch.long), persistent=False)
        self.register_buffer("mask", torch.as_tensor(neighbours.mask, dtype=torch.float32), persistent=False)
        u, m = neighbours.ids.shape
        self._avg_neighbours = max(float(neighbours.counts.mean()), 1.0)
        self.weights = self.bias = self.w_weights = self.p_neighbors = self.weight_res = None
        if residual_rate < 1.0:
            self.weights = nn.Parameter(torch.empty(num_basis, out_channels * in_channels))
            self.bias = nn.Parameter(torch.empty(out_channels))
            self.w_weights = nn.Parameter(torch.empty(u, m, num_basis))
        if residual_rate > 0.0:
            if self.num_in != self.num_out:  # else the residual is the identity, vertex by vertex
                self.p_neighbors = nn.Parameter(torch.empty(u, m))
            if in_channels != out_channels:
                self.weight_res = nn.Parameter(torch.empty(out_channels, in_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Variance-preserving init: Var(conv out) ~ Var(in); pooling starts as a plain neighbour mean."""
        if self.weights is not None:
            num_basis = self.weights.shape[0]
            nn.init.normal_(self.weights, std=1.0 / math.sqrt(self.in_channels))
            nn.init.normal_(self.w_weights, std=1.0 / math.sqrt(num_basis * self._avg_neighbours))
            nn.init.zeros_(self.bias)
        if self.p_neighbors is not None:
            nn.init.ones_(self.p_neighbors)
        if self.weight_res is not None:
            nn.init.normal_(self.weight_res, std=1.0 / math.sqrt(self.in_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Vertex-major features (v, b, i) -> (u, b, o)."""
        if x.dim() != 3 or x.shape[0] != self.num_in or x.shape[2] != self.in_channels:
            raise ValueError(
                f"expected vertex-major features ({self.num_in}, b, {self.in_channels}), got {tuple(x.shape)}; "
                "the mesh does not match this layer's hierarchy level"
            )
        r = self.residual_rate
        out = None
        if self.weights is not None:
            out = mesh_conv(x, self.ids, self.mask.to(x.dtype), self.weights, self.w_weights, self.bias)
            if self.activation:
                out = F.elu(out)
            if r > 0.0:
                out = out * math.sqrt(1.0 - r)
        if r > 0.0:
            res = x if self.weight_res is None else x @ self.weight_res.t()
            res = res if self.p_neighbors is None else mesh_pool(res, self.ids, self.mask.to(x.dtype), self.p_neighbors)
            res = res * math.sqrt(r) if r < 1.0 else res
            out = res if out is None else out + res
        return out

    def extra_repr(self) -> str:
        kind = {0.0: "conv", 1.0: "pool" if self.num_in != self.num_out else "identity"}.get(self.residual_rate, "mixed")
        return (
            f"{kind}, vertices {self.num_in}->{self.num_out}, channels {self.in_channels}->{self.out_channels}, "
            f"slots {self.ids.shape[1]}, residual_rate={self.residual_rate}, elu={self.activation}"
        )
