"""Small float64 numpy rotation helpers for motion planning (per-frame arrays, any leading shape).

The planner works on a few hundred frames with many small 3x3 operations, where numpy is faster
and simpler than torch; the result is converted to torch once, at the end (``generator.py``).
Conventions as in :mod:`moro.geometry.rotations`: matrices act on column vectors, right-handed
axes, radians. ``axis_angle(axis, angle)`` rotates by ``angle`` about ``axis`` (Rodrigues).
"""

from __future__ import annotations

import numpy as np

_X, _Y, _Z = np.eye(3)


def axis_angle(axis: np.ndarray, angle: np.ndarray | float) -> np.ndarray:
    """Rotation matrices (..., 3, 3) about ``axis`` (..., 3) (normalised here) by ``angle`` (...) rad."""
    axis = np.asarray(axis, dtype=np.float64)
    angle = np.asarray(angle, dtype=np.float64)
    shape = np.broadcast_shapes(axis.shape[:-1], angle.shape)
    k = np.broadcast_to(axis / np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-12), shape + (3,))
    a = np.broadcast_to(angle, shape)[..., None, None]
    kx = np.zeros(shape + (3, 3))
    kx[..., 0, 1], kx[..., 0, 2], kx[..., 1, 2] = -k[..., 2], k[..., 1], -k[..., 0]
    kx[..., 1, 0], kx[..., 2, 0], kx[..., 2, 1] = k[..., 2], -k[..., 1], k[..., 0]
    return np.eye(3) + np.sin(a) * kx + (1.0 - np.cos(a)) * (kx @ kx)


def rot_x(angle: np.ndarray | float) -> np.ndarray:
    """Rotation (..., 3, 3) about +X by ``angle`` (...) radians."""
    return axis_angle(_X, angle)


def rot_y(angle: np.ndarray | float) -> np.ndarray:
    """Rotation (..., 3, 3) about +Y (world up) by ``angle`` (...) radians: the heading rotation."""
    return axis_angle(_Y, angle)


def rot_z(angle: np.ndarray | float) -> np.ndarray:
    """Rotation (..., 3, 3) about +Z by ``angle`` (...) radians."""
    return axis_angle(_Z, angle)


def rotvec_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Rotation vectors (..., 3) (axis * angle, rad) to matrices (..., 3, 3)."""
    rotvec = np.asarray(rotvec, dtype=np.float64)
    return axis_angle(rotvec, np.linalg.norm(rotvec, axis=-1))


def matrix_to_rotvec(R: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) to rotation vectors (..., 3), angle in [0, pi] (via quaternions)."""
    q = matrix_to_quat(R)
    w, v = q[..., 0], q[..., 1:]
    n = np.linalg.norm(v, axis=-1)
    angle = 2.0 * np.arctan2(n, np.abs(w))
    scale = np.where(n > 1e-12, angle / np.maximum(n, 1e-12), 2.0) * np.sign(np.where(w == 0, 1.0, w))
    return v * scale[..., None]


def matrix_to_quat(R: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) to unit quaternions (..., 4), scalar first ``(w, x, y, z)``."""
    R = np.asarray(R, dtype=np.float64)
    m00, m11, m22 = R[..., 0, 0], R[..., 1, 1], R[..., 2, 2]
    cand = np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    best = cand.argmax(-1)
    q = np.empty(R.shape[:-2] + (4,))
    s = np.sqrt(np.maximum(np.take_along_axis(cand, best[..., None], -1)[..., 0], 1e-12)) * 2.0
    r21, r12, r02, r20, r10, r01 = R[..., 2, 1], R[..., 1, 2], R[..., 0, 2], R[..., 2, 0], R[..., 1, 0], R[..., 0, 1]
    options = [
        (0.25 * s, (r21 - r12) / s, (r02 - r20) / s, (r10 - r01) / s),
        ((r21 - r12) / s, 0.25 * s, (r01 + r10) / s, (r02 + r20) / s),
        ((r02 - r20) / s, (r01 + r10) / s, 0.25 * s, (r12 + r21) / s),
        ((r10 - r01) / s, (r02 + r20) / s, (r12 + r21) / s, 0.25 * s),
    ]
    for i, comps in enumerate(options):
        mask = best == i
        q[mask] = np.stack(comps, -1)[mask]
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def slerp(R0: np.ndarray, R1: np.ndarray, w: np.ndarray | float) -> np.ndarray:
    """Geodesic interpolation ``R0 exp(w log(R0^T R1))``; R0, R1 (..., 3, 3), w (...) in [0, 1]."""
    rel = matrix_to_rotvec(np.swapaxes(R0, -1, -2) @ R1)
    return R0 @ rotvec_to_matrix(rel * np.asarray(w, dtype=np.float64)[..., None])


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Minimal rotation (..., 3, 3) taking unit vectors ``a`` to ``b`` (..., 3); not for b = -a."""
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    axis = np.cross(a, b)
    angle = np.arctan2(np.linalg.norm(axis, axis=-1), np.sum(a * b, -1))
    return axis_angle(axis, angle)


def frame_from(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Orthonormal frame (..., 3, 3) with columns ``a``, ``b'``, ``a x b'`` (b' = b made orthogonal to a)."""
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b - np.sum(a * b, -1, keepdims=True) * a
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    return np.stack([a, b, np.cross(a, b)], -1)


def wrap_angle(x: np.ndarray | float) -> np.ndarray:
    """Angles wrapped to [-pi, pi)."""
    return (np.asarray(x) + np.pi) % (2.0 * np.pi) - np.pi


def mirror_x(R: np.ndarray) -> np.ndarray:
    """Mirror rotations (..., 3, 3) through the body's sagittal plane (x -> -x): ``M R M``."""
    M = np.diag([-1.0, 1.0, 1.0])
    return M @ R @ M
