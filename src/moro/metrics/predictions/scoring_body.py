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
from moro.body.params import HandPCA, ParameterError, PosedSequence, pose_smpl_params  # noqa: F401

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


# posing: moro.body.params (re-exported here for existing imports)


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
