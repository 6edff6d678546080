"""Multi-head self-attention with a fused qkv projection, interleaved RoPE and a banded temporal window.

Layout (official checkpoint layout, sections 3.7 and 4), so the authors' weights load by name:

* ``qkv``: ``Linear(d, 3d)``; output rows are ``[q | k | v]`` and inside each part the heads are
  contiguous (head ``h`` owns rows ``h*dh .. (h+1)*dh - 1``), ``dh = d / heads``.
* ``proj``: ``Linear(d, d)`` over the concatenated heads.
* Scores are scaled by ``dh^-0.5`` (paper: 1024 / 8 heads -> 128^-0.5).
* Temporal attention (``window`` set) applies RoPE to q and k (not v) with positions ``0 .. L-1``
  of the given sequence, and lets position i see only positions j with ``|i - j| <= window``.

Up to :data:`FULL_BLOCK_MAX` positions (every inference window, every training clip) the banded
attention is one masked ``scaled_dot_product_attention`` call, whose fused kernels (flash on CPUs,
memory-efficient on GPUs) never store the (L, L) scores. Longer sequences are cut into query blocks
of ``chunk`` (default: the window) positions, each attending to the ``chunk + 2 window`` keys around
it, so scores take O(L x (chunk + 2 window)) memory per head instead of O(L^2).
:func:`banded_attention_reference` is the plain masked (L, L) version, the test oracle.

Shape letters: ``...`` any leading batch shape, l sequence length (tokens or frames),
h heads, d features.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

# sequences up to this length take one masked SDPA call (the fused kernels keep O(l) memory per
# query row); longer ones take the query blocks of O(l x (chunk + 2 window)) scores
FULL_BLOCK_MAX = 512
# CPU inference (no gradient) takes query blocks of this many positions, each scoring only the keys
# of its band with plain matmuls: 2.7x faster than the one masked call for the tiny preset's
# 300-frame windows on a 2-core Zen 3 (97 x 4 heads of 16 dims, window +-16; 18.9 vs 49.8 ms)
INFERENCE_QUERY_BLOCK = 32

__all__ = [
    "FULL_BLOCK_MAX",
    "INFERENCE_QUERY_BLOCK",
    "RotaryEmbedding",
    "rotate_pairs",
    "banded_attention",
    "banded_attention_reference",
    "band_mask",
    "Attention",
]


def rotate_pairs(x: torch.Tensor) -> torch.Tensor:
    """Interleaved-pair rotation by +90 degrees: ``(x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...)``.

    Args:
        x: (..., dh) with dh even.
    Returns:
        (..., dh).
    """
    pairs = x.unflatten(-1, (-1, 2))  # (..., dh/2, 2)
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding over interleaved pairs ``(0,1), (2,3), ...`` of the full head.

    Pair i rotates by angle ``pos * base^(-2i/dh)``; every frequency fills two adjacent slots.
    The angle table ``encoding`` (max_positions, dh) is float32, a non-persistent buffer (the
    authors' checkpoint does not store it either) and grows on demand for longer sequences.

    Args:
        head_dim: dh, even (paper 128).
        base: frequency base (paper 10000).
        max_positions: initial table length (paper 4096).
    """

    def __init__(self, head_dim: int, base: float = 10000.0, max_positions: int = 4096) -> None:
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"RoPE needs an even head dimension, got {head_dim}; change width or num_heads")
        self.head_dim, self.base = head_dim, float(base)
        self.register_buffer("encoding", self._table(max_positions, None), persistent=False)
        self._trig_tables()

    def _trig_tables(self) -> None:
        """``rotation`` (length, dh/2) complex64 ``exp(i angle)`` of each pair (non-persistent)."""
        ang = self.encoding[:, ::2]
        self.register_buffer("rotation", torch.polar(torch.ones_like(ang), ang), persistent=False)

    def _table(self, length: int, device: torch.device | None) -> torch.Tensor:
        i = torch.arange(self.head_dim // 2, dtype=torch.float32, device=device)
        freq = self.base ** (-2.0 * i / self.head_dim)  # (dh/2,)
        freq = freq.repeat_interleave(2)  # (dh,) each frequency in two adjacent slots
        pos = torch.arange(length, dtype=torch.float32, device=device)
        return pos[:, None] * freq[None, :]  # (length, dh) radians

    def angles(self, length: int) -> torch.Tensor:
        """(length, dh) float32 angles of positions ``0 .. length-1``."""
        if self.encoding.device.type == "meta":
            return self._table(length, self.encoding.device)
        if length > self.encoding.shape[0]:
            self.encoding = self._table(max(length, 2 * self.encoding.shape[0]), self.encoding.device)
            self._trig_tables()
        return self.encoding[:length]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rotate (..., l, dh) by the positions ``0 .. l-1`` of axis -2; computed in float32 (float64 stays float64)."""
        if x.shape[-1] != self.head_dim:
            raise ValueError(f"RoPE of head_dim {self.head_dim} got features of size {x.shape[-1]}")
        length = x.shape[-2]
        xf = x if x.dtype == torch.float64 else x.float()
        if self.encoding.device.type == "meta":  # shape-only copies (FLOP counting)
            ang = self.angles(length)
            return (xf * ang.cos() + rotate_pairs(xf) * ang.sin()).to(x.dtype)
        self.angles(length)  # grows the tables on demand
        rot = self.rotation[:length]
        if xf.dtype == torch.float64:
            rot = rot.to(torch.complex128)
        if xf.stride(-1) != 1 or xf.storage_offset() % 2 or any(st % 2 for st in xf.stride()[:-1]):
            xf = xf.contiguous()  # view_as_complex needs adjacent pairs at even offsets
        # pair (x0, x1) as x0 + i x1 times exp(i angle): (x0 cos - x1 sin, x0 sin + x1 cos) in one kernel
        rotated = torch.view_as_complex(xf.unflatten(-1, (-1, 2))) * rot
        return torch.view_as_real(rotated).flatten(-2).to(x.dtype)


def band_mask(length: int, window: int, device=None) -> torch.Tensor:
    """(l, l) bool, True where ``|i - j| <= window`` (query i may see key j)."""
    idx = torch.arange(length, device=device)
    return (idx[:, None] - idx[None, :]).abs() <= window


@functools.lru_cache(maxsize=32)
def _band_bias(length: int, window: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(l, l) additive mask of :func:`band_mask` (0 inside, -inf outside) in the scores' dtype, built
    once per (length, window, device, dtype): every layer and decoding pass reuses it."""
    return torch.zeros(length, length, device=device, dtype=dtype).masked_fill(
        ~band_mask(length, window, device), float("-inf"))


def banded_attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int) -> torch.Tensor:
    """Full (l, l) attention with the band mask ``|i - j| <= window``: the O(l^2) oracle.

    Args:
        q, k, v: (..., l, dh).
    Returns:
        (..., l, dh).
    """
    scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5  # (..., l, l)
    scores = scores.masked_fill(~band_mask(q.shape[-2], window, q.device), float("-inf"))
    return scores.softmax(dim=-1) @ v


