"""``moro train STAGE`` and ``moro train all``: the MoRo training stages (moro.training.engine / pipeline)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from moro.training.recipes import STAGES


def _run_config(args: argparse.Namespace):
    from moro.training.engine import RunConfig

    keys = ("steps", "batch", "lr", "clip_frames", "warmup", "occluder_prob", "occluder_size", "backbone_lr", "motion_lr")
    overrides = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    if "occluder_size" in overrides:
        lo, hi = overrides["occluder_size"] = tuple(overrides["occluder_size"])
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"--occluder-size {lo} {hi}: expected 0 < LOW <= HIGH <= 1 (fractions of the crop side)")
    if not 0.0 <= overrides.get("occluder_prob", 0.0) <= 1.0:
        raise ValueError(f"--occluder-prob {overrides['occluder_prob']}: expected a probability in [0, 1]")
    devices = args.devices if args.devices == "auto" else int(args.devices)
    return RunConfig(preset=args.preset, out=args.out, data=getattr(args, "data", None), val_data=getattr(args, "val_data", None),
                     init=getattr(args, "init", None), resume=args.resume,
                     max_seconds=None if args.max_minutes is None else 60.0 * args.max_minutes,
                     accelerator=args.accelerator, devices=devices, num_nodes=args.num_nodes, precision=args.precision,
                     seed=args.seed, workers=args.workers, threads=args.threads, overrides=overrides,
                     progress=not args.no_progress, backbone_weights=getattr(args, "backbone_weights", None))


def _cmd_train_stage(args: argparse.Namespace) -> int:
    from moro.tokenizer.presets import tokenizer_preset
    from moro.training.engine import train_stage
    from moro.training.pipeline import prepare_data
    from moro.training.tokenizer import load_preset_body

    cfg = _run_config(args)
    body = load_preset_body(tokenizer_preset(args.preset))
    if cfg.data is None:
        raise ValueError("--data is required: a `moro synth` split or a prepared training cache (or use `moro train all`)")
    tokenizer = args.tokenizer or _tokenizer_of(cfg.init)
    from moro.training.pipeline import _as_config

    cfg.data = _as_config(prepare_data(cfg.data, tokenizer, body, max_sequences=args.data_sequences))
    if cfg.val_data:
        cfg.val_data = _as_config(prepare_data(cfg.val_data, tokenizer, body, split="val"))
    r = train_stage(args.stage, cfg, body)
    print(f"{r.stage}: {r.steps_done}/{r.steps_planned} steps in {r.seconds / 60:.1f} min"
          f"{' (truncated by --max-minutes)' if r.truncated else ''}; model: {r.model_path}")
    print(f"stages_completed=1 final_loss={r.final_loss:.4f}")
    return 0


def _tokenizer_of(init: str | None) -> str:
    """The tokenizer file behind --init: the file itself for pose_pretrain, else the one its chain recorded."""
    import torch

    if init is None:
        raise ValueError("pass --init (the parent stage's model.ckpt, or a tokenizer file for pose_pretrain)")
    payload = torch.load(init, map_location="cpu", weights_only=True, mmap=True)
    if isinstance(payload, dict) and payload.get("format") == "moro-model":
        rec = payload.get("training") or {}
        tok = rec.get("tokenizer_file")
        if tok is None:
            raise ValueError(f"{init} does not record its tokenizer file; pass --tokenizer TOKENIZER.ckpt")
        return tok
    return init


def _cmd_train_all(args: argparse.Namespace) -> int:
    from moro.training.pipeline import train_all

    cfg = _run_config(args)
    results = train_all(cfg, data=args.data, val=args.val_data, tokenizer=args.tokenizer, max_minutes=args.max_minutes,
                        say=lambda s: print(s, file=sys.stderr, flush=True), data_sequences=args.data_sequences)
    for r in results:
        print(f"{r.stage:<16} {r.steps_done:>6}/{r.steps_planned:<6} steps {r.seconds / 60:6.1f} min  "
              f"loss {r.final_loss:.4f}{'  (truncated)' if r.truncated else ''}  {r.model_path}")
    print(f"stages_completed={len(results)} final_loss={results[-1].final_loss:.4f}")
    return 0


def _cmd_train_visibility(args: argparse.Namespace) -> int:
    import torch

    from moro.inference.loading import load_model, resolve_body
    from moro.training.visibility import VisibilityFitConfig, VisibilityFitError, fit_visibility_head, write_with_head

    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.checkpoint)
    body = resolve_body(model)
    cfg = VisibilityFitConfig(data=args.data, val=args.val_data, sequences=args.sequences,
                              val_sequences=args.val_sequences, lam=args.lam)
    try:
        head = fit_visibility_head(model, body, cfg)
    except VisibilityFitError as e:
        print(f"moro train visibility: {e}", file=sys.stderr)
        return 2
    write_with_head(args.checkpoint, args.out, head)
    r = head.record
    print(f"visibility head -> {args.out}: tau={head.tau:g} sigma={head.sigma:g} "
          f"val_mpjpe_occ={r['val_mpjpe_occ_decoded_mm']:.1f}->{r['val_mpjpe_occ_carried_mm']:.1f}")
    return 0


def _cmd_train_backbone(args: argparse.Namespace) -> int:
    import torch

    from moro.model.image_encoder import ImageEncoderConfig, build_image_backbone
    from moro.tokenizer.presets import tokenizer_preset
    from moro.training.backbone_pose import BackbonePretrainConfig, pretrain_backbone
    from moro.training.pipeline import _as_config, prepare_data
    from moro.training.tokenizer import load_preset_body

    start = args.start_weights
    if start is not None and not Path(start).is_file():
        print(f"moro train backbone: --start-weights {start}: no such file (an earlier run's OUT/backbone.pt)",
              file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    body = load_preset_body(tokenizer_preset(args.preset))
    data = _as_config(prepare_data(args.data, args.tokenizer, body, max_sequences=args.data_sequences))
    val = _as_config(prepare_data(args.val_data, args.tokenizer, body, split="val")) if args.val_data else None
    icfg = ImageEncoderConfig.tiny() if args.preset == "tiny" else ImageEncoderConfig.paper()
    backbone = build_image_backbone(icfg, pretrained=True if start is None else start)
    cfg = BackbonePretrainConfig(out=str(args.out), data=data, val_data=val, steps=args.steps, batch=args.batch,
                                 target=args.target, rotation_weight=args.rotation_weight,
                                 start_weights=None if start is None else str(Path(start).resolve()),
                                 lr=args.lr, head_lr=args.head_lr, eval_every=args.eval_every, val_frames=args.val_frames,
                                 seed=args.seed, progress=not args.no_progress, workers=args.workers,
                                 max_seconds=None if args.max_minutes is None else 60.0 * args.max_minutes)
    r = pretrain_backbone(cfg, backbone, body, resume=args.resume, say=lambda s: print(s, file=sys.stderr, flush=True))
    h = r["heldout"] or {}
    print(f"backbone: {r['steps_done']}/{r['steps_planned']} steps in {r['seconds'] / 60:.1f} min"
          f"{' (truncated by --max-minutes)' if r['truncated'] else ''}; weights: {r['backbone_file']}")
    if h:
        rot = f" rot_median_deg={h['rot_median_deg']:.1f} rot_over90_pct={h['rot_over90_pct']:.1f}" if "rot_median_deg" in h else ""
        print(f"heldout_v2v_mm={h['v2v_mm']:.1f} mean_mesh_v2v_mm={h['mean_mesh_v2v_mm']:.1f}{rot}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="tiny", choices=["tiny", "paper"])
    p.add_argument("--out", required=True, help="run folder; each stage writes OUT/<stage>/ (model.ckpt, last.ckpt, metrics.csv)")
    p.add_argument("--data", nargs="+", default=None, metavar="PATH[:WEIGHT]",
                   help="training data: `moro synth` splits, `moro prepare` outputs (real datasets) or training caches, "
                        "mixed by weight (default 1 each); e.g. --data SYNTH:1 BEDLAM:2 EGOBODY:1")
    p.add_argument("--val-data", nargs="+", default=None, metavar="PATH[:WEIGHT]",
                   help="validation data (optional; `moro prepare` outputs use their 'val' split)")
    p.add_argument("--data-sequences", type=int, default=None, help="use only the split's first N sequences")
    p.add_argument("--tokenizer", default=None, help="a trained tokenizer checkpoint (train all: skip the tokenizer stage)")
    p.add_argument("--resume", action="store_true", help="continue OUT/<stage>/last.ckpt with the same settings")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-time budget; stages stop early (truncated)")
    p.add_argument("--accelerator", default="auto", choices=["auto", "cpu", "gpu", "cuda"])
    p.add_argument("--devices", default="1", help="devices (processes) per node: DDP when > 1")
    p.add_argument("--num-nodes", type=int, default=1, help="nodes (launch with torchrun or SLURM srun)")
    p.add_argument("--precision", default=None, help="Fabric precision (default bf16-mixed on GPUs, 32-true on CPUs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="data-loader processes per device (CPU augmentation)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    p.add_argument("--no-progress", action="store_true")


def add_stage_commands(train_sub: argparse._SubParsersAction) -> None:
    """Register ``moro train <stage>`` for every stage and ``moro train all``."""
    for stage in STAGES:
        p = train_sub.add_parser(stage, help=f"MoRo stage {stage} (moro.training.recipes)")
        _common(p)
        p.add_argument("--init", default=None, help="parent checkpoint (pose_pretrain: a tokenizer file; else the "
                                                    "parent stage's OUT/<parent>/model.ckpt)")
        p.add_argument("--steps", type=int, default=None)
        p.add_argument("--batch", type=int, default=None)
        p.add_argument("--lr", type=float, default=None)
        p.add_argument("--clip-frames", type=int, default=None)
        p.add_argument("--warmup", type=int, default=None, help="linear warm-up steps")
        if stage == "video_train":
            p.add_argument("--occluder-prob", type=float, default=None,
                           help="probability per clip of a painted occluder over a span of it (recipe occluder_prob)")
            p.add_argument("--occluder-size", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                           help="its side as a fraction of the crop side, uniform in [LOW, HIGH] (1 hides the frame)")
            p.add_argument("--motion-lr", type=float, default=None,
                           help="the motion encoder's learning rate (default: --lr; 0 freezes it): keeps the "
                                "motion prior of the earlier stages")
        if stage == "image_pretrain":
            p.add_argument("--backbone-lr", type=float, default=None,
                           help="the backbone's learning rate (default: --lr); lower for a pose-pretrained backbone")
            p.add_argument("--backbone-weights", default=None,
                           help="start the backbone from this file instead of the parent's weights (the output "
                                "OUT/backbone.pt of `moro train backbone`, the tiny preset's pose pretraining)")
        p.set_defaults(func=_cmd_train_stage, stage=stage)
    v = train_sub.add_parser("visibility", help="fit a checkpoint's visibility head and heading carry "
                                                "(moro.training.visibility); writes a new checkpoint")
    v.add_argument("--checkpoint", required=True, help="MoRo checkpoint with backbone and image encoder")
    v.add_argument("--data", required=True, type=Path, help="synthetic training split (moro synth --split train)")
    v.add_argument("--val-data", required=True, type=Path, help="synthetic validation split (moro synth --split val): "
                                                                 "picks tau and sigma")
    v.add_argument("--out", required=True, type=Path, help="checkpoint to write (may be --checkpoint itself)")
    v.add_argument("--sequences", type=int, default=64, help="training sequences for the fit (default 64)")
    v.add_argument("--val-sequences", type=int, default=None, help="validation sequences (default all)")
    v.add_argument("--lam", type=float, default=1000.0, help="ridge weight")
    v.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    v.set_defaults(func=_cmd_train_visibility)
    bb = train_sub.add_parser("backbone", help="pretrain the image backbone to regress the local mesh "
                                                "(moro.training.backbone_pose); writes OUT/backbone.pt")
    bb.add_argument("--preset", default="tiny", choices=["tiny", "paper"], help="whose backbone and body model")
    bb.add_argument("--out", required=True, type=Path, help="run folder (backbone.pt, last.ckpt, metrics.csv, record.json)")
    bb.add_argument("--data", required=True, nargs="+", metavar="PATH[:WEIGHT]", help="training data (as for the stages)")
    bb.add_argument("--val-data", default=None, help="held-out split: vertex error against the mean mesh as it trains")
    bb.add_argument("--tokenizer", required=True, help="the tokenizer checkpoint (its ids label the training cache)")
    bb.add_argument("--data-sequences", type=int, default=None, help="use only the split's first N sequences")
    bb.add_argument("--start-weights", default=None, help="start the backbone from this file (an earlier run's "
                                                          "OUT/backbone.pt) instead of its ImageNet weights")
    bb.add_argument("--target", default="both", choices=["both", "oriented", "local"],
                    help="both (default): the local mesh and the root rotation the crop shows (pose and facing); "
                         "oriented: one loss on the local mesh turned by that rotation; local: the pose only")
    bb.add_argument("--rotation-weight", type=float, default=1.0,
                    help="target both: weight of the root-rotation term against the local-mesh term")
    bb.add_argument("--steps", type=int, default=3000)
    bb.add_argument("--batch", type=int, default=32)
    bb.add_argument("--lr", type=float, default=3e-4, help="backbone learning rate")
    bb.add_argument("--head-lr", type=float, default=1e-3, help="the throwaway head's learning rate")
    bb.add_argument("--eval-every", type=int, default=250)
    bb.add_argument("--val-frames", type=int, default=1024)
    bb.add_argument("--seed", type=int, default=0)
    bb.add_argument("--max-minutes", type=float, default=None, help="wall-time budget (stops early; --resume continues)")
    bb.add_argument("--resume", action="store_true", help="continue OUT/last.ckpt with the same settings")
    bb.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    bb.add_argument("--workers", type=int, default=0, help="data-loader processes for the augmented crops "
                                                          "(same batches; on a GPU machine they keep the GPU fed)")
    bb.add_argument("--no-progress", action="store_true")
    bb.set_defaults(func=_cmd_train_backbone)
    a = train_sub.add_parser("all", help="every stage in order on the synthetic world (tokenizer .. video_train)")
    _common(a)
    a.set_defaults(func=_cmd_train_all)
