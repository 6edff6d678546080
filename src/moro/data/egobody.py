"""EgoBody, third-person Kinect views -> :class:`~moro.data.schema.Clip` (and the shared file parsing
used by the EgoBody-Occ protocol, :mod:`moro.metrics.protocols.egobody_occ`).

Files under the EgoBody root (``shared/data-formats.md``; ``rec`` = recording, ``view`` = master |
sub_1..sub_4):

- ``data_info_release.csv``: recording_name, body_idx_0, body_idx_1, body_idx_fpv (each
  ``"<idx> <gender>"``), start_frame, end_frame, scene_name (:func:`read_data_info`).
- ``data_splits.csv``: columns train, val, test listing recording names (:func:`read_splits`).
- ``kinect_color/<rec>/<view>/frame_%05d.jpg`` (1920 x 1080, 30 fps, distorted).
- ``kinect_cam_params/kinect_<view>/Color.json``: ``camera_mtx`` (or ``f``, ``c``) and ``k``
  (OpenCV distortion); images are undistorted on reading so the pinhole labels fit them
  (:func:`read_color_params`, :func:`moro.data.prepared.read_image`).
- ``calibrations/<rec>/cal_trans/kinect12_to_world/<scene>.json`` (master -> world) and
  ``kinect_<11|13|14|15>to12_color.json`` (view -> master), 4x4 under ``trans``;
  ``cam2world = master2world @ view2master`` (:func:`view_to_world`). The scene world is Y up.
- Fits in the master camera frame, one pickle per frame (:func:`read_fits`):
  ``smplx_interactee/<rec>/body_idx_<k>/results/frame_%05d/000.pkl`` (``smplx_camera_wearer``
  for the camera wearer; a ``_<split>`` suffix on the folder is accepted): (1, D) arrays betas,
  global_orient, transl, body_pose (1, 63), left/right_hand_pose (1, 12 PCA), jaw/leye/reye_pose.
  Frames without a fit are dropped; clips never span a gap.
- EgoBody-Occ: ``egobody_occ_info.csv`` (:func:`read_occ_info`), ``mask_joint/<rec>/<view>/mask_joint.npy``
  (:func:`read_mask`), cleaned OpenPose keypoints ``keypoints_cleaned/<rec>/<view>/frame_%05d_keypoints.json``
  -> boxes (:func:`openpose_boxes`).

A sequence is one body seen from one view: ``<rec>/<view>/body_<idx>``.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from moro.body.params import HandPCA, smpl_params_to_pose

from .formats import BodyModelSource, DatasetFormatError, MaskLengthError, pose_frames, rigid_inverse
from .schema import Clip

__all__ = [
    "KINECT_IDS", "IMAGE_SIZE", "FPS", "INFO_COLUMNS", "EgoBodyOccEntry", "EgoBodyRecording", "read_occ_info",
    "read_data_info", "read_splits", "openpose_boxes", "read_json_matrix", "read_color_params", "view_to_master",
    "view_to_world", "fits_dir", "read_fits", "read_mask", "egobody_clip", "consecutive_runs",
]

KINECT_IDS = {"master": 12, "sub_1": 11, "sub_2": 13, "sub_3": 14, "sub_4": 15}
IMAGE_SIZE = (1920, 1080)
FPS = 30.0
INFO_COLUMNS = (
    "recording_name", "view", "target_idx", "target_gender", "body_idx_fpv", "scene_name", "target_start_frame",
    "target_end_frame",
)
DATA_INFO_COLUMNS = ("recording_name", "body_idx_0", "body_idx_1", "body_idx_fpv", "start_frame", "end_frame", "scene_name")
FIT_KEYS = ("global_orient", "transl", "body_pose", "betas")
OPTIONAL_FIT_KEYS = ("jaw_pose", "leye_pose", "reye_pose", "left_hand_pose", "right_hand_pose")


def _read_csv(path: Path, columns: tuple[str, ...], what: str) -> list[dict]:
    if not path.is_file():
        raise DatasetFormatError(f"{path} not found ({what}); pass the EgoBody root as --root / --gt")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    missing = [c for c in columns if rows and c not in rows[0]]
    if not rows or missing:
        raise DatasetFormatError(f"{path}: empty or missing column(s) {missing}; expected {list(columns)}")
    return rows


def _idx_gender(value: str, path: Path, line: int, col: str) -> tuple[int, str]:
    parts = str(value).split()
    try:
        idx, gender = int(parts[0]), (parts[1].lower() if len(parts) > 1 else "neutral")
    except (ValueError, IndexError):
        raise DatasetFormatError(f"{path} line {line}: column {col!r} = {value!r} is not '<idx> <gender>'") from None
    if gender not in ("male", "female", "neutral"):
        raise DatasetFormatError(f"{path} line {line}: column {col!r} gender {gender!r} must be male or female")
    return idx, gender


@dataclass(frozen=True)
class EgoBodyOccEntry:
    """One row of ``egobody_occ_info.csv``."""

    recording: str
    view: str
    target_idx: int
    target_gender: str
    fpv_idx: int
    scene: str
    start: int  # first scored frame (inclusive)
    end: int  # last scored frame (inclusive)

    @property
    def name(self) -> str:
        return f"{self.recording}/{self.view}"


def read_occ_info(root: str | os.PathLike) -> list[EgoBodyOccEntry]:
    """Parse ``<root>/egobody_occ_info.csv`` (every column checked)."""
    path = Path(root) / "egobody_occ_info.csv"
    rows = _read_csv(path, INFO_COLUMNS, "EgoBody-Occ sequence list")
    out = []
    for i, r in enumerate(rows, start=2):
        try:
            e = EgoBodyOccEntry(
                recording=r["recording_name"].strip(), view=r["view"].strip(), target_idx=int(r["target_idx"]),
                target_gender=r["target_gender"].strip().lower(), fpv_idx=int(str(r["body_idx_fpv"]).split()[0]),
                scene=r["scene_name"].strip(), start=int(r["target_start_frame"]), end=int(r["target_end_frame"]),
            )
        except (ValueError, IndexError) as err:
            raise DatasetFormatError(f"{path} line {i}: cannot parse {dict(r)} ({err})") from None
        if e.view not in KINECT_IDS:
            raise DatasetFormatError(f"{path} line {i}: view {e.view!r} is not one of {list(KINECT_IDS)}")
        if e.end < e.start:
            raise DatasetFormatError(f"{path} line {i}: target_end_frame {e.end} < target_start_frame {e.start}")
        if e.target_gender not in ("male", "female", "neutral"):
            raise DatasetFormatError(f"{path} line {i}: target_gender {e.target_gender!r} must be male or female")
        out.append(e)
    return out


@dataclass(frozen=True)
class EgoBodyRecording:
    """One row of ``data_info_release.csv``."""

    recording: str
    bodies: dict  # {body idx: gender} of body_idx_0 and body_idx_1
    fpv_idx: int  # the camera wearer
    start: int
    end: int
    scene: str


def read_data_info(root: str | os.PathLike) -> list[EgoBodyRecording]:
    """Parse ``<root>/data_info_release.csv``."""
    path = Path(root) / "data_info_release.csv"
    out = []
    for i, r in enumerate(_read_csv(path, DATA_INFO_COLUMNS, "EgoBody recording list"), start=2):
        bodies = dict(_idx_gender(r[c], path, i, c) for c in ("body_idx_0", "body_idx_1"))
        fpv, _ = _idx_gender(r["body_idx_fpv"], path, i, "body_idx_fpv")
        try:
            start, end = int(r["start_frame"]), int(r["end_frame"])
        except ValueError:
            raise DatasetFormatError(f"{path} line {i}: start_frame / end_frame must be integers, got {dict(r)}") from None
        out.append(EgoBodyRecording(r["recording_name"].strip(), bodies, fpv, start, end, r["scene_name"].strip()))
    return out


def read_splits(root: str | os.PathLike) -> dict[str, str]:
    """``<root>/data_splits.csv`` (columns train, val, test) -> {recording: split}."""
    path = Path(root) / "data_splits.csv"
    out = {}
    for r in _read_csv(path, ("train", "val", "test"), "EgoBody splits"):
        for split in ("train", "val", "test"):
            if r.get(split):
                out[r[split].strip()] = split
    return out


def openpose_boxes(folder: str | os.PathLike, frames: range, min_conf: float = 0.2, scale: float = 1.2) -> np.ndarray:
    """EgoBody-Occ input boxes from cleaned OpenPose keypoints (data-formats.md).

    For each frame, ``folder/frame_%05d_keypoints.json``: the first person's ``pose_keypoints_2d``
    (BODY_25, 75 floats ``x, y, conf``); keypoints with ``conf <= min_conf`` are ignored; box =
    square around the valid ones, enlarged by ``scale``. A frame with fewer than 2 valid keypoints
    (or no file / no person) reuses the previous frame's box; leading such frames take the first
    valid box.

    Returns:
        (F, 3) boxes ``(cx, cy, s)``, pixels, side ``200 s``.
    """
    from moro.geometry.camera import bbox_from_points

    folder = Path(folder)
    boxes: list[np.ndarray | None] = []
    for frame in frames:
        path = folder / f"frame_{frame:05d}_keypoints.json"
        kp = None
        if path.is_file():
            people = json.loads(path.read_text()).get("people") or []
            if people:
                kp = np.asarray(people[0].get("pose_keypoints_2d", []), dtype=np.float64).reshape(-1, 3)
        valid = kp[:, 2] > min_conf if kp is not None else None
        if valid is None or valid.sum() < 2:
            boxes.append(boxes[-1] if boxes else None)
            continue
        uv = torch.from_numpy(kp[:, :2])
        boxes.append(bbox_from_points(uv, scale=scale, valid=torch.from_numpy(valid)).numpy())
    first = next((b for b in boxes if b is not None), None)
    if first is None:
        raise DatasetFormatError(f"{folder}: no frame of {frames.start}..{frames.stop - 1} has 2 valid OpenPose keypoints")
    return np.stack([first if b is None else b for b in boxes])


def read_json_matrix(path: Path, key: str, shape: tuple[int, int], what: str) -> np.ndarray:
    """A finite matrix of ``shape`` under ``key`` of a JSON file (EgoBody calibrations)."""
    if not path.is_file():
        raise DatasetFormatError(f"{path} not found ({what}); expected the EgoBody calibration layout of data-formats.md")
    with open(path) as fh:
        data = json.load(fh)
    m = np.asarray(data.get(key) if isinstance(data, dict) else None, dtype=np.float64)
    if m.shape != shape or not np.isfinite(m).all():
        raise DatasetFormatError(f"{path}: key {key!r} must be a finite {shape} matrix ({what}), got shape {m.shape}")
    return m


def read_color_params(root: str | os.PathLike, view: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``kinect_cam_params/kinect_<view>/Color.json`` -> (K (3, 3), distortion (n,)), or None when absent."""
    path = Path(root) / "kinect_cam_params" / f"kinect_{view}" / "Color.json"
    if not path.is_file():
        return None
    d = json.loads(path.read_text())
    if "camera_mtx" in d:
        K = np.asarray(d["camera_mtx"], dtype=np.float64).reshape(3, 3)
    elif "f" in d and "c" in d:
        (fx, fy), (cx, cy) = d["f"], d["c"]
        K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
    else:
        raise DatasetFormatError(f"{path}: needs 'camera_mtx' or 'f' and 'c' (Kinect colour intrinsics)")
    return K, np.asarray(d.get("k", np.zeros(5)), dtype=np.float64).reshape(-1)


