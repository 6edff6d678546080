"""Masking of pose tokens for training (design.md "Training"; MaskGIT / MoMask style).

Every clip b gets a ratio ``r = cos(pi/2 u)``, ``u ~ U(0, 1)`` (so r in (0, 1]) and a count of
masked positions from it; the mode says which positions of the (t frames x n slots) grid:

* ``random``: ``max(1, round(t n r))`` positions chosen uniformly among all t n;
* ``joint``: ``max(1, round(n r))`` token slots, masked in every frame;
* ``frame``: ``max(1, round(t r))`` contiguous frames (uniform start), every slot;
* ``full``: everything (image pretraining);
* ``inference``: mimics test-time decoding in two passes (:func:`inference_masking`): pass 1
  sees everything masked; its argmax predictions fill the grid, and the ``max(1, round(t n r))``
  least confident positions are masked again for pass 2.

Then a fraction (``corrupt_prob``, paper 10 %) of the masked positions gets a uniformly random
code instead of [MASK] (id k) — in every mode but ``full``. Labels hold the ground-truth code at
masked positions and ``IGNORE_INDEX`` elsewhere: cross entropy is taken on masked positions only.

All randomness goes through an explicit ``torch.Generator`` (on the tokens' device); nothing
reads the global RNG. Shape letters: b batch, t frames, n token slots, k codes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import torch
import torch.nn.functional as F

__all__ = [
    "IGNORE_INDEX",
    "MASK_MODES",
    "MaskingConfig",
    "MaskedTokens",
    "mask_ratio",
    "sample_mask_ratio",
    "masked_count",
    "make_mask",
    "corrupt_and_label",
    "mask_tokens",
    "remask_lowest_confidence",
    "inference_masking",
    "masked_cross_entropy",
]

IGNORE_INDEX = -100  # label of unmasked positions (torch's cross-entropy default)
MASK_MODES = ("random", "joint", "frame", "full", "inference")


@dataclass
class MaskingConfig:
    """Training-time masking (paper values)."""

    corrupt_prob: float = 0.1  # fraction of masked positions given a random code instead of [MASK]
    min_masked: int = 1  # at least this many masked positions per clip, so the CE is never empty

    def __post_init__(self) -> None:
        if not 0.0 <= self.corrupt_prob <= 1.0:
            raise ValueError(f"masking.corrupt_prob must lie in [0, 1], got {self.corrupt_prob}")
        if self.min_masked < 0:
            raise ValueError(f"masking.min_masked must be >= 0, got {self.min_masked}")


class MaskedTokens(NamedTuple):
    input_ids: torch.Tensor  # (b, t, n) int64 ids fed to the network: codes, random codes, or k = [MASK]
    mask: torch.Tensor  # (b, t, n) bool, True where the position is to be predicted
    labels: torch.Tensor  # (b, t, n) int64 ground-truth code where masked, IGNORE_INDEX elsewhere
    ratio: torch.Tensor  # (b,) the ratio r used per clip


def mask_ratio(u: torch.Tensor) -> torch.Tensor:
    """The cosine schedule ``r = cos(pi/2 u)``: (...,) in [0, 1] -> (...,) in [0, 1]."""
    return torch.cos(0.5 * math.pi * u)


def sample_mask_ratio(batch: int, generator: torch.Generator, device=None) -> torch.Tensor:
    """(b,) ratios ``cos(pi/2 u)``, ``u ~ U(0, 1)`` drawn from ``generator``."""
    return mask_ratio(torch.rand(batch, generator=generator, device=device))


def masked_count(ratio: torch.Tensor, total: int, min_masked: int = 1) -> torch.Tensor:
    """(b,) int64 ``clamp(round(total r), min_masked, total)``."""
    return (total * ratio).round().long().clamp(min(min_masked, total), total)


def _lowest_ranks(scores: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """(b, m) scores, (b,) counts -> (b, m) bool marking the ``count`` smallest scores per row."""
    ranks = scores.argsort(dim=1).argsort(dim=1)  # rank 0 = smallest
    return ranks < count[:, None]


def make_mask(
    mode: str, shape: tuple[int, int, int], ratio: torch.Tensor, generator: torch.Generator, min_masked: int = 1
) -> torch.Tensor:
    """Masked positions of one batch for the modes random / joint / frame / full.

    Args:
        mode: one of "random", "joint", "frame", "full".
        shape: (b, t, n).
        ratio: (b,) ratios in [0, 1] (ignored for "full").
        generator: RNG on the target device.
        min_masked: lower bound on the count (units of the mode: positions, slots or frames).
    Returns:
        (b, t, n) bool.
    """
    b, t, n = shape
    device = ratio.device
    if mode == "full":
        return torch.ones(b, t, n, dtype=torch.bool, device=device)
    if mode == "random":
        u = torch.rand(b, t * n, generator=generator, device=device)
        return _lowest_ranks(u, masked_count(ratio, t * n, min_masked)).view(b, t, n)
    if mode == "joint":
        u = torch.rand(b, n, generator=generator, device=device)
        return _lowest_ranks(u, masked_count(ratio, n, min_masked))[:, None, :].expand(b, t, n).clone()
    if mode == "frame":
        m = masked_count(ratio, t, min_masked)  # (b,) frames
        start = (torch.rand(b, generator=generator, device=device) * (t - m + 1)).floor().long()
        f = torch.arange(t, device=device)[None, :]
        frames = (f >= start[:, None]) & (f < (start + m)[:, None])  # (b, t)
        return frames[:, :, None].expand(b, t, n).clone()
    raise ValueError(f"unknown masking mode {mode!r}; use one of {MASK_MODES[:4]} (or inference_masking)")


def corrupt_and_label(
    ids: torch.Tensor,
    target_ids: torch.Tensor,
    mask: torch.Tensor,
    num_codes: int,
    corrupt_prob: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Network inputs and CE labels from a mask.

    Args:
        ids: (b, t, n) ids shown at unmasked positions (ground truth, or pass-1 predictions).
        target_ids: (b, t, n) ground-truth codes in [0, k).
        mask: (b, t, n) bool positions to predict.
        num_codes: k; [MASK] is id k.
        corrupt_prob: probability that a masked position shows a random code instead of [MASK].
        generator: RNG on the ids' device.
    Returns:
        ``(input_ids (b, t, n), labels (b, t, n))``.
    """
    shown = torch.where(mask, torch.full_like(ids, num_codes), ids)
    if corrupt_prob > 0:
        u = torch.rand(ids.shape, generator=generator, device=ids.device)
        rand_codes = torch.randint(0, num_codes, ids.shape, generator=generator, device=ids.device)
        shown = torch.where(mask & (u < corrupt_prob), rand_codes, shown)
    labels = torch.where(mask, target_ids, torch.full_like(target_ids, IGNORE_INDEX))
    return shown, labels


