"""moro's prediction file: one ``.npz`` per sequence, written and read strictly.

Layout of a prediction directory (``moro eval --pred DIR``)::

    DIR/<method>/<sequence name>.npz     e.g. DIR/moro/recording_20210907_S02_S01_01/master.npz
                                               DIR/wham-world/test/Gym_013_burpee4/cam_06.npz

The sequence name is the protocol's (``GroundTruthSequence.name``); its ``/`` are folders.

Keys of the ``.npz`` (no pickled objects; strings are 0-d unicode arrays):

=================== ============ ======================================================================
key                 shape        meaning
=================== ============ ======================================================================
format              ()           ``"moro-prediction"``
format_version      ()           int, :data:`FORMAT_VERSION`
sequence            ()           the sequence name (must match the file's place in the directory)
frame_ids           (F,)         int64 dataset frame numbers, strictly increasing; the protocol
                                 scores the frames whose ids it lists (all of them must be here)
fps                 ()           float, frames per second of the prediction
joint_set           ()           ``"smpl22"``: the 22 SMPL body joints in SMPL order
                                 (:data:`moro.body.joint_sets.JOINTS22`) - the only set scored
joints_cam          (F, 22, 3)   joints in the OpenCV camera frame of the sequence, metres. For
                                 methods with a separate world trajectory, this is the world output
                                 mapped into the camera with one rigid transform (supplement C)
vertices_cam        (F, V, 3)    optional mesh in the camera frame, metres (PVE; foot sliding)
topology            ()           required with ``vertices_cam``: ``"<kind>:<V>"``, e.g. ``"smpl:6890"``
feet_cam            (F, 4, 3)    optional foot-sliding vertices in the camera frame, metres
joints_world        (F, 22, 3)   optional joints in the method's own world frame (kept for reference;
                                 the protocols derive world joints from ``joints_cam`` and the
                                 ground-truth camera, so every metric scores one set of predictions)
param_<name>        (F, d)/(d,)  optional body-model parameters (axis-angle, metres): e.g.
                                 ``param_global_orient_cam``, ``param_transl_cam``, ``param_body_pose``,
                                 ``param_betas``, ``param_global_orient_world``, ``param_transl_world``
body_model          ()           optional ``"smpl"`` / ``"smplx"`` the parameters belong to
method, source      ()           optional provenance strings
scoring             ()           optional: how ``joints_cam`` was regressed (and any deviation)
=================== ============ ======================================================================

The reader never repairs a file: wrong shapes, frame-count mismatches, NaN/inf and unknown joint
sets raise a :class:`PredictionFileError` subclass naming the file, the sequence and the fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moro.paths import atomic_write

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "JOINT_SETS",
    "PredictionSequence",
    "PredictionFileError",
    "UnknownJointSetError",
    "FrameMismatchError",
    "MissingFramesError",
    "NonFiniteError",
    "prediction_path",
    "write_prediction",
    "read_prediction",
    "select_frames",
]

FORMAT = "moro-prediction"
FORMAT_VERSION = 1
JOINT_SETS = ("smpl22",)
"""Joint sets the metrics accept: ``smpl22`` = ``moro.body.joint_sets.JOINTS22``."""


class PredictionFileError(ValueError):
    """A prediction file is missing, malformed or inconsistent (message: file, sequence, fix)."""


class UnknownJointSetError(PredictionFileError):
    """The file's ``joint_set`` is not one moro scores."""


class FrameMismatchError(PredictionFileError):
    """Arrays of one prediction disagree on the number of frames, or frame ids are invalid."""


class MissingFramesError(PredictionFileError):
    """The prediction lacks frames the protocol scores."""


class NonFiniteError(PredictionFileError):
    """The prediction holds NaN or inf."""


