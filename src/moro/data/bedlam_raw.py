"""BEDLAM raw (Unreal Engine render) layout -> the processed-label quantities -> :class:`~moro.data.schema.Clip`.

Layout (``shared/data-formats.md``), per render folder ``<root>/<folder>/``:

- ``png/seq_XXXXXX/seq_XXXXXX_XXXX.png``: 30 fps frames, 1280 x 720; folders whose name contains
  ``closeup`` are stored rotated and are turned 90 degrees clockwise on reading (``image_rot90 = 1``).
- ``be_seq.csv`` (columns ``Index, Type, Body, X, Y, Z, Yaw, Pitch, Roll, Comment``): a ``Group`` row
  opens a sequence, its ``Comment`` is ``sequence_name=seq_XXXXXX;frames=N;...``; each following
  ``Body`` row is one person: ``Body`` = ``<subject>_<motion id>`` (split at the last ``_``),
  ``X, Y, Z`` its placement in centimetres, ``Yaw`` in degrees, ``Comment`` holds ``start_frame=K``.
- ``ground_truth/camera/seq_XXXXXX_camera.csv``: one row per frame with ``x, y, z`` (cm), ``yaw,
  pitch, roll`` (degrees) and ``focal_length`` (mm); other columns are ignored.
- ``<motions>/<subject>/<motion id>/motion_seq.npz`` (``<motions>`` defaults to
  ``<root>/neutral_ground_truth_motioninfo``): ``poses`` (T, 165) SMPL-X axis-angle (global
  orientation 0:3, body 3:66, jaw, eyes, hands), ``trans`` (T, 3) metres, ``betas`` (11,),
  ``gender`` (the model the parameters belong to; "neutral"), optional ``gender_sub`` (the
  subject's gender, kept for reference only), ``motion_info``.

Conventions: each is what the BEDLAM authors' label script does (``data_processing/df_full_body.py`` of
github.com/pixelite1201/BEDLAM, which turns this layout into the processed labels), re-derived here:

1. Unreal Engine is left-handed, Z up, centimetres, x forward. A point ``(x, y, z)`` becomes
   OpenCV-style axes in metres by ``(y, -z, x) / 100`` (x right, y down, z forward; the script's
   ``unreal2cv2``: roll the axes by two and negate the new y). Call this the *cv world*.
2. Camera rotation of frame i (``get_cam_rotmat``): the csv angles are negated,
   ``yaw' = -yaw, pitch' = -pitch, roll' = -roll`` (``roll' = -roll + 90`` degrees in closeup folders,
   so that the labels describe the upright, rotated image); ``C = R_z(roll') R_x(pitch') R_y(yaw')``
   with ``R_a(t)`` the right-handed rotation by ``t`` about axis ``a`` (``cv2.Rodrigues``).
   A cv-world point maps to the camera as ``x_cam = C (x - c)``, ``c`` the camera position (1.).
3. Body placement (``get_global_orient``): the motion file's SMPL-X body (Y up) is turned into the
   cv world by ``B = R_y(Yaw - 90 deg) D``, ``D = diag(1, -1, -1)`` (Y up -> y down), and moved to
   the placement ``p`` = (X, Y, Z) converted as in 1. The body rows' Pitch / Roll are not used.
   Frame i of the png sequence shows motion frame ``start_frame + i`` (frames past the motion's end
   are dropped; the frame number is taken from the file name, so a missing png drops its frame only).
4. Processed-label quantities per frame (what :mod:`.bedlam` reads): ``cam_ext`` = world ->
   camera with rotation ``R_z(roll') R_x(pitch')`` (the yaw is folded into the body's world
   orientation) and translation ``C (p - c)``; ``pose_cam`` = the motion pose with global
   orientation ``C B R_go``; ``trans_cam = C B (transl + j0) - j0`` with ``j0`` the rest pelvis of the
   body's shape (SMPL-X rotates about the pelvis, so this is the exact rigid motion of the body).
   Hence body in camera = SMPL-X(pose_cam, shape, trans_cam) + ``cam_ext[:3, 3]`` = ``C (B x + p - c)``.
5. Intrinsics (``get_cam_int`` / ``focalLength_mm2px``): ``f_px = focal_mm / sensor_mm * image_px``
   per axis with the sensor 36 x 20.25 mm, principal point at the image centre ``(W/2, H/2)``;
   closeup folders use the upright image (720 x 1280) and the swapped sensor (20.25 x 36 mm).
6. Body model: the motion file's ``gender`` (BEDLAM renders the neutral SMPL-X, flat hand mean, 11
   betas, see :mod:`.bedlam` for the eleventh).

The sequences are :class:`~moro.data.bedlam.BedlamSequence` objects, so :func:`moro.data.bedlam.bedlam_clip`,
the visibility filters and ``moro prepare bedlam`` treat both layouts alike.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from moro.geometry.rotations import rotmat_to_rotvec, rotvec_to_rotmat

from .bedlam import BedlamSequence, is_closeup
from .formats import BodyModelSource, DatasetFormatError, as_str, load_npz

__all__ = ["SENSOR_MM", "RAW_IMAGE_SIZE", "MOTION_DIR", "BedlamBody", "is_raw_root", "read_be_seq", "read_camera_csv",
           "ue_to_cv", "camera_rotation", "intrinsics", "read_bedlam_raw"]

SENSOR_MM = (36.0, 20.25)  # (width, height) of the Unreal cine camera's sensor
RAW_IMAGE_SIZE = (1280, 720)  # as stored (closeups: stored rotated, upright 720 x 1280)
MOTION_DIR = "neutral_ground_truth_motioninfo"
CAMERA_COLUMNS = ("x", "y", "z", "yaw", "pitch", "roll", "focal_length")
_D = np.diag([1.0, -1.0, -1.0])
_PNG_RE = re.compile(r"^(seq_\d+)_(\d+)\.png$")


@dataclass
class BedlamBody:
    """One ``Body`` row of ``be_seq.csv``."""

    sequence: str  # seq_XXXXXX
    index: int  # order of the body within its sequence
    body: str  # "<subject>_<motion id>"
    subject: str
    motion_id: str
    placement_cm: np.ndarray  # (3,) X, Y, Z Unreal
    yaw_deg: float
    start_frame: int


def is_raw_root(root: str | os.PathLike) -> bool:
    """True when ``root`` holds render folders with a ``be_seq.csv`` (the raw layout)."""
    return any(Path(root).glob("*/be_seq.csv"))


def _comment_fields(comment: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in comment.split(";") if "=" in kv)


def read_be_seq(path: str | os.PathLike) -> dict[str, list[BedlamBody]]:
    """``be_seq.csv`` -> {sequence name: its bodies in file order}.

    Rows are told apart by ``Type`` (``Group`` / ``Body``; ``Comment`` rows are skipped) or, when
    that column is absent, by the ``sequence_name=`` / ``start_frame=`` keys of ``Comment`` (the
    authors' script looks only at ``Comment``).

    Raises:
        DatasetFormatError: missing file or column, a body before any sequence, a bad number.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(f"{path} not found (BEDLAM be_seq.csv); each render folder of the raw layout needs one")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    need = ("Body", "X", "Y", "Z", "Yaw", "Comment")
    if rows and (missing := [c for c in need if c not in rows[0]]):
        raise DatasetFormatError(f"{path}: missing column(s) {missing}; found {sorted(rows[0])}")
    out: dict[str, list[BedlamBody]] = {}
    seq = None
    for n, row in enumerate(rows, start=2):
        kind = (row.get("Type") or "").strip()
        fields = _comment_fields(row.get("Comment") or "")
        if kind == "Group" or (not kind and "sequence_name" in fields):
            if "sequence_name" not in fields:
                raise DatasetFormatError(f"{path} line {n}: Group row without 'sequence_name=' in its Comment")
            seq = fields["sequence_name"].strip()
            out.setdefault(seq, [])
        elif kind == "Body" or (not kind and "start_frame" in fields):
            if seq is None:
                raise DatasetFormatError(f"{path} line {n}: Body row before any Group (sequence_name=) row")
            body = (row["Body"] or "").strip()
            subject, sep, motion = body.rpartition("_")
            if not sep or not subject:
                raise DatasetFormatError(f"{path} line {n}: Body {body!r} is not '<subject>_<motion id>'")
            try:
                out[seq].append(BedlamBody(
                    sequence=seq, index=len(out[seq]), body=body, subject=subject, motion_id=motion,
                    placement_cm=np.array([float(row["X"]), float(row["Y"]), float(row["Z"])]), yaw_deg=float(row["Yaw"]),
                    start_frame=int(fields.get("start_frame", 0))))
            except ValueError as e:
                raise DatasetFormatError(f"{path} line {n}: {e}") from e
    return out


def read_camera_csv(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """``<seq>_camera.csv`` -> {column: (F,) float64} for :data:`CAMERA_COLUMNS` (one row per frame)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(f"{path} not found (BEDLAM camera csv, ground_truth/camera/<seq>_camera.csv); "
                                 f"download the folder's -gt archive")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise DatasetFormatError(f"{path}: no frames")
    missing = [c for c in CAMERA_COLUMNS if c not in rows[0]]
    if missing:
        raise DatasetFormatError(f"{path}: missing column(s) {missing}; found {sorted(rows[0])}")
    try:
        return {c: np.array([float(r[c]) for r in rows]) for c in CAMERA_COLUMNS}
    except (TypeError, ValueError) as e:
        raise DatasetFormatError(f"{path}: a camera value is not a number ({e})") from e


def ue_to_cv(p_cm: np.ndarray) -> np.ndarray:
    """Unreal points (..., 3) in cm (left-handed, Z up, x forward) -> cv world (..., 3) in metres: ``(y, -z, x) / 100``."""
    p = np.asarray(p_cm, dtype=np.float64) / 100.0
    return np.stack([p[..., 1], -p[..., 2], p[..., 0]], axis=-1)


def _axis_rot(axis: int, deg: np.ndarray) -> np.ndarray:
    """(n, 3, 3) right-handed rotations by ``deg`` degrees about x (0), y (1) or z (2)."""
    v = np.zeros(np.shape(deg) + (3,))
    v[..., axis] = np.radians(deg)
    return rotvec_to_rotmat(torch.from_numpy(v)).numpy()


def camera_rotation(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray, closeup: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame rotations from the csv angles (degrees): ``(C, R_ext)`` (n, 3, 3).

    ``C = R_z(roll') R_x(pitch') R_y(yaw')`` maps the cv world to the camera; ``R_ext = R_z(roll') R_x(pitch')``
    is the rotation of the labels' ``cam_ext`` (module docstring, 2. and 4.).
    """
    r = -np.asarray(roll, np.float64) + (90.0 if closeup else 0.0)
    R_ext = _axis_rot(2, r) @ _axis_rot(0, -np.asarray(pitch, np.float64))
    return R_ext @ _axis_rot(1, -np.asarray(yaw, np.float64)), R_ext


def intrinsics(focal_mm: float, closeup: bool = False) -> np.ndarray:
    """(3, 3) pixels from the focal length in mm (module docstring, 5.)."""
    w, h = RAW_IMAGE_SIZE[::-1] if closeup else RAW_IMAGE_SIZE
    sw, sh = SENSOR_MM[::-1] if closeup else SENSOR_MM
    return np.array([[focal_mm / sw * w, 0.0, w / 2.0], [0.0, focal_mm / sh * h, h / 2.0], [0.0, 0.0, 1.0]])


def _motion(path: Path) -> dict:
    d = load_npz(path, ("poses", "trans", "betas"), "BEDLAM motion file (motion_seq.npz)")
    poses = np.asarray(d["poses"], np.float64)
    if poses.ndim != 2 or poses.shape[1] != 165:
        raise DatasetFormatError(f"{path}: key 'poses' must be (T, 165) SMPL-X axis-angle, got {poses.shape}")
    trans = np.asarray(d["trans"], np.float64).reshape(-1, 3)
    if len(trans) != len(poses):
        raise DatasetFormatError(f"{path}: key 'trans' has {len(trans)} frames but 'poses' has {len(poses)}")
    return {"poses": poses, "trans": trans, "betas": np.asarray(d["betas"], np.float64).reshape(-1),
            "gender": as_str(d["gender"]).lower() if "gender" in d else "neutral",
            "gender_sub": as_str(d["gender_sub"]).lower() if "gender_sub" in d else ""}


def read_bedlam_raw(root: str | os.PathLike, folder: str, models: BodyModelSource, sequences: list[str] | None = None,
                    motion_root: str | os.PathLike | None = None) -> list[BedlamSequence]:
    """One render folder ``<root>/<folder>`` (or only its ``sequences``) -> one sequence per body.

    Names are ``<folder>/<seq>/p<k>`` with k the body's order in ``be_seq.csv``; ``image_files`` are
    relative to ``root``. ``models`` gives the body model (its rest pelvis for ``trans_cam``).

    Raises:
        DatasetFormatError: a missing csv / motion file / png folder, or a bad column or key (naming it).
    """
    root = Path(root)
    base = root / folder
    motions = Path(motion_root) if motion_root is not None else root / MOTION_DIR
    closeup = is_closeup(folder)
    bodies = read_be_seq(base / "be_seq.csv")
    out = []
    for seq in sequences if sequences is not None else sorted(bodies):
        if seq not in bodies:
            raise DatasetFormatError(f"{base / 'be_seq.csv'}: no sequence {seq!r}")
        png = base / "png" / seq
        if not png.is_dir():
            raise DatasetFormatError(f"{png} not found (the frames of {seq}); download and untar the folder's -png archive")
        frames = sorted(int(m.group(2)) for p in png.iterdir() if (m := _PNG_RE.match(p.name)) and m.group(1) == seq)
        cam = read_camera_csv(base / "ground_truth" / "camera" / f"{seq}_camera.csv")
        frames = np.array([f for f in frames if f < len(cam["x"])], dtype=np.int64)
        for b in bodies[seq]:
            mpath = motions / b.subject / b.motion_id / "motion_seq.npz"
            if not mpath.is_file():
                raise DatasetFormatError(f"{mpath} not found (motion of body {b.body} in {folder}/{seq}); download "
                                         f"{MOTION_DIR} and put it in --root, or pass its folder")
            m = _motion(mpath)
            f = frames[b.start_frame + frames < len(m["poses"])]
            out.append(_sequence(folder, seq, b, m, f, cam, closeup, models))
    return out


def _sequence(folder: str, seq: str, b: BedlamBody, m: dict, frames: np.ndarray, cam: dict, closeup: bool,
              models: BodyModelSource) -> BedlamSequence:
    body = models("smplx", m["gender"])
    nb = body.num_betas
    betas = np.zeros(nb)
    k = min(nb, len(m["betas"]))
    betas[:k] = m["betas"][:k]
    j0 = body.root_joint_rest(torch.from_numpy(betas).to(body.v_template.dtype)).double().numpy()  # rest pelvis
    C, R_ext = camera_rotation(cam["yaw"][frames], cam["pitch"][frames], cam["roll"][frames], closeup)
    c = ue_to_cv(np.stack([cam["x"][frames], cam["y"][frames], cam["z"][frames]], axis=1))  # (t, 3) camera centres
    B = _axis_rot(1, np.array(b.yaw_deg - 90.0)) @ _D
    p = ue_to_cv(b.placement_cm)
    CB = C @ B  # (t, 3, 3) motion frame -> camera
    idx = b.start_frame + frames
    poses = m["poses"][idx].copy()
    R_go = rotvec_to_rotmat(torch.from_numpy(poses[:, :3])).numpy()
    poses[:, :3] = rotmat_to_rotvec(torch.from_numpy(CB @ R_go)).numpy()
    trans_cam = np.einsum("tij,tj->ti", CB, m["trans"][idx] + j0) - j0
    cam_ext = np.tile(np.eye(4), (len(frames), 1, 1))
    cam_ext[:, :3, :3] = R_ext
    cam_ext[:, :3, 3] = np.einsum("tij,tj->ti", C, p - c)
    K = np.stack([intrinsics(fm, closeup) for fm in cam["focal_length"][frames]]) if len(frames) else np.zeros((0, 3, 3))
    return BedlamSequence(
        name=f"{folder}/{seq}/p{b.index}", scene=folder, frame_ids=frames,
        image_files=np.array([f"{folder}/png/{seq}/{seq}_{f:04d}.png" for f in frames]), gender=m["gender"],
        pose_cam=poses, shape=m["betas"], trans_cam=trans_cam, cam_int=K, cam_ext=cam_ext,
        subject_gender=m["gender_sub"], person=b.body)
