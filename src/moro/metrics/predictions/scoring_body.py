"""From SMPL / SMPL-X parameters to what is scored: 22 joints, vertices, foot vertices.

``shared/metrics.md``: the scoring joints of EgoBody and RICH are the 22 body joints regressed
from **SMPL** vertices with the neutral SMPL joint regressor; SMPL-X output is mapped or fitted
to SMPL first. Ground-truth readers and the WHAM / GVHMR adapters both go through this module,
so the ground truth and every baseline are scored with the same skeleton.

Two ways to score an SMPL-X body (:class:`ScoringBody`):

- ``ScoringBody.smplx_to_smpl(transfer, smpl)`` - **the protocol**. SMPL-X vertices are mapped
  onto the SMPL mesh with a fixed linear vertex transfer ``(6890, 10475)`` (the SMPL-X authors'
  ``smplx2smpl`` deformation-transfer matrix, also shipped by GVHMR as
  ``smplx2smpl_sparse.pt``), then the neutral SMPL regressor gives the 22 joints and SMPL's
  foot vertices give the sliding trajectories. This is exactly what GVHMR does. We chose a
  *mapping* rather than a per-sequence fit (``moro.body.fitting.fit_sequence`` needs vertices of
  the model's own topology, i.e. this same correspondence, and adds a fitting error).
- ``ScoringBody.from_body(smplx)`` - **a deviation**, used when no transfer matrix is given: the
  SMPL-X model's own first 22 joints (``J_regressor[:22]`` on the posed SMPL-X vertices) and its
  own foot vertices. Results are labelled with :attr:`ScoringBody.deviation` everywhere they are
  reported. SMPL bodies (WHAM) use ``from_body`` without any deviation.

Parameter conventions (SMPL / smplx package): axis-angle in radians, ``transl`` in metres is
SMPL's translation (the root joint sits at ``transl + J_0(betas)``), global orientation rotates
about the root joint.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from moro.body.model import BodyModel
from moro.geometry.rotations import rotvec_to_rotmat

log = logging.getLogger(__name__)

__all__ = [
    "PosedSequence",
    "Scored",
    "ScoringBody",
    "BodyModelSource",
    "file_body_models",
    "load_vertex_transfer",
    "pose_smpl_params",
    "HandPCA",
]

BodyModelSource = Callable[[str, str], BodyModel]
"""``models(kind, gender) -> BodyModel`` with kind ``"smpl" | "smplx"``, gender
``"neutral" | "female" | "male"`` (see :func:`file_body_models`; tests pass small synthetic ones)."""

_CHUNK = 256  # frames posed at once (bounds memory for long sequences of 10475-vertex meshes)


class ParameterError(ValueError):
    """Body-model parameters of a sequence have the wrong size for the model."""


def file_body_models(smplx: str | os.PathLike | None = None, smpl: str | os.PathLike | None = None, num_betas: int = 10) -> BodyModelSource:
    """A cached :data:`BodyModelSource` over the user's SMPL-X / SMPL files.

    Args:
        smplx: SMPL-X model file or directory (``None``: moro's search order, see
            :mod:`moro.body.smpl_files`).
        smpl: SMPL model file or directory (same rule).
        num_betas: shape coefficients kept (10 for EgoBody, RICH, WHAM, GVHMR).
    """
    cache: dict[tuple[str, str], BodyModel] = {}

    def models(kind: str, gender: str) -> BodyModel:
        from moro.body.registry import load_body_model

        if (kind, gender) not in cache:
            path = {"smplx": smplx, "smpl": smpl}.get(kind)
            cache[kind, gender] = load_body_model(kind, path=path, gender=gender, num_betas=num_betas)
        return cache[kind, gender]

    return models


# --------------------------------------------------------------------------- posing


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
class PosedSequence:
    """A posed parameter sequence (float32 vertices to bound memory; metres)."""

    vertices: torch.Tensor  # (F, V, 3) in the body model's topology
    root_rot: torch.Tensor  # (F, 3, 3) global orientation of the root joint, float64


def pose_smpl_params(
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
) -> PosedSequence:
    """Pose an SMPL (24 joints) or SMPL-X (55 joints) :class:`BodyModel` from smplx-style parameters.

    Args:
        body: the model; its joint count decides the layout.
        global_orient: (F, 3) root orientation, axis-angle.
        body_pose: (F, 63) joints 1..21, or (F, 69) with SMPL's two hand joints (SMPL only).
        betas: (F, s) or (s,) shape; fewer than ``body.num_betas`` are zero-padded.
        transl: (F, 3) SMPL translation, metres.
        jaw_pose, leye_pose, reye_pose: optional (F, 3) (SMPL-X); identity when omitted.
        left_hand_pose, right_hand_pose: optional (F, 45) axis-angle, or (F, n <= 45) PCA
            coefficients with ``hand_pca`` given (SMPL-X); flat hands when omitted.
        hand_pca: hand PCA of the SMPL-X model (for PCA hand poses).
        sequence: name used in error messages.
    Returns:
        :class:`PosedSequence` with (F, V, 3) vertices and (F, 3, 3) root orientations.
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
    tr = _frames_param("transl", transl, f, 3, sequence)

    dt = body.v_template.dtype
    root_rot = rotvec_to_rotmat(torch.from_numpy(go))  # (F, 3, 3) float64
    pose_rm = rotvec_to_rotmat(torch.from_numpy(full).to(dt))  # (F, j-1, 3, 3)
    betas_t = torch.from_numpy(b).to(dt)
    betas_f = betas_t.expand(f, -1) if betas_t.dim() == 1 else betas_t
    root_trans = body.smpl_transl_to_root_trans(torch.from_numpy(tr).to(dt), betas_f)
    verts = []
    with torch.no_grad():
        for s in range(0, f, _CHUNK):
            sl = slice(s, s + _CHUNK)
            out = body(pose_rm[sl], betas_f[sl], root_rot[sl].to(dt), root_trans[sl])
            verts.append(out.vertices.float())
    return PosedSequence(vertices=torch.cat(verts), root_rot=root_rot)


