"""World-frame (global) accuracy and realism: GMPJPE, W-/WA-MPJPE100, RTE, G-accel, jitter,
foot sliding.

One sequence per call; inputs in metres in the gravity-aligned world frame (torch or numpy);
outputs per-frame torch float64 tensors in report units (mm, %, m/s^2, 10 m/s^3, mm/frame).
Definitions: ``shared/metrics.md``.
"""

from __future__ import annotations

import warnings

import torch

from moro.geometry.alignment import umeyama

from . import _inputs
from ._differences import second_difference, third_difference
from .align import _chunks
from .units import JERK_TO_REPORT, M_TO_MM, TO_PERCENT

__all__ = [
    "FOOT_VERTICES_SMPL",
    "gmpjpe",
    "w_mpjpe",
    "wa_mpjpe",
    "rte",
    "g_accel_error",
    "jitter",
    "foot_sliding",
]

FOOT_VERTICES_SMPL: tuple[int, int, int, int] = (3216, 3387, 6617, 6787)
"""SMPL (6890-vertex) foot vertices used by GVHMR's foot-sliding metric."""


def _joint_error_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(a - b, dim=-1).mean(dim=-1) * M_TO_MM  # (F,)


def gmpjpe(pred: object, gt: object) -> torch.Tensor:
    """Global MPJPE: world joints, no alignment at all (RoHM / MoRo convention), in mm.

    Args:
        pred: (F, J, 3) predicted world joints, metres.
        gt: (F, J, 3) ground-truth world joints, metres.
    Returns:
        (F,) mean joint error per frame, mm.
    """
    p, g = _inputs.pair(pred, gt)
    return _joint_error_mm(p, g)


def _chunk_size(chunk_size: int) -> int:
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return int(chunk_size)


def w_mpjpe(pred: object, gt: object, *, chunk_size: int = 100) -> torch.Tensor:
    """W-MPJPE100 (GVHMR): per chunk, a similarity fitted on its first two frames, in mm.

    Chunks start at 0, ``chunk_size``, ...; the last may be short. See
    :func:`moro.metrics.align.chunk_align` (``fit="first_two"``).

    Args:
        pred: (F, J, 3) predicted world joints, metres.
        gt: (F, J, 3) ground-truth world joints, metres.
        chunk_size: frames per chunk (100).
    Returns:
        (F,) joint error per frame after alignment, mm.
    """
    p, g = _inputs.pair(pred, gt)
    return _joint_error_mm(_chunks(p, g, _chunk_size(chunk_size), "first_two"), g)


def wa_mpjpe(pred: object, gt: object, *, chunk_size: int = 100) -> torch.Tensor:
    """WA-MPJPE100 (GVHMR): per chunk, a similarity fitted on the whole chunk, in mm.

    Args:
        pred: (F, J, 3) predicted world joints, metres.
        gt: (F, J, 3) ground-truth world joints, metres.
        chunk_size: frames per chunk (100).
    Returns:
        (F,) joint error per frame after alignment, mm.
    """
    p, g = _inputs.pair(pred, gt)
    return _joint_error_mm(_chunks(p, g, _chunk_size(chunk_size), "all"), g)


def rte(pred: object, gt: object, *, root_joint: int = 0, min_path_m: float = 1e-4) -> torch.Tensor:
    """Root translation error (GVHMR), in % of the ground-truth path length.

    A rigid (no scale) Umeyama of the predicted root trajectory onto the ground-truth one over
    the whole sequence; ``L = sum_t ||r^G_t - r^G_{t-1}||``;
    ``RTE_t = 100 ||r^G_t - (R r^P_t + t)|| / L``.
    A static subject (``L < min_path_m``) has no defined RTE: the result is all NaN and a
    ``RuntimeWarning`` is issued (pooling skips NaNs), never inf.

    Args:
        pred: (F, J, 3) predicted world joints, metres (joint ``root_joint`` is used).
        gt: (F, J, 3) ground-truth world joints, metres.
        root_joint: root index (0 = pelvis in SMPL order).
        min_path_m: path length below which the subject counts as static, metres.
    Returns:
        (F,) RTE per frame, %.
    """
    p, g = _inputs.pair(pred, gt)
    (root,) = _inputs.joint_indices("root_joint", [root_joint], p.shape[1])
    rp, rg = p[:, root], g[:, root]  # (F, 3)
    _, R, t = umeyama(rp, rg, with_scale=False)
    err = torch.linalg.vector_norm(rg - (rp @ R.T + t), dim=-1)  # (F,) m
    length = torch.linalg.vector_norm(rg[1:] - rg[:-1], dim=-1).sum()
    if float(length) < float(min_path_m):
        msg = (
            f"rte: ground-truth root path length {float(length):.3g} m < min_path_m={min_path_m} m "
            f"(static subject); RTE is undefined and reported as NaN for this sequence"
        )
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
        return torch.full_like(err, float("nan"))
    return err / length * TO_PERCENT


