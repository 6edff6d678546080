"""The assembled MoRo (tiny preset on CPU): modes, gradients, batching, checkpoints, config errors,
the authors' key layout (paper preset on the meta device), and overfitting one synthetic clip."""

import contextlib
import io

import pytest
import torch
from moro_tiny import NUM_CODES, image_features, joint_regressor, tiny_model, tiny_tokenizer

from moro.geometry import pack_trajectory, project_points, rotvec_to_rotmat
from moro.model import MoRo, MoRoConfig, inference_masking, mask_tokens, moro_losses
from moro.model.checkpoint import CheckpointError
from moro.model.decoder import FusionDecoder
from moro.model.motion_encoder import MotionEncoder
from moro.model.smoother import TokenSmoother


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny ops gain nothing from threads, and on shared cores extra threads only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def _ids(b, t, n, seed=0):
    return torch.randint(0, NUM_CODES, (b, t, n), generator=torch.Generator().manual_seed(seed))


def _first_pose(b):
    return torch.eye(3).expand(b, 3, 3), torch.zeros(b, 3)


def test_modes_and_shapes(model):
    cfg = model.config
    n, k, d = cfg.tokens.num_tokens, NUM_CODES, cfg.transformer.width
    b, t = 2, 5
    ids = _ids(b, t, n)
    motion = model(ids, torch.zeros(b, t, 9))
    assert motion.decoder is None and motion.motion.logits.shape == (b, t, n, k)
    assert motion.motion.cano_traj.shape == (b, t, 9) and motion.motion.contact_logits.shape == (b, t, 4)
    image = model(image=image_features(b, t, d))
    assert image.motion is None and image.decoder.logits.shape == (b, t, n, k)
    video = model(ids, torch.zeros(b, t, 9), image_features(b, t, d, p=6))
    assert video.decoder.features.shape == (b, t, n + 6 + 2, d) and video.decoder.traj.shape == (b, t, 9)
    pred = model.predictions(video, 0.5, torch.Generator().manual_seed(0), _first_pose(b), torch.eye(3).expand(b, 3, 3))
    assert pred["verts_local"].shape == (b, t, model.tokenizer.num_vertices, 3)
    for src in ("coarse", "cano", "refined"):
        assert pred[f"joints_{src}"].shape == (b, t, 22, 3) and pred[f"joints2d_{src}"].shape == (b, t, 22, 2)
    assert model.mask_id == NUM_CODES and torch.all(model.token_emb.weight[NUM_CODES] == 0)


def test_placement_matches_joints_of_the_placed_mesh(model):
    """J(V_local R^T + t) computed the cheap way equals regressing the placed mesh."""
    g = torch.Generator().manual_seed(1)
    verts = torch.randn(1, 3, model.tokenizer.num_vertices, 3, generator=g)
    R = rotvec_to_rotmat(torch.randn(1, 3, 3, generator=g))
    t = torch.randn(1, 3, 3, generator=g)
    placed = verts @ R.transpose(-1, -2) + t[:, :, None]
    torch.testing.assert_close(model.place_joints(model.joints(verts), pack_trajectory(R, t)), model.joints(placed),
                               atol=1e-5, rtol=0)


def _full_loss(model, b=2, t=4, seed=0, frozen_backbone=None):
    n, d = model.config.tokens.num_tokens, model.config.transformer.width
    g = torch.Generator().manual_seed(seed)
    gt_ids = _ids(b, t, n, seed)
    masked = mask_tokens(gt_ids, "random", NUM_CODES, g)
    if frozen_backbone is None:
        image = image_features(b, t, d, seed=seed, requires_grad=True)
    else:
        image = model.encode_image(torch.tensor([0.0, 0.0, 1.0]).expand(b, t, 3), images=torch.randn(b, t, 3, *model.backbone.input_size))
    out = model(masked.input_ids, torch.randn(b, t, 9, generator=g), image)
    K = torch.tensor([[300.0, 0, 100], [0, 300, 100], [0, 0, 1]]).expand(b, 3, 3)
    pred = model.predictions(out, 1.0, g, _first_pose(b), K)
    gt = dict(labels=masked.labels, verts_local=torch.randn_like(pred["verts_local"]) * 0.1,
              traj=torch.randn(b, t, 9, generator=g), cano_traj=torch.randn(b, t, 9, generator=g),
              joints=torch.randn(b, t, 22, 3, generator=g), joints2d=100 + 20 * torch.randn(b, t, 22, 2, generator=g),
              bbox=torch.tensor([100.0, 100.0, 1.0]).expand(b, t, 3),
              contact=(torch.rand(b, t, 4, generator=g) > 0.5).float())
    return moro_losses(pred, gt), image


