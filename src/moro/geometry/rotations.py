"""Rotation representations: 3x3 matrices, MoRo's 6D layout, rotation vectors, quaternions.

Conventions (``docs/conventions.md``): rotation matrices act on column vectors
(``x_world = R_body2world @ x_body``); angles are radians; right-handed axes.

6D layout (PyTorch3D, used everywhere in MoRo and in the official checkpoint): the first two
**rows** of R flattened, ``[R00, R01, R02, R10, R11, R12]``. Decoding runs Gram-Schmidt on the
two 3-vectors and stacks rows ``b1, b2, b1 x b2``. Note that ``roma.special_gramschmidt`` uses
*columns* and is therefore not the same map.

Every function accepts any leading batch shape ``...`` (including none). Shapes are checked
(``ValueError``); values are not, because these run inside the network on every step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import roma

from ._checks import check_same_batch, check_same_dtype, check_shape, check_tensor

__all__ = [
    "rotmat_to_rot6d",
    "rot6d_to_rotmat",
    "rotvec_to_rotmat",
    "rotmat_to_rotvec",
    "quat_xyzw_to_rotmat",
    "rotmat_to_quat_xyzw",
    "orthonormalize",
    "random_rotmat",
    "rotation_angle",
    "geodesic_distance",
    "rotx",
    "roty",
    "rotz",
]


def rotmat_to_rot6d(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to MoRo/PyTorch3D 6D: the first two rows of R.

    Args:
        R: (..., 3, 3) rotation matrices.
    Returns:
        (..., 6) ``[R00, R01, R02, R10, R11, R12]``.
    """
    check_shape("R", R, (3, 3))
    return R[..., :2, :].reshape(*R.shape[:-2], 6)


def rot6d_to_rotmat(rot6d: torch.Tensor) -> torch.Tensor:
    """MoRo/PyTorch3D 6D to rotation matrices by Gram-Schmidt on rows.

    ``b1 = normalize(a1)``, ``b2 = normalize(a2 - <b1, a2> b1)``, ``b3 = b1 x b2``; the result has
    rows ``b1, b2, b3`` (det +1). Exactly inverts :func:`rotmat_to_rot6d` on rotation matrices
    and maps any non-degenerate 6-vector (a1 != 0, a2 not parallel to a1) to a rotation.

    Args:
        rot6d: (..., 6) ``[a1 (3), a2 (3)]`` (unnormalised network outputs are fine).
    Returns:
        (..., 3, 3) rotation matrices.
    """
    check_shape("rot6d", rot6d, (6,))
    a1, a2 = rot6d[..., :3], rot6d[..., 3:]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(dim=-1, keepdim=True) * b1, dim=-1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-2)


def rotvec_to_rotmat(rotvec: torch.Tensor) -> torch.Tensor:
    """Rotation vectors (axis * angle, radians) to rotation matrices (Rodrigues, via roma).

    Args:
        rotvec: (..., 3) axis-angle vectors; the norm is the angle in radians.
    Returns:
        (..., 3, 3) rotation matrices.
    """
    check_shape("rotvec", rotvec, (3,))
    return roma.rotvec_to_rotmat(rotvec)


