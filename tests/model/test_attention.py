"""Fused-qkv attention, interleaved RoPE, and the O(l x window) banded temporal attention."""

import math

import pytest
import torch
import torch.nn.functional as F

from moro.model import attention as attn_mod
from moro.model.attention import (
    Attention,
    RotaryEmbedding,
    band_mask,
    banded_attention,
    banded_attention_reference,
    rotate_pairs,
)


@pytest.mark.parametrize("length", [1, 2, 7, 13, 33, 70])
@pytest.mark.parametrize("window", [0, 1, 3, 6])
@pytest.mark.parametrize("chunk", [None, 1, "w+1", "4w+3"])
def test_banded_equals_full_attention_with_band_mask(length, window, chunk):
    g = torch.Generator().manual_seed(length * 100 + window)
    q, k, v = (torch.randn(2, 3, length, 8, generator=g, dtype=torch.float64) for _ in range(3))
    c = {"w+1": window + 1, "4w+3": 4 * window + 3}.get(chunk, chunk)
    ref = banded_attention_reference(q, k, v, window)
    for force in (False, True):
        out = banded_attention(q, k, v, window, c, force_blocks=force)
        torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)


def test_blocks_larger_than_the_window_give_the_reference_gradients():
    """Query blocks wider than w + 1 leave padded queries far past the end: still finite, exact gradients."""
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 23, 8, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3))
    grads = []
    for fn in (lambda: banded_attention(q, k, v, 2, chunk=16, force_blocks=True),
               lambda: banded_attention_reference(q, k, v, 2)):
        (fn() * torch.linspace(-1, 1, 8, dtype=torch.float64)).sum().backward()
        grads.append([x.grad.clone() for x in (q, k, v)])
        for x in (q, k, v):
            x.grad = None
    for a, b in zip(*grads):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_reference_is_band_limited():
    """The oracle itself: output i changes only when a key/value within +-w of i changes."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 20, 4, generator=g, dtype=torch.float64) for _ in range(3))
    v2 = v.clone()
    v2[:, 15] += 1.0
    d = (banded_attention_reference(q, k, v2, 3) - banded_attention_reference(q, k, v, 3)).abs().sum(-1)[0]
    assert torch.all(d[:12] == 0) and torch.all(d[12:19] > 0) and torch.all(d[19:] == 0)


def test_banded_attention_memory_is_linear_in_length(monkeypatch):
    """Long sequences never build an (l, l) score matrix: every SDPA call sees at most chunk + 2w keys."""
    seen = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kw):
        seen.append((q.shape[-2], k.shape[-2]))
        return real(q, k, v, attn_mask=attn_mask, **kw)

    monkeypatch.setattr(attn_mod.F, "scaled_dot_product_attention", spy)
    length, window = 1000, 5
    q, k, v = (torch.randn(1, 2, length, 4) for _ in range(3))
    banded_attention(q, k, v, window)
    assert seen and all(nq <= window and nk <= 3 * window for nq, nk in seen)


@pytest.mark.parametrize("length", [65, 70, 97, 301])
@pytest.mark.parametrize("window", [0, 1, 3, 16, 40])
def test_cpu_inference_query_blocks_equal_the_reference(length, window, monkeypatch):
    """Without gradients on a CPU, sequences over 2 blocks take the matmul query blocks (no fused
    SDPA call, no (l, l) scores): the reference result to float64 rounding."""
    assert length > 2 * attn_mod.INFERENCE_QUERY_BLOCK
    calls = []
    real = F.scaled_dot_product_attention
    monkeypatch.setattr(attn_mod.F, "scaled_dot_product_attention", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    g = torch.Generator().manual_seed(length + window)
    q, k, v = (torch.randn(2, 3, length, 8, generator=g, dtype=torch.float64) for _ in range(3))
    with torch.no_grad():
        out = banded_attention(q, k, v, window)
    assert not calls
    torch.testing.assert_close(out, banded_attention_reference(q, k, v, window), atol=1e-12, rtol=0)


def test_rope_rotates_a_known_vector_by_hand_computed_angles():
    dh, base, pos = 4, 10000.0, 3
    rope = RotaryEmbedding(dh, base)
    x = torch.zeros(1, pos + 1, dh, dtype=torch.float32)
    x[0, pos] = torch.tensor([1.0, 0.0, 0.0, 1.0])
    out = rope(x)[0, pos].double()
    f0, f1 = 1.0, base ** (-2.0 / dh)  # frequencies of pairs (0,1) and (2,3)
    a0, a1 = pos * f0, pos * f1
    # pair (x0, x1) -> (x0 cos - x1 sin, x1 cos + x0 sin)
    expected = torch.tensor([math.cos(a0), math.sin(a0), -math.sin(a1), math.cos(a1)], dtype=torch.float64)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    assert torch.equal(rope(x)[0, 0], x[0, 0])  # position 0 is the identity


def test_rope_table_is_interleaved_fp32_and_not_saved():
    rope = RotaryEmbedding(128)
    assert rope.encoding.shape == (4096, 128) and rope.encoding.dtype == torch.float32
    assert torch.equal(rope.encoding[:, 0::2], rope.encoding[:, 1::2])  # each frequency twice, adjacent
    torch.testing.assert_close(rope.encoding[1, 2], torch.tensor(10000.0 ** (-2 / 128)))
    assert "encoding" not in rope.state_dict()
    long = torch.randn(5000, 128)  # grows on demand
    assert rope(long).shape == long.shape and rope.encoding.shape[0] >= 5000


def test_rope_scores_depend_only_on_relative_position():
    g = torch.Generator().manual_seed(0)
    rope = RotaryEmbedding(16)
    q, k = torch.randn(16, generator=g), torch.randn(16, generator=g)
    qs, ks = rope(q.expand(12, 16)), rope(k.expand(12, 16))
    torch.testing.assert_close(qs[7] @ ks[4], qs[5] @ ks[2], atol=1e-5, rtol=0)
    assert torch.equal(rotate_pairs(torch.tensor([1.0, 2, 3, 4])), torch.tensor([-2.0, 1, -4, 3]))


def _manual_attention(module: Attention, x: torch.Tensor, window: int | None) -> torch.Tensor:
    """Per-head loop over the fused qkv rows [q | k | v], heads contiguous, scale dh^-0.5."""
    d, h = module.dim, module.num_heads
    dh = d // h
    W, b = module.qkv.weight, module.qkv.bias
    heads = []
    for i in range(h):
        rows = lambda part: slice(part * d + i * dh, part * d + (i + 1) * dh)  # noqa: E731
        q, k, v = (x @ W[rows(p)].T + b[rows(p)] for p in range(3))
        if window is not None:
            q, k = module.rope(q), module.rope(k)
        s = q @ k.T * dh**-0.5
        if window is not None:
            s = s.masked_fill(~band_mask(x.shape[0], window), float("-inf"))
        heads.append(s.softmax(-1) @ v)
    return module.proj(torch.cat(heads, dim=-1))


@pytest.mark.parametrize("window", [None, 2])
def test_fused_qkv_layout_and_scale(window):
    torch.manual_seed(0)
    module = Attention(12, 3, window=window).double()
    x = torch.randn(9, 12, dtype=torch.float64)
    torch.testing.assert_close(module(x), _manual_attention(module, x, window), atol=1e-10, rtol=0)


def test_attention_batched_equals_one_by_one():
    torch.manual_seed(0)
    module = Attention(16, 2, window=3)
    x = torch.randn(3, 4, 25, 16)
    batched = module(x)
    for i in range(3):
        for j in range(4):
            torch.testing.assert_close(batched[i, j], module(x[i, j]), atol=1e-5, rtol=0)


def test_bad_arguments_name_the_fix():
    with pytest.raises(ValueError, match="num_heads"):
        Attention(10, 3)
    with pytest.raises(ValueError, match="even head dimension"):
        RotaryEmbedding(7)
    q = torch.randn(1, 20, 4)
    with pytest.raises(ValueError, match="chunk"):
        banded_attention(q, q, q, 3, chunk=0)


@pytest.mark.parametrize("window", [None, 3])
def test_forward_frames_equals_forward_over_the_transposed_layout(window):
    """DSTFormer's temporal path splits heads straight from the (b, t, n, d) layout; same values and gradients."""
    torch.manual_seed(0)
    module = Attention(16, 2, window=window).double()
    x = torch.randn(2, 11, 5, 16, dtype=torch.float64, requires_grad=True)
    ref = module(x.transpose(1, 2)).transpose(1, 2)
    out = module.forward_frames(x)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)
    g = torch.randn_like(out)
    (gx_ref,) = torch.autograd.grad(ref, x, g)
    (gx,) = torch.autograd.grad(out, x, g)
    torch.testing.assert_close(gx, gx_ref, atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match=r"\(b, t, n, 16\)"):
        module.forward_frames(x[0])


def test_rope_accepts_any_strides_and_low_precision():
    torch.manual_seed(0)
    rope = RotaryEmbedding(4)
    big = torch.randn(3, 7, 9)
    odd = big[..., 1:5]  # odd storage offset: pairs are not at even addresses
    torch.testing.assert_close(rope(odd), rope(odd.contiguous()), atol=0, rtol=0)
    half = rope(odd.bfloat16())
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), rope(odd.bfloat16().float()).bfloat16().float(), atol=0, rtol=0)
