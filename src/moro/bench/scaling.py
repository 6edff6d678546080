"""Does time grow linearly and memory stay flat with the video length? (``moro bench speed`` scaling)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["linear_fit", "memory_ratio"]


def linear_fit(lengths: Sequence[float], seconds: Sequence[float]) -> dict:
    """Least-squares ``seconds = intercept + slope * frames`` and how linear the data are.

    Returns:
        ``{"intercept_s", "slope_s_per_frame", "r2", "max_rel_residual"}``: r2 is the coefficient of
        determination; ``max_rel_residual`` the largest ``|fit - measured| / measured`` over the
        lengths of at least 10 % of the longest (short runs are dominated by fixed costs).
    """
    x, y = np.asarray(lengths, np.float64), np.asarray(seconds, np.float64)
    if x.shape != y.shape or x.size < 2:
        raise ValueError(f"need at least two (length, seconds) pairs of equal count, got {x.size} and {y.size}")
    A = np.stack([np.ones_like(x), x], 1)
    (a, b), *_ = np.linalg.lstsq(A, y, rcond=None)
    pred = a + b * x
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - pred) ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    big = x >= 0.1 * x.max()
    rel = float(np.max(np.abs(pred[big] - y[big]) / y[big]))
    return {"intercept_s": float(a), "slope_s_per_frame": float(b), "r2": r2, "max_rel_residual": rel}


def memory_ratio(peak_mb: Mapping[int, float], long: int, short: int) -> float:
    """Peak memory at ``long`` frames over that at ``short`` frames (1.0 = flat)."""
    if long not in peak_mb or short not in peak_mb:
        raise ValueError(f"need peak memory at {long} and {short} frames, have {sorted(peak_mb)}")
    return float(peak_mb[long]) / float(peak_mb[short])
