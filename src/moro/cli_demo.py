"""``moro demo``: thin command over :func:`moro.inference.demo.run_demo` (prints and progress bars live here)."""

from __future__ import annotations

import argparse
import sys
import time

__all__ = ["add_demo_command"]

DEMO_EPILOG = """\
What it does (under 2 minutes on 2 CPU cores; a re-run reuses the video and the backbone features):
  1. generates a 5-second synthetic video of a person walking behind occluders, cut by the frame edge
     (the synthetic world of `moro synth`, fixed seed), with its ground truth
  2. runs moro on it -> DIR/moro/ (overlay.mp4, world.mp4, motion.npz, motion.glb, motion.bvh)
  3. runs the per-frame baseline: the same model with every frame decoded alone -> DIR/per_frame/
  4. scores both against the ground truth like `moro eval --protocol synth` -> DIR/demo.json
Person boxes are the synthetic labels' detector-like boxes, given as a boxes file (DIR/boxes.json), so the
demo does not depend on a person detector. The last line is
  mpjpe_occ_mm=<moro> baseline_mpjpe_occ_mm=<per-frame> fps=<end-to-end frames per second of the moro run>
with MPJPE-occ the pelvis-aligned error of the joints hidden by an occluder or outside the image (mm).
"""

ROWS = (("mpjpe_occ", "MPJPE-occ", "mm"), ("mpjpe_vis", "MPJPE-vis", "mm"), ("mpjpe", "MPJPE-all", "mm"),
        ("pa_mpjpe", "PA-MPJPE", "mm"), ("pve", "PVE", "mm"), ("gmpjpe", "GMPJPE", "mm"),
        ("accel_error", "Accel", "m/s^2"), ("jitter", "Jitter", "10 m/s^3"), ("foot_sliding", "Sliding", "mm/frame"))


def _cmd_demo(args: argparse.Namespace) -> int:
    from moro.cli_infer import _progress_factory
    from moro.inference.demo import DemoConfig, headline, run_demo

    given = {k: v for k, v in (("frames", args.frames), ("seed", args.seed)) if v is not None}
    cfg = DemoConfig(out=args.out, checkpoint=args.checkpoint, iterations=args.iterations, device=args.device,
                     render_backend=args.render_backend, **given)
    t0 = time.perf_counter()
    make, close = _progress_factory(args.no_progress)
    try:
        r = run_demo(cfg, progress=make, on_step=lambda text: print(f"moro demo: {text}", file=sys.stderr, flush=True))
    finally:
        close()
    wall = time.perf_counter() - t0
    model = ("the shipped tiny model (trained on the synthetic world only)" if r.shipped_model
             else f"checkpoint {r.checkpoint}")
    print(f"video: {r.sequence / 'video.mp4'} ({r.frames} frames at 30 fps, {cfg.width}x{cfg.height}; "
          f"{100 * r.occluded_joint_fraction:.1f} % of the joint-frames occluded or outside the image; "
          f"{'reused' if r.video_cached else 'generated'})")
    print("boxes: the synthetic labels' detector-like boxes (box_det) given as a boxes file "
          f"({r.out / 'boxes.json'}); no person detector was run")
    print(f"model: {model}")
    print(f"{'metric':<12}{'unit':>10}{'moro':>12}{'per-frame':>12}")
    for key, name, unit in ROWS:
        a, b = r.scores["moro"].get(key), r.scores["per_frame"].get(key)
        if a is not None and b is not None:
            print(f"{name:<12}{unit:>10}{a:>12.1f}{b:>12.1f}")
    print("where to look:")
    for what, path in r.files().items():
        print(f"  {what:<20}{path}")
    print(f"timings: video {r.seconds['video']:.1f} s, moro {r.seconds['moro']:.1f} s, per-frame "
          f"{r.seconds['per_frame']:.1f} s, scoring {r.seconds['scores']:.1f} s; demo total {wall:.1f} s")
    print(headline(r.scores, r.fps))
    return 0


def add_demo_command(sub) -> None:
    """Register ``moro demo`` on the top-level subparsers."""
    p = sub.add_parser("demo", help="synthetic occluded video -> moro vs the per-frame baseline against ground truth",
                       epilog=DEMO_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="moro-demo", metavar="DIR", help="demo folder (default: ./moro-demo)")
    p.add_argument("--checkpoint", default=None, metavar="CKPT",
                   help="MoRo checkpoint (default: $MORO_CHECKPOINT, else the shipped tiny model)")
    p.add_argument("--frames", type=int, default=None, help="frames of the synthetic video at 30 fps (default 150)")
    p.add_argument("--seed", type=int, default=None, help="seed of the synthetic sequence (default: the demo's own)")
    p.add_argument("--iterations", type=int, default=5, metavar="K", help="masked-decoding iterations (paper 5)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--render-backend", default="auto", choices=["auto", "egl", "software"],
                   help="renderer of the synthetic video and the overlay")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_demo)
