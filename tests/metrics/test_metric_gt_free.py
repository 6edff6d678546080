"""moro.metrics.gt_free: skating ratio, ground penetration, acceleration norm by hand."""

from __future__ import annotations

import pytest
import torch

from moro.metrics import accel_norm, ground_penetration, pool_frames, skating_ratio

FPS = 30.0


def _feet_sequence() -> torch.Tensor:
    """4 frames; ankles (7, 8) 0.10 m and toes (10, 11) 0.05 m above y = 0.

    step 0 -> 1: both legs slide at 0.3 m/s along x                   -> skates
    step 1 -> 2: only the left leg slides                              -> does not
    step 2 -> 3: both slide, but the left ankle is at 0.20 m at frame 2 -> does not
    """
    j = torch.zeros(4, 22, 3, dtype=torch.float64)
    j[:, [7, 8], 1] = 0.10
    j[:, [10, 11], 1] = 0.05
    step = 0.3 / FPS
    left_x = torch.tensor([0.0, 1.0, 2.0, 3.0]) * step
    right_x = torch.tensor([0.0, 1.0, 1.0, 2.0]) * step
    j[:, [7, 10], 0] = left_x[:, None].double()
    j[:, [8, 11], 0] = right_x[:, None].double()
    j[2, 7, 1] = 0.20
    return j


def test_metric_skating_ratio_by_hand():
    j = _feet_sequence()
    out = skating_ratio(j, FPS)
    torch.testing.assert_close(out, torch.tensor([100.0, 0.0, 0.0], dtype=torch.float64))
    assert pool_frames(out).mean == pytest.approx(100.0 / 3)
    # the same motion with the floor moved up by 1 m, or with Z as the up axis
    lifted = j.clone()
    lifted[..., 1] += 1.0
    torch.testing.assert_close(skating_ratio(lifted, FPS, floor_height=1.0), out)
    torch.testing.assert_close(skating_ratio(j[..., [0, 2, 1]], FPS, up_axis=2), out)
    # slower than 0.1 m/s is no skating
    assert skating_ratio(j * torch.tensor([0.3, 1.0, 1.0], dtype=torch.float64), FPS).max() == 0.0


def test_metric_skating_ignores_vertical_motion():
    j = torch.zeros(5, 22, 3, dtype=torch.float64)
    j[:, [7, 8, 10, 11], 1] = torch.tensor([0.0, 0.05, 0.0, 0.05, 0.0], dtype=torch.float64)[:, None]
    assert skating_ratio(j).max() == 0.0


def test_metric_ground_penetration_by_hand():
    j = torch.zeros(2, 22, 3, dtype=torch.float64)
    j[0, [10, 11], 1] = torch.tensor([-0.06, 0.02], dtype=torch.float64)  # one toe 6 cm under
    j[1, [10, 11], 1] = torch.tensor([-0.03, -0.01], dtype=torch.float64)  # both under, < 5 cm
    out = ground_penetration(j)
    torch.testing.assert_close(out.frequency, torch.tensor([50.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(out.depth, torch.tensor([30.0, 20.0], dtype=torch.float64))
    lifted = j.clone()
    lifted[..., 1] += 0.5
    torch.testing.assert_close(ground_penetration(lifted, floor_height=0.5).depth, out.depth)
    with pytest.raises(ValueError, match="up_axis"):
        ground_penetration(j, up_axis=3)


def test_metric_accel_norm_of_constant_acceleration(make_motion):
    j = make_motion(10)
    time_s = (torch.arange(10, dtype=torch.float64) / FPS)[:, None, None]
    a = torch.tensor([3.0, 0.0, 4.0], dtype=torch.float64)  # |a| = 5 m/s^2
    static = j[:1].expand(10, 22, 3)
    out = accel_norm(static + 0.5 * a * time_s**2, FPS)
    torch.testing.assert_close(out, torch.full((8,), 5.0, dtype=torch.float64))
    assert accel_norm(static + 0.7 * time_s, FPS).abs().max() < 1e-9
