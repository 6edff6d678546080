"""Image encoder: authors' layout, sine PE, post-norm layers, CLIFF head, per-frame independence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from moro.geometry.camera import cliff_bbox_info, cliff_to_full_translation, intrinsics
from moro.geometry.rotations import rot6d_to_rotmat, rotmat_to_rot6d
from moro.model.backbones import build_backbone
from moro.model.image_encoder import (
    OFFICIAL_PREFIX,
    PRESETS,
    ImageBranch,
    ImageEncoder,
    ImageEncoderConfig,
    build_image_backbone,
    image_encoder_state_from_official,
    sine_position_encoding_2d,
)

B, T = 2, 3


@pytest.fixture(autouse=True)
def _one_thread():
    """These problems are small: OpenMP threads that wait on each other make them several times
    slower on shared CPU cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# a small_cnn encoder with the dimensions these tests spell out (8 x 6 patches of 128, width 128)
SMALL = dict(width=128, num_heads=4, num_layers=2, backbone="small_cnn",
             backbone_cfg={"dim": 128, "img_size": [128, 96], "channels": [16, 32, 64]}, backbone_dim=128, backbone_grid=(8, 6))


def tiny_encoder(seed: int = 0, perturb: bool = True) -> ImageEncoder:
    torch.manual_seed(seed)
    enc = ImageEncoder(ImageEncoderConfig(**SMALL))
    if perturb:  # break the symmetric init (unit LayerNorms, zero biases)
        with torch.no_grad():
            for p in enc.parameters():
                p.add_(0.05 * torch.randn_like(p))
    return enc


def inputs(seed: int = 0, b: int = B, t: int = T):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(b, t, 48, 128, generator=g)
    K = intrinsics(1000.0, 1000.0, 960.0, 540.0).expand(b, t, 3, 3)
    bbox = torch.stack(
        (
            960 + 400 * torch.rand(b, t, generator=g),  # cx, px
            540 + 200 * torch.rand(b, t, generator=g),  # cy, px
            1 + 2 * torch.rand(b, t, generator=g),  # s: box side 200 s px
        ),
        dim=-1,
    )
    return tokens, cliff_bbox_info(bbox, K)


def official_image_encoder_table(width=1024, d_backbone=1280, layers=2, ffn=4096) -> dict[str, tuple[int, ...]]:
    """Section 3.5 of the layout doc, without the ``mask_transformer.dst_former.`` prefix."""
    t = {
        "img_bbox_embed.weight": (width, 3),
        "img_bbox_embed.bias": (width,),
        "img_embed.weight": (width, d_backbone),
        "img_embed.bias": (width,),
        "img_traj_regressor.weight": (9, width),
        "img_traj_regressor.bias": (9,),
    }
    for i in range(layers):
        pre = f"img_transformer.transformer.layers.{i}."
        t |= {
            pre + "self_attn.in_proj_weight": (3 * width, width),
            pre + "self_attn.in_proj_bias": (3 * width,),
            pre + "self_attn.out_proj.weight": (width, width),
            pre + "self_attn.out_proj.bias": (width,),
            pre + "linear1.weight": (ffn, width),
            pre + "linear1.bias": (ffn,),
            pre + "linear2.weight": (width, ffn),
            pre + "linear2.bias": (width,),
        }
        for n in ("norm1", "norm2"):
            t |= {pre + f"{n}.weight": (width,), pre + f"{n}.bias": (width,)}
    return t


def test_paper_preset_matches_authors_keys_on_meta():
    with torch.device("meta"):
        enc = ImageEncoder(ImageEncoderConfig.paper())
    got = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    assert len(got) == 30
    assert got == official_image_encoder_table()
    assert sum(p.numel() for p in enc.parameters()) == 26_517_513  # "image encoder: 26.5M"
    assert enc.config.num_patches == 192
    layer = enc.img_transformer.transformer.layers[0]
    assert not layer.norm_first and layer.norm1.eps == 1e-5 and layer.activation is F.gelu
    assert enc.img_transformer.transformer.norm is None  # no final norm


def test_output_shapes_tiny():
    cfg = ImageEncoderConfig.tiny()
    enc = ImageEncoder(cfg)
    _, bbox = inputs()
    out = enc(torch.randn(B, T, cfg.num_patches, cfg.backbone_dim), bbox)
    assert out.patch_features.shape == (B, T, cfg.num_patches, cfg.width) == (B, T, 12, 64)
    assert out.bbox_feature.shape == (B, T, cfg.width)
    assert out.coarse_weak.shape == (B, T, 9)
    assert out.coarse_rotmat.shape == (B, T, 3, 3)
    assert out.coarse_rot6d.shape == (B, T, 6)
    assert out.coarse_transl.shape == (B, T, 3)
    assert out.coarse_traj.shape == (B, T, 9)


