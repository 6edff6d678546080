"""moro.metrics.local: MPJPE (all / vis / occ), PA-MPJPE, PVE, Accel against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moro.metrics import VisibilitySplit, accel_error, gmpjpe, mpjpe, pa_mpjpe, pool_frames, pve


def _unit_directions(n: int, seed: int) -> torch.Tensor:
    d = torch.from_numpy(np.random.default_rng(seed).normal(size=(n, 3)))
    return d / d.norm(dim=-1, keepdim=True)


def _pelvis_preserving_offset(frames: int, joints: int, norm_m: float, seed: int = 0) -> torch.Tensor:
    """(F, J, 3) offsets of length ``norm_m`` for every joint whose hips (1, 2) cancel out."""
    d = _unit_directions(frames * joints, seed).reshape(frames, joints, 3)
    d[:, 2] = -d[:, 1]
    return d * norm_m


def test_metric_constant_translation_10mm(make_motion):
    gt = make_motion(9)
    pred = gt + torch.tensor([0.006, -0.008, 0.0], dtype=torch.float64)  # |c| = 10 mm
    torch.testing.assert_close(gmpjpe(pred, gt), torch.full((9,), 10.0, dtype=torch.float64))
    assert pa_mpjpe(pred, gt).abs().max() < 1e-9
    assert mpjpe(pred, gt).abs().max() < 1e-9  # the pelvis alignment removes a global offset


def test_metric_10mm_per_joint_offset_gives_mpjpe_10(make_motion):
    gt = make_motion(6)
    pred = gt + _pelvis_preserving_offset(6, 22, 0.010)
    torch.testing.assert_close(mpjpe(pred, gt), torch.full((6,), 10.0, dtype=torch.float64))
    assert (pa_mpjpe(pred, gt) < 10.0).all()  # Procrustes can only lower the error


@pytest.mark.parametrize("frames", [1, 2, 3, 7])
def test_metric_pa_mpjpe_zero_under_any_similarity(frames, make_motion, random_rotations):
    gt = make_motion(frames, seed=frames)
    R = torch.from_numpy(random_rotations(None, frames))
    pred = 0.7 * gt @ R.T + torch.tensor([1.0, 2.0, -3.0], dtype=torch.float64)
    assert pa_mpjpe(pred, gt).shape == (frames,)
    assert pa_mpjpe(pred, gt).abs().max() < 1e-9


def test_metric_mpjpe_visibility_split_by_hand():
    """Joint j of frame t is off by (t + 1) * j mm along x; the hips (1, 2) are exact."""
    gt = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 22, 3)))
    err_mm = torch.tensor([[(t + 1.0) * j for j in range(22)] for t in range(2)], dtype=torch.float64)
    err_mm[:, 1:3] = 0.0
    pred = gt.clone()
    pred[..., 0] += err_mm / 1000.0
    mask = np.zeros((2, 22), dtype=bool)
    mask[0, :4] = True  # frame 0: joints 0-3 visible
    mask[1, :21] = True  # frame 1: all but joint 21 visible
    out = mpjpe(pred, gt, mask=mask)
    assert isinstance(out, VisibilitySplit)
    torch.testing.assert_close(out.all, err_mm.mean(dim=1))
    assert out.vis.shape == (2, 22) and out.occ.shape == (2, 22)
    # vis: frame 0 -> 0 + 0 + 0 + 3; frame 1 -> 2 * (0 + 3 + 4 + ... + 20) = 414; 25 visible joints
    assert pool_frames(out.vis).mean == pytest.approx(417.0 / 25.0)
    # occ: frame 0 -> 4 + 5 + ... + 21 = 225; frame 1 -> 42; 19 occluded joints
    assert pool_frames(out.occ).mean == pytest.approx(267.0 / 19.0)
    assert pool_frames(out.occ).count == 19
    # 0/1 float masks and torch masks give the same split
    out_f = mpjpe(pred, gt, mask=torch.from_numpy(mask.astype(np.float32)))
    torch.testing.assert_close(out_f.vis, out.vis, equal_nan=True)


def test_metric_mpjpe_mask_errors(make_motion):
    gt = make_motion(5)
    with pytest.raises(ValueError, match=r"\(F, J\) = \(5, 22\)"):
        mpjpe(gt, gt, mask=np.ones((4, 22)))
    with pytest.raises(ValueError, match=r"\(F, J\) = \(5, 22\)"):
        mpjpe(gt, gt, mask=np.ones(5))
    with pytest.raises(ValueError, match="0 and 1"):
        mpjpe(gt, gt, mask=np.full((5, 22), 0.5))


def test_metric_pve_uses_each_bodys_own_joint_pelvis(make_motion):
    gt_joints, gt_verts = make_motion(4, seed=1), make_motion(4, seed=2, joints=40)
    shift = torch.tensor([0.3, 0.1, -0.2], dtype=torch.float64)
    zero = pve(gt_verts + shift, gt_verts, pred_joints=gt_joints + shift, gt_joints=gt_joints)
    assert zero.abs().max() < 1e-9
    pred_verts = gt_verts + _unit_directions(4 * 40, 3).reshape(4, 40, 3) * 0.010
    out = pve(pred_verts, gt_verts, pred_joints=gt_joints, gt_joints=gt_joints)
    torch.testing.assert_close(out, torch.full((4,), 10.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="frame"):
        pve(pred_verts[:3], gt_verts[:3], pred_joints=gt_joints, gt_joints=gt_joints)


def test_metric_accel_error_constant_velocity_is_zero(make_motion):
    gt = make_motion(20)
    t = torch.arange(20, dtype=torch.float64)[:, None, None]
    velocity = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 22, 3)))  # per joint, m/frame
    pred = gt + 0.01 * velocity * t
    out = accel_error(pred, gt)
    assert out.shape == (18,)
    assert out.abs().max() < 1e-9


def test_metric_accel_error_quadratic_one_joint(make_motion):
    """Joint 5 accelerates at a = 3 m/s^2 along x: pelvis-aligned error a / 22 on every frame."""
    fps = 30.0
    gt = make_motion(12)
    pred = gt.clone()
    time_s = torch.arange(12, dtype=torch.float64) / fps
    pred[:, 5, 0] += 0.5 * 3.0 * time_s**2
    torch.testing.assert_close(accel_error(pred, gt, fps=fps), torch.full((10,), 3.0 / 22, dtype=torch.float64))
    assert accel_error(pred, gt, fps=fps, drop_ends=True).shape == (8,)
    with pytest.raises(ValueError, match="at least 3 frames"):
        accel_error(pred[:2], gt[:2])
