"""Arm poses: an anatomical parametrisation, two-bone reaching, and conversion to local rotations.

Arm angles (left arm; the right arm is its mirror image, ``M R M`` with M = diag(-1, 1, 1)):

* ``elev`` (elevation, rad): angle of the upper arm from hanging straight down (0) towards
  overhead (pi);
* ``plane`` (plane of elevation, rad): 0 = sideways (abduction), pi/2 = forwards (flexion),
  negative = behind the frontal plane;
* ``twist`` (rad): humeral rotation measured in the hanging pose, + = external (a flexed
  forearm turns outwards);
* ``elbow`` (rad): elbow flexion, 0 = straight (Anny's rest is ~0.82 rad).

The upper arm's rotation relative to the chest is ``Swing(plane, elev) @ R_y(twist) @ R_hang``,
with ``R_hang`` taking Anny's A-pose arm to hanging and ``Swing`` turning about the horizontal
axis ``(-sin plane, 0, cos plane)`` by ``elev``. Reaching uses two-bone inverse kinematics with
the elbow pointing back and down. All arrays float64 numpy, leading shape (n,).
"""

from __future__ import annotations

import numpy as np

from . import so3
from .rig import ArmGeometry, Rig

DOWN = np.array([0.0, -1.0, 0.0])
ELBOW_POLE = np.array([0.35, -0.35, -0.87])  # left arm, chest frame: elbow points back, down, out
NEUTRAL = {"elev": 0.12, "plane": 0.35, "twist": 0.0, "elbow": 0.3}  # relaxed standing arm


def hang_rotation(arm: ArmGeometry) -> np.ndarray:
    """(3, 3) rotation taking the rest upper-arm direction to straight down."""
    return so3.rotation_between(arm.upper_dir, DOWN)


def upper_arm_rotation(arm: ArmGeometry, elev: np.ndarray, plane: np.ndarray, twist: np.ndarray) -> np.ndarray:
    """(n, 3, 3) left upper-arm rotation relative to the chest (rest-relative) from arm angles (n,)."""
    axis = np.stack([-np.sin(plane), np.zeros_like(plane), np.cos(plane)], -1)
    return so3.axis_angle(axis, elev) @ so3.rot_y(twist) @ hang_rotation(arm)


def elbow_rotation(arm: ArmGeometry, elbow: np.ndarray) -> np.ndarray:
    """(n, 3, 3) left elbow local rotation for flexion ``elbow`` (n,) rad (rest flexion subtracted)."""
    return so3.axis_angle(arm.elbow_axis, np.asarray(elbow) - arm.elbow_rest_flexion)


def forearm_direction(arm: ArmGeometry, upper: np.ndarray, elbow: np.ndarray) -> np.ndarray:
    """(n, 3) forearm direction in the chest frame for upper-arm rotations (n, 3, 3) and flexion (n,)."""
    return (upper @ elbow_rotation(arm, elbow) @ arm.fore_dir[:, None])[..., 0]


def twist_for_raised_forearm(arm: ArmGeometry, elev: float, plane: float, elbow: float) -> float:
    """Humeral twist (rad) that points the flexed forearm most upwards (a waving hand)."""
    grid = np.linspace(-np.pi, np.pi, 181)
    n = len(grid)
    up = upper_arm_rotation(arm, np.full(n, elev), np.full(n, plane), grid)
    f = forearm_direction(arm, up, np.full(n, elbow))
    return float(grid[np.argmax(f[:, 1])])


def reach_rotation(arm: ArmGeometry, target: np.ndarray, pole: np.ndarray = ELBOW_POLE) -> tuple[np.ndarray, np.ndarray]:
    """Two-bone IK for the left arm: upper-arm rotation and elbow flexion bringing the wrist to target.

    Args:
        target: (n, 3) wrist target relative to the shoulder joint, in the frame the returned
            rotation is relative to (left-arm coordinates); out-of-reach targets are pulled in.
        pole: (3,) direction the elbow should point to.
    Returns:
        upper (n, 3, 3) rest-relative upper-arm rotation and elbow flexion (n,) rad.
    """
    a, b = arm.upper_len, arm.fore_len
    dist = np.linalg.norm(target, axis=-1)
    d = np.clip(dist, abs(a - b) + 0.05, 0.995 * (a + b))
    direction = target / np.maximum(dist, 1e-9)[:, None]
    cos_s = np.clip((a * a + d * d - b * b) / (2 * a * d), -1.0, 1.0)
    p = pole - np.sum(pole * direction, -1, keepdims=True) * direction
    p = p / np.maximum(np.linalg.norm(p, axis=-1, keepdims=True), 1e-9)
    u = cos_s[:, None] * direction + np.sqrt(1 - cos_s**2)[:, None] * p
    k = np.cross(p, direction)
    k = k / np.maximum(np.linalg.norm(k, axis=-1, keepdims=True), 1e-9)
    cos_e = np.clip((a * a + b * b - d * d) / (2 * a * b), -1.0, 1.0)
    target_frame = np.stack([u, k, np.cross(u, k)], -1)
    rest_frame = np.stack([arm.upper_dir, arm.elbow_axis, np.cross(arm.upper_dir, arm.elbow_axis)], -1)
    return target_frame @ rest_frame.T, np.pi - np.arccos(cos_e)


def mirror_if_right(side: str, R: np.ndarray) -> np.ndarray:
    """Left-arm rotations as the ``side`` arm's (mirrored for "R")."""
    return so3.mirror_x(R) if side == "R" else R


def clavicle_elevation(elev: np.ndarray) -> np.ndarray:
    """Shoulder-girdle elevation (rad) accompanying arm elevation (scapulohumeral rhythm, ~1:4 above 80 deg)."""
    return 0.25 * np.clip(elev - 1.4, 0.0, None)


def arm_locals(rig: Rig, side: str, upper_rel_chest: np.ndarray, elbow: np.ndarray, elev: np.ndarray) -> dict[int, np.ndarray]:
    """Local rotations {joint index: (n, 3, 3)} of one arm chain.

    Args:
        upper_rel_chest: (n, 3, 3) left-arm upper-arm rotation relative to the chest.
        elbow: (n,) flexion rad; elev: (n,) elevation rad (drives the clavicle).
    """
    arm = rig.arms["L"]
    clav = so3.rot_z(clavicle_elevation(elev))  # left: raises the lateral end
    upper = np.swapaxes(clav, -1, -2) @ upper_rel_chest
    own = rig.arms[side]
    eye = np.broadcast_to(np.eye(3), upper.shape)
    return {
        own.clavicle: mirror_if_right(side, clav), own.shoulder: eye,
        own.upper: mirror_if_right(side, upper), own.upper_twist: eye,
        own.elbow: mirror_if_right(side, elbow_rotation(arm, elbow)), own.fore_twist: eye, own.wrist: eye,
    }
