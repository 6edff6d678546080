"""Iterative masked decoding of one clip (supplement B; design.md "Inference").

With N = t n token positions of a clip (t frames, n token slots) and K iterations (paper 5)::

    ids   = [MASK] everywhere;  traj = coarse camera trajectory of the image encoder
    for k = 1 .. K:
        logits, refined traj = network(ids, canonical(traj), image features)   # one pass
        at every still-masked position: top-1 code and its softmax probability (confidence)
        m_k = round(N (1 + cos(pi k / K)) / 2)                # still masked after pass k
        of the positions masked before this pass, the m_k least confident stay [MASK];
        the others are fixed to their top-1 code (fixed positions never change again)
        traj = refined traj of this pass
    => ids (no [MASK] left, since m_K = 0), the last refined trajectory and contact logits

``round`` rounds halves up (``floor(x + 0.5)``), so ``m_0 = N`` and ``m_K = 0`` exactly.
Greedy top-1 (no sampling) makes decoding deterministic for a given input; ties in confidence
are broken by position (the lower flat index ``(frame, slot)`` counts as less confident).
The image features are computed once by the caller and reused by all K passes. A pass is any
function ``step(ids, traj, masked) -> StepOutput`` (:func:`model_step` wraps a MoRo), so tests can
drive the loop with fake logits; ``masked`` (b, m) lists the flat positions still masked before
the pass (ascending), so a step may score those alone (the loop's shapes never depend on values:
it also runs on ``meta`` tensors, which the FLOP count of ``moro bench speed`` uses).

Shape letters: b clips, t frames, n token slots, k codes. Trajectories are absolute camera
trajectories ``[6D (first two rows of R), t (m)]`` (b, t, 9); the MoRo step canonicalises them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import torch

__all__ = [
    "DecodingConfig",
    "StepOutput",
    "DecodeResult",
    "masked_schedule",
    "top1",
    "iterative_decode",
    "model_step",
    "decode_clip",
]


@dataclass
class DecodingConfig:
    """Settings of the decoding loop (paper values)."""

    iterations: int = 5  # K network passes; each fixes the confident part of the still-masked tokens
    motion_prior: bool = True  # False: decoder only, zero motion features (the "no motion prior" ablation)
    # carry the facing direction through frames the visibility head calls hidden (moro.inference.heading);
    # needs a checkpoint with a visibility head, and temporal windows (never for frames decoded alone)
    heading_carry: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.iterations, bool) or not isinstance(self.iterations, int) or self.iterations < 1:
            raise ValueError(f"decoding iterations must be an int >= 1, got {self.iterations!r}")
        for name in ("motion_prior", "heading_carry"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")


class StepOutput(NamedTuple):
    """What one network pass gives the loop: the logits, or their top-1 (code, softmax probability)."""

    logits: torch.Tensor | None  # (b, t, n, k) pose-token logits, or None when ``top`` is given
    traj: torch.Tensor  # (b, t, 9) refined camera trajectory [6D, t (m)]
    contact_logits: torch.Tensor | None = None  # (b, t, 4) foot-contact logits, if the network has them
    # ((b, m) float32 probability, (b, m) int64 code) of the top-1 class at the still-masked
    # positions ``masked`` (b, m) the step was given, in that order: lets a step score only those
    top: tuple[torch.Tensor, torch.Tensor] | None = None


def top1(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., k) logits -> ((...) float32 softmax probability of the top class, (...) int64 its index).

    ``exp(max - logsumexp)`` equals ``softmax(logits).max()`` without writing the (..., k) softmax.
    """
    logits = logits.detach().float()
    best, pred = logits.max(dim=-1)
    return torch.exp(best - torch.logsumexp(logits, dim=-1)), pred


@dataclass
class DecodeResult:
    """Output of :func:`iterative_decode`."""

    ids: torch.Tensor  # (b, t, n) int64 codes in [0, k)
    confidence: torch.Tensor  # (b, t, n) float32 softmax probability of each code when it was fixed
    fixed_at: torch.Tensor  # (b, t, n) int64 pass (1..K) that fixed each position
    traj: torch.Tensor  # (b, t, 9) refined camera trajectory of the last pass
    contact_logits: torch.Tensor | None  # (b, t, 4) of the last pass, or None
    masked_counts: list[int] = field(default_factory=list)  # [m_0 = N, m_1, ..., m_K = 0] per clip


def masked_schedule(num_positions: int, iterations: int) -> list[int]:
    """Still-masked counts ``[m_0, ..., m_K]``, ``m_k = floor(N (1 + cos(pi k / K)) / 2 + 1/2)``.

    Non-increasing from ``m_0 = N`` to ``m_K = 0``.
    """
    if num_positions < 0 or iterations < 1:
        raise ValueError(f"need num_positions >= 0 and iterations >= 1, got {num_positions}, {iterations}")
    counts = [int(math.floor(num_positions * (1.0 + math.cos(math.pi * k / iterations)) / 2.0 + 0.5))
              for k in range(iterations + 1)]
    counts[0], counts[-1] = num_positions, 0  # exact ends, whatever the float rounding of cos
    return counts