@dataclass
class PredictionSequence:
    """One method's prediction for one sequence (see the module docstring for every field)."""

    sequence: str
    frame_ids: np.ndarray  # (F,) int64
    fps: float
    joints_cam: np.ndarray  # (F, 22, 3) metres, OpenCV camera frame
    joint_set: str = "smpl22"
    vertices_cam: np.ndarray | None = None  # (F, V, 3) metres
    topology: str | None = None  # "<kind>:<V>" with vertices_cam
    feet_cam: np.ndarray | None = None  # (F, 4, 3) metres
    joints_world: np.ndarray | None = None  # (F, 22, 3) metres, the method's own world frame
    params: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (F, d) or (d,)
    body_model: str | None = None
    method: str = ""
    source: str = ""
    scoring: str = ""

    @property
    def num_frames(self) -> int:
        return int(np.asarray(self.frame_ids).shape[0])

    def validate(self, where: str = "") -> "PredictionSequence":
        """Check shapes, frame counts, finiteness and the joint set; return self (arrays normalised)."""
        at = f"{where or 'prediction'} (sequence {self.sequence!r})"
        if self.joint_set not in JOINT_SETS:
            raise UnknownJointSetError(
                f"{at}: joint_set {self.joint_set!r} is not scored; moro scores {JOINT_SETS} - regress the 22 SMPL "
                f"body joints (moro.body.joint_sets.JOINTS22, SMPL order) from SMPL vertices and write joint_set='smpl22'"
            )
        fid = np.asarray(self.frame_ids)
        if fid.ndim != 1 or fid.shape[0] < 1 or fid.dtype.kind not in "iu":
            raise FrameMismatchError(f"{at}: frame_ids must be a non-empty (F,) integer array, got {fid.dtype} {fid.shape}")
        if np.any(np.diff(fid) <= 0):
            raise FrameMismatchError(f"{at}: frame_ids must be strictly increasing (no duplicates); sort the frames")
        self.frame_ids = fid.astype(np.int64)
        f = fid.shape[0]
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise PredictionFileError(f"{at}: fps must be a positive number, got {self.fps!r}")
        self.fps = float(self.fps)
        arrays = {"joints_cam": (22,), "feet_cam": (4,), "joints_world": (22,), "vertices_cam": (None,)}
        for name, (n,) in arrays.items():
            a = getattr(self, name)
            if a is None:
                continue
            a = np.asarray(a)
            if a.dtype.kind != "f":
                raise PredictionFileError(f"{at}: {name} must be floating point (metres), got {a.dtype}")
            if a.ndim != 3 or a.shape[2] != 3 or (n is not None and a.shape[1] != n):
                want = f"(F, {n if n is not None else 'V'}, 3)"
                hint = (
                    "; moro scores the 22 SMPL body joints only - select joints[:, :22] of an SMPL-order skeleton"
                    if name in ("joints_cam", "joints_world") and a.ndim == 3 and a.shape[1] != 22 else ""
                )
                raise PredictionFileError(f"{at}: {name} must have shape {want}, got {a.shape}{hint}")
            if a.shape[0] != f:
                raise FrameMismatchError(
                    f"{at}: {name} has {a.shape[0]} frames but frame_ids lists {f}; write one entry per frame id "
                    f"(predictions are never shortened or padded by the reader)"
                )
            bad = ~np.isfinite(a).reshape(f, -1).all(axis=1)
            if bad.any():
                first = int(fid[np.flatnonzero(bad)[0]])
                raise NonFiniteError(
                    f"{at}: {name} has NaN or inf in {int(bad.sum())} frame(s) (first: frame id {first}); fill them "
                    f"(e.g. interpolate) before writing - the metrics never skip frames"
                )
            setattr(self, name, a)
        if self.vertices_cam is not None:
            v = self.vertices_cam.shape[1]
            if not self.topology or not self.topology.endswith(f":{v}"):
                raise PredictionFileError(
                    f"{at}: vertices_cam needs topology '<kind>:{v}' (e.g. 'smpl:6890'), got {self.topology!r}"
                )
        for name, p in self.params.items():
            p = np.asarray(p)
            if p.dtype.kind not in "fiu" or (p.ndim >= 2 and p.shape[0] != f):
                raise FrameMismatchError(f"{at}: param {name} must be numeric (F={f}, d) or (d,), got {p.dtype} {p.shape}")
            self.params[name] = p
        return self


def prediction_path(root: str | os.PathLike, sequence: str) -> Path:
    """``root/<sequence>.npz`` (the sequence name's ``/`` become folders)."""
    parts = [p for p in sequence.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise ValueError(f"invalid sequence name {sequence!r}")
    return Path(root, *parts[:-1], parts[-1] + ".npz")


def write_prediction(path: str | os.PathLike, pred: PredictionSequence) -> Path:
    """Validate and write ``pred`` atomically to ``path`` (``.npz``, float32 geometry)."""
    pred.validate(str(path))
    data: dict[str, np.ndarray] = {
        "format": np.array(FORMAT), "format_version": np.array(FORMAT_VERSION), "sequence": np.array(pred.sequence),
        "frame_ids": pred.frame_ids, "fps": np.array(pred.fps), "joint_set": np.array(pred.joint_set),
        "joints_cam": pred.joints_cam.astype(np.float32),
        "method": np.array(pred.method), "source": np.array(pred.source), "scoring": np.array(pred.scoring),
    }
    for name in ("vertices_cam", "feet_cam", "joints_world"):
        if getattr(pred, name) is not None:
            data[name] = getattr(pred, name).astype(np.float32)
    if pred.topology:
        data["topology"] = np.array(pred.topology)
    if pred.body_model:
        data["body_model"] = np.array(pred.body_model)
    for name, p in pred.params.items():
        data[f"param_{name}"] = np.asarray(p)
    path = Path(path)
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **data)
    return path


