"""EgoBody-Occ: ground truth from the real EgoBody layout (``shared/data-formats.md``).

Files read under the EgoBody root (``rec`` = recording name, ``view`` = master | sub_1..sub_4):

- ``egobody_occ_info.csv``: recording_name, view, target_idx, target_gender, body_idx_fpv
  (``"<idx> <gender>"`` of the camera wearer), scene_name, target_start_frame, target_end_frame.
  One scored sequence per row, named ``<rec>/<view>``; only frames
  ``[target_start_frame, target_end_frame]`` (inclusive) are scored.
- ``mask_joint/<rec>/<view>/mask_joint.npy``: (F, >= 22) 0/1, 1 = visible; F must equal the
  interval length exactly (:class:`MaskLengthError` otherwise); columns 0..21 are used.
- SMPL-X fits of the target, in the master Kinect camera frame, one pickle per frame:
  ``smplx_interactee/<rec>/body_idx_<target_idx>/results/frame_%05d/000.pkl`` - or
  ``smplx_camera_wearer/...`` when the target is the camera wearer (a ``_<split>`` suffix on the
  folder, as in some releases, is accepted). Dicts of (1, D) arrays: betas (1, 10),
  global_orient, transl, body_pose (1, 63), left/right_hand_pose (1, 12 PCA), jaw/leye/reye_pose.
  Posed with the target's gendered SMPL-X. Hand PCA is expanded when :class:`HandPCA` is given,
  else the hands are flat (noted; it changes hand vertices only). Expression is not modelled.
- ``calibrations/<rec>/cal_trans/kinect12_to_world/<scene>.json`` (master -> world, key
  ``trans``) and ``calibrations/<rec>/cal_trans/kinect_<id>to12_color.json`` (view -> master;
  ids 11 sub_1, 13 sub_2, 14 sub_3, 15 sub_4). ``cam2world = master2world @ sub2master``.
- ``kinect_cam_params/kinect_<view>/Color.json``: ``camera_mtx`` (or ``f``, ``c``) intrinsics;
  lens distortion is ignored (only the GT boxes use the intrinsics). Images are 1920 x 1080, 30 fps.
- Input boxes (``GroundTruthSequence.boxes``, for image-based methods): from the cleaned OpenPose
  keypoints ``keypoints_cleaned/<rec>/<view>/frame_%05d_keypoints.json`` when present
  (:func:`openpose_boxes`), or supplement D's GT boxes with ``use_gt_boxes=True``.

Scoring joints: ``scoring`` (a :class:`ScoringBody`), normally
``ScoringBody.smplx_to_smpl(transfer, smpl_neutral)`` (metrics.md); with ``scoring=None`` the
gendered SMPL-X model's own joints are used and every report carries the deviation.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from moro.metrics.predictions.joblib_pickle import load_joblib_pickle
from moro.metrics.predictions.scoring_body import BodyModelSource, HandPCA, ScoringBody, pose_smpl_params

from .boxes import gt_boxes
from .protocol import Protocol
from .sequence import GroundTruthError, GroundTruthSequence, MaskLengthError, rigid_inverse

__all__ = ["EgoBodyOcc", "EgoBodyOccEntry", "read_occ_info", "openpose_boxes", "KINECT_IDS"]

KINECT_IDS = {"master": 12, "sub_1": 11, "sub_2": 13, "sub_3": 14, "sub_4": 15}
INFO_COLUMNS = (
    "recording_name", "view", "target_idx", "target_gender", "body_idx_fpv", "scene_name", "target_start_frame",
    "target_end_frame",
)
IMAGE_SIZE = (1920, 1080)
_FIT_KEYS = ("global_orient", "transl", "body_pose", "betas")
_OPTIONAL_KEYS = ("jaw_pose", "leye_pose", "reye_pose", "left_hand_pose", "right_hand_pose")


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
    if not path.is_file():
        raise GroundTruthError(f"{path} not found; --gt must be the EgoBody root holding egobody_occ_info.csv")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    missing = [c for c in INFO_COLUMNS if rows and c not in rows[0]]
    if not rows or missing:
        raise GroundTruthError(f"{path}: empty or missing column(s) {missing}; expected {list(INFO_COLUMNS)}")
    out = []
    for i, r in enumerate(rows, start=2):
        try:
            fpv = str(r["body_idx_fpv"]).split()
            e = EgoBodyOccEntry(
                recording=r["recording_name"].strip(), view=r["view"].strip(), target_idx=int(r["target_idx"]),
                target_gender=r["target_gender"].strip().lower(), fpv_idx=int(fpv[0]), scene=r["scene_name"].strip(),
                start=int(r["target_start_frame"]), end=int(r["target_end_frame"]),
            )
        except (ValueError, IndexError) as err:
            raise GroundTruthError(f"{path} line {i}: cannot parse {dict(r)} ({err})") from None
        if e.view not in KINECT_IDS:
            raise GroundTruthError(f"{path} line {i}: view {e.view!r} is not one of {list(KINECT_IDS)}")
        if e.end < e.start:
            raise GroundTruthError(f"{path} line {i}: target_end_frame {e.end} < target_start_frame {e.start}")
        if e.target_gender not in ("male", "female", "neutral"):
            raise GroundTruthError(f"{path} line {i}: target_gender {e.target_gender!r} must be male or female")
        out.append(e)
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
        raise GroundTruthError(f"{folder}: no frame of {frames.start}..{frames.stop - 1} has 2 valid OpenPose keypoints")
    return np.stack([first if b is None else b for b in boxes])


def _json_matrix(path: Path, key: str, shape: tuple[int, int], what: str) -> np.ndarray:
    if not path.is_file():
        raise GroundTruthError(f"{path} not found ({what}); expected the EgoBody calibration layout of data-formats.md")
    with open(path) as fh:
        data = json.load(fh)
    m = np.asarray(data.get(key) if isinstance(data, dict) else None, dtype=np.float64)
    if m.shape != shape or not np.isfinite(m).all():
        raise GroundTruthError(f"{path}: key {key!r} must be a finite {shape} matrix ({what}), got shape {m.shape}")
    return m


class EgoBodyOcc(Protocol):
    """The EgoBody-Occ protocol (one sequence per row of ``egobody_occ_info.csv``).

    Args:
        root: EgoBody root.
        models: ``models(kind, gender) -> BodyModel`` (SMPL-X of the target's gender is used).
        scoring: scoring skeleton (see module docstring); None = SMPL-X joints, a labelled deviation.
        hand_pca: SMPL-X hand PCA to expand the fits' 12 PCA hand coefficients.
        use_gt_boxes: fill ``GroundTruthSequence.boxes`` with supplement D's GT boxes (scale 1.2).
        recordings: optional subset of ``<rec>/<view>`` names (or recording names) to score.
        fps: frame rate (30).
    """

    name = "egobody-occ"

    def __init__(
        self,
        root: str | os.PathLike,
        models: BodyModelSource,
        scoring: ScoringBody | None = None,
        *,
        hand_pca: HandPCA | None = None,
        use_gt_boxes: bool = False,
        recordings: list[str] | None = None,
        fps: float = 30.0,
    ):
        super().__init__()
        self.root = Path(root)
        self.models, self.scoring, self.hand_pca = models, scoring, hand_pca
        self.use_gt_boxes, self.fps = use_gt_boxes, fps
        self.entries = read_occ_info(self.root)
        if recordings is not None:
            keep = set(recordings)
            self.entries = [e for e in self.entries if e.name in keep or e.recording in keep]
        if hand_pca is None:
            self.notes.append("EgoBody fits' PCA hand poses not expanded (no hand PCA given): flat hands")

    def options(self) -> dict:
        return {**super().options(), "gt_boxes": self.use_gt_boxes, "fps": self.fps}

    def sequences(self):
        for e in self.entries:
            yield self.read(e)

    # ------------------------------------------------------------------ pieces
    def _fits_dir(self, e: EgoBodyOccEntry) -> Path:
        kind = "smplx_camera_wearer" if e.target_idx == e.fpv_idx else "smplx_interactee"
        tail = Path(e.recording, f"body_idx_{e.target_idx}", "results")
        candidates = [self.root / kind] + sorted(p for p in self.root.glob(f"{kind}_*") if p.is_dir())
        for c in candidates:
            if (c / tail).is_dir():
                return c / tail
        raise GroundTruthError(
            f"{e.name}: SMPL-X fits of body {e.target_idx} not found; looked for {[str(c / tail) for c in candidates]}"
        )

    def _read_fits(self, e: EgoBodyOccEntry) -> dict[str, np.ndarray]:
        folder = self._fits_dir(e)
        per_key: dict[str, list[np.ndarray]] = {}
        for frame in range(e.start, e.end + 1):
            path = folder / f"frame_{frame:05d}" / "000.pkl"
            if not path.is_file():
                raise GroundTruthError(f"{e.name}: fit of scored frame {frame} missing: {path}")
            try:
                fit = load_joblib_pickle(path)
            except Exception as err:  # pickle raises many types
                raise GroundTruthError(f"{path}: unreadable fit ({type(err).__name__}: {err})") from err
            missing = [k for k in _FIT_KEYS if k not in fit]
            if missing:
                raise GroundTruthError(f"{path}: missing key(s) {missing}; EgoBody fits hold {list(_FIT_KEYS + _OPTIONAL_KEYS)}")
            for k in _FIT_KEYS + _OPTIONAL_KEYS:
                if k in fit:
                    per_key.setdefault(k, []).append(np.asarray(fit[k], dtype=np.float64).reshape(-1))
        return {k: np.stack(v) for k, v in per_key.items() if len(v) == e.end - e.start + 1}

    def _cam_to_master(self, e: EgoBodyOccEntry) -> np.ndarray:
        if e.view == "master":
            return np.eye(4)
        cal = self.root / "calibrations" / e.recording / "cal_trans" / f"kinect_{KINECT_IDS[e.view]}to12_color.json"
        return _json_matrix(cal, "trans", (4, 4), f"{e.view} -> master extrinsics")

    def _intrinsics(self, e: EgoBodyOccEntry) -> np.ndarray | None:
        path = self.root / "kinect_cam_params" / f"kinect_{e.view}" / "Color.json"
        if not path.is_file():
            return None
        with open(path) as fh:
            d = json.load(fh)
        if "camera_mtx" in d:
            K = np.asarray(d["camera_mtx"], dtype=np.float64).reshape(3, 3)
        else:
            (fx, fy), (cx, cy) = d["f"], d["c"]
            K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
        return K

    def _mask(self, e: EgoBodyOccEntry) -> np.ndarray:
        path = self.root / "mask_joint" / e.recording / e.view / "mask_joint.npy"
        if not path.is_file():
            raise GroundTruthError(f"{e.name}: visibility mask {path} not found")
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
            raise GroundTruthError(f"{path}: mask values must be 0 or 1")
        return m[:, :22].astype(bool)

    # ------------------------------------------------------------------ one sequence
    def read(self, e: EgoBodyOccEntry) -> GroundTruthSequence:
        """Read, pose and validate the ground truth of one row."""
        mask = self._mask(e)
        fits = self._read_fits(e)
        master2world = _json_matrix(
            self.root / "calibrations" / e.recording / "cal_trans" / "kinect12_to_world" / f"{e.scene}.json",
            "trans", (4, 4), "master -> world",
        )
        cam2master = self._cam_to_master(e)
        master2cam = rigid_inverse(cam2master)
        T_w2c = rigid_inverse(master2world @ cam2master)
        body = self.models("smplx", e.target_gender)
        extras = {k: fits[k] for k in _OPTIONAL_KEYS if k in fits}
        if self.hand_pca is None:
            extras = {k: v for k, v in extras.items() if "hand" not in k or v.shape[1] == 45}
        posed = pose_smpl_params(
            body, global_orient=fits["global_orient"], body_pose=fits["body_pose"], betas=fits["betas"],
            transl=fits["transl"], hand_pca=self.hand_pca, sequence=e.name, **extras,
        )
        R, t = torch.from_numpy(master2cam[:3, :3]), torch.from_numpy(master2cam[:3, 3])
        verts_cam = posed.vertices.double() @ R.T + t  # master camera -> this view's camera
        scoring = self.scoring or ScoringBody.from_body(body)
        s = scoring(verts_cam)
        f = e.end - e.start + 1
        T = np.broadcast_to(T_w2c, (f, 4, 4)).copy()
        joints_cam = s.joints22.numpy()
        gt = GroundTruthSequence(
            name=e.name, frame_ids=np.arange(e.start, e.end + 1), fps=self.fps, joints_cam=joints_cam,
            joints_world=None, T_w2c=T, visibility=mask, vertices_cam=s.vertices.float().numpy(),
            topology=scoring.topology, feet_world=None, foot_vertex_ids=scoring.foot_vertex_ids.numpy(), image_size=IMAGE_SIZE,
            joint_source=scoring.label, deviation=scoring.deviation,
            meta={"gender": e.target_gender, "target_idx": e.target_idx, "scene": e.scene},
        )
        gt.joints_world = gt.camera_to_world(joints_cam)
        gt.feet_world = gt.camera_to_world(s.feet.numpy())
        K = self._intrinsics(e)
        if K is not None:
            gt.K = np.broadcast_to(K, (f, 3, 3)).copy()
        keypoints = self.root / "keypoints_cleaned" / e.recording / e.view
        if self.use_gt_boxes:
            if gt.K is None:
                raise GroundTruthError(f"{e.name}: GT boxes need kinect_cam_params/kinect_{e.view}/Color.json")
            gt.boxes = gt_boxes(gt.joints_cam, gt.K)
        elif keypoints.is_dir():
            gt.boxes = openpose_boxes(keypoints, range(e.start, e.end + 1))
        return gt.validate()
