"""Does a checkpoint's image path read the body pose? Per-frame decoding of held-out crops vs the mean mesh.

For every k-th frame of a held-out split: the unaugmented crop around the ground-truth box, the
image encoder and the decoder with every pose token masked (the image stage's forward, no motion
context), argmax tokens decoded to the local mesh (root joint at the origin, body frame), against
the ground truth's local mesh. Baselines on the same frames: the mean local mesh of those frames
(the best constant, an oracle) and, per sequence, the sequence's own mean (what a network that only
recognised the sequence could reach).

    python benchmarks/image_pose.py CHECKPOINT [CHECKPOINT ...] --data /work/data/synth/val [--frames 1024]

Prints per checkpoint: v2v (mm), the two baselines, and the pose spread (standard deviation over the
frames of each leg's hip-to-ankle distance, predicted vs true, mm; a network decoding one constant
body shows ~0), and the correlation of predicted and true hip-to-ankle distances; the same within
sequences (each sequence's mean removed: the pose alone, not the body size that differs between
sequences, which the first figures include). Last line:
``v2v_mm=<first checkpoint> mean_mesh_v2v_mm=<baseline>``.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

HIPS_ANKLES = ((1, 7), (2, 8))  # joints22: (left hip, left ankle), (right hip, right ankle)


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of two equally shaped tensors (0 where ``a`` is constant)."""
    return float(np.corrcoef(a.flatten().numpy(), b.flatten().numpy())[0, 1]) if float(a.std()) > 0 else 0.0


def _within(x: torch.Tensor, seq_of: torch.Tensor) -> torch.Tensor:
    """(f, k) values minus their sequence's mean (seq_of (f,) sequence index of each frame)."""
    out = x.clone()
    for k in seq_of.unique():
        out[seq_of == k] -= x[seq_of == k].mean(0)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--data", required=True, help="held-out `moro synth` split or prepared cache")
    ap.add_argument("--tokenizer", default="models/tokenizer_tiny.ckpt", help="labels the cache (ids are not used)")
    ap.add_argument("--frames", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from moro.geometry import cliff_bbox_info
    from moro.inference.loading import load_model, resolve_body
    from moro.training.backbone_pose import heldout_frames, heldout_index
    from moro.training.pipeline import _as_config, prepare_data
    from moro.training.synth_data import SynthTrainData

    first = None
    for path in args.checkpoints:
        m = load_model(path).eval()
        body = resolve_body(m)
        data = SynthTrainData(_as_config(prepare_data(args.data, args.tokenizer, body, split="val")),
                              input_size=tuple(m.backbone.input_size))
        images, verts = heldout_frames(data, body, args.frames)
        where = heldout_index(data, args.frames)  # the frames heldout_frames took, in its order
        boxes = [data.seqs[k].lab["box_gt"][i] for k, i in where]
        Ks = [data.seqs[k].lab["K"] if data.seqs[k].lab["K"].ndim == 2 else data.seqs[k].lab["K"][i] for k, i in where]
        seq_of = [k for k, _ in where]
        bbox = cliff_bbox_info(torch.tensor(np.array(boxes), dtype=torch.float32),
                               torch.tensor(np.array(Ks), dtype=torch.float32))
        pred = []
        with torch.no_grad():
            for a in range(0, len(images), 64):
                img = m.encode_image(bbox[a:a + 64, None], images=images[a:a + 64, None])
                out = m(None, None, img)
                pred.append(m.mesh_from_logits(out.logits, 0.5, None)[:, 0])
        pred = torch.cat(pred)
        seq_of = torch.tensor(seq_of)
        v2v = float((pred - verts).norm(dim=-1).mean()) * 1000
        mean_mesh = float((verts.mean(0) - verts).norm(dim=-1).mean()) * 1000
        seq_mean = torch.stack([verts[seq_of == k].mean(0) for k in range(len(data.seqs))])[seq_of]
        seq_v2v = float((seq_mean - verts).norm(dim=-1).mean()) * 1000
        reg = body.joints22_regressor.to(verts)  # (22, v)
        jp, jt = torch.einsum("jv,fvc->fjc", reg, pred), torch.einsum("jv,fvc->fjc", reg, verts)

        def legs(j):
            return torch.stack([(j[:, h] - j[:, a]).norm(dim=-1) for h, a in HIPS_ANKLES], 1)  # (f, 2) m

        lp, lt = legs(jp), legs(jt)
        corr = _corr(lp, lt)
        # within each sequence (each one's mean removed): the pose, not the body's size, which differs between them
        wp, wt = _within(lp, seq_of), _within(lt, seq_of)
        print(f"{path}: {len(images)} frames of {len(data.seqs)} sequences: v2v {v2v:.1f} mm; mean mesh {mean_mesh:.1f}; "
              f"each sequence's own mean {seq_v2v:.1f}; hip-ankle spread predicted {float(lp.std(0).mean()) * 1000:.1f} "
              f"vs true {float(lt.std(0).mean()) * 1000:.1f} mm, correlation {corr:.2f}; within sequences "
              f"{float(wp.std(0).mean()) * 1000:.1f} vs {float(wt.std(0).mean()) * 1000:.1f} mm, correlation "
              f"{_corr(wp, wt):.2f}", flush=True)
        if first is None:
            first = (v2v, mean_mesh)
    print(f"v2v_mm={first[0]:.1f} mean_mesh_v2v_mm={first[1]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
