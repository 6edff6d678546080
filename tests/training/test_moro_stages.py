"""MoRo training stages (issue 7): recipes, the synthetic data cache and its augmentation, the Fabric
engine (resume == uninterrupted, two gloo ranks), `moro train all` on a truncated budget, bad input."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from moro.body.joint_sets import JOINTS22_FLIP
from moro.training.checkpoint import TrainCheckpointError
from moro.training.engine import MODEL_FILE, RunConfig, StageError, build_model, read_metrics, train_stage
from moro.training.pipeline import prepare_data
from moro.training.recipes import PARENTS, RECIPES, STAGES, StageRecipe, TrajectoryNoise, recipe
from moro.training.steps import StageStep
from moro.training.synth_data import SynthTrainData, TrainDataError, mirror_permutation, paint_occluder

TOKENIZER = str(Path(__file__).resolve().parents[2] / "models" / "tokenizer_tiny.ckpt")
SMALL = dict(steps=4, batch=2, clip_frames=8, warmup=2, checkpoint_every=2, log_every=1)


def _cfg(tmp_path, cache, stage, init, **kw):
    over = dict(SMALL)
    over.update(kw.pop("overrides", {}))
    return RunConfig(preset="tiny", out=str(tmp_path / "run"), data=str(cache), init=init, workers=0, progress=False,
                     overrides=over, **kw)


# ---------------------------------------------------------------------- recipes
def test_recipes_chain_and_paper_values():
    assert [PARENTS[s] for s in STAGES] == ["tokenizer", "pose_pretrain", "motion_pretrain", "image_pretrain"]
    p = RECIPES["paper"]
    got = {s: (p[s].batch, p[s].steps, p[s].lr) for s in STAGES}
    assert got == {"pose_pretrain": (128, 40_000, 1e-4), "motion_pretrain": (4, 60_000, 1e-4),
                   "image_pretrain": (64, 40_000, 1e-5), "video_train": (2, 60_000, 1e-5)}
    assert p["motion_pretrain"].clip_frames == p["video_train"].clip_frames == 60
    assert dict(p["video_train"].masking) == {"inference": 0.5, "random": 0.5}
    assert set(dict(p["motion_pretrain"].masking)) == {"random", "joint", "frame"}
    assert "backbone" not in p["video_train"].trainable and "image_encoder" not in p["video_train"].trainable
    assert (p["image_pretrain"].crop_mode_prob, p["video_train"].crop_mode_prob) == (0.1, 0.2)
    assert all(r.weight_decay == 1e-4 and r.grad_clip == 1.0 and r.warmup == 2000 for r in p.values())
    for s in STAGES:  # tiny keeps everything but the sizes
        t = RECIPES["tiny"][s]
        assert (t.masking, t.trainable, t.data, t.trajectory) == (p[s].masking, p[s].trainable, p[s].data, p[s].trajectory)


def test_trajectory_noise_is_progressive():
    n = TrajectoryNoise()
    assert n.at(0.1) == (0.0, 0.0)
    r, t = n.at(0.45)
    assert math.isclose(r, math.radians(1.0)) and math.isclose(t, 0.010)
    r, t = n.at(0.9)
    assert math.isclose(r, math.radians(2.0)) and math.isclose(t, 0.030)


# ---------------------------------------------------------------------- data
def test_training_crops_equal_inference_crops(cache, split):
    """A cache crop resampled at the box (no augmentation) is the crop inference makes from the full frame."""
    from moro.data.synth import SynthDataset
    from moro.inference.crops import backbone_batch, crop_frame

    data = SynthTrainData(cache)
    seq = data.seqs[0]
    frame = next(iter(SynthDataset(split)[0].frames(5, 1)))
    box = seq.lab["box_det"][5].astype(np.float64)
    ours = data._crop_from_cache(seq, 5, box, 0.0, False, None)
    ref = backbone_batch(crop_frame(frame, box, 128)[None], width=96)[0].numpy()
    inside = np.abs(ref).sum(0) > 0
    assert np.median(np.abs(ours - ref)[:, inside]) < 0.05  # ImageNet-normalised units (~1 grey level)


def test_batches_are_deterministic_and_differ_across_ranks(cache):
    r = recipe("image_pretrain", "tiny")
    a, b = SynthTrainData(cache, rank=0), SynthTrainData(cache, rank=1)
    x, y = a.image_batch("image_pretrain", 3, 4, r), a.image_batch("image_pretrain", 3, 4, r)
    assert all(torch.equal(x[k], y[k]) for k in x)
    z = b.image_batch("image_pretrain", 3, 4, r)
    assert not torch.equal(x["images"], z["images"])


def test_augmented_labels_follow_the_image(cache, anny5):
    """Ground truth of rolled / mirrored crops projects where the rolled / mirrored 2D joints are."""
    model = build_model("tiny", TOKENIZER, anny5)
    perm = torch.from_numpy(mirror_permutation(anny5(anny5.identity_pose(), anny5.zero_betas()).vertices.numpy()))
    data = SynthTrainData(cache)
    r = replace(recipe("image_pretrain", "tiny"), flip_prob=0.5, rotation_prob=1.0, crop_mode_prob=0.0)
    batch = data.image_batch("image_pretrain", 7, 16, r)
    gt = StageStep(model, anny5, r, perm).ground_truth(batch)
    items = data._windows(data.rng("image_pretrain", 7), 16, 1)
    assert batch["flip"].any() and (batch["roll"].abs() > 0).all()
    for k, (s, i) in enumerate(items):
        kp, pp = s.lab["kp2d"][i].astype(np.float64), s.lab["K"][:2, 2]
        c, sn = math.cos(float(batch["roll"][k])), math.sin(float(batch["roll"][k]))
        kp = pp + (kp - pp) @ np.array([[c, -sn], [sn, c]]).T
        if batch["flip"][k]:
            kp[:, 0] = 2 * pp[0] - kp[:, 0]
            kp = kp[list(JOINTS22_FLIP)]
        # mirrored meshes regress mirrored joints up to the regressor's asymmetry (< 1.5 px here)
        assert np.abs(gt["joints2d"][k, 0].numpy() - kp).max() < (1.5 if batch["flip"][k] else 1e-2)


def test_painted_occluder_is_one_rectangle_moving_linearly():
    rng = np.random.default_rng(3)
    imgs = np.zeros((9, 3, 64, 48), np.float32)
    paint_occluder(imgs, rng, (0.4, 0.4))
    corners = []
    for f in range(9):
        ys, xs = np.nonzero((imgs[f] != 0).any(0))
        assert len(ys), f"frame {f} has no occluder"
        # a filled axis-aligned rectangle, the same texture in every frame, clipped at the borders
        assert len(ys) == (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        assert ys.max() - ys.min() + 1 <= round(0.4 * 64) and xs.max() - xs.min() + 1 <= round(0.4 * 48)
        corners.append((ys.max(), xs.max()))
    c = np.array(corners, np.float64)
    steps = np.diff(c, axis=0)
    assert np.abs(steps - steps.mean(0)).max() <= 1.0  # constant velocity (rounding only)
    fresh = np.zeros_like(imgs)
    paint_occluder(fresh, np.random.default_rng(3), (0.4, 0.4))
    assert np.array_equal(fresh, imgs)


def test_video_clips_get_occluders_with_their_probability(cache):
    r = replace(recipe("video_train", "tiny"), crop_mode_prob=0.0, occluder_prob=1.0)
    data = SynthTrainData(cache)
    batch = data.video_batch("video_train", 2, 2, 8, r)
    plain = data.video_batch("video_train", 2, 2, 8, replace(r, occluder_prob=0.0))
    assert batch["occluded"].any(1).all() and not plain["occluded"].any()
    differs = (batch["images"] != plain["images"]).flatten(2).any(-1)  # (b, t)
    assert torch.equal(differs, batch["occluded"])


def test_video_stage_has_no_terms_of_the_frozen_coarse_trajectory(cache, anny5):
    """The coarse trajectory comes from the frozen image encoder: none of its terms enter the video loss."""
    model = build_model("tiny", TOKENIZER, anny5)
    r = recipe("video_train", "tiny")
    batch = SynthTrainData(cache).video_batch("video_train", 0, 2, 8, r)
    terms = StageStep(model, anny5, r).train()(batch, 0)
    assert not [k for k in terms if k.endswith("_coarse")]
    assert {"joints_refined", "joint_vel_refined", "reproj_refined", "joints_cano"} <= set(terms)
    trains_encoder = replace(r, trainable=r.trainable + ("image_encoder",))
    terms = StageStep(model, anny5, trains_encoder).train()(batch, 0)
    assert {"traj_coarse", "joints_coarse", "reproj_coarse"} <= set(terms)


def test_frozen_parts_compute_as_at_inference(cache, anny5):
    """In the video stage the frozen backbone runs in eval mode: its batch norms neither normalise a batch by
    its own statistics nor change their running statistics, so its features equal the inference features;
    in the image stage the backbone trains and its running statistics move."""
    model = build_model("tiny", TOKENIZER, anny5)
    bb = model.backbone
    assert any(isinstance(mod, torch.nn.BatchNorm2d) for mod in bb.modules())
    data = SynthTrainData(cache)
    r = recipe("video_train", "tiny")
    batch = data.video_batch("video_train", 0, 2, 8, r)
    before = {k: v.clone() for k, v in bb.state_dict().items()}
    with torch.no_grad():
        expected = bb.eval()(batch["images"][0, :3])
    step = StageStep(model, anny5, r).train()
    step(batch, 0)
    assert not bb.training and not model.tokenizer.training and model.motion_encoder.training and model.decoder.training
    assert all(torch.equal(before[k], v) for k, v in bb.state_dict().items())
    with torch.no_grad():
        assert torch.equal(bb(batch["images"][0, :3]), expected)
    ri = recipe("image_pretrain", "tiny")
    StageStep(model, anny5, ri).train()(data.image_batch("image_pretrain", 0, 4, ri), 0)
    assert bb.training
    moved = [k for k, v in bb.state_dict().items() if k.endswith("running_mean") and not torch.equal(before[k], v)]
    assert moved


# ---------------------------------------------------------------------- engine
def test_resume_repeats_the_uninterrupted_run(tmp_path, cache, anny5):
    full = train_stage("pose_pretrain", _cfg(tmp_path / "a", cache, "pose_pretrain", TOKENIZER), anny5)
    part = _cfg(tmp_path / "b", cache, "pose_pretrain", TOKENIZER, stop_after=2)
    first = train_stage("pose_pretrain", part, anny5)
    assert first.steps_done == 2 and first.model_path is None  # "killed": no model yet
    rest = train_stage("pose_pretrain", replace(part, stop_after=None, resume=True), anny5)
    assert rest.steps_done == 4
    a = read_metrics(tmp_path / "a" / "run" / "pose_pretrain" / "metrics.csv")
    b = read_metrics(tmp_path / "b" / "run" / "pose_pretrain" / "metrics.csv")
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    for ra, rb in zip(a, b):
        assert math.isclose(ra["total"], rb["total"], rel_tol=1e-5, abs_tol=1e-6), (ra, rb)
    assert full.ranks[0]["weights"] == pytest.approx(rest.ranks[0]["weights"], rel=1e-6)
    record = torch.load(rest.model_path, weights_only=True)["training"]
    assert record["stage"] == "pose_pretrain" and record["steps_done"] == 4 and record["tokenizer_file"] == TOKENIZER


def test_two_gloo_ranks_see_different_data_and_end_equal(tmp_path, cache, anny5):
    cfg = _cfg(tmp_path, cache, "pose_pretrain", TOKENIZER, accelerator="cpu", devices=2, strategy="ddp_spawn",
               overrides=dict(steps=3))
    r = train_stage("pose_pretrain", cfg, anny5)
    assert len(r.ranks) == 2
    assert r.ranks[0]["data_digest"] != r.ranks[1]["data_digest"]
    assert r.ranks[0]["weights"] == pytest.approx(r.ranks[1]["weights"], rel=1e-6, abs=1e-6)


def test_stage_chain_and_bad_input(tmp_path, cache, anny5):
    with pytest.raises(StageError, match="--init"):
        train_stage("motion_pretrain", _cfg(tmp_path, cache, "motion_pretrain", None), anny5)
    pose = train_stage("pose_pretrain", _cfg(tmp_path, cache, "pose_pretrain", TOKENIZER, overrides=dict(steps=1)), anny5)
    with pytest.raises(StageError, match="starts from motion_pretrain"):  # skipping a stage
        train_stage("image_pretrain", _cfg(tmp_path, cache, "image_pretrain", str(pose.model_path)), anny5)
    with pytest.raises(StageError, match="does not exist"):
        train_stage("motion_pretrain", replace(_cfg(tmp_path, cache, "motion_pretrain", str(pose.model_path)),
                                               data=str(tmp_path / "nowhere")), anny5)
    with pytest.raises(TrainCheckpointError, match="settings changed"):
        train_stage("pose_pretrain", _cfg(tmp_path, cache, "pose_pretrain", TOKENIZER, resume=True,
                                          overrides=dict(steps=1, lr=5e-4)), anny5)
    with pytest.raises(TrainDataError, match="moro synth"):
        prepare_data(tmp_path / "missing", TOKENIZER, anny5)


def test_every_stage_runs_and_moves_its_parts(tmp_path, cache, anny5):
    """Each stage starts from its parent, trains its parts only, and leaves a loadable model."""
    init = TOKENIZER
    before = None
    for stage in STAGES:
        r = train_stage(stage, _cfg(tmp_path, cache, stage, init, overrides=dict(steps=2)), anny5)
        assert np.isfinite(r.final_loss) and r.model_path.is_file()
        from moro.model import MoRo

        m = MoRo.from_checkpoint(r.model_path)
        check = torch.load(r.model_path, map_location="cpu", weights_only=True)["training"]["pose_check"]
        if stage in ("image_pretrain", "video_train"):  # decoder pose CE; 2 untrained steps: ~ ln 512 > the marginal
            assert check["learnt"] is False and "WARNING" in check["warning"] and check["ce_decoder"] > check["ce_marginal"]
        else:
            assert check == {}
        if before is not None:
            trained = recipe(stage, "tiny").trainable
            for part in ("motion_encoder", "decoder", "image_encoder"):
                moved = any(not torch.equal(a, b) for a, b in zip(getattr(m, part).state_dict().values(),
                                                                  getattr(before, part).state_dict().values()))
                assert moved == (part in trained), (stage, part)
        before, init = m, str(r.model_path)
    # a stage may continue its own output with a fresh schedule (a longer video stage on a GPU)
    again = train_stage("video_train", _cfg(tmp_path / "again", cache, "video_train", init, overrides=dict(steps=1)),
                        anny5)
    after = MoRo.from_checkpoint(again.model_path)
    assert any(not torch.equal(a, b) for a, b in zip(after.decoder.state_dict().values(),
                                                     before.decoder.state_dict().values()))
    # --motion-lr 0 keeps the motion prior as it was while the decoder trains
    kept = train_stage("video_train", _cfg(tmp_path / "kept", cache, "video_train", init,
                                           overrides=dict(steps=2, motion_lr=0.0)), anny5)
    k = MoRo.from_checkpoint(kept.model_path)
    for a, b in zip(k.motion_encoder.state_dict().values(), before.motion_encoder.state_dict().values()):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(k.decoder.state_dict().values(), before.decoder.state_dict().values()))


def test_motion_lr_option():
    """--motion-lr reaches the video stage's recipe; 0 drops the motion encoder from the trained parts; unset, the
    recipe's dict is the one of runs made before the option (so they still resume)."""
    from moro.cli import build_parser
    from moro.cli_train import _run_config

    base = ["train", "video_train", "--out", "o", "--data", "d", "--init", "i"]
    over = _run_config(build_parser().parse_args(base + ["--motion-lr", "1e-5"])).overrides
    assert over == dict(motion_lr=1e-5)
    r = recipe("video_train", "tiny", **over)
    assert r.motion_lr == 1e-5 and r.trained_parts == r.trainable and r.to_dict()["motion_lr"] == 1e-5
    frozen = recipe("video_train", "tiny", motion_lr=0.0)
    assert "motion_encoder" in frozen.trainable and "motion_encoder" not in frozen.trained_parts
    assert "motion_lr" not in recipe("video_train", "tiny").to_dict()
    assert StageRecipe.from_dict(recipe("video_train", "tiny").to_dict()) == recipe("video_train", "tiny")
    with pytest.raises(ValueError, match="motion_lr must be >= 0"):
        recipe("video_train", "tiny", motion_lr=-1.0)
    with pytest.raises(SystemExit):  # a video-stage option
        build_parser().parse_args(["train", "image_pretrain", "--out", "o", "--motion-lr", "0"])


