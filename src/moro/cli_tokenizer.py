"""``moro tokenizer summary``, ``moro train tokenizer``, ``moro eval tokenizer``: thin commands over
:mod:`moro.tokenizer` and :mod:`moro.training` (progress bars and prints live here)."""

from __future__ import annotations

import argparse
import sys

from moro.tokenizer.presets import TOKENIZER_PRESETS

__all__ = ["add_tokenizer_commands", "add_train_commands", "build_eval_tokenizer_parser"]


def _cmd_tokenizer_summary(args: argparse.Namespace) -> int:
    import torch

    from moro.tokenizer import MeshVQVAE
    from moro.tokenizer.presets import tokenizer_preset

    preset = tokenizer_preset(args.preset)
    cfg = preset.config()
    sizes = cfg.hierarchy.level_sizes(preset.num_vertices)
    print(f"tokenizer preset '{preset.name}': {preset.note}")
    print(f"body mesh {preset.body_model}/{preset.topology}, levels {' -> '.join(map(str, sizes))} "
          f"({sizes[-1]} tokens x {cfg.latent_dim} dims), {cfg.codebook_size} codes, widths {list(cfg.channels)}, "
          f"{cfg.num_basis} basis kernels, template offset {'on' if cfg.template_offset else 'off'}")
    if args.mesh_stats or preset.name == "tiny":  # real hierarchy: exact (tiny's mesh loads in milliseconds)
        from moro.training.tokenizer import build_tokenizer, load_preset_body

        model, exact = build_tokenizer(preset, load_preset_body(preset, args.smplx)), "exact"
    elif preset.name == "paper":  # the authors' connection files: sizes and slot counts known (layout doc 3.2)
        from moro.model.summary import official_shape_hierarchy

        with torch.device("meta"):
            model = MeshVQVAE(cfg, official_shape_hierarchy())
        exact = "exact for the authors' hierarchy files"
    else:
        with torch.device("meta"):
            model = MeshVQVAE(cfg, _shape_hierarchy(sizes))
        exact = "estimate: slot counts like the authors' files; --mesh-stats builds the real hierarchy"
    rows = [("encoder", model.layers[: model.num_encoder_layers]), ("decoder", model.layers[model.num_encoder_layers :])]
    print(f"{'part':<12}{'params':>12}")
    for name, mods in rows:
        print(f"{name:<12}{sum(p.numel() for p in mods.parameters()):>12,}")
    buffers = sum(b.numel() for n, b in model.named_buffers() if n.startswith("quantizer."))
    print(f"{'codebook':<12}{cfg.codebook_size * cfg.latent_dim:>12,}  (EMA buffers, {buffers:,} values)")
    total = sum(p.numel() for p in model.parameters())
    print(f"params={total} tokens={sizes[-1]} ({exact})")
    return 0


def _shape_hierarchy(sizes):
    """Stand-in hierarchy with the preset's level sizes and typical slot counts (parameter count only)."""
    import numpy as np

    from moro.tokenizer import MeshHierarchy, NeighbourList

    def nl(n_out, n_in, m):
        ids = np.zeros((n_out, m), dtype=np.int64)
        ids[:, 0] = np.arange(n_out) % n_in
        d = np.ones_like(ids)
        d[:, 0] = 0
        return NeighbourList(ids, d, n_in)

    pool, unpool = [], []
    conv_m, pool_m, unpool_m = (31, 24, 28, 34), (41, 59, 84), (17, 15, 17)  # the authors' SMPL-X files
    for i, v in enumerate(sizes):
        m = conv_m[min(i, 3)]
        pool.append(nl(v, v, m))
        unpool.append(nl(v, v, m))
        if i + 1 < len(sizes):
            pool.append(nl(sizes[i + 1], v, pool_m[min(i, 2)]))
            unpool.append(nl(v, sizes[i + 1], unpool_m[min(i, 2)]))
    return MeshHierarchy(tuple(pool), tuple(unpool), "shape-only")


def add_tokenizer_commands(sub: argparse._SubParsersAction) -> None:
    tok = sub.add_parser("tokenizer", help="the mesh tokenizer (Mesh-VQ-VAE): presets and parameter counts")
    tok_sub = tok.add_subparsers(dest="tokenizer_command", required=True, metavar="SUBCOMMAND")
    s = tok_sub.add_parser("summary", help="a preset's mesh, levels, token count and parameter counts")
    s.add_argument("--preset", default="tiny", choices=sorted(TOKENIZER_PRESETS))
    s.add_argument("--mesh-stats", action="store_true", help="build the real hierarchy for exact counts (loads the body model)")
    s.add_argument("--smplx", default=None, help="SMPL-X model file or folder (paper preset with --mesh-stats)")
    s.set_defaults(func=_cmd_tokenizer_summary)


