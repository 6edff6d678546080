"""CPU memory-allocation settings for moro's processes (Linux): fewer page faults, same results.

Inference allocates and frees the same large activation tensors window after window and pass after
pass. By default glibc's malloc hands freed memory back to the kernel and every new tensor is
faulted in again page by page (1.3 M minor page faults for the tiny pipeline on a 300-frame video).
:func:`tune_allocator` asks for two things before torch allocates anything:

* ``THP_MEM_ALLOC_ENABLE=1``: torch's CPU allocator advises transparent huge pages for large
  tensors (read by torch once, at its first allocation; a value already set is kept);
* glibc ``mallopt(M_TOP_PAD, 1 GiB)``: the heap keeps up to 1 GiB of freed memory for reuse.

Measured on the 2-core Zen 3 of benchmarks/RESULTS.md (tiny pipeline, 300 frames, two runs each):
32.5 / 31.9 frames/s and 1.29 M page faults without, 36.4 / 37.9 frames/s and 0.10 M with; peak
resident memory 772-845 MB without, 868-888 MB with. The ``moro`` command and the benchmark's
measurement processes call it first thing; set ``MORO_DEFAULT_ALLOCATOR=1`` to skip it. Library
users may call it at the start of their own program (before importing torch).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["tune_allocator", "TOP_PAD_BYTES", "OPT_OUT_ENV"]

TOP_PAD_BYTES = 1 << 30  # freed heap memory kept for reuse, bytes
OPT_OUT_ENV = "MORO_DEFAULT_ALLOCATOR"
_THP_ENV = "THP_MEM_ALLOC_ENABLE"
_M_TOP_PAD = -2  # glibc malloc.h


def tune_allocator(environ: "os._Environ | dict" = os.environ) -> dict:
    """Apply the module's settings to this process; returns what was applied.

    Returns:
        ``{"huge_pages": bool, "top_pad_bytes": int}``: whether torch will be asked for huge pages
        (False when the user set ``THP_MEM_ALLOC_ENABLE`` otherwise or opted out) and the heap pad
        set (0 when skipped: opted out, not Linux, or a C library without glibc's ``mallopt``).
    """
    if environ.get(OPT_OUT_ENV, "") not in ("", "0"):
        return {"huge_pages": False, "top_pad_bytes": 0}
    environ.setdefault(_THP_ENV, "1")
    pad = 0
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            if libc.mallopt(ctypes.c_int(_M_TOP_PAD), ctypes.c_int(TOP_PAD_BYTES)) == 1:
                pad = TOP_PAD_BYTES
        except (OSError, AttributeError):  # no libc found, or one without mallopt (musl)
            pad = 0
    return {"huge_pages": environ.get(_THP_ENV) == "1", "top_pad_bytes": pad}
