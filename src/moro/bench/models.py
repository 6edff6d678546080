"""The networks the benchmarks measure.

* ``tiny``: the given checkpoint, else the shipped tiny model
  (:func:`moro.inference.loading.resolve_checkpoint`), else a **randomly initialised** tiny MoRo
  on the repository's trained tiny tokenizer (``models/tokenizer_tiny.ckpt``, Anny
  ``notoes_collapse5pc``, 615 vertices, 96 tokens). Speed and memory do not depend on the weights.
* ``paper``: the authors' architecture (width 1024, ViT-H/16 backbone), random weights; its
  tokenizer uses the authors' level sizes and slot counts (:func:`moro.model.summary.official_shape_hierarchy`),
  so its cost is exact (its topology is not: no fit for it).
* ``micro``: the tiny preset narrowed to width 32, depth 1 (scaling smoke test of ``--quick``:
  the streaming machinery on 18000 frames in seconds; not a model anyone would use).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)

__all__ = ["NETWORKS", "TINY_TOKENIZER", "build_network", "meta_copy", "describe_network"]

NETWORKS = ("tiny", "paper", "micro")
TINY_TOKENIZER = Path(__file__).resolve().parents[3] / "models" / "tokenizer_tiny.ckpt"


def _tiny_tokenizer():
    from moro.tokenizer import MeshVQVAE, MeshVQVAEConfig
    from moro.tokenizer.checkpoint import load_tokenizer

    if TINY_TOKENIZER.is_file():
        return load_tokenizer(TINY_TOKENIZER), f"tokenizer {TINY_TOKENIZER.name}"
    from moro.body import load_anny

    body = load_anny("notoes_collapse5pc")
    tok = MeshVQVAE.from_mesh(MeshVQVAEConfig.tiny(), body.faces.numpy(), body.num_vertices)
    v, j = body.shaped(body.zero_betas())
    tok.set_template(v - j[0])
    return tok, "random tokenizer on Anny notoes_collapse5pc"


def build_network(name: str, device: str | torch.device = "cpu", checkpoint: str | None = None,
                  backbone: bool = True, seed: int = 0):
    """``(MoRo in eval mode on device, description)`` for a network of :data:`NETWORKS`.

    Args:
        checkpoint: for ``tiny``: a MoRo checkpoint (None: the shipped one if present, else random).
        backbone: attach the image backbone (False: the pipeline starts from backbone tokens).
    """
    from moro.model import MoRo, MoRoConfig
    from moro.model.image_encoder import ImageEncoder, ImageEncoderConfig, build_image_backbone

    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; choose one of {NETWORKS}")
    torch.manual_seed(seed)
    if name == "tiny":
        from moro.inference.loading import load_model, resolve_checkpoint

        try:
            path = resolve_checkpoint(checkpoint)
        except FileNotFoundError:
            if checkpoint is not None:
                raise
            path = None
        if path is not None:
            model = load_model(path, device)
            if not backbone:
                model.backbone = None
            return model.eval(), f"tiny checkpoint {path}"
    if name in ("tiny", "micro"):
        tok, tok_note = _tiny_tokenizer()
        cfg = MoRoConfig.tiny(tok.config, tok.num_vertices)
        icfg = ImageEncoderConfig.tiny()
        if name == "micro":
            cfg.transformer.width, cfg.transformer.num_heads = 32, 2
            cfg.transformer.motion_depth = cfg.transformer.decoder_depth = 1
            icfg.width, icfg.num_heads, icfg.num_layers = 32, 2, 1
        with torch.device(device):
            model = MoRo(cfg, tok.to(device), ImageEncoder(icfg), backbone=build_image_backbone(icfg) if backbone else None)
        return model.eval(), f"{name}, random weights ({tok_note})"
    from moro.model.summary import official_shape_hierarchy
    from moro.tokenizer import MeshVQVAE, MeshVQVAEConfig

    tok = MeshVQVAE(MeshVQVAEConfig.paper(), official_shape_hierarchy())
    icfg = ImageEncoderConfig.paper()
    with torch.device(device):
        model = MoRo(MoRoConfig.paper(), tok.to(device), ImageEncoder(icfg),
                     backbone=build_image_backbone(icfg) if backbone else None)
    return model.eval(), "paper, random weights (authors' tokenizer level sizes)"


def meta_copy(model):
    """A copy of ``model`` on the meta device, without its backbone (for counting decode FLOPs)."""
    bb, model.backbone = model.backbone, None
    inner = getattr(model.image_encoder, "backbone", None)
    if inner is not None:
        model.image_encoder.backbone = None
    try:
        return copy.deepcopy(model).to("meta").eval()
    finally:
        model.backbone = bb
        if inner is not None:
            model.image_encoder.backbone = inner


def describe_network(model) -> dict:
    """Sizes that the figures depend on."""
    tr, tok = model.config.transformer, model.config.tokens
    enc = model.image_encoder
    enc_cfg = getattr(enc, "config", None) or getattr(getattr(enc, "encoder", None), "config", None)
    return {"preset": model.config.name, "width": tr.width, "heads": tr.num_heads, "motion_depth": tr.motion_depth,
            "decoder_depth": tr.decoder_depth, "tokens": tok.num_tokens, "codes": tok.num_codes,
            "patches": getattr(enc_cfg, "num_patches", None), "vertices": model.tokenizer.num_vertices,
            "params_m": round(sum(p.numel() for n, p in model.named_parameters() if not n.startswith("backbone.")) / 1e6, 3)}