def _cmd_train_tokenizer(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from moro.tokenizer.presets import tokenizer_preset
    from moro.training.checkpoint import provenance
    from moro.training.mesh_source import LocalMeshSource
    from moro.training.tokenizer import build_tokenizer, load_preset_body, train_config, train_tokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    preset = tokenizer_preset(args.preset)
    cfg = train_config(args.preset, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed)
    body = load_preset_body(preset, args.smplx)
    model = build_tokenizer(preset, body, seed=cfg.seed)
    source = LocalMeshSource(body, seed=cfg.seed)
    bar = tqdm(total=cfg.steps, desc=f"tokenizer/{cfg.preset}", unit="step", dynamic_ncols=True, mininterval=2.0,
               file=sys.stderr)

    def on_step(r: dict) -> None:
        if bar.n == 0 and r["step"] > 1:
            bar.update(r["step"] - 1)  # resumed run
        bar.update(1)
        bar.set_postfix(loss=f"{r['loss']:.4f}", pve_mm=f"{r['vertex_mm']:.1f}", ppl=f"{r['perplexity']:.0f}",
                        used=r["codes_used"], dead=r["dead_codes"], refresh=False)
        if args.log_every and r["step"] % args.log_every == 0:
            bar.write(f"step {r['step']} loss={r['loss']:.5f} vertex_mm={r['vertex_mm']:.2f} perplexity={r['perplexity']:.1f} "
                      f"codes_used={r['codes_used']} dead_codes={r['dead_codes']} lr={r['lr']:.2e}")

    result = train_tokenizer(
        model, source, cfg, args.out, resume=args.resume, on_step=on_step,
        body_info={"model": preset.body_model, "topology": preset.topology}, meta=provenance(),
    )
    bar.close()
    print(f"trained {result.step}/{cfg.steps} steps in {result.seconds / 60:.1f} min; state: {result.state_path}")
    if result.tokenizer_path:
        print(f"tokenizer: {result.tokenizer_path}  (score it: moro eval tokenizer --checkpoint {result.tokenizer_path})")
    last = result.history[-1] if result.history else None
    if last:
        print(f"final loss={last['loss']:.5f} vertex_mm={last['vertex_mm']:.2f} perplexity={last['perplexity']:.1f}")
    return 0


def add_train_commands(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a component")
    train_sub = train.add_subparsers(dest="train_command", required=True, metavar="SUBCOMMAND")
    t = train_sub.add_parser("tokenizer", help="train the mesh tokenizer on local meshes of the motion generator")
    t.add_argument("--preset", default="tiny", choices=sorted(TOKENIZER_PRESETS))
    t.add_argument("--out", required=True, help="output folder: last.ckpt (resumable state), tokenizer.ckpt (result)")
    t.add_argument("--steps", type=int, default=None, help="optimiser steps (default: the preset's)")
    t.add_argument("--batch", type=int, default=None, help="meshes per step (default: the preset's)")
    t.add_argument("--lr", type=float, default=None, help="AdamW learning rate (default: the preset's)")
    t.add_argument("--seed", type=int, default=None, help="init and data seed (default 0; must be < 1000 to keep held-out data apart)")
    t.add_argument("--resume", action="store_true", help="continue OUT/last.ckpt with the same settings")
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    t.add_argument("--log-every", type=int, default=100, help="also print a plain log line every N steps (0: never)")
    t.add_argument("--smplx", default=None, help="SMPL-X model file or folder (paper preset)")
    t.set_defaults(func=_cmd_train_tokenizer)
    from moro.cli_train import add_stage_commands

    add_stage_commands(train_sub)  # moro train pose_pretrain | ... | all


def _cmd_eval_tokenizer(args: argparse.Namespace) -> int:
    import torch

    from moro.tokenizer.checkpoint import load_tokenizer, read_tokenizer_file
    from moro.training.tokenizer import load_body
    from moro.training.tokenizer_eval import evaluate_tokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    payload = read_tokenizer_file(args.checkpoint)
    body_info = payload.get("body") or {}
    if body_info.get("model") not in ("anny", "smplx"):
        raise ValueError(f"{args.checkpoint} does not say which body mesh it tokenizes (body={body_info}); cannot evaluate it")
    body = load_body(body_info["model"], body_info.get("topology", "body"), args.smplx)
    model = load_tokenizer(args.checkpoint, faces=body.faces.cpu().numpy(), num_vertices=body.num_vertices)
    meta = payload.get("meta") or {}
    print(f"tokenizer {args.checkpoint}: preset {payload.get('preset')}, {body.name} ({body.num_vertices} v) -> "
          f"{model.num_tokens} tokens, {model.config.codebook_size} codes; trained {meta.get('steps', '?')} steps "
          f"({meta.get('git_revision', '?')})")
    r = evaluate_tokenizer(model, body, num_meshes=args.meshes, batch=args.batch, seed=args.seed)
    print(f"held-out meshes: {r.num_meshes} (seed {args.seed})")
    print(f"PVE      {r.pve_mm:8.2f} mm")
    print(f"PA-PVE   {r.pa_pve_mm:8.2f} mm")
    print(f"MPJPE-22 {r.mpjpe_mm:8.2f} mm")
    print(f"codebook perplexity {r.perplexity:.1f} of {r.codebook_size}, dead codes {r.dead_codes}")
    print(f"encode+decode {r.meshes_per_s:.0f} meshes/s (batch {args.batch}, {r.threads} threads)")
    print(f"pve_mm={r.pve_mm:.2f} perplexity={r.perplexity:.1f} meshes_per_s={r.meshes_per_s:.0f}")
    return 0


def build_eval_tokenizer_parser() -> argparse.ArgumentParser:
    from moro.training.mesh_source import HELD_OUT_SEED

    p = argparse.ArgumentParser(prog="moro eval tokenizer",
                                description="score a tokenizer checkpoint on held-out synthetic local meshes")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    p.add_argument("--checkpoint", required=True, help="tokenizer checkpoint (OUT/tokenizer.ckpt of `moro train tokenizer`)")
    p.add_argument("--meshes", type=int, default=512, help="held-out meshes")
    p.add_argument("--batch", type=int, default=64, help="meshes per encode/decode call (throughput)")
    p.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="held-out source seed (>= 1000: apart from training)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--smplx", default=None, help="SMPL-X model file or folder (paper-preset checkpoints)")
    p.set_defaults(func=_cmd_eval_tokenizer)
    return p
