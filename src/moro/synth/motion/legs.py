"""Leg inverse kinematics: hip and knee from the pelvis to a planted ankle, ankle from the foot pose.

The thigh (hip -> knee) and shin (knee -> ankle) are rigid: the twist bones upperleg02 and
lowerleg02 stay at identity. Given the world hip and ankle positions and a pole direction
(where the knee should point, normally along the foot), the knee is placed by the law of
cosines in the plane of hip, ankle and pole; each segment's world rotation maps its rest frame
(bone direction, knee hinge axis ~X) onto the target frame (new direction, common hinge axis),
so the knee turns about its hinge only. Reach is kept below ``REACH`` of the straight leg by
lowering the pelvis (:func:`reach_deficit`) rather than by letting the foot slide.
"""

from __future__ import annotations

import numpy as np

from . import so3
from .rig import LegGeometry

REACH = 0.995  # largest hip-ankle distance as a fraction of the straight leg (knee ~ 11 deg)
MIN_REACH = 0.42  # smallest fraction (knee ~ 130 deg)


def reach_deficit(hip: np.ndarray, ankle: np.ndarray, leg: LegGeometry, reach: float = REACH) -> np.ndarray:
    """(n,) how far (m) the hip must come down for the ankle to be within ``reach * leg.length``.

    ``hip``, ``ankle`` (n, 3) world positions. A target horizontally beyond reach gets the
    deficit of a hip lowered to the ankle's height plus the horizontal excess.
    """
    r = reach * leg.length
    d = hip - ankle
    horiz = np.hypot(d[:, 0], d[:, 2])
    vert = d[:, 1]
    allowed = np.sqrt(np.maximum(r * r - horiz * horiz, 0.0))
    return np.maximum(vert - allowed, 0.0) + np.maximum(horiz - r, 0.0)


def solve_leg(hip: np.ndarray, ankle: np.ndarray, pole: np.ndarray, leg: LegGeometry) -> tuple[np.ndarray, np.ndarray]:
    """World (rest-relative) rotations of thigh and shin putting the ankle at ``ankle``.

    Args:
        hip, ankle: (n, 3) world positions, metres; the hip-ankle distance is clamped to
            [MIN_REACH, REACH] x leg length (the ankle is then missed, never the hip).
        pole: (n, 3) direction the knee points to (need not be unit or orthogonal).
    Returns:
        G_thigh, G_shin: (n, 3, 3).
    """
    l1, l2 = leg.thigh_len, leg.shin_len
    d = ankle - hip
    dist = np.linalg.norm(d, axis=-1)
    direction = d / np.maximum(dist, 1e-9)[:, None]
    dist = np.clip(dist, MIN_REACH * leg.length, REACH * leg.length)
    cos_h = np.clip((l1 * l1 + dist * dist - l2 * l2) / (2 * l1 * dist), -1.0, 1.0)
    p = pole - np.sum(pole * direction, -1, keepdims=True) * direction
    p = p / np.maximum(np.linalg.norm(p, axis=-1, keepdims=True), 1e-9)
    knee = hip + l1 * (cos_h[:, None] * direction + np.sqrt(1.0 - cos_h**2)[:, None] * p)
    end = hip + dist[:, None] * direction
    hinge = np.cross(p, direction)  # ~ +X for a leg facing +Z with the knee forward
    g_thigh = so3.frame_from(knee - hip, hinge) @ leg.thigh_frame.T
    g_shin = so3.frame_from(end - knee, hinge) @ leg.shin_frame.T
    return g_thigh, g_shin
