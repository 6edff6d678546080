"""RICH test set (GVHMR's preprocessed labels) -> :class:`~moro.data.schema.Clip`, and the file
parsing shared with the RICH protocol (:mod:`moro.metrics.protocols.rich`).

Files under the RICH root (``shared/data-formats.md``):

- ``rich_test_labels.pt``: ``{vid: {"frame_id": (F,), "gt_smplx_params": {global_orient (F, 3),
  body_pose (F, 63), betas (F, 10), transl (F, 3), optional jaw/eye/hand poses}, "gender": str}}``,
  ``vid = "test/<seq>/cam_XX"``, parameters in RICH's scan (world) frame.
- ``rich_test_preproc.pt``: ``{vid: {"bbx_xys": (F, 3) cx, cy, size px, "img_wh": (2,), "kp2d": (F, 17, 3)}}``.
- ``scan_calibration/<Scene>/calibration/NNN.xml`` (OpenCV XML: ``CameraMatrix`` 3x4 scan ->
  camera, ``Intrinsics``, ``Distortion``), ``<Scene> = seq.split("_")[0]``, NNN the camera id.
- ``w2az_sahmr.json`` (``{scan name: 4x4 scan -> Z-up}``) with RICH's ``test.txt`` (sequence ->
  capture and scan name): the world is then gravity-aligned, Y up (``R_x(-pi/2) @ T_w2az``, as
  GVHMR); without them the scan frame is the world.
- Images ``images/test/<seq>/cam_XX/<frame:05d>_<cam:02d>.jpeg`` (``image_files``).

Multi-person sequences (``<scene>_<id>_<id>_<action>``) are skipped. RICH has no per-joint
visibility mask. ``.pt`` files are read with ``torch.load(weights_only=True)`` unless ``trusted``.
"""

from __future__ import annotations

import json
import os
import pickle
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import torch

from moro.body.params import smpl_params_to_pose

from .formats import Z_UP_TO_Y_UP, BodyModelSource, DatasetFormatError, as_str, pose_frames, rigid_inverse
from .schema import Clip

__all__ = ["PARAM_KEYS", "is_multi_person", "load_pt", "read_rich_calibration", "read_scan_names", "RichRoot", "rich_clip"]

PARAM_KEYS = ("global_orient", "body_pose", "betas", "transl", "jaw_pose", "leye_pose", "reye_pose", "left_hand_pose",
              "right_hand_pose")
FPS = 30.0


def is_multi_person(seq: str) -> bool:
    """RICH multi-person sequence names have more than three ``_``-separated parts."""
    return len(seq.split("_")) != 3


def to_numpy(x: object) -> np.ndarray:
    """A tensor or array-like as a float64 array."""
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


def load_pt(path: Path, trusted: bool = False) -> dict:
    """A GVHMR ``.pt`` dict keyed by ``test/<seq>/cam_XX`` (``weights_only`` unless ``trusted``)."""
    if not path.is_file():
        raise DatasetFormatError(f"{path} not found; the RICH root must hold GVHMR's preprocessed test labels")
    try:
        data = torch.load(path, map_location="cpu", weights_only=not trusted)
    except pickle.UnpicklingError as e:
        raise DatasetFormatError(f"{path}: holds non-tensor objects ({e}); if you trust the file, pass trusted=True "
                                 f"(--trust-pickles)") from e
    if not isinstance(data, dict):
        raise DatasetFormatError(f"{path}: expected a dict keyed by 'test/<seq>/cam_XX', got {type(data).__name__}")
    return data


