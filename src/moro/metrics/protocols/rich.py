"""RICH test set from GVHMR's preprocessed labels, and its truncation variant (``rich-trunc``).

Files read under the RICH root (``shared/data-formats.md``):

- ``rich_test_labels.pt``: ``{vid: {"frame_id": (F,), "gt_smplx_params": {global_orient (F, 3),
  body_pose (F, 63), betas (F, 10), transl (F, 3), optional jaw/eye/hand poses}, "gender": str}}``
  with ``vid = "test/<seq>/cam_XX"``; parameters in RICH's scan (world) frame. One scored
  sequence per vid, named ``vid``; every frame listed in ``frame_id`` is scored.
- ``rich_test_preproc.pt``: ``{vid: {"bbx_xys": (F, 3) cx, cy, size px, "img_wh": (2,), "kp2d":
  (F, 17, 3), ...}}`` - the input boxes (``s = size / 200``).
- ``scan_calibration/<Scene>/calibration/NNN.xml`` (OpenCV XML; ``CameraMatrix`` 3x4 world ->
  camera, ``Intrinsics`` 3x3) with ``<Scene> = seq.split("_")[0]`` and ``NNN`` the camera id.
- ``w2az_sahmr.json`` (``{scan name: 4x4 world -> Z-up}``) with RICH's sequence table
  ``test.txt`` (sequence_name, capture_name, scan_name, ...; optional) giving each sequence's
  scan name: the world frame is then gravity-aligned, Y up (``R_x(-pi/2) @ T_w2az``, as GVHMR).
  Without ``test.txt`` the scan frame is used; no reported metric depends on that choice (world
  metrics compare prediction and ground truth taken into the same world with the same camera).

Multi-person sequences (``<scene>_<id>_<id>_<action>``) are skipped. RICH has no per-joint
visibility: ``rich`` reports no vis/occ split. ``rich-trunc`` (``truncation=True``) replaces the
boxes of frames with ``idx % 200 >= 100`` by upper-body boxes (:func:`.boxes.truncate_boxes`) and
defines visibility as "projected GT joint inside the frame's box" (moro's definition).
``.pt`` files are read with ``torch.load(weights_only=True)`` unless ``trusted=True``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from moro.data.rich import PARAM_KEYS, is_multi_person, load_pt, read_rich_calibration, read_scan_names, to_numpy
from moro.geometry.rotations import rotx
from moro.metrics.predictions.scoring_body import BodyModelSource, ScoringBody, pose_smpl_params

from .boxes import gt_boxes, joints_in_boxes, truncate_boxes
from .protocol import Protocol
from .sequence import GroundTruthError, GroundTruthSequence, rigid_inverse

__all__ = ["Rich", "read_rich_calibration", "is_multi_person"]

_PARAM_KEYS = PARAM_KEYS
_np = to_numpy
_load_pt = load_pt
_scan_names = read_scan_names


class Rich(Protocol):
    """RICH test protocol (``truncation=False``) or its truncation variant (``truncation=True``).

    Args:
        root: RICH root (see module docstring).
        models: ``models(kind, gender) -> BodyModel``; the gendered SMPL-X is used.
        scoring: scoring skeleton; None = SMPL-X joints (a labelled deviation).
        truncation: the ``rich-trunc`` variant.
        use_gt_boxes: boxes from the projected GT joints (supplement D) instead of ``bbx_xys``
            (the truncation is then applied to those).
        trusted: load the ``.pt`` files with full unpickling.
        sequences: optional subset of vids.
        fps: frame rate (30).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        models: BodyModelSource,
        scoring: ScoringBody | None = None,
        *,
        truncation: bool = False,
        use_gt_boxes: bool = False,
        trusted: bool = False,
        sequences: list[str] | None = None,
        fps: float = 30.0,
    ):
        super().__init__()
        self.name = "rich-trunc" if truncation else "rich"
        self.root = Path(root)
        self.models, self.scoring = models, scoring
        self.truncation, self.use_gt_boxes, self.fps = truncation, use_gt_boxes, fps
        self.labels = _load_pt(self.root / "rich_test_labels.pt", trusted)
        self.preproc = _load_pt(self.root / "rich_test_preproc.pt", trusted)
        self.scan_of = _scan_names(self.root)
        w2az = self.root / "w2az_sahmr.json"
        self.w2az = {k: np.asarray(v, dtype=np.float64) for k, v in json.loads(w2az.read_text()).items()} if w2az.is_file() else {}
        vids = sorted(self.labels)
        skipped = [v for v in vids if is_multi_person(v.split("/")[1])]
        self.vids = [v for v in vids if v not in skipped and (sequences is None or v in sequences)]
        if skipped:
            self.notes.append(f"{len(skipped)} multi-person sequence(s) skipped")
        if not (self.scan_of and self.w2az):
            self.notes.append("world frame = RICH scan frame (no test.txt / w2az_sahmr.json); world metrics are unaffected")

    def options(self) -> dict:
        return {**super().options(), "truncation": self.truncation, "gt_boxes": self.use_gt_boxes, "fps": self.fps}

    def sequences(self):
        for vid in self.vids:
            yield self.read(vid)

    def read(self, vid: str) -> GroundTruthSequence:
        """Read, pose and validate one ``test/<seq>/cam_XX``."""
        try:
            _, seq, cam = vid.split("/")
            cam_id = int(cam.split("_")[1])
        except (ValueError, IndexError):
            raise GroundTruthError(f"RICH vid {vid!r} is not of the form 'test/<seq>/cam_XX'") from None
        label = self.labels[vid]
        params = label.get("gt_smplx_params") if isinstance(label, dict) else None
        if not isinstance(params, dict) or "frame_id" not in label:
            raise GroundTruthError(f"{vid}: label must hold 'frame_id' and a 'gt_smplx_params' dict")
        frame_ids = _np(label["frame_id"]).astype(np.int64).reshape(-1)
        f = frame_ids.shape[0]
        g = label.get("gender", "neutral")
        g = g.item() if isinstance(g, np.ndarray) else g
        gender = (g.decode() if isinstance(g, bytes) else str(g)).strip().lower()
        calib = self.root / "scan_calibration" / seq.split("_")[0] / "calibration" / f"{cam_id:03d}.xml"
        T_scan2c, K = read_rich_calibration(calib)
        scan = self.scan_of.get(seq)
        T_scan2w = np.eye(4)
        if scan is not None and scan in self.w2az:
            T_scan2w[:3, :3] = rotx(-np.pi / 2, dtype=torch.float64).numpy()
            T_scan2w = T_scan2w @ self.w2az[scan]  # scan -> Z-up -> Y-up (GVHMR's T_w2ay)
        T_w2c = T_scan2c @ rigid_inverse(T_scan2w)

        body = self.models("smplx", gender)
        kw = {k: _np(params[k]) for k in _PARAM_KEYS if k in params}
        posed = pose_smpl_params(body, sequence=vid, **kw)
        if posed.vertices.shape[0] != f:
            raise GroundTruthError(f"{vid}: gt_smplx_params cover {posed.vertices.shape[0]} frames but frame_id lists {f}")
        R, t = torch.from_numpy(T_scan2c[:3, :3]), torch.from_numpy(T_scan2c[:3, 3])
        verts_cam = posed.vertices.double() @ R.T + t
        scoring = self.scoring or ScoringBody.from_body(body)
        s = scoring(verts_cam)
        pre = self.preproc.get(vid, {})
        wh = _np(pre["img_wh"]).reshape(-1) if "img_wh" in pre else None
        gt = GroundTruthSequence(
            name=vid, frame_ids=frame_ids, fps=self.fps, joints_cam=s.joints22.numpy(), joints_world=None,
            T_w2c=np.broadcast_to(T_w2c, (f, 4, 4)).copy(), K=np.broadcast_to(K, (f, 3, 3)).copy(),
            image_size=None if wh is None else (int(wh[0]), int(wh[1])), vertices_cam=s.vertices.float().numpy(),
            topology=scoring.topology, foot_vertex_ids=scoring.foot_vertex_ids.numpy(), joint_source=scoring.label,
            deviation=scoring.deviation, meta={"gender": gender, "scan": scan, "calibration": str(calib)},
        )
        gt.joints_world = gt.camera_to_world(gt.joints_cam)
        gt.feet_world = gt.camera_to_world(s.feet.numpy())
        if self.use_gt_boxes:
            boxes = gt_boxes(gt.joints_cam, gt.K)
        elif "bbx_xys" in pre:
            b = _np(pre["bbx_xys"]).reshape(-1, 3)
            if b.shape[0] != f:
                raise GroundTruthError(f"{vid}: rich_test_preproc bbx_xys has {b.shape[0]} frames, labels {f}")
            boxes = np.stack([b[:, 0], b[:, 1], b[:, 2] / 200.0], axis=1)
        else:
            boxes = None
        if self.truncation:
            if boxes is None:
                raise GroundTruthError(f"{vid}: rich-trunc needs boxes (bbx_xys in rich_test_preproc.pt, or GT boxes)")
            boxes = truncate_boxes(boxes)
            gt.visibility = joints_in_boxes(gt.joints_cam, gt.K, boxes)
        gt.boxes = boxes
        return gt.validate()
