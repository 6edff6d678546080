"""SMPL / SMPL-X parameters in the smplx package's layout -> moro's pose convention.

Dataset files (AMASS, BEDLAM, EgoBody, RICH, the image datasets) and baseline outputs store
bodies as the smplx package does: axis-angle radians per joint, ``transl`` in metres being
SMPL's translation (the root joint sits at ``transl + J_0(betas)``), global orientation about the
root joint. :func:`smpl_params_to_pose` turns them into moro's rotation matrices and root-joint
position (:class:`moro.body.BodyModel`), checking every size; :func:`pose_smpl_params` also poses
the model. Shared by the dataset readers (``moro.data``) and the evaluation (``moro.metrics``).
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from moro.body.model import BodyModel
from moro.geometry.rotations import rotvec_to_rotmat

__all__ = ["HandPCA", "ParameterError", "SmplPose", "PosedSequence", "smpl_params_to_pose", "pose_smpl_params"]

_CHUNK = 256  # frames posed at once (bounds memory for long sequences of 10475-vertex meshes)


class ParameterError(ValueError):
    """Body-model parameters of a sequence have the wrong size for the model."""


@dataclass
class HandPCA:
    """SMPL-X hand pose PCA (``hands_components{l,r}``, ``hands_mean{l,r}`` of the model file).

    Full hand pose ``(F, 45) = pca (F, n) @ components[:n] (+ mean unless flat_hand_mean)``.
    """

    components_left: np.ndarray  # (45, 45) rows = principal components, axis-angle radians
    components_right: np.ndarray  # (45, 45)
    mean_left: np.ndarray  # (45,)
    mean_right: np.ndarray  # (45,)
    flat_hand_mean: bool = False  # the smplx package's default (EgoBody's loaders keep it)

    @classmethod
    def from_smplx_file(cls, path: str | os.PathLike, flat_hand_mean: bool = False) -> "HandPCA":
        """Read the hand PCA from an SMPL-X ``.npz`` (or ``.pkl``) model file."""
        path = Path(path)
        keys = ("hands_componentsl", "hands_componentsr", "hands_meanl", "hands_meanr")
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                raw = {k: z[k] for k in keys if k in z.files}
        else:
            with open(path, "rb") as fh:
                data = pickle.load(fh, encoding="latin1")  # noqa: S301 - the user's own model file
            raw = {k: np.asarray(data[k]) for k in keys if k in data}
        missing = [k for k in keys if k not in raw]
        if missing:
            raise ParameterError(f"{path}: SMPL-X model file lacks hand PCA key(s) {missing}; pass the official SMPLX_*.npz")
        a = {k: np.asarray(v, dtype=np.float64) for k, v in raw.items()}
        return cls(a["hands_componentsl"], a["hands_componentsr"], a["hands_meanl"], a["hands_meanr"], flat_hand_mean)

    def full(self, pca: np.ndarray, side: str) -> np.ndarray:
        """(F, n) PCA coefficients -> (F, 45) axis-angle hand pose."""
        comps, mean = (self.components_left, self.mean_left) if side == "left" else (self.components_right, self.mean_right)
        n = pca.shape[-1]
        if n > comps.shape[0]:
            raise ParameterError(f"{side} hand pose has {n} PCA coefficients but the model has {comps.shape[0]} components")
        out = pca @ comps[:n]
        return out if self.flat_hand_mean else out + mean


def _frames_param(name: str, x: object, frames: int | None, width: int | tuple[int, ...], seq: str) -> np.ndarray:
    a = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    a = a.reshape(a.shape[0], -1) if a.ndim >= 2 else a.reshape(1, -1)
    widths = (width,) if isinstance(width, int) else width
    if a.shape[-1] not in widths:
        raise ParameterError(f"{seq}: {name} must have {' or '.join(map(str, widths))} values per frame, got shape {a.shape}")
    if frames is not None and a.shape[0] != frames:
        raise ParameterError(
            f"{seq}: {name} has {a.shape[0]} frames but global_orient has {frames}; every parameter must cover the same frames"
        )
    if not np.isfinite(a).all():
        raise ParameterError(f"{seq}: {name} contains NaN or inf; fix or drop those frames in the source file")
    return a


@dataclass
class SmplPose:
    """Decoded parameters of F frames in moro's convention (float64, the parameters' frame, metres)."""

    body_pose: torch.Tensor  # (F, j-1, 3, 3) parent-relative rotations of joints 1..j-1
    betas: torch.Tensor  # (F, s) shape, zero-padded / cut to the model's s
    root_rot: torch.Tensor  # (F, 3, 3) global orientation of the root joint
    root_trans: torch.Tensor  # (F, 3) root joint position (not SMPL's transl)


@dataclass
class PosedSequence:
    """A posed parameter sequence (float32 vertices to bound memory; metres)."""

    vertices: torch.Tensor  # (F, V, 3) in the body model's topology
    root_rot: torch.Tensor  # (F, 3, 3) global orientation of the root joint, float64


def smpl_params_to_pose(
    body: BodyModel,
    *,
    global_orient: object,
    body_pose: object,
    betas: object,
    transl: object,
    jaw_pose: object | None = None,
    leye_pose: object | None = None,
    reye_pose: object | None = None,
    left_hand_pose: object | None = None,
    right_hand_pose: object | None = None,
    hand_pca: HandPCA | None = None,
    sequence: str = "sequence",
) -> SmplPose:
    """Decode smplx-style parameters for an SMPL (24 joints) or SMPL-X (55 joints) :class:`BodyModel`.

    Args:
        body: the model; its joint count decides the layout.
        global_orient: (F, 3) root orientation, axis-angle radians.
        body_pose: (F, 63) joints 1..21, or (F, 69) with SMPL's two hand joints (SMPL only).
        betas: (F, s) or (s,) shape; fewer than ``body.num_betas`` are zero-padded, more must be zero.
        transl: (F, 3) SMPL translation, metres.
        jaw_pose, leye_pose, reye_pose: optional (F, 3) (SMPL-X); identity when omitted.
        left_hand_pose, right_hand_pose: optional (F, 45) axis-angle, or (F, n <= 45) PCA
            coefficients with ``hand_pca`` given (SMPL-X); flat hands when omitted.
        hand_pca: hand PCA of the SMPL-X model (for PCA hand poses).
        sequence: name used in error messages.
    Returns:
        :class:`SmplPose` (float64).
    Raises:
        ParameterError naming the parameter, its shape and the fix.
    """
    go = _frames_param("global_orient", global_orient, None, 3, sequence)
    f = go.shape[0]
    j = body.num_joints
    if j == 24:
        bp = _frames_param("body_pose", body_pose, f, (63, 69), sequence)
        full = np.zeros((f, 23, 3))
        full.reshape(f, -1)[:, : bp.shape[1]] = bp
    elif j == 55:
        bp = _frames_param("body_pose", body_pose, f, 63, sequence)
        full = np.zeros((f, 54, 3))
        full[:, :21] = bp.reshape(f, 21, 3)
        for k, (name, x) in enumerate((("jaw_pose", jaw_pose), ("leye_pose", leye_pose), ("reye_pose", reye_pose))):
            if x is not None:
                full[:, 21 + k] = _frames_param(name, x, f, 3, sequence)
        for start, side, x in ((24, "left", left_hand_pose), (39, "right", right_hand_pose)):
            if x is None:
                continue
            h = _frames_param(f"{side}_hand_pose", x, f, tuple(range(1, 46)), sequence)
            if h.shape[1] != 45:
                if hand_pca is None:
                    raise ParameterError(
                        f"{sequence}: {side}_hand_pose has {h.shape[1]} PCA coefficients; pass "
                        f"hand_pca=HandPCA.from_smplx_file(<SMPLX_*.npz>) to expand them"
                    )
                h = hand_pca.full(h, side)
            full[:, start : start + 15] = h.reshape(f, 15, 3)
    else:
        raise ParameterError(f"{sequence}: {body.name} has {j} joints; SMPL (24) or SMPL-X (55) parameters expected")
    b = np.asarray(betas.detach().cpu().numpy() if isinstance(betas, torch.Tensor) else betas, dtype=np.float64)
    b = b.reshape(-1) if b.ndim == 1 or (b.ndim == 2 and b.shape[0] == 1) else b
    if b.shape[-1] > body.num_betas:
        extra = b[..., body.num_betas :]
        if np.abs(extra).max() > 0:
            raise ParameterError(
                f"{sequence}: {b.shape[-1]} betas given but {body.name} keeps {body.num_betas}; load the model "
                f"with num_betas={b.shape[-1]}"
            )
        b = b[..., : body.num_betas]
    b = np.concatenate([b, np.zeros(b.shape[:-1] + (body.num_betas - b.shape[-1],))], axis=-1)
    if b.ndim == 2 and b.shape[0] != f:
        raise ParameterError(f"{sequence}: betas has {b.shape[0]} frames but global_orient has {f}")
    if not np.isfinite(b).all():
        raise ParameterError(f"{sequence}: betas contain NaN or inf; fix or drop the sequence")
    tr = _frames_param("transl", transl, f, 3, sequence)
    betas_t = torch.from_numpy(b)
    betas_f = betas_t.expand(f, -1) if betas_t.dim() == 1 else betas_t
    root_trans = tr + body.root_joint_rest(betas_f.to(body.v_template.dtype)).double().numpy()
    return SmplPose(body_pose=rotvec_to_rotmat(torch.from_numpy(full)), betas=betas_f.contiguous(),
                    root_rot=rotvec_to_rotmat(torch.from_numpy(go)), root_trans=torch.from_numpy(root_trans))


def pose_smpl_params(body: BodyModel, *, hand_pca: HandPCA | None = None, sequence: str = "sequence", **params) -> PosedSequence:
    """Pose an SMPL / SMPL-X :class:`BodyModel` from smplx-style parameters.

    Args: as :func:`smpl_params_to_pose` (keyword parameters ``global_orient``, ``body_pose``,
    ``betas``, ``transl`` and the optional SMPL-X ones).
    Returns:
        :class:`PosedSequence` with (F, V, 3) vertices and (F, 3, 3) root orientations.
    """
    p = smpl_params_to_pose(body, hand_pca=hand_pca, sequence=sequence, **params)
    dt = body.v_template.dtype
    verts = []
    with torch.no_grad():
        for s in range(0, p.root_rot.shape[0], _CHUNK):
            sl = slice(s, s + _CHUNK)
            out = body(p.body_pose[sl].to(dt), p.betas[sl].to(dt), p.root_rot[sl].to(dt), p.root_trans[sl].to(dt))
            verts.append(out.vertices.float())
    return PosedSequence(vertices=torch.cat(verts), root_rot=p.root_rot)
