"""Tests of the procedural motion source (moro.synth.motion) on the 615-vertex Anny body.

Each generated clip is made once per module (fixtures with caches) and checked for real
properties: determinism, the gross behaviour of every motion type, continuity across
transitions, ground-truth foot sliding (metrics.md definition, moro.metrics), ground
penetration, joint limits, contact labels, lengths and input errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from moro.body import load_anny
from moro.body.anny_model import ADULT_PHENOTYPE_RANGE
from moro.metrics.world import foot_sliding
from moro.synth.motion import (
    MOTION_TYPES, Motion, MotionSpec, build_rig, clamp_to_limits, generate_motion, joint_angles,
    limit_violation, resolve_limits,
)
from moro.synth.motion import so3

FRAMES = 150  # single-type clips: 5 s
MIXED = (11, 12, 13)  # seeds of mixed 300-frame clips


@pytest.fixture(scope="module")
def body():
    return load_anny("notoes_collapse5pc")


class _Clips:
    """Generated clips and their posed meshes, made on first use."""

    def __init__(self, body):
        self.body = body
        self.cache: dict = {}

    def get(self, frames: int, seed: int, types=None) -> tuple[Motion, object]:
        key = (frames, seed, None if types is None else tuple(types))
        if key not in self.cache:
            m = generate_motion(self.body, frames, seed, types=types)
            self.cache[key] = (m, m.pose(self.body))
        return self.cache[key]


@pytest.fixture(scope="module")
def clips(body):
    return _Clips(body)


def _heading(root_rot: torch.Tensor) -> np.ndarray:
    fwd = root_rot[:, :, 2].double().numpy()  # body +Z in the world
    return np.unwrap(np.arctan2(fwd[:, 0], fwd[:, 2]))


def _pooled_foot_sliding_mm(body, outs) -> float:
    values = []
    for out in outs:
        feet = body.foot_points(out.vertices)
        values.append(foot_sliding(feet, feet).flatten())
    v = torch.cat(values)
    return float(v[~v.isnan()].mean())


# ---------------------------------------------------------------- outputs and determinism
def test_output_shapes_dtypes_and_shape_sampling(body, clips):
    m, out = clips.get(FRAMES, 0)
    t = FRAMES
    assert m.body_pose.shape == (t, 35, 3, 3) and m.body_pose.dtype == torch.float32
    assert m.root_rot.shape == (t, 3, 3) and m.root_trans.shape == (t, 3)
    assert m.betas.shape == (136,) and m.phenotypes.shape == (6,)
    assert m.contacts.shape == (t, 4) and m.contacts.dtype == torch.bool
    assert len(m.labels) == t and set(m.labels) <= set(MOTION_TYPES) and m.fps == 30.0
    assert m.segments[0][1] == 0 and m.segments[-1][2] == t
    lo, hi = (torch.tensor(x) for x in zip(*ADULT_PHENOTYPE_RANGE.values()))
    assert ((m.phenotypes >= lo) & (m.phenotypes <= hi)).all()
    torch.testing.assert_close(m.betas, body.phenotype_to_betas(m.phenotypes))
    eye = torch.eye(3).expand(t, 35, 3, 3)
    torch.testing.assert_close(m.body_pose @ m.body_pose.transpose(-1, -2), eye, atol=1e-5, rtol=0)
    assert torch.isfinite(out.vertices).all()


def test_same_seed_same_arrays_and_different_seed_differs(body):
    a = generate_motion(body, 90, 5)
    b = generate_motion(body, 90, 5)
    c = generate_motion(body, 90, 6)
    for name in ("body_pose", "betas", "phenotypes", "root_rot", "root_trans", "contacts"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.labels == b.labels and a.segments == b.segments
    assert not torch.equal(a.root_trans, c.root_trans)


@pytest.mark.parametrize("frames", [1, 2, 1000])
def test_arbitrary_length(body, clips, frames):
    m, out = clips.get(frames, 3)
    assert m.num_frames == frames and len(m.labels) == frames
    assert torch.isfinite(out.vertices).all()
    assert float(out.vertices[..., 1].min()) >= -0.01


# ---------------------------------------------------------------- each motion type alone
def test_walk_moves_at_walking_speed(clips):
    for seed in (0, 1):
        m, _ = clips.get(FRAMES, seed, ["walk"])
        xz = m.root_trans[:, [0, 2]]
        speed = float((xz[1:] - xz[:-1]).norm(dim=-1).mean()) * m.fps
        assert 0.5 <= speed <= 2.0, speed
        assert set(m.labels) == {"walk"}
        assert not m.contacts.all() and m.contacts.any()  # feet alternate between contact and swing


def test_jog_is_faster_than_walking(clips):
    m, _ = clips.get(FRAMES, 0, ["jog"])
    xz = m.root_trans[:, [0, 2]]
    assert 1.7 <= float((xz[1:] - xz[:-1]).norm(dim=-1).mean()) * m.fps <= 3.3
    both_off = ~m.contacts[:, [0, 1]].any(1) & ~m.contacts[:, [2, 3]].any(1)
    assert both_off.any()  # flight phases


def test_idle_stays_in_place(clips):
    m, _ = clips.get(FRAMES, 0, ["idle"])
    xz = m.root_trans[:, [0, 2]]
    assert float((xz - xz.mean(0)).norm(dim=-1).max()) < 0.15
    assert float(m.contacts.float().mean()) > 0.9


@pytest.mark.parametrize("kind,sign_fwd", [("side_step", 0), ("back_step", -1)])
def test_side_and_back_steps_move_the_right_way(clips, kind, sign_fwd):
    m, _ = clips.get(FRAMES, 2, [kind])
    heading = _heading(m.root_rot)[0]
    d = (m.root_trans[-1] - m.root_trans[0]).double().numpy()
    fwd = d[0] * math.sin(heading) + d[2] * math.cos(heading)
    lat = d[0] * math.cos(heading) - d[2] * math.sin(heading)
    if sign_fwd == 0:
        assert abs(lat) > 0.3 and abs(lat) > 2 * abs(fwd), (lat, fwd)
    else:
        assert fwd < -0.3 and abs(fwd) > 2 * abs(lat), (lat, fwd)


def test_turn_changes_heading_in_place(clips):
    m, _ = clips.get(FRAMES, 1, ["turn"])
    yaw = _heading(m.root_rot)
    assert abs(yaw.max() - yaw.min()) > math.radians(45)
    xz = m.root_trans[:, [0, 2]]
    assert float((xz - xz.mean(0)).norm(dim=-1).max()) < 0.3


@pytest.mark.parametrize("kind", ["squat", "sit"])
def test_squat_and_sit_lower_the_pelvis(clips, kind):
    m, _ = clips.get(FRAMES, 0, [kind])
    y = m.root_trans[:, 1]
    assert float(y.max() - y.min()) > 0.2


def test_pick_up_brings_a_hand_low(body, clips):
    m, out = clips.get(FRAMES, 0, ["pick_up"])
    j = body.joints22(out.vertices)
    assert float(j[:, [20, 21], 1].min()) < 0.6  # a wrist below hip height
    assert float(m.root_trans[:, 1].max() - m.root_trans[:, 1].min()) > 0.1


def test_reach_raises_an_arm(body, clips):
    m, out = clips.get(FRAMES, 0, ["reach"])
    j = body.joints22(out.vertices)
    upper = j[:, [18, 19]] - j[:, [16, 17]]  # shoulder -> elbow
    elevation = torch.acos((-upper[..., 1] / upper.norm(dim=-1)).clamp(-1, 1))
    assert float(elevation.max()) > math.radians(50)


def test_wave_lifts_a_wrist_above_the_head(body, clips):
    m, out = clips.get(FRAMES, 0, ["wave"])
    j = body.joints22(out.vertices)
    assert float((j[:, [20, 21], 1].max(1).values - j[:, 15, 1]).max()) > 0.0


def test_gesture_moves_the_arms(body, clips):
    m, out = clips.get(FRAMES, 0, ["gesture"])
    j = body.joints22(out.vertices)
    rel = j[:, [20, 21]] - j[:, [0]]
    assert float(rel.std(0).max()) > 0.04


def test_every_type_alone_is_clean(body, clips):
    """Each type generated alone: no ground penetration, within limits, no foot sliding."""
    limits = None
    for kind in MOTION_TYPES:
        m, out = clips.get(FRAMES, 0, [kind])
        assert set(m.labels) == {kind}
        assert float(out.vertices[..., 1].min()) >= -0.01, kind
        assert _pooled_foot_sliding_mm(body, [out]) <= 5.0, kind
        limits = limits or resolve_limits(build_rig(body, m.betas))
        assert limit_violation(limits, m.body_pose.double().numpy()).max() < 1e-3, kind


# ---------------------------------------------------------------- mixed sequences
def test_mixed_sequences_foot_sliding_and_penetration(body, clips):
    outs = [clips.get(300, s)[1] for s in MIXED] + [clips.get(FRAMES, 0, ["jog"])[1]]
    fs = _pooled_foot_sliding_mm(body, outs)
    assert fs <= 5.0, fs
    for out in outs:
        assert float(out.vertices[..., 1].min()) >= -0.01


def test_mixed_sequences_respect_joint_limits(body, clips):
    for s in MIXED:
        m, _ = clips.get(300, s)
        limits = resolve_limits(build_rig(body, m.betas))
        assert limit_violation(limits, m.body_pose.double().numpy()).max() < 1e-3


def test_transitions_are_continuous(body, clips):
    for s in MIXED:
        m, out = clips.get(300, s)
        j = body.joints22(out.vertices)
        step = (j[1:] - j[:-1]).norm(dim=-1)  # m / frame
        assert float(step.max()) < 0.4  # < 12 m/s for any joint (a running foot peaks near 9)
        root = (m.root_trans[1:] - m.root_trans[:-1]).norm(dim=-1)
        assert float(root.max()) < 0.12  # < 3.6 m/s
        accel = (j[2:] - 2 * j[1:-1] + j[:-2]).norm(dim=-1).amax(-1)  # (t-2,)
        for _, start, _ in m.segments[1:]:  # around each boundary: no jerk beyond the clip's own gait
            window = accel[max(start - 4, 0): start + 3]
            assert float(window.max()) <= max(0.08, float(accel.quantile(0.99))), (s, start)
        # parent-relative rotations change by less than 0.6 rad per frame (18 rad/s; a knee
        # extends at up to ~15 rad/s in late swing)
        rel = m.body_pose[1:].transpose(-1, -2) @ m.body_pose[:-1]
        angle = torch.acos(((rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1))
        assert float(angle.max()) < 0.6


def test_contact_labels_follow_joint_speed(body, clips):
    m, out = clips.get(300, MIXED[0])
    j = body.joints22(out.vertices)[:, [7, 10, 8, 11]]
    speed = (j[1:] - j[:-1]).norm(dim=-1) * m.fps
    assert torch.equal(m.contacts[:-1], speed < 0.3)


# ---------------------------------------------------------------- joint limits module
def test_limits_round_trip_and_clamp(body):
    limits = resolve_limits(build_rig(body, body.zero_betas()))
    rng = np.random.default_rng(0)
    local = so3.rotvec_to_matrix(rng.normal(size=(6, 35, 3)) * 0.6)
    from moro.synth.motion.limits import angles_to_local

    back = angles_to_local(limits, joint_angles(limits, local))
    np.testing.assert_allclose(back, local[:, limits.rows], atol=1e-9)
    clamped, excess = clamp_to_limits(limits, local)
    assert excess > 0 and limit_violation(limits, clamped).max() < 1e-9
    rest = np.broadcast_to(np.eye(3), (1, 35, 3, 3))
    assert limit_violation(limits, rest).max() == 0.0  # Anny's rest pose is anatomically valid


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs,match", [
    ({"num_frames": 0}, "num_frames"),
    ({"num_frames": -5}, "num_frames"),
    ({"fps": 0.0}, "fps"),
    ({"fps": -30.0}, "fps"),
    ({"seed": -1}, "seed"),
    ({"types": ["walk", "moonwalk"]}, "moonwalk"),
    ({"types": {"walk": 0.0}}, "positive weight"),
])
def test_bad_input_raises(body, kwargs, match):
    args = {"num_frames": 10, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        generate_motion(body, **args)


def test_unknown_type_lists_valid_names(body):
    with pytest.raises(ValueError) as err:
        generate_motion(body, 10, 0, types=["dance"])
    assert all(k in str(err.value) for k in MOTION_TYPES)


def test_spec_and_weights(body):
    spec = MotionSpec(num_frames=40, seed=2, types={"idle": 1.0, "wave": 2.0})
    m = generate_motion(body, 0, spec=spec)  # spec overrides the positional arguments
    assert m.num_frames == 40 and set(m.labels) <= {"idle", "wave"}
