"""A tiny from-scratch convolutional backbone for tests and the ``tiny`` preset (no weights to load).

    image (b, 3, 256, 192) -> len(channels) + 1 stages of [Conv3x3 stride 2, GroupNorm, GELU]
        -> 1x1 conv -> (b, d, 256 / 2^s, 192 / 2^s) -> row-major flatten -> (b, p, d)

With the defaults (4 + 1 = 5 stages, d = 128): an 8 x 6 grid, 48 tokens of 128 dims, ~0.3 M
parameters. GroupNorm (not BatchNorm) keeps every sample independent of the rest of the batch.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import INPUT_SIZE, Backbone

__all__ = ["SmallCNN", "small_cnn"]


def _group_count(channels: int, max_groups: int = 8) -> int:
    g = min(max_groups, channels)
    while channels % g:
        g -= 1
    return g


class SmallCNN(Backbone):
    """(b, 3, H, W) -> (b, (H / 2^s) * (W / 2^s), dim) with s = len(channels) + 1 stride-2 stages.

    Args:
        img_size: (H, W) input pixels, divisible by 2^s.
        dim: d, output token width (and the width of the last stage).
        channels: widths of the stages before the last one (4 -> 5 stages -> 8 x 6 at 256 x 192;
            3 -> 4 stages -> 16 x 12, the ViT's grid).
    """

    def __init__(
        self, img_size: tuple[int, int] = INPUT_SIZE, dim: int = 128, channels: tuple[int, ...] = (16, 32, 64, 96)
    ) -> None:
        h, w = int(img_size[0]), int(img_size[1])
        stride = 2 ** (len(channels) + 1)
        if h % stride or w % stride:
            raise ValueError(
                f"img_size {img_size} must be divisible by {stride} for {len(channels) + 1} stride-2 stages"
            )
        super().__init__(input_size=(h, w), grid=(h // stride, w // stride), dim=dim)
        layers: list[nn.Module] = []
        c_in = 3
        for c_out in (*channels, dim):
            layers += [
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1),
                nn.GroupNorm(_group_count(c_out), c_out),
                nn.GELU(),
            ]
            c_in = c_out
        layers.append(nn.Conv2d(dim, dim, 1))
        self.layers = nn.Sequential(*layers)

    def forward_tokens(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images).flatten(2).transpose(1, 2)  # (b, p, d), row-major


def small_cnn(pretrained: bool | str = False, **cfg) -> SmallCNN:
    """Registry factory; ``cfg``: :class:`SmallCNN` arguments. There are no pretrained weights."""
    if pretrained is not False and pretrained is not None:
        raise ValueError("small_cnn is trained from scratch and has no pretrained weights; pass pretrained=False")
    return SmallCNN(**cfg)