def test_marginal_ce_is_the_mean_entropy_of_each_positions_codes(cache):
    data = SynthTrainData(cache)
    ids = np.concatenate([np.asarray(s.lab["ids"]) for s in data.seqs])
    want = []
    for k in range(ids.shape[1]):
        _, counts = np.unique(ids[:, k], return_counts=True)
        p = counts / counts.sum()
        want.append(-(p * np.log(p)).sum())
    assert data.marginal_ce() == pytest.approx(float(np.mean(want)), rel=1e-12)
    assert 0.0 <= data.marginal_ce() <= math.log(len(ids))


def test_pose_learning_check_compares_with_the_marginal():
    from moro.training.engine import POSE_CE_MARGIN, pose_learning_check

    class Data:
        def marginal_ce(self):
            return 2.0

    hist = [{"step": i, "ce_decoder": 5.0 - i} for i in range(5)]  # last values 4..1: mean of the last 2 = 1.5
    assert pose_learning_check([{"step": 1, "ce_motion": 1.0}], None, Data()) == {}
    ok = pose_learning_check(hist, None, Data(), last=2)
    assert ok["learnt"] and ok["ce_decoder"] == 1.5 and "warning" not in ok
    flat = pose_learning_check(hist, {"ce_decoder": 2.0 - POSE_CE_MARGIN / 2}, Data())
    assert not flat["learnt"] and flat["source"] == "validation" and "marginal" in flat["warning"]


