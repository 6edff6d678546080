"""Machine description, synchronised timing, peak memory, and one fresh child process per measurement.

Peak memory is measured the way ``benchmarks/infer_memory.py`` does it: every measurement runs in
a fresh Python process (``python -m moro.bench.child SPEC``) that reports its own peak resident
set (``ru_maxrss``), so no measurement inherits another's allocations. On CUDA the child also
reports ``torch.cuda.max_memory_allocated`` (reset after the model is built, so it is the
activations' peak plus the weights) and times with ``torch.cuda.synchronize`` around each call.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import time
from typing import Callable

import torch

__all__ = ["machine", "describe_machine", "sync", "timed", "peak_memory", "run_child", "ChildError"]


class ChildError(RuntimeError):
    """A measurement's child process failed (message: the spec and the end of its stderr)."""


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # no /proc (macOS, Windows): fall back to what platform knows
        return platform.processor() or platform.machine()
    return platform.processor() or platform.machine()


def machine(device: str = "cpu") -> dict:
    """What the figures were measured on: CPU, cores usable, GPU, versions, load, date."""
    import moro

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(), "cores": cores, "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load_1min": round(os.getloadavg()[0], 2), "python": platform.python_version(), "torch": torch.__version__,
        "moro": moro.__version__, "os": f"{platform.system()} {platform.release()}", "device": device, "gpu": None,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(torch.device(device))
        info["gpu"] = f"{p.name}, {p.total_memory / 2**30:.0f} GiB"
        info["cuda"] = torch.version.cuda
    return info


def describe_machine(m: dict) -> str:
    """One line for logs and RESULTS.md."""
    gpu = f"; GPU {m['gpu']} (CUDA {m.get('cuda')})" if m.get("gpu") else ""
    return (f"{m['cpu']}, {m['cores']} cores usable, {m['memory_gb']} GB RAM{gpu}; load {m['load_1min']} at start; "
            f"Python {m['python']}, torch {m['torch']}, moro {m['moro']}, {m['os']}; {m['date']}")


def sync(device: str | torch.device) -> None:
    """Wait for queued GPU work (no-op on CPU), so wall-clock time covers it."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: str | torch.device = "cpu", repeats: int = 1, warmup: int = 0) -> tuple[float, object]:
    """``(best wall-clock seconds over repeats, last result)``, synchronised on CUDA."""
    out = None
    for _ in range(warmup):
        out = fn()
    best = float("inf")
    for _ in range(max(1, repeats)):
        sync(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best, out


def peak_memory(device: str | torch.device = "cpu") -> dict:
    """Peak resident set of this process (MB) and, on CUDA, the peak allocated GPU memory (MB)."""
    import resource

    out = {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)}
    if torch.device(device).type == "cuda":
        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return out


def run_child(spec: dict, threads: int | None = None, timeout: float | None = None) -> dict:
    """Run one measurement in a fresh process (``python -m moro.bench.child``); its JSON result.

    Args:
        spec: the measurement (``{"kind": ..., ...}``, see :mod:`moro.bench.speed`).
        threads: torch / OpenMP threads of the child (default: this machine's usable cores).
        timeout: seconds before the child is stopped.
    """
    threads = threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    spec = {**spec, "threads": threads}
    proc = subprocess.run([sys.executable, "-m", "moro.bench.child", json.dumps(spec)], capture_output=True, text=True,
                          env=env, timeout=timeout)
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise ChildError(f"measurement {spec} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])
