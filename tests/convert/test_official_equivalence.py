"""Equivalence: the converted model computes what section 4 of the layout says the authors' model computes.

A synthetic release with the authors' 792 names (scaled widths, seeded values) is converted; the
moro model loaded from the output is compared with ``official_reference`` (plain torch on the
authors' key names and connection files). Both sides run in float64, so the 1e-5 tolerance
measures convention differences, not float32 rounding; one test checks the float32 model too.
"""

import math

import numpy as np
import pytest
import torch
from official_release import Dims, stats_vector

import official_reference as ref
from moro.geometry import rot6d_to_rotmat, rotmat_to_rot6d
from moro.model import ImageFeatures, MoRo

D = Dims.scaled()
B, T = 2, 8  # T > window + 1, so the temporal band cuts attention


def close(actual, expected, atol=1e-5):
    torch.testing.assert_close(actual, expected, rtol=0, atol=atol)


@pytest.fixture(scope="module")
def model64(converted):
    return MoRo.from_checkpoint(converted[1]).eval().double()


@pytest.fixture(scope="module")
def sd64(release):
    return {k: v.double() if v.is_floating_point() else v for k, v in release.state.items()}


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(1)
    images = torch.randn(B, T, 3, *D.image_size, generator=g, dtype=torch.float64)
    bbox = torch.tensor([0.1, -0.2, 0.8], dtype=torch.float64)
    bbox = bbox + 0.05 * torch.randn(B, T, 3, generator=g, dtype=torch.float64)
    ids = torch.randint(0, D.codes + 1, (B, T, D.tokens), generator=g)  # [MASK] = codes included
    return images, bbox, ids


@pytest.fixture(scope="module")
def reference(sd64, inputs, release):
    """The authors' forward on the release's tensors: ViT -> image encoder -> canonical input -> motion -> decoder."""
    images, bbox, ids = inputs
    tokens = ref.vit(sd64, images.flatten(0, 1), D.vit_heads).unflatten(0, (B, T))
    patches, coarse = ref.image_encoder(sd64, tokens, bbox, D.grid, D.heads)
    cano = ref.canonical_input(coarse, stats_vector(release.stats, "Mean"), stats_vector(release.stats, "Std"))
    motion = ref.motion_encoder(sd64, ids, cano, D.heads, D.window)
    decoder = ref.decoder(sd64, motion[0], patches, coarse, D.heads, D.window)
    return dict(tokens=tokens, patches=patches, coarse=coarse, cano=cano, motion=motion, decoder=decoder)


@pytest.fixture(scope="module")
def ours(model64, inputs):
    images, bbox, ids = inputs
    with torch.no_grad():
        tokens = model64.backbone.encode_frames(images)
        enc = model64.image_encoder(tokens, bbox)
        cano = model64.canonical_input(enc.coarse_traj)
        out = model64(ids, cano, ImageFeatures.from_encoder_output(enc))
    return dict(tokens=tokens, enc=enc, cano=cano, out=out)