def iterative_decode(
    step: Callable[[torch.Tensor, torch.Tensor], StepOutput],
    init_traj: torch.Tensor,
    num_tokens: int,
    mask_id: int,
    iterations: int = 5,
) -> DecodeResult:
    """Run the K-pass loop of the module docstring.

    Args:
        step: ``step(ids (b, t, n) int64 with [MASK] = mask_id, traj (b, t, 9), masked (b, m) int64
            flat positions ``frame * n + slot`` still masked, ascending) -> StepOutput``; called
            exactly ``iterations`` times. Its logits must have ``k = mask_id`` classes ([MASK] is
            never a class); or it gives ``top`` at the ``masked`` positions alone.
        init_traj: (b, t, 9) trajectory fed to the first pass (the image encoder's coarse one).
        num_tokens: n token slots per frame.
        mask_id: id of [MASK] (= number of codes k).
        iterations: K.
    Returns:
        :class:`DecodeResult`.
    """
    DecodingConfig(iterations)  # validates
    if init_traj.ndim != 3 or init_traj.shape[-1] != 9:
        raise ValueError(f"init_traj must be (b, t, 9), got {tuple(init_traj.shape)}")
    b, t = init_traj.shape[:2]
    num_positions = t * num_tokens
    schedule = masked_schedule(num_positions, iterations)
    device = init_traj.device
    ids = torch.full((b, num_positions), mask_id, dtype=torch.long, device=device)
    confidence = torch.zeros(b, num_positions, dtype=torch.float32, device=device)
    fixed_at = torch.zeros(b, num_positions, dtype=torch.long, device=device)
    masked = torch.arange(num_positions, device=device).expand(b, -1)  # (b, m) still-masked positions, ascending
    traj, contact = init_traj, None
    for k in range(1, iterations + 1):
        m = masked.shape[1]
        out = step(ids.view(b, t, num_tokens), traj, masked)
        if out.top is not None:
            prob, pred = out.top  # (b, m) each, at the masked positions
            if tuple(prob.shape) != (b, m) or tuple(pred.shape) != (b, m):
                raise ValueError(f"step returned top-1 of shapes {tuple(prob.shape)}, {tuple(pred.shape)}; "
                                 f"expected ({b}, {m}) each (one per still-masked position)")
        else:
            if tuple(out.logits.shape[:3]) != (b, t, num_tokens) or out.logits.shape[-1] != mask_id:
                raise ValueError(f"step returned logits {tuple(out.logits.shape)}; expected ({b}, {t}, {num_tokens}, {mask_id})")
            prob, pred = top1(out.logits)  # (b, t, n) each
            prob, pred = prob.reshape(b, -1).gather(1, masked), pred.reshape(b, -1).gather(1, masked)
        # the m_k least confident stay masked; fixed positions never come back. ``masked`` is
        # ascending, so the stable sort breaks ties in confidence by the lower flat position
        order = torch.argsort(prob.float(), dim=1, stable=True)
        keep, fix = order[:, : schedule[k]], order[:, schedule[k] :]
        newly = masked.gather(1, fix)
        ids = ids.scatter(1, newly, pred.gather(1, fix))
        confidence = confidence.scatter(1, newly, prob.float().gather(1, fix))
        fixed_at = fixed_at.scatter(1, newly, torch.full_like(newly, k))
        masked = masked.gather(1, keep).sort(dim=1).values
        traj, contact = out.traj.detach(), (None if out.contact_logits is None else out.contact_logits.detach())
    shape = (b, t, num_tokens)
    return DecodeResult(ids.view(shape), confidence.view(shape), fixed_at.view(shape), traj, contact, schedule)


def model_step(model, image, motion_prior: bool = True) -> Callable[[torch.Tensor, torch.Tensor], StepOutput]:
    """A :func:`iterative_decode` step running a MoRo on fixed image features.

    Args:
        model: :class:`~moro.model.MoRo` (eval mode).
        image: :class:`~moro.model.ImageFeatures` of the clip, computed once.
        motion_prior: False runs the decoder alone on the image features with zero motion features
            (as in image pretraining): the ids and the fed-back trajectory are then ignored, every
            pass gives the same logits, and the result is their per-position argmax.
    """

    n = model.config.tokens.num_tokens

    def step(ids: torch.Tensor, traj: torch.Tensor, masked: torch.Tensor) -> StepOutput:
        # no pose heads in the network pass: the motion encoder's logits are a training target only,
        # and the decoder's are needed at the still-masked slots alone (fixed slots never change)
        if motion_prior:
            out = model(ids, model.canonical_input(traj), image, pose_logits=False)
        else:
            out = model(None, None, image, pose_logits=False)
        feats = out.decoder.features[:, :, :n]  # (b, t, n, d)
        b, d = feats.shape[0], feats.shape[-1]
        at = feats.reshape(b, -1, d).gather(1, masked.unsqueeze(-1).expand(-1, -1, d))  # (b, m, d)
        return StepOutput(None, out.decoder.traj, out.decoder.contact_logits,
                          top=top1(model.decoder.d_pose_regressor(at)))

    return step


@torch.no_grad()
def decode_clip(model, image, config: DecodingConfig | None = None) -> DecodeResult:
    """Decode one clip with a MoRo: ``iterative_decode(model_step(model, image), image.coarse_traj, ...)``.

    Args:
        model: :class:`~moro.model.MoRo`; put it in eval mode first (dropout off).
        image: :class:`~moro.model.ImageFeatures` (b, t, ...).
        config: :class:`DecodingConfig`.
    """
    cfg = config or DecodingConfig()
    if model.training:
        raise ValueError("decode_clip needs the model in eval mode: call model.eval() first")
    return iterative_decode(model_step(model, image, cfg.motion_prior), image.coarse_traj,
                            model.config.tokens.num_tokens, model.mask_id, cfg.iterations)
