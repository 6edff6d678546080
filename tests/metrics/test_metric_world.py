"""moro.metrics.world: GMPJPE, W-/WA-MPJPE100, RTE, G-accel, jitter, foot sliding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from moro.metrics import FOOT_VERTICES_SMPL, foot_sliding, g_accel_error, jitter, pool_frames, rte, w_mpjpe, wa_mpjpe


def _transform(x: torch.Tensor, R: np.ndarray, s: float, t) -> torch.Tensor:
    return s * x @ torch.from_numpy(R).T + torch.as_tensor(t, dtype=torch.float64)


@pytest.mark.parametrize("frames", [1, 2, 3, 201, 250])
def test_metric_world_similarity_of_gt_gives_zero_w_and_wa(frames, make_motion, random_rotations):
    gt = make_motion(frames, seed=frames)
    pred = _transform(gt, random_rotations(None, 1), 1.4, [3.0, -1.0, 0.5])
    assert wa_mpjpe(pred, gt).shape == (frames,)
    assert wa_mpjpe(pred, gt).abs().max() < 1e-8
    assert w_mpjpe(pred, gt).abs().max() < 1e-8


def test_metric_w_mpjpe_fits_first_two_frames_of_each_chunk(make_motion):
    """Exact on the first two frames of each chunk, 10 mm off elsewhere -> W-MPJPE 0 / 10 mm."""
    gt = make_motion(230, seed=3)
    offset = torch.zeros(230, 1, 3, dtype=torch.float64)
    offset[..., 2] = 0.010
    exact = torch.zeros(230, dtype=torch.bool)
    exact[[0, 1, 100, 101, 200, 201]] = True
    offset[exact] = 0.0
    expected = torch.where(exact, 0.0, 10.0).to(torch.float64)
    torch.testing.assert_close(w_mpjpe(gt + offset, gt), expected)
    # WA fits the whole chunk, so it spreads the offset: neither 0 nor 10 on the drifted frames
    wa = wa_mpjpe(gt + offset, gt)
    assert 0.0 < wa[50] < 10.0


def test_metric_rte_zero_for_rigidly_moved_trajectory(make_motion, random_rotations):
    gt = make_motion(80, seed=4)
    pred = _transform(gt, random_rotations(None, 5), 1.0, [10.0, 0.0, -4.0])
    out = rte(pred, gt)
    assert out.shape == (80,)
    assert out.abs().max() < 1e-8


def test_metric_rte_by_hand():
    """GT root 0, 1, 2 m along x (L = 2 m); prediction twice as fast: rigid fit leaves 1, 0, 1 m."""
    gt = torch.zeros(3, 22, 3, dtype=torch.float64)
    gt[:, 0, 0] = torch.tensor([0.0, 1.0, 2.0])
    pred = torch.zeros(3, 22, 3, dtype=torch.float64)
    pred[:, 0, 0] = torch.tensor([0.0, 2.0, 4.0])
    torch.testing.assert_close(rte(pred, gt), torch.tensor([50.0, 0.0, 50.0], dtype=torch.float64))


def test_metric_rte_static_subject_is_nan_with_warning(make_motion):
    gt = make_motion(1).expand(10, 22, 3).clone()
    with pytest.warns(RuntimeWarning, match="static"):
        out = rte(gt + 0.1, gt)
    assert out.shape == (10,) and torch.isnan(out).all()


def test_metric_g_accel_error_of_constant_acceleration(make_motion):
    fps = 30.0
    gt = make_motion(15)
    time_s = (torch.arange(15, dtype=torch.float64) / fps)[:, None, None]
    a = torch.tensor([0.0, -2.0, 0.0], dtype=torch.float64)  # |a| = 2 m/s^2, every joint
    out = g_accel_error(gt + 0.5 * a * time_s**2, gt, fps)
    torch.testing.assert_close(out, torch.full((13,), 2.0, dtype=torch.float64))
    assert g_accel_error(gt + 0.3 * time_s, gt, fps).abs().max() < 1e-9  # constant velocity


@pytest.mark.parametrize("fps", [30.0, 60.0])
def test_metric_jitter_of_cubic_is_6a(fps):
    """x(t) = a t^3 (t in s) has x''' = 6a m/s^3 -> jitter 6a / 10 in units of 10 m/s^3."""
    a = 2.0
    time_s = torch.arange(25, dtype=torch.float64) / fps
    pred = torch.zeros(25, 22, 3, dtype=torch.float64)
    pred[..., 0] = (a * time_s**3)[:, None]
    out = jitter(pred, fps)
    assert out.shape == (22,)
    torch.testing.assert_close(out, torch.full((22,), 6 * a / 10, dtype=torch.float64))


def test_metric_jitter_constant_velocity_is_zero(make_motion):
    rng = np.random.default_rng(0)
    start = torch.from_numpy(rng.normal(size=(1, 22, 3)))
    velocity = torch.from_numpy(rng.normal(size=(1, 22, 3)))
    pred = start + velocity * torch.arange(40, dtype=torch.float64)[:, None, None] / 30
    assert jitter(pred).abs().max() < 1e-6
    with pytest.raises(ValueError, match="at least 4 frames"):
        jitter(pred[:3])


def test_metric_foot_sliding_by_hand():
    """3 frames, 4 foot vertices, moves along x in mm; contact when GT moves < 10 mm."""
    gt_steps_mm = np.array([[0.0, 5.0, 20.0, 0.0], [0.0, 5.0, 20.0, 50.0]])  # (F-1, 4)
    pred_steps_mm = np.array([[3.0, 0.0, 99.0, 7.0], [4.0, 10.0, 99.0, 99.0]])
    gt = torch.zeros(3, 4, 3, dtype=torch.float64)
    pred = torch.zeros(3, 4, 3, dtype=torch.float64)
    gt[1:, :, 0] = torch.from_numpy(np.cumsum(gt_steps_mm, axis=0) / 1000.0)
    pred[1:, :, 0] = torch.from_numpy(np.cumsum(pred_steps_mm, axis=0) / 1000.0)
    out = foot_sliding(pred, gt)
    nan = math.nan
    expected = torch.tensor([[3.0, 0.0, nan, 7.0], [4.0, 10.0, nan, nan]], dtype=torch.float64)
    torch.testing.assert_close(out, expected, equal_nan=True)
    pooled = pool_frames(out)
    assert pooled.mean == pytest.approx((3 + 4 + 0 + 10 + 7) / 5)
    assert (pooled.count, pooled.n_undefined) == (5, 3)


def test_metric_foot_sliding_wants_the_four_foot_vertices():
    verts = torch.zeros(5, 6890, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="FOOT_VERTICES_SMPL"):
        foot_sliding(verts, verts)
    feet = verts[:, list(FOOT_VERTICES_SMPL)]
    assert foot_sliding(feet, feet).shape == (4, 4)
