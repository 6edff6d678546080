"""Can the frames' own image features say which frames are mostly hidden, and what would that give the heading?

A linear probe: the tiny model's frozen backbone tokens of each frame (cropped at the detector-like box,
as ``moro bench accuracy`` does), mean- and max-pooled over the patches (2 x 1280 features), standardised,
and a ridge regression onto the share of the frame's 22 joints hidden, fit on the ``val`` split and
scored on bench ``--half``: correlation, and the ROC AUC of ranking the frames with at least ``--hidden``
of their joints hidden. Then, with a row's predictions from ``moro bench accuracy`` (``RESULTS``), the
frames the probe calls hidden (predicted share >= tau) take the facing yaw interpolated from the frames
around them (``heading_error.interpolated_yaw``): MPJPE-occ for a few tau, against the same with the
ground truth's hidden frames; the best tau is optimistic, so it also reports the error with each
sequence's tau picked on the other half of the sequences (:func:`cross_fitted`).

    python benchmarks/visibility_probe.py runs/bench-accuracy [--row moro] [--checkpoint M] [--val /work/data/synth/val]

Last line: ``probe_auc=<AUC> probe_corr=<corr> best_mpjpe_occ=<mm> heldout_mpjpe_occ=<mm> base_mpjpe_occ=<mm>``.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import numpy as np

_spec = importlib.util.spec_from_file_location("heading_error", Path(__file__).resolve().parent / "heading_error.py")
heading = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(heading)


def ridge(x: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit y (n,) ~ standardised x (n, f) with an L2 weight ``lam`` on the weights (not the bias)
    (:func:`moro.inference.heading.ridge_fit`). Returns (mean (f,), std (f,), weights (f + 1,), the bias last);
    predict with :func:`ridge_predict`."""
    from moro.inference.heading import ridge_fit

    mu, sd, w, b = ridge_fit(x, y, lam)
    return mu, sd, np.r_[w, b]


def ridge_predict(model: tuple[np.ndarray, np.ndarray, np.ndarray], x: np.ndarray) -> np.ndarray:
    """(n, f) -> (n,) predictions of a :func:`ridge` fit."""
    mu, sd, w = model
    return np.c_[(x - mu) / sd, np.ones(len(x))] @ w


def roc_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count half), (n,), (n,) bool."""
    positive = np.asarray(positive, dtype=bool)
    p, n = positive.sum(), (~positive).sum()
    if p == 0 or n == 0:
        raise ValueError("roc_auc needs both positives and negatives")
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    for v in np.unique(score):  # average ranks of ties
        m = score == v
        ranks[m] = ranks[m].mean()
    return float((ranks[positive].sum() - p * (p + 1) / 2) / (p * n))


def features(model, root: Path, count: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{sequence name: (pooled backbone features (t, 2 x dim), hidden share (t,))} of the first ``count``
    sequences under ``root``."""
    import torch

    from moro.bench.accuracy import _sequences, sequence_tokens
    from moro.inference.heading import pooled_features

    out = {}
    for seq in _sequences(root, count):
        t = seq.num_frames
        with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
            tokens, _ = sequence_tokens(model, seq, t, Path(tmp) / "tokens")
            x = tokens.read(0, t).astype(np.float32)
        out[seq.name] = (pooled_features(x), 1.0 - seq.labels["visibility"][:t].mean(1))
        print(f"{root.name}/{seq.name}: {t} frames", flush=True)
    return out


def cross_fitted(errs: dict, taus: tuple) -> float:
    """Mean error when each sequence's tau is the one best on the other fold (sequences alternate between two
    folds). ``errs[tau]``: one (k_i,) array of errors per sequence, in order."""
    n = len(errs[taus[0]])
    total, count = 0.0, 0
    for fold in (0, 1):
        train = [i for i in range(n) if i % 2 != fold]
        test = [i for i in range(n) if i % 2 == fold]
        if not train or not test:
            raise SystemExit("the held-out tau needs at least 2 sequences")
        pick = min(taus, key=lambda t: np.concatenate([errs[t][i] for i in train]).mean())
        e = np.concatenate([errs[pick][i] for i in test])
        total, count = total + e.sum(), count + len(e)
    return total / count


def main() -> None:
    ap = heading.results_parser(__doc__)
    ap.add_argument("--checkpoint", default=None, help="tiny MoRo checkpoint whose backbone is probed (default: shipped)")
    ap.add_argument("--val", type=Path, default=Path("/work/data/synth/val"))
    ap.add_argument("--val-sequences", type=int, default=16)
    ap.add_argument("--lam", type=float, default=1000.0, help="ridge weight")
    args = ap.parse_args()
    files = heading.prediction_files(args)

    import torch

    from moro.bench.models import build_network

    torch.set_num_threads(2)
    model, note = build_network("tiny", "cpu", args.checkpoint)
    model.eval()
    print(note)
    val = features(model, args.val, args.val_sequences)
    probe = ridge(np.concatenate([v[0] for v in val.values()]), np.concatenate([v[1] for v in val.values()]), args.lam)
    bench = features(model, args.bench / args.half, len(files))
    score = {k: ridge_predict(probe, v[0]) for k, v in bench.items()}
    s_all, h_all = np.concatenate(list(score.values())), np.concatenate([v[1] for v in bench.values()])
    auc, corr = roc_auc(s_all, h_all >= args.hidden), float(np.corrcoef(s_all, h_all)[0, 1])
    print(f"probe (fit on {len(val)} val sequences, scored on {len(bench)} {args.half} sequences): correlation {corr:.3f}, "
          f"AUC of frames with >= {args.hidden:.0%} hidden {auc:.3f}")

    taus = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
    errs = {k: [] for k in ("base", "truth", *taus)}
    for f in files:
        name = Path(f).stem
        if name not in score:
            raise SystemExit(f"{f}: no bench sequence {name} among the probed ones")
        pred, gt, vis = heading.aligned_joints(f, args.bench, args.half)
        own = np.array([heading.facing_yaw(j) for j in pred])
        masks = {"base": np.zeros(len(pred), bool), "truth": (~vis).mean(1) >= args.hidden}
        masks.update({tau: score[name][: len(pred)] >= tau for tau in taus})
        for k, m in masks.items():
            j = heading.set_heading(pred, heading.interpolated_yaw(own, m), m)
            errs[k].append(1000 * np.linalg.norm(j - gt, axis=-1)[~vis])  # the occluded joints' errors
    res = {k: float(np.concatenate(v).mean()) for k, v in errs.items()}
    print(f"{args.row} MPJPE-occ: as predicted {res['base']:.1f} mm; yaw interpolated through the ground truth's hidden "
          f"frames {res['truth']:.1f} mm; through the probe's (predicted share >= tau):")
    for tau in taus:
        print(f"  tau {tau:.2f}: {res[tau]:.1f} mm")
    best = min(res[tau] for tau in taus)
    held = cross_fitted(errs, taus)
    print(f"tau picked on the other half of the sequences (2 folds, alternate sequences): MPJPE-occ {held:.1f} mm")
    print(f"probe_auc={auc:.3f} probe_corr={corr:.3f} best_mpjpe_occ={best:.1f} heldout_mpjpe_occ={held:.1f} "
          f"base_mpjpe_occ={res['base']:.1f}")


if __name__ == "__main__":
    main()
