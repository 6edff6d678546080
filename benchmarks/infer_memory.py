"""Peak memory of `moro infer` on a 1-minute vs a 10-minute video (issue 8, item 2: ratio <= 1.10).

For each length a synthetic 30 fps video (smooth moving colour patterns, 192 x 144, H.264) and a
one-box boxes file are written, then the whole pipeline runs in a fresh child process
(streamed frames -> crops -> backbone tokens cached on disk -> 500-frame windows -> fit ->
motion.npz, GLB, BVH; the two videos only with --videos) with a randomly initialised tiny MoRo
on Anny's 615-vertex mesh (tests/inference/infer_fixtures.py: tiny presets, transformer width 64).
The child reports its own peak resident memory (``ru_maxrss``).

    .venv/bin/python benchmarks/infer_memory.py [--minutes 1 10] [--iterations 1] [--threads 1] [--videos]

Prints one line per length, then ``peak_rss_ratio=<10 min / 1 min>``. Decoding iterations do not
change the memory (each pass frees its activations); the default of 1 keeps the 10-minute run
at ~15 minutes on one shared core. Random weights make the motion meaningless; memory and
time do not depend on the weights.

Measured (2 shared CPU cores, 1 torch thread, iterations 1, no videos): 1 min (1800 frames)
1010 MB peak in 44 s, 10 min (18000 frames) 1035 MB in 450 s: ratio 1.025. With ``--videos``,
1 min vs 3 min: 1010 vs 1053 MB (1.043). The peak is the decoder's activations on one 500-frame
window; between windows the process drops back to ~430 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "inference"))


def make_inputs(folder: Path, minutes: float, checkpoint: Path) -> tuple[Path, Path]:
    """Write the video (streamed, never all frames in memory), a boxes file and (once) the checkpoint."""
    import av
    import numpy as np

    if not checkpoint.exists():
        import torch
        from infer_fixtures import anny_tiny_moro

        from moro.body import load_anny

        torch.set_num_threads(1)
        anny_tiny_moro(load_anny()).save(checkpoint)
    frames = int(round(minutes * 60 * 30))
    video = folder / f"synthetic-{minutes:g}min.mp4"
    w, h = 192, 144
    y, x = np.mgrid[0:h, 0:w]
    with av.open(str(video), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "28"}
        for i in range(frames):
            img = np.stack([(127 + 100 * np.sin(0.05 * x + 0.07 * y * (k + 1) + 0.1 * i + k)) for k in range(3)], -1)
            f = av.VideoFrame.from_ndarray(img.astype(np.uint8), format="rgb24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    boxes = folder / "boxes.json"
    boxes.write_text(json.dumps({"boxes": [{"frame": 0, "xyxy": [66, 12, 126, 132]}]}))
    return video, boxes


def child(args: argparse.Namespace) -> None:
    """Run one inference and print a JSON line with the peak RSS."""
    import resource

    import torch

    from moro.inference import DecodingConfig, InferenceConfig, run_inference

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    cfg = InferenceConfig(checkpoint=args.checkpoint, boxes=args.boxes, decoding=DecodingConfig(args.iterations),
                          videos=args.videos, cache_dir=args.cache_dir)
    res = run_inference(args.video, args.out, cfg)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"frames": res.summary["frames"], "peak_rss_mb": peak_mb, "seconds": time.perf_counter() - t0,
                      "timings_s": res.summary["timings_s"]}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0])
    p.add_argument("--iterations", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--videos", action="store_true", help="also write overlay.mp4 and world.mp4")
    p.add_argument("--workdir", default=None, help="folder for videos, caches and outputs (default: a temp folder)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("video", "boxes", "checkpoint", "out", "cache_dir"):
        p.add_argument(f"--{name.replace('_', '-')}", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="moro-infer-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / "moro-tiny-random.pt"
    results = {}
    for minutes in args.minutes:
        t0 = time.perf_counter()
        video, boxes = make_inputs(work, minutes, ckpt)
        made = time.perf_counter() - t0
        cmd = [sys.executable, __file__, "--child", "--video", str(video), "--boxes", str(boxes), "--checkpoint", str(ckpt),
               "--out", str(work / f"out-{minutes:g}min"), "--cache-dir", str(work / "cache"),
               "--iterations", str(args.iterations), "--threads", str(args.threads)] + (["--videos"] if args.videos else [])
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode:
            sys.exit(f"child failed ({minutes:g} min):\n{proc.stderr[-4000:]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results[minutes] = r
        stages = " ".join(f"{k}={v:.0f}s" for k, v in r["timings_s"].items())
        print(f"minutes={minutes:g} frames={r['frames']} peak_rss_mb={r['peak_rss_mb']:.1f} seconds={r['seconds']:.0f} "
              f"(video written in {made:.0f}s; {stages})", flush=True)
    if len(results) >= 2:
        lo, hi = min(results), max(results)
        ratio = results[hi]["peak_rss_mb"] / results[lo]["peak_rss_mb"]
        print(f"peak_rss_ratio={ratio:.3f} ({hi:g} min / {lo:g} min; target <= 1.10) workdir={work}")


if __name__ == "__main__":
    main()