def _str(z, key: str, default: str = "") -> str:
    if key not in z.files:
        return default
    v = z[key]
    return v.item().decode() if v.dtype.kind == "S" else str(v.item())


def read_prediction(path: str | os.PathLike, sequence: str | None = None) -> PredictionSequence:
    """Read and validate one prediction file.

    Args:
        path: the ``.npz`` file.
        sequence: the sequence the caller expects (checked against the file's own name).
    Raises:
        PredictionFileError (or a subclass) naming the file, the sequence and the fix;
        FileNotFoundError when the file is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"prediction file {path} not found{f' for sequence {sequence!r}' if sequence else ''}; write one "
            f"<method>/<sequence>.npz per scored sequence (moro.metrics.predictions.write_prediction)"
        )
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise PredictionFileError(f"{path}: not a readable moro prediction .npz ({e}); rewrite it with write_prediction") from e
    with z:
        if _str(z, "format") != FORMAT:
            raise PredictionFileError(
                f"{path}: not a moro prediction file (format {_str(z, 'format', 'missing')!r}); convert WHAM / GVHMR "
                f"outputs with moro.metrics.predictions.wham / .gvhmr, or write files with write_prediction"
            )
        version = int(z["format_version"]) if "format_version" in z.files else -1
        if version != FORMAT_VERSION:
            raise PredictionFileError(f"{path}: format_version {version}, this moro reads {FORMAT_VERSION}; rewrite the file")
        missing = [k for k in ("sequence", "frame_ids", "fps", "joint_set", "joints_cam") if k not in z.files]
        if missing:
            raise PredictionFileError(f"{path}: missing key(s) {missing}; see moro.metrics.predictions.format for the layout")
        name = _str(z, "sequence")
        if sequence is not None and name != sequence:
            raise PredictionFileError(
                f"{path}: holds sequence {name!r} but its place in the prediction directory says {sequence!r}; "
                f"write it to <method>/{name}.npz"
            )
        get = lambda k: np.array(z[k]) if k in z.files else None  # noqa: E731
        pred = PredictionSequence(
            sequence=name, frame_ids=np.array(z["frame_ids"]), fps=float(z["fps"]), joints_cam=np.array(z["joints_cam"]),
            joint_set=_str(z, "joint_set"), vertices_cam=get("vertices_cam"), topology=_str(z, "topology") or None,
            feet_cam=get("feet_cam"), joints_world=get("joints_world"),
            params={k[len("param_"):]: np.array(z[k]) for k in z.files if k.startswith("param_")},
            body_model=_str(z, "body_model") or None, method=_str(z, "method"), source=_str(z, "source"),
            scoring=_str(z, "scoring"),
        )
    return pred.validate(str(path))


def select_frames(pred: PredictionSequence, frame_ids: np.ndarray, where: str = "") -> PredictionSequence:
    """The prediction restricted to ``frame_ids`` (F,), in that order; every id must be present.

    Used by the protocols when a method was run on more frames than are scored (e.g. a whole
    EgoBody recording); a missing frame raises :class:`MissingFramesError`, never a shorter result.
    """
    want = np.asarray(frame_ids, dtype=np.int64)
    pos = np.searchsorted(pred.frame_ids, want)
    ok = (pos < pred.num_frames) & (pred.frame_ids[np.minimum(pos, pred.num_frames - 1)] == want)
    if not ok.all():
        miss = want[~ok]
        raise MissingFramesError(
            f"{where or 'prediction'} (sequence {pred.sequence!r}): {miss.size} of {want.size} scored frames are missing "
            f"(first missing frame ids {miss[:5].tolist()}; prediction covers ids {int(pred.frame_ids[0])}.."
            f"{int(pred.frame_ids[-1])}); predict every scored frame - check the frame-id offset of the writer"
        )
    if pos.size == pred.num_frames and np.array_equal(pos, np.arange(pred.num_frames)):
        return pred
    pick = lambda a: None if a is None else a[pos]  # noqa: E731
    f = pred.num_frames
    params = {k: (v[pos] if v.ndim >= 2 and v.shape[0] == f else v) for k, v in pred.params.items()}
    return PredictionSequence(
        sequence=pred.sequence, frame_ids=want, fps=pred.fps, joints_cam=pred.joints_cam[pos], joint_set=pred.joint_set,
        vertices_cam=pick(pred.vertices_cam), topology=pred.topology, feet_cam=pick(pred.feet_cam),
        joints_world=pick(pred.joints_world), params=params, body_model=pred.body_model, method=pred.method,
        source=pred.source, scoring=pred.scoring,
    )
