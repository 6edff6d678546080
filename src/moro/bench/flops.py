"""FLOP counting and this machine's matrix-multiply peak, for "achieved FLOP/s as a fraction of peak".

Counting uses :class:`torch.utils.flop_counter.FlopCounterMode` (matmuls, convolutions, attention;
elementwise ops are not counted, the usual convention), normally on a copy of the network on the
``meta`` device, so counting a paper-size decode costs no compute. A multiply-add counts 2 FLOPs:
an (m, k) @ (k, n) product is ``2 m k n``.

The peak is measured, not looked up: the best of several square float32 (or bf16) matmuls of
several sides on the device, in the same run as the figures it normalises (``moro bench speed``
probes at the start and at the end of the run and keeps the higher: a probe taken while the
machine was busy would understate the peak and overstate every fraction).
"""

from __future__ import annotations

import time
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["matmul_flops", "count_flops", "matmul_peak", "CPU_PEAK_SIZES"]


def matmul_flops(m: int, k: int, n: int, batch: int = 1) -> int:
    """FLOPs of ``batch`` (m, k) @ (k, n) products: ``2 batch m k n``."""
    return 2 * batch * m * k * n


def count_flops(fn: Callable[[], object]) -> int:
    """Total FLOPs that ``fn()`` dispatches (run it on meta tensors to count without computing)."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


CPU_PEAK_SIZES = (1024, 2048, 3072)  # a CPU's best side varies with its caches: try several


def matmul_peak(device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, size: int | None = None,
                repeats: int = 5, min_seconds: float = 0.2) -> dict:
    """Measured matmul throughput: ``{"flops_per_s", "size", "dtype", "seconds", "sizes"}``.

    The best of ``repeats`` timed loops at each side tried (``size``, or :data:`CPU_PEAK_SIZES` on a
    CPU and 8192 on CUDA); ``size`` in the result is the side that gave the best figure and
    ``sizes`` maps every side tried to its best FLOP/s.

    Args:
        size: one matrix side to try instead of the defaults.
        min_seconds: each repeat loops until it has run at least this long.
    """
    device = torch.device(device)
    sizes = (size,) if size else ((8192,) if device.type == "cuda" else CPU_PEAK_SIZES)
    per_size = {n: _matmul_peak_at(device, dtype, n, repeats, min_seconds) for n in sizes}
    best = max(per_size, key=per_size.get)
    return {"flops_per_s": per_size[best], "size": best, "dtype": str(dtype).replace("torch.", ""),
            "seconds": min_seconds, "sizes": {str(n): f for n, f in per_size.items()}}


def _matmul_peak_at(device: torch.device, dtype: torch.dtype, size: int, repeats: int, min_seconds: float) -> float:
    """Best FLOP/s of ``repeats`` loops of (size, size) @ (size, size)."""
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(size, size, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=g).to(device=device, dtype=dtype)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    a @ b  # warm-up (allocator, kernel selection)
    sync()
    best = 0.0
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        while True:
            a @ b
            n += 1
            sync()
            dt = time.perf_counter() - t0
            if dt >= min_seconds:
                break
        best = max(best, n * matmul_flops(size, size, size) / dt)
    return best
