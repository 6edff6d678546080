"""Anatomical joint limits for the 36-joint Anny rig: a documented table, a check and a clamp.

Every joint's parent-relative rotation R (``body_pose``, relative to Anny's rest pose) is
decomposed by swing-twist: ``R @ ref^T = Swing @ Twist``, where Twist turns about the joint's
*twist axis* (its rest bone direction) and Swing's rotation vector is perpendicular to it. The
swing vector's components along the *flexion axis* and along the *abduction axis*
(``twist x flexion``, negated for bones pointing down so that it is ~+Z: a left limb moving away
from the midline) and the twist angle are each limited to a range. ``ref`` is identity except at
the shoulder, where angles are measured from the arm hanging at the side (``ref`` takes Anny's
A-pose arm, ~50 deg abducted, to hanging). Right-side joints are mirrored (``M R M``,
M = diag(-1, 1, 1)) and checked against the left-side row, so one row serves both sides.

Ranges are in degrees *relative to Anny's rest pose*, whose anatomical angles are noted where
not ~0: hip ~8 deg abducted, knee ~8 deg flexed, elbow ~47 deg flexed, shoulder see ``ref``.
Signs (left side; right mirrored): flexion + = hip/shoulder/spine/neck forward, knee/elbow
bending, ankle plantarflexion (toes down), toes curling down; abduction + = limb away from the
midline (spine/neck: bending to the left); twist + = about the bone axis by the right-hand rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import so3
from .rig import Rig

DEG = np.pi / 180.0

# joint (left / centre name): (twist axis, flexion axis, (flex min, max), (abd min, max), (twist min, max)) deg.
# Axis specs: "to:<joint>" = unit rest vector from this joint to <joint>; "x"/"-x"/... fixed axes;
# "elbow" = the rest elbow hinge axis; "fore" = the rest forearm direction; "hang" = straight down (used with the shoulder ref).
LIMIT_TABLE: dict[str, tuple[str, str, tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "upperleg01.L": ("to:lowerleg01.L", "-x", (-25, 125), (-35, 45), (-40, 40)),   # hip
    "upperleg02.L": ("to:lowerleg01.L", "-x", (-3, 3), (-3, 3), (-30, 30)),       # thigh twist bone
    "lowerleg01.L": ("to:foot.L", "x", (-10, 150), (-10, 10), (-20, 20)),         # knee (hinge)
    "lowerleg02.L": ("to:foot.L", "x", (-3, 3), (-3, 3), (-30, 30)),              # shin twist bone
    "foot.L": ("to:toes.L", "x", (-35, 60), (-25, 25), (-30, 30)),               # ankle: dorsi-/plantarflexion, ab/adduction, eversion/inversion
    "toes.L": ("z", "x", (-70, 40), (-10, 10), (-10, 10)),                       # toes: extension is negative
    "spine05": ("to:spine04", "x", (-10, 20), (-10, 10), (-10, 10)),
    "spine04": ("to:spine03", "x", (-10, 20), (-10, 10), (-10, 10)),
    "spine03": ("to:spine02", "x", (-10, 20), (-10, 10), (-12, 12)),
    "spine02": ("to:spine01", "x", (-10, 20), (-10, 10), (-12, 12)),
    "spine01": ("to:neck01", "x", (-10, 20), (-10, 10), (-12, 12)),
    "clavicle.L": ("to:shoulder01.L", "x", (-20, 20), (-20, 25), (-15, 15)),
    "shoulder01.L": ("to:upperarm01.L", "x", (-20, 20), (-20, 25), (-15, 15)),
    "upperarm01.L": ("hang", "-x", (-50, 175), (-35, 175), (-100, 100)),          # glenohumeral, from hanging
    "upperarm02.L": ("to:lowerarm01.L", "elbow", (-3, 3), (-3, 3), (-45, 45)),    # upper-arm twist bone
    "lowerarm01.L": ("to:wrist.L", "elbow", (-49, 100), (-10, 10), (-15, 15)),     # elbow (hinge), rest 47 deg flexed
    "lowerarm02.L": ("to:wrist.L", "elbow", (-3, 3), (-3, 3), (-85, 85)),         # forearm pronation/supination
    "wrist.L": ("fore", "elbow", (-70, 70), (-30, 35), (-10, 10)),
    "neck01": ("to:neck02", "x", (-20, 25), (-15, 15), (-25, 25)),
    "neck02": ("to:neck03", "x", (-20, 25), (-15, 15), (-25, 25)),
    "neck03": ("to:head", "x", (-20, 25), (-15, 15), (-25, 25)),
    "head": ("y", "x", (-25, 25), (-15, 15), (-25, 25)),
}
_FIXED = {"x": (1, 0, 0), "-x": (-1, 0, 0), "y": (0, 1, 0), "z": (0, 0, 1), "hang": (0, -1, 0)}


@dataclass
class JointLimits:
    """The limit table resolved on one rig: per local joint (index into body_pose, 0..j-2)."""

    rows: list[int]  # body_pose index of each limited joint
    mirrored: np.ndarray  # (n,) bool: right-side joint, checked as its mirrored left twin
    twist_axis: np.ndarray  # (n, 3)
    flex_axis: np.ndarray  # (n, 3) orthogonal to twist_axis
    abd_axis: np.ndarray  # (n, 3) twist x flex
    ref: np.ndarray  # (n, 3, 3)
    lo: np.ndarray  # (n, 3) radians: flexion, abduction, twist
    hi: np.ndarray  # (n, 3)


def _axis(rig: Rig, name: str, spec: str) -> np.ndarray:
    if spec == "elbow":
        return rig.arms["L"].elbow_axis
    if spec in _FIXED:
        return np.array(_FIXED[spec], dtype=np.float64)
    if spec == "fore":
        return rig.arms["L"].fore_dir
    target = spec[3:]
    v = rig.joints[rig.index(target)] - rig.joints[rig.index(name)]
    return v / np.linalg.norm(v)


def resolve_limits(rig: Rig) -> JointLimits:
    """Resolve :data:`LIMIT_TABLE` on ``rig`` (axes from its rest joints)."""
    rows, mirrored, tw, fl, ab, refs, lo, hi = [], [], [], [], [], [], [], []
    hang = so3.rotation_between(rig.arms["L"].upper_dir, np.array([0.0, -1.0, 0.0]))
    for name, (t_spec, f_spec, flex, abd, twist) in LIMIT_TABLE.items():
        t = _axis(rig, name, t_spec)
        f = _axis(rig, name, f_spec)
        f = f - (f @ t) * t
        f = f / np.linalg.norm(f)
        targets = [name] if not name.endswith(".L") else [name, name[:-2] + ".R"]
        for target in targets:
            rows.append(rig.index(target) - 1)
            mirrored.append(target.endswith(".R"))
            a = np.cross(t, f)
            tw.append(t), fl.append(f), ab.append(-a if t[1] < -0.5 else a)
            refs.append(hang if name.startswith("upperarm01") else np.eye(3))
            lo.append([flex[0], abd[0], twist[0]]), hi.append([flex[1], abd[1], twist[1]])
    return JointLimits(
        rows=rows, mirrored=np.array(mirrored), twist_axis=np.array(tw), flex_axis=np.array(fl),
        abd_axis=np.array(ab), ref=np.array(refs), lo=np.array(lo) * DEG, hi=np.array(hi) * DEG,
    )


def _to_left(limits: JointLimits, local: np.ndarray) -> np.ndarray:
    """(t, n, 3, 3) limited joints' rotations, right side mirrored, times ref^T."""
    R = local[:, limits.rows]
    R = np.where(limits.mirrored[None, :, None, None], so3.mirror_x(R), R)
    return R @ np.swapaxes(limits.ref, -1, -2)