def test_train_all_cli_truncated(tmp_path, split, cache, capsys):
    from moro.cli import main

    out = tmp_path / "all"
    assert main(["train", "all", "--preset", "tiny", "--data", str(split), "--tokenizer", TOKENIZER, "--out", str(out),
                 "--max-minutes", "0.4", "--workers", "0", "--no-progress"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("stages_completed=4 final_loss=")
    assert all((out / s / MODEL_FILE).is_file() for s in STAGES)


# ---------------------------------------------------------------------- data mixtures and real-data sources
def test_parse_sources():
    from moro.training.synth_data import parse_sources

    assert parse_sources("a/b") == [("a/b", 1.0)]
    assert parse_sources(["a:2", "c:0.5", ("d", 3)]) == [("a", 2.0), ("c", 0.5), ("d", 3.0)]
    with pytest.raises(TrainDataError, match="positive weight"):
        parse_sources(["a:0"])


def test_mixture_follows_the_weights(cache):
    only_first = SynthTrainData([(cache, 1.0), (cache, 0.0)])
    picks = only_first._windows(only_first.rng("pose_pretrain", 0), 64, 1)
    assert {s.source for s, _ in picks} == {0}
    even = SynthTrainData([(cache, 1.0), (cache, 3.0)])
    picks = even._windows(even.rng("pose_pretrain", 0), 400, 1)
    share = np.mean([s.source for s, _ in picks])
    assert 0.68 < share < 0.82  # 3 / 4 of the items from the second source


def test_prepared_motion_only_source_feeds_the_motion_stages(tmp_path, split, cache, anny5):
    """A `moro prepare` output (here: a synthetic sequence saved in that format, no images) becomes a
    motion-only source: motion batches mix it in, image batches never pick it."""
    import json

    from moro.data.prepared import FORMAT, FORMAT_VERSION, MANIFEST, save_prepared
    from moro.data.synth import SynthDataset

    root = tmp_path / "prepared"
    seq = SynthDataset(split)[0]
    clip = seq.clip(0, len(seq), images=False)
    save_prepared(root / "seqs" / "walk.npz", clip, split="train")
    # an image collection (one camera per frame): single frames only, never a clip
    save_prepared(root / "seqs" / "photos.npz", clip, split="train", K_frames=np.repeat(clip.K[None], len(seq), 0),
                  T_w2c_frames=np.repeat(clip.T_w2c[None], len(seq), 0))
    seqs = {"walk": {"split": "train", "clips": []}, "photos": {"split": "train", "clips": []}}
    (root / MANIFEST).write_text(json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, "dataset": "test",
                                             "source_root": None, "sequences": seqs}))
    caches = prepare_data([f"{root}:1", f"{cache}:1"], TOKENIZER, anny5)
    data = SynthTrainData(caches)
    real = {s.name: s for s in data.seqs if s.source == 0}
    assert set(real) == {"walk", "photos"} and all(s.crops is None for s in real.values())
    ref = [s for s in data.seqs if s.source == 1 and s.name == seq.name][0]
    for s in real.values():
        np.testing.assert_array_equal(s.lab["ids"], ref.lab["ids"])  # same bodies -> same tokens
    motion = data._windows(data.rng("motion_pretrain", 1), 64, 8)
    assert {s.name for s, _ in motion if s.source == 0} == {"walk"}  # the image collection is no clip
    frames = data._windows(data.rng("pose_pretrain", 1), 64, 1)
    assert {s.name for s, _ in frames if s.source == 0} == {"walk", "photos"}
    images = data._windows(data.rng("image_pretrain", 1), 64, 1, images=True)
    assert {s.source for s, _ in images} == {1}


