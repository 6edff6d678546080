"""The motion vocabulary and random schedules of motion segments.

A sequence is a schedule: consecutive :class:`Segment` s, each one motion type with its own
randomly drawn parameters (speeds, turn rates, depths, arm targets, ...). The later stages turn
the schedule into a root path (``base_path.py``), footsteps (``footsteps.py``) and postural
layers (``posture.py``); transitions are smooth there, so segments may follow in any order.

Units: durations and knot times in seconds, speeds m/s, turn rates rad/s, angles radians,
distances metres. Times inside ``params`` are relative to the segment start.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LOCOMOTION_TYPES = ("walk", "jog", "side_step", "back_step", "turn")
ACTION_TYPES = ("idle", "squat", "sit", "reach", "pick_up", "wave", "gesture")
MOTION_TYPES: tuple[str, ...] = LOCOMOTION_TYPES + ACTION_TYPES

# Default sampling weights of mixed sequences (walking dominates everyday motion).
DEFAULT_WEIGHTS: dict[str, float] = {
    "walk": 3.0, "jog": 1.0, "side_step": 0.7, "back_step": 0.6, "turn": 0.7,
    "idle": 1.2, "squat": 0.8, "sit": 0.6, "reach": 0.8, "pick_up": 0.8, "wave": 0.7, "gesture": 1.0,
}

# Duration range of one segment, seconds.
DURATION_S: dict[str, tuple[float, float]] = {
    "walk": (3.0, 8.0), "jog": (2.5, 6.0), "side_step": (2.0, 4.0), "back_step": (2.0, 3.5),
    "turn": (2.0, 3.0), "idle": (1.5, 4.0), "squat": (3.0, 5.0), "sit": (4.5, 8.0),
    "reach": (2.5, 4.0), "pick_up": (3.5, 5.0), "wave": (2.5, 4.5), "gesture": (2.5, 6.0),
}

WALK_SPEED = (0.6, 1.8)  # m/s
JOG_SPEED = (2.0, 3.0)  # m/s
STEP_SPEED = (0.25, 0.5)  # side steps, m/s
BACK_SPEED = (0.3, 0.7)  # backward steps, m/s


@dataclass(frozen=True)
class Segment:
    """One scheduled motion: ``kind`` over frames [start, end) (start may be negative: pre-roll)."""

    kind: str
    start: int
    end: int
    params: dict = field(default_factory=dict, compare=False)

    @property
    def frames(self) -> int:
        return self.end - self.start


def _knots(rng: np.random.Generator, duration: float, gap: tuple[float, float], draw) -> list[tuple[float, float]]:
    """Piecewise-constant knots [(t, value)] from t = 0, a new value every ``gap`` seconds."""
    knots, t = [], 0.0
    while t < duration:
        knots.append((t, float(draw())))
        t += rng.uniform(*gap)
    return knots


def _side(rng: np.random.Generator) -> str:
    return str(rng.choice(["L", "R", "L", "R", "both"]))


def sample_params(kind: str, duration: float, rng: np.random.Generator) -> dict:
    """Random parameters of one segment of ``kind`` lasting ``duration`` seconds."""
    if kind == "walk":
        speed = rng.uniform(*WALK_SPEED)

        def turn():  # straight, or a curve of radius >= 1.4 m, at most 1.1 rad/s
            return 0.0 if rng.random() < 0.4 else np.clip(rng.choice([-1, 1]) * rng.uniform(0.1, 0.7) * speed, -1.1, 1.1)

        return {"speed_knots": _knots(rng, duration, (1.0, 3.0), lambda: np.clip(speed * rng.uniform(0.85, 1.15), *WALK_SPEED)),
                "turn_knots": _knots(rng, duration, (1.0, 3.0), turn)}
    if kind == "jog":
        speed = rng.uniform(*JOG_SPEED)
        return {"speed_knots": _knots(rng, duration, (1.5, 3.0), lambda: np.clip(speed * rng.uniform(0.9, 1.1), *JOG_SPEED)),
                "turn_knots": _knots(rng, duration, (1.5, 3.0), lambda: rng.choice([-1, 0, 0, 1]) * rng.uniform(0.05, 0.3) * speed)}
    if kind == "side_step":
        return {"direction": float(rng.choice([-1.0, 1.0])), "speed": rng.uniform(*STEP_SPEED)}
    if kind == "back_step":
        return {"speed": rng.uniform(*BACK_SPEED)}
    if kind == "turn":
        return {"angle": float(rng.choice([-1.0, 1.0]) * rng.uniform(np.pi / 3, np.pi)), "rate": rng.uniform(1.0, 1.8)}
    if kind == "idle":
        return {"shift_period": rng.uniform(2.0, 4.5), "shift_amp": rng.uniform(0.3, 1.0), "shift_phase": rng.uniform(0, 2 * np.pi),
                "look_knots": _knots(rng, duration, (0.8, 2.0), lambda: rng.uniform(-0.6, 0.6)),
                "arm_elev": rng.uniform(0.0, 0.25), "arm_elbow": rng.uniform(0.1, 0.6)}
    if kind == "squat":
        return {"compression": rng.uniform(0.5, 0.72), "shin_tilt": rng.uniform(0.25, 0.5),
                "arm_elev": rng.uniform(0.4, 1.4), "arm_elbow": rng.uniform(0.1, 0.9), "hold": rng.uniform(0.1, 0.4),
                "reps": int(rng.integers(1, 3))}
    if kind == "sit":
        return {"seat": rng.uniform(0.5, 0.62), "lean": rng.uniform(-0.05, 0.15), "hold": rng.uniform(0.35, 0.6),
                "arm_elbow": rng.uniform(0.6, 1.4), "arm_elev": rng.uniform(0.2, 0.6)}
    if kind == "reach":
        return {"side": _side(rng), "elev": rng.uniform(1.0, 2.7), "plane": rng.uniform(0.3, 1.7),
                "elbow": rng.uniform(0.0, 0.35), "lean": rng.uniform(0.0, 0.25), "hold": rng.uniform(0.15, 0.4)}
    if kind == "pick_up":
        return {"side": _side(rng), "forward": rng.uniform(0.3, 0.55), "lateral": rng.uniform(-0.1, 0.25),
                "height": rng.uniform(0.08, 0.3), "compression": rng.uniform(0.62, 0.85), "hold": rng.uniform(0.1, 0.25)}
    if kind == "wave":
        return {"side": str(rng.choice(["L", "R", "L", "R", "both"])), "freq": rng.uniform(1.5, 3.0),
                "elev": rng.uniform(2.0, 2.6), "elbow": rng.uniform(0.6, 1.5), "amp": rng.uniform(0.2, 0.35)}
    if kind == "gesture":
        def pose():
            return (rng.uniform(0.1, 1.3), rng.uniform(0.4, 1.6), rng.uniform(-0.5, 0.5), rng.uniform(0.4, 1.9))
        return {"knots_L": _knots(rng, duration, (0.5, 1.3), lambda: 0.0), "poses_L": [pose() for _ in range(12)],
                "knots_R": _knots(rng, duration, (0.5, 1.3), lambda: 0.0), "poses_R": [pose() for _ in range(12)],
                "active": _side(rng), "nod": rng.uniform(0.0, 0.25)}
    raise ValueError(f"unknown motion type {kind!r}; valid types: {', '.join(MOTION_TYPES)}")


def sample_schedule(
    rng: np.random.Generator, weights: dict[str, float], start: int, end: int, fps: float
) -> list[Segment]:
    """Consecutive segments covering frames [start, end), types drawn with ``weights``.

    An action type is not drawn twice in a row when another type is allowed (two walks in a
    row are fine: a change of speed and direction).
    """
    kinds = [k for k, w in weights.items() if w > 0]
    p = np.array([weights[k] for k in kinds], dtype=np.float64)
    segments: list[Segment] = []
    t = start
    while t < end:
        probs = p.copy()
        if segments and len(kinds) > 1 and segments[-1].kind in ACTION_TYPES:
            probs[kinds.index(segments[-1].kind)] = 0.0
        kind = kinds[rng.choice(len(kinds), p=probs / probs.sum())]
        duration = rng.uniform(*DURATION_S[kind])
        n = max(int(round(duration * fps)), 1)
        segments.append(Segment(kind, t, t + n, sample_params(kind, n / fps, rng)))
        t += n
    return segments