# --------------------------------------------------------------------------- scoring skeleton


@dataclass
class Scored:
    """What the metrics see of one posed sequence (float64, metres, the input's frame)."""

    joints22: torch.Tensor  # (F, 22, 3) scoring joints, SMPL order (moro.body.joint_sets.JOINTS22)
    vertices: torch.Tensor  # (F, V, 3) in the scoring topology (SMPL: V = 6890)
    feet: torch.Tensor  # (F, 4, 3) foot-sliding vertices (L heel, L toe, R heel, R toe)


class ScoringBody:
    """Maps posed vertices of a source model to the 22 scoring joints, scored vertices and feet.

    Build with :meth:`from_body` (the model's own regressor) or :meth:`smplx_to_smpl` (the
    protocol for SMPL-X sources). ``label`` and ``deviation`` travel into every report.
    """

    def __init__(
        self,
        *,
        label: str,
        topology: str,
        source_vertices: int,
        joints22_regressor: torch.Tensor,
        foot_vertices: torch.Tensor,
        transfer: torch.Tensor | None = None,
        deviation: str | None = None,
    ):
        self.label = label  # e.g. "smpl", "smplx->smpl (vertex transfer)"
        self.topology = topology  # scored vertex topology, e.g. "smpl:6890"
        self.source_vertices = source_vertices
        self.deviation = deviation  # None when the protocol of metrics.md is followed exactly
        self._reg = joints22_regressor.double()  # (22, Vs)
        self._feet = foot_vertices.long()  # (4,)
        self._transfer = None if transfer is None else transfer.double()  # (Vs, Vsrc)

    @classmethod
    def from_body(cls, body: BodyModel) -> "ScoringBody":
        """Score ``body``'s own topology with its own ``joints22`` regressor and foot vertices."""
        kind = body.name.split("/")[0]
        deviation = None
        if kind != "smpl":
            deviation = (
                f"joints from the {body.name} model's own 22-joint regressor, not SMPL's neutral regressor "
                f"(metrics.md requires SMPL joints; pass an SMPL-X->SMPL vertex transfer to follow it)"
            )
        return cls(
            label=kind, topology=f"{kind}:{body.num_vertices}", source_vertices=body.num_vertices,
            joints22_regressor=body.joints22_regressor, foot_vertices=body.foot_vertices, deviation=deviation,
        )

    @classmethod
    def smplx_to_smpl(cls, transfer: torch.Tensor, smpl: BodyModel) -> "ScoringBody":
        """SMPL-X vertices -> SMPL vertices (``transfer`` (Vs, Vx)) -> SMPL neutral joints and feet."""
        if transfer.dim() != 2 or transfer.shape[0] != smpl.num_vertices:
            raise ValueError(
                f"the vertex transfer must be (SMPL vertices {smpl.num_vertices}, SMPL-X vertices), got "
                f"{tuple(transfer.shape)}; use the smplx2smpl matrix (6890, 10475)"
            )
        kind = smpl.name.split("/")[0]
        return cls(
            label="smplx->smpl (vertex transfer)", topology=f"{kind}:{smpl.num_vertices}",
            source_vertices=transfer.shape[1], joints22_regressor=smpl.joints22_regressor,
            foot_vertices=smpl.foot_vertices, transfer=transfer,
        )

    @property
    def foot_vertex_ids(self) -> torch.Tensor:
        """(4,) ids of the foot-sliding vertices in the scored topology."""
        return self._feet.clone()

    def __call__(self, vertices: torch.Tensor) -> Scored:
        """Args: vertices (F, V_source, 3), metres. Returns :class:`Scored` (float64)."""
        if vertices.dim() != 3 or vertices.shape[1:] != (self.source_vertices, 3):
            raise ValueError(
                f"scoring body '{self.label}' expects vertices (F, {self.source_vertices}, 3), got "
                f"{tuple(vertices.shape)}; pose the matching body model"
            )
        v = vertices.double()
        if self._transfer is not None:
            v = torch.einsum("sv,fvc->fsc", self._transfer, v)
        return Scored(joints22=torch.einsum("jv,fvc->fjc", self._reg, v), vertices=v, feet=v[:, self._feet])


