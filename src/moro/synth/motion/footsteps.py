"""Footstep planning: when each foot lifts, where and how it lands, from the base path.

Each foot has a *desired placement* at every frame: the base point shifted sideways by the
stance half-width, with the base heading plus a small toe-out. Two modes drive the steps:

* rhythmic (the base moves or turns within the next 0.5 s): feet alternate at the cadence of
  the current speed and gait (walk or jog); a step lifting at t lands after the swing time and
  aims at the desired placement at the middle of its coming stance, so the foot lands ahead of
  the pelvis and leaves behind it. Running gaits have a short stance and swings that overlap
  (flight phases).
* standing: a foot steps only when its desired placement drifted away (turning in place,
  the end of a walk, a weight shift that moved the base), one foot at a time.

Targets are kept feasible: never crossing the other foot's line, never farther from the
stance foot than a stride limit. Frames are integers; a step is stance up to ``lift``
(inclusive), swing strictly between ``lift`` and ``land``, stance again from ``land``.
Distances metres, angles radians, times frames unless a name ends in ``_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base_path import BasePath, forward_dir, left_dir
from .so3 import wrap_angle

MOVING_SPEED = 0.12  # m/s: above this within the look-ahead the gait is rhythmic
MOVING_TURN = 0.3  # rad/s
LOOKAHEAD_S = 0.5
STANDING_TRIGGER = 0.06  # m (+ 0.2 m per rad of yaw error): a standing foot steps beyond this drift
SKIP_BELOW = 0.025  # m: a rhythmic step shorter than this is skipped (the gait is coming to rest)


@dataclass
class Plant:
    """A foot on the ground: flat-foot ankle position (x, z) in metres and yaw in radians."""

    pos: np.ndarray
    yaw: float


@dataclass
class Step:
    """One step of one foot (frames are indices of the planned range)."""

    side: str  # "L" or "R"
    lift: int  # last stance frame before the swing
    land: int  # first stance frame after the swing (> lift)
    start: Plant
    end: Plant
    lift_pitch: float  # heel rise (rad, >= 0) reached at lift-off, rotating about the ball
    land_pitch: float  # foot pitch at touch-down: < 0 heel strike (toes up), > 0 toe strike
    heel_off: int  # frames before ``lift`` over which the heel rises
    clearance: float  # swing apex lift of the ankle, metres


@dataclass
class GaitConfig:
    """Per-sequence gait style (drawn once per sequence in the generator)."""

    fps: float
    leg_length: float  # hip-to-ground, metres (cadence scales with sqrt(0.87 / leg_length))
    toe_out: float = 0.1  # rad, each foot turned outward from the heading
    cadence_scale: float = 1.0  # personal cadence factor (~0.93-1.07)
    placement: float = 0.5  # where in its stance a foot is under the base (0.5 = mid-stance)


def cadence(speed: np.ndarray | float, jog: np.ndarray | float, cfg: GaitConfig) -> np.ndarray:
    """Steps per second for planar speed (m/s) and running weight jog in [0, 1]."""
    speed = np.abs(np.asarray(speed, dtype=np.float64))
    walk = 1.5 + 0.45 * np.minimum(speed, 2.0)
    run = 2.55 + 0.12 * np.clip(speed - 2.0, 0.0, 1.5)
    return cfg.cadence_scale * np.sqrt(0.87 / cfg.leg_length) * (walk * (1 - jog) + run * jog)


def duty_factor(speed: np.ndarray | float, jog: np.ndarray | float) -> np.ndarray:
    """Fraction of a gait cycle a foot is on the ground (walking ~0.6, running ~0.37)."""
    speed = np.abs(np.asarray(speed, dtype=np.float64))
    return (0.64 - 0.05 * np.clip(speed / 1.8, 0, 1)) * (1 - jog) + 0.37 * jog


class _Desired:
    """Desired placement of each foot at every frame: ``desired(side, t)`` -> :class:`Plant` (t clamped to the range)."""

    def __init__(self, path: BasePath, cfg: GaitConfig):
        self.n = len(path.heading)
        left = left_dir(path.heading)
        self.pos = {s: path.pos + sgn * path.half_width[:, None] * left for s, sgn in (("L", 1.0), ("R", -1.0))}
        self.yaw = {s: path.heading + sgn * cfg.toe_out for s, sgn in (("L", 1.0), ("R", -1.0))}

    def __call__(self, side: str, t: float) -> Plant:
        i = min(max(int(round(t)), 0), self.n - 1)
        return Plant(self.pos[side][i], float(self.yaw[side][i]))


def _drift(a: Plant, b: Plant) -> float:
    d = a.pos - b.pos
    return float(np.sqrt(d[0] * d[0] + d[1] * d[1]) + 0.2 * abs(wrap_angle(a.yaw - b.yaw)))


def _feasible(target: Plant, other: Plant, side: str, path: BasePath, t: int, jog: float, leg: float) -> Plant:
    """Keep ``target`` on its own side of the stance foot and within a stride of it."""
    s = 1.0 if side == "L" else -1.0
    i = int(np.clip(t, 0, len(path.heading) - 1))
    left = left_dir(path.heading[i])
    gap = 0.12 * (1.0 - 0.4 * jog)
    lateral = s * float((target.pos - other.pos) @ left)
    pos = target.pos + (s * (gap - lateral) * left if lateral < gap else 0.0)
    stride = leg * (0.95 + 0.55 * jog)
    d = pos - other.pos
    n = float(np.linalg.norm(d))
    if n > stride:
        pos = other.pos + d * (stride / n)
    return Plant(pos, target.yaw)


def _moving_mask(path: BasePath, fps: float) -> np.ndarray:
    """(n,) bool: the base moves or turns within the look-ahead window starting at each frame."""
    w = int(LOOKAHEAD_S * fps) + 1
    active = (path.speed > MOVING_SPEED) | (np.abs(path.yaw_rate) > MOVING_TURN)
    # a forward-looking running "any": reverse, cumulative window via convolution
    padded = np.concatenate([active.astype(float), np.zeros(w)])
    return np.convolve(padded, np.ones(w), "full")[w - 1: w - 1 + len(active)] > 0


def _style(start: Plant, end: Plant, path: BasePath, t: int, rhythmic: bool, stance: int, fps: float):
    """(lift_pitch, land_pitch, heel_off frames, clearance) of a step from its geometry and gait."""
    i = int(np.clip(t, 0, len(path.heading) - 1))
    jog, speed = float(path.jog[i]), float(path.speed[i])
    d = end.pos - start.pos
    length = float(np.linalg.norm(d))
    along = float(d @ forward_dir(path.heading[i])) / max(length, 1e-9)
    size = min(length / 0.8, 1.0)
    if not rhythmic or length < 0.15:
        return 0.12 * size + 0.05, 0.0, max(int(0.15 * fps), 1), 0.035 + 0.02 * size
    if along > 0.6:  # forward: heel strike, heel rise at push-off
        lift = (0.3 + 0.3 * size) * (1 - jog) + 0.7 * jog
        land = -(0.08 + 0.2 * size) * (1 - jog) - 0.1 * jog
    elif along < -0.6:  # backward: toe strike
        lift, land = 0.12, 0.15
    else:  # sideways
        lift, land = 0.1, 0.0
    heel_off = max(int(round((0.45 * (1 - jog) + 0.55 * jog) * stance)), 1)
    clearance = (0.045 + 0.02 * min(speed, 1.8)) * (1 - jog) + (0.12 + 0.04 * min(speed - 2.0, 1.0)) * jog
    return lift, land, heel_off, clearance


def plan_footsteps(path: BasePath, cfg: GaitConfig) -> tuple[dict[str, Plant], list[Step]]:
    """Plan all steps over the path's frames.

    Returns:
        initial plants per side ({"L": Plant, "R": Plant}) and the steps sorted by lift frame.
    """
    fps, n = cfg.fps, len(path.heading)
    desired = _Desired(path, cfg)
    moving = _moving_mask(path, fps)
    speed = path.speed
    plants = {s: desired(s, 0) for s in ("L", "R")}
    initial = {s: Plant(p.pos.copy(), p.yaw) for s, p in plants.items()}
    landed = {"L": -10**6, "R": -10**6}  # frame each foot last touched down
    steps: list[Step] = []
    last: str | None = None
    t = 0
    while t < n:
        rhythmic = bool(moving[t])
        f = float(cadence(speed[t], path.jog[t], cfg))
        beta = float(duty_factor(speed[t], path.jog[t]))
        cycle = 2.0 / f * fps  # frames
        if rhythmic:
            swing = max(int(round((1 - beta) * cycle)), 3)
            stance = beta * cycle
            order = ["R", "L"] if last == "L" else ["L", "R"]
            if last is None:  # starting: the foot that has farther to go (ties: the side we move to)
                lat = path.vel_body[min(t + int(0.3 * fps), n - 1), 0] + 0.3 * path.yaw_rate[t]
                score = {s: _drift(desired(s, t + swing + stance / 2), plants[s])
                         + (0.03 if (lat > 0) == (s == "L") else 0.0) for s in ("L", "R")}
                order = sorted(("L", "R"), key=lambda s: -score[s])
            taken = False
            for k, side in enumerate(order):
                if landed[side] > t - 2:  # still in the air or just landed
                    if k == 0 and last is not None:
                        break  # wait for the foot whose turn it is
                    continue
                other = "R" if side == "L" else "L"
                land = t + swing
                goal = desired(side, land + cfg.placement * stance)
                goal = _feasible(goal, plants[other], side, path, land, float(path.jog[t]), cfg.leg_length)
                if _drift(goal, plants[side]) < SKIP_BELOW:
                    continue
                lift_p, land_p, heel_off, clear = _style(plants[side], goal, path, t, True, int(stance), fps)
                steps.append(Step(side, t, land, plants[side], goal, lift_p, land_p, heel_off, clear))
                plants[side], landed[side], last, taken = goal, land, side, True
                t += max(int(round(cycle / 2)), 2)
                break
            if not taken:
                if all(landed[s] <= t - 2 for s in ("L", "R")):
                    last = None  # both feet have arrived: the gait restarts from the farther foot
                t += 1
            continue
        # standing: step only a foot that drifted, one at a time
        last = None
        swing = int(round(0.4 * fps))
        drift = {s: _drift(desired(s, t + swing), plants[s]) for s in ("L", "R")}
        side = max(drift, key=drift.get)
        if drift[side] < STANDING_TRIGGER or max(landed.values()) > t - int(0.1 * fps):
            t += 1
            continue
        other = "R" if side == "L" else "L"
        goal = desired(side, t + swing + int(0.15 * fps))
        goal = _feasible(goal, plants[other], side, path, t + swing, 0.0, cfg.leg_length)
        lift_p, land_p, heel_off, clear = _style(plants[side], goal, path, t, False, 0, fps)
        steps.append(Step(side, t, t + swing, plants[side], goal, lift_p, land_p, heel_off, clear))
        plants[side], landed[side] = goal, t + swing
        t += swing + int(0.1 * fps)
    return initial, steps
