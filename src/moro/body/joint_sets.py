"""Named joint and keypoint sets shared by every body model.

``JOINTS22``: the 22 scoring joints of EgoBody / RICH / the synthetic benchmark, in SMPL order.
Metrics rely on this order: hips are 1 and 2 (pelvis alignment = their mean), feet (ankle, toe)
are [7, 10] left and [8, 11] right.

``COCO17``: the 17 COCO keypoints in COCO order.
"""

from __future__ import annotations

JOINTS22: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)
HIP_JOINTS = (1, 2)
LEFT_FOOT_JOINTS = (7, 10)
RIGHT_FOOT_JOINTS = (8, 11)
# The 4 contact joints used by MoRo's contact head (L ankle, L foot, R ankle, R foot).
CONTACT_JOINTS = (7, 10, 8, 11)

COCO17: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
# Left/right swap permutation for horizontal flips.
COCO17_FLIP = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
JOINTS22_FLIP = (0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20)

# Foot vertices of the foot-sliding metric (GVHMR), SMPL topology: L heel, L toe, R heel, R toe.
SMPL_FOOT_VERTICES = (3216, 3387, 6617, 6787)

# COCO face keypoints as mesh vertices (the smplx package's vertex ids), and the skeleton
# joints that give the 12 body keypoints (same for SMPL and SMPL-X: first 22 joints, SMPL order).
SMPL_COCO_FACE_VERTICES = {"nose": 332, "left_eye": 2800, "right_eye": 6260, "left_ear": 583, "right_ear": 4071}
SMPLX_COCO_FACE_VERTICES = {"nose": 9120, "left_eye": 9448, "right_eye": 9929, "left_ear": 6, "right_ear": 616}
COCO17_BODY_FROM_JOINTS22 = {
    "left_shoulder": 16, "right_shoulder": 17, "left_elbow": 18, "right_elbow": 19,
    "left_wrist": 20, "right_wrist": 21, "left_hip": 1, "right_hip": 2,
    "left_knee": 4, "right_knee": 5, "left_ankle": 7, "right_ankle": 8,
}
