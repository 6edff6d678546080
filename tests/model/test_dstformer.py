"""DSTFormer blocks: order of the streams, fusion, band-limited temporal mixing, official sub-key names."""

import pytest
import torch

from moro.model.dstformer import DSTBlock, DSTFormer

# official checkpoint layout, table 3.7: 24 sub-keys per block
OFFICIAL_BLOCK_KEYS = {
    f"{n}_{s}.{p}" for n in ("norm1", "norm2") for s in ("s", "t") for p in ("weight", "bias")
} | {f"attn_{s}.{l}.{p}" for s in ("s", "t") for l in ("qkv", "proj") for p in ("weight", "bias")} | {
    f"mlp_{s}.{l}.{p}" for s in ("s", "t") for l in ("fc1", "fc2") for p in ("weight", "bias")
}


@pytest.fixture(scope="module")
def former():
    torch.manual_seed(0)
    return DSTFormer(dim=32, depth=2, num_heads=4, window=3).eval()


def test_shapes_and_no_final_norm(former):
    x = torch.randn(2, 11, 5, 32)
    assert former(x).shape == (2, 11, 5, 32)
    assert not any(k.startswith(("norm.", "final")) for k in former.state_dict())


def test_block_sub_keys_match_official_layout():
    block = DSTBlock(64, 4, window=60)
    keys = set(block.state_dict())
    assert keys == OFFICIAL_BLOCK_KEYS and len(keys) == 24
    sd = block.state_dict()
    assert sd["attn_t.qkv.weight"].shape == (192, 64) and sd["mlp_s.fc1.weight"].shape == (256, 64)
    assert block.norm1_s.eps == 1e-5 and block.mlp_s.act.approximate == "none"


def test_depth_keys_and_fusion_shape(former):
    sd = former.state_dict()
    assert sd["ts_attn.1.weight"].shape == (2, 64) and sd["ts_attn.1.bias"].shape == (2,)
    assert {k.split(".")[0] for k in sd} == {"blocks_st", "blocks_ts", "ts_attn"}


def test_stream_orders():
    torch.manual_seed(1)
    st, ts = DSTBlock(16, 2, 2, "st"), DSTBlock(16, 2, 2, "ts")
    ts.load_state_dict(st.state_dict())
    x = torch.randn(1, 6, 4, 16)
    torch.testing.assert_close(st(x), st.temporal(st.spatial(x)))
    torch.testing.assert_close(ts(x), st.spatial(st.temporal(x)))
    assert not torch.allclose(st(x), ts(x))


def test_initial_fusion_is_the_average_of_both_streams():
    torch.manual_seed(2)
    f = DSTFormer(16, 1, 2, 2).eval()
    x = torch.randn(1, 5, 3, 16)
    torch.testing.assert_close(f(x), 0.5 * (f.blocks_st[0](x) + f.blocks_ts[0](x)))


def test_fusion_equals_the_softmax_over_the_concatenated_streams_with_its_gradients():
    """The sigmoid / lerp form equals the authors' softmax(Linear(2d -> 2)(cat(x_st, x_ts))) weighting."""
    torch.manual_seed(3)
    f = DSTFormer(16, 1, 2, 2).double().eval()
    torch.nn.init.normal_(f.ts_attn[0].weight, std=0.5)
    torch.nn.init.normal_(f.ts_attn[0].bias, std=0.5)
    x = torch.randn(1, 5, 3, 16, dtype=torch.float64)
    x_st, x_ts = f.blocks_st[0](x), f.blocks_ts[0](x)
    alpha = f.ts_attn[0](torch.cat((x_st, x_ts), -1)).softmax(-1)
    ref = x_st * alpha[..., :1] + x_ts * alpha[..., 1:]
    out = f(x)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)
    g = torch.randn_like(out)
    params = [f.ts_attn[0].weight, f.ts_attn[0].bias]
    torch.testing.assert_close(torch.autograd.grad(out, params, g), torch.autograd.grad(ref, params, g),
                               atol=1e-12, rtol=0)


def test_spatial_attention_stays_within_a_frame_and_temporal_within_the_window():
    """Depth 1: each block has one temporal attention, so frame i only sees frames i-w .. i+w."""
    torch.manual_seed(3)
    f = DSTFormer(16, 1, 2, window=2).eval()
    x = torch.randn(1, 12, 3, 16)
    x2 = x.clone()
    x2[:, 8, 1] += torch.randn(16)  # one token of frame 8 (not a uniform shift: LayerNorm removes those)
    d = (f(x2) - f(x)).abs().sum(dim=(0, 2, 3))
    assert torch.all(d[:6] == 0) and torch.all(d[6:11] > 0) and torch.all(d[11:] == 0)


def test_batched_equals_one_by_one(former):
    x = torch.randn(3, 9, 4, 32)
    out = former(x)
    for i in range(3):
        torch.testing.assert_close(out[i : i + 1], former(x[i : i + 1]), atol=1e-5, rtol=0)


def test_any_length_runs_including_beyond_the_window(former):
    for t in (1, 2, 40):
        assert former(torch.randn(1, t, 2, 32)).shape == (1, t, 2, 32)


def test_bf16_autocast_forward_matches_float32(former):
    """Under bf16 autocast (training with --precision bf16-mixed) the fusion logit comes out in bf16
    while the streams stay float32: the lerp must still run and give the float32 result to bf16 accuracy."""
    x = torch.randn(2, 7, 5, 32)
    ref = former(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = former(x)
    assert out.shape == ref.shape
    torch.testing.assert_close(out.float(), ref, atol=0.1, rtol=0.05)
    assert (out.float() - ref).abs().mean() < 0.02


def test_mlp_row_blocks_in_cpu_inference_equal_the_whole_tensor():
    """Without gradients the MLP runs in blocks of INFERENCE_ROWS rows: same result, any row count."""
    from moro.model.dstformer import INFERENCE_ROWS, Mlp

    torch.manual_seed(1)
    mlp = Mlp(16).eval()
    for shape in [(1, 3, 5, 16), (2, 37, 29, 16), (1, INFERENCE_ROWS, 1, 16)]:
        x = torch.randn(shape)
        whole = mlp(x)  # gradients on: one pass over the whole tensor
        with torch.no_grad():
            blocks = mlp(x)
        assert blocks.shape == whole.shape and not blocks.requires_grad
        torch.testing.assert_close(blocks, whole.detach(), rtol=1e-5, atol=1e-6)
    assert 2 * 37 * 29 > INFERENCE_ROWS  # the second shape really is split