def rotmat_to_rotvec(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to rotation vectors with angle in [0, pi] (via roma's quaternion path).

    Args:
        R: (..., 3, 3) rotation matrices.
    Returns:
        (..., 3) axis-angle vectors, norm = angle in radians.
    """
    check_shape("R", R, (3, 3))
    return roma.rotmat_to_rotvec(R)


def quat_xyzw_to_rotmat(quat: torch.Tensor) -> torch.Tensor:
    """Unit quaternions in **scalar-last** (x, y, z, w) order (roma's) to rotation matrices.

    PyTorch3D and many datasets use scalar-first (w, x, y, z); convert those with
    ``roma.quat_wxyz_to_xyzw`` first.

    Args:
        quat: (..., 4) quaternions ``(x, y, z, w)``; normalised here before conversion.
    Returns:
        (..., 3, 3) rotation matrices.
    """
    check_shape("quat", quat, (4,))
    return roma.unitquat_to_rotmat(F.normalize(quat, dim=-1))


def rotmat_to_quat_xyzw(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrices to unit quaternions in scalar-last (x, y, z, w) order.

    Args:
        R: (..., 3, 3) rotation matrices.
    Returns:
        (..., 4) unit quaternions ``(x, y, z, w)`` (sign ambiguity: q and -q are the same rotation).
    """
    check_shape("R", R, (3, 3))
    return roma.rotmat_to_unitquat(R)


def orthonormalize(M: torch.Tensor) -> torch.Tensor:
    """Nearest rotation matrix (Frobenius norm, det +1) to each 3x3 matrix (special Procrustes).

    Uses roma's SVD-based ``special_procrustes`` (differentiable). Typical use: clean up a
    rotation predicted as a 3x3 matrix or one that accumulated float error.

    Args:
        M: (..., 3, 3) arbitrary real matrices.
    Returns:
        (..., 3, 3) rotation matrices.
    """
    check_shape("M", M, (3, 3))
    if M.numel() == 0:
        return M.clone()
    return roma.special_procrustes(M, method="svd")


def random_rotmat(
    shape: tuple[int, ...] | torch.Size | int = (),
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Rotation matrices drawn uniformly (Haar measure) on SO(3).

    Args:
        shape: batch shape ``...`` of the result (``()`` for one matrix, an int for (n,)).
        generator: optional ``torch.Generator`` for reproducibility (on ``device``).
        dtype, device: of the result.
    Returns:
        (*shape, 3, 3) rotation matrices.
    """
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"shape must be non-negative, got {shape}")
    return roma.random_rotmat(shape, dtype=dtype, device=device, generator=generator)


def rotation_angle(R: torch.Tensor) -> torch.Tensor:
    """Rotation angle of each matrix, radians in [0, pi].

    Computed as ``atan2(|vee(R - R^T)| / 2, (trace R - 1) / 2)``, which is accurate near 0 and pi
    (unlike ``acos`` of the trace). The gradient is undefined at exactly 0 (returned as 0).

    Args:
        R: (..., 3, 3) rotation matrices.
    Returns:
        (...) angles in radians.
    """
    check_shape("R", R, (3, 3))
    cos = 0.5 * (R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2] - 1.0)
    axis = torch.stack(
        (R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]), dim=-1
    )
    sin = 0.5 * torch.linalg.vector_norm(axis, dim=-1)
    return torch.atan2(sin, cos)


def geodesic_distance(R1: torch.Tensor, R2: torch.Tensor) -> torch.Tensor:
    """Angle of the relative rotation ``R1^T R2``, radians in [0, pi].

    Args:
        R1, R2: (..., 3, 3) rotation matrices with identical leading shapes.
    Returns:
        (...) angles in radians.
    """
    b1 = check_shape("R1", R1, (3, 3))
    b2 = check_shape("R2", R2, (3, 3))
    check_same_batch(R1=b1, R2=b2)
    check_same_dtype(R1=R1, R2=R2)
    return rotation_angle(R1.transpose(-1, -2) @ R2)


def _axis_rotation(
    angle: torch.Tensor | float, axis: int, dtype: torch.dtype | None, device: torch.device | str | None
) -> torch.Tensor:
    if not isinstance(angle, torch.Tensor):
        angle = torch.tensor(float(angle), dtype=dtype or torch.get_default_dtype(), device=device)
    check_tensor("angle", angle)
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    if axis == 0:
        rows = ((one, zero, zero), (zero, c, -s), (zero, s, c))
    elif axis == 1:
        rows = ((c, zero, s), (zero, one, zero), (-s, zero, c))
    else:
        rows = ((c, -s, zero), (s, c, zero), (zero, zero, one))
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def rotx(angle: torch.Tensor | float, dtype: torch.dtype | None = None, device=None) -> torch.Tensor:
    """Right-handed rotation about +X by ``angle`` radians: ``[[1,0,0],[0,c,-s],[0,s,c]]``.

    Args:
        angle: (...) radians, or a Python float (then ``dtype``/``device`` apply).
    Returns:
        (..., 3, 3) rotation matrices.
    """
    return _axis_rotation(angle, 0, dtype, device)


def roty(angle: torch.Tensor | float, dtype: torch.dtype | None = None, device=None) -> torch.Tensor:
    """Right-handed rotation about +Y by ``angle`` radians: ``[[c,0,s],[0,1,0],[-s,0,c]]``.

    Args:
        angle: (...) radians, or a Python float (then ``dtype``/``device`` apply).
    Returns:
        (..., 3, 3) rotation matrices.
    """
    return _axis_rotation(angle, 1, dtype, device)


def rotz(angle: torch.Tensor | float, dtype: torch.dtype | None = None, device=None) -> torch.Tensor:
    """Right-handed rotation about +Z by ``angle`` radians: ``[[c,-s,0],[s,c,0],[0,0,1]]``.

    Args:
        angle: (...) radians, or a Python float (then ``dtype``/``device`` apply).
    Returns:
        (..., 3, 3) rotation matrices.
    """
    return _axis_rotation(angle, 2, dtype, device)
