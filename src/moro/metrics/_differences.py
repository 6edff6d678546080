"""Finite differences along the frame axis, scaled to SI derivatives (shared by the motion metrics)."""

from __future__ import annotations

import torch


def second_difference(x: torch.Tensor, fps: float) -> torch.Tensor:
    """Acceleration ``fps^2 (x_{t-1} - 2 x_t + x_{t+1})`` for t = 1..F-2.

    Args:
        x: (F, N, 3) positions, metres.
        fps: frames per second.
    Returns:
        (F-2, N, 3) accelerations, m/s^2.
    """
    return (x[:-2] - 2.0 * x[1:-1] + x[2:]) * fps**2


def third_difference(x: torch.Tensor, fps: float) -> torch.Tensor:
    """Jerk ``fps^3 (x_{t+3} - 3 x_{t+2} + 3 x_{t+1} - x_t)`` for t = 0..F-4.

    Args:
        x: (F, N, 3) positions, metres.
        fps: frames per second.
    Returns:
        (F-3, N, 3) jerks, m/s^3.
    """
    return (x[3:] - 3.0 * x[2:-1] + 3.0 * x[1:-2] - x[:-3]) * fps**3
