"""Motion encoder (the motion prior): masked pose tokens + canonical trajectory -> clean motion.

Per frame the encoder sees n + 1 tokens (paper 87 + 1):

* n pose tokens: the code vector of each token id from the frozen codebook, or the zero vector of
  [MASK] (id k), embedded by ``m_token_embed = Linear(dc -> d)`` (dc = 9 code dims);
* one canonical-trajectory token: ``m_traj_embed = Linear(9 -> d)`` of the z-normalised
  canonical trajectory (docs/conventions.md);
* plus the learned spatial position encoding ``m_pos_enc`` (1, 1, n + 1, d), row for row.

A :class:`~moro.model.dstformer.DSTFormer` (``m_transformer``) mixes them. Heads: pose logits
``m_pose_regressor`` (d -> k) on the n pose slots, and on the trajectory slot the clean
canonical trajectory ``m_traj_regressor`` (d -> 9, normalised space) and foot-contact logits
``m_contact_regressor`` (d -> 4: L ankle, L foot, R ankle, R foot; > 0 means contact).

Names equal the authors' keys under ``mask_transformer.dst_former.`` (official layout 3.4);
:class:`CodebookEmbedding` holds their ``mask_transformer.token_emb.weight`` (k + 1, dc).

Shape letters: b batch, t frames, n pose tokens, k codes, d width; dc code dimension.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from moro.model.dstformer import DSTFormer, init_linear_trunc_normal

__all__ = ["TRAJ_DIM", "CONTACT_DIM", "CodebookEmbedding", "MotionEncoderOutput", "MotionEncoder"]

TRAJ_DIM = 9  # 6D rotation (first two rows) + 3D translation
CONTACT_DIM = 4  # contact joints of joints22: L ankle (7), L foot (10), R ankle (8), R foot (11)


class CodebookEmbedding(nn.Module):
    """Frozen token embedding: the tokenizer's k code vectors plus an all-zero [MASK] row (id k).

    ``weight`` (k + 1, dc) is a buffer: it is saved, moved with the model and never trained.
    Refresh it from the tokenizer with :meth:`copy_codebook` after the tokenizer changes.
    """

    def __init__(self, num_codes: int, code_dim: int) -> None:
        super().__init__()
        self.num_codes, self.code_dim = num_codes, code_dim
        self.register_buffer("weight", torch.zeros(num_codes + 1, code_dim))

    @property
    def mask_id(self) -> int:
        """The [MASK] id, k (paper 512)."""
        return self.num_codes

    @property
    def codebook(self) -> torch.Tensor:
        """(k, dc) the code vectors (without the [MASK] row)."""
        return self.weight[: self.num_codes]

    @torch.no_grad()
    def copy_codebook(self, codebook: torch.Tensor) -> None:
        """Set rows 0..k-1 from a (k, dc) codebook; row k stays zero."""
        if tuple(codebook.shape) != (self.num_codes, self.code_dim):
            raise ValueError(
                f"codebook of shape {tuple(codebook.shape)} does not fit tokens.num_codes={self.num_codes}, "
                f"tokens.code_dim={self.code_dim}; set those config fields to the tokenizer's values"
            )
        self.weight[: self.num_codes].copy_(codebook)
        self.weight[self.num_codes].zero_()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(...) int ids in [0, k] -> (..., dc) vectors."""
        return F.embedding(ids, self.weight)


class MotionEncoderOutput(NamedTuple):
    features: torch.Tensor  # (b, t, n + 1, d) last-layer features: n pose slots, then the trajectory slot
    logits: torch.Tensor | None  # (b, t, n, k) pose-token logits (None with pose_logits=False)
    cano_traj: torch.Tensor  # (b, t, 9) clean canonical trajectory, z-normalised
    contact_logits: torch.Tensor  # (b, t, 4) foot-contact logits


class MotionEncoder(nn.Module):
    """Motion prior over (b, t) frames of n pose tokens and one canonical-trajectory token.

    Args:
        width: d (paper 1024).
        depth: DSTFormer depth (paper 4).
        num_heads: attention heads (paper 8).
        window: temporal band half-width in frames (paper 60).
        num_tokens: n pose tokens per frame (paper 87).
        num_codes: k codebook entries = logit classes (paper 512).
        code_dim: dc code dimension (paper 9).
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
        code_dim: int,
        mlp_ratio: int = 4,
        rope_base: float = 10000.0,
        max_positions: int = 4096,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.num_tokens, self.num_codes, self.width = num_tokens, num_codes, width
        self.m_pos_enc = nn.Parameter(torch.zeros(1, 1, num_tokens + 1, width))
        self.m_token_embed = nn.Linear(code_dim, width)
        self.m_traj_embed = nn.Linear(TRAJ_DIM, width)
        self.m_transformer = DSTFormer(width, depth, num_heads, window, mlp_ratio, rope_base, max_positions, eps)
        self.m_pose_regressor = nn.Linear(width, num_codes)
        self.m_traj_regressor = nn.Linear(width, TRAJ_DIM)
        self.m_contact_regressor = nn.Linear(width, CONTACT_DIM)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.trunc_normal_(self.m_pos_enc, std=0.02)
        for lin in (self.m_token_embed, self.m_traj_embed, self.m_pose_regressor, self.m_traj_regressor,
                    self.m_contact_regressor):
            init_linear_trunc_normal(lin)
        self.m_transformer.reset_parameters()

    def forward(self, token_vectors: torch.Tensor, cano_traj: torch.Tensor, pose_logits: bool = True) -> MotionEncoderOutput:
        """Encode masked motion.

        Args:
            token_vectors: (b, t, n, dc) code vectors of the (masked) pose tokens, zeros at [MASK]
                (see :class:`CodebookEmbedding`), or soft mixtures of code vectors.
            cano_traj: (b, t, 9) noisy canonical trajectory, z-normalised.
            pose_logits: False skips the pose head (``logits`` None; inference needs only the features).
        Returns:
            :class:`MotionEncoderOutput`.
        """
        b, t, n = token_vectors.shape[:3]
        if n != self.num_tokens:
            raise ValueError(f"motion encoder built for {self.num_tokens} tokens per frame, "
                             f"got token vectors of shape {tuple(token_vectors.shape)}")
        if tuple(cano_traj.shape) != (b, t, TRAJ_DIM):
            raise ValueError(f"cano_traj must have shape ({b}, {t}, {TRAJ_DIM}), got {tuple(cano_traj.shape)}")
        x = torch.cat((self.m_token_embed(token_vectors), self.m_traj_embed(cano_traj).unsqueeze(2)), dim=2)
        x = self.m_transformer(x + self.m_pos_enc)  # (b, t, n + 1, d)
        traj_feat = x[:, :, -1]  # (b, t, d)
        return MotionEncoderOutput(
            features=x,
            logits=self.m_pose_regressor(x[:, :, :-1]) if pose_logits else None,
            cano_traj=self.m_traj_regressor(traj_feat),
            contact_logits=self.m_contact_regressor(traj_feat),
        )
