"""The ``moro`` command line: thin commands over the library (progress and prints live here)."""

from __future__ import annotations

import argparse
import logging
import sys


def _cmd_body_check(args: argparse.Namespace) -> int:
    from moro.body.check import check_body

    r = check_body(args.model, args.topology, args.path, frames=args.frames, seed=args.seed)
    print(f"model={r['name']} vertices={r['vertices']} joints={r['joints']} betas={r['betas']}")
    print(f"fit round trip: {args.frames} frames in {r['fit_s']:.2f} s")
    print(f"fit_pve_mm={r['fit_pve_mm']:.2f} load_s={r['load_s']:.3f}")
    return 0


def _cmd_body_build(args: argparse.Namespace) -> int:
    from moro.body.anny_model import ANNY_TOPOLOGIES, anny_cache_path, load_anny

    topologies = ANNY_TOPOLOGIES if args.topology == "all" else [args.topology]
    for topo in topologies:
        body = load_anny(topo, rebuild=args.rebuild)
        print(f"{body.name}: {body.num_vertices} vertices, {body.num_joints} joints -> {anny_cache_path(topo)}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from moro.metrics.protocols.run import EvalConfig, ProtocolUnavailableError, default_out_dir, run_eval

    cfg = EvalConfig(
        protocol=args.protocol, gt_root=Path(args.gt), pred_dir=Path(args.pred), methods=args.method,
        out_dir=Path(args.out) if args.out else default_out_dir(args.pred, args.protocol),
        smplx=args.smplx, smpl=args.smpl, smplx2smpl=args.smplx2smpl, gt_boxes=args.gt_boxes,
        trusted=args.trust_pickles, reference=not args.no_reference, plot=not args.no_plot,
    )
    def progress(i, gt):
        if args.verbose:
            print(f"[{i + 1}] {gt.name}: {gt.num_frames} frames", file=sys.stderr)

    try:
        result, paths = run_eval(cfg, progress=progress)
    except ProtocolUnavailableError as e:
        print(f"moro eval: {e}", file=sys.stderr)
        return 2
    print(result.markdown())
    for kind, path in paths.items():
        print(f"wrote {kind}: {path}")
    print(f"metrics_ok={int(result.ok)}")
    return 0 if result.ok else 1


def _cmd_synth(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from moro.synth.splits import SPLITS, plan_split
    from moro.synth.writer import write_split

    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    seed = SPLITS[args.split].seed if args.seed is None else args.seed
    tasks = plan_split(args.split, args.sequences, args.frames, seed, width=args.width, height=args.height,
                       save_vertices=args.save_vertices, png=args.png, topology=args.topology, backend=args.backend)
    print(f"moro synth: split {args.split}, {len(tasks)} sequences x {tasks[0].frames} frames at "
          f"{args.width}x{args.height}, seed {seed}, {args.workers} worker(s) -> {args.out}")
    with tqdm(total=len(tasks), unit="seq", disable=args.no_progress) as bar:
        def progress(r):
            bar.set_postfix_str(f"{r.name}{'' if r.generated else ' (done before)'}")
            bar.update(1)

        summary = write_split(args.out, tasks, workers=args.workers, seed=seed, progress=progress)
    for sub in sorted(summary.joint_frames):
        print(f"  {sub or args.split}: {summary.sequences_per_subset[sub]} sequences, {summary.frames_per_subset[sub]} frames, "
              f"occluded joint-frames {summary.occluded_fraction(sub):.3f}")
    print(f"generated {summary.generated}, skipped (already complete) {summary.sequences - summary.generated}; "
          f"labels digest {summary.labels_digest[:16]}")
    print(summary.line())
    return 0


def _cmd_model_summary(args: argparse.Namespace) -> int:
    import torch

    from moro.model.summary import build_preset, count_parameters, estimate_forward_seconds

    model, cfg = build_preset(args.preset, "meta")
    tr, tok = cfg.transformer, cfg.tokens
    print(f"MoRo preset '{args.preset}': width {tr.width}, {tr.num_heads} heads, depth {tr.motion_depth} (motion) / "
          f"{tr.decoder_depth} (decoder), {tok.num_tokens} tokens x {tok.num_codes} codes, window +-{tr.window} frames")
    counts = count_parameters(model)
    print(f"{'part':<20}{'params_m':>12}  note")
    for c in counts:
        note = "frozen" if not c.trainable else ("frozen in video finetuning" if c.name.startswith("image") else "")
        print(f"{c.name:<20}{c.params / 1e6:>12.3f}  {note}")
    total = sum(c.params for c in counts)
    backbone = sum(c.params for c in counts if c.name == "image_backbone")
    print(f"{'total':<20}{total / 1e6:>12.3f}")
    if not args.no_timing:
        frames = args.frames or cfg.clip_frames
        secs, method = estimate_forward_seconds(args.preset, frames)
        print(f"forward-time estimate, batch 1 x {frames} frames, float32, no grad, this CPU "
              f"({torch.get_num_threads()} threads); method: {method}")
        for name, s in secs.items():
            print(f"  {name:<20}{s:>10.2f} s")
        t = sum(secs.values())
        print(f"  {'total':<20}{t:>10.2f} s  ({frames / t:.3g} frames/s)")
    print(f"params_m={total / 1e6:.3f} backbone_params_m={backbone / 1e6:.3f}")
    return 0


def _cmd_convert_official(args: argparse.Namespace) -> int:
    from moro.convert import convert_official

    report = convert_official(args.ckpt, args.connection_matrices, args.traj_stats, args.out,
                              tokenizer=args.tokenizer, backbone=args.backbone, smplx=args.smplx,
                              trust_pickle=args.trust_pickle)
    for line in report.lines():
        print(line)
    print(f"converted={report.out} tensors={report.keys_out} stage=video_train")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="moro", description="MoRo: 3D human motion from monocular video, robust to occlusion.")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from moro.cli_demo import add_demo_command

    add_demo_command(sub)  # moro demo

    body = sub.add_parser("body", help="body models: build caches, check a model")
    body_sub = body.add_subparsers(dest="body_command", required=True, metavar="SUBCOMMAND")
    check = body_sub.add_parser("check", help="load a body model, time the cached load, run the fit round trip")
    check.add_argument("--model", default="anny", choices=["anny", "smplx", "smpl"])
    check.add_argument("--topology", default=None, help="Anny topology, or 'body' for the SMPL-X body mesh")
    check.add_argument("--path", default=None, help="SMPL-X/SMPL model file or directory")
    check.add_argument("--frames", type=int, default=16)
    check.add_argument("--seed", type=int, default=0)
    check.set_defaults(func=_cmd_body_check)
    build = body_sub.add_parser("build", help="build and cache Anny topologies")
    build.add_argument("--topology", default="notoes_collapse5pc", help="an Anny topology or 'all'")
    build.add_argument("--rebuild", action="store_true")
    build.set_defaults(func=_cmd_body_build)

    ev = sub.add_parser("eval", help="score predictions on a benchmark protocol (table, CSV, JSON, PNG)")
    ev.add_argument("--protocol", required=True, choices=["egobody-occ", "rich", "rich-trunc", "synth"])
    ev.add_argument("--gt", required=True, help="ground-truth root of the protocol's dataset")
    ev.add_argument("--pred", required=True, help="predictions: PRED/<method>/<sequence>.npz")
    ev.add_argument("--method", nargs="+", default=None, help="methods (folders of PRED) in table order; default all")
    ev.add_argument("--out", default=None, help="output folder for CSV/JSON/PNG (default PRED/eval-<protocol>)")
    ev.add_argument("--smplx", default=None, help="SMPL-X model file or folder (ground-truth fits)")
    ev.add_argument("--smpl", default=None, help="SMPL model file or folder (neutral regressor for --smplx2smpl)")
    ev.add_argument("--smplx2smpl", default=None,
                    help="SMPL-X -> SMPL vertex transfer (.pkl/.pt/.npz); without it SMPL-X joints are used (a reported deviation)")
    ev.add_argument("--gt-boxes", action="store_true", help="protocol input boxes from projected GT joints (supplement D)")
    ev.add_argument("--trust-pickles", action="store_true", help="fully unpickle ground-truth .pt files (trusted files only)")
    ev.add_argument("--no-reference", action="store_true", help="omit the ground truth's own jitter/sliding row")
    ev.add_argument("--no-plot", action="store_true", help="skip the per-joint PNG")
    ev.set_defaults(func=_cmd_eval)

    syn = sub.add_parser("synth", help="generate the synthetic occlusion world (videos + labels) for a split")
    syn.add_argument("--split", required=True, choices=["train", "val", "bench"],
                     help="bench: fixed benchmark, halves OUT/occ and OUT/clean (default 40 x 300, seed 2026)")
    syn.add_argument("--out", required=True, help="split folder (e.g. OUT/train); sequences go to OUT/<seq>/")
    syn.add_argument("--sequences", type=int, default=None, help="number of sequences (default: train 1000, val 50, bench 40)")
    syn.add_argument("--frames", type=int, default=None, help="frames per sequence at 30 fps (default 300)")
    syn.add_argument("--workers", type=int, default=1, help="worker processes, one renderer each")
    syn.add_argument("--seed", type=int, default=None, help="split seed (default: train 0, val 1, bench 2026)")
    syn.add_argument("--width", type=int, default=960, help="image width in pixels (even for mp4)")
    syn.add_argument("--height", type=int, default=540, help="image height in pixels (even for mp4)")
    syn.add_argument("--save-vertices", action="store_true", help="also store the camera-frame mesh per frame")
    syn.add_argument("--png", action="store_true", help="PNG frames instead of an H.264 video")
    syn.add_argument("--topology", default="notoes_collapse5pc", help="Anny topology of the rendered body")
    syn.add_argument("--backend", default=None, choices=["auto", "egl", "software"], help="render backend (default: auto)")
    syn.add_argument("--no-progress", action="store_true", help="no progress bar")
    syn.set_defaults(func=_cmd_synth)

    model = sub.add_parser("model", help="the MoRo network: parameter counts, timing")
    model_sub = model.add_subparsers(dest="model_command", required=True, metavar="SUBCOMMAND")
    summary = model_sub.add_parser("summary", help="parameters per part and a forward-time estimate on this CPU")
    summary.add_argument("--preset", default="tiny", choices=["paper", "tiny"])
    summary.add_argument("--frames", type=int, default=None, help="clip length to time (default: the preset's clip)")
    summary.add_argument("--no-timing", action="store_true", help="only count parameters")
    summary.set_defaults(func=_cmd_model_summary)

    conv = sub.add_parser("convert", help="convert other projects' weights into moro checkpoints")
    conv_sub = conv.add_subparsers(dest="convert_command", required=True, metavar="SUBCOMMAND")
    off = conv_sub.add_parser("official", help="the authors' released MoRo weights -> a moro 'paper' checkpoint",
                              description="Map the authors' stage-5 last.ckpt by name onto the paper preset; "
                                          "see README 'Using the authors' weights'.")
    off.add_argument("--ckpt", required=True, help="the authors' last.ckpt (MIMO-vit-release/video_train/checkpoints)")
    off.add_argument("--connection-matrices", required=True,
                     help="folder with _pool{k}.npy / _unpool{k}.npy (body_models/smplx_ConnectionMatrices)")
    off.add_argument("--traj-stats", required=True, help="amass_cum_traj.pkl (canonical-trajectory Mean / Std)")
    off.add_argument("--tokenizer", default=None, help="optional tokenizer.ckpt, checked against last.ckpt's copy")
    off.add_argument("--backbone", default=None, help="optional vit_pose_hmr2.pth, checked against last.ckpt's copy")
    off.add_argument("--smplx", default=None, help="optional SMPLX_NEUTRAL.npz, checked against the authors' SMPL-X")
    off.add_argument("--trust-pickle", action="store_true",
                     help="unpickle the inputs for real (weights_only=False): only for files you trust")
    off.add_argument("--out", required=True, help="output moro checkpoint (e.g. moro_paper.ckpt)")
    off.set_defaults(func=_cmd_convert_official)

    from moro.cli_tokenizer import add_tokenizer_commands, add_train_commands

    add_tokenizer_commands(sub)  # moro tokenizer summary
    add_train_commands(sub)  # moro train tokenizer
    from moro.cli_infer import add_infer_command

    add_infer_command(sub)  # moro infer VIDEO
    from moro.cli_bench import add_bench_command
    add_bench_command(sub)  # moro bench speed|accuracy
    from moro.cli_prepare import add_prepare_command
    add_prepare_command(sub)  # moro prepare DATASET --root SRC --out DST
    ev.epilog = "moro eval tokenizer --checkpoint CKPT  scores a mesh tokenizer instead (see its --help)."
    return p


def _route(argv: list[str]) -> argparse.Namespace:
    """Parse argv; `moro eval tokenizer ...` has its own parser (plain `moro eval` scores predictions)."""
    flags = [a for a in argv if a in ("-v", "--verbose")]
    rest = [a for a in argv if a not in ("-v", "--verbose")]
    if rest[:2] == ["eval", "tokenizer"]:
        from moro.cli_tokenizer import build_eval_tokenizer_parser

        return build_eval_tokenizer_parser().parse_args(flags + rest[2:])
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from moro.allocator import tune_allocator

    tune_allocator()  # before torch's first allocation (moro.allocator)
    args = _route(sys.argv[1:] if argv is None else list(argv))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"moro: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
