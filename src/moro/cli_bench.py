"""``moro bench speed`` and ``moro bench accuracy``: the figures of benchmarks/RESULTS.md (prints live here)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

QUICK_RESULTS = "runs/bench-quick"  # --quick never overwrites the published figures
RESULTS = "benchmarks"


def _command() -> str:
    return "moro " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv and "moro" in Path(sys.argv[0]).name \
        else "moro bench ..."


def _results_dir(args) -> Path:
    return Path(args.results or (QUICK_RESULTS if args.quick else RESULTS))


def _line(r: dict) -> str:
    net = r["network"]["preset"] if isinstance(r.get("network"), dict) else r.get("network", "")
    mem = f"peak_rss_mb={r.get('peak_rss_mb', float('nan')):.0f}" + (
        f" peak_cuda_mb={r['peak_cuda_mb']:.0f}" if "peak_cuda_mb" in r else "")
    k = r["kind"]
    if k == "matmul":
        return f"matmul peak: {r['flops_per_s'] / 1e9:.1f} GFLOP/s ({r['dtype']}, {r['size']}^3)"
    if k == "tokenizer":
        return f"tokenizer {net}: {r['frames']} meshes/call decode_fps={r['decode_fps']:.3g} encode_fps={r['encode_fps']:.3g} {mem}"
    scaled = f" ({r['timed_passes']} of {r['iterations']} passes timed, scaled)" if r.get("timed_passes", r["iterations"]) < r["iterations"] else ""
    if k == "decode":
        return (f"decode {net}: window={r['frames']} K={r['iterations']} fps={r['fps']:.3g} "
                f"gflop_per_frame={r['flops'] / r['frames'] / 1e9:.3g} achieved_gflops={r['achieved_flops_per_s'] / 1e9:.3g} "
                f"{mem}{scaled} (fraction of the matmul peak: in RESULTS.md, after the closing peak probe)")
    if k == "pipeline":
        st = " ".join(f"{s}={v:.3g}ms" for s, v in r["stages_ms_per_frame"].items())
        return (f"pipeline {net} backbone={'yes' if r['backbone'] else 'no'}: frames={r['frames']} fps={r['fps']:.3g} "
                f"[{st} per frame]{'' if r['fit'] else ' (no fit)'} {mem}{scaled}")
    return f"scaling {net}: frames={r['frames']} K={r['iterations']} seconds={r['seconds']:.3g} fps={r['fps']:.3g} {mem}"


def _cmd_speed(args: argparse.Namespace) -> int:
    from moro.bench.measure import describe_machine, machine
    from moro.bench.report import render_results, write_json
    from moro.bench.speed import QUICK_SCALING_LENGTHS, SpeedConfig, run_speed, summary_line

    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print("moro bench speed: --device cuda but torch sees no GPU", file=sys.stderr)
            return 2
    cfg = SpeedConfig(quick=args.quick, device=args.device, bf16=args.bf16, threads=args.threads,
                      checkpoint=args.checkpoint, only=args.only or [])
    m = machine(args.device)
    print(f"machine: {describe_machine(m)}")
    notes = ["each measurement runs in a fresh process; peak memory = its peak resident set"
             + (" and torch.cuda.max_memory_allocated" if args.device.startswith("cuda") else ""),
             "pipeline = crops + backbone + image encoder + windowed decoding + fit, from in-memory frames "
             "(video decoding excluded)"]
    if m["load_1min"] > 0.5 * m["cores"]:
        notes.append(f"the machine was busy (load {m['load_1min']} on {m['cores']} cores): figures are lower bounds")
    if args.quick and not args.device.startswith("cuda"):
        notes.append(f"--quick: few frames; paper decoding on an 8-frame window with 1 of K passes timed; scaling "
                     f"lengths SHORTENED to {'/'.join(map(str, QUICK_SCALING_LENGTHS))} on the micro network (width 32, "
                     f"1 pass): peak_mem_ratio_18000_vs_600 below is the {QUICK_SCALING_LENGTHS[-1]}-vs-600 ratio; run "
                     "without --quick for 18000 frames")
    for n in notes:
        print(f"note: {n}")
    result = run_speed(cfg, report=lambda r: print(_line(r), flush=True))
    d = result["derived"]
    if "scaling" in d:
        f = d["scaling"]["time_fit"]
        print(f"scaling fit: seconds = {f['intercept_s']:.3g} + {1000 * f['slope_s_per_frame']:.3g} ms x frames "
              f"(r2={f['r2']:.4f}, max relative residual {100 * f['max_rel_residual']:.1f} %)")
        if args.quick and not args.device.startswith("cuda") and 18000 not in d["scaling"]["lengths"]:
            mem = dict(zip(d["scaling"]["lengths"], d["scaling"]["peak_rss_mb"]))
            d["peak_mem_ratio_18000_vs_600"] = mem[max(mem)] / mem[600]
            print(f"note: peak_mem_ratio_18000_vs_600 = peak at {max(mem)} / peak at 600 frames (quick, shortened)")
    summary = summary_line(d)
    result.update(machine=m, command=_command(), notes=notes, summary=summary)
    folder = _results_dir(args)
    write_json(folder, "speed.json" if not args.device.startswith("cuda") else "speed-cuda.json", result)
    print(f"wrote {render_results(folder)}")
    print(summary)
    return 0


def _cmd_accuracy(args: argparse.Namespace) -> int:
    from moro.bench.accuracy import AccuracyConfig, run_accuracy, summary_line
    from moro.bench.measure import describe_machine, machine
    from moro.bench.report import render_results, write_json

    folder = _results_dir(args)
    cfg = AccuracyConfig(bench=Path(args.bench), val=Path(args.val), out=Path(args.work or folder / "accuracy-work"),
                         checkpoint=args.checkpoint, quick=args.quick, sequences=args.sequences, frames=args.frames,
                         val_sequences=args.val_sequences, device=args.device, vertices=not args.no_vertices,
                         rows=tuple(args.rows) if args.rows else None, halves=tuple(args.halves))
    m = machine(args.device)
    print(f"machine: {describe_machine(m)}")
    result = run_accuracy(cfg, say=lambda s: print(s, flush=True))
    summary = summary_line(result["ratios"])
    result.update(machine=m, command=_command(), summary=summary)
    write_json(folder, "accuracy.json", result)
    print(f"wrote {render_results(folder)}")
    for k, v in result["ratios"].items():
        print(f"{k}={v:.3f}")
    print(summary)
    return 0


def add_bench_command(sub) -> None:
    """Register ``moro bench speed`` and ``moro bench accuracy`` on the top-level subparsers."""
    bench = sub.add_parser("bench", help="benchmarks: speed/memory/scaling, occlusion accuracy (benchmarks/RESULTS.md)")
    bsub = bench.add_subparsers(dest="bench_command", required=True, metavar="SUBCOMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quick", action="store_true", help="few frames / sequences: minutes on a CPU")
    common.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    common.add_argument("--checkpoint", default=None, help="tiny MoRo checkpoint (default: the shipped one; else random weights)")
    common.add_argument("--results", default=None,
                        help=f"folder of RESULTS.md + results/ (default {RESULTS}/, with --quick {QUICK_RESULTS}/)")
    sp = bsub.add_parser("speed", parents=[common], help="fps, peak memory, FLOP/s vs matmul peak, scaling to 18000 frames")
    sp.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA only)")
    sp.add_argument("--threads", type=int, default=None, help="torch threads per measurement (default: usable cores)")
    sp.add_argument("--only", nargs="+", default=None, choices=["tokenizer", "decode", "pipeline", "scaling"],
                    help="run only these parts (the matmul peak always runs)")
    sp.set_defaults(func=_cmd_speed)
    ac = bsub.add_parser("accuracy", parents=[common], help="supplement-Table-1 columns on bench/occ and bench/clean")
    ac.add_argument("--bench", default="/work/data/synth/bench", help="split of `moro synth --split bench`")
    ac.add_argument("--val", default="/work/data/synth/val", help="tuning split of the smoothing baselines")
    ac.add_argument("--sequences", type=int, default=None, help="sequences per half (default all; --quick 1)")
    ac.add_argument("--frames", type=int, default=None, help="first frames of each sequence (default all; --quick 60)")
    ac.add_argument("--val-sequences", type=int, default=None, help="val sequences for tuning (default 10; --quick 1)")
    ac.add_argument("--work", default=None, help="folder for predictions and eval files (default RESULTS/accuracy-work)")
    ac.add_argument("--no-vertices", action="store_true", help="do not write meshes into the predictions (no PVE)")
    ac.add_argument("--rows", nargs="+", default=None, help="only these rows (moro and per-frame always run)")
    ac.add_argument("--halves", nargs="+", default=["occ", "clean"], choices=["occ", "clean"], help="bench halves to score")
    ac.set_defaults(func=_cmd_accuracy)