def test_official_rope_on_a_known_vector(model64):
    """Unit vector e_{2i} at position p -> (cos, sin)(p w_i) in slots (2i, 2i+1); e_{2i+1} -> (-sin, cos)."""
    attn = model64.decoder.d_transformer.blocks_st[0].attn_t
    dh = D.width // D.heads
    positions = 7
    for i in (0, 1, dh // 2 - 1):
        w = 10000.0 ** (-2 * i / dh)
        for odd in (0, 1):
            x = torch.zeros(positions, dh, dtype=torch.float64)
            x[:, 2 * i + odd] = 1.0
            y = attn.rope(x)
            ang = torch.arange(positions, dtype=torch.float64) * w
            want = torch.zeros_like(x)
            want[:, 2 * i], want[:, 2 * i + 1] = (ang.cos(), ang.sin()) if odd == 0 else (-ang.sin(), ang.cos())
            close(y, want, atol=1e-6)  # moro computes RoPE in float32
    x = torch.randn(3, positions, dh, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    close(attn.rope(x), ref.rope(x), atol=1e-5)


def test_official_6d_row_convention():
    """6D = first two ROWS [R00 R01 R02 R10 R11 R12]; decoding is Gram-Schmidt stacked as rows."""
    a, b = math.radians(30), math.radians(45)
    Rz = torch.tensor([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]], dtype=torch.float64)
    Rx = torch.tensor([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]], dtype=torch.float64)
    R = Rz @ Rx
    close(rotmat_to_rot6d(R), torch.tensor([R[0, 0], R[0, 1], R[0, 2], R[1, 0], R[1, 1], R[1, 2]]), atol=1e-12)
    raw = torch.randn(5, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    close(rot6d_to_rotmat(raw), ref.rot6d_to_rotmat(raw), atol=1e-12)
    close(rot6d_to_rotmat(2.5 * rotmat_to_rot6d(R)), R, atol=1e-12)  # scale-free, rows not columns


def test_official_sine_pe_table(model64):
    pe = model64.image_encoder.pos_enc  # (p, d): rebuilt at construction, not stored
    close(pe, ref.sine_pe(*D.grid, D.width).to(pe), atol=1e-6)
    h, half = D.grid[0], D.width // 2
    assert pe[0, 0].item() == pytest.approx(math.sin(2 * math.pi / (h + 1e-6)), abs=1e-6)  # y half first
    assert pe[0, half + 1].item() == pytest.approx(math.cos(2 * math.pi / (D.grid[1] + 1e-6)), abs=1e-6)


def test_official_vit_matches_reference(ours, reference):
    close(ours["tokens"], reference["tokens"])


def test_official_image_encoder_post_norm_and_cliff_match_reference(ours, reference):
    close(ours["enc"].patch_features, reference["patches"])
    close(ours["enc"].coarse_traj, reference["coarse"])


def test_official_canonical_input_uses_the_release_statistics(ours, reference, model64, release):
    close(model64.traj_mean, stats_vector(release.stats, "Mean"), atol=1e-7)
    close(ours["cano"], reference["cano"])


def test_official_motion_encoder_matches_reference(ours, reference):
    feats, logits, cano, contact = reference["motion"]
    m = ours["out"].motion
    close(m.features, feats)
    close(m.logits, logits)
    close(m.cano_traj, cano)
    close(m.contact_logits, contact)


def test_official_decoder_matches_reference(ours, reference):
    logits, traj, contact = reference["decoder"]
    d = ours["out"].decoder
    close(d.logits, logits)
    close(d.traj, traj)
    close(d.contact_logits, contact)


def test_official_mesh_conv_kernel_sum_matches_reference(model64, sd64, inputs, release):
    """token_emb -> smoother -> tokenizer layers 7..13 on the connection files (padding masked, ELU but on l=13)."""
    ids = inputs[2].clamp(max=D.codes - 1)
    with torch.no_grad():
        close(model64.mesh_from_ids(ids), ref.mesh_from_ids(sd64, release.conn, ids))


def test_official_float32_model_is_close_to_reference(converted, inputs, reference):
    """The model as converted (float32): same outputs up to float32 rounding, relative to their size."""
    model = MoRo.from_checkpoint(converted[1]).eval()
    images, bbox, ids = (x.float() if x.is_floating_point() else x for x in inputs)
    with torch.no_grad():
        image = model.encode_image(bbox, images=images)
        out = model(ids, model.canonical_input(image.coarse_traj), image)
    for got, want in ((out.decoder.logits, reference["decoder"][0]), (out.decoder.traj, reference["decoder"][1]),
                      (out.motion.logits, reference["motion"][1]), (image.coarse_traj, reference["coarse"])):
        scale = float(want.abs().max())
        assert float((got.double() - want).abs().max()) < 1e-5 * max(scale, 1.0) * 10, "float32 drift beyond rounding"


def test_official_all_mapped_tensors_are_bit_exact(converted, release, target):
    """Every one of the 777 mapped tensors arrives unchanged under its moro name."""
    from moro.tokenizer import load_official_hierarchy

    model = MoRo.from_checkpoint(converted[1])
    ours = model.state_dict()
    rules = target.key_table(load_official_hierarchy(release.conn_dir, 3))
    mapped = [r for r in rules if r.ours is not None]
    assert len(mapped) == 777
    for r in mapped:
        assert torch.equal(ours[r.ours], release.state[r.official]), r.official
    assert not np.any(ours["tokenizer.quantizer.steps_unused"].numpy())
