"""``motion.npz``, ``summary.json`` and the atomic output folder of ``moro infer``.

**Output folder** (:class:`OutputDir`): everything is written into a hidden sibling
``.<name>.tmp-XXXX/``; ``summary.json`` (ending with ``"complete": true``) is written last and
the folder is then renamed to ``<name>``, replacing an earlier moro output there. A crash leaves
only the hidden temporary folder, so a folder named ``--out`` is always a finished run. An
existing ``--out`` that is not a moro output folder (non-empty, no ``summary.json``) is refused.

**motion.npz** (plain numpy, no pickles; t frames at 30 fps, j rig joints, s shape coefficients;
metres, radians, pixels; camera = OpenCV; world = Y up, ground y = 0; AMASS names where one exists):

======================== ================ ==============================================================
key                      shape            meaning
======================== ================ ==============================================================
format, format_version   (), ()           "moro-motion", 1
fps, mocap_frame_rate    (), ()           30.0 (output frame rate; AMASS name too)
surface_model_type       ()               "anny" | "smplx" | "smpl" (AMASS name)
body_model, gender       (), ()           e.g. "anny/notoes_collapse5pc", "neutral"
joint_names, parents     (j,), (j,)       the rig (str, int64)
joints22_names           (22,)            names of the scoring joints (SMPL order)
betas                    (s,)             shape, shared by all frames
image_size               (2,)             int64 (width, height) of the input
K                        (3, 3)           intrinsics, pixels (static camera)
T_cam2world, T_world2cam (4, 4)           ``x_world = T_cam2world [x_cam; 1]``
ground_plane_cam         (4,)             ``(n, d)``: ``n . x_cam + d = 0``, n up
time, source_time        (t,), (t,)       seconds; the output frame's time and the source frame's stamp
source_frame             (t,)             int64 index of the source frame shown
poses                    (t, 3 j)         axis-angle: world root orientation, then joints 1..j-1 (AMASS)
root_orient, trans       (t, 3), (t, 3)   world root axis-angle; SMPL-style ``transl`` (AMASS)
pose_body                (t, 3 (j-1))     parent-relative axis-angle (SMPL/SMPL-X: joints 1-21, (t, 63))
pose_jaw, pose_eye,      ...              SMPL-X only: joints 22, 23-24, 25-54
pose_hand
root_orient_cam,         (t, 3), (t, 3)   the same in the camera frame
trans_cam
body_pose                (t, j-1, 3, 3)   parent-relative rotation matrices (moro convention)
root_rot_world, _cam     (t, 3, 3)        root orientation
root_trans_world, _cam   (t, 3)           root joint position
joints22_world, _cam     (t, 22, 3)       scoring joints of the fitted mesh
joints2d                 (t, 22, 2)       ``joints22_cam`` projected with K
bbox                     (t, 3)           person box (cx, cy, s), side 200 s px
bbox_detected            (t,)             bool: box from the detector / file (False: interpolated)
confidence               (t,)             mean token confidence of the frame, [0, 1]
joint_confidence         (t, 22)          per-joint confidence, [0, 1]
hidden_share             (t,)             predicted share of the 22 joints hidden (visibility head; NaN: none)
contact, contact_prob    (t, 4)           foot contact (bool, probability): L ankle, L foot, R ankle, R foot
fit_error                (t,)             mean network-mesh <-> fitted-mesh distance, metres
token_ids                (t, n)           int16 decoded token ids
traj_cam                 (t, 9)           refined camera trajectory ``[6D, t]`` of the network
vertices_cam, faces      (t, v, 3), (f, 3) fitted mesh per frame (only with ``--save-vertices``)
======================== ================ ==============================================================

Per-frame arrays are copied from the on-disk stores chunk by chunk into the zip members (no
compression), so writing never holds a whole sequence in memory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from moro.inference.errors import OutputDirError
from moro.paths import atomic_write

__all__ = ["MOTION_FORMAT", "SUMMARY_FILE", "OutputDir", "NpzStreamWriter", "write_summary", "read_summary"]

MOTION_FORMAT, MOTION_VERSION = "moro-motion", 1
SUMMARY_FILE = "summary.json"


class OutputDir:
    """The atomic output folder of the module docstring."""

    def __init__(self, out: str | os.PathLike) -> None:
        self.out = Path(out)
        if self.out.exists():
            if not self.out.is_dir():
                raise OutputDirError(f"--out {self.out} is a file; give a folder path")
            entries = list(self.out.iterdir())
            if entries and not (self.out / SUMMARY_FILE).is_file():
                raise OutputDirError(f"--out {self.out} exists and is not a moro output folder (no {SUMMARY_FILE}); "
                                     "choose a new or empty folder")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.tmp-", dir=self.out.parent))
        os.chmod(self.tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; outputs are ordinary user files

    def path(self, name: str) -> Path:
        return self.tmp / name

    def commit(self) -> Path:
        """Move the finished temporary folder to ``out`` (replacing an earlier moro output)."""
        if not (self.tmp / SUMMARY_FILE).is_file():
            raise RuntimeError("commit before summary.json was written")
        old = None
        if self.out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.old-", dir=self.out.parent))
            os.replace(self.out, old / "previous")
        os.replace(self.tmp, self.out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.out

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class NpzStreamWriter:
    """Write an ``.npz`` member by member; large members arrive in chunks (``np.load`` reads it)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._zip = zipfile.ZipFile(self.path, "w", zipfile.ZIP_STORED, allowZip64=True)
        self.names: list[str] = []

    def add(self, name: str, value) -> None:
        """An in-memory array (or scalar / string / list of strings)."""
        a = np.asarray(value)
        with self._zip.open(f"{name}.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array(f, a if a.flags.c_contiguous else a.copy(), allow_pickle=False)  # keeps 0-d
        self.names.append(name)

    def add_chunks(self, name: str, shape: tuple[int, ...], dtype, chunks: Iterable[np.ndarray]) -> None:
        """A (t, ...) array given as chunks along the first axis that add up to ``shape``."""
        dtype = np.dtype(dtype)
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
        rows = 0
        with self._zip.open(f"{name}.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_2_0(f, header)
            for c in chunks:
                c = np.ascontiguousarray(c, dtype=dtype)
                if c.shape[1:] != tuple(shape[1:]):
                    raise ValueError(f"{name}: chunk of shape {c.shape} does not fit {shape}")
                f.write(c.tobytes())
                rows += len(c)
        if rows != shape[0]:
            raise ValueError(f"{name}: {rows} rows written, {shape[0]} declared")
        self.names.append(name)

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> "NpzStreamWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def chunked(fn: Callable[[int, int], np.ndarray], count: int, size: int = 512) -> Iterable[np.ndarray]:
    """``fn(a, b)`` over consecutive frame ranges of at most ``size`` frames."""
    for a in range(0, count, size):
        yield fn(a, min(count, a + size))


def write_summary(path: str | os.PathLike, summary: dict) -> None:
    """``summary.json`` with ``"complete": true`` as its last key, written atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps({**summary, "complete": True}, indent=1, default=_json_default) + "\n")
    os.chmod(path, 0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_summary(out: str | os.PathLike) -> dict | None:
    """The summary of a finished output folder, or None if there is none (or it is incomplete)."""
    p = Path(out) / SUMMARY_FILE
    try:
        s = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return s if s.get("complete") is True else None


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
