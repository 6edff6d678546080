"""Image backbones: (b, 3, 256, 192) ImageNet-normalised crops -> (b, p, d) row-major patch tokens.

- :mod:`.base`              the contract (:class:`Backbone`), ``normalize_imagenet``, ``crop_to_backbone_input``
- :mod:`.registry`          ``build_backbone(name, pretrained=..., frozen=..., **cfg)``
- :mod:`.vit_hmr2`          ``vit_h16_hmr2``: HMR2.0's ViT-H/16 (paper), loads ``vit_pose_hmr2.pth``
- :mod:`.efficientnet_lite` ``efficientnet_lite0``: ImageNet EfficientNet-Lite0 (light, offline weights)
- :mod:`.small_cnn`         ``small_cnn``: tiny from-scratch CNN (tests, ``tiny`` preset)
"""

from .base import (
    CROP_SIZE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    INPUT_SIZE,
    Backbone,
    BackboneCheckpointError,
    crop_to_backbone_input,
    normalize_imagenet,
)
from .registry import BACKBONES, available_backbones, build_backbone

__all__ = [
    "Backbone",
    "BackboneCheckpointError",
    "BACKBONES",
    "available_backbones",
    "build_backbone",
    "normalize_imagenet",
    "crop_to_backbone_input",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "CROP_SIZE",
    "INPUT_SIZE",
]