def joint_angles(limits: JointLimits, local: np.ndarray) -> np.ndarray:
    """Swing-twist angles (t, n, 3) = (flexion, abduction, twist), radians, of body_pose (t, j-1, 3, 3)."""
    q = so3.matrix_to_quat(_to_left(limits, local))  # (t, n, 4) w, x, y, z
    q = q * np.where(q[..., :1] < 0, -1.0, 1.0)
    w, v = q[..., 0], q[..., 1:]
    along = np.sum(v * limits.twist_axis, -1)
    twist = 2.0 * np.arctan2(along, w)
    # swing = q * twist^-1 (quaternion product), then its rotation vector.
    half = 0.5 * twist
    qt_w, qt_v = np.cos(half), np.sin(half)[..., None] * limits.twist_axis
    s_w = w * qt_w + np.sum(v * qt_v, -1)
    s_v = qt_w[..., None] * v - w[..., None] * qt_v - np.cross(v, qt_v)
    n = np.linalg.norm(s_v, axis=-1)
    ang = 2.0 * np.arctan2(n, s_w)
    swing = s_v * (ang / np.maximum(n, 1e-12))[..., None]
    return np.stack([np.sum(swing * limits.flex_axis, -1), np.sum(swing * limits.abd_axis, -1), twist], -1)


def angles_to_local(limits: JointLimits, angles: np.ndarray) -> np.ndarray:
    """Inverse of :func:`joint_angles`: (t, n, 3) angles -> (t, n, 3, 3) rotations (right side re-mirrored)."""
    swing = angles[..., :1] * limits.flex_axis + angles[..., 1:2] * limits.abd_axis
    R = so3.rotvec_to_matrix(swing) @ so3.axis_angle(limits.twist_axis, angles[..., 2]) @ limits.ref
    return np.where(limits.mirrored[None, :, None, None], so3.mirror_x(R), R)


def limit_violation(limits: JointLimits, local: np.ndarray) -> np.ndarray:
    """Largest excess (t, n) of any angle beyond its range, radians (0 when within)."""
    a = joint_angles(limits, local)
    return np.maximum(np.maximum(limits.lo - a, a - limits.hi), 0.0).max(-1)


def clamp_to_limits(limits: JointLimits, local: np.ndarray) -> tuple[np.ndarray, float]:
    """Clamp body_pose (t, j-1, 3, 3) into the ranges; returns (clamped copy, largest excess in rad)."""
    a = joint_angles(limits, local)
    excess = float(np.maximum(np.maximum(limits.lo - a, a - limits.hi), 0.0).max(initial=0.0))
    out = local.copy()
    if excess > 0.0:
        bad = np.any((a < limits.lo) | (a > limits.hi), -1)  # (t, n): only touch violating joints
        fixed = angles_to_local(limits, np.clip(a, limits.lo, limits.hi))
        sub = out[:, limits.rows]
        sub[bad] = fixed[bad]
        out[:, limits.rows] = sub
    return out, excess


def limit_table_names() -> list[str]:
    """Names of the limited joints of the table (left / centre rows)."""
    return list(LIMIT_TABLE)