def test_gradients_reach_every_trainable_parameter_and_no_frozen_one():
    model = tiny_model(seed=1)
    terms, image = _full_loss(model)
    assert torch.isfinite(terms["total"])
    terms["total"].backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not missing, missing
    assert all(p.grad is None for p in model.tokenizer.parameters())
    assert image.patch_features.grad is not None and image.coarse_transl.grad is not None  # into the image encoder
    assert "token_emb.weight" not in dict(model.named_parameters())  # codebook + [MASK] row: a frozen buffer


def test_frozen_backbone_gets_no_gradient_trained_image_encoder_does():
    from moro.model.backbones import build_backbone
    from moro.model.image_encoder import ImageEncoder, ImageEncoderConfig

    tok = tiny_tokenizer()
    cfg = MoRoConfig.tiny(tok.config, tok.num_vertices)
    icfg = ImageEncoderConfig.tiny()
    backbone = build_backbone(icfg.backbone, frozen=True, **icfg.backbone_cfg)
    model = MoRo(cfg, tok, ImageEncoder(icfg), joint_regressor(tok.num_vertices), backbone=backbone)
    terms, _ = _full_loss(model, b=1, t=2, frozen_backbone=True)
    terms["total"].backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is not None for p in model.image_encoder.parameters())


def test_batched_equals_one_by_one():
    model = tiny_model(seed=2, window=3).eval()  # window 3 < t: the blockwise temporal path runs
    n, d = model.config.tokens.num_tokens, model.config.transformer.width
    b, t = 3, 12
    ids, cano = _ids(b, t, n, 3), torch.randn(b, t, 9, generator=torch.Generator().manual_seed(4))
    image = image_features(b, t, d, seed=5)
    with torch.no_grad():
        full = model.predictions(model(ids, cano, image), 0.5, None, None)
        for i in range(b):
            img_i = type(image)(image.patch_features[i : i + 1], image.coarse_rot6d[i : i + 1], image.coarse_transl[i : i + 1])
            one = model.predictions(model(ids[i : i + 1], cano[i : i + 1], img_i), 0.5, None, None)
            for key in ("decoder_logits", "traj_refined", "cano_traj", "verts_local", "joints_refined"):
                torch.testing.assert_close(full[key][i : i + 1], one[key], atol=2e-5, rtol=1e-4)


def test_two_pass_inference_masking_with_the_model(model):
    n, d = model.config.tokens.num_tokens, model.config.transformer.width
    b, t = 2, 4
    gt = _ids(b, t, n, 6)
    image = image_features(b, t, d, seed=6)
    cano0 = model.canonical_input(image.coarse_traj)

    def first_pass(all_masked):
        out = model(all_masked, cano0, image)
        return out.decoder.logits, out.decoder.traj

    masked, refined = inference_masking(gt, first_pass, NUM_CODES, torch.Generator().manual_seed(7))
    out = model(masked.input_ids, model.canonical_input(refined), image)  # pass 2, with gradients
    assert out.decoder.logits.requires_grad and not refined.requires_grad


def test_checkpoint_round_trip(model, tmp_path):
    path = tmp_path / "tiny.pt"
    model.save(path)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left nothing behind
    loaded = MoRo.from_checkpoint(path, joint_regressor=model.joint_regressor, preset="tiny")
    assert loaded.config == model.config and loaded.tokenizer.hierarchy.equals(model.tokenizer.hierarchy)
    n, d = model.config.tokens.num_tokens, model.config.transformer.width
    ids, image = _ids(1, 3, n), image_features(1, 3, d)
    model.eval(), loaded.eval()
    with torch.no_grad():
        a, b = model(ids, None, image), loaded(ids, None, image)
    torch.testing.assert_close(a.decoder.logits, b.decoder.logits, atol=0, rtol=0)
    with pytest.raises(CheckpointError, match="holds a 'tiny' model"):
        MoRo.from_checkpoint(path, preset="paper")


