"""Parametric fitting (supplement B): mesh vertices of a sequence -> body-model parameters.

MoRo's decoder outputs a non-parametric mesh; this module fits the parametric model to it with
`smplfitter <https://github.com/isarandi/smplfitter>`_ (per-part Kabsch + linear least squares
for shape), with **one shape shared by the whole sequence**.

Any :class:`~moro.body.model.BodyModel` works the same way: its arrays are handed to smplfitter
directly (no pickle written, no licensed files needed), so Anny, SMPL-X and SMPL all take one path.
SMPL-family models keep smplfitter's SMPL-specific part handling (toes folded into the feet).
"""

from __future__ import annotations

from dataclasses import dataclass
from unittest import mock

import numpy as np
import torch

from moro.body.model import BodyModel


@dataclass
class FitResult:
    """Fitted parameters of a sequence of t frames (moro's pose convention, metres)."""

    body_pose: torch.Tensor  # (t, j-1, 3, 3)
    betas: torch.Tensor  # (s,) shared by all frames
    root_rot: torch.Tensor  # (t, 3, 3)
    root_trans: torch.Tensor  # (t, 3) root joint position
    vertices: torch.Tensor  # (t, v, 3) the fitted mesh


def to_smplfitter(body: BodyModel):
    """Build a ``smplfitter.pt.BodyModel`` holding ``body``'s arrays (float32, same device).

    smplfitter applies pose correctives to ``vec(R)`` rather than ``vec(R - I)``; the template is
    shifted accordingly, exactly as smplfitter does for its own files.
    """
    import smplfitter.common as sf_common
    from smplfitter.pt import BodyModel as SFBodyModel
    from smplfitter.pt import bodymodel as sf_bodymodel

    if body.joint_regressor is None:
        raise ValueError(f"{body.name} has no joint_regressor: it cannot be fitted; rebuild the model file")
    j, v = body.num_joints, body.num_vertices
    dev = body.v_template.device
    posedirs = body.posedirs if body.posedirs is not None else torch.zeros(v, 3, (j - 1) * 9, device=dev)
    posedirs = posedirs.double().cpu().numpy()
    v_template = body.v_template.double().cpu().numpy()
    v_template = v_template - np.einsum("vcx,x->vc", posedirs, np.tile(np.eye(3), (j - 1, 1)).reshape(-1))
    kind = body.meta.get("smplfitter_name", "anny")
    data = sf_common.ModelData(
        v_template=v_template, shapedirs=body.shapedirs.double().cpu().numpy(), posedirs=posedirs,
        J_regressor_post_lbs=body.joint_regressor.double().cpu().numpy(),
        J_template=body.j_template.double().cpu().numpy(), J_shapedirs=body.j_shapedirs.double().cpu().numpy(),
        kid_shapedir=np.zeros((v, 3)), kid_J_shapedir=np.zeros((j, 3)), _has_kid_template=False,
        weights=body.weights.double().cpu().numpy(), kintree_parents=list(body.parents),
        faces=body.faces.cpu().numpy().astype(np.int32), num_joints=j, num_vertices=v,
        vertex_subset=np.arange(v), joint_names=list(body.joint_names),
    )
    # smplfitter only reads models from files; hand it our arrays through its own loader hook.
    with mock.patch.object(sf_bodymodel.smplfitter_common, "initialize", lambda *a, **k: data):
        return SFBodyModel(kind if kind in ("smpl", "smplx") else "mano", device=dev)


def fit_sequence(
    body: BodyModel,
    vertices: torch.Tensor,
    joints: torch.Tensor | None = None,
    num_iter: int = 3,
    beta_regularizer: float = 1.0,
    fitter=None,
) -> FitResult:
    """Fit parameters with one shared shape to a sequence of meshes.

    Args:
        body: the model to fit (its topology must match ``vertices``).
        vertices: (t, v, 3) target vertices, metres, any frame (camera or world).
        joints: optional (t, j, 3) target skeleton joints; else regressed from the vertices.
        num_iter: smplfitter iterations (1-4; 3 is accurate).
        beta_regularizer: L2 weight on betas (smplfitter's default; much smaller values make its solver slow).
        fitter: a cached ``smplfitter.pt.BodyFitter`` for ``body`` (built when None).
    Returns:
        :class:`FitResult` in moro's conventions.
    """
    from smplfitter.pt import BodyFitter

    if vertices.ndim != 3 or vertices.shape[1:] != (body.num_vertices, 3):
        raise ValueError(f"vertices must be (t, {body.num_vertices}, 3) for {body.name}, got {tuple(vertices.shape)}")
    if joints is not None and joints.shape != (vertices.shape[0], body.num_joints, 3):
        raise ValueError(f"joints must be {(vertices.shape[0], body.num_joints, 3)}, got {tuple(joints.shape)}")
    if not torch.isfinite(vertices).all():
        raise ValueError("vertices contain NaN or inf")
    fitter = fitter or BodyFitter(to_smplfitter(body).to(vertices.device))
    res = fitter.fit(
        vertices.float(), target_joints=None if joints is None else joints.float(), num_iter=num_iter,
        beta_regularizer=beta_regularizer, share_beta=True, final_adjust_rots=True,
        requested_keys=["relative_orientations", "shape_betas", "trans"],
    )
    dtype = vertices.dtype
    rel = res["relative_orientations"].to(dtype)  # (t, j, 3, 3)
    betas = res["shape_betas"][0].to(dtype)
    root_trans = body.smpl_transl_to_root_trans(res["trans"].to(dtype), betas.expand(len(rel), -1))
    posed = body(rel[:, 1:], betas, rel[:, 0], root_trans)
    return FitResult(body_pose=rel[:, 1:], betas=betas, root_rot=rel[:, 0], root_trans=root_trans, vertices=posed.vertices)
