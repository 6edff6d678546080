"""ViT-H/16 image backbone of HMR2.0 (4D-Humans), as used by MoRo, with its checkpoint loader.

Architecture (official checkpoint layout, sections 3.3 and 4), paper values in brackets:

    image (b, 3, 256, 192) -> patch_embed.proj: Conv2d(3, d, 16, stride 16, padding 2)
        -> (b, d, 16, 12) -> row-major flatten (h outer, w inner) -> (b, p=192, d=1280)
        + pos_embed[:, 1:] + pos_embed[:, :1]      (no cls token; row 0 is added to every patch)
        -> depth x pre-norm block [32]:  x += attn(LN(x));  x += mlp(LN(x))
             LN eps 1e-6, fused qkv [3d, d] with rows [q | k | v] and heads contiguous in each,
             q scaled by head_dim^-0.5 (80^-0.5), exact (erf) GELU, MLP ratio 4,
             stochastic depth rising linearly 0 -> drop_path_rate over the blocks [0.55]
        -> last_norm -> (b, p, d) tokens

Parameter names equal the keys of HMR2.0's ``vit_pose_hmr2.pth`` (389 keys at full size, no
prefix), so that file loads with strict checking (:meth:`ViTHMR2.load_hmr2_checkpoint`).

The file is the user's (never shipped). Search order of :func:`find_hmr2_checkpoint` when
``pretrained=True``: ``$MORO_HMR2_VIT`` (a file path), ``./ckpt/backbones/vit_pose_hmr2.pth``
(the authors' layout), ``moro.paths.data_dir("backbones")/vit_pose_hmr2.pth``.

Deviations from the authors' code (none changes the function of trained weights):
- The forward takes the already cut 256 x 192 image (``crop_to_backbone_input``) instead of
  cutting 32 columns from a 256 x 256 crop inside.
- Attention runs through ``F.scaled_dot_product_attention`` (same math; it scales q k^T instead
  of q, which differs only by float rounding).
- Fresh (unloaded) weights use truncated-normal(0.02) Linear/pos_embed init; the authors only
  re-initialise pos_embed, but they always load the HMR2 file.
- A frozen backbone stays in eval mode, so drop-path is off; in the authors' code a parent
  ``.train()`` switches the frozen ViT back to training mode and drop-path (0.55) stays active.
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from moro.paths import data_dir

from .base import INPUT_SIZE, Backbone, BackboneCheckpointError, check_state_dict

__all__ = ["ViTHMR2", "vit_h16_hmr2", "find_hmr2_checkpoint", "read_hmr2_state_dict", "HMR2_VIT_ENV"]

log = logging.getLogger(__name__)

HMR2_VIT_ENV = "MORO_HMR2_VIT"
HMR2_VIT_FILENAME = "vit_pose_hmr2.pth"
PATCH_PADDING = 2  # the HMR2/ViTPose patch conv pads by 2: 256 x 192 -> 16 x 12 patches
_PREFIXES = ("backbone.model.", "backbone.")  # MoRo last.ckpt, HMR2 training checkpoints


class DropPath(nn.Module):
    """Stochastic depth: in training, zero the whole residual branch of a sample with prob ``p``
    and scale the kept ones by 1 / (1 - p); identity in eval mode."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection (rows [q | k | v], heads contiguous)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], scale=self.scale)  # (b, heads, n, d/heads)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact (erf)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x += attn(norm1(x)); x += mlp(norm2(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size, padding=PATCH_PADDING)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(b, 3, H, W) -> (b, d, h, w)."""
        return self.proj(images)


