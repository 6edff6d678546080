"""Fusion decoder: motion features + image patch features + trajectories -> refined tokens and camera trajectory.

Per frame the decoder mixes ``n + p + 2`` tokens (paper 87 + 192 + 2 = 281), in this order:

    [ n pose features | p image patch features | canonical-trajectory feature | camera-trajectory token ]

* pose and canonical-trajectory features: the motion encoder's last-layer outputs (its n pose
  slots and its trajectory slot); zeros when no motion encoder ran (image-only training);
* image features: the image encoder's per-frame patch tokens (already at width d);
* camera-trajectory token: ``d_traj_embed = Linear(9 -> d)`` of the coarse camera trajectory
  ``[6D, t (m, full-image camera frame)]`` from the image encoder.

``d_pos_enc`` (1, 1, n + 3, d) is added as in the authors' code: rows 0..n-1 to the pose slots,
row n to **every** image slot (so any p works), rows n+1 and n+2 to the last two slots.
A :class:`~moro.model.dstformer.DSTFormer` (``d_transformer``, paper depth 2) mixes them:
spatial attention within a frame, temporal attention per token slot (each image slot too).

Heads: pose logits ``d_pose_regressor`` (d -> k) on slots 0..n-1; contact logits
``d_contact_regressor`` (d -> 4) on the canonical-trajectory slot (-2); the refined camera
trajectory ``d_traj_regressor`` (d -> 9) on the camera slot (-1): 6D rotation (first two rows) and
translation in metres, full-image camera coordinates (no CLIFF step).

Names equal the authors' keys under ``mask_transformer.dst_former.`` (official layout 3.6).
Shape letters: b batch, t frames, n pose tokens, p image patches, k codes, d width.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from moro.model.dstformer import DSTFormer, init_linear_trunc_normal
from moro.model.motion_encoder import CONTACT_DIM, TRAJ_DIM

__all__ = ["DecoderOutput", "FusionDecoder"]


class DecoderOutput(NamedTuple):
    features: torch.Tensor  # (b, t, n + p + 2, d) last-layer features
    logits: torch.Tensor | None  # (b, t, n, k) refined pose-token logits (None with pose_logits=False)
    traj: torch.Tensor  # (b, t, 9) refined camera trajectory [6D, t (m)]
    contact_logits: torch.Tensor  # (b, t, 4) foot-contact logits


class FusionDecoder(nn.Module):
    """Fuses motion and image evidence per frame and over time.

    Args:
        width: d (paper 1024).
        depth: DSTFormer depth (paper 2).
        num_heads: attention heads (paper 8).
        window: temporal band half-width in frames (paper 60).
        num_tokens: n pose tokens per frame (paper 87).
        num_codes: k logit classes (paper 512).
        mlp_ratio, rope_base, max_positions, eps: see :class:`~moro.model.dstformer.DSTFormer`.
    """

    def __init__(
        self,
        width: int,
        depth: int,
        num_heads: int,
        window: int,
        num_tokens: int,
        num_codes: int,
        mlp_ratio: int = 4,
        rope_base: float = 10000.0,
        max_positions: int = 4096,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.num_tokens, self.width = num_tokens, width
        self.d_pos_enc = nn.Parameter(torch.zeros(1, 1, num_tokens + 3, width))
        self.d_traj_embed = nn.Linear(TRAJ_DIM, width)
        self.d_transformer = DSTFormer(width, depth, num_heads, window, mlp_ratio, rope_base, max_positions, eps)
        self.d_pose_regressor = nn.Linear(width, num_codes)
        self.d_traj_regressor = nn.Linear(width, TRAJ_DIM)
        self.d_contact_regressor = nn.Linear(width, CONTACT_DIM)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.trunc_normal_(self.d_pos_enc, std=0.02)
        for lin in (self.d_traj_embed, self.d_pose_regressor, self.d_traj_regressor, self.d_contact_regressor):
            init_linear_trunc_normal(lin)
        self.d_transformer.reset_parameters()

    def position_encoding(self, num_patches: int) -> torch.Tensor:
        """(1, 1, n + p + 2, d): the 90 (paper) rows spread over the slots, row n repeated p times."""
        n = self.num_tokens
        pe = self.d_pos_enc
        return torch.cat((pe[:, :, :n], pe[:, :, n : n + 1].expand(-1, -1, num_patches, -1), pe[:, :, n + 1 :]), dim=2)

    def forward(
        self,
        patch_features: torch.Tensor,
        coarse_traj: torch.Tensor,
        motion_features: torch.Tensor | None = None,
        pose_logits: bool = True,
    ) -> DecoderOutput:
        """Decode one batch of clips.

        Args:
            patch_features: (b, t, p, d) image patch features.
            coarse_traj: (b, t, 9) coarse camera trajectory ``[6D, t (m)]``.
            motion_features: (b, t, n + 1, d) motion-encoder features (n pose slots, then the
                trajectory slot), or None for zeros (no motion encoder, e.g. image pretraining).
            pose_logits: False skips the pose head (``logits`` None): the decoding loop applies
                ``d_pose_regressor`` to the still-masked slots of ``features`` alone.
        Returns:
            :class:`DecoderOutput`.
        """
        if patch_features.dim() != 4 or patch_features.shape[-1] != self.width:
            raise ValueError(f"patch_features must be (b, t, p, {self.width}), got {tuple(patch_features.shape)}")
        b, t, p, d = patch_features.shape
        if tuple(coarse_traj.shape) != (b, t, TRAJ_DIM):
            raise ValueError(f"coarse_traj must have shape ({b}, {t}, {TRAJ_DIM}), got {tuple(coarse_traj.shape)}")
        n = self.num_tokens
        if motion_features is None:
            motion_features = patch_features.new_zeros(b, t, n + 1, d)
        elif tuple(motion_features.shape) != (b, t, n + 1, d):
            raise ValueError(f"motion_features must have shape ({b}, {t}, {n + 1}, {d}), got {tuple(motion_features.shape)}")
        cam = self.d_traj_embed(coarse_traj).unsqueeze(2)  # (b, t, 1, d)
        x = torch.cat((motion_features[:, :, :n], patch_features, motion_features[:, :, n:], cam), dim=2)
        x = self.d_transformer(x + self.position_encoding(p))  # (b, t, n + p + 2, d)
        return DecoderOutput(
            features=x,
            logits=self.d_pose_regressor(x[:, :, :n]) if pose_logits else None,
            traj=self.d_traj_regressor(x[:, :, -1]),
            contact_logits=self.d_contact_regressor(x[:, :, -2]),
        )