def view_to_master(root: str | os.PathLike, recording: str, view: str) -> np.ndarray:
    """(4, 4) view camera -> master camera (identity for the master)."""
    if view == "master":
        return np.eye(4)
    cal = Path(root) / "calibrations" / recording / "cal_trans" / f"kinect_{KINECT_IDS[view]}to12_color.json"
    return read_json_matrix(cal, "trans", (4, 4), f"{view} -> master extrinsics")


def view_to_world(root: str | os.PathLike, recording: str, view: str, scene: str) -> np.ndarray:
    """(4, 4) ``cam2world = master2world @ view2master`` (world: Y up)."""
    m2w = read_json_matrix(Path(root) / "calibrations" / recording / "cal_trans" / "kinect12_to_world" / f"{scene}.json",
                           "trans", (4, 4), "master -> world")
    return m2w @ view_to_master(root, recording, view)


def fits_dir(root: str | os.PathLike, recording: str, body_idx: int, wearer: bool, kind: str = "smplx") -> Path:
    """``<kind>_{interactee|camera_wearer}[_<split>]/<rec>/body_idx_<k>/results``."""
    root = Path(root)
    base = f"{kind}_camera_wearer" if wearer else f"{kind}_interactee"
    tail = Path(recording, f"body_idx_{body_idx}", "results")
    candidates = [root / base] + sorted(p for p in root.glob(f"{base}_*") if p.is_dir())
    for c in candidates:
        if (c / tail).is_dir():
            return c / tail
    raise DatasetFormatError(f"{recording}: fits of body {body_idx} not found; looked for {[str(c / tail) for c in candidates]}")


