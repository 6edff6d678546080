"""``moro infer VIDEO_OR_DIR...``: thin command over :func:`moro.inference.run_inference` (progress bars live here)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_infer_command"]

INFER_EPILOG = """\
outputs in --out DIR (written atomically; an earlier moro output there is replaced):
  motion.npz    per-frame body-model parameters (camera and world frames), joints, boxes, confidence
  motion.glb    animated skinned mesh (glTF 2.0), world frame: Y up, ground y = 0, metres
  motion.bvh    skeleton animation (BVH, metres), world frame
  overlay.mp4   mesh and joints over the input (hollow red joints: occluded or uncertain)
  world.mp4     world view with the ground and the root path
  summary.json  settings, statistics, timings; "complete": true

boxes file (--boxes): JSON {"boxes": [{"frame": 0, "xyxy": [x0, y0, x1, y1]}, ...]} (or "xywh" / "cxcys"),
or CSV with a header "frame,x0,y0,x1,y1[,score]"; frames are 0-based source-video frames; frames without
a box are interpolated. Without --boxes a detector finds the person (YOLO with --yolo-weights if
ultralytics is installed, else OpenCV's HOG people detector).

Boxes and backbone features are cached ($MORO_CACHE_DIR/infer), so re-running with other
--iterations or fit settings skips the slow front end.

many videos: give several videos, folders of videos, or a list file (.txt: one path per line); each video
goes to --out DIR/<video stem>/ and DIR/infer-batch.json lists what happened. Videos already done there
(complete summary.json of the same input) are skipped (--redo recomputes them); a failing video is
reported and counted, the others go on (exit status 1 if any failed). A boxes file beside a video
named <stem>.boxes.json or <stem>.boxes.csv is used for it. Processes: --device cuda uses every visible
GPU (or the first --devices N), one process each; on CPU --workers N processes share the cores. Several
machines: run the same command on each with --shard I/N (e.g. $SLURM_PROCID/$SLURM_NTASKS) and a shared --out.
"""


def _progress_factory(disabled: bool):
    from tqdm import tqdm

    bars = []

    def make(stage: str, total: int | None):
        for b in bars:
            b.close()
        bar = tqdm(total=total, desc=f"{stage:<9}", unit="frame", disable=disabled, leave=True, file=sys.stderr)
        bars.append(bar)
        return bar.update

    def close():
        for b in bars:
            b.close()

    return make, close


def _cmd_infer(args: argparse.Namespace) -> int:
    from moro.inference import DecodingConfig, DetectorConfig, FitConfig, InferenceConfig, WindowConfig, run_inference

    cfg = InferenceConfig(
        checkpoint=args.checkpoint, boxes=args.boxes, focal=args.focal, source_fps=args.source_fps,
        decoding=DecodingConfig(args.iterations, heading_carry=not args.no_heading_carry),
        windows=WindowConfig(args.window, args.overlap, args.drop),
        detector=DetectorConfig(kind=args.detector, yolo_weights=args.yolo_weights, every=args.detect_every),
        fit=FitConfig(chunk=args.fit_chunk, shape_frames=args.shape_frames),
        heading=args.heading, save_vertices=args.save_vertices, videos=not args.no_videos, glb=not args.no_glb,
        bvh=not args.no_bvh, render_backend=args.render_backend, cache_dir=args.cache_dir, use_cache=not args.no_cache,
        device=args.device, body_model=args.body_model, topology=args.topology, smplx_path=args.smplx,
    )
    from moro.inference.batch import collect_videos

    single = len(args.video) == 1 and _one_video(args.video[0])
    if not single:
        return _cmd_infer_many(args, cfg, collect_videos(args.video))
    if args.workers != 1 or args.devices is not None or args.shard is not None:
        print("moro infer: one video runs in one process; --workers / --devices / --shard apply to several videos",
              file=sys.stderr)
    out = args.out or _default_out(args.video[0])
    make, close = _progress_factory(args.no_progress)
    try:
        result = run_inference(args.video[0], out, cfg, progress=make)
    finally:
        close()
    s = result.summary
    print(f"moro infer: {s['frames']} frames ({s['duration_s']:.1f} s at {s['fps']:g} fps), boxes from "
          f"{s['boxes']['source']} ({s['boxes']['frames_with_box']} frames with a box), focal {s['camera']['focal_px']:.0f} px "
          f"({s['camera']['focal_source']}), ground: {s['world']['ground_source']}")
    for name, what in s["outputs"].items():
        print(f"  {result.out_dir / name}  {what}")
    total = sum(s["timings_s"].values())
    print(f"frames={s['frames']} confidence={s['confidence_mean']:.3f} fit_error_mm={s['fit']['mean_fit_error_mm']:.1f} "
          f"seconds={total:.1f} out={result.out_dir}")
    return 0


def _one_video(path: str) -> bool:
    """A video file or an image folder (not a folder of videos, not a list file)."""
    from pathlib import Path

    from moro.inference.batch import LIST_SUFFIXES, collect_videos

    p = Path(path)
    if p.is_file():
        return p.suffix.lower() not in LIST_SUFFIXES
    if not p.is_dir():
        return True  # missing: run_inference names the problem
    videos = collect_videos([p])
    return len(videos) == 1 and videos[0] == p


def _parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must be I/N (e.g. 0/4), got {text!r}") from None
    return i, n


def _cmd_infer_many(args: argparse.Namespace, cfg, videos) -> int:
    from pathlib import Path

    from moro.inference.batch import plan_workers, run_batch

    devices = plan_workers(args.device, args.devices, args.workers)
    shard = _parse_shard(args.shard)
    out = Path(args.out) if args.out else _default_many_out(args.video)
    print(f"moro infer: {len(videos)} videos -> {out}/<video stem>/, {len(devices)} worker process(es) on "
          f"{', '.join(sorted(set(devices)))}" + (f", shard {shard[0]}/{shard[1]}" if shard else ""), flush=True)

    def on_record(r) -> None:
        what = {"done": f"done, {r.frames} frames", "skipped": "already done, skipped", "failed": f"FAILED: {r.error}"}
        print(f"  [{r.status:>7}] {r.video} -> {r.out} ({what[r.status]}; {r.seconds:.1f} s)", flush=True)

    make, close = _progress_factory(args.no_progress or len(devices) > 1)
    try:
        result = run_batch(videos, out, cfg, worker_devices=devices, redo=args.redo, shard=shard,
                           on_record=on_record, progress=make)
    finally:
        close()
    print(f"videos={len(result.records)} done={result.count('done')} skipped={result.count('skipped')} "
          f"failed={result.count('failed')} out={out}")
    return 1 if result.failed else 0


def _default_many_out(inputs: list[str]) -> "Path":
    from pathlib import Path

    if len(inputs) == 1:
        p = Path(inputs[0])
        return p.parent / f"{p.stem if p.is_file() else p.name}-moro"
    raise ValueError("several inputs: give the output root with --out DIR (each video goes to DIR/<video stem>/)")


def _default_out(video: str) -> str:
    from pathlib import Path

    p = Path(video)
    return str(p.parent / f"{p.stem if p.is_file() else p.name}-moro")


def add_infer_command(sub) -> None:
    """Register ``moro infer`` on the top-level subparsers."""
    p = sub.add_parser("infer", help="3D motion of the person in a video (mp4/avi/mov or an image folder)",
                       epilog=INFER_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", metavar="VIDEO_OR_DIR", nargs="+",
                   help="video file or folder of frames; several videos, folders of videos or a list file (.txt)")
    p.add_argument("--boxes", default=None, metavar="FILE", help="person boxes per source frame (JSON or CSV; see below)")
    p.add_argument("--checkpoint", default=None, metavar="CKPT",
                   help="MoRo checkpoint (default: $MORO_CHECKPOINT, else the shipped tiny model)")
    p.add_argument("--focal", type=float, default=None, metavar="F", help="focal length in pixels (default: image diagonal)")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default: VIDEO-moro next to the input)")
    p.add_argument("--iterations", type=int, default=5, metavar="K", help="masked-decoding iterations (paper 5)")
    p.add_argument("--no-heading-carry", action="store_true",
                   help="keep every frame's own facing direction (default: carried through frames the checkpoint's "
                        "visibility head calls hidden; moro.inference.heading)")
    p.add_argument("--save-vertices", action="store_true", help="also store the fitted mesh of every frame in motion.npz")
    p.add_argument("--source-fps", type=float, default=None, help="frame rate of an image folder (default 30)")
    p.add_argument("--detector", default="auto", choices=["auto", "hog", "yolo"], help="person detector without --boxes")
    p.add_argument("--yolo-weights", default=None, metavar="FILE", help="Ultralytics YOLO weights (e.g. yolo11x.pt)")
    p.add_argument("--detect-every", type=int, default=3, metavar="N", help="run the detector on every N-th frame")
    p.add_argument("--window", type=int, default=500, help="frames per decoding window (paper 500)")
    p.add_argument("--overlap", type=int, default=120, help="frames shared by consecutive windows (paper 120)")
    p.add_argument("--drop", type=int, default=60, help="frames the later window drops at a seam (paper 60)")
    p.add_argument("--fit-chunk", type=int, default=256, help="frames per parametric-fit call")
    p.add_argument("--shape-frames", type=int, default=32, help="frames (spread over the video) that fix the body shape")
    p.add_argument("--heading", default="camera", choices=["camera", "body"],
                   help="world +Z: the camera's view direction or the body's facing at frame 0 (on the ground)")
    p.add_argument("--body-model", default=None, choices=["anny", "smplx", "smpl"],
                   help="body model (default: the one the checkpoint was trained for)")
    p.add_argument("--topology", default=None, help="Anny topology (default: from the checkpoint)")
    p.add_argument("--smplx", default=None, metavar="PATH", help="SMPL-X / SMPL model file or folder")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--render-backend", default="auto", choices=["auto", "egl", "software", "points"],
                   help="how videos draw the mesh (points: OpenCV dots, no GL)")
    p.add_argument("--no-videos", action="store_true", help="skip overlay.mp4 and world.mp4")
    p.add_argument("--no-glb", action="store_true", help="skip motion.glb")
    p.add_argument("--no-bvh", action="store_true", help="skip motion.bvh")
    p.add_argument("--cache-dir", default=None, help="cache root for boxes and features (default $MORO_CACHE_DIR/infer)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="several videos: worker processes per device (CPU: they share the cores)")
    p.add_argument("--devices", type=int, default=None, metavar="N",
                   help="several videos with --device cuda: use the first N GPUs (default: all visible)")
    p.add_argument("--shard", default=None, metavar="I/N", help="several machines: this one takes videos I, I+N, ...")
    p.add_argument("--redo", action="store_true", help="several videos: recompute videos already done in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_infer)
