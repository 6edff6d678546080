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


def _cmd_demo(args: argparse.Namespace) -> int:
    print("moro demo: the video demo lands with issue 'Inference and the demo'. Available now:")
    print("  moro body check --model anny --topology notoes_collapse5pc   # body model + fit round trip")
    print("  moro body build --topology all                               # pre-build Anny topologies")
    return _cmd_body_check(argparse.Namespace(model="anny", topology="notoes_collapse5pc", path=None, frames=16, seed=0))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="moro", description="MoRo: 3D human motion from monocular video, robust to occlusion.")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the demo")
    demo.set_defaults(func=_cmd_demo)

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
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"moro: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
