"""Benchmark of moro's procedural motion source: generation speed and ground-truth quality.

Usage::

    .venv/bin/python benchmarks/synth_motion.py [--sequences 20] [--frames 300] [--types walk,jog]

Prints generation throughput (frames/s, including the one body forward pass that the
generator runs for its checks), then over all sequences: ground-truth foot sliding
(metrics.md: contact when a foot vertex moves < 1 cm between frames; mean displacement over
contact pairs, mm/frame), the lowest vertex (ground penetration, m), the largest joint-limit
excess, and the share of frames per motion type.
"""

from __future__ import annotations

import argparse
import collections
import time

import torch

from moro.body import load_anny
from moro.metrics.world import foot_sliding
from moro.synth.motion import MOTION_TYPES, build_rig, generate_motion, limit_violation, resolve_limits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, default=20)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0, help="first seed; sequence i uses seed + i")
    ap.add_argument("--types", default=None, help=f"comma-separated subset of {','.join(MOTION_TYPES)}")
    ap.add_argument("--topology", default="notoes_collapse5pc")
    args = ap.parse_args()
    types = args.types.split(",") if args.types else None

    body = load_anny(args.topology)
    generate_motion(body, 30, 0)  # warm-up (imports, allocator)
    gen_time, slides, lowest, excess = 0.0, [], float("inf"), 0.0
    share = collections.Counter()
    for i in range(args.sequences):
        t0 = time.perf_counter()
        m = generate_motion(body, args.frames, args.seed + i, types=types)
        gen_time += time.perf_counter() - t0
        out = m.pose(body)
        feet = body.foot_points(out.vertices)
        fs = foot_sliding(feet, feet).flatten()
        slides.append(fs[~fs.isnan()])
        lowest = min(lowest, float(out.vertices[..., 1].min()))
        limits = resolve_limits(build_rig(body, m.betas))
        excess = max(excess, float(limit_violation(limits, m.body_pose.double().numpy()).max()))
        share.update(m.labels)
    frames = args.sequences * args.frames
    fs_all = torch.cat(slides)
    print(f"generation: {frames / gen_time:.0f} frames/s ({1000 * gen_time / args.sequences:.0f} ms per {args.frames}-frame sequence)")
    print(f"gt_foot_sliding_mm={float(fs_all.mean()):.3f} (contact pairs {len(fs_all)}, max {float(fs_all.max()):.2f})")
    print(f"lowest_vertex_m={lowest:.4f} (penetration limit -0.01)")
    print(f"joint_limit_excess_deg={excess * 57.29578:.4f}")
    print("frames per type: " + ", ".join(f"{k} {100 * v / frames:.0f}%" for k, v in share.most_common()))


if __name__ == "__main__":
    main()