def test_checkpoint_rebuilds_image_encoder_and_backbone(tmp_path):
    from moro.model.image_encoder import ImageEncoder, ImageEncoderConfig, build_image_backbone

    tok = tiny_tokenizer()
    icfg = ImageEncoderConfig.tiny()
    model = MoRo(MoRoConfig.tiny(tok.config, tok.num_vertices), tok, ImageEncoder(icfg),
                 backbone=build_image_backbone(icfg)).eval()
    model.save(tmp_path / "m.pt")
    loaded = MoRo.from_checkpoint(tmp_path / "m.pt").eval()
    bbox, images = torch.tensor([0.1, 0.0, 1.0]).expand(1, 2, 3), torch.randn(1, 2, 3, 128, 96)
    with torch.no_grad():
        a, b = model.encode_image(bbox, images=images), loaded.encode_image(bbox, images=images)
    torch.testing.assert_close(a.patch_features, b.patch_features, atol=0, rtol=0)
    assert loaded.image_encoder.config == icfg


def test_impossible_configs_name_the_field():
    tok = tiny_tokenizer()
    with pytest.raises(ValueError, match="transformer.num_heads"):
        MoRoConfig(transformer={"width": 100, "num_heads": 8})
    with pytest.raises(ValueError, match="transformer.window"):
        MoRoConfig(transformer={"window": 90}, clip_frames=60)
    with pytest.raises(ValueError, match="tokens.num_tokens"):
        MoRo(MoRoConfig.tiny(), tok)  # the default tiny config expects a 615-vertex mesh (37 tokens)
    with pytest.raises(ValueError, match="unknown field"):
        MoRoConfig(smoother={"kernel": 5})
    cfg = MoRoConfig.tiny(tok.config, tok.num_vertices)
    wrong = torch.nn.Linear(1, 1)
    wrong.config = type("Cfg", (), {"width": 256})()
    with pytest.raises(ValueError, match="transformer.width"):
        MoRo(cfg, tok, image_encoder=wrong)


def test_paper_preset_matches_the_official_key_layout():
    """Names and shapes of the authors' m_* (211), d_* (109), smoother (4) and token_emb keys."""
    cfg = MoRoConfig.paper()
    tr, tk = cfg.transformer, cfg.tokens
    with torch.device("meta"):
        parts = {
            "mask_transformer.dst_former.": MotionEncoder(tr.width, tr.motion_depth, tr.num_heads, tr.window,
                                                          tk.num_tokens, tk.num_codes, tk.code_dim),
            "mask_transformer.dst_former.d": FusionDecoder(tr.width, tr.decoder_depth, tr.num_heads, tr.window,
                                                           tk.num_tokens, tk.num_codes),
            "smoother.": TokenSmoother(tk.code_dim, cfg.smoother),
        }
    ours = {}
    for prefix, module in parts.items():
        for k, v in module.state_dict().items():
            ours[(prefix[:-1] if prefix.endswith(".d") else prefix) + k] = tuple(v.shape)
    block = ([f"{n}_{s}.{p}" for n in ("norm1", "norm2") for s in "st" for p in ("weight", "bias")]
             + [f"attn_{s}.{l}.{p}" for s in "st" for l in ("qkv", "proj") for p in ("weight", "bias")]
             + [f"mlp_{s}.{l}.{p}" for s in "st" for l in ("fc1", "fc2") for p in ("weight", "bias")])
    shape = {"norm": (1024,), "qkv.weight": (3072, 1024), "qkv.bias": (3072,), "proj.weight": (1024, 1024),
             "proj.bias": (1024,), "fc1.weight": (4096, 1024), "fc1.bias": (4096,), "fc2.weight": (1024, 4096),
             "fc2.bias": (1024,)}

    def block_shape(key):
        return shape["norm"] if key.startswith("norm") else shape[key.split(".", 1)[1]]

    expected = {}
    for s, depth in (("m", 4), ("d", 2)):
        p = f"mask_transformer.dst_former.{s}_"
        for kind in ("st", "ts"):
            for i in range(depth):
                for key in block:
                    expected[f"{p}transformer.blocks_{kind}.{i}.{key}"] = block_shape(key)
        for i in range(depth):
            expected[f"{p}transformer.ts_attn.{i}.weight"], expected[f"{p}transformer.ts_attn.{i}.bias"] = (2, 2048), (2,)
        for head, out in (("pose", 512), ("traj", 9), ("contact", 4)):
            expected[f"{p}{head}_regressor.weight"], expected[f"{p}{head}_regressor.bias"] = (out, 1024), (out,)
        expected[f"{p}traj_embed.weight"], expected[f"{p}traj_embed.bias"] = (1024, 9), (1024,)
    m = "mask_transformer.dst_former.m_"
    expected[m + "pos_enc"] = (1, 1, 88, 1024)
    expected[m + "token_embed.weight"], expected[m + "token_embed.bias"] = (1024, 9), (1024,)
    expected["mask_transformer.dst_former.d_pos_enc"] = (1, 1, 90, 1024)
    expected.update({"smoother.alpha": (), "smoother.net.0.weight": (64, 9, 5), "smoother.net.2.weight": (64, 64, 5),
                     "smoother.net.4.weight": (9, 64, 1)})
    assert ours == expected
    assert sum(k.startswith(m) for k in ours) == 211 and sum(".d_" in k for k in ours) == 109
    n_motion = sum(p.numel() for p in parts["mask_transformer.dst_former."].parameters())
    n_decoder = sum(p.numel() for p in parts["mask_transformer.dst_former.d"].parameters())
    assert round(n_motion / 1e6, 1) == 202.2 and round(n_decoder / 1e6, 1) == 101.4