def banded_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    window: int,
    chunk: int | None = None,
    force_blocks: bool = False,
) -> torch.Tensor:
    """Attention where position i sees positions j with ``|i - j| <= window``, in O(l x window) memory.

    Queries are split into ``ceil(l / chunk)`` blocks; block m (queries ``m c .. m c + c - 1``)
    attends to keys ``m c - window .. m c + c - 1 + window`` (zero-padded outside ``0 .. l-1`` and
    masked). Sequences of at most ``max(chunk + 2 window, FULL_BLOCK_MAX)`` positions take one
    masked (l, l) call instead (faster on CPUs and GPUs; fused kernels keep the scores unstored),
    except in CPU inference (no gradient), where sequences over ``2 INFERENCE_QUERY_BLOCK`` take
    blocks of that many queries with plain matmuls (faster there). Equal to
    :func:`banded_attention_reference` up to float rounding.

    Args:
        q, k, v: (..., h, l, dh) (any leading shape; the last two axes are sequence and features).
        window: w >= 0, the half-width of the band.
        chunk: c >= 1, query block size (default ``max(w, 1)``). Padded queries of the last block
            (past ``l - 1``) may see padded keys, so that no score row is empty; their outputs are cut.
        force_blocks: use the blocks even for short sequences (tests).
    Returns:
        (..., h, l, dh).
    """
    length, dh = q.shape[-2], q.shape[-1]
    if window < 0:
        raise ValueError(f"window must be >= 0 frames, got {window}")
    if length <= window + 1:  # every pair is inside the band: plain attention
        return F.scaled_dot_product_attention(q, k, v)
    c = max(window, 1) if chunk is None else int(chunk)
    if c < 1:
        raise ValueError(f"chunk must be >= 1 query positions, got {chunk}")
    span = c + 2 * window  # keys seen by one block
    if (not force_blocks and not torch.is_grad_enabled() and q.device.type == "cpu"
            and length > 2 * INFERENCE_QUERY_BLOCK):
        return _query_blocks_inference(q, k, v, window, INFERENCE_QUERY_BLOCK)
    if length <= max(span, FULL_BLOCK_MAX) and not force_blocks:
        # one masked (l, l) call: the fused kernels never store the scores, and up to FULL_BLOCK_MAX
        # positions it is faster than the blocks (benchmarks/attention_speed.py)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=_band_bias(length, window, q.device, q.dtype))
    lead = q.shape[:-2]
    nc = -(-length // c)  # number of query blocks
    q_pad = F.pad(q, (0, 0, 0, nc * c - length)).unflatten(-2, (nc, c))  # (..., nc, c, dh)
    right = nc * c + window - length

    def blocks(x: torch.Tensor) -> torch.Tensor:  # (..., l, dh) -> (..., nc, span, dh)
        return F.pad(x, (0, 0, window, right)).unfold(-2, span, c).transpose(-1, -2)

    k_blk, v_blk = blocks(k), blocks(v)
    a = torch.arange(c, device=q.device)
    b = torch.arange(span, device=q.device)
    m = torch.arange(nc, device=q.device)
    j = m[:, None] * c - window + b[None, :]  # (nc, span) global key index
    pad_query = (m[:, None] * c + a[None, :]) >= length  # (nc, c) queries past the end
    mask = ((a[:, None] - b[None, :] + window).abs() <= window)[None] & (
        ((j >= 0) & (j < length))[:, None, :] | pad_query[:, :, None])
    # (nc, c, span); flatten blocks into the batch so fused kernels see 4-D inputs
    out = F.scaled_dot_product_attention(
        q_pad.reshape(-1, nc, c, dh),
        k_blk.reshape(-1, nc, span, dh),
        v_blk.reshape(-1, nc, span, dh),
        attn_mask=mask,
    )  # (B, nc, c, dh)
    return out.reshape(*lead, nc * c, dh)[..., :length, :]


def _query_blocks_inference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int, block: int) -> torch.Tensor:
    """Banded attention in blocks of ``block`` queries, each against the keys ``|i - j| <= window``
    of its rows only (at most ``block + 2 window``), with plain matmuls and softmax; no autograd
    bookkeeping, O(block x (block + 2 window)) scores per head at a time. (..., h, l, dh) in and out."""
    length = q.shape[-2]
    out = torch.empty_like(q)
    scale = q.shape[-1] ** -0.5
    for a in range(0, length, block):
        e = min(length, a + block)
        lo, hi = max(0, a - window), min(length, e + window)  # keys of rows a .. e - 1
        i = torch.arange(a, e, device=q.device)[:, None]
        j = torch.arange(lo, hi, device=q.device)[None, :]
        scores = torch.matmul(q[..., a:e, :] * scale, k[..., lo:hi, :].transpose(-1, -2))
        scores = scores.masked_fill((i - j).abs() > window, float("-inf"))  # every row keeps j = i
        out[..., a:e, :] = torch.matmul(scores.softmax(dim=-1), v[..., lo:hi, :])
    return out


