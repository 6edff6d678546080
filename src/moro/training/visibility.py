"""``moro train visibility``: fit the visibility head and the heading-carry settings of a MoRo checkpoint.

The head (:mod:`moro.inference.heading`) is a ridge regression of a frame's share of hidden joints
(``1 - mean(visibility)`` over the 22 joints of the synthetic labels) on its pooled backbone tokens.
Frames are cropped as ``moro bench accuracy`` crops them (the detector-like boxes ``box_det``),
so the features are those of inference. Steps:

1. tokens of the first ``sequences`` sequences of a synthetic training split -> ridge fit (``lam``);
2. on a validation split (other sequences than the fit's): decode each sequence with moro (no carry),
   take the network's joints and the root yaw, and score every (``tau``, ``sigma``) of the grid by
   the error of the occluded joints after carrying the heading (the rotation about the camera's
   vertical through the pelvis leaves the pelvis-aligned error exact, so no re-decoding is needed);
3. keep the best pair, record the scores, and write the checkpoint with the ``visibility_head``
   entry (atomically; every other entry unchanged).

It raises :class:`VisibilityFitError` when the carry does not lower the validation error of the
occluded joints: a head that does not help is not written.
"""

from __future__ import annotations

import itertools
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from moro.inference.heading import (HEAD_KEY, VisibilityHead, carried_yaw, heading_delta, pooled_features, ridge_fit,
                                    root_yaw, rot_y, trusted_weights)
from moro.metrics.align import pelvis_align

log = logging.getLogger(__name__)

__all__ = ["VisibilityFitConfig", "VisibilityFitError", "fit_visibility_head", "validation_scores", "write_with_head",
           "TAUS", "SIGMAS"]

