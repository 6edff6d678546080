"""Which SMPL-X the authors' model was trained with, as a fingerprint that holds none of its data.

The authors' ``last.ckpt`` carries their SMPL-X buffers (``bm_neutral.bm.*``, licensed data that
moro drops). Before dropping them the converter records a fingerprint in the output
(``payload["source"]["body_reference"]``): vertex and face counts, the sha256 of the faces, the
mean template vertex and the mean absolute value of each of the 10 shape bases. A user's
``SMPLX_NEUTRAL.npz`` is compared with it by :func:`check_smplx_against_reference`:

* other faces or vertex count: another topology (not SMPL-X, or a modified mesh); the tokenizer's
  9383 body vertices would not line up with the fitted model -> error;
* other template: another gender or release -> error;
* other shape bases: another SMPL-X release (v1.0: 10 shape bases, v1.1: 300; the first 10 are
  not the same) -> error: meshes still fit, but the fitted betas would not mean the authors' shapes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping

import numpy as np
import torch

from moro.convert.official_layout import BODY

__all__ = ["BodyModelMismatchError", "body_reference", "check_smplx_against_reference"]

_TOL_M = 1e-5  # metres, on means of the template
_TOL_REL = 1e-4  # relative, on the shape-basis magnitudes


class BodyModelMismatchError(ValueError):
    """A user's SMPL-X file is not the one the authors' weights were trained with.

    ``kind`` says how it differs: ``"topology"`` (vertex / face count or faces: the tokenizer's
    vertices would not correspond), ``"bases"`` (fewer shape bases than the authors'),
    ``"template"`` (another gender or release) or ``"version"`` (other shape bases, e.g. v1.0 vs v1.1).
    """

    def __init__(self, message: str, kind: str = "topology"):
        super().__init__(message)
        self.kind = kind


def _faces_sha256(faces: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(faces, dtype="<i8").tobytes()).hexdigest()


def _fingerprint(v_template: np.ndarray, faces: np.ndarray, shapedirs10: np.ndarray) -> dict:
    v = np.asarray(v_template, dtype=np.float64)
    return {
        "model": "smplx",
        "num_vertices": int(v.shape[0]),
        "num_faces": int(faces.shape[0]),
        "faces_sha256": _faces_sha256(faces),
        "v_template_mean": v.mean(0).tolist(),  # (3,) metres
        "v_template_absmean": float(np.abs(v).mean()),
        "shapedirs_absmean": np.abs(np.asarray(shapedirs10, dtype=np.float64)).mean((0, 1)).tolist(),  # (10,)
    }


def body_reference(state: Mapping[str, torch.Tensor]) -> dict | None:
    """Fingerprint of the ``bm_neutral.bm.*`` buffers of an authors' state dict; None if absent or on meta."""
    keys = [BODY + k for k in ("v_template", "faces_tensor", "shapedirs")]
    if not all(k in state for k in keys) or any(state[k].device.type == "meta" for k in keys):
        return None
    v, f, s = (state[k].detach().cpu().numpy() for k in keys)
    return _fingerprint(v, f.astype(np.int64), s)


def check_smplx_against_reference(smplx: str | os.PathLike | Mapping, reference: Mapping) -> dict:
    """Check a user's SMPL-X against the authors' fingerprint; raise :class:`BodyModelMismatchError` if it differs.

    Args:
        smplx: path of an SMPL-X file (.npz / .pkl), or the dict of
            :func:`moro.body.smpl_files.read_smplx_file` (``v_template``, ``faces``, ``shapedirs``).
        reference: ``payload["source"]["body_reference"]`` of a converted checkpoint.
    Returns:
        the user's fingerprint (same keys as the reference).
    """
    if not isinstance(smplx, Mapping):
        from moro.body.smpl_files import read_smplx_file

        name, smplx = str(smplx), read_smplx_file(smplx)
    else:
        name = "the given SMPL-X arrays"
    sd = np.asarray(smplx["shapedirs"])
    known = {300: "v1.1 (300 shape bases)", 10: "v1.0 (10 shape bases)"}
    release = known.get(sd.shape[-1], f"{sd.shape[-1]} shape bases")
    ref = reference
    n = len(ref["shapedirs_absmean"])  # 10 for the authors' SMPLXLayer
    if sd.shape[-1] < n:
        raise BodyModelMismatchError(f"{name}: has {sd.shape[-1]} shape bases; the authors' model used {n}", "bases")
    ours = _fingerprint(smplx["v_template"], np.asarray(smplx["faces"]), sd[..., :n])
    if (ours["num_vertices"], ours["num_faces"]) != (ref["num_vertices"], ref["num_faces"]) or \
            ours["faces_sha256"] != ref["faces_sha256"]:
        raise BodyModelMismatchError(
            f"{name}: {ours['num_vertices']} vertices / {ours['num_faces']} faces (faces sha256 "
            f"{ours['faces_sha256'][:12]}), but the authors' SMPL-X has {ref['num_vertices']} / {ref['num_faces']} "
            f"(sha256 {ref['faces_sha256'][:12]}): another mesh topology, so the tokenizer's body vertices "
            "would not correspond. Use the SMPL-X model file (SMPLX_NEUTRAL.npz) from smpl-x.is.tue.mpg.de"
        )
    dv = float(np.abs(np.subtract(ours["v_template_mean"], ref["v_template_mean"])).max())
    if dv > _TOL_M or abs(ours["v_template_absmean"] - ref["v_template_absmean"]) > _TOL_M:
        raise BodyModelMismatchError(
            f"{name}: its template mesh differs from the authors' SMPL-X (mean vertex off by {dv * 1000:.3f} mm): "
            "another gender or release. The authors used the NEUTRAL SMPL-X model; pass SMPLX_NEUTRAL.npz",
            "template")
    a, b = np.asarray(ours["shapedirs_absmean"]), np.asarray(ref["shapedirs_absmean"])
    rel = float(np.abs(a - b).max() / max(float(np.abs(b).max()), 1e-12))
    if rel > _TOL_REL:
        raise BodyModelMismatchError(
            f"{name}: a different SMPL-X version than the authors' (this file: {release}; its first {n} shape bases "
            f"differ from theirs by {100 * rel:.2f} %). Meshes would still be fitted, but the betas would not "
            "describe the authors' shapes. Use the SMPL-X file the authors' setup downloads "
            "(body_models/smplx/SMPLX_NEUTRAL.npz from smplfitter's download script)",
            "version")
    return ours