def _numpy_sine_pe(h: int, w: int, dim: int) -> np.ndarray:
    """The formula of section 4, channel by channel (float64)."""
    half = dim // 2
    rows, cols = np.meshgrid(np.arange(1, h + 1), np.arange(1, w + 1), indexing="ij")  # (h, w) positions 1..n
    pe = np.zeros((h, w, dim))
    for ch in range(dim):
        pos, n, j = (rows, h, ch) if ch < half else (cols, w, ch - half)
        arg = pos / (n + 1e-6) * 2 * math.pi / 10000 ** (2 * (j // 2) / half)
        pe[:, :, ch] = np.sin(arg) if j % 2 == 0 else np.cos(arg)
    return pe.reshape(h * w, dim)  # row-major: h outer, w inner


@pytest.mark.parametrize("h, w, dim", [(16, 12, 1024), (8, 6, 128), (3, 5, 8)])
def test_sine_pe_equals_numpy_formula(h, w, dim):
    ref = _numpy_sine_pe(h, w, dim)
    got = sine_position_encoding_2d(h, w, dim, dtype=torch.float64).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-9)


def test_transformer_input_is_patches_plus_pe_then_bbox_token_last():
    enc = tiny_encoder()
    with torch.no_grad():
        enc.img_embed.weight.zero_()
        enc.img_embed.bias.zero_()
    seen = {}
    enc.img_transformer.register_forward_pre_hook(lambda m, args: seen.setdefault("x", args[0]))
    tokens, bbox = inputs()
    enc(tokens, bbox)
    x = seen["x"]
    assert x.shape == (B, T, 49, 128)
    pe = torch.from_numpy(_numpy_sine_pe(8, 6, 128)).float()
    torch.testing.assert_close(x[:, :, :48], pe.expand(B, T, 48, 128), atol=1e-6, rtol=0)
    torch.testing.assert_close(x[:, :, 48], enc.img_bbox_embed(bbox))  # no PE on the bbox token


def _post_norm_reference(layer, x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """x = LN(x + SA(x)); x = LN(x + FFN(x)), fused qkv split [q | k | v] with contiguous heads."""
    sa = layer.self_attn
    d = x.shape[-1]
    hd = d // num_heads
    qkv = x @ sa.in_proj_weight.T + sa.in_proj_bias
    q, k, v = (qkv[..., i * d : (i + 1) * d].unflatten(-1, (num_heads, hd)).transpose(-2, -3) for i in range(3))
    att = (q @ k.transpose(-1, -2) / math.sqrt(hd)).softmax(-1)
    y = (att @ v).transpose(-2, -3).flatten(-2) @ sa.out_proj.weight.T + sa.out_proj.bias
    x = F.layer_norm(x + y, (d,), layer.norm1.weight, layer.norm1.bias, eps=1e-5)
    y = x @ layer.linear1.weight.T + layer.linear1.bias
    y = 0.5 * y * (1 + torch.erf(y / math.sqrt(2)))
    y = y @ layer.linear2.weight.T + layer.linear2.bias
    return F.layer_norm(x + y, (d,), layer.norm2.weight, layer.norm2.bias, eps=1e-5)


@pytest.mark.parametrize("mode", ["train", "eval_no_grad"])  # eval + no_grad takes PyTorch's fused fast path
def test_post_norm_stack_equals_hand_written_reference(mode):
    enc = tiny_encoder()
    x = torch.randn(B, T, 49, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = x.flatten(0, 1)
        for layer in enc.img_transformer.transformer.layers:
            ref = _post_norm_reference(layer, ref, num_heads=4)
        ref = ref.unflatten(0, (B, T))
    if mode == "train":
        out = enc.train().img_transformer(x)
    else:
        with torch.no_grad():
            out = enc.eval().img_transformer(x)
    torch.testing.assert_close(out, ref, atol=2e-5, rtol=1e-4)


def test_coarse_trajectory_is_gram_schmidt_and_cliff():
    enc = tiny_encoder()
    tokens, bbox = inputs()
    out = enc(tokens, bbox)
    weak = out.coarse_weak
    torch.testing.assert_close(out.coarse_transl, cliff_to_full_translation(weak[..., 6], weak[..., 7:9], bbox))
    R = rot6d_to_rotmat(weak[..., :6])
    torch.testing.assert_close(out.coarse_rotmat, R)
    torch.testing.assert_close(out.coarse_rot6d, rotmat_to_rot6d(R))
    eye = torch.eye(3).expand(B, T, 3, 3)
    torch.testing.assert_close(R @ R.transpose(-1, -2), eye, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(B, T), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.coarse_weak, enc.img_traj_regressor(out.bbox_feature))


def test_batched_equals_one_by_one_and_frames_are_independent():
    enc = tiny_encoder().eval()
    tokens, bbox = inputs()
    with torch.no_grad():
        full = enc(tokens, bbox)
        for b in range(B):
            for t in range(T):
                one = enc(tokens[b : b + 1, t : t + 1], bbox[b : b + 1, t : t + 1])
                torch.testing.assert_close(one.patch_features[0, 0], full.patch_features[b, t], atol=1e-5, rtol=1e-5)
                torch.testing.assert_close(one.coarse_traj[0, 0], full.coarse_traj[b, t], atol=1e-5, rtol=1e-5)
        tokens2 = tokens.clone()
        tokens2[:, 1] += 1.0  # change frame 1 only
        other = enc(tokens2, bbox)
    torch.testing.assert_close(other.coarse_traj[:, [0, 2]], full.coarse_traj[:, [0, 2]], atol=1e-6, rtol=0)
    assert not torch.allclose(other.coarse_traj[:, 1], full.coarse_traj[:, 1])


@pytest.mark.parametrize("frozen", [False, True])
def test_gradients_end_to_end_with_backbone(frozen):
    cfg = ImageEncoderConfig.tiny()
    torch.manual_seed(0)
    backbone = build_image_backbone(cfg, frozen=frozen)
    enc = ImageEncoder(cfg).train()
    backbone.train()
    images = torch.randn(1, 2, 3, 128, 96)
    _, bbox = inputs(b=1, t=2)
    out = enc(backbone.encode_frames(images), bbox)
    loss = out.patch_features.square().mean() + out.coarse_transl.square().mean() + out.coarse_rot6d.sum()
    loss.backward()
    for n, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {n}"
    for n, p in backbone.named_parameters():
        if frozen:
            assert p.grad is None and not p.requires_grad, n
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches backbone {n}"


def test_config_errors_and_round_trip():
    assert ImageEncoderConfig.from_dict(ImageEncoderConfig.tiny().to_dict()) == ImageEncoderConfig.tiny()
    cfg = ImageEncoderConfig(**SMALL)
    assert ImageEncoderConfig.from_dict(cfg.to_dict()) == cfg
    assert set(PRESETS) == {"paper", "tiny"}
    enc = ImageEncoder(cfg)
    with pytest.raises(ValueError, match=r"backbone_grid=\(16, 12\)"):
        enc.check_backbone(build_backbone("small_cnn", channels=(16, 32, 64)))  # 4 stages at 256 x 192 -> 16 x 12
    with pytest.raises(ValueError, match="backbone_dim=64"):
        build_image_backbone(ImageEncoderConfig(**{**cfg.to_dict(), "backbone_cfg": {"dim": 64}}))
    with pytest.raises(ValueError, match=r"\(b, t, 48, 128\)"):
        enc(torch.zeros(2, 192, 128), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="bbox_info"):
        enc(torch.zeros(1, 2, 48, 128), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="num_heads"):
        ImageEncoderConfig(width=128, num_heads=5)


def test_official_state_dict_loads_strictly():
    src = tiny_encoder(seed=1)
    official = {OFFICIAL_PREFIX + k: v for k, v in src.state_dict().items()}
    official |= {"backbone.model.pos_embed": torch.zeros(1), OFFICIAL_PREFIX + "m_pos_enc": torch.zeros(1)}
    dst = tiny_encoder(seed=2)
    dst.load_state_dict(image_encoder_state_from_official(official), strict=True)
    tokens, bbox = inputs()
    torch.testing.assert_close(dst(tokens, bbox).coarse_traj, src(tokens, bbox).coarse_traj)


def test_image_branch_equals_backbone_then_encoder_and_rebuilds_from_config():
    cfg = ImageEncoderConfig.tiny()
    torch.manual_seed(0)
    branch = ImageBranch(cfg, chunk_size=2).eval()
    images = torch.randn(1, 3, 3, 128, 96)
    _, bbox = inputs(b=1, t=3)
    with torch.no_grad():
        out = branch(images, bbox)
        ref = branch.encoder(branch.backbone(images[0]).unsqueeze(0), bbox)
        rebuilt = ImageBranch(ImageEncoderConfig.from_dict(cfg.to_dict())).eval()
        rebuilt.load_state_dict(branch.state_dict(), strict=True)
        again = rebuilt(images, bbox)
    torch.testing.assert_close(out.patch_features, ref.patch_features, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(again.coarse_traj, out.coarse_traj)
    with pytest.raises(ValueError, match="backbone_grid"):
        ImageBranch(cfg, backbone=build_backbone("small_cnn", channels=(16, 32, 64)))