class ViTHMR2(Backbone):
    """HMR2.0's ViT: (b, 3, H, W) -> (b, p, d); defaults are the paper's ViT-H/16 (630.9 M params).

    Args:
        img_size: (H, W) input pixels, multiples of ``patch_size`` (256, 192).
        patch_size: patch side in pixels (16; must exceed 2 * the conv padding of 2).
        embed_dim: d (1280).
        depth: number of blocks (32).
        num_heads: attention heads (16; head dim 80).
        mlp_ratio: MLP hidden width / d (4).
        drop_path_rate: stochastic depth of the last block; block i uses i / (depth - 1) of it
            (0.55 as in HMR2/MoRo; only active in training mode).
        checkpoint_blocks: recompute block activations in the backward pass (saves memory when
            the backbone is trained).
    """

    def __init__(
        self,
        img_size: tuple[int, int] = INPUT_SIZE,
        patch_size: int = 16,
        embed_dim: int = 1280,
        depth: int = 32,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.55,
        checkpoint_blocks: bool = False,
    ) -> None:
        h, w = int(img_size[0]), int(img_size[1])
        if h % patch_size or w % patch_size or patch_size <= 2 * PATCH_PADDING:
            raise ValueError(f"img_size {img_size} must be multiples of patch_size {patch_size} (> 4)")
        super().__init__(input_size=(h, w), grid=(h // patch_size, w // patch_size), dim=embed_dim)
        self.checkpoint_blocks = checkpoint_blocks
        self.patch_embed = PatchEmbed(patch_size, embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches + 1, embed_dim))  # row 0: former cls slot
        # Python floats; computed on the CPU so that building under a meta device context works
        rates = torch.linspace(0, drop_path_rate, depth, device="cpu").tolist()
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, r) for r in rates)
        self.last_norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward_tokens(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images)  # (b, d, h, w)
        if tuple(x.shape[2:]) != self.grid:
            raise RuntimeError(f"patch grid {tuple(x.shape[2:])} != expected {self.grid}")
        x = x.flatten(2).transpose(1, 2)  # (b, p, d), row-major
        x = x + self.pos_embed[:, 1:] + self.pos_embed[:, :1]
        for blk in self.blocks:
            if self.checkpoint_blocks and self.training and torch.is_grad_enabled():
                x = checkpoint(blk, x, use_reentrant=False)
            else:
                x = blk(x)
        return self.last_norm(x)

    def load_hmr2_checkpoint(self, path: str | os.PathLike) -> "ViTHMR2":
        """Load HMR2.0's ``vit_pose_hmr2.pth`` (or a checkpoint holding it, see
        :func:`read_hmr2_state_dict`) with strict key and shape checking. Returns ``self``.

        Raises:
            FileNotFoundError: no such file.
            BackboneCheckpointError: the file is not a tensor-only state dict, or names / shapes
                differ (each missing, unexpected and mis-shaped key is named).
        """
        state = read_hmr2_state_dict(path)
        check_state_dict(
            {k: v.shape for k, v in self.state_dict().items()},
            state,
            source=f"HMR2 ViT weights {path}",
            fix="vit_pose_hmr2.pth fits the default vit_h16_hmr2 (embed_dim 1280, depth 32, 256x192 input)",
        )
        self.load_state_dict(state, strict=True)
        log.info("loaded HMR2 ViT weights from %s", path)
        return self


def read_hmr2_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read ViT weights with ``torch.load(weights_only=True)`` (no code runs from the file).

    Accepts a plain state dict (``vit_pose_hmr2.pth``: no prefix) or a dict with a
    ``"state_dict"`` entry; keys under ``backbone.model.`` (MoRo's ``last.ckpt``) or ``backbone.``
    (HMR2.0 training checkpoints) are selected and the prefix removed when no bare ViT key exists.

    Returns:
        name -> tensor (on CPU).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"HMR2 ViT weights not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise BackboneCheckpointError(
            f"{path} holds pickled objects besides tensors, which moro does not load (weights_only=True): {err}. "
            "Re-save just the backbone weights, e.g. torch.save(state_dict, 'vit_pose_hmr2.pth'), from a trusted copy"
        ) from err
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise BackboneCheckpointError(f"{path} is not a state dict (name -> tensor)")
    if "pos_embed" not in obj:
        for prefix in _PREFIXES:
            sub = {k[len(prefix) :]: v for k, v in obj.items() if k.startswith(prefix)}
            if "pos_embed" in sub:
                return sub
    return dict(obj)


def find_hmr2_checkpoint(path: str | os.PathLike | None = None) -> Path:
    """Locate ``vit_pose_hmr2.pth``: ``path`` if given (then only there), else ``$MORO_HMR2_VIT``,
    ``./ckpt/backbones/vit_pose_hmr2.pth``, ``<moro data dir>/backbones/vit_pose_hmr2.pth``."""
    if path is not None:
        candidates = [Path(path)]
    else:
        candidates = [Path(os.environ[HMR2_VIT_ENV])] if os.environ.get(HMR2_VIT_ENV) else []
        candidates += [Path("ckpt", "backbones", HMR2_VIT_FILENAME), data_dir("backbones", HMR2_VIT_FILENAME)]
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(
        f"HMR2.0 ViT weights ({HMR2_VIT_FILENAME}) not found; looked at: {', '.join(map(str, candidates))}. "
        f"Get the file from the MoRo / 4D-Humans release and set {HMR2_VIT_ENV}=/path/to/{HMR2_VIT_FILENAME}, "
        "or pass pretrained='/path/to/file'"
    )


def vit_h16_hmr2(pretrained: bool | str | os.PathLike = False, **cfg) -> ViTHMR2:
    """Registry factory. ``pretrained``: False = fresh weights; True = find ``vit_pose_hmr2.pth``
    (:func:`find_hmr2_checkpoint`); a path = that file. ``cfg``: :class:`ViTHMR2` arguments."""
    model = ViTHMR2(**cfg)
    if pretrained is not False and pretrained is not None:
        model.load_hmr2_checkpoint(find_hmr2_checkpoint(None if pretrained is True else pretrained))
    return model
