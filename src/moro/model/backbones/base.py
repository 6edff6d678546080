"""The contract every image backbone follows, and the input helpers that feed it.

Input: (b, 3, H, W) float RGB crops, already ImageNet-normalised, at the backbone's
``input_size`` (MoRo: H x W = 256 x 192, i.e. the 256 x 256 HMR crop with 32 columns cut on each
side; official checkpoint layout, section 4, "Input crop"). Output: (b, p, d) patch tokens,
row-major over the feature grid (h outer, w inner; p = h * w).

Every backbone exposes ``grid`` (h, w), ``num_patches`` (p), ``dim`` (d) and ``input_size``
(H, W), and can be frozen (:meth:`Backbone.freeze`): frozen parameters get no gradient and the
module stays in eval mode (no dropout, drop-path or batch-norm updates) even when a parent calls
``.train()``.

Shape letters: b batch, t frames, p patches, d features; H, W pixels.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "Backbone",
    "BackboneCheckpointError",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "CROP_SIZE",
    "INPUT_SIZE",
    "normalize_imagenet",
    "crop_to_backbone_input",
    "check_state_dict",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB, for images scaled to [0, 1]
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_SIZE = 256  # side of the square HMR crop in pixels
INPUT_SIZE = (256, 192)  # (H, W) the backbones see: the crop minus 32 columns on each side


class BackboneCheckpointError(ValueError):
    """A weight file that does not fit the backbone (missing, extra or mis-shaped keys)."""


def normalize_imagenet(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """RGB images -> ImageNet-normalised float images.

    Args:
        images: (..., 3, H, W) RGB, channels first; uint8 in [0, 255] or float in [0, 1].
            (The official code converts OpenCV's BGR to RGB before this step: do so first.)
        dtype: float dtype of the result for uint8 input (float input keeps its dtype).
    Returns:
        (..., 3, H, W) ``(x - mean) / std`` with the ImageNet RGB mean and std.
    Raises:
        ValueError: wrong channel axis, or float values outside [0, 1] (e.g. 0..255 floats).
    """
    if images.ndim < 3 or images.shape[-3] != 3:
        raise ValueError(
            f"images must be (..., 3, H, W) RGB channels-first, got shape {tuple(images.shape)}; "
            "for (..., H, W, 3) arrays use .movedim(-1, -3) first"
        )
    if images.dtype == torch.uint8:
        x = images.to(dtype) / 255.0
    elif images.is_floating_point():
        x = images
        if x.numel() and (float(x.min()) < -1e-3 or float(x.max()) > 1.0 + 1e-3):
            raise ValueError(
                f"float images must be in [0, 1], got values in [{float(x.min()):.3g}, {float(x.max()):.3g}]; "
                "divide 0..255 images by 255 or pass them as uint8"
            )
    else:
        raise TypeError(f"images must be uint8 or floating point, got {images.dtype}")
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x - mean) / std


def crop_to_backbone_input(crops: torch.Tensor, width: int = INPUT_SIZE[1]) -> torch.Tensor:
    """Cut a square crop to the backbone's width by dropping equal column bands on both sides.

    The official ViT does this inside its forward (``x[..., 32:-32]`` on 256 x 256 crops);
    moro's backbones take the cut image, so callers do it here.

    Args:
        crops: (..., C, S, S') crops (any dtype), normally S = S' = 256.
        width: output width W (192 for MoRo).
    Returns:
        (..., C, S, W): columns ``(S' - W) / 2 .. (S' + W) / 2 - 1`` of ``crops`` (a view).
    """
    if crops.ndim < 3:
        raise ValueError(f"crops must be (..., C, H, W), got shape {tuple(crops.shape)}")
    full = crops.shape[-1]
    cut = full - width
    if cut < 0 or cut % 2:
        raise ValueError(
            f"cannot cut a crop of width {full} to {width} symmetrically; the crop must be at least "
            f"{width} wide and the difference even (MoRo: 256 -> 192, dropping 32 columns each side)"
        )
    return crops[..., cut // 2 : full - cut // 2]


def check_state_dict(
    expected: dict[str, torch.Size], loaded: dict[str, torch.Tensor], source: str, fix: str = ""
) -> None:
    """Compare a loaded state dict with the expected names and shapes; raise on any difference.

    Args:
        expected: name -> shape the module holds (``{k: v.shape for k, v in m.state_dict().items()}``).
        loaded: name -> tensor from the file.
        source: what the file is (named in the error).
        fix: a hint appended to the error message.
    Raises:
        BackboneCheckpointError: naming every missing, unexpected and mis-shaped key (up to 10 of
            each, with counts).
    """

    def listing(names: list[str]) -> str:
        more = f" ... (+{len(names) - 10} more)" if len(names) > 10 else ""
        return ", ".join(names[:10]) + more

    missing = [k for k in expected if k not in loaded]
    extra = [k for k in loaded if k not in expected]
    bad = [
        f"{k}: file {list(loaded[k].shape)} vs model {list(expected[k])}"
        for k in expected
        if k in loaded and tuple(loaded[k].shape) != tuple(expected[k])
    ]
    if not (missing or extra or bad):
        return
    parts = [f"{source} does not fit the backbone ({len(loaded)} keys in the file, {len(expected)} expected)"]
    if missing:
        parts.append(f"missing {len(missing)}: {listing(missing)}")
    if extra:
        parts.append(f"unexpected {len(extra)}: {listing(extra)}")
    if bad:
        parts.append(f"mis-shaped {len(bad)}: {listing(bad)}")
    if fix:
        parts.append(fix)
    raise BackboneCheckpointError("; ".join(parts))


class Backbone(nn.Module):
    """Base class: (b, 3, H, W) normalised images -> (b, p, d) row-major patch tokens.

    Subclasses call ``super().__init__(input_size=..., grid=..., dim=...)`` and implement
    :meth:`forward_tokens`.
    """

    def __init__(self, *, input_size: tuple[int, int], grid: tuple[int, int], dim: int) -> None:
        super().__init__()
        self.input_size = (int(input_size[0]), int(input_size[1]))  # (H, W) pixels
        self.grid = (int(grid[0]), int(grid[1]))  # (h, w) feature grid
        self.dim = int(dim)  # d
        self.frozen = False

    @property
    def num_patches(self) -> int:
        """p = h * w tokens per image."""
        return self.grid[0] * self.grid[1]

    def forward_tokens(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """(b, 3, H, W) -> (b, p, d); inputs are already checked."""
        raise NotImplementedError  # abstractmethod: subclasses implement it

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Args: images (b, 3, H, W) ImageNet-normalised RGB at ``input_size``.
        Returns: (b, p, d) patch tokens, row-major (h outer, w inner)."""
        h, w = self.input_size
        if images.ndim != 4 or images.shape[1] != 3 or tuple(images.shape[2:]) != (h, w):
            hint = ""
            if images.ndim == 4 and images.shape[-1] == images.shape[-2] == h and w < h:
                hint = "; cut the square crop first with crop_to_backbone_input(crop)"
            raise ValueError(
                f"{type(self).__name__} takes (b, 3, {h}, {w}) images, got {tuple(images.shape)}{hint}"
            )
        if not images.is_floating_point():
            raise TypeError(f"images must be float and ImageNet-normalised (normalize_imagenet), got {images.dtype}")
        return self.forward_tokens(images)

    def encode_frames(self, images: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
        """Per-frame tokens of a clip, optionally in chunks of frames to bound activation memory.

        Args:
            images: (b, t, 3, H, W) normalised crops.
            chunk_size: frames per backbone call (the official code uses 8); None = all at once.
        Returns:
            (b, t, p, d) patch tokens.
        """
        if images.ndim != 5:
            raise ValueError(f"encode_frames takes (b, t, 3, H, W) images, got {tuple(images.shape)}")
        b, t = images.shape[:2]
        flat = images.flatten(0, 1)
        if chunk_size is None or chunk_size >= flat.shape[0]:
            tokens = self(flat)
        else:
            if chunk_size < 1:
                raise ValueError(f"chunk_size must be >= 1 or None, got {chunk_size}")
            tokens = torch.cat([self(flat[i : i + chunk_size]) for i in range(0, flat.shape[0], chunk_size)])
        return tokens.unflatten(0, (b, t))

    def freeze(self, frozen: bool = True) -> "Backbone":
        """Freeze (no gradients, eval mode from now on) or unfreeze (gradients again; the mode
        is left as is: call ``.train()`` to resume training behaviour). Returns ``self``."""
        self.frozen = bool(frozen)
        self.requires_grad_(not self.frozen)
        if self.frozen:
            nn.Module.train(self, False)
        return self

    def train(self, mode: bool = True) -> "Backbone":
        """Like ``nn.Module.train``, except that a frozen backbone always stays in eval mode."""
        return super().train(mode and not self.frozen)

    def for_inference(self) -> "Backbone":
        """An eval-mode, gradient-free module giving the same tokens as ``self.eval()`` (up to float
        rounding), possibly faster: subclasses fold layers (e.g. batch norm into convolutions) into a
        copy. Never train or save the result; ``self`` is left untouched. Default: ``self.eval()``."""
        return self.eval()


def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Fold an eval-mode ``bn`` that follows ``conv`` into the conv's weight and bias, in place:
    ``bn(conv(x)) == conv'(x)``, with ``conv'.weight = w * g / sqrt(var + eps)`` per output channel
    and ``conv'.bias = (b - mean) * g / sqrt(var + eps) + beta``. The caller replaces ``bn`` by an identity."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (o,)
    with torch.no_grad():
        bias = (conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)) - bn.running_mean
        conv.weight.mul_(scale.view(-1, *([1] * (conv.weight.ndim - 1))))
        conv.bias = nn.Parameter(bias * scale + bn.bias, requires_grad=False)
