"""FLOP counting and this machine's matrix-multiply peak, for "achieved FLOP/s as a fraction of peak".

Counting uses :class:`torch.utils.flop_counter.FlopCounterMode` (matmuls, convolutions, attention;
elementwise ops are not counted, the usual convention), normally on a copy of the network on the
``meta`` device, so counting a paper-size decode costs no compute. A multiply-add counts 2 FLOPs:
an (m, k) @ (k, n) product is ``2 m k n``.

The peak is measured, not looked up: the best of several square float32 (or bf16) matmuls of
side ``size`` on the device, in the same run as the figures it normalises.
"""

from __future__ import annotations

import time
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["matmul_flops", "count_flops", "matmul_peak"]


def matmul_flops(m: int, k: int, n: int, batch: int = 1) -> int:
    """FLOPs of ``batch`` (m, k) @ (k, n) products: ``2 batch m k n``."""
    return 2 * batch * m * k * n


def count_flops(fn: Callable[[], object]) -> int:
    """Total FLOPs that ``fn()`` dispatches (run it on meta tensors to count without computing)."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


def matmul_peak(device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, size: int | None = None,
                repeats: int = 5, min_seconds: float = 0.2) -> dict:
    """Measured matmul throughput: ``{"flops_per_s", "size", "dtype", "seconds"}`` (best of ``repeats``).

    Args:
        size: matrix side (default 2048 on CPU, 8192 on CUDA).
        min_seconds: each repeat loops until it has run at least this long.
    """
    device = torch.device(device)
    size = size or (8192 if device.type == "cuda" else 2048)
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
    return {"flops_per_s": best, "size": size, "dtype": str(dtype).replace("torch.", ""), "seconds": min_seconds}
