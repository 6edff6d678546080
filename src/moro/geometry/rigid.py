"""Rigid and similarity transforms of 3D point sets, as (R, t) pairs or 4x4 matrices.

A rigid transform ``(R_ab, t_ab)`` maps points from frame b to frame a:
``x_a = R_ab @ x_b + t_ab`` (column vectors; kornia-style naming ``trans_01`` maps 1 -> 0).
For a row-stacked point set ``x (..., N, 3)`` this is ``x @ R^T + t``, which is the global-mesh
formula ``V_global = V_local @ R^T + t`` of ``docs/conventions.md``.

Leading batch shapes of R, t (and s) must equal the leading shape of the point set exactly:
nothing is broadcast. To apply one transform to many frames, ``.expand()`` it explicitly.
Units: translations in metres; scale is unitless.
"""

from __future__ import annotations

import torch

from ._checks import check_same_batch, check_same_dtype, check_shape

__all__ = [
    "apply_rigid",
    "apply_similarity",
    "invert_rigid",
    "compose_rigid",
    "make_transform",
    "split_transform",
]


def _check_rt(R: torch.Tensor, t: torch.Tensor, R_name: str = "R", t_name: str = "t") -> torch.Size:
    bR = check_shape(R_name, R, (3, 3))
    bt = check_shape(t_name, t, (3,))
    check_same_dtype(**{R_name: R, t_name: t})
    return check_same_batch(**{R_name: bR, t_name: bt})


def apply_rigid(R: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply ``x' = R x + t`` to every point of a set.

    Args:
        R: (..., 3, 3) rotations.
        t: (..., 3) translations, metres.
        x: (..., N, 3) points, metres; ``...`` must equal R's and t's leading shape.
    Returns:
        (..., N, 3) transformed points ``x @ R^T + t``.
    """
    b = _check_rt(R, t)
    bx = check_shape("x", x, (None, 3))
    check_same_batch(R=b, x=bx)
    check_same_dtype(R=R, x=x)
    return x @ R.transpose(-1, -2) + t.unsqueeze(-2)


def apply_similarity(s: torch.Tensor, R: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply the similarity ``x' = s R x + t`` to every point of a set.

    Args:
        s: (...) scale factors (unitless).
        R: (..., 3, 3) rotations.
        t: (..., 3) translations, metres.
        x: (..., N, 3) points; all leading shapes must be identical.
    Returns:
        (..., N, 3) transformed points.
    """
    b = _check_rt(R, t)
    bs = check_shape("s", s, ())
    bx = check_shape("x", x, (None, 3))
    check_same_batch(R=b, s=bs, x=bx)
    check_same_dtype(R=R, s=s, x=x)
    return s[..., None, None] * (x @ R.transpose(-1, -2)) + t.unsqueeze(-2)


def invert_rigid(R: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of a rigid transform: ``(R^T, -R^T t)``.

    Args:
        R: (..., 3, 3) rotations (assumed orthonormal; not re-orthonormalised).
        t: (..., 3) translations.
    Returns:
        ``(R_inv (..., 3, 3), t_inv (..., 3))`` with ``R_inv (R x + t) + t_inv = x``.
    """
    _check_rt(R, t)
    R_inv = R.transpose(-1, -2)
    return R_inv, -(R_inv @ t.unsqueeze(-1)).squeeze(-1)


def compose_rigid(
    R_ab: torch.Tensor, t_ab: torch.Tensor, R_bc: torch.Tensor, t_bc: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Compose two rigid transforms: first c -> b, then b -> a.

    ``x_a = R_ab (R_bc x_c + t_bc) + t_ab = (R_ab R_bc) x_c + (R_ab t_bc + t_ab)``.

    Args:
        R_ab, t_ab: (..., 3, 3), (..., 3) transform from frame b to frame a.
        R_bc, t_bc: (..., 3, 3), (..., 3) transform from frame c to frame b (same ``...``).
    Returns:
        ``(R_ac (..., 3, 3), t_ac (..., 3))`` mapping frame c to frame a.
    """
    b1 = _check_rt(R_ab, t_ab, "R_ab", "t_ab")
    b2 = _check_rt(R_bc, t_bc, "R_bc", "t_bc")
    check_same_batch(R_ab=b1, R_bc=b2)
    check_same_dtype(R_ab=R_ab, R_bc=R_bc)
    return R_ab @ R_bc, (R_ab @ t_bc.unsqueeze(-1)).squeeze(-1) + t_ab


def make_transform(R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Homogeneous 4x4 matrix ``[[R, t], [0, 0, 0, 1]]``.

    Args:
        R: (..., 3, 3) rotations.
        t: (..., 3) translations.
    Returns:
        (..., 4, 4) homogeneous transforms.
    """
    b = _check_rt(R, t)
    top = torch.cat((R, t.unsqueeze(-1)), dim=-1)  # (..., 3, 4)
    bottom = torch.zeros(*b, 1, 4, dtype=R.dtype, device=R.device)
    bottom[..., 0, 3] = 1.0
    return torch.cat((top, bottom), dim=-2)


def split_transform(T: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a homogeneous 4x4 transform into ``(R, t)``.

    The bottom row is ignored (not checked: reading it would force a device sync).

    Args:
        T: (..., 4, 4) homogeneous transforms.
    Returns:
        ``(R (..., 3, 3), t (..., 3))``.
    """
    check_shape("T", T, (4, 4))
    return T[..., :3, :3], T[..., :3, 3]