def test_prepared_source_of_another_body_model_is_refused(tmp_path, split, anny5):
    import json
    from dataclasses import replace as dc_replace

    from moro.data.prepared import FORMAT, FORMAT_VERSION, MANIFEST, save_prepared
    from moro.data.synth import SynthDataset

    seq = SynthDataset(split)[0]
    clip = seq.clip(0, len(seq), images=False)
    clip.body = dc_replace(clip.body, model="smplx/neutral")
    save_prepared(tmp_path / "p" / "seqs" / "a.npz", clip, split="train")
    (tmp_path / "p" / MANIFEST).write_text(json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION,
                                                       "dataset": "x", "source_root": None,
                                                       "sequences": {"a": {"split": "train", "clips": []}}}))
    with pytest.raises(TrainDataError, match="smplx/neutral bodies"):
        prepare_data(tmp_path / "p", TOKENIZER, anny5)


def test_train_cli_recipe_overrides():
    """--warmup / --occluder-prob / --occluder-size reach the recipe overrides; bad values are refused."""
    from moro.cli import build_parser
    from moro.cli_train import _run_config

    base = ["train", "video_train", "--out", "o", "--data", "d", "--init", "i"]
    args = build_parser().parse_args(base + ["--warmup", "7", "--occluder-prob", "0.5", "--occluder-size", "0.5", "1"])
    over = _run_config(args).overrides
    assert over == dict(warmup=7, occluder_prob=0.5, occluder_size=(0.5, 1.0))
    assert recipe("video_train", "tiny", **over).occluder_size == (0.5, 1.0)
    for bad, msg in ((["--occluder-size", "0.6", "0.4"], "0 < LOW <= HIGH <= 1"), (["--occluder-prob", "2"], "probability")):
        with pytest.raises(ValueError, match=msg):
            _run_config(build_parser().parse_args(base + bad))
    with pytest.raises(SystemExit):  # occluders are a video-stage option
        build_parser().parse_args(["train", "image_pretrain", "--out", "o", "--occluder-prob", "0.5"])