TAUS = (0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
SIGMAS = (2.0, 4.0, 8.0, 15.0, 30.0, 60.0)


class VisibilityFitError(RuntimeError):
    """The data cannot fit a useful head (no hidden frames, or the carry does not help on validation)."""


@dataclass
class VisibilityFitConfig:
    """Options of ``moro train visibility``."""

    data: Path  # synthetic training split (`moro synth --split train`)
    val: Path  # synthetic validation split (`moro synth --split val`)
    sequences: int | None = 64  # training sequences for the ridge fit (None: all)
    val_sequences: int | None = None  # validation sequences (None: all)
    lam: float = 1000.0  # ridge weight
    taus: tuple[float, ...] = TAUS
    sigmas: tuple[float, ...] = SIGMAS


def _sequences(root: Path, count: int | None, what: str):
    from moro.data.synth import SynthDataset, SynthFormatError

    if not Path(root).is_dir():
        raise VisibilityFitError(f"{what} {root} does not exist; generate it with `moro synth --split "
                                 f"{'val' if what == '--val-data' else 'train'} --out {root}`")
    try:
        ds = SynthDataset(Path(root))
        seqs = [ds[n] for n in (ds.names[:count] if count else ds.names)]
    except SynthFormatError as e:
        raise VisibilityFitError(f"{what} {root}: {e}") from e
    if not seqs:
        raise VisibilityFitError(f"{what} {root} holds no `moro synth` sequences (<seq>/labels.npz + frames)")
    for s in seqs:
        if "visibility" not in s.labels:
            raise VisibilityFitError(f"{what} {root}/{s.name}: labels.npz has no 'visibility' (t, 22) array; "
                                     "regenerate the split with this moro version")
    return seqs


def _tokens(model, seq, folder: Path):
    from moro.bench.accuracy import sequence_tokens

    return sequence_tokens(model, seq, seq.num_frames, folder)


def _hidden(seq) -> np.ndarray:
    return 1.0 - seq.labels["visibility"][: seq.num_frames].astype(np.float64).mean(1)


@torch.no_grad()
def fit_visibility_head(model, body, cfg: VisibilityFitConfig, say: Callable[[str], None] = print) -> VisibilityHead:
    """Fit the head on ``cfg.data`` and pick ``tau`` / ``sigma`` on ``cfg.val`` (module docstring).

    Args:
        model: a MoRo in eval mode with backbone and image encoder (:func:`moro.inference.loading.load_model`).
        body: its body model (for the 22 scoring joints).
    Returns:
        the fitted :class:`VisibilityHead` (``record`` holds the validation scores, mm).
    Raises:
        VisibilityFitError: bad splits, no hidden frames, or no gain on validation.
    """
    from moro.inference.loading import backbone_of
    from moro.inference.store import tensor_digest

    train = _sequences(cfg.data, cfg.sequences, "--data")
    val = _sequences(cfg.val, cfg.val_sequences, "--val-data")
    if Path(cfg.data).resolve() == Path(cfg.val).resolve():
        raise VisibilityFitError("--data and --val-data are the same split; tau and sigma must be picked on other "
                                 "sequences than the fit's (e.g. --data SYNTH/train --val-data SYNTH/val)")
    xs, ys = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i, seq in enumerate(train):
            tokens, _ = _tokens(model, seq, Path(tmp) / f"t{i}")
            xs += [pooled_features(x) for _, x in tokens.chunks(512)]
            ys.append(_hidden(seq))
            say(f"features {i + 1}/{len(train)}: {cfg.data.name}/{seq.name} ({seq.num_frames} frames)")
    x, y = np.concatenate(xs), np.concatenate(ys)
    if y.max() - y.min() < 0.2:
        raise VisibilityFitError(f"--data {cfg.data}: its frames' hidden shares span only {y.min():.2f}..{y.max():.2f}; "
                                 "the head needs occluded and visible frames (a `moro synth` train split has both)")
    mu, sd, w, b = ridge_fit(x, y, cfg.lam)
    corr = float(np.corrcoef(((x - mu) / sd) @ w + b, y)[0, 1])
    head = VisibilityHead(mu, sd, w, b, tau=cfg.taus[0], sigma=cfg.sigmas[0],
                          backbone=tensor_digest(backbone_of(model).state_dict()))

    grid = list(itertools.product(cfg.taus, cfg.sigmas))
    base_mm, scores, sv, hv = validation_scores(model, body, head, val, grid, say)
    best = int(np.argmin(scores))
    tau, sigma = grid[best]
    val_corr = float(np.corrcoef(sv, hv)[0, 1])
    say(f"ridge on {len(y)} frames of {len(train)} sequences: correlation {corr:.3f} (train), {val_corr:.3f} (val)")
    say(f"validation MPJPE-occ: decoded {base_mm:.1f} mm; carried (tau {tau}, sigma {sigma:g} frames) {scores[best]:.1f} mm")
    if not scores[best] < base_mm:
        raise VisibilityFitError(f"the heading carry does not lower the validation error of the occluded joints "
                                 f"({scores[best]:.1f} vs {base_mm:.1f} mm): no head written")
    head.tau, head.sigma = float(tau), float(sigma)
    head.record = {"data": str(cfg.data), "sequences": len(train), "frames": int(len(y)), "lam": cfg.lam,
                   "val": str(cfg.val), "val_sequences": len(val), "train_corr": round(corr, 4),
                   "val_corr": round(val_corr, 4), "val_mpjpe_occ_decoded_mm": round(base_mm, 2),
                   "val_mpjpe_occ_carried_mm": round(float(scores[best]), 2),
                   "grid": {f"{a:g}/{b:g}": round(float(s), 2) for (a, b), s in zip(grid, scores)}}
    return head


@torch.no_grad()
def validation_scores(model, body, head: VisibilityHead, seqs, grid: list[tuple[float, float]],
                      say: Callable[[str], None] = print) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """MPJPE-occ (mm) of moro on ``seqs`` as decoded (no carry) and with the heading carried for every
    ``(tau, sigma)`` of ``grid``, from one decoding per sequence.

    Equal to decoding with the head set to that ``(tau, sigma)`` and scoring the network's joints: the carry
    turns each frame about the camera's vertical, which turns its pelvis-aligned joints alike.
    Returns ``(decoded mm, (len(grid),) mm, predicted shares (n,), true hidden shares (n,))``.
    """
    from moro.bench.accuracy import meshes
    from moro.inference.decoding import DecodingConfig
    from moro.inference.windows import decode_windows

    sums, base, count, shares, hidden = np.zeros(len(grid)), 0.0, 0, [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i, seq in enumerate(seqs):
            t = seq.num_frames
            tokens, info = _tokens(model, seq, Path(tmp) / f"v{i}")
            dec = decode_windows(model, tokens, info, Path(tmp) / f"d{i}", decoding=DecodingConfig(heading_carry=False))
            traj = dec["traj"].read(0, t).astype(np.float32)
            v = meshes(model, dec["ids"].read(0, t), traj)
            pred = pelvis_align(body.joints22(v.to(body.v_template)).double()).numpy()
            gt = pelvis_align(torch.from_numpy(seq.labels["joints_cam"][:t].astype(np.float64))).numpy()
            occ = ~seq.labels["visibility"][:t].astype(bool)
            share = head.hidden_share(tokens.read(0, t))
            shares.append(share)
            hidden.append(_hidden(seq))
            yaw, defined = root_yaw(traj)
            base += float(np.linalg.norm(pred - gt, axis=-1)[occ].sum())
            count += int(occ.sum())
            for k, (tau, sigma) in enumerate(grid):
                delta = heading_delta(yaw, defined, carried_yaw(yaw, trusted_weights(share, defined, tau), sigma))
                turned = np.einsum("tij,tkj->tki", rot_y(delta), pred)
                sums[k] += float(np.linalg.norm(turned - gt, axis=-1)[occ].sum())
            say(f"validation {i + 1}/{len(seqs)}: {seq.name} ({t} frames)")
    if count == 0:
        raise VisibilityFitError(f"no occluded joints in the {len(seqs)} validation sequences")
    return 1000.0 * base / count, 1000.0 * sums / count, np.concatenate(shares), np.concatenate(hidden)


def write_with_head(src: str | Path, dst: str | Path, head: VisibilityHead) -> None:
    """Copy the checkpoint ``src`` to ``dst`` (atomically) with its ``visibility_head`` entry set to ``head``."""
    from moro.paths import atomic_write

    payload = torch.load(src, map_location="cpu", weights_only=False)
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise VisibilityFitError(f"{src} is not a moro checkpoint (no state_dict entry)")
    payload[HEAD_KEY] = head.to_entry()
    with atomic_write(Path(dst)) as tmp:
        torch.save(payload, tmp)
