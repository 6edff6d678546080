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


def test_matmul_peak_keeps_the_best_side(monkeypatch):
    import moro.bench.flops as flops

    monkeypatch.setattr(flops, "_matmul_peak_at", lambda device, dtype, n, repeats, s: {1024: 5e10, 2048: 9e10, 3072: 7e10}[n])
    r = flops.matmul_peak("cpu")
    assert r["size"] == 2048 and r["flops_per_s"] == 9e10 and r["sizes"] == {"1024": 5e10, "2048": 9e10, "3072": 7e10}


def test_peak_fraction_uses_the_higher_probe():
    from moro.bench.speed import SpeedConfig, run_speed

    probes = iter([4e10, 1e11])  # a busy machine at the start, an idle one at the end

    def runner(spec):
        if spec["kind"] == "matmul":
            return {**spec, "flops_per_s": next(probes), "size": 2048, "dtype": "float32"}
        if spec["kind"] == "decode":
            return {**spec, "fps": 1.0, "flops": 1e9, "achieved_flops_per_s": 5e10, "timed_passes": 1, "peak_rss_mb": 1.0}
        return {**spec, "fps": 1.0, "seconds": 1.0, "peak_rss_mb": 1.0, "stages_ms_per_frame": {}, "fit": False,
                "timed_passes": 1, "encode_fps": 1.0, "decode_fps": 1.0, "vertices": 1, "tokens": 1}

    out = run_speed(SpeedConfig(quick=True), runner=runner)
    kinds = [r["kind"] for r in out["results"]]
    assert kinds[0] == "matmul" and kinds[-1] == "matmul"
    assert all(r["peak_fraction"] == 0.5 for r in out["results"] if r["kind"] == "decode")


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