def test_cli_summary_tiny_last_line():
    from moro.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["model", "summary", "--preset", "tiny", "--no-timing"]) == 0
    last = buf.getvalue().strip().splitlines()[-1]
    assert last.startswith("params_m=") and " backbone_params_m=" in last


def _synthetic_clip(model, b=1, t=8, seed=0):
    """Consistent ground truth: tokens -> mesh, a smooth walk 3 m in front of the camera, its 2D projection."""
    g = torch.Generator().manual_seed(seed)
    n = model.config.tokens.num_tokens
    ids = _ids(b, t, n, seed)
    with torch.no_grad():
        verts = model.tokenizer.decode_latents(model.token_emb(ids))
    s = torch.linspace(0, 1, t)
    R = rotvec_to_rotmat(torch.stack([0 * s, 0.5 * s, 0 * s], -1)).expand(b, t, 3, 3)
    trans = torch.stack([0.3 * s, 0 * s, 3.0 + 0.2 * s], -1).expand(b, t, 3)
    traj = pack_trajectory(R, trans)
    joints = model.joints(verts @ R.transpose(-1, -2) + trans[:, :, None])
    K = torch.tensor([[300.0, 0, 100], [0, 300, 100], [0, 0, 1]]).expand(b, 3, 3)
    uv, _ = project_points(joints, K[:, None].expand(b, t, 3, 3))
    gt = dict(verts_local=verts, traj=traj, cano_traj=model.canonical_input(traj), joints=joints, joints2d=uv,
              bbox=torch.tensor([100.0, 100.0, 1.0]).expand(b, t, 3))
    return ids, gt, K, (R[:, 0], trans[:, 0])


def test_loss_decreases_when_overfitting_one_clip():
    model = tiny_model(seed=3)
    ids, gt, K, first = _synthetic_clip(model)
    d = model.config.transformer.width
    image = image_features(1, ids.shape[1], d, seed=8, requires_grad=True)  # stand-in encoder output, learnt too
    opt = torch.optim.Adam([*model.parameters(), image.patch_features, image.coarse_rot6d, image.coarse_transl], lr=1e-3)
    totals = []
    for step in range(30):
        g = torch.Generator().manual_seed(0)  # one clip, one mask, one Gumbel draw: pure overfitting
        masked = mask_tokens(ids, "random", NUM_CODES, g)
        out = model(masked.input_ids, gt["cano_traj"], image)
        pred = model.predictions(out, 0.5, g, first, K)
        terms = moro_losses(pred, {**gt, "labels": masked.labels})
        opt.zero_grad()
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        totals.append(float(terms["total"].detach()))
    assert all(torch.isfinite(torch.tensor(totals)))
    first5, last5 = sum(totals[:5]) / 5, sum(totals[-5:]) / 5
    assert last5 < 0.6 * first5, totals