def read_rich_calibration(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV XML camera file -> (T_scan2c (4, 4), K (3, 3))."""
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(f"RICH calibration {path} not found")
    root = ET.parse(path).getroot()

    def mat(tag: str, n: int) -> np.ndarray:
        node = root.find(f"./{tag}/data")
        if node is None or node.text is None:
            raise DatasetFormatError(f"{path}: missing <{tag}><data>")
        v = np.array([float(s) for s in node.text.split()])
        if v.size != n:
            raise DatasetFormatError(f"{path}: <{tag}> must hold {n} numbers, got {v.size}")
        return v

    T = np.eye(4)
    T[:3] = mat("CameraMatrix", 12).reshape(3, 4)
    return T, mat("Intrinsics", 9).reshape(3, 3)


def read_scan_names(root: Path) -> dict[str, str]:
    """``test.txt`` (RICH sequence table) -> {sequence: "<capture>_<scan>"}; empty when absent."""
    path = root / "test.txt"
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text().splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 3:
            out[cols[0]] = f"{cols[1]}_{cols[2]}"
    return out


class RichRoot:
    """The RICH root's shared files: labels, preprocessing, scan names, ``w2az``.

    Args:
        root: RICH root. trusted: full unpickling of the ``.pt`` files.
    """

    def __init__(self, root: str | os.PathLike, trusted: bool = False):
        self.root = Path(root)
        self.labels = load_pt(self.root / "rich_test_labels.pt", trusted)
        self.preproc = load_pt(self.root / "rich_test_preproc.pt", trusted)
        self.scan_of = read_scan_names(self.root)
        w2az = self.root / "w2az_sahmr.json"
        self.w2az = {k: np.asarray(v, dtype=np.float64) for k, v in json.loads(w2az.read_text()).items()} if w2az.is_file() else {}
        self.vids = sorted(self.labels)

    def single_person_vids(self) -> list[str]:
        return [v for v in self.vids if not is_multi_person(v.split("/")[1])]

    def parse_vid(self, vid: str) -> tuple[str, int]:
        """``test/<seq>/cam_XX`` -> (seq, camera id)."""
        try:
            _, seq, cam = vid.split("/")
            return seq, int(cam.split("_")[1])
        except (ValueError, IndexError):
            raise DatasetFormatError(f"RICH vid {vid!r} is not of the form 'test/<seq>/cam_XX'") from None

    def label(self, vid: str) -> tuple[np.ndarray, dict, str]:
        """(frame ids (F,) int64, {param: (F, D) float64}, gender) of one vid."""
        label = self.labels[vid]
        params = label.get("gt_smplx_params") if isinstance(label, dict) else None
        if not isinstance(params, dict) or "frame_id" not in label:
            raise DatasetFormatError(f"{self.root / 'rich_test_labels.pt'}: {vid} must hold 'frame_id' and a 'gt_smplx_params' dict")
        gender = as_str(label.get("gender", "neutral")).lower()
        return (to_numpy(label["frame_id"]).astype(np.int64).reshape(-1), {k: to_numpy(params[k]) for k in PARAM_KEYS if k in params},
                gender)

    def cameras(self, vid: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, str | None, Path]:
        """(T_w2c, K, T_scan2c, scan name or None, calibration file) of one vid (world: module docstring)."""
        seq, cam_id = self.parse_vid(vid)
        calib = self.root / "scan_calibration" / seq.split("_")[0] / "calibration" / f"{cam_id:03d}.xml"
        T_scan2c, K = read_rich_calibration(calib)
        scan = self.scan_of.get(seq)
        T_scan2w = np.eye(4)
        if scan is not None and scan in self.w2az:
            T_scan2w[:3, :3] = Z_UP_TO_Y_UP
            T_scan2w = T_scan2w @ self.w2az[scan]  # scan -> Z-up -> Y-up (GVHMR's T_w2ay)
        return T_scan2c @ rigid_inverse(T_scan2w), K, T_scan2c, scan, calib


def rich_clip(rich: RichRoot, vid: str, models: BodyModelSource) -> Clip:
    """One ``test/<seq>/cam_XX`` as a :class:`Clip` (``box_det`` = GVHMR's ``bbx_xys`` boxes)."""
    frame_ids, params, gender = rich.label(vid)
    T_w2c, K, T_scan2c, _, _ = rich.cameras(vid)
    body = models("smplx", gender)
    pose = smpl_params_to_pose(body, sequence=vid, **params)
    if pose.root_rot.shape[0] != len(frame_ids):
        raise DatasetFormatError(f"{vid}: gt_smplx_params cover {pose.root_rot.shape[0]} frames but frame_id lists {len(frame_ids)}")
    pre = rich.preproc.get(vid, {})
    wh = to_numpy(pre["img_wh"]).reshape(-1) if "img_wh" in pre else np.array([4112, 3008])
    size = (int(wh[0]), int(wh[1]))
    fields = pose_frames(body, pose, T_p2w=rigid_inverse(T_w2c) @ T_scan2c, T_w2c=T_w2c, K=K, image_size=size, fps=FPS)
    if "bbx_xys" in pre:
        b = to_numpy(pre["bbx_xys"]).reshape(-1, 3)
        if b.shape[0] != len(frame_ids):
            raise DatasetFormatError(f"{vid}: rich_test_preproc bbx_xys has {b.shape[0]} frames, labels {len(frame_ids)}")
        fields["box_det"] = np.stack([b[:, 0], b[:, 1], b[:, 2] / 200.0], 1).astype(np.float32)
    seq, cam = rich.parse_vid(vid)
    files = np.array([f"images/test/{seq}/cam_{cam:02d}/{f:05d}_{cam:02d}.jpeg" for f in frame_ids])
    return Clip(dataset="rich", sequence=vid, fps=FPS, image_size=size, K=K, T_w2c=T_w2c, frame_ids=frame_ids,
                image_files=files, **fields).validate()
