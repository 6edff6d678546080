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

File parsing is shared with the training reader (:mod:`moro.data.egobody`).

Scoring joints: ``scoring`` (a :class:`ScoringBody`), normally
``ScoringBody.smplx_to_smpl(transfer, smpl_neutral)`` (metrics.md); with ``scoring=None`` the
gendered SMPL-X model's own joints are used and every report carries the deviation.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from moro.data.egobody import (IMAGE_SIZE, KINECT_IDS, OPTIONAL_FIT_KEYS, EgoBodyOccEntry, fits_dir, openpose_boxes,
                               read_color_params, read_fits, read_json_matrix, read_mask, read_occ_info, view_to_master)
from moro.metrics.predictions.scoring_body import BodyModelSource, HandPCA, ScoringBody, pose_smpl_params

from .boxes import gt_boxes
from .protocol import Protocol
from .sequence import GroundTruthError, GroundTruthSequence, rigid_inverse

__all__ = ["EgoBodyOcc", "EgoBodyOccEntry", "read_occ_info", "openpose_boxes", "KINECT_IDS"]

_OPTIONAL_KEYS = OPTIONAL_FIT_KEYS


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
    def _read_fits(self, e: EgoBodyOccEntry) -> dict[str, np.ndarray]:
        folder = fits_dir(self.root, e.recording, e.target_idx, e.target_idx == e.fpv_idx)
        return read_fits(folder, range(e.start, e.end + 1), e.name)[1]

    def _intrinsics(self, e: EgoBodyOccEntry) -> np.ndarray | None:
        params = read_color_params(self.root, e.view)
        return None if params is None else params[0]

    # ------------------------------------------------------------------ one sequence
    def read(self, e: EgoBodyOccEntry) -> GroundTruthSequence:
        """Read, pose and validate the ground truth of one row."""
        mask = read_mask(self.root, e)
        fits = self._read_fits(e)
        master2world = read_json_matrix(
            self.root / "calibrations" / e.recording / "cal_trans" / "kinect12_to_world" / f"{e.scene}.json",
            "trans", (4, 4), "master -> world",
        )
        cam2master = view_to_master(self.root, e.recording, e.view)
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
