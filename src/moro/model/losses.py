"""MoRo's training losses (supplement A.5 plus canonical trajectory and contact; design.md "Training").

:func:`moro_losses` compares named predictions with named ground truth and computes **only the
terms whose inputs are present** (motion-only, image-only and video batches differ). It returns a
dict of unweighted terms plus ``"total"`` = sum of weight x term.

=================  ============================================================  ======
term               definition                                                    weight
=================  ============================================================  ======
ce_{motion,dec}    cross entropy of pose-token logits on masked positions        1
vertices           RMSE of the local (root-centred) mesh, metres                 10
traj_{coarse,ref}  L2 (mean squared error) of the 9D camera trajectory           1
cano_traj          L2 of the z-normalised canonical trajectory                   10
joints_{src}       RMSE of the global 3D joints, metres                          1
joint_vel_{src}    RMSE of frame-to-frame joint displacements, metres/frame      20
reproj_{src}       RMSE of 2D joints in crop-normalised units (box half-side 1)  1
foot_skate_{src}   mean hinge ``max(0, |v_foot| - 0.15 m/s)`` over GT-contact    1
                   frames of the 4 contact joints
contact_{motion,   BCE of contact logits; GT contact = contact-joint speed        1
decoder}           < 0.3 m/s
=================  ============================================================  ======

``src`` is each trajectory prediction whose global joints are given: ``coarse`` (image
encoder), ``cano`` (motion encoder, rolled out from the ground-truth first pose) and
``refined`` (decoder). RMSE is per frame ``sqrt(mean_j |d_j|^2 + 1e-8)``, averaged over frames.
Frame weights ``gt["frame_weight"]`` (b, t) (1 = valid) apply to every per-frame term.

Prediction keys (all optional): ``motion_logits``, ``decoder_logits`` (b, t, n, k);
``verts_local`` (b, t, v, 3); ``traj_coarse``, ``traj_refined`` (b, t, 9) ``[6D, t (m)]``;
``cano_traj`` (b, t, 9) normalised; ``joints_{src}`` (b, t, j, 3) m; ``joints2d_{src}``
(b, t, j, 2) pixels with optional ``joints2d_valid_{src}`` (b, t, j) bool; ``motion_contact``,
``decoder_contact`` (b, t, 4) logits.
Ground-truth keys: ``labels`` (b, t, n) (``IGNORE_INDEX`` where unmasked); ``verts_local``;
``traj`` (b, t, 9) in the frame of the trajectory predictions (``traj_coarse`` / ``traj_refined``, when given,
replace it for that prediction); ``cano_traj`` normalised;
``joints`` (b, t, j, 3) global, same frame; ``joints2d`` (b, t, j, 2) pixels with ``bbox``
(b, t, 3) = (cx, cy, s) HMR boxes and optional ``joints2d_weight`` (b, t, j); ``contact`` (b, t, 4)
(derived from ``joints`` when absent); ``frame_weight`` (b, t).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F

from moro.body.joint_sets import CONTACT_JOINTS
from moro.model.masking import masked_cross_entropy

__all__ = ["LossConfig", "TRAJ_SOURCES", "contact_from_joints", "moro_losses"]

TRAJ_SOURCES = ("coarse", "cano", "refined")
_EPS = 1e-8


@dataclass
class LossConfig:
    """Loss weights (supplement A.5 / design.md) and the contact thresholds."""

    ce: float = 1.0  # token cross entropy
    vertices: float = 10.0  # local mesh RMSE
    traj: float = 1.0  # coarse / refined camera trajectory L2
    cano_traj: float = 10.0  # canonical trajectory L2 (motion encoder head)
    joints: float = 1.0  # global 3D joint RMSE
    joint_vel: float = 20.0  # global 3D joint velocity RMSE
    reproj: float = 1.0  # 2D reprojection RMSE
    foot_skate: float = 1.0  # foot skating hinge
    contact: float = 1.0  # contact BCE
    contact_speed: float = 0.3  # m/s: a contact joint slower than this is in contact (GT)
    skate_speed: float = 0.15  # m/s: foot speed tolerated in contact frames

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not value >= 0:
                raise ValueError(f"loss.{name} must be >= 0, got {value}")

    def weight(self, term: str) -> float:
        """Weight of a term name such as ``joint_vel_refined`` or ``ce_decoder``."""
        for prefix in ("joint_vel", "foot_skate", "cano_traj", "vertices", "joints", "reproj", "contact", "traj", "ce"):
            if term == prefix or term.startswith(prefix + "_"):
                return getattr(self, prefix)
        raise KeyError(f"no weight for loss term {term!r}")


def _frame_mean(per_frame: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """(b, t') values, (b, t') weights or None -> () weighted mean."""
    if weight is None:
        return per_frame.mean()
    w = weight.to(per_frame.dtype)
    return (per_frame * w).sum() / w.sum().clamp_min(_EPS)


def _rmse(pred: torch.Tensor, gt: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """(b, t, m, c) points -> () mean over frames of sqrt(mean_m |d|^2)."""
    per_frame = ((pred - gt).square().sum(-1).mean(-1) + _EPS).sqrt()
    return _frame_mean(per_frame, weight)


def _pair_weight(weight: torch.Tensor | None) -> torch.Tensor | None:
    """Frame weights (b, t) -> weights of the t-1 consecutive pairs (b, t-1)."""
    return None if weight is None else weight[:, 1:].to(torch.float32) * weight[:, :-1].to(torch.float32)


def contact_from_joints(joints: torch.Tensor, fps: float, threshold: float = 0.3) -> torch.Tensor:
    """Ground-truth contact of the 4 contact joints from their speed.

    Args:
        joints: (b, t, 22, 3) joints22 in metres, t >= 2.
        fps: frames per second.
        threshold: speed (m/s) below which a joint is in contact.
    Returns:
        (b, t, 4) float in {0, 1}; frame t uses the displacement t -> t+1, the last frame copies t-2 -> t-1.
    """
    if joints.shape[1] < 2:
        raise ValueError(f"contact from joint speed needs t >= 2 frames, got shape {tuple(joints.shape)}")
    feet = joints[:, :, list(CONTACT_JOINTS)]  # (b, t, 4, 3)
    speed = (feet[:, 1:] - feet[:, :-1]).norm(dim=-1) * fps  # (b, t-1, 4) m/s
    speed = torch.cat((speed, speed[:, -1:]), dim=1)
    return (speed < threshold).to(joints.dtype)


def _normalise_2d(uv: torch.Tensor, bbox: torch.Tensor) -> torch.Tensor:
    """(b, t, j, 2) pixels -> crop units: (uv - centre) / (100 s), the box spans [-1, 1]."""
    return (uv - bbox[..., None, :2]) / (100.0 * bbox[..., None, 2:3])


def moro_losses(
    pred: Mapping[str, torch.Tensor],
    gt: Mapping[str, torch.Tensor],
    config: LossConfig | None = None,
    fps: float = 30.0,
) -> dict[str, torch.Tensor]:
    """All applicable loss terms (module docstring) and their weighted ``"total"``.

    Args:
        pred: named predictions (module docstring).
        gt: named ground truth (module docstring).
        config: weights and thresholds.
        fps: frame rate of the clip (velocities in m/s for contact and skating).
    Returns:
        ``{term: () tensor, ..., "total": ()}``; raises if no term applies.
    """
    cfg = config or LossConfig()
    fw = gt.get("frame_weight")
    terms: dict[str, torch.Tensor] = {}

    if "labels" in gt:
        for name in ("motion", "decoder"):
            if f"{name}_logits" in pred:
                terms[f"ce_{name}"] = masked_cross_entropy(pred[f"{name}_logits"], gt["labels"])
    if "verts_local" in pred and "verts_local" in gt:
        terms["vertices"] = _rmse(pred["verts_local"], gt["verts_local"], fw)
    if "traj" in gt:
        for src in ("coarse", "refined"):
            if f"traj_{src}" in pred:
                target = gt.get(f"traj_{src}", gt["traj"])  # a per-source target overrides the shared one
                terms[f"traj_{src}"] = _frame_mean((pred[f"traj_{src}"] - target).square().mean(-1), fw)
    if "cano_traj" in pred and "cano_traj" in gt:
        terms["cano_traj"] = _frame_mean((pred["cano_traj"] - gt["cano_traj"]).square().mean(-1), fw)

    contact = gt.get("contact")
    if contact is None and "joints" in gt and gt["joints"].shape[1] >= 2:
        contact = contact_from_joints(gt["joints"], fps, cfg.contact_speed)
    for src in TRAJ_SOURCES:
        joints = pred.get(f"joints_{src}")
        if joints is None or "joints" not in gt:
            continue
        terms[f"joints_{src}"] = _rmse(joints, gt["joints"], fw)
        if joints.shape[1] >= 2:
            vel, vel_gt = joints[:, 1:] - joints[:, :-1], gt["joints"][:, 1:] - gt["joints"][:, :-1]
            terms[f"joint_vel_{src}"] = _rmse(vel, vel_gt, _pair_weight(fw))
            if contact is not None:
                feet = joints[:, :, list(CONTACT_JOINTS)]
                speed = (feet[:, 1:] - feet[:, :-1]).norm(dim=-1) * fps  # (b, t-1, 4) m/s
                w = contact[:, :-1].to(speed.dtype)
                pw = _pair_weight(fw)
                if pw is not None:
                    w = w * pw[..., None]
                terms[f"foot_skate_{src}"] = (F.relu(speed - cfg.skate_speed) * w).sum() / w.sum().clamp_min(1.0)
    if "joints2d" in gt and "bbox" in gt:
        for src in TRAJ_SOURCES:
            uv = pred.get(f"joints2d_{src}")
            if uv is None:
                continue
            w = gt.get("joints2d_weight", torch.ones(uv.shape[:-1], device=uv.device)).to(uv.dtype)
            if f"joints2d_valid_{src}" in pred:
                w = w * pred[f"joints2d_valid_{src}"].to(uv.dtype)
            d2 = (_normalise_2d(uv, gt["bbox"]) - _normalise_2d(gt["joints2d"], gt["bbox"])).square().sum(-1)
            per_frame = ((d2 * w).sum(-1) / w.sum(-1).clamp_min(_EPS) + _EPS).sqrt()  # (b, t)
            terms[f"reproj_{src}"] = _frame_mean(per_frame, fw)
    if contact is not None:
        for name in ("motion", "decoder"):
            if f"{name}_contact" in pred:
                bce = F.binary_cross_entropy_with_logits(pred[f"{name}_contact"], contact, reduction="none").mean(-1)
                terms[f"contact_{name}"] = _frame_mean(bce, fw)

    if not terms:
        raise ValueError(
            f"no loss term applies: predictions {sorted(pred)} and ground truth {sorted(gt)} share no inputs"
        )
    terms["total"] = sum(cfg.weight(k) * v for k, v in terms.items())
    return terms
