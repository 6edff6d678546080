"""Rest geometry of one shaped Anny body, as the motion planner needs it, and joint-only FK.

:func:`build_rig` reads the 36-joint rig of :func:`moro.body.load_anny` (``BODY_RIG`` names) at
given betas: rest joints, leg and arm segment lengths and hinge frames, and the sole of each
foot (the vertices skinned to the foot and toes bones, the sole plane, heel and ball pivots).
All positions are in the canonical body frame at rest (Y up, facing +Z, left = +X), metres.

Rotation conventions (SMPL's, see :mod:`moro.body.model`): a joint's *global* rotation G_j is
relative to its rest orientation, ``G_j = G_parent @ local_j``, and a bone ``j_rest[c] - j_rest[j]``
is carried by G_j. Everything here is float64 numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import so3

SIDES = ("L", "R")
SIDE_SIGN = {"L": 1.0, "R": -1.0}  # the body's left is +X


@dataclass
class LegGeometry:
    """One leg at rest. Ids index the 36-joint rig; points (3,) in the rest frame, metres."""

    hip: int  # upperleg01
    thigh_twist: int  # upperleg02 (kept at identity)
    knee: int  # lowerleg01
    shin_twist: int  # lowerleg02 (kept at identity)
    ankle: int  # foot
    ball: int  # toes (ball of the foot)
    thigh_len: float  # |knee - hip|
    shin_len: float  # |ankle - knee|
    thigh_frame: np.ndarray  # (3, 3) columns: bone direction, knee hinge axis (~X), their cross product
    shin_frame: np.ndarray  # (3, 3) same for the shin
    heel_pivot: np.ndarray  # (3,) back of the heel on the sole plane
    ball_pivot: np.ndarray  # (3,) under the ball of the foot on the sole plane
    sole_points: np.ndarray  # (n, 3) rest vertices skinned mostly to foot or toes
    sole_on_toes: np.ndarray  # (n,) bool: that vertex follows the toes bone (else the foot bone)

    @property
    def length(self) -> float:
        """Hip-to-ankle length with a straight knee, metres."""
        return self.thigh_len + self.shin_len


@dataclass
class ArmGeometry:
    """One arm at rest (ids index the rig; directions are unit (3,) vectors in the rest frame)."""

    clavicle: int
    shoulder: int  # shoulder01 (scapula)
    upper: int  # upperarm01: the glenohumeral joint
    upper_twist: int  # upperarm02
    elbow: int  # lowerarm01
    fore_twist: int  # lowerarm02
    wrist: int
    upper_len: float
    fore_len: float
    upper_dir: np.ndarray  # r0: shoulder -> elbow
    fore_dir: np.ndarray  # f0: elbow -> wrist
    elbow_axis: np.ndarray  # k0 = r0 x f0 normalised: positive rotation about it flexes the elbow
    elbow_rest_flexion: float  # angle between r0 and f0, radians


@dataclass
class Rig:
    """Rest geometry of one shaped body (see module docs)."""

    names: list[str]
    parents: list[int]
    joints: np.ndarray  # (j, 3) rest joints
    legs: dict[str, LegGeometry]
    arms: dict[str, ArmGeometry]
    sole_y: float  # rest height of the lowest sole vertex (the ground when feet are flat)
    spine: list[int]  # spine05 .. spine01 (pelvis to chest)
    neck: list[int]  # neck01 .. head

    def index(self, name: str) -> int:
        return self.names.index(name)

    @property
    def ankle_height(self) -> float:
        """Height of the ankle joint above the ground with a flat foot, metres."""
        return float(self.joints[self.legs["L"].ankle, 1] - self.sole_y)

    def hip_offset(self, side: str) -> np.ndarray:
        """Rest hip joint relative to the root joint (3,)."""
        return self.joints[self.legs[side].hip] - self.joints[0]

    def standing_root_height(self, half_width: float, straightness: float = 0.99) -> float:
        """Root height above the ground when standing with ankles ``half_width`` m from the midline."""
        leg = self.legs["L"]
        hip = self.hip_offset("L")
        lateral = half_width - hip[0]
        reach = straightness * leg.length
        return float(self.ankle_height + np.sqrt(max(reach**2 - lateral**2, 0.0)) - hip[1])


def _leg(names, joints, verts, weights, side: str, foot_vertices: np.ndarray) -> LegGeometry:
    ids = [names.index(f"{b}.{side}") for b in ("upperleg01", "upperleg02", "lowerleg01", "lowerleg02", "foot", "toes")]
    hip, tt, knee, st, ankle, ball = ids
    dominant = weights.argmax(1)
    sole = np.isin(dominant, [ankle, ball])
    points = verts[sole]
    sole_y = float(points[:, 1].min())
    heel_v = verts[foot_vertices[0 if side == "L" else 2]]
    x = np.array([1.0, 0.0, 0.0])
    thigh, shin = joints[knee] - joints[hip], joints[ankle] - joints[knee]
    return LegGeometry(
        hip=hip, thigh_twist=tt, knee=knee, shin_twist=st, ankle=ankle, ball=ball,
        thigh_len=float(np.linalg.norm(thigh)), shin_len=float(np.linalg.norm(shin)),
        thigh_frame=so3.frame_from(thigh, x), shin_frame=so3.frame_from(shin, x),
        heel_pivot=np.array([heel_v[0], sole_y, points[:, 2].min()]),
        ball_pivot=np.array([joints[ball, 0], sole_y, joints[ball, 2]]),
        sole_points=points, sole_on_toes=dominant[sole] == ball,
    )


def _arm(names, joints, side: str) -> ArmGeometry:
    ids = [names.index(f"{b}.{side}") for b in
           ("clavicle", "shoulder01", "upperarm01", "upperarm02", "lowerarm01", "lowerarm02", "wrist")]
    upper, fore = joints[ids[4]] - joints[ids[2]], joints[ids[6]] - joints[ids[4]]
    r0, f0 = upper / np.linalg.norm(upper), fore / np.linalg.norm(fore)
    k0 = np.cross(r0, f0)
    return ArmGeometry(
        *ids, upper_len=float(np.linalg.norm(upper)), fore_len=float(np.linalg.norm(fore)),
        upper_dir=r0, fore_dir=f0, elbow_axis=k0 / np.linalg.norm(k0),
        elbow_rest_flexion=float(np.arccos(np.clip(r0 @ f0, -1.0, 1.0))),
    )


def build_rig(body, betas: torch.Tensor) -> Rig:
    """Rest geometry of ``body`` (a moro Anny body, 36-joint rig) at ``betas`` (s,)."""
    with torch.no_grad():
        v, j = body.shaped(betas.to(body.v_template.dtype))
    verts, joints = v.double().numpy(), j.double().numpy()
    names = list(body.joint_names)
    weights = body.weights.double().numpy()
    feet = body.foot_vertices.numpy()
    legs = {s: _leg(names, joints, verts, weights, s, feet) for s in SIDES}
    return Rig(
        names=names, parents=list(body.parents), joints=joints, legs=legs,
        arms={s: _arm(names, joints, s) for s in SIDES},
        sole_y=min(float(legs[s].sole_points[:, 1].min()) for s in SIDES),
        spine=[names.index(n) for n in ("spine05", "spine04", "spine03", "spine02", "spine01")],
        neck=[names.index(n) for n in ("neck01", "neck02", "neck03", "head")],
    )


def forward_kinematics(
    rig: Rig, local: np.ndarray, root_rot: np.ndarray, root_trans: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Joint-only forward kinematics (no skinning).

    Args:
        local: (t, j-1, 3, 3) parent-relative rotations of joints 1..j-1 (``body_pose``).
        root_rot: (t, 3, 3) root orientation; root_trans: (t, 3) root joint position, metres.
    Returns:
        global rotations (t, j, 3, 3) and joint positions (t, j, 3), world frame.
    """
    t, j = local.shape[0], len(rig.parents)
    G = np.empty((t, j, 3, 3))
    P = np.empty((t, j, 3))
    G[:, 0], P[:, 0] = root_rot, root_trans
    for i in range(1, j):
        p = rig.parents[i]
        G[:, i] = G[:, p] @ local[:, i - 1]
        P[:, i] = P[:, p] + G[:, p] @ (rig.joints[i] - rig.joints[p])
    return G, P
