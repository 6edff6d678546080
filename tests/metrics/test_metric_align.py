"""moro.metrics.align: pelvis / Procrustes / chunk alignment and the supplement-C baseline mapping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moro.metrics import (
    baseline_world_to_camera,
    chunk_align,
    first_frames_align,
    fit_world_to_camera,
    pa_mpjpe,
    pelvis_align,
    pelvis_center,
    procrustes_align,
    umeyama_align,
)


def _naive_pa_mpjpe_mm(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-frame loop with numpy SVD, the metrics.md formula written out (column form)."""
    out = []
    for P, G in zip(pred, gt):
        X1, X2 = P.T - P.T.mean(1, keepdims=True), G.T - G.T.mean(1, keepdims=True)
        K = X1 @ X2.T
        U, _, Vt = np.linalg.svd(K)
        Z = np.eye(3)
        Z[2, 2] = np.sign(np.linalg.det(Vt.T @ U.T))
        R = Vt.T @ Z @ U.T
        s = np.trace(R @ K) / np.sum(X1**2)
        t = G.T.mean(1, keepdims=True) - s * R @ P.T.mean(1, keepdims=True)
        aligned = (s * R @ P.T + t).T
        out.append(np.linalg.norm(aligned - G, axis=-1).mean() * 1000.0)
    return np.array(out)


def _similarity(x: torch.Tensor, R: np.ndarray, s: float, t) -> torch.Tensor:
    return s * x @ torch.from_numpy(R).T + torch.as_tensor(t, dtype=torch.float64)


@pytest.mark.parametrize("frames", [1, 2, 3, 7])
def test_metric_per_frame_pa_equals_naive_loop(frames, make_motion):
    gt = make_motion(frames, seed=frames)
    pred = gt + torch.from_numpy(np.random.default_rng(frames).normal(scale=0.05, size=gt.shape))
    expected = _naive_pa_mpjpe_mm(pred.numpy(), gt.numpy())
    np.testing.assert_allclose(pa_mpjpe(pred, gt).numpy(), expected, rtol=1e-10, atol=1e-9)
    assert procrustes_align(pred, gt).shape == (frames, 22, 3)


@pytest.mark.parametrize("frames", [1, 2, 3, 7])
def test_metric_per_frame_pa_aligns_independent_similarities(frames, make_motion, random_rotations):
    gt = make_motion(frames, seed=1)
    Rs = random_rotations(frames, 2).reshape(frames, 3, 3)
    pred = torch.stack([_similarity(g, R, 0.5 + f, [f, -1.0, 2.0]) for f, (g, R) in enumerate(zip(gt, Rs))])
    torch.testing.assert_close(procrustes_align(pred, gt), gt)
    assert pa_mpjpe(pred, gt).abs().max() < 1e-9


def test_metric_pelvis_is_mean_of_hips():
    joints = torch.zeros(2, 22, 3, dtype=torch.float64)
    joints[:, 1] = torch.tensor([0.1, 1.0, 0.0])
    joints[:, 2] = torch.tensor([-0.3, 1.0, 0.4])
    joints[1] += 5.0
    expected = torch.tensor([[-0.1, 1.0, 0.2], [4.9, 6.0, 5.2]], dtype=torch.float64)
    torch.testing.assert_close(pelvis_center(joints), expected)
    aligned = pelvis_align(joints)
    torch.testing.assert_close(aligned[:, 1:3].mean(1), torch.zeros(2, 3, dtype=torch.float64))
    verts = torch.ones(2, 5, 3, dtype=torch.float64)
    torch.testing.assert_close(pelvis_align(verts, joints)[1, 0], torch.tensor([-3.9, -5.0, -4.2], dtype=torch.float64))


def test_metric_umeyama_and_first_frames_align_recover_one_similarity(make_motion, random_rotations):
    gt = make_motion(40, seed=3)
    pred = _similarity(gt, random_rotations(None, 4), 1.3, [0.5, 0.0, -2.0])
    torch.testing.assert_close(umeyama_align(pred, gt), gt)
    torch.testing.assert_close(first_frames_align(pred, gt), gt)
    # rigid Umeyama cannot undo a scale
    assert (umeyama_align(pred, gt, with_scale=False) - gt).abs().max() > 1e-3


