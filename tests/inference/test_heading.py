"""Heading carry (moro.inference.heading): yaw geometry, the circular Gaussian carry, the ridge head, and how
the decoded stores and checkpoints take it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from moro.geometry import rot6d_to_rotmat
from moro.inference.heading import (VisibilityHead, carried_yaw, carry_heading, finish_decoding, pooled_features,
                                    ridge_fit, root_yaw, rot_y, turn_about_vertical)


def _traj_from(rot: np.ndarray, transl: np.ndarray | None = None) -> np.ndarray:
    t = len(rot)
    out = np.zeros((t, 9), np.float32)
    out[:, :6] = rot[:, :2].reshape(t, 6)
    out[:, 6:] = np.random.default_rng(0).normal(size=(t, 3)) if transl is None else transl
    return out


def _random_rot(n: int, seed: int = 0) -> np.ndarray:
    q = np.random.default_rng(seed).normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
                     np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
                     np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1)], 1)


def _upright(yaw: np.ndarray, tilt: float = 0.15) -> np.ndarray:
    """Root rotations facing ``yaw`` (their hip axis at that yaw) with a small fixed lean."""
    ry = rot_y(yaw - np.pi / 2)  # R_y(yaw - pi/2) takes e_x to yaw
    lean = np.array([[1, 0, 0], [0, math.cos(tilt), -math.sin(tilt)], [0, math.sin(tilt), math.cos(tilt)]])
    return ry @ lean


def _wrap(a):
    return np.angle(np.exp(1j * np.asarray(a)))


def test_root_yaw_golden_and_turning_adds_exactly_the_angle():
    ident = _traj_from(np.eye(3)[None].repeat(1, 0))
    yaw, ok = root_yaw(ident)
    assert yaw[0] == pytest.approx(math.pi / 2) and ok[0]  # e_x = (1, 0, 0): atan2(1, 0)
    rot = _random_rot(50)
    traj = _traj_from(rot)
    angle = np.random.default_rng(1).uniform(-np.pi, np.pi, 50)
    turned = turn_about_vertical(traj, angle)
    y0, d0 = root_yaw(traj)
    y1, d1 = root_yaw(turned)
    np.testing.assert_allclose(_wrap(y1 - y0 - angle)[d0], 0, atol=1e-5)
    np.testing.assert_array_equal(d0, d1)  # turning about the vertical keeps the horizontal part
    np.testing.assert_array_equal(turned[:, 6:], traj[:, 6:])
    r1 = rot6d_to_rotmat(torch.from_numpy(turned[:, :6].astype(np.float64))).numpy()
    # the turned rotation is R_y(angle) R exactly (6D keeps its first two rows)
    c, s = np.cos(angle), np.sin(angle)
    ry = np.zeros((50, 3, 3))
    ry[:, 0, 0], ry[:, 0, 2], ry[:, 1, 1], ry[:, 2, 0], ry[:, 2, 2] = c, s, 1, -s, c  # written out: the golden value
    np.testing.assert_allclose(r1, ry @ rot, atol=1e-5)
    np.testing.assert_allclose(rot_y(angle), ry, atol=1e-12)


def test_lying_on_a_side_has_no_yaw():
    side = np.array([[0.0, 1, 0], [-1, 0, 0], [0, 0, 1]])  # e_x -> vertical
    yaw, ok = root_yaw(_traj_from(side[None]))
    assert not ok[0]


def test_carried_yaw_ignores_untrusted_frames_and_wraps_the_short_way():
    t = 120
    true = np.full(t, np.radians(179.0))
    yaw = true + np.random.default_rng(0).normal(0, 0.05, t)  # straddles +-pi
    w = np.ones(t)
    w[40:70] = 0.0
    yaw[40:70] = np.radians(-60.0)  # garbage where untrusted
    out = carried_yaw(yaw, w, sigma=8.0)
    np.testing.assert_allclose(_wrap(out - true), 0, atol=0.05)  # a wrong "mean" through 0 would be ~180 deg off
    assert carried_yaw(yaw, np.zeros(t), 8.0) is None


def test_carried_yaw_interpolates_across_gaps_beyond_the_gaussian():
    t = 200
    yaw = np.zeros(t)
    yaw[:50], yaw[150:] = np.radians(170.0), np.radians(-150.0)  # 40 deg apart across +-pi
    w = np.zeros(t)
    w[:50] = w[150:] = 1.0
    out = carried_yaw(yaw, w, sigma=2.0)
    mid = np.degrees(out[100])
    assert abs(_wrap(np.radians(mid - (-170.0)))) < np.radians(2.0)  # 170 -> 190 (= -170) the short way, not via 0
    assert np.all(np.abs(np.diff(np.unwrap(out))) < np.radians(1.0))  # no jump anywhere


def test_carried_yaw_short_sequences_and_held_ends():
    yaw = np.radians(np.array([10.0, 20.0, 30.0, 0.0, 0.0]))
    w = np.array([0.0, 1.0, 1.0, 0.0, 0.0])
    out = carried_yaw(yaw, w, sigma=1.0)  # kernel (9 taps) longer than the sequence
    assert out.shape == (5,)
    assert np.all(np.isfinite(out))
    assert np.degrees(out[1]) == pytest.approx(np.degrees(out[2]), abs=10) and 20 < np.degrees(out[4]) < 31


def test_carry_heading_recovers_a_turn_hidden_by_garbage():
    t = 300
    true = np.radians(np.linspace(-30, 90, t))  # a slow turn
    hidden = np.zeros(t, bool)
    hidden[100:190] = True
    seen = true + np.random.default_rng(2).normal(0, np.radians(8), t)
    seen[hidden] = np.radians(-150.0)  # the image gives a wrong heading where hidden
    traj = _traj_from(_upright(seen))
    share = np.where(hidden, 0.9, 0.05)
    out = carry_heading(traj, share, tau=0.3, sigma=8.0)
    err_before = np.degrees(np.abs(_wrap(root_yaw(traj)[0] - true)))[hidden].mean()
    err_after = np.degrees(np.abs(_wrap(root_yaw(out)[0] - true)))[hidden].mean()
    assert err_before > 120 and err_after < 10
    np.testing.assert_array_equal(out[:, 6:], traj[:, 6:])
    # nothing trusted: unchanged
    np.testing.assert_array_equal(carry_heading(traj, np.ones(t), tau=0.3, sigma=8.0), traj)


def test_ridge_fit_recovers_a_linear_map_whatever_the_feature_scale():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5)) * np.array([1, 10, 100, 0.1, 3])
    y = x @ np.array([0.5, -0.02, 0.003, 4.0, 0.0]) + 0.25
    mu, sd, w, b = ridge_fit(x, y, lam=1e-8)
    np.testing.assert_allclose(((x - mu) / sd) @ w + b, y, atol=1e-6)
    with pytest.raises(ValueError, match="ridge_fit"):
        ridge_fit(x[:, 0], y, 1.0)


def _head(dim: int = 8, **kw) -> VisibilityHead:
    rng = np.random.default_rng(3)
    return VisibilityHead(mean=rng.normal(size=2 * dim), scale=rng.uniform(0.5, 2, 2 * dim), weight=rng.normal(size=2 * dim),
                          bias=0.1, tau=kw.get("tau", 0.2), sigma=kw.get("sigma", 8.0), backbone=kw.get("backbone", "abc"))


def test_head_predicts_from_pooled_tokens_and_round_trips(tmp_path):
    head = _head()
    tokens = np.random.default_rng(4).normal(size=(7, 12, 8)).astype(np.float32)
    x = np.concatenate([tokens.mean(1), tokens.max(1)], 1)
    np.testing.assert_allclose(pooled_features(tokens), x)
    np.testing.assert_allclose(head.hidden_share(tokens), ((x - head.mean) / head.scale) @ head.weight + 0.1, rtol=1e-5)
    torch.save({"visibility_head": head.to_entry()}, tmp_path / "h.pt")
    back = VisibilityHead.from_entry(torch.load(tmp_path / "h.pt", weights_only=True)["visibility_head"])
    np.testing.assert_array_equal(back.hidden_share(tokens), head.hidden_share(tokens))
    assert (back.tau, back.sigma, back.backbone) == (head.tau, head.sigma, head.backbone)
    with pytest.raises(ValueError, match="16-dim"):
        head.hidden_share(np.zeros((2, 3, 16), np.float32))
    with pytest.raises(ValueError, match="lacks"):
        VisibilityHead.from_entry({"mean": head.mean})
    with pytest.raises(ValueError, match="tau"):
        _head(tau=0.0)


class _Model:
    def __init__(self, head):
        self.visibility_head = head


def _stores(tmp_path, t: int, dim: int):
    from moro.inference.store import FrameStore

    rng = np.random.default_rng(5)
    with FrameStore.create(tmp_path, "tokens", (12, dim), np.float16) as w:
        w.append(rng.normal(size=(t, 12, dim)))
    yaw = np.radians(np.linspace(0, 60, t)) + rng.normal(0, 0.3, t)
    traj = _traj_from(_upright(yaw))
    with FrameStore.create(tmp_path, "traj", (9,), np.float32) as w:
        w.append(traj)
    return FrameStore(tmp_path, "tokens"), {"traj": FrameStore(tmp_path, "traj")}, traj


def test_finish_decoding_writes_the_share_and_carries_only_when_asked(tmp_path):
    head = _head(tau=0.5, sigma=6.0)
    tokens, stores, traj = _stores(tmp_path, 40, 8)
    share = head.hidden_share(tokens.read(0, 40))
    out = finish_decoding(_Model(head), tokens, stores, tmp_path, carry=True)
    np.testing.assert_allclose(out["hidden_share"].read(0, 40), share, rtol=1e-6)
    np.testing.assert_allclose(out["traj"].read(0, 40), carry_heading(traj, share, head.tau, head.sigma), atol=1e-6)
    tokens, stores, traj = _stores(tmp_path / "b", 40, 8)
    out = finish_decoding(_Model(head), tokens, stores, tmp_path / "b", carry=False)
    np.testing.assert_array_equal(out["traj"].read(0, 40), traj)
    tokens, stores, traj = _stores(tmp_path / "c", 40, 8)
    out = finish_decoding(_Model(None), tokens, stores, tmp_path / "c", carry=True)
    assert np.isnan(out["hidden_share"].read(0, 40)).all()
    np.testing.assert_array_equal(out["traj"].read(0, 40), traj)


def test_load_model_attaches_a_matching_head_and_drops_a_stale_one(tiny_checkpoint, tmp_path, caplog):
    from moro.inference.loading import backbone_of, load_model
    from moro.inference.store import tensor_digest
    from moro.training.visibility import write_with_head

    model = load_model(tiny_checkpoint)
    assert model.visibility_head is None
    bb = backbone_of(model)
    dim = bb.dim
    good = _head(dim, backbone=tensor_digest(bb.state_dict()))
    write_with_head(tiny_checkpoint, tmp_path / "with.pt", good)
    loaded = load_model(tmp_path / "with.pt")
    assert loaded.visibility_head is not None and loaded.visibility_head.tau == good.tau
    write_with_head(tiny_checkpoint, tmp_path / "stale.pt", _head(dim, backbone="0" * 16))
    with caplog.at_level("WARNING"):
        assert load_model(tmp_path / "stale.pt").visibility_head is None
    assert "other backbone weights" in caplog.text


def test_infer_carries_the_heading_with_a_head_and_not_without(tiny_checkpoint, person_video, person_boxes, tmp_path,
                                                               monkeypatch):
    """`moro infer` end to end: a checkpoint with a head records the carry and its per-frame shares; the network
    trajectory equals the carry applied to the uncarried one (--no-heading-carry)."""
    import json

    import moro.inference.windows as windows
    from moro.cli import main
    from moro.inference.loading import backbone_of, load_model
    from moro.inference.store import tensor_digest
    from moro.training.visibility import write_with_head

    original = windows.decode_clip

    def varied(model, image, config=None):  # a random network faces one way: give the carry something to do
        import dataclasses

        res = original(model, image, config)
        tr = res.traj[0].numpy()
        return dataclasses.replace(res, traj=torch.from_numpy(turn_about_vertical(tr, 2 * np.sin(0.7 * np.arange(len(tr)))))[None])

    monkeypatch.setattr(windows, "decode_clip", varied)
    model = load_model(tiny_checkpoint)
    bb = backbone_of(model)
    d = 2 * bb.dim
    head = VisibilityHead(np.zeros(d), np.ones(d), np.random.default_rng(0).normal(0, 0.02, d), 0.0, tau=0.5, sigma=4.0,
                          backbone=tensor_digest(bb.state_dict()))
    write_with_head(tiny_checkpoint, tmp_path / "head.pt", head)
    common = ["--boxes", str(person_boxes), "--checkpoint", str(tmp_path / "head.pt"), "--focal", "300",
              "--shape-frames", "12", "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--no-videos"]
    assert main(["infer", str(person_video), "--out", str(tmp_path / "b"), "--no-heading-carry", *common]) == 0
    with np.load(tmp_path / "b" / "motion.npz") as b:
        s0 = b["hidden_share"].astype(np.float64) - head.bias
    k = 0.1 / s0.std()  # rescale the random head: shares spread about 0.5, half of the frames below
    head.weight, head.bias = head.weight * np.float32(k), float(0.5 - k * np.median(s0))
    tau = 0.5
    write_with_head(tiny_checkpoint, tmp_path / "head.pt", head)
    assert main(["infer", str(person_video), "--out", str(tmp_path / "a"), *common]) == 0
    sa, sb = (json.loads((tmp_path / d / "summary.json").read_text())["heading_carry"] for d in "ab")
    assert sa["applied"] and not sb["applied"] and sa["tau"] == pytest.approx(tau)
    assert 10 < sa["trusted_frames"] < 50 and sa["frames"] == 60
    with np.load(tmp_path / "a" / "motion.npz") as a, np.load(tmp_path / "b" / "motion.npz") as b:
        np.testing.assert_allclose(a["hidden_share"], k * b["hidden_share"] + head.bias, atol=1e-4)
        np.testing.assert_allclose(a["traj_cam"], carry_heading(b["traj_cam"], a["hidden_share"], tau, 4.0), atol=1e-5)
        assert np.abs(a["traj_cam"] - b["traj_cam"]).max() > 1e-2