def test_backbone_lr_gives_the_backbone_its_own_group():
    """--backbone-lr reaches the recipe; make_adamw puts those parameters in their own group, scheduled alike."""
    from moro.cli import build_parser
    from moro.cli_train import _run_config
    from moro.training.schedules import make_adamw, warmup_cosine_schedule

    args = build_parser().parse_args(["train", "image_pretrain", "--out", "o", "--data", "d", "--init", "i",
                                      "--backbone-lr", "1e-4", "--backbone-weights", "w.pt"])
    cfg = _run_config(args)
    assert cfg.overrides == dict(backbone_lr=1e-4) and cfg.backbone_weights == "w.pt"
    assert recipe("image_pretrain", "tiny", **cfg.overrides).backbone_lr == 1e-4
    assert recipe("image_pretrain", "tiny").backbone_lr is None
    a, b, frozen = (torch.nn.Parameter(torch.zeros(2)) for _ in range(3))
    frozen.requires_grad_(False)
    opt = make_adamw([a, b, frozen], lr=1e-3, weight_decay=0.0, groups={1e-4: [b, frozen]})
    assert [(g["lr"], len(g["params"])) for g in opt.param_groups] == [(1e-3, 1), (1e-4, 1)]
    assert opt.param_groups[1]["params"][0] is b
    sched = warmup_cosine_schedule(opt, 10, 2)
    for _ in range(3):
        opt.step()
        sched.step()
    lrs = sched.get_last_lr()
    assert lrs[0] / lrs[1] == pytest.approx(10.0)
    with pytest.raises(ValueError, match="group lr"):
        make_adamw([a], lr=1e-3, weight_decay=0.0, groups={0.0: [a]})
