"""Temporal smoothing of per-frame outputs: the "per-frame + smoothing" baselines of ``moro bench accuracy``.

Both filters act on any array ``(t, ...)`` along its first (time) axis, each coordinate alone.

* :func:`gaussian_smooth`: convolution with a normalised Gaussian of ``sigma`` frames, truncated at
  ``ceil(3 sigma)`` frames, edges padded by repeating the first / last frame (non-causal, offline).
* :func:`one_euro` (Casiez, Roussel, Vogel, CHI 2012): causal, adaptive low-pass; with
  ``T = 1 / rate`` and ``alpha(fc) = 1 / (1 + 1 / (2 pi fc T))``::

      y_0 = x_0, dy_0 = 0
      dy_i = alpha(d_cutoff) (x_i - y_{i-1}) / T + (1 - alpha(d_cutoff)) dy_{i-1}
      y_i  = alpha(fc_i) x_i + (1 - alpha(fc_i)) y_{i-1},   fc_i = min_cutoff + beta |dy_i|

:func:`grid_search` picks a filter's parameters by the pooled error on a tuning split (val).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

__all__ = ["gaussian_smooth", "one_euro", "grid_search", "GAUSSIAN_GRID", "ONE_EURO_GRID"]

GAUSSIAN_GRID = {"sigma": (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)}
ONE_EURO_GRID = {"min_cutoff": (0.3, 0.6, 1.0, 2.0, 4.0), "beta": (0.0, 0.1, 0.5, 2.0, 8.0)}


def gaussian_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """(t, ...) -> (t, ...) Gaussian-smoothed along time (``sigma`` in frames; 0 = unchanged)."""
    x = np.asarray(x, np.float64)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0 frames, got {sigma}")
    if sigma == 0 or len(x) < 2:
        return x.copy()
    r = int(math.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    pad = np.concatenate([np.repeat(x[:1], r, 0), x, np.repeat(x[-1:], r, 0)])
    out = np.zeros_like(x)
    for i, w in enumerate(k):
        out += w * pad[i : i + len(x)]
    return out


def _alpha(cutoff, period: float):
    return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * cutoff * period))


def one_euro(x: np.ndarray, rate: float, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> np.ndarray:
    """(t, ...) -> (t, ...) one-euro filtered along time (module docstring); ``rate`` in frames/s, cutoffs in Hz."""
    x = np.asarray(x, np.float64)
    if rate <= 0 or min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
        raise ValueError(f"one-euro needs rate, min_cutoff, d_cutoff > 0 and beta >= 0; got {rate}, {min_cutoff}, "
                         f"{d_cutoff}, {beta}")
    T = 1.0 / rate
    out = np.empty_like(x)
    if len(x) == 0:
        return out
    y, dy = x[0].copy(), np.zeros_like(x[0])
    out[0] = y
    a_d = _alpha(d_cutoff, T)
    for i in range(1, len(x)):
        dy = a_d * (x[i] - y) / T + (1 - a_d) * dy
        a = _alpha(min_cutoff + beta * np.abs(dy), T)
        y = a * x[i] + (1 - a) * y
        out[i] = y
    return out


def grid_search(
    apply: Callable[..., list[np.ndarray]],
    grid: Mapping[str, Sequence[float]],
    score: Callable[[list[np.ndarray]], float],
) -> tuple[dict[str, float], float, list[tuple[dict, float]]]:
    """The parameters of ``grid`` that minimise ``score(apply(**params))``.

    Args:
        apply: ``apply(**params) -> outputs`` (e.g. the filtered joints of every tuning sequence).
        grid: name -> candidate values; every combination is tried.
        score: outputs -> error (lower is better).
    Returns:
        ``(best params, best score, [(params, score), ...] for every combination)``.
    """
    names = list(grid)
    tried = []
    for values in itertools.product(*(grid[n] for n in names)):
        params = dict(zip(names, values))
        tried.append((params, float(score(apply(**params)))))
    best = min(tried, key=lambda p: p[1])
    return best[0], best[1], tried
