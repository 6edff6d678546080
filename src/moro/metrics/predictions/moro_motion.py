"""Adapter for moro's own output, ``motion.npz`` of ``moro infer`` (keys: :mod:`moro.inference.exports`).

A run with the authors' weights (``--body-model smplx``) exports SMPL-X parameters fitted to the
network's mesh, in AMASS key names, camera frame included: ``root_orient_cam (t, 3)``,
``trans_cam (t, 3)`` (SMPL-style ``transl``, metres), ``pose_body (t, 63)``, ``pose_jaw (t, 3)``,
``pose_eye (t, 6)``, ``pose_hand (t, 90)`` (axis-angle, flat-hand convention: ``hands_mean`` not
added), ``betas (s,)`` shared by the sequence. :func:`moro_motion_to_prediction` poses them with the
user's **full** SMPL-X (10475 vertices; the fit used its eyeball-free body mesh, whose vertices are
the full mesh's first 9383 for every pose and shape) and scores them like the ground truth of
EgoBody-Occ and RICH (``shared/metrics.md``): SMPL-X vertices -> SMPL vertices with the ``smplx2smpl``
transfer -> the neutral SMPL regressor's 22 joints (``ScoringBody.smplx_to_smpl``). MoRo predicts
in the camera frame, so the camera-frame parameters are scored directly (no supplement-C alignment).

Other surfaces (Anny) have no SMPL mapping: their exported ``joints22_cam`` (the model's own
22-joint regressor) are used and the prediction carries that deviation.

Frames: ``motion.npz`` row ``i`` shows source frame ``source_frame[i]`` (0-based index into the video
or the sorted image folder, at the model's 30 fps); its dataset frame id is ``source_frame[i] +
frame_offset`` (EgoBody's ``frame_00001.jpg`` is the first image: ``frame_offset=1``), or pass the
ids explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from moro.body.model import BodyModel

from .baseline import prediction_from_params
from .format import PredictionFileError, PredictionSequence
from .scoring_body import ScoringBody

__all__ = ["MOTION_FORMAT", "read_moro_motion", "moro_motion_to_prediction"]

MOTION_FORMAT = "moro-motion"
_SMPLX_KEYS = {"root_orient_cam": 3, "trans_cam": 3, "pose_body": 63, "pose_jaw": 3, "pose_eye": 6, "pose_hand": 90}
_COMMON = ("format", "surface_model_type", "fps", "source_frame", "betas", "joints22_cam")


def read_moro_motion(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read ``motion.npz`` (no pickles) and check the keys the adapter needs.

    Returns:
        {key: array}; strings as 0-d arrays. SMPL-X files are checked for the widths of
        ``root_orient_cam`` (3), ``trans_cam`` (3), ``pose_body`` (63), ``pose_jaw`` (3),
        ``pose_eye`` (6), ``pose_hand`` (90) per frame.
    Raises:
        FileNotFoundError; PredictionFileError naming the file and key.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"moro motion file {path} not found; `moro infer VIDEO --out DIR` writes DIR/motion.npz")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:
        raise PredictionFileError(f"{path}: not a readable motion.npz ({e})") from e
    if str(data.get("format", "")) != MOTION_FORMAT:
        raise PredictionFileError(f"{path}: not a moro motion file (format {str(data.get('format', 'missing'))!r}); "
                                  "pass the motion.npz written by `moro infer`")
    missing = [k for k in _COMMON if k not in data]
    if str(data.get("surface_model_type", "")) == "smplx":
        missing += [k for k in _SMPLX_KEYS if k not in data]
    if missing:
        raise PredictionFileError(f"{path}: lacks {missing}; re-run `moro infer` with this moro version")
    t = len(data["source_frame"])
    if str(data["surface_model_type"]) == "smplx":
        for k, w in _SMPLX_KEYS.items():
            if data[k].shape != (t, w):
                raise PredictionFileError(f"{path}: {k} must have shape ({t}, {w}) (SMPL-X, {t} frames), "
                                          f"found {data[k].shape}")
    return data


def moro_motion_to_prediction(
    source: str | os.PathLike | Mapping[str, np.ndarray],
    *,
    sequence: str,
    smplx: BodyModel | None = None,
    scoring: ScoringBody | None = None,
    frame_offset: int = 0,
    frame_ids: np.ndarray | None = None,
    method: str = "moro",
    keep_vertices: bool = True,
) -> PredictionSequence:
    """Turn one ``motion.npz`` into the prediction of ``sequence`` for ``moro eval``.

    Args:
        source: path of ``motion.npz`` or the dict :func:`read_moro_motion` returned.
        sequence: protocol sequence name (e.g. ``"recording_20210907_S02_S01_01/master"``).
        smplx: the user's full SMPL-X :class:`BodyModel` (``load_smplx(path)``, 10475 vertices,
            10 betas), needed for SMPL-X motions; the neutral model of the fit.
        scoring: ``ScoringBody.smplx_to_smpl(load_vertex_transfer(smplx2smpl), smpl_neutral)``
            (metrics.md); None = SMPL-X's own 22 joints, a labelled deviation.
        frame_offset: dataset frame id of source frame 0 (module docstring).
        frame_ids: (t,) explicit dataset frame ids instead (strictly increasing).
        method: written into the file.
        keep_vertices: store the scored mesh (PVE).
    Returns:
        a validated :class:`PredictionSequence`: ``joints_cam`` (t, 22, 3) metres, OpenCV camera frame.
    Raises:
        PredictionFileError: bad file, repeated source frames (a video not at 30 fps: pass ``frame_ids``
            of the rows to keep), or an SMPL-X motion without ``smplx``.
    """
    where = str(source) if not isinstance(source, Mapping) else "motion.npz"
    m = read_moro_motion(source) if not isinstance(source, Mapping) else dict(source)
    ids = np.asarray(m["source_frame"], np.int64) + int(frame_offset) if frame_ids is None else np.asarray(frame_ids)
    if ids.shape != (len(m["source_frame"]),):
        raise PredictionFileError(f"{where}: frame_ids must have one id per row ({len(m['source_frame'])}), "
                                  f"got shape {ids.shape}")
    if np.any(np.diff(ids) <= 0):
        raise PredictionFileError(
            f"{where}: source frames repeat or go back (the video was resampled to {float(m['fps']):g} fps); score "
            "videos at their native 30 fps, or pass frame_ids for the rows to keep")
    surface = str(m["surface_model_type"])
    fps = float(m["fps"])
    if surface != "smplx":
        note = (f"{surface} joints from its own 22-joint regressor (moro infer's joints22_cam), not SMPL's neutral "
                "regressor: no SMPL mapping exists for this body model")
        return PredictionSequence(
            sequence=sequence, frame_ids=ids, fps=fps, joints_cam=np.asarray(m["joints22_cam"], np.float64),
            method=method, source=f"moro {where}", scoring=f"{surface} | DEVIATION: {note}",
            body_model=surface).validate(where)
    if smplx is None:
        raise PredictionFileError(f"{where}: an SMPL-X motion needs smplx= (the full SMPL-X model, load_smplx(path))")
    if smplx.num_joints != 55:
        raise PredictionFileError(f"{where}: smplx= has {smplx.num_joints} joints; pass the SMPL-X model (55 joints)")
    if scoring is not None and scoring.source_vertices != smplx.num_vertices:
        raise PredictionFileError(
            f"{where}: smplx= ({smplx.name}) has {smplx.num_vertices} vertices but the vertex transfer maps "
            f"{scoring.source_vertices}; pose the full SMPL-X (load_smplx(path), not the eyeball-free body mesh "
            "that moro infer fits) and use the smplx2smpl matrix (6890, 10475)")
    eye, hand = np.asarray(m["pose_eye"]), np.asarray(m["pose_hand"])
    cam = {"global_orient": m["root_orient_cam"], "body_pose": m["pose_body"], "transl": m["trans_cam"],
           "betas": np.asarray(m["betas"]).reshape(-1), "jaw_pose": m["pose_jaw"], "leye_pose": eye[:, :3],
           "reye_pose": eye[:, 3:], "left_hand_pose": hand[:, :45], "right_hand_pose": hand[:, 45:]}
    return prediction_from_params(
        sequence=sequence, body=smplx, scoring=scoring or ScoringBody.from_body(smplx), cam=cam, world=None,
        variant="cam", frame_ids=ids, fps=fps, method=method, source=f"moro {where}", keep_vertices=keep_vertices)
