"""FLOP counting of a known matmul, the matmul peak, the scaling fit."""

import numpy as np
import pytest
import torch

from moro.bench.flops import count_flops, matmul_flops, matmul_peak
from moro.bench.scaling import linear_fit, memory_ratio


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_count_flops_of_a_matmul_is_2mkn(device):
    a, b = torch.ones(3, 5, 7, device=device), torch.ones(7, 11, device=device)
    assert count_flops(lambda: a @ b) == matmul_flops(5, 7, 11, batch=3) == 2 * 3 * 5 * 7 * 11
    lin = torch.nn.Linear(16, 8).to(device)
    assert count_flops(lambda: lin(torch.ones(4, 16, device=device))) == 2 * 4 * 16 * 8


def test_matmul_peak_is_positive():
    r = matmul_peak("cpu", size=64, repeats=1, min_seconds=0.01)
    assert r["flops_per_s"] > 0 and r["size"] == 64 and r["dtype"] == "float32"


def test_linear_fit_recovers_a_line_and_flags_curvature():
    x = [60, 600, 6000, 18000]
    f = linear_fit(x, [2.0 + 0.01 * v for v in x])
    assert f["intercept_s"] == pytest.approx(2.0) and f["slope_s_per_frame"] == pytest.approx(0.01)
    assert f["r2"] == pytest.approx(1.0) and f["max_rel_residual"] < 1e-9
    q = linear_fit(x, [1e-6 * v * v for v in x])  # quadratic: a visibly bad line
    assert q["max_rel_residual"] > 0.1
    with pytest.raises(ValueError):
        linear_fit([1], [1.0])


def test_memory_ratio():
    assert memory_ratio({600: 800.0, 18000: 820.0}, 18000, 600) == pytest.approx(1.025)
    with pytest.raises(ValueError, match="18000"):
        memory_ratio({600: 1.0}, 18000, 600)
