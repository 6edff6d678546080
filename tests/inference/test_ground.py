"""Ground plane and world frame: RANSAC recovers a tilted plane despite outliers; the world frame is Y up."""

import numpy as np
import pytest

from moro.inference.ground import fit_plane_ransac, slow_foot_points, world_from_ground


def _tilted_ground(rng, n=300, outliers=120, pitch=0.35, roll=-0.1, height=1.4, noise=0.004):
    """Camera-frame points of a floor 1.4 m below a camera pitched down by ``pitch`` rad (plus outliers)."""
    c, s = np.cos(pitch), np.sin(pitch)
    Rx = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    cr, sr = np.cos(roll), np.sin(roll)
    Rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    R = Rz @ Rx  # world (y down = gravity, OpenCV-like) -> camera
    pts_w = np.c_[rng.uniform(-2, 2, n), np.full(n, height), rng.uniform(2, 8, n)]
    pts_w[:, 1] += rng.normal(0, noise, n)
    normal_cam = R @ np.array([0.0, -1.0, 0.0])  # up
    offset = -normal_cam @ (R @ np.array([0, height, 0]))
    out = rng.uniform([-2, -1, 2], [2, 1.2, 8], (outliers, 3))  # off the floor (above it: body points)
    return np.r_[pts_w @ R.T, out @ R.T], normal_cam, offset


def test_ransac_recovers_a_tilted_plane_with_outliers():
    rng = np.random.default_rng(0)
    pts, n_true, d_true = _tilted_ground(rng)
    plane = fit_plane_ransac(pts, threshold=0.02, seed=1)
    angle = np.degrees(np.arccos(np.clip(plane.normal @ n_true, -1, 1)))
    assert angle < 0.5 and abs(plane.offset - d_true) < 0.005
    assert 290 <= plane.inliers <= 310 and plane.source == "ransac"
    assert fit_plane_ransac(pts, seed=1).normal @ plane.normal == pytest.approx(1.0)  # deterministic


def test_world_frame_puts_planted_feet_on_y0_and_y_up():
    rng = np.random.default_rng(1)
    pts, n_true, d_true = _tilted_ground(rng, outliers=0, noise=0.0)
    t = 40
    feet = np.stack([pts[rng.choice(len(pts), 4)] for _ in range(t)])  # (t, 4, 3), moving: not slow
    feet[10:30] = feet[10]  # planted for 20 frames
    root = feet[:, :2].mean(1) + 0.9 * n_true  # a body ~0.9 m above the feet
    world = world_from_ground(feet, root, heading="camera", min_points=12)
    assert world.plane.source == "ransac"
    R = world.R_c2w
    assert np.allclose(R @ R.T, np.eye(3), atol=1e-9) and np.linalg.det(R) == pytest.approx(1.0)
    assert np.allclose(world.points(feet[10:30])[..., 1], 0, atol=1e-6)  # planted feet on the ground
    assert np.allclose(R @ n_true, [0, 1, 0], atol=1e-6)  # ground normal -> +Y
    assert world.points(root[0]) == pytest.approx([0, 0.9, 0], abs=1e-6)  # origin under the first root position
    z_cam = R.T @ np.array([0, 0, 1.0])  # world +Z in camera coordinates: the view direction on the ground
    assert z_cam @ np.array([0, 0, 1.0]) > 0.9 and abs(z_cam @ n_true) < 1e-9
    assert np.allclose(world.T_w2c @ world.T_c2w, np.eye(4))


def test_body_heading_and_fallback():
    t = 20
    feet = np.zeros((t, 4, 3)) + np.array([0.0, 1.6, 4.0])
    feet += np.linspace(0, 1, t)[:, None, None] * np.array([0.5, 0.0, 0.0])  # always moving: no slow points
    root = feet[:, 0] + np.array([0, -0.9, 0])
    yaw = np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])  # body +Z along camera +X... times a flip below
    R_body = np.diag([1.0, -1.0, -1.0]) @ yaw
    world = world_from_ground(feet, root, np.repeat(R_body[None], t, 0), heading="body")
    assert world.plane.source == "camera_up" and world.heading == "body"
    assert np.allclose(world.points(feet)[..., 1], 0, atol=1e-9)
    facing = world.rotations(R_body) @ np.array([0, 0, 1.0])
    assert facing @ np.array([0, 0, 1.0]) == pytest.approx(1.0)  # the body faces world +Z


def test_slow_points():
    feet = np.zeros((5, 4, 3))
    feet[:, 0, 0] = [0, 0.005, 0.010, 0.05, 0.10]  # slow, slow, fast, fast
    assert len(slow_foot_points(feet)) == 2 + 3 * 4  # 3 static vertices x 4 steps + 2 slow steps