def _check_ids(ids: torch.Tensor, num_codes: int) -> None:
    if ids.dim() != 3 or ids.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"token ids must be an integer tensor (b, t, n), got {ids.dtype} {tuple(ids.shape)}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= num_codes):
        raise ValueError(f"ground-truth token ids must lie in [0, {num_codes}), got [{int(ids.min())}, {int(ids.max())}]")


def mask_tokens(
    ids: torch.Tensor,
    mode: str,
    num_codes: int,
    generator: torch.Generator,
    config: MaskingConfig | None = None,
    ratio: torch.Tensor | None = None,
) -> MaskedTokens:
    """Mask a batch of ground-truth token ids (modes random / joint / frame / full).

    Args:
        ids: (b, t, n) ground-truth codes in [0, k).
        mode: "random", "joint", "frame" or "full" (for "inference" use :func:`inference_masking`).
        num_codes: k.
        generator: RNG on ``ids.device``.
        config: :class:`MaskingConfig` (default paper values).
        ratio: (b,) fixed ratios instead of sampled ones (tests, schedules).
    Returns:
        :class:`MaskedTokens`.
    """
    cfg = config or MaskingConfig()
    _check_ids(ids, num_codes)
    ids = ids.long()
    b = ids.shape[0]
    if ratio is None:
        ratio = sample_mask_ratio(b, generator, ids.device)
    mask = make_mask(mode, tuple(ids.shape), ratio, generator, cfg.min_masked)
    corrupt = 0.0 if mode == "full" else cfg.corrupt_prob
    shown, labels = corrupt_and_label(ids, ids, mask, num_codes, corrupt, generator)
    return MaskedTokens(shown, mask, labels, ratio)


