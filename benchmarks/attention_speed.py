"""Banded temporal attention: one masked SDPA call vs the query blocks, per sequence length.

Why ``moro.model.attention.FULL_BLOCK_MAX`` is 512: on CPUs (and GPUs) PyTorch's fused attention
kernels take a boolean band mask without storing the (L, L) scores, and up to a few hundred
frames one such call beats the O(L x (chunk + 2 window)) query blocks, whose many small
products are dominated by bookkeeping. Both paths are timed here on the tiny preset's shapes
(97 token slots x 4 heads per frame, head dim 16, window +-16) and checked to agree.

    .venv/bin/python benchmarks/attention_speed.py [--lengths 32 120 300 500 1000] [--chunks 16 32 64 128] [--threads 2]

Prints one line per length: ``length=L single_ms=... blocks<c>_ms=... (diff ...)`` per query block size c.
"""

from __future__ import annotations

import argparse
import time

import torch

from moro.model.attention import band_mask, banded_attention


def _time(fn, repeats: int = 3) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", type=int, nargs="+", default=[32, 120, 300, 500, 1000])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--slots", type=int, default=97, help="batch of sequences (token slots per frame)")
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--head-dim", type=int, default=16)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--chunks", type=int, nargs="+", default=[16, 32, 64, 128], help="query block sizes to time")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    for length in a.lengths:
        q, k, v = (torch.randn(a.slots, a.heads, length, a.head_dim, generator=g) for _ in range(3))
        with torch.no_grad():
            mask = band_mask(length, a.window)
            single = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            ts = _time(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask))
            parts = [f"length={length} single_ms={ts:.1f}"]
            for c in a.chunks:
                blocks = banded_attention(q, k, v, a.window, chunk=c, force_blocks=True)
                diff = (blocks - single).abs().max().item()
                tb = _time(lambda: banded_attention(q, k, v, a.window, chunk=c, force_blocks=True))
                parts.append(f"blocks{c}_ms={tb:.1f} (diff {diff:.1e})")
        print(" ".join(parts), flush=True)


if __name__ == "__main__":
    main()
