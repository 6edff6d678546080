"""The base path: where the body is going, as a smooth planar trajectory with a heading.

The *base* is a point on the ground under the pelvis that ignores gait oscillations and
postural shifts; feet are placed around it (``footsteps.py``) and the pelvis follows it
(``generator.py``). Each locomotion segment sets a target body-frame velocity and a yaw rate;
targets are Gaussian-smoothed across segment boundaries (bounded accelerations, smooth starts
and stops) and integrated.

World frame: Y up; the plane is (x, z). Heading psi = 0 faces +Z; the body's forward is
``(sin psi, cos psi)`` and its left is ``(cos psi, -sin psi)`` in (x, z).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .schedule import Segment
from .smoothing import gaussian_smooth

VELOCITY_SMOOTH_S = 0.35  # std of the Gaussian over velocity targets (smooth starts and stops)
JOG_SMOOTH_S = 0.3
MAX_ACCEL = 2.0  # m/s^2: people need a few steps to reach a run; the feet must keep up with the base
MAX_YAW_ACCEL = 4.0  # rad/s^2


@dataclass
class BasePath:
    """Per-frame base trajectory over n frames (all float64)."""

    pos: np.ndarray  # (n, 2) ground point (x, z), metres
    heading: np.ndarray  # (n,) radians about +Y
    vel_body: np.ndarray  # (n, 2) (lateral = left, forward) velocity in the heading frame, m/s
    yaw_rate: np.ndarray  # (n,) rad/s
    jog: np.ndarray  # (n,) in [0, 1]: 0 walking gait, 1 running gait
    half_width: np.ndarray  # (n,) lateral distance of each ankle from the base line, metres

    @property
    def speed(self) -> np.ndarray:
        """(n,) planar speed, m/s."""
        return np.linalg.norm(self.vel_body, axis=-1)


def forward_dir(heading: np.ndarray) -> np.ndarray:
    """(..., 2) unit forward vector (x, z) for heading (...) radians."""
    return np.stack([np.sin(heading), np.cos(heading)], -1)


def left_dir(heading: np.ndarray) -> np.ndarray:
    """(..., 2) unit left vector (x, z) for heading (...) radians."""
    return np.stack([np.cos(heading), -np.sin(heading)], -1)


def _knot_signal(knots: list[tuple[float, float]], n: int, fps: float) -> np.ndarray:
    t = np.arange(n) / fps
    times = np.array([k[0] for k in knots])
    values = np.array([k[1] for k in knots])
    return values[np.searchsorted(times, t, side="right") - 1]


def _active_window(n: int, fps: float, lead_s: float = 0.25, tail_s: float = 0.45) -> np.ndarray:
    """(n,) 1 inside the segment but off for its first ``lead_s`` and last ``tail_s`` seconds."""
    t = np.arange(n) / fps
    return ((t >= min(lead_s, 0.2 * n / fps)) & (t < n / fps - min(tail_s, 0.3 * n / fps))).astype(np.float64)


def _rate_limited(x: np.ndarray, max_step: float) -> np.ndarray:
    """Limit |x[t] - x[t-1]| to ``max_step`` (forward then backward pass), then a light blur."""
    y = x.copy()
    for t in range(1, len(y)):
        y[t] = min(max(y[t], y[t - 1] - max_step), y[t - 1] + max_step)
    for t in range(len(y) - 2, -1, -1):
        y[t] = min(max(y[t], y[t + 1] - max_step), y[t + 1] + max_step)
    return gaussian_smooth(y, 2.0)


def build_base_path(
    segments: list[Segment], fps: float, heading0: float, pos0: np.ndarray, half_width: float, rest_frames: int = 0,
    speed_scale: float = 1.0,
) -> BasePath:
    """Integrate the segments' velocity targets into a :class:`BasePath`.

    Args:
        segments: consecutive segments; frame 0 of the result is ``segments[0].start``.
        fps: frames per second.
        heading0: initial heading, radians; pos0: (2,) initial base position (x, z), metres.
        half_width: standing lateral ankle distance from the base line, metres.
        rest_frames: frames at the start held at rest (the body starts standing, then speeds up).
        speed_scale: factor on all planar speeds (shorter legs walk a little slower).
    """
    origin = segments[0].start
    n = segments[-1].end - origin
    v_lat, v_fwd, omega, jog = (np.zeros(n) for _ in range(4))
    for seg in segments:
        sl = slice(seg.start - origin, seg.end - origin)
        m, p = seg.frames, seg.params
        if seg.kind in ("walk", "jog"):
            v_fwd[sl] = _knot_signal(p["speed_knots"], m, fps)
            omega[sl] = _knot_signal(p["turn_knots"], m, fps)
            jog[sl] = 1.0 if seg.kind == "jog" else 0.0
        elif seg.kind == "side_step":
            v_lat[sl] = p["direction"] * p["speed"] * _active_window(m, fps)
        elif seg.kind == "back_step":
            v_fwd[sl] = -p["speed"] * _active_window(m, fps)
        elif seg.kind == "turn":
            usable = 0.75 * m / fps
            rate = max(p["rate"], abs(p["angle"]) / max(usable, 1e-6))
            on = int(round(abs(p["angle"]) / rate * fps))
            first = (m - on) // 2
            omega[seg.start - origin + first: seg.start - origin + first + on] = np.sign(p["angle"]) * rate
    v_lat, v_fwd = v_lat * speed_scale, v_fwd * speed_scale
    v_lat[:rest_frames], v_fwd[:rest_frames], omega[:rest_frames] = 0.0, 0.0, 0.0
    sigma = VELOCITY_SMOOTH_S * fps
    v_lat, v_fwd = (_rate_limited(gaussian_smooth(x, sigma), MAX_ACCEL / fps) for x in (v_lat, v_fwd))
    omega = _rate_limited(gaussian_smooth(omega, sigma), MAX_YAW_ACCEL / fps)
    jog = gaussian_smooth(jog, JOG_SMOOTH_S * fps)
    heading = heading0 + np.concatenate([[0.0], np.cumsum(omega[:-1])]) / fps
    vel_world = v_lat[:, None] * left_dir(heading) + v_fwd[:, None] * forward_dir(heading)
    pos = pos0[None] + np.concatenate([np.zeros((1, 2)), np.cumsum(vel_world[:-1], 0)]) / fps
    speed = np.hypot(v_lat, v_fwd)
    width = half_width * (1.0 - 0.12 * np.clip(speed / 1.5, 0, 1) - 0.25 * jog)
    return BasePath(pos=pos, heading=heading, vel_body=np.stack([v_lat, v_fwd], -1), yaw_rate=omega, jog=jog,
                    half_width=width)
