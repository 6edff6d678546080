"""Turn a baseline's camera-frame and world-frame body parameters into one :class:`PredictionSequence`.

WHAM and GVHMR output two SMPL(-X) parameter sets that share pose and shape but have
independently predicted global trajectories: ``(gamma_c, Phi_c)`` in the camera and
``(gamma_w, Phi_w)`` in a gravity-aware world frame. Supplement C scores one consistent set:

- ``variant="cam"``  ("-Cam" rows of the paper's tables): the camera-frame parameters.
- ``variant="world"`` ("-World" rows): the world-frame body mapped into the camera by ONE rigid
  transform per sequence (orthogonal Procrustes on the per-frame root orientations,
  least squares on the pelvis positions: :func:`moro.metrics.align.baseline_world_to_camera`).

Either way the file holds camera-frame joints (and vertices, feet); the protocols derive the
world-frame joints from them with the ground-truth camera, so all metrics use the same set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np

from moro.body.model import BodyModel
from moro.metrics.align import baseline_world_to_camera

from .format import PredictionSequence
from .scoring_body import HandPCA, ScoringBody, pose_smpl_params

__all__ = ["prediction_from_params", "VARIANTS"]

VARIANTS = ("cam", "world")

_PARAM_KEYS = (
    "global_orient", "body_pose", "betas", "transl", "jaw_pose", "leye_pose", "reye_pose", "left_hand_pose", "right_hand_pose",
)


def _params(d: Mapping[str, object], where: str) -> dict[str, object]:
    missing = [k for k in ("global_orient", "body_pose", "betas", "transl") if k not in d]
    if missing:
        raise ValueError(f"{where}: missing parameter(s) {missing}; have {sorted(d)}")
    return {k: d[k] for k in _PARAM_KEYS if k in d}


def prediction_from_params(
    *,
    sequence: str,
    body: BodyModel,
    scoring: ScoringBody,
    cam: Mapping[str, object],
    world: Mapping[str, object] | None,
    variant: Literal["cam", "world"],
    frame_ids: np.ndarray,
    fps: float,
    method: str,
    source: str,
    hand_pca: HandPCA | None = None,
    keep_vertices: bool = True,
) -> PredictionSequence:
    """Pose both parameter sets and build the prediction of one sequence.

    Args:
        sequence: protocol sequence name.
        body: the model the parameters belong to (SMPL for WHAM, SMPL-X for GVHMR).
        scoring: maps ``body``'s vertices to scoring joints / vertices / feet.
        cam: camera-frame parameters ``global_orient (F, 3)``, ``body_pose``, ``betas``,
            ``transl (F, 3)`` (+ optional SMPL-X extras), axis-angle radians / metres.
        world: the world-frame parameters (same keys), or None (then only ``variant="cam"``).
        variant: ``"cam"`` or ``"world"`` (see the module docstring).
        frame_ids: (F,) dataset frame numbers of the F frames.
        fps: frame rate.
        method, source: provenance strings written into the file.
        hand_pca: SMPL-X hand PCA when hand poses are PCA coefficients.
        keep_vertices: also store the (F, V, 3) camera-frame mesh (needed for PVE).
    Returns:
        a validated :class:`PredictionSequence` (camera frame, metres).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if variant == "world" and world is None:
        raise ValueError(f"{sequence}: variant 'world' needs the world-frame parameters; the source has none")
    pc = pose_smpl_params(body, **_params(cam, f"{source} (camera)"), hand_pca=hand_pca, sequence=sequence)
    sc = scoring(pc.vertices)
    sw = pw = None
    if world is not None:
        pw = pose_smpl_params(body, **_params(world, f"{source} (world)"), hand_pca=hand_pca, sequence=sequence)
        sw = scoring(pw.vertices)
    params = {f"{k}_cam": np.asarray(cam[k], dtype=np.float64) for k in ("global_orient", "transl")}
    params.update({k: np.asarray(cam[k], dtype=np.float64) for k in ("body_pose", "betas")})
    if world is not None:
        params.update({f"{k}_world": np.asarray(world[k], dtype=np.float64) for k in ("global_orient", "transl")})
    if variant == "cam":
        joints, verts, feet = sc.joints22, sc.vertices, sc.feet
        note = "camera-frame parameters"
    else:
        m = baseline_world_to_camera(pc.root_rot, pw.root_rot, sc.joints22, sw.joints22, sw.vertices)
        joints, verts = m.joints_cam, m.verts_cam
        feet = sw.feet @ m.R_w2c.T + m.t_w2c
        params["R_w2c"] = m.R_w2c.numpy().reshape(9)
        params["t_w2c"] = m.t_w2c.numpy()
        note = "world-frame parameters mapped to the camera by one rigid transform (supplement C)"
    scoring_note = scoring.label + (f" | DEVIATION: {scoring.deviation}" if scoring.deviation else "")
    return PredictionSequence(
        sequence=sequence, frame_ids=np.asarray(frame_ids, dtype=np.int64), fps=float(fps),
        joints_cam=joints.numpy(), vertices_cam=verts.numpy() if keep_vertices else None,
        topology=scoring.topology if keep_vertices else None, feet_cam=feet.numpy(),
        joints_world=None if sw is None else sw.joints22.numpy(), params=params,
        body_model=body.name.split("/")[0], method=method, source=f"{source}; {note}", scoring=scoring_note,
    ).validate(source)