def g_accel_error(pred: object, gt: object, fps: float = 30.0) -> torch.Tensor:
    """Acceleration error on world joints without any alignment, in m/s^2.

    Args:
        pred: (F, J, 3) predicted world joints, metres; F >= 3.
        gt: (F, J, 3) ground-truth world joints, metres.
        fps: frames per second.
    Returns:
        (F-2,) acceleration error per frame (t = 1..F-2), m/s^2.
    """
    fps = _inputs.positive("fps", fps)
    p, g = _inputs.pair(pred, gt)
    _inputs.min_frames("pred", p, 3, "g_accel_error")
    return torch.linalg.vector_norm(second_difference(p, fps) - second_difference(g, fps), dim=-1).mean(dim=-1)


def jitter(pred: object, fps: float = 30.0) -> torch.Tensor:
    """Jitter of a prediction (no ground truth), in units of 10 m/s^3.

    ``fps^3 mean_j ||P_{t+3} - 3 P_{t+2} + 3 P_{t+1} - P_t||`` divided by 10, t = 0..F-4.

    Args:
        pred: (F, J, 3) world joints, metres; F >= 4.
        fps: frames per second.
    Returns:
        (F-3,) jitter per frame, 10 m/s^3.
    """
    fps = _inputs.positive("fps", fps)
    p = _inputs.points("pred", pred)
    _inputs.min_frames("pred", p, 4, "jitter")
    return torch.linalg.vector_norm(third_difference(p, fps), dim=-1).mean(dim=-1) * JERK_TO_REPORT


def foot_sliding(pred_feet: object, gt_feet: object, *, contact_thresh_m: float = 0.01) -> torch.Tensor:
    """Foot sliding (GVHMR), in mm/frame, per (frame transition, foot vertex).

    Contact ``(t, k)`` when the ground-truth vertex k moves less than ``contact_thresh_m``
    between frames t and t+1; the value there is the predicted displacement
    ``||P_{t+1,k} - P_{t,k}||``. Entries not in contact are NaN, so pooling the non-NaN
    entries (:func:`~moro.metrics.pooling.pool_frames`) gives the mean over contact pairs.

    Args:
        pred_feet: (F, 4, 3) predicted world foot-vertex trajectories, metres
            (SMPL: ``verts[:, FOOT_VERTICES_SMPL]``).
        gt_feet: (F, 4, 3) ground-truth foot-vertex trajectories, metres; F >= 2.
        contact_thresh_m: ground-truth displacement per frame below which a vertex is in contact.
    Returns:
        (F-1, 4) predicted displacement where in contact, NaN elsewhere, mm/frame.
    """
    p, g = _inputs.pair(pred_feet, gt_feet, names=("pred_feet", "gt_feet"), what="4")
    if p.shape[1] != 4:
        raise ValueError(
            f"pred_feet / gt_feet must be (F, 4, 3) foot-vertex trajectories, got {tuple(p.shape)}; "
            f"select them first, e.g. verts[:, FOOT_VERTICES_SMPL]"
        )
    _inputs.min_frames("pred_feet", p, 2, "foot_sliding")
    thresh = _inputs.positive("contact_thresh_m", contact_thresh_m)
    contact = torch.linalg.vector_norm(g[1:] - g[:-1], dim=-1) < thresh  # (F-1, 4)
    disp = torch.linalg.vector_norm(p[1:] - p[:-1], dim=-1) * M_TO_MM
    return torch.where(contact, disp, torch.full_like(disp, float("nan")))