def remask_lowest_confidence(
    logits: torch.Tensor, ratio: torch.Tensor, min_masked: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy (top-1) predictions and the mask of the least confident ``max(1, round(t n r))`` positions.

    Confidence is the softmax probability of the argmax code.

    Args:
        logits: (b, t, n, k).
        ratio: (b,).
    Returns:
        ``(predicted ids (b, t, n) int64, mask (b, t, n) bool)``.
    """
    b, t, n, _ = logits.shape
    prob, pred = logits.detach().float().softmax(dim=-1).max(dim=-1)  # (b, t, n)
    mask = _lowest_ranks(prob.reshape(b, t * n), masked_count(ratio, t * n, min_masked)).view(b, t, n)
    return pred, mask


def inference_masking(
    ids: torch.Tensor,
    first_pass: Callable[[torch.Tensor], tuple[torch.Tensor, Any]],
    num_codes: int,
    generator: torch.Generator,
    config: MaskingConfig | None = None,
    ratio: torch.Tensor | None = None,
) -> tuple[MaskedTokens, Any]:
    """The "inference" mode: a no-grad pass on all-[MASK] input decides what pass 2 sees.

    Args:
        ids: (b, t, n) ground-truth codes in [0, k).
        first_pass: called once, under ``torch.no_grad()``, with (b, t, n) ids that are all [MASK];
            returns ``(logits (b, t, n, k), extra)`` — ``extra`` (e.g. the refined camera
            trajectory, to be canonicalised for pass 2) is handed back untouched.
        num_codes: k.
        generator: RNG on ``ids.device`` (random-code corruption).
        config: :class:`MaskingConfig`.
        ratio: (b,) fixed ratios instead of sampled ones.
    Returns:
        ``(MaskedTokens, extra)``: inputs are pass-1 argmax codes with the least confident
        positions masked (then corrupted as in the other modes); labels are the ground truth there.
    """
    cfg = config or MaskingConfig()
    _check_ids(ids, num_codes)
    ids = ids.long()
    if ratio is None:
        ratio = sample_mask_ratio(ids.shape[0], generator, ids.device)
    with torch.no_grad():
        logits, extra = first_pass(torch.full_like(ids, num_codes))
    if tuple(logits.shape[:3]) != tuple(ids.shape):
        raise ValueError(f"first_pass returned logits of shape {tuple(logits.shape)} for ids {tuple(ids.shape)}")
    pred, mask = remask_lowest_confidence(logits, ratio, cfg.min_masked)
    shown, labels = corrupt_and_label(pred, ids, mask, num_codes, cfg.corrupt_prob, generator)
    return MaskedTokens(shown, mask, labels, ratio), extra


def masked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross entropy over positions whose label is not ``IGNORE_INDEX``.

    Args:
        logits: (b, t, n, k).
        labels: (b, t, n) int64.
    Returns:
        () loss; 0 (with a graph) when nothing is masked.
    """
    if (labels != IGNORE_INDEX).any():
        return F.cross_entropy(logits.flatten(0, -2), labels.flatten(), ignore_index=IGNORE_INDEX)
    return logits.sum() * 0.0
