"""Camera-frame (local) accuracy: MPJPE (all / visible / occluded), PA-MPJPE, PVE, Accel error.

One sequence per call; inputs (F, J, 3) in metres (torch or numpy); outputs per-frame torch
float64 tensors in report units (mm, m/s^2). Pool over sequences with
:func:`moro.metrics.pooling.pool_frames` (frame-weighted). Definitions: ``shared/metrics.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, overload

import torch

from . import _inputs
from ._differences import second_difference
from .align import HIP_JOINTS, _pelvis, _procrustes
from .units import M_TO_MM

__all__ = ["mpjpe", "pa_mpjpe", "pve", "accel_error", "VisibilitySplit"]


class VisibilitySplit(NamedTuple):
    """MPJPE split by a visibility mask; all values in mm.

    ``vis`` and ``occ`` are per (frame, joint), NaN where the joint belongs to the other set, so
    that pooling the non-NaN entries gives exactly ``sum(err * m) / sum(m)`` (resp. ``1 - m``)
    as defined, whatever the number of visible joints per frame.
    """

    all: torch.Tensor  # (F,) MPJPE over all joints
    vis: torch.Tensor  # (F, J) error of visible joints, NaN where occluded
    occ: torch.Tensor  # (F, J) error of occluded joints, NaN where visible


def _pelvis_aligned_pair(pred: object, gt: object, hip_joints: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    p, g = _inputs.pair(pred, gt)
    hips = _inputs.joint_indices("hip_joints", hip_joints, p.shape[1])
    return p - _pelvis(p, hips)[:, None], g - _pelvis(g, hips)[:, None]


@overload
def mpjpe(pred: object, gt: object, mask: None = None, *, hip_joints: Sequence[int] = ...) -> torch.Tensor: ...
@overload
def mpjpe(pred: object, gt: object, mask: object, *, hip_joints: Sequence[int] = ...) -> VisibilitySplit: ...


def mpjpe(
    pred: object, gt: object, mask: object | None = None, *, hip_joints: Sequence[int] = HIP_JOINTS
) -> torch.Tensor | VisibilitySplit:
    """Pelvis-aligned mean per-joint position error, in mm.

    ``MPJPE_t = mean_j ||P'_tj - G'_tj||`` with each set shifted by its own pelvis (mean of the
    hips). With a visibility mask, also the errors of visible / occluded joints.

    Args:
        pred: (F, J, 3) predicted camera-frame joints, metres.
        gt: (F, J, 3) ground-truth camera-frame joints, metres.
        mask: optional (F, J) visibility, bool or 0/1 (1 = visible).
        hip_joints: hip indices defining the pelvis (default 1, 2).
    Returns:
        Without ``mask``: (F,) MPJPE per frame, mm.
        With ``mask``: :class:`VisibilitySplit` ``(all (F,), vis (F, J), occ (F, J))`` in mm;
        pool ``vis``/``occ`` with :func:`~moro.metrics.pooling.pool_frames` (NaNs skipped).
    """
    p, g = _pelvis_aligned_pair(pred, gt, hip_joints)
    err = torch.linalg.vector_norm(p - g, dim=-1) * M_TO_MM  # (F, J) mm
    if mask is None:
        return err.mean(dim=-1)
    m = _inputs.visibility_mask(mask, *err.shape).to(err.device)
    nan = torch.full_like(err, float("nan"))
    return VisibilitySplit(err.mean(dim=-1), torch.where(m, err, nan), torch.where(m, nan, err))


def pa_mpjpe(pred: object, gt: object) -> torch.Tensor:
    """Procrustes-aligned MPJPE per frame, in mm.

    Each frame's prediction is aligned to the ground truth by its own similarity transform
    (:func:`moro.geometry.alignment.procrustes_similarity`), then the mean joint error is taken.
    Correct for any frame count F >= 1.

    Args:
        pred: (F, J, 3) predicted joints, metres (any frame; the alignment removes it).
        gt: (F, J, 3) ground-truth joints, metres.
    Returns:
        (F,) PA-MPJPE per frame, mm.
    """
    p, g = _inputs.pair(pred, gt)
    return torch.linalg.vector_norm(_procrustes(p, g) - g, dim=-1).mean(dim=-1) * M_TO_MM


def pve(
    pred_verts: object,
    gt_verts: object,
    *,
    pred_joints: object,
    gt_joints: object,
    hip_joints: Sequence[int] = HIP_JOINTS,
) -> torch.Tensor:
    """Per-vertex error per frame, in mm, each mesh shifted by its own joint pelvis.

    Args:
        pred_verts: (F, V, 3) predicted vertices (SMPL: V = 6890), metres.
        gt_verts: (F, V, 3) ground-truth vertices, same topology, metres.
        pred_joints: (F, J, 3) predicted joints (their hips define the prediction's pelvis).
        gt_joints: (F, J, 3) ground-truth joints.
        hip_joints: hip indices (default 1, 2).
    Returns:
        (F,) mean vertex error per frame, mm.
    """
    pv, gv = _inputs.pair(pred_verts, gt_verts, names=("pred_verts", "gt_verts"), what="V")
    pj, gj = _inputs.pair(pred_joints, gt_joints, names=("pred_joints", "gt_joints"))
    _inputs.same_frames(pred_verts=pv, pred_joints=pj)
    _inputs.same_device(pred_verts=pv, pred_joints=pj)
    hips = _inputs.joint_indices("hip_joints", hip_joints, pj.shape[1])
    pv = pv - _pelvis(pj, hips)[:, None]
    gv = gv - _pelvis(gj, hips)[:, None]
    return torch.linalg.vector_norm(pv - gv, dim=-1).mean(dim=-1) * M_TO_MM


def accel_error(
    pred: object,
    gt: object,
    fps: float = 30.0,
    *,
    drop_ends: bool = False,
    hip_joints: Sequence[int] = HIP_JOINTS,
) -> torch.Tensor:
    """Acceleration error on pelvis-aligned joints, in m/s^2.

    ``Accel_t = fps^2 mean_j ||(P_{t-1} - 2 P_t + P_{t+1}) - (G_{t-1} - 2 G_t + G_{t+1})||`` for
    t = 1..F-2 (all F-2 values kept). ``drop_ends=True`` also drops the first and last of
    those (WHAM's evaluation), leaving F-4 values.

    Args:
        pred: (F, J, 3) predicted joints, metres; F >= 3 (F >= 5 with ``drop_ends``).
        gt: (F, J, 3) ground-truth joints, metres.
        fps: frames per second of the sequence.
        drop_ends: WHAM-style option, see above.
        hip_joints: hip indices defining the pelvis.
    Returns:
        (F-2,) (or (F-4,)) acceleration error per frame, m/s^2.
    """
    fps = _inputs.positive("fps", fps)
    p, g = _pelvis_aligned_pair(pred, gt, hip_joints)
    _inputs.min_frames("pred", p, 5 if drop_ends else 3, "accel_error" + (" with drop_ends" if drop_ends else ""))
    err = torch.linalg.vector_norm(second_difference(p, fps) - second_difference(g, fps), dim=-1).mean(dim=-1)
    return err[1:-1] if drop_ends else err