@pytest.mark.parametrize("fit", ["first_two", "all"])
def test_metric_chunk_align_fits_each_100_frame_chunk_separately(fit, make_motion, random_rotations):
    gt = make_motion(230, seed=5)  # chunks [0, 100), [100, 200), [200, 230)
    parts = [(0, 100, 0.9, [1.0, 0, 0]), (100, 200, 1.2, [0, 2.0, 0]), (200, 230, 1.0, [0, 0, -3.0])]
    pred = torch.cat(
        [_similarity(gt[a:b], random_rotations(None, 10 + i), s, t) for i, (a, b, s, t) in enumerate(parts)]
    )
    torch.testing.assert_close(chunk_align(pred, gt, fit=fit), gt)
    # a misplaced chunk boundary would not recover the ground truth
    assert (chunk_align(pred, gt, fit=fit, chunk_size=75) - gt).abs().max() > 1e-2


def _rotation_angle_deg(A: np.ndarray, B: np.ndarray) -> float:
    c = (np.trace(A.T @ B) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def test_metric_baseline_world_to_camera_recovers_known_rigid_transform(make_motion, random_rotations):
    rng = np.random.default_rng(0)
    frames = 120
    joints_world = make_motion(frames, seed=7)
    orient_world = torch.from_numpy(random_rotations(frames, 8))
    R_true, t_true = random_rotations(None, 9), np.array([0.2, -0.4, 4.0])
    # camera-frame predictions: the same motion under (R_true, t_true), plus independent noise
    small = torch.linalg.matrix_exp(
        torch.from_numpy(_skew(rng.normal(scale=np.radians(2.0), size=(frames, 3))))
    )  # ~2 degrees of independent orientation noise per frame
    orient_cam = torch.from_numpy(R_true) @ orient_world @ small
    joints_cam = _similarity(joints_world, R_true, 1.0, t_true) + torch.from_numpy(
        rng.normal(scale=0.02, size=joints_world.shape)
    )
    out = baseline_world_to_camera(orient_cam, orient_world, joints_cam, joints_world)
    assert _rotation_angle_deg(out.R_w2c.numpy(), R_true) < 0.5
    assert np.linalg.norm(out.t_w2c.numpy() - t_true) < 0.02
    assert out.joints_cam.shape == joints_world.shape and out.verts_cam is None
    assert (out.joints_cam - joints_cam).norm(dim=-1).mean() < 0.05
    torch.testing.assert_close(out.orient_cam, out.R_w2c @ orient_world)


def test_metric_baseline_exact_without_noise_and_maps_vertices(make_motion, random_rotations):
    joints_world = make_motion(30, seed=11)
    verts_world = make_motion(30, seed=12, joints=50)
    orient_world = torch.from_numpy(random_rotations(30, 13))
    R_true, t_true = random_rotations(None, 14), [1.0, 2.0, 3.0]
    R, t = fit_world_to_camera(
        torch.from_numpy(R_true) @ orient_world,
        orient_world,
        _similarity(joints_world[:, 0], R_true, 1.0, t_true),
        joints_world[:, 0],
    )
    torch.testing.assert_close(R, torch.from_numpy(R_true))
    torch.testing.assert_close(t, torch.tensor(t_true, dtype=torch.float64))
    out = baseline_world_to_camera(
        (torch.from_numpy(R_true) @ orient_world).numpy(),  # numpy accepted
        orient_world,
        _similarity(joints_world, R_true, 1.0, t_true),
        joints_world,
        verts_world,
    )
    torch.testing.assert_close(out.verts_cam, _similarity(verts_world, R_true, 1.0, t_true))


def test_metric_baseline_rejects_axis_angle_orientations(make_motion):
    j = make_motion(10)
    with pytest.raises(ValueError, match="rotvec_to_rotmat"):
        baseline_world_to_camera(torch.zeros(10, 3), torch.zeros(10, 3), j, j)


def _skew(w: np.ndarray) -> np.ndarray:
    x, y, z = w[..., 0], w[..., 1], w[..., 2]
    o = np.zeros_like(x)
    return np.stack([o, -z, y, z, o, -x, -y, x, o], axis=-1).reshape(*w.shape[:-1], 3, 3)
