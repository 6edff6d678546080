"""Time profiles and filters for procedural motion: ease curves, envelopes, smoothing.

All work on float64 numpy arrays along axis 0 (time, frames). ``conservative_smooth`` is the
one non-standard piece: it smooths a non-negative correction signal so that the result is never
below the input, which keeps a constraint (a reachable foot, a floor) satisfied after smoothing.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d, maximum_filter1d, uniform_filter1d


def smoothstep(x: np.ndarray | float) -> np.ndarray:
    """Cubic ease ``3x^2 - 2x^3`` of x clipped to [0, 1] (zero slope at both ends)."""
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def minimum_jerk(x: np.ndarray | float) -> np.ndarray:
    """Quintic ease ``10x^3 - 15x^4 + 6x^5`` of x clipped to [0, 1] (zero velocity and acceleration at ends)."""
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return x * x * x * (10.0 + x * (-15.0 + 6.0 * x))


def cosine_ease(x: np.ndarray | float) -> np.ndarray:
    """Sinusoidal ease ``(1 - cos(pi x)) / 2`` of x clipped to [0, 1] (zero end velocities, peak speed pi/2)."""
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return 0.5 * (1.0 - np.cos(np.pi * x))


def bump(x: np.ndarray | float) -> np.ndarray:
    """Smooth bump ``64 x^3 (1-x)^3`` on [0, 1] (peak 1 at 0.5, zero outside, flat ends)."""
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return 64.0 * (x * (1.0 - x)) ** 3


def envelope(t: np.ndarray, start: float, end: float, ramp_in: float, ramp_out: float) -> np.ndarray:
    """Smooth trapezoid over times ``t``: 0 before ``start``, eases to 1 over ``ramp_in``, holds,
    eases back to 0 over ``ramp_out`` ending at ``end`` (same time unit as t)."""
    up = smoothstep((t - start) / max(ramp_in, 1e-9))
    down = smoothstep((end - t) / max(ramp_out, 1e-9))
    return np.minimum(up, down)


def gaussian_smooth(x: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Gaussian blur along axis 0 (edges extended by their value); identity for sigma <= 0."""
    x = np.asarray(x, dtype=np.float64)
    if sigma_frames <= 0 or x.shape[0] < 2:
        return x.copy()
    return gaussian_filter1d(x, sigma_frames, axis=0, mode="nearest")


def conservative_smooth(x: np.ndarray, radius: int) -> np.ndarray:
    """Smooth a correction signal (T,) so that the result is >= x everywhere.

    A running maximum of radius r followed by two box filters of radius r/2 (a triangle
    kernel whose support is within r): every output sample averages maxima whose windows all
    contain the sample itself, hence output >= input.
    """
    x = np.asarray(x, dtype=np.float64)
    if radius < 2 or x.shape[0] < 2:
        return x.copy()
    half = radius // 2
    y = maximum_filter1d(x, 2 * radius + 1, axis=0, mode="nearest")
    for _ in range(2):
        y = uniform_filter1d(y, 2 * half + 1, axis=0, mode="nearest")
    return np.maximum(y, x)


def running_max(x: np.ndarray) -> np.ndarray:
    """Cumulative maximum along axis 0."""
    return np.maximum.accumulate(np.asarray(x, dtype=np.float64), axis=0)
