"""Adapter for WHAM's published output, ``wham_output.pkl`` (WHAM ``demo.py --save_pkl``).

The file is ``joblib.dump`` of a dict keyed by tracked subject id; each subject holds (numpy,
F = frames where that subject was tracked, neutral SMPL):

============ ============ ============================================================
key          shape        meaning
============ ============ ============================================================
pose         (F, 72)      camera frame: root orientation (0:3) + body pose (3:72), axis-angle
trans        (F, 3)       camera-frame SMPL translation, metres
pose_world   (F, 72)      world frame (gravity-aligned, Y up): root orientation + the same body pose
trans_world  (F, 3)       world-frame SMPL translation, metres
betas        (F, 10)      shape
verts        (F, 6890, 3) camera-frame vertices, metres (not used: re-posed from the parameters)
frame_ids    (F,)         0-based frame indices of the input video
============ ============ ============================================================

:func:`wham_to_prediction` poses both parameter sets with the user's SMPL model and writes the
``-Cam`` or ``-World`` variant (``moro.metrics.predictions.baseline``). Video frame ``i``
becomes dataset frame ``i + frame_offset``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np

from moro.body.model import BodyModel

from .baseline import prediction_from_params
from .format import PredictionFileError, PredictionSequence
from .joblib_pickle import load_joblib_pickle
from .scoring_body import ScoringBody

__all__ = ["WHAM_KEYS", "read_wham_output", "wham_to_prediction"]

WHAM_KEYS = ("pose", "trans", "pose_world", "trans_world", "betas", "frame_ids")
"""Keys every subject of ``wham_output.pkl`` must hold (``verts`` is optional here)."""


def read_wham_output(path: str | os.PathLike) -> dict[str, dict[str, np.ndarray]]:
    """Read ``wham_output.pkl`` (no joblib needed; data types only, no code runs).

    Returns:
        ``{subject id as str: {key: array}}`` with every key of :data:`WHAM_KEYS` checked for
        shape and frame count.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"WHAM output {path} not found; run WHAM's demo.py with --save_pkl")
    try:
        data = load_joblib_pickle(path)
    except Exception as e:  # pickle raises many types on foreign files
        raise PredictionFileError(f"{path}: not a readable wham_output.pkl ({type(e).__name__}: {e})") from e
    if not isinstance(data, Mapping) or not data:
        raise PredictionFileError(f"{path}: expected a dict of subjects (WHAM's results), got {type(data).__name__}")
    out = {}
    for sid, subj in data.items():
        where = f"{path} subject {sid}"
        if not isinstance(subj, Mapping):
            raise PredictionFileError(f"{where}: expected a dict of arrays, got {type(subj).__name__}")
        missing = [k for k in WHAM_KEYS if k not in subj]
        if missing:
            raise PredictionFileError(
                f"{where}: missing key(s) {missing}; WHAM writes {list(WHAM_KEYS)} (run it with global estimation "
                f"so pose_world / trans_world exist)"
            )
        a = {k: np.asarray(subj[k]) for k in subj}
        f = a["frame_ids"].reshape(-1).shape[0]
        want = {"pose": (f, 72), "pose_world": (f, 72), "trans": (f, 3), "trans_world": (f, 3)}
        for k, shape in want.items():
            if a[k].shape != shape:
                raise PredictionFileError(f"{where}: {k} must have shape {shape} (one row per frame id), got {a[k].shape}")
        if a["betas"].shape not in ((f, 10), (10,)):
            raise PredictionFileError(f"{where}: betas must have shape ({f}, 10) or (10,), got {a['betas'].shape}")
        a["frame_ids"] = a["frame_ids"].reshape(-1).astype(np.int64)
        out[str(sid)] = a
    return out


def _pick_subject(results: Mapping[str, Mapping[str, np.ndarray]], subject: object, where: str) -> str:
    if subject is not None:
        if str(subject) not in results:
            raise ValueError(f"{where}: no subject {subject!r}; subjects are {sorted(results)}")
        return str(subject)
    if len(results) == 1:
        return next(iter(results))
    lengths = {k: len(v["frame_ids"]) for k, v in results.items()}
    raise ValueError(
        f"{where}: {len(results)} tracked subjects {lengths} (frames each); pass subject=<id> for the person the "
        f"protocol scores"
    )


def wham_to_prediction(
    source: str | os.PathLike | Mapping[str, Mapping[str, np.ndarray]],
    *,
    smpl: BodyModel,
    sequence: str,
    variant: Literal["cam", "world"] = "world",
    subject: object = None,
    frame_offset: int = 0,
    fps: float = 30.0,
    scoring: ScoringBody | None = None,
    keep_vertices: bool = True,
) -> PredictionSequence:
    """Convert one WHAM subject into moro's prediction format.

    Args:
        source: path of ``wham_output.pkl`` or the dict :func:`read_wham_output` returned.
        smpl: the neutral SMPL :class:`BodyModel` (WHAM's body model).
        sequence: protocol sequence name (e.g. ``"recording_.../master"``).
        variant: ``"cam"`` (WHAM -Cam) or ``"world"`` (WHAM -World, mapped per supplement C).
        subject: tracked subject id; needed when the file holds several.
        frame_offset: added to WHAM's 0-based video frame indices to get dataset frame ids.
        fps: frame rate of the video.
        scoring: scoring skeleton (default: ``ScoringBody.from_body(smpl)``).
        keep_vertices: store the mesh (for PVE).
    Returns:
        a validated :class:`PredictionSequence`.
    """
    where = str(source) if not isinstance(source, Mapping) else "WHAM results"
    results = read_wham_output(source) if not isinstance(source, Mapping) else source
    sid = _pick_subject(results, subject, where)
    r = results[sid]
    cam = {"global_orient": r["pose"][:, :3], "body_pose": r["pose"][:, 3:], "betas": r["betas"], "transl": r["trans"]}
    world = {
        "global_orient": r["pose_world"][:, :3], "body_pose": r["pose_world"][:, 3:], "betas": r["betas"],
        "transl": r["trans_world"],
    }
    return prediction_from_params(
        sequence=sequence, body=smpl, scoring=scoring or ScoringBody.from_body(smpl), cam=cam, world=world,
        variant=variant, frame_ids=np.asarray(r["frame_ids"]) + int(frame_offset), fps=fps, method=f"wham-{variant}",
        source=f"WHAM {where} subject {sid}", keep_vertices=keep_vertices,
    )
