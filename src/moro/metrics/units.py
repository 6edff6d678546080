"""Report units of every metric (the paper's tables) and the SI -> report conversion factors.

Inside moro everything is metres and seconds; each metric function converts once, at its
return, to the unit listed here (and documented in its docstring).
"""

from __future__ import annotations

M_TO_MM = 1000.0
"""metres -> millimetres (MPJPE, PVE, GMPJPE, W/WA-MPJPE, penetration depth, foot sliding)."""

JERK_TO_REPORT = 0.1
"""m/s^3 -> the jitter report unit, 10 m/s^3."""

TO_PERCENT = 100.0
"""fraction -> % (RTE, skating ratio, penetration frequency)."""

REPORT_UNITS: dict[str, str] = {
    "pa_mpjpe": "mm",
    "mpjpe": "mm",
    "mpjpe_vis": "mm",
    "mpjpe_occ": "mm",
    "pve": "mm",
    "accel_error": "m/s^2",
    "gmpjpe": "mm",
    "w_mpjpe": "mm",
    "wa_mpjpe": "mm",
    "rte": "%",
    "g_accel_error": "m/s^2",
    "jitter": "10 m/s^3",
    "foot_sliding": "mm/frame",
    "skating_ratio": "%",
    "ground_penetration_frequency": "%",
    "ground_penetration_depth": "mm",
    "accel_norm": "m/s^2",
}
"""Metric name -> unit of the values it returns (for table headers)."""