class Attention(nn.Module):
    """Multi-head self-attention over axis -2 of (..., l, d).

    Args:
        dim: d, the model width (paper 1024).
        num_heads: h (paper 8); ``d % h == 0``.
        window: None for unrestricted (spatial) attention; an int w for temporal attention with
            RoPE and the band ``|i - j| <= w`` (paper 60).
        rope_base: RoPE frequency base (temporal only).
        max_positions: initial RoPE table length (temporal only).
        chunk: query block size of the banded attention (default: the window).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window: int | None = None,
        rope_base: float = 10000.0,
        max_positions: int = 4096,
        chunk: int | None = None,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by num_heads {num_heads}; change num_heads")
        self.dim, self.num_heads, self.head_dim = dim, num_heads, dim // num_heads
        self.window, self.chunk = window, chunk
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.rope = RotaryEmbedding(self.head_dim, rope_base, max_positions) if window is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., l, d) -> (..., l, d)."""
        lead, length = x.shape[:-2], x.shape[-2]
        qkv = self.qkv(x).reshape(-1, length, 3, self.num_heads, self.head_dim)  # (B, l, 3, h, dh)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, h, l, dh)
        if self.window is None:
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            q, k = self.rope(q), self.rope(k)
            out = banded_attention(q, k, v, self.window, self.chunk)
        out = out.transpose(1, 2).reshape(*lead, length, self.dim)  # heads contiguous again
        return self.proj(out)

    def forward_frames(self, x: torch.Tensor) -> torch.Tensor:
        """Temporal attention of (b, t, n, d) features over t, per token slot: ``forward`` of
        ``x.transpose(1, 2)``, transposed back, without moving x (the heads are split straight
        from the qkv projection of the (b, t, n, d) layout). (b, t, n, d) -> (b, t, n, d).
        """
        if x.dim() != 4 or x.shape[-1] != self.dim:
            raise ValueError(f"forward_frames expects (b, t, n, {self.dim}) features, got {tuple(x.shape)}")
        b, t, n, _ = x.shape
        h, dh = self.num_heads, self.head_dim
        qkv = self.qkv(x).view(b, t, n, 3, h, dh).permute(3, 0, 2, 4, 1, 5)  # (3, b, n, h, t, dh)
        q, k, v = (z.reshape(b * n, h, t, dh) for z in qkv.unbind(0))
        if self.window is None:
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            out = banded_attention(self.rope(q), self.rope(k), v, self.window, self.chunk)
        out = out.view(b, n, h, t, dh).permute(0, 3, 1, 2, 4).reshape(b, t, n, self.dim)
        return self.proj(out)

    def extra_repr(self) -> str:
        kind = "spatial" if self.window is None else f"temporal, RoPE, window +-{self.window}"
        return f"dim={self.dim}, heads={self.num_heads}, {kind}"