def read_fits(folder: Path, frames, name: str, missing: str = "raise") -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-frame fit pickles ``folder/frame_%05d/000.pkl`` of ``frames`` stacked to (F, D) float64.

    ``missing="raise"`` makes an absent frame an error; ``"skip"`` drops it. Returns the frame ids
    read (F,) and ``{key: (F, D)}`` of :data:`FIT_KEYS` and the optional keys present in all of them.
    """
    from .joblib_pickle import load_joblib_pickle  # a data-only unpickler, no code runs

    per_key: dict[str, list[np.ndarray]] = {}
    read = []
    for frame in frames:
        path = folder / f"frame_{frame:05d}" / "000.pkl"
        if not path.is_file():
            if missing == "raise":
                raise DatasetFormatError(f"{name}: fit of scored frame {frame} missing: {path}")
            continue
        try:
            fit = load_joblib_pickle(path)
        except Exception as err:  # pickle raises many types
            raise DatasetFormatError(f"{path}: unreadable fit ({type(err).__name__}: {err})") from err
        absent = [k for k in FIT_KEYS if k not in fit]
        if absent:
            raise DatasetFormatError(f"{path}: missing key(s) {absent}; EgoBody fits hold {list(FIT_KEYS + OPTIONAL_FIT_KEYS)}")
        read.append(frame)
        for k in FIT_KEYS + OPTIONAL_FIT_KEYS:
            if k in fit:
                per_key.setdefault(k, []).append(np.asarray(fit[k], dtype=np.float64).reshape(-1))
    if not read:
        raise DatasetFormatError(f"{name}: no fit pickles under {folder} for frames {frames}")
    return np.asarray(read, np.int64), {k: np.stack(v) for k, v in per_key.items() if len(v) == len(read)}


def read_mask(root: str | os.PathLike, e: EgoBodyOccEntry) -> np.ndarray:
    """``mask_joint/<rec>/<view>/mask_joint.npy`` -> (F, 22) bool visible, F = the scored interval."""
    path = Path(root) / "mask_joint" / e.recording / e.view / "mask_joint.npy"
    if not path.is_file():
        raise DatasetFormatError(f"{e.name}: visibility mask {path} not found")
    m = np.load(path, allow_pickle=True)
    f = e.end - e.start + 1
    if m.ndim != 2 or m.shape[1] < 22:
        raise MaskLengthError(f"{path}: mask must be (F, >=22) with 1 = visible, got {m.shape}")
    if m.shape[0] != f:
        raise MaskLengthError(
            f"{path}: mask has {m.shape[0]} frames but the scored interval [{e.start}, {e.end}] of {e.name} has {f}; "
            f"the mask must cover exactly target_start_frame..target_end_frame (check egobody_occ_info.csv)"
        )
    if not np.isin(m[:, :22], (0, 1)).all():
        raise DatasetFormatError(f"{path}: mask values must be 0 or 1")
    return m[:, :22].astype(bool)


def consecutive_runs(frame_ids: np.ndarray) -> list[tuple[int, int]]:
    """``(start index, length)`` of the runs of consecutive frame ids in (t,) ``frame_ids``."""
    if len(frame_ids) == 0:
        return []
    cuts = np.nonzero(np.diff(frame_ids) != 1)[0] + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(frame_ids)]])
    return [(int(s), int(e - s)) for s, e in zip(starts, ends)]


def egobody_clip(root: str | os.PathLike, rec: EgoBodyRecording, view: str, body_idx: int, models: BodyModelSource,
                 hand_pca: HandPCA | None = None, frames: range | None = None) -> Clip:
    """One body of a recording seen from one Kinect view, frames ``frames`` (default the
    recording's start..end; frames without a fit are dropped, see :func:`consecutive_runs`).

    Fields: the schema's labels from the gendered SMPL-X fit, ``box_det`` from cleaned OpenPose
    keypoints when present, ``image_files`` ``kinect_color/<rec>/<view>/frame_%05d.jpg``.
    PCA hand poses are expanded with ``hand_pca``; without it the hands are flat.
    """
    root = Path(root)
    name = f"{rec.recording}/{view}/body_{body_idx}"
    frames = frames if frames is not None else range(rec.start, rec.end + 1)
    ids, fits = read_fits(fits_dir(root, rec.recording, body_idx, body_idx == rec.fpv_idx), frames, name, missing="skip")
    gender = rec.bodies.get(body_idx, "neutral")
    body = models("smplx", gender)
    extras = {k: fits[k] for k in OPTIONAL_FIT_KEYS if k in fits and ("hand" not in k or hand_pca is not None or fits[k].shape[1] == 45)}
    pose = smpl_params_to_pose(body, global_orient=fits["global_orient"], body_pose=fits["body_pose"], betas=fits["betas"],
                               transl=fits["transl"], hand_pca=hand_pca, sequence=name, **extras)
    cam2world = view_to_world(root, rec.recording, view, rec.scene)
    T_w2c = rigid_inverse(cam2world)
    T_m2w = cam2world @ rigid_inverse(view_to_master(root, rec.recording, view))
    params = read_color_params(root, view)
    if params is None:
        raise DatasetFormatError(f"{root / 'kinect_cam_params' / f'kinect_{view}' / 'Color.json'} not found (view intrinsics)")
    K = params[0]
    fields = pose_frames(body, pose, T_p2w=T_m2w, T_w2c=T_w2c, K=K, image_size=IMAGE_SIZE, fps=FPS)
    kp = root / "keypoints_cleaned" / rec.recording / view
    if kp.is_dir():
        full = openpose_boxes(kp, range(int(ids[0]), int(ids[-1]) + 1))
        fields["box_det"] = full[ids - ids[0]].astype(np.float32)
    files = np.array([f"kinect_color/{rec.recording}/{view}/frame_{i:05d}.jpg" for i in ids])
    return Clip(dataset="egobody", sequence=name, fps=FPS, image_size=IMAGE_SIZE, K=K, T_w2c=T_w2c, frame_ids=ids,
                image_files=files, **fields).validate()
