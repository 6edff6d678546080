"""The world frame of a static-camera video: a RANSAC ground plane under the slow feet.

1. **Ground points** (:func:`slow_foot_points`): the fitted mesh's foot vertices (L heel, L toe,
   R heel, R toe) at frames where that vertex moves less than ``max_step`` = 1 cm to the next
   frame (30 fps: 0.3 m/s), i.e. planted feet (design.md "Inference").
2. **Plane** (:func:`fit_plane_ransac`): RANSAC over 3-point samples (inliers within
   ``threshold`` = 2 cm), then a least-squares refit (SVD) to the best sample's inliers;
   deterministic for a given seed. The normal points to the side where the body is (up).
3. **World frame** (:func:`world_from_ground`), docs/conventions.md (Y up, ground ``y = 0``):

   * +Y = the plane's upward normal;
   * origin = the root joint of frame 0 dropped onto the plane;
   * heading (the rotation about Y, which the ground cannot tell): ``"camera"`` (default)
     puts +Z along the camera's viewing direction projected onto the ground, so the world
     looks the way the camera looks and the camera sits at ``x = 0`` behind the origin;
     ``"body"`` puts +Z along the body's facing direction (its +Z axis) in frame 0, projected
     onto the ground; +X = Y x Z (right-handed).

   With too few ground points (fewer than ``min_points``, e.g. a person who never stands, or
   an inlier share below ``min_inlier_fraction``) the fallback is "camera up": +Y = the image's
   up direction (-y of the OpenCV camera) and the ground at the lowest foot point; the result
   says which (``source``).

Everything is float64 numpy; points are camera-frame metres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["GroundPlane", "WorldFrame", "slow_foot_points", "fit_plane_ransac", "world_from_ground"]


@dataclass
class GroundPlane:
    """``normal . x + offset = 0`` (camera frame), normal a unit vector pointing up."""

    normal: np.ndarray  # (3,)
    offset: float  # metres
    inliers: int  # ground points within the threshold
    points: int  # ground points considered
    source: str  # "ransac" | "camera_up"

    def distance(self, x: np.ndarray) -> np.ndarray:
        """Signed height (...,) of points (..., 3) above the plane, metres."""
        return np.asarray(x) @ self.normal + self.offset


@dataclass
class WorldFrame:
    """Rigid map camera -> world: ``x_world = R_c2w x_cam + t_c2w``."""

    R_c2w: np.ndarray  # (3, 3)
    t_c2w: np.ndarray  # (3,)
    plane: GroundPlane
    heading: str  # "camera" | "body"

    @property
    def T_c2w(self) -> np.ndarray:
        """(4, 4) homogeneous camera -> world."""
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = self.R_c2w, self.t_c2w
        return T

    @property
    def T_w2c(self) -> np.ndarray:
        """(4, 4) homogeneous world -> camera."""
        return np.linalg.inv(self.T_c2w)

    def points(self, x_cam: np.ndarray) -> np.ndarray:
        """Camera points (..., 3) -> world points (..., 3)."""
        return np.asarray(x_cam) @ self.R_c2w.T + self.t_c2w

    def rotations(self, R_cam: np.ndarray) -> np.ndarray:
        """Camera-frame orientations (..., 3, 3) -> world-frame orientations."""
        return self.R_c2w @ np.asarray(R_cam)


def slow_foot_points(feet: np.ndarray, max_step: float = 0.01) -> np.ndarray:
    """Foot points (m, 3) that move less than ``max_step`` metres to the next frame.

    Args:
        feet: (t, f, 3) foot vertices per frame, metres.
    """
    feet = np.asarray(feet, np.float64)
    if len(feet) < 2:
        return feet.reshape(-1, 3)
    step = np.linalg.norm(np.diff(feet, axis=0), axis=-1)  # (t-1, f)
    return feet[:-1][step < max_step]


def _plane_from_points(p: np.ndarray) -> tuple[np.ndarray, float]:
    centre = p.mean(0)
    normal = np.linalg.svd(p - centre, full_matrices=False)[2][-1]
    return normal, -float(normal @ centre)


def fit_plane_ransac(
    points: np.ndarray,
    threshold: float = 0.02,
    iterations: int = 256,
    seed: int = 0,
    up_hint: np.ndarray | None = None,
) -> GroundPlane:
    """RANSAC plane through ``points`` (m >= 3, 3), refined by least squares on the inliers.

    Args:
        threshold: inlier distance, metres.
        iterations: 3-point samples tried.
        seed: RNG seed (the result is deterministic).
        up_hint: (3,) a point above the ground (e.g. the mean root position) or None; the normal
            is oriented towards it (default: towards -y, the image's up).
    """
    p = np.asarray(points, np.float64).reshape(-1, 3)
    if len(p) < 3:
        raise ValueError(f"a plane needs at least 3 points, got {len(p)}")
    rng = np.random.default_rng(seed)
    best, best_count = None, -1
    for _ in range(iterations):
        a, b, c = p[rng.choice(len(p), 3, replace=False)]
        n = np.cross(b - a, c - a)
        norm = np.linalg.norm(n)
        if norm < 1e-9:
            continue
        n /= norm
        inl = np.abs((p - a) @ n) < threshold
        if inl.sum() > best_count:
            best, best_count = inl, int(inl.sum())
    if best is None or best_count < 3:
        best = np.ones(len(p), bool)
    normal, offset = _plane_from_points(p[best])
    inliers = np.abs(p @ normal + offset) < threshold  # re-count against the refined plane
    if inliers.sum() >= 3:
        normal, offset = _plane_from_points(p[inliers])
    ref = np.array([0.0, -1.0, 0.0]) if up_hint is None else None
    flip = (normal @ ref < 0) if ref is not None else (normal @ np.asarray(up_hint, np.float64) + offset < 0)
    if flip:
        normal, offset = -normal, -offset
    count = int((np.abs(p @ normal + offset) < threshold).sum())
    return GroundPlane(normal, float(offset), count, len(p), "ransac")


def _basis(up: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Rows x, y, z of a right-handed frame with y = up and z = forward projected off y."""
    z = forward - (forward @ up) * up
    if np.linalg.norm(z) < 1e-6:  # forward parallel to up: any horizontal direction
        z = np.cross(up, [1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.cross(up, [0.0, 0.0, 1.0])
    z /= np.linalg.norm(z)
    return np.stack([np.cross(up, z), up, z])


def world_from_ground(
    feet: np.ndarray,
    root_trans: np.ndarray,
    root_rot: np.ndarray | None = None,
    heading: str = "camera",
    max_step: float = 0.01,
    threshold: float = 0.02,
    min_points: int = 12,
    min_inlier_fraction: float = 0.3,
    seed: int = 0,
) -> WorldFrame:
    """The world frame of the module docstring.

    Args:
        feet: (t, 4, 3) foot vertices, camera frame, metres.
        root_trans: (t, 3) root joint positions, camera frame.
        root_rot: (t, 3, 3) root orientations, camera frame (needed for ``heading="body"``).
        heading: "camera" or "body".
    """
    if heading not in ("camera", "body"):
        raise ValueError(f"heading must be 'camera' or 'body', got {heading!r}")
    feet, root_trans = np.asarray(feet, np.float64), np.asarray(root_trans, np.float64)
    pts = slow_foot_points(feet, max_step)
    plane = None
    if len(pts) >= max(3, min_points):
        plane = fit_plane_ransac(pts, threshold, seed=seed, up_hint=root_trans.mean(0))
        if plane.inliers < min_inlier_fraction * len(pts) or plane.normal @ np.array([0.0, -1.0, 0.0]) < 0.2:
            plane = None  # a wall, or noise: not a floor seen by an upright camera
    if plane is None:
        up = np.array([0.0, -1.0, 0.0])
        lowest = float((feet.reshape(-1, 3) @ up).min())
        plane = GroundPlane(up, -lowest, 0, len(pts), "camera_up")
    if heading == "body" and root_rot is not None:
        forward = np.asarray(root_rot, np.float64)[0] @ np.array([0.0, 0.0, 1.0])
    else:
        heading, forward = "camera", np.array([0.0, 0.0, 1.0])
    R_c2w = _basis(plane.normal, forward)
    r0 = root_trans[0]
    origin = r0 - plane.distance(r0) * plane.normal
    return WorldFrame(R_c2w, -R_c2w @ origin, plane, heading)
