"""Dual-stream spatio-temporal transformer (MotionBERT's DSTFormer) on per-frame token sets.

Input and output are (b, t, n, d): t frames, n token slots per frame, d features.

* Spatial attention mixes the n tokens of one frame (no mask, no position encoding inside).
* Temporal attention mixes the t frames of one token slot, with RoPE and the band
  ``|i - j| <= window`` (:mod:`moro.model.attention`), so any clip length runs.
* Every block is pre-norm residual: ``x + attn(LN(x))``, ``x + mlp(LN(x))``; LayerNorm eps 1e-5,
  MLP ``Linear(d, 4d) -> exact GELU -> Linear(4d, d)``.
* ``blocks_st[i]``: spatial attn, spatial MLP, temporal attn, temporal MLP.
  ``blocks_ts[i]``: the temporal pair first, then the spatial pair.
* Depth i runs both blocks on the same input and fuses them with learned per-token weights:
  ``a = softmax(ts_attn[i]([x_st | x_ts]))``, ``x = a0 x_st + a1 x_ts``.
* No final norm.

Parameter names follow the authors' checkpoint (official layout, sections 3.4, 3.6, 3.7):
``blocks_{st,ts}.{i}.{norm1_s,norm2_s,norm1_t,norm2_t,attn_s,attn_t,mlp_s,mlp_t}.*`` and
``ts_attn.{i}.{weight,bias}`` (2, 2d). Initialisation follows MotionBERT: truncated normal
(std 0.02) linear weights, zero biases, and ``ts_attn`` starting at equal weights (weight 0,
bias 0.5).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from moro.model.attention import Attention

__all__ = ["Mlp", "DSTBlock", "DSTFormer", "init_linear_trunc_normal"]


def init_linear_trunc_normal(module: nn.Module, std: float = 0.02) -> None:
    """MotionBERT / ViT init: linear weights ~ truncated N(0, std^2), biases 0; LayerNorm (1, 0)."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


INFERENCE_ROWS = 1024  # rows per block of the MLPs in CPU inference (no gradient)


class Mlp(nn.Module):
    """``fc1 (d -> r d) -> GELU (exact, erf) -> fc2 (r d -> d)``; (..., d) -> (..., d)."""

    def __init__(self, dim: int, ratio: int = 4) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, ratio * dim)
        self.act = nn.GELU()  # approximate="none": the exact erf form
        self.fc2 = nn.Linear(ratio * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or x.device.type != "cpu" or x.numel() <= INFERENCE_ROWS * x.shape[-1]:
            return self.fc2(self.act(self.fc1(x)))
        # CPU inference: row blocks keep the (rows, r d) hidden activations in cache instead of
        # writing and re-reading a (b, t, n, r d) tensor (2.5x faster on a 2-core Zen 3 for the tiny
        # preset's 300-frame windows); each row's result is the same computation
        flat = x.reshape(-1, x.shape[-1])
        out = flat.new_empty(flat.shape[0], self.fc2.out_features)
        for a in range(0, flat.shape[0], INFERENCE_ROWS):
            out[a : a + INFERENCE_ROWS] = self.fc2(self.act(self.fc1(flat[a : a + INFERENCE_ROWS])))
        return out.view(*x.shape[:-1], self.fc2.out_features)


class DSTBlock(nn.Module):
    """One spatio-temporal block; ``order`` is ``"st"`` (spatial pair first) or ``"ts"``.

    Args:
        dim: d.
        num_heads: heads of both attentions.
        window: temporal band half-width w in frames.
        order: "st" or "ts".
        mlp_ratio: hidden width of the MLPs over d.
        rope_base, max_positions: temporal RoPE settings.
        eps: LayerNorm epsilon.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window: int,
        order: str = "st",
        mlp_ratio: int = 4,
        rope_base: float = 10000.0,
        max_positions: int = 4096,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if order not in ("st", "ts"):
            raise ValueError(f"order must be 'st' or 'ts', got {order!r}")
        self.order = order
        self.norm1_s = nn.LayerNorm(dim, eps=eps)
        self.attn_s = Attention(dim, num_heads)
        self.norm2_s = nn.LayerNorm(dim, eps=eps)
        self.mlp_s = Mlp(dim, mlp_ratio)
        self.norm1_t = nn.LayerNorm(dim, eps=eps)
        self.attn_t = Attention(dim, num_heads, window=window, rope_base=rope_base, max_positions=max_positions)
        self.norm2_t = nn.LayerNorm(dim, eps=eps)
        self.mlp_t = Mlp(dim, mlp_ratio)

    def spatial(self, x: torch.Tensor) -> torch.Tensor:
        """Attention over the n tokens of each frame: (b, t, n, d) -> (b, t, n, d)."""
        x = x + self.attn_s(self.norm1_s(x))
        return x + self.mlp_s(self.norm2_s(x))

    def temporal(self, x: torch.Tensor) -> torch.Tensor:
        """Attention over the t frames of each token slot: (b, t, n, d) -> (b, t, n, d)."""
        x = x + self.attn_t.forward_frames(self.norm1_t(x))  # attend over t, per slot
        return x + self.mlp_t(self.norm2_t(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.order == "st":
            return self.temporal(self.spatial(x))
        return self.spatial(self.temporal(x))


class DSTFormer(nn.Module):
    """``depth`` pairs of (st, ts) blocks fused by learned softmax weights; (b, t, n, d) -> (b, t, n, d).

    Args:
        dim: d (paper 1024).
        depth: number of fused pairs (paper: 4 in the motion encoder, 2 in the decoder).
        num_heads: heads (paper 8).
        window: temporal band half-width in frames (paper 60).
        mlp_ratio, rope_base, max_positions, eps: see :class:`DSTBlock`.
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window: int,
        mlp_ratio: int = 4,
        rope_base: float = 10000.0,
        max_positions: int = 4096,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        kw = dict(mlp_ratio=mlp_ratio, rope_base=rope_base, max_positions=max_positions, eps=eps)
        self.blocks_st = nn.ModuleList(DSTBlock(dim, num_heads, window, "st", **kw) for _ in range(depth))
        self.blocks_ts = nn.ModuleList(DSTBlock(dim, num_heads, window, "ts", **kw) for _ in range(depth))
        self.ts_attn = nn.ModuleList(nn.Linear(2 * dim, 2) for _ in range(depth))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.apply(init_linear_trunc_normal)
        for lin in self.ts_attn:  # start as the plain average of the two streams
            nn.init.zeros_(lin.weight)
            nn.init.constant_(lin.bias, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(b, t, n, d) -> (b, t, n, d)."""
        if x.dim() != 4:
            raise ValueError(f"DSTFormer expects (b, t, n, d) features, got shape {tuple(x.shape)}")
        for block_st, block_ts, fuse in zip(self.blocks_st, self.blocks_ts, self.ts_attn):
            x_st, x_ts = block_st(x), block_ts(x)
            # softmax(fuse(cat(x_st, x_ts))) weighs the two streams; a softmax of two logits is the
            # sigmoid of their difference, so one logit (d -> 1 per stream, no (b, t, n, 2d) concatenation)
            # and one lerp give x_st * a0 + x_ts * a1 exactly (the gradients of the two rows are opposite)
            d = x_st.shape[-1]
            w, bias = fuse.weight[0] - fuse.weight[1], fuse.bias[0:1] - fuse.bias[1:2]
            logit = F.linear(x_st, w[None, :d], bias) + F.linear(x_ts, w[None, d:])  # (b, t, n, 1)
            x = torch.lerp(x_ts, x_st, torch.sigmoid(logit).to(x_ts.dtype))  # autocast: logit may be bf16
        return x
