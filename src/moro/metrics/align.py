"""Alignments applied before scoring: pelvis, per-frame Procrustes, Umeyama, first frames, chunks,
and the world -> camera mapping of baselines (supplement C).

Each function takes one sequence and returns the aligned prediction (metres, same shape), so a
metric is "alignment, then an error"; the metric modules call the same private kernels.
Definitions: ``shared/metrics.md``. All inputs: torch tensors or numpy arrays, converted to
float64 on the input's device; wrong shapes, frame-count mismatches and NaNs raise ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch

from moro.geometry.alignment import procrustes_similarity, rotation_procrustes, umeyama

from . import _inputs

__all__ = [
    "HIP_JOINTS",
    "pelvis_center",
    "pelvis_align",
    "procrustes_align",
    "umeyama_align",
    "first_frames_align",
    "chunk_align",
    "fit_world_to_camera",
    "baseline_world_to_camera",
    "WorldToCamera",
]

HIP_JOINTS: tuple[int, int] = (1, 2)
"""Left and right hip in the 22-joint SMPL-style scoring set; their mean is the pelvis."""


# -- kernels on validated float64 tensors ---------------------------------------------------------


def _pelvis(joints: torch.Tensor, hips: Sequence[int]) -> torch.Tensor:
    return joints[:, list(hips)].mean(dim=1)  # (F, 3)


def _similarity(s: torch.Tensor, R: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """x (F, N, 3) with per-frame (F,), (F, 3, 3), (F, 3) or one shared () / (3, 3) / (3,)."""
    if R.dim() == 2:
        return s * (x @ R.T) + t
    return s[:, None, None] * (x @ R.transpose(-1, -2)) + t[:, None, :]


def _procrustes(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    s, R, t = procrustes_similarity(pred, gt)  # every frame its own problem
    return _similarity(s, R, t, pred)


def _umeyama(pred: torch.Tensor, gt: torch.Tensor, fit: slice, with_scale: bool) -> torch.Tensor:
    """One transform fitted on the points of frames ``fit`` (flattened), applied to all frames."""
    s, R, t = umeyama(pred[fit].reshape(-1, 3), gt[fit].reshape(-1, 3), with_scale)
    return _similarity(s, R, t, pred)


def _chunks(pred: torch.Tensor, gt: torch.Tensor, chunk_size: int, fit: str) -> torch.Tensor:
    out = []
    for start in range(0, pred.shape[0], chunk_size):
        p, g = pred[start : start + chunk_size], gt[start : start + chunk_size]
        out.append(_umeyama(p, g, slice(0, 2) if fit == "first_two" else slice(None), with_scale=True))
    return torch.cat(out)


# -- public alignments ----------------------------------------------------------------------------


def pelvis_center(joints: object, *, hip_joints: Sequence[int] = HIP_JOINTS) -> torch.Tensor:
    """Pelvis position per frame, the mean of the two hip joints.

    Args:
        joints: (F, J, 3) joints, metres.
        hip_joints: indices of the hips (default 1, 2 of the 22-joint set).
    Returns:
        (F, 3) pelvis positions, metres.
    """
    j = _inputs.points("joints", joints)
    return _pelvis(j, _inputs.joint_indices("hip_joints", hip_joints, j.shape[1]))


def pelvis_align(
    points: object, joints: object | None = None, *, hip_joints: Sequence[int] = HIP_JOINTS
) -> torch.Tensor:
    """Subtract each frame's pelvis (mean of hips 1, 2) from the points of that frame.

    Args:
        points: (F, N, 3) joints or vertices, metres.
        joints: (F, J, 3) joints whose hips define the pelvis; ``None`` when ``points`` are joints.
            Vertices are always shifted by their *own* body's joint pelvis (PVE definition).
        hip_joints: hip indices in ``joints``.
    Returns:
        (F, N, 3) pelvis-relative points, metres.
    """
    x = _inputs.points("points", points, what="N")
    j = x if joints is None else _inputs.points("joints", joints)
    _inputs.same_frames(points=x, joints=j)
    _inputs.same_device(points=x, joints=j)
    hips = _inputs.joint_indices("hip_joints", hip_joints, j.shape[1])
    return x - _pelvis(j, hips)[:, None, :]


def procrustes_align(pred: object, gt: object) -> torch.Tensor:
    """Per-frame similarity Procrustes of ``pred`` onto ``gt`` (the PA of PA-MPJPE).

    Correct for every frame count, including F = 1, 2, 3.

    Args:
        pred: (F, J, 3) predicted joints, metres.
        gt: (F, J, 3) ground-truth joints, metres.
    Returns:
        (F, J, 3) ``s_t R_t pred_t + t_t``, each frame aligned independently.
    """
    p, g = _inputs.pair(pred, gt)
    return _procrustes(p, g)


def umeyama_align(pred: object, gt: object, *, with_scale: bool = True) -> torch.Tensor:
    """One Umeyama transform fitted on all points of all frames, applied to the whole sequence.

    Args:
        pred: (F, J, 3) predicted points, metres.
        gt: (F, J, 3) ground-truth points, metres.
        with_scale: similarity (True) or rigid (False).
    Returns:
        (F, J, 3) aligned prediction, metres.
    """
    p, g = _inputs.pair(pred, gt)
    return _umeyama(p, g, slice(None), with_scale)


def first_frames_align(pred: object, gt: object, *, n_frames: int = 2, with_scale: bool = True) -> torch.Tensor:
    """Similarity fitted on the joints of the first ``n_frames`` frames, applied to all frames.

    The W-MPJPE alignment of GVHMR (``n_frames=2``); a sequence shorter than ``n_frames`` uses
    all of its frames.

    Args:
        pred: (F, J, 3) predicted world joints, metres.
        gt: (F, J, 3) ground-truth world joints, metres.
        n_frames: number of leading frames the transform is fitted on.
        with_scale: similarity (True, as GVHMR) or rigid.
    Returns:
        (F, J, 3) aligned prediction, metres.
    """
    p, g = _inputs.pair(pred, gt)
    if int(n_frames) < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    return _umeyama(p, g, slice(0, int(n_frames)), with_scale)


def chunk_align(
    pred: object,
    gt: object,
    *,
    chunk_size: int = 100,
    fit: Literal["first_two", "all"] = "all",
) -> torch.Tensor:
    """Per-chunk similarity alignment (GVHMR's W-MPJPE100 / WA-MPJPE100).

    Chunks start at frames 0, ``chunk_size``, ``2 chunk_size``, ...; the last may be shorter.
    Each chunk gets its own similarity, fitted on its first two frames (``fit="first_two"``,
    W-MPJPE) or on all its frames (``fit="all"``, WA-MPJPE), and applied to the whole chunk.

    Args:
        pred: (F, J, 3) predicted world joints, metres.
        gt: (F, J, 3) ground-truth world joints, metres.
        chunk_size: frames per chunk (100 in the papers).
        fit: which frames of each chunk the similarity is fitted on.
    Returns:
        (F, J, 3) aligned prediction, metres.
    """
    p, g = _inputs.pair(pred, gt)
    if fit not in ("first_two", "all"):
        raise ValueError(f"fit must be 'first_two' (W-MPJPE) or 'all' (WA-MPJPE), got {fit!r}")
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return _chunks(p, g, int(chunk_size), fit)


# -- baselines: world-frame output -> camera frame (supplement C) ---------------------------------


class WorldToCamera(NamedTuple):
    """A baseline's world-frame prediction mapped into the camera by one rigid transform."""

    R_w2c: torch.Tensor  # (3, 3) world -> camera rotation
    t_w2c: torch.Tensor  # (3,) world -> camera translation, metres
    orient_cam: torch.Tensor  # (F, 3, 3) R_w2c @ orient_world
    joints_cam: torch.Tensor  # (F, J, 3) joints_world mapped into the camera, metres
    verts_cam: torch.Tensor | None  # (F, V, 3) vertices mapped likewise, or None


def _rotations(name: str, R: object) -> torch.Tensor:
    r = _inputs.as_tensor(name, R)
    if r.dim() != 3 or r.shape[1:] != (3, 3):
        raise ValueError(
            f"{name} must be (F, 3, 3) rotation matrices, got {tuple(r.shape)}; convert axis-angle "
            f"(F, 3) with roma.rotvec_to_rotmat first"
        )
    _inputs.check_finite(name, r)
    return r


def fit_world_to_camera(
    orient_cam: object, orient_world: object, pelvis_cam: object, pelvis_world: object
) -> tuple[torch.Tensor, torch.Tensor]:
    """The constant world -> camera rigid transform of supplement C.

    Rotation: orthogonal Procrustes over per-frame orientations,
    ``R_w2c = argmax_A sum_t tr(orient_cam_t^T A orient_world_t)``.
    Translation: least squares between camera-space and rotated world-space pelvis positions,
    ``t_w2c = mean_t (pelvis_cam_t - R_w2c pelvis_world_t)``.

    Args:
        orient_cam: (F, 3, 3) global body orientation predicted in the camera frame.
        orient_world: (F, 3, 3) global body orientation predicted in the world frame.
        pelvis_cam: (F, 3) pelvis (root joint) positions in the camera frame, metres. Pass joint
            positions, not SMPL ``transl`` (which is not the pelvis and does not rotate as a point).
        pelvis_world: (F, 3) pelvis positions in the world frame, metres.
    Returns:
        R_w2c: (3, 3) rotation; t_w2c: (3,) translation, metres (``x_cam = R_w2c x_world + t_w2c``).
    """
    Rc, Rw = _rotations("orient_cam", orient_cam), _rotations("orient_world", orient_world)
    pc = _inputs.as_tensor("pelvis_cam", pelvis_cam)
    pw = _inputs.as_tensor("pelvis_world", pelvis_world)
    for name, v in (("pelvis_cam", pc), ("pelvis_world", pw)):
        if v.dim() != 2 or v.shape[1] != 3:
            raise ValueError(f"{name} must have shape (F, 3), got {tuple(v.shape)}")
        _inputs.check_finite(name, v)
    _inputs.same_frames(orient_cam=Rc, orient_world=Rw, pelvis_cam=pc, pelvis_world=pw)
    _inputs.same_device(orient_cam=Rc, orient_world=Rw, pelvis_cam=pc, pelvis_world=pw)
    R = rotation_procrustes(Rc, Rw)  # (3, 3): orient_cam_t ~ R orient_world_t
    t = (pc - pw @ R.T).mean(dim=0)  # (3,)
    return R, t


def baseline_world_to_camera(
    orient_cam: object,
    orient_world: object,
    joints_cam: object,
    joints_world: object,
    verts_world: object | None = None,
    *,
    root_joint: int = 0,
) -> WorldToCamera:
    """Map a baseline's world-frame prediction into the camera with one rigid transform (supp. C).

    WHAM / GVHMR predict a camera-frame body (orient_cam, joints_cam) and, independently, a
    world-frame one (orient_world, joints_world). The transform is fitted with
    :func:`fit_world_to_camera` on orientations and root-joint (pelvis) positions, then applied
    to the world joints (and vertices) so all metrics score one consistent set of predictions.

    Args:
        orient_cam: (F, 3, 3) camera-frame global orientations.
        orient_world: (F, 3, 3) world-frame global orientations.
        joints_cam: (F, J, 3) camera-frame joints, metres (only the root joint is used).
        joints_world: (F, J, 3) world-frame joints, metres.
        verts_world: optional (F, V, 3) world-frame vertices, metres.
        root_joint: index of the pelvis joint (0 in SMPL order).
    Returns:
        :class:`WorldToCamera` with the transform and the mapped orientations, joints, vertices.
    """
    jc, jw = _inputs.pair(joints_cam, joints_world, names=("joints_cam", "joints_world"))
    (root,) = _inputs.joint_indices("root_joint", [root_joint], jc.shape[1])
    R, t = fit_world_to_camera(orient_cam, orient_world, jc[:, root], jw[:, root])
    Rw = _rotations("orient_world", orient_world)
    verts_cam = None
    if verts_world is not None:
        vw = _inputs.points("verts_world", verts_world, what="V")
        _inputs.same_frames(joints_world=jw, verts_world=vw)
        verts_cam = vw @ R.T + t
    return WorldToCamera(R, t, R @ Rw, jw @ R.T + t, verts_cam)