def load_vertex_transfer(path: str | os.PathLike) -> torch.Tensor:
    """Read an SMPL-X -> SMPL vertex transfer matrix as a dense float64 (6890, 10475) tensor.

    Accepted: GVHMR's ``smplx2smpl_sparse.pt`` (torch sparse or dense tensor), the SMPL-X
    authors' ``smplx2smpl_deftrafo_setup.pkl`` / ``smplx2smpl_deformation_matrix.pkl`` (key
    ``mtx`` - its second half of columns, the normals, is dropped - or ``matrix``; scipy
    sparse allowed), or a ``.npy`` / ``.npz`` (single array, or key ``matrix``).
    Pickle and ``.pt`` files run code when loaded: use files you trust.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"vertex transfer file {path} not found; get smplx2smpl_deftrafo_setup.pkl from the SMPL-X "
            f"model-transfer download or GVHMR's hmr4d/utils/body_model/smplx2smpl_sparse.pt"
        )
    if path.suffix == ".pt":
        m = torch.load(path, map_location="cpu", weights_only=True)
        m = m.to_dense() if m.is_sparse else m
    elif path.suffix in (".pkl", ".pickle"):
        with open(path, "rb") as fh:
            data = pickle.load(fh, encoding="latin1")  # noqa: S301 - documented: trusted files only
        if not isinstance(data, dict) or not ({"mtx", "matrix"} & set(data)):
            raise ValueError(f"{path}: expected a dict with key 'mtx' or 'matrix' (SMPL-X deformation transfer)")
        raw = data.get("mtx", data.get("matrix"))
        m = torch.from_numpy(np.asarray(raw.todense() if hasattr(raw, "todense") else raw, dtype=np.float64))
        if "mtx" in data:  # SMPL-X's deformation transfer: [vertex | normal] columns; keep the vertices
            m = m[:, : m.shape[1] // 2]
    elif path.suffix == ".npy":
        m = torch.from_numpy(np.array(np.load(path, allow_pickle=False), dtype=np.float64))
    elif path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            m = torch.from_numpy(np.array(z["matrix"] if "matrix" in z.files else z[z.files[0]], dtype=np.float64))
    else:
        raise ValueError(f"{path}: unknown vertex transfer file type {path.suffix!r}; expected .pt, .pkl, .npy or .npz")
    m = m.double()
    if m.dim() != 2 or not torch.isfinite(m).all():
        raise ValueError(f"{path}: vertex transfer must be a finite 2-D matrix, got shape {tuple(m.shape)}")
    sums = m.sum(dim=1)
    if (sums - 1).abs().max() > 1e-2:
        log.warning("%s: transfer rows sum to [%.3g, %.3g], not 1", path, float(sums.min()), float(sums.max()))
    return m
