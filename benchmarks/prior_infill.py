"""How well the motion prior alone fills a gap: ground-truth tokens around a masked span of frames.

No image is involved. For each clip of ``--clip`` frames of the bench sequences, the ground-truth
local meshes (body model of the labels' ``body_pose`` and ``betas``, root at the origin) are
tokenized; the middle ``--span`` frames are set to [MASK]; the motion encoder, given the ground-truth
camera trajectory (canonicalised, as in inference), fills them in ``--passes`` confidence-ordered
passes over the span's positions (the cosine schedule of inference; fixed tokens stay fixed).
Scored on the span frames: the root-relative error of the 22 joints of the decoded local mesh
(tokens -> smoother -> tokenizer decoder -> joint regressor), mm, against the ground-truth mesh's
joints, for

=============  ======================================================================================
tokenizer      the ground-truth tokens of the span through the tokenizer decoder alone (no smoother)
tokens         the ground-truth tokens of the span through smoother and decoder (the floor of the fills)
prior K=1/K    the motion encoder's fill, one pass / ``--passes`` passes
hold           every span frame takes the tokens of the last frame before the span
blend          the joints of the span blend linearly between the two frames around it
=============  ======================================================================================

A prior worth its name beats ``hold`` and ``blend``: that is what an occluded stretch of video needs.

    python benchmarks/prior_infill.py [--checkpoint M] [--sequences 6] [--span 16] [--clip 64]

Last line: ``prior_infill_mm=<prior K> hold_mm=<hold> blend_mm=<blend> tokens_mm=<tokens>
tokenizer_mm=<tokenizer>``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from moro.inference.decoding import masked_schedule

ROWS = ("tokenizer", "tokens", "prior K=1", "prior K", "hold", "blend")


def fill_span(logits: Callable[[torch.Tensor], torch.Tensor], ids: torch.Tensor, span: slice, mask_id: int,
              passes: int) -> torch.Tensor:
    """Fill the frames ``span`` of ids (t, n) with the codes of ``logits(ids) -> (t, n, k)`` in ``passes`` passes.

    The span's positions start as [MASK] (``mask_id``); after pass k the ``m_k`` least confident of
    them (:func:`~moro.inference.decoding.masked_schedule`) stay masked, the rest take their top-1 code
    and never change again; positions outside the span are never touched. Returns a new (t, n) tensor.
    """
    cur = ids.clone()
    cur[span] = mask_id
    t, n = cur.shape
    pos = torch.arange(t * n).view(t, n)[span].reshape(-1)  # flat positions of the span
    schedule = masked_schedule(len(pos), passes)
    for k in range(1, passes + 1):
        flat = cur.view(-1)
        still = pos[flat[pos] == mask_id]
        prob, code = logits(cur).reshape(t * n, -1)[still].softmax(-1).max(-1)
        fix = torch.argsort(prob, stable=True)[schedule[k]:]
        flat[still[fix]] = code[fix]
    return cur


def blend(joints: torch.Tensor, span: slice) -> torch.Tensor:
    """Joints (t, j, 3) whose ``span`` frames blend linearly from the frame before it to the frame after it."""
    a, b = span.start - 1, span.stop
    if a < 0 or b >= len(joints):
        raise ValueError(f"the span {span.start}..{span.stop - 1} needs a frame on each side in {len(joints)} frames")
    w = torch.linspace(0.0, 1.0, b - a + 1, dtype=joints.dtype)[1:-1, None, None]
    out = joints.clone()
    out[span] = (1 - w) * joints[a] + w * joints[b]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=None, help="tiny MoRo checkpoint (default: the shipped one)")
    ap.add_argument("--bench", type=Path, default=Path("/work/data/synth/bench"))
    ap.add_argument("--half", default="clean", choices=["occ", "clean"])
    ap.add_argument("--sequences", type=int, default=6)
    ap.add_argument("--clip", type=int, default=64, help="frames per clip (non-overlapping clips)")
    ap.add_argument("--span", type=int, default=16, help="masked frames in the middle of each clip")
    ap.add_argument("--passes", type=int, default=5)
    args = ap.parse_args()
    if not 1 <= args.span <= args.clip - 2:
        raise SystemExit(f"--span must be between 1 and --clip - 2 = {args.clip - 2}, got {args.span}")

    from moro.bench.accuracy import _sequences
    from moro.bench.models import build_network
    from moro.geometry import rotmat_to_rot6d
    from moro.inference.loading import resolve_body

    model, note = build_network("tiny", "cpu", args.checkpoint)
    model.eval()
    body = resolve_body(model)
    print(note)
    a0 = (args.clip - args.span) // 2
    span = slice(a0, a0 + args.span)
    errs: dict[str, list[float]] = {r: [] for r in ROWS}
    seqs = _sequences(args.bench / args.half, args.sequences)
    if not seqs:
        raise SystemExit(f"no sequences under {args.bench / args.half}: make them with `moro synth --split bench`")
    with torch.no_grad():
        for seq in seqs:
            lab = seq.labels
            for s0 in range(0, seq.num_frames - args.clip + 1, args.clip):
                f = slice(s0, s0 + args.clip)
                pose = torch.from_numpy(lab["body_pose"][f]).float()
                betas = torch.from_numpy(lab["betas"]).float()[None].expand(len(pose), -1)
                verts = body(pose, betas).vertices  # (t, v, 3), root at the origin
                ids = model.tokenizer.encode(verts)[0]  # (t, n)
                traj = torch.cat((rotmat_to_rot6d(torch.from_numpy(lab["root_rot_cam"][f]).float()),
                                  torch.from_numpy(lab["root_trans_cam"][f]).float()), -1)[None]
                cano = model.canonical_input(traj)

                def logits(x: torch.Tensor) -> torch.Tensor:
                    return model(x[None], cano).motion.logits[0]

                def joints(x: torch.Tensor) -> torch.Tensor:
                    return body.joints22(model.mesh_from_ids(x[None])[0])

                truth = body.joints22(verts)
                truth = truth - truth[:, :1]

                def err(j: torch.Tensor) -> float:
                    return float((torch.linalg.vector_norm((j - j[:, :1]) - truth, dim=-1)[span] * 1000).mean())

                hold = ids.clone()
                hold[span] = ids[a0 - 1]
                errs["tokenizer"].append(err(body.joints22(model.tokenizer.decode_codes(ids))))
                errs["tokens"].append(err(joints(ids)))
                errs["prior K=1"].append(err(joints(fill_span(logits, ids, span, model.mask_id, 1))))
                errs["prior K"].append(err(joints(fill_span(logits, ids, span, model.mask_id, args.passes))))
                errs["hold"].append(err(joints(hold)))
                errs["blend"].append(err(blend(joints(ids), span)))
            print(f"{seq.name}: " + ", ".join(f"{r} {np.mean(v):.1f}" for r, v in errs.items()), flush=True)
    n = len(errs["tokens"])
    print(f"{args.half}: {len(seqs)} sequences, {n} clips of {args.clip} frames, span {args.span} frames; "
          f"root-relative joint error on the span, mm:")
    for r in ROWS:
        name = f"prior K={args.passes}" if r == "prior K" else r
        print(f"  {name:10s} {np.mean(errs[r]):6.1f}")
    if not math.isfinite(np.mean(errs["prior K"])):
        raise SystemExit("no clip was scored")
    print(f"prior_infill_mm={np.mean(errs['prior K']):.1f} hold_mm={np.mean(errs['hold']):.1f} "
          f"blend_mm={np.mean(errs['blend']):.1f} tokens_mm={np.mean(errs['tokens']):.1f} "
          f"tokenizer_mm={np.mean(errs['tokenizer']):.1f}")


if __name__ == "__main__":
    main()
