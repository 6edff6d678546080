"""benchmarks/heading_error.py: the rotation and facing-yaw diagnostics on skeletons with known answers."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location(
    "heading_error", Path(__file__).resolve().parents[2] / "benchmarks" / "heading_error.py")
heading = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(heading)


def _yaw(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])


@pytest.fixture
def skeleton():
    rng = np.random.default_rng(0)
    j = rng.normal(size=(22, 3))
    j[heading.PELVIS[0]], j[heading.PELVIS[1]] = [-0.1, 0.0, 0.0], [0.1, 0.0, 0.0]
    j[0], j[heading.NECK] = [0.0, 0.0, 0.0], [0.0, -0.5, 0.0]  # camera y points down
    return j - j[list(heading.PELVIS)].mean(0)


def test_kabsch_recovers_a_known_rotation(skeleton):
    r = _yaw(50.0) @ np.array([[1.0, 0, 0], [0, np.cos(0.3), -np.sin(0.3)], [0, np.sin(0.3), np.cos(0.3)]])
    np.testing.assert_allclose(heading.kabsch(skeleton, skeleton @ r.T), r, atol=1e-10)


def test_facing_yaw_turns_with_the_body(skeleton):
    y0 = heading.facing_yaw(skeleton)
    for deg in (-120.0, 35.0, 90.0):
        turned = heading.facing_yaw(skeleton @ _yaw(deg).T)
        assert (turned - y0 - deg + 180) % 360 - 180 == pytest.approx(0.0, abs=1e-9)


def test_circular_std_wraps_around():
    assert heading.circular_std(np.array([179.0, -179.0])) == pytest.approx(1.0, abs=1e-3)
    assert heading.circular_std(np.array([10.0, 10.0, 10.0])) == pytest.approx(0.0, abs=1e-3)


def test_hidden_runs():
    assert heading.hidden_runs(np.array([1, 1, 0, 0, 1, 0, 1, 1, 1], dtype=bool)) == [2, 1, 3]
    assert heading.hidden_runs(np.zeros(4, dtype=bool)) == []
    assert heading.hidden_runs(np.ones(3, dtype=bool)) == [3]


def test_rot_y_adds_to_the_facing_yaw(skeleton):
    turned = skeleton @ heading.rot_y(np.radians(40.0)).T
    d = heading.facing_yaw(turned) - heading.facing_yaw(skeleton)
    assert (d - 40.0 + 180) % 360 - 180 == pytest.approx(0.0, abs=1e-9)


def test_hold_heading_turns_hidden_frames_to_the_nearest_seen_heading(skeleton):
    """Frames 2..4 hidden and turned away: each gets back the yaw of its nearest seen frame (1 or 5), whose
    headings differ; seen frames are untouched, and with every frame hidden nothing changes."""
    yaws = [0.0, 0.0, 120.0, -150.0, 60.0, 30.0, 30.0]
    seq = np.stack([skeleton @ _yaw(y).T for y in yaws])
    hidden = np.array([0, 0, 1, 1, 1, 0, 0], dtype=bool)
    held = heading.hold_heading(seq, hidden)
    got = [heading.facing_yaw(j) - heading.facing_yaw(skeleton) for j in held]
    want = [0.0, 0.0, 0.0, 0.0, 30.0, 30.0, 30.0]  # frame 3 is as near to 1 as to 5: the earlier one
    assert np.allclose((np.array(got) - want + 180) % 360 - 180, 0.0, atol=1e-9)
    np.testing.assert_array_equal(held[~hidden], seq[~hidden])
    np.testing.assert_array_equal(heading.hold_heading(seq, np.ones(7, dtype=bool)), seq)


def test_set_heading_gives_each_chosen_frame_the_asked_yaw(skeleton):
    """Chosen frames end at the asked facing yaw with their shape kept (a rotation about the vertical);
    the others are untouched."""
    seq = np.stack([skeleton @ _yaw(y).T for y in (10.0, -70.0, 170.0)])
    frames = np.array([False, True, True])
    out = heading.set_heading(seq, np.array([0.0, 45.0, -135.0]), frames)
    got = np.array([heading.facing_yaw(j) for j in out])
    want = np.array([heading.facing_yaw(seq[0]), 45.0, -135.0])
    assert np.allclose((got - want + 180) % 360 - 180, 0.0, atol=1e-9)
    np.testing.assert_array_equal(out[0], seq[0])
    for a, b in zip(out[1:], seq[1:]):  # same pairwise distances: a rigid turn
        da = np.linalg.norm(a[:, None] - a[None], axis=-1)
        db = np.linalg.norm(b[:, None] - b[None], axis=-1)
        np.testing.assert_allclose(da, db, atol=1e-12)
        np.testing.assert_allclose(a[:, 1], b[:, 1], atol=1e-12)  # heights kept: the axis is vertical


def test_interpolated_yaw_goes_the_short_way_round_and_holds_at_the_ends():
    """170 -> -170 deg across three hidden frames passes through 180 (not 0); hidden frames before the first
    seen one take its yaw; seen frames keep theirs; all hidden leaves the input as it is."""
    yaw = np.array([5.0, 170.0, 0.0, 0.0, 0.0, -170.0, 33.0])
    hidden = np.array([1, 0, 1, 1, 1, 0, 0], dtype=bool)
    got = heading.interpolated_yaw(yaw, hidden)
    want = np.array([170.0, 170.0, 175.0, 180.0, 185.0, -170.0, 33.0])
    assert np.allclose((got - want + 180) % 360 - 180, 0.0, atol=1e-9)
    np.testing.assert_array_equal(heading.interpolated_yaw(yaw, np.ones(7, dtype=bool)), yaw)


def test_pose_spread_is_zero_for_one_body_and_sees_a_bending_leg(skeleton):
    same = np.stack([skeleton @ _yaw(d).T for d in (0.0, 40.0, 170.0)])  # one body, turned: no pose change
    assert heading.pose_spread(same)["hip-ankle distance"] == pytest.approx(0.0, abs=1e-12)
    bent = np.stack([skeleton, skeleton])
    bent[1, 7] = bent[1, 1] + 0.5 * (bent[1, 7] - bent[1, 1])  # left ankle halfway to the hip
    d = np.linalg.norm(skeleton[7] - skeleton[1])
    assert heading.pose_spread(bent)["hip-ankle distance"] == pytest.approx(np.std([d, 0.5 * d]) / 2, rel=1e-12)
