"""Per-frame foot poses from the footstep plan: planted, rolling and swinging feet.

A planted foot is posed by a *pivot* on its sole that does not move and a pitch about it:

* flat: pitch 0 (the whole sole on the ground, lowest sole vertex at y = 0);
* heel strike: the foot lands toes-up (pitch < 0) on the heel pivot and flattens about it;
  a backward step lands toes-down (pitch > 0) on the ball pivot instead;
* heel off: before lift-off the heel rises about the ball pivot (pitch > 0) while the toes bone
  stays flat on the ground, so the toe tip does not move.

Between lift-off and touch-down the ankle follows an eased path with a clearance bump,
the pitch eases from the push-off to the landing value, and the ankle is lifted wherever a
sole vertex would go below the ground. The foot's global rotation is ``R_y(yaw) R_x(pitch)``
(relative to rest); the toes' local rotation is ``R_x(-toe)`` (``toe`` = toe extension).
World frame Y up, ground y = 0; metres, radians, frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import so3
from .footsteps import Plant, Step
from .rig import LegGeometry, Rig
from .smoothing import bump, cosine_ease, minimum_jerk, running_max, smoothstep

STRIKE_S = 0.12  # heel strike to flat foot, seconds


@dataclass
class FootTrack:
    """One foot over n frames (see module docs)."""

    yaw: np.ndarray  # (n,)
    pitch: np.ndarray  # (n,)
    toe: np.ndarray  # (n,) toe extension relative to the foot, rad
    pivot: np.ndarray  # (n, 3) world pivot (planted frames; undefined in swing)
    pivot_rest: np.ndarray  # (n, 3) the same pivot in the rest frame
    planted: np.ndarray  # (n,) bool: on the ground (strike, flat or heel off)
    raisable: np.ndarray  # (n,) bool: late stance, where the heel may rise further for reach
    ankle: np.ndarray  # (n, 3) world ankle joint (filled by :func:`finish_swings`)


def _plant_pivot(plant: Plant, leg: LegGeometry, rig: Rig, which: str) -> tuple[np.ndarray, np.ndarray]:
    """World and rest position of the heel or ball pivot of a flat foot at ``plant``."""
    rest = leg.heel_pivot if which == "heel" else leg.ball_pivot
    ankle_rest = rig.joints[leg.ankle]
    ankle = np.array([plant.pos[0], rig.ankle_height, plant.pos[1]])
    return ankle + so3.rot_y(plant.yaw) @ (rest - ankle_rest), rest


def anchored_ankle(track: FootTrack, leg: LegGeometry, rig: Rig, idx: np.ndarray) -> np.ndarray:
    """(k, 3) ankle positions of planted frames ``idx`` from pivot, yaw and pitch."""
    R = so3.rot_y(track.yaw[idx]) @ so3.rot_x(track.pitch[idx])
    return track.pivot[idx] + (R @ (rig.joints[leg.ankle] - track.pivot_rest[idx])[..., None])[..., 0]


def plan_stances(initial: Plant, steps: list[Step], n: int, leg: LegGeometry, rig: Rig, fps: float) -> FootTrack:
    """Planted-phase poses of one foot (swing frames are filled later by :func:`finish_swings`)."""
    tr = FootTrack(*(np.zeros(n) for _ in range(3)), np.zeros((n, 3)), np.zeros((n, 3)),
                   np.zeros(n, bool), np.zeros(n, bool), np.full((n, 3), np.nan))
    plants = [initial] + [s.end for s in steps]
    for k, plant in enumerate(plants):
        s0 = 0 if k == 0 else steps[k - 1].land
        s1 = n - 1 if k == len(steps) else steps[k].lift
        if s0 >= n:
            break
        f = np.arange(s0, min(s1, n - 1) + 1)
        tr.planted[f], tr.yaw[f] = True, plant.yaw
        tr.pivot[f], tr.pivot_rest[f] = _plant_pivot(plant, leg, rig, "ball")
        length = s1 - s0 + 1
        n_strike = 0
        if k > 0 and steps[k - 1].land_pitch != 0.0:
            land = steps[k - 1].land_pitch
            n_strike = int(np.clip(round(STRIKE_S * fps), 1, max(length // 3, 1)))
            g = f[f < s0 + n_strike]
            tr.pitch[g] = land * (1.0 - smoothstep((g - s0 + 1) / n_strike))
            tr.pivot[g], tr.pivot_rest[g] = _plant_pivot(plant, leg, rig, "heel" if land < 0 else "ball")
        if k < len(steps):
            step = steps[k]
            n_off = int(np.clip(step.heel_off, 1, max(length - n_strike - 1, 1)))
            g = f[f > s1 - n_off]
            tr.pitch[g] = step.lift_pitch * smoothstep((g - (s1 - n_off)) / n_off)
            tr.toe[g] = tr.pitch[g]
            tr.raisable[f[f >= s0 + max(n_strike, length // 2)]] = True  # late stance (pivot: ball)
    return tr


def raise_heels(tr: FootTrack, leg: LegGeometry, rig: Rig, hip: np.ndarray, reach: float, max_pitch: float,
                max_dorsiflexion: float = 0.52) -> None:
    """Raise the heel (about the ball) in late stance where the leg needs it.

    The heel rises where the ankle would be out of reach of the hip (``hip`` (n, 3) world,
    ``reach`` the largest hip-ankle distance, m) or where the shin would lean forward over the
    foot by more than ``max_dorsiflexion`` (rad) relative to it (the knee placed as the leg IK
    places it, pointing along the foot). The pitch only grows within each late stance (running
    maximum), up to ``max_pitch`` rad.
    """
    idx = np.nonzero(tr.raisable)[0]
    if len(idx) == 0:
        return
    grid = np.linspace(0.0, max_pitch, 46)
    ankle_rest = rig.joints[leg.ankle]
    R = so3.rot_y(tr.yaw[idx])[:, None] @ so3.rot_x(grid)[None]  # (k, g, 3, 3)
    ankle = tr.pivot[idx, None] + np.einsum("kgij,j->kgi", R, ankle_rest - leg.ball_pivot)  # (k, g, 3)
    d = ankle - hip[idx, None]
    dist = np.linalg.norm(d, axis=-1)
    ok = dist <= reach  # (k, g)
    # knee as placed by the leg IK, and the shin's forward lean over the foot
    fwd = np.stack([np.sin(tr.yaw[idx]), np.zeros(len(idx)), np.cos(tr.yaw[idx])], -1)[:, None]
    u = d / dist[..., None]
    l1, l2 = leg.thigh_len, leg.shin_len
    dc = np.clip(dist, 1e-6, l1 + l2)
    cos_h = np.clip((l1 * l1 + dc * dc - l2 * l2) / (2 * l1 * dc), -1.0, 1.0)
    p = fwd - np.sum(fwd * u, -1, keepdims=True) * u
    p = p / np.maximum(np.linalg.norm(p, axis=-1, keepdims=True), 1e-9)
    knee = hip[idx, None] + l1 * (cos_h[..., None] * u + np.sqrt(1 - cos_h**2)[..., None] * p)
    shin = knee - ankle
    lean = np.arctan2(np.sum(shin * fwd, -1), shin[..., 1])  # + = knee ahead of the ankle
    ok &= lean - grid[None] <= max_dorsiflexion
    first = np.where(ok.any(1), ok.argmax(1), len(grid) - 1)
    need = grid[first]
    # running maximum within each contiguous late-stance run
    runs = np.split(np.arange(len(idx)), np.nonzero(np.diff(idx) > 1)[0] + 1)
    for r in runs:
        need[r] = running_max(need[r])
    new = np.maximum(tr.pitch[idx], need)
    tr.toe[idx] += new - tr.pitch[idx]
    tr.pitch[idx] = new


def sole_min_height(ankle: np.ndarray, R: np.ndarray, toe: np.ndarray, leg: LegGeometry, rig: Rig) -> np.ndarray:
    """(k,) lowest sole-vertex height for foot poses: ankle (k, 3), foot rotation R (k, 3, 3), toe (k,) rad."""
    a_rest, b_rest = rig.joints[leg.ankle], rig.joints[leg.ball]
    foot = ankle[:, None] + np.einsum("kij,nj->kni", R, leg.sole_points - a_rest)
    ball = ankle + R @ (b_rest - a_rest)
    Rt = R @ so3.rot_x(-toe)
    toes = ball[:, None] + np.einsum("kij,nj->kni", Rt, leg.sole_points - b_rest)
    y = np.where(leg.sole_on_toes[None], toes[..., 1], foot[..., 1])
    return y.min(-1)


def finish_swings(tr: FootTrack, steps: list[Step], leg: LegGeometry, rig: Rig) -> None:
    """Fill planted ankles, then each swing between its lift-off and touch-down poses (in place)."""
    n = len(tr.yaw)
    planted = np.nonzero(tr.planted)[0]
    tr.ankle[planted] = anchored_ankle(tr, leg, rig, planted)
    for step in steps:
        if step.lift >= n - 1:
            break
        a0, y0, p0, t0 = tr.ankle[step.lift], tr.yaw[step.lift], tr.pitch[step.lift], tr.toe[step.lift]
        end_pivot, end_rest = _plant_pivot(step.end, leg, rig, "heel" if step.land_pitch < 0 else "ball")
        R1 = so3.rot_y(step.end.yaw) @ so3.rot_x(step.land_pitch)
        a1 = end_pivot + R1 @ (rig.joints[leg.ankle] - end_rest)
        f = np.arange(step.lift + 1, min(step.land, n))
        u = (f - step.lift) / (step.land - step.lift)
        m = 0.5 * (minimum_jerk(u) + cosine_ease(u))  # peak speed 1.7x the mean, gentle ends
        yaw = y0 + so3.wrap_angle(step.end.yaw - y0) * m
        pitch = p0 * (1.0 - smoothstep(u / 0.5)) + step.land_pitch * smoothstep((u - 0.4) / 0.6)
        toe = t0 * (1.0 - smoothstep(u / 0.35))
        ankle = a0 + (a1 - a0) * m[:, None]
        ankle[:, 1] += step.clearance * bump(u)
        low = sole_min_height(ankle, so3.rot_y(yaw) @ so3.rot_x(pitch), toe, leg, rig)
        ankle[:, 1] += np.maximum(0.004 * bump(u) - low, 0.0)
        tr.ankle[f], tr.yaw[f], tr.pitch[f], tr.toe[f] = ankle, yaw, pitch, toe
