"""MoRo networks: attention and DSTFormer blocks, motion encoder, fusion decoder, smoother,
masking, Gumbel decoding, losses, and the assembled :class:`MoRo` (built from :class:`MoRoConfig`).

The image backbones and the image encoder live in ``moro.model.backbones`` and
``moro.model.image_encoder`` and are injected into :class:`MoRo`.
"""

from moro.model.config import PRESETS, MoRoConfig, TokenConfig, TransformerConfig
from moro.model.decoder import DecoderOutput, FusionDecoder
from moro.model.dstformer import DSTBlock, DSTFormer
from moro.model.gumbel import GumbelConfig, gumbel_softmax_hard, gumbel_temperature
from moro.model.losses import LossConfig, moro_losses
from moro.model.masking import MASK_MODES, MaskedTokens, MaskingConfig, inference_masking, mask_tokens
from moro.model.moro import ImageFeatures, MoRo, MoRoOutput
from moro.model.motion_encoder import CodebookEmbedding, MotionEncoder, MotionEncoderOutput
from moro.model.smoother import SmootherConfig, TokenSmoother

__all__ = [
    "PRESETS", "MoRoConfig", "TokenConfig", "TransformerConfig",
    "DecoderOutput", "FusionDecoder", "DSTBlock", "DSTFormer",
    "GumbelConfig", "gumbel_softmax_hard", "gumbel_temperature",
    "LossConfig", "moro_losses",
    "MASK_MODES", "MaskedTokens", "MaskingConfig", "inference_masking", "mask_tokens",
    "ImageFeatures", "MoRo", "MoRoOutput",
    "CodebookEmbedding", "MotionEncoder", "MotionEncoderOutput",
    "SmootherConfig", "TokenSmoother",
]
