"""Parameter counts per part and a forward-time estimate for a MoRo preset (``moro model summary``).

Counting builds the whole model on the ``meta`` device (no memory, no init time). The tokenizer
needs a pooling hierarchy: ``paper`` uses :func:`official_shape_hierarchy` (the authors' level
sizes and slot counts, official layout 3.2, so the parameter count is exact; its topology is
meaningless), ``tiny`` a hierarchy generated on a 615-vertex proxy grid mesh (the real count
depends on the mesh's slot counts, within ~10 %).

Timing (this CPU, float32, ``torch.get_num_threads()`` threads, no grad, batch 1, t frames):

* ``direct``: the whole forward (backbone, image encoder, motion encoder, decoder, smoother,
  tokenizer decoder) is built with real weights and timed once after a warm-up.
* ``reduced`` (models above 50 M parameters): each repeated block kind is built alone with
  random weights at the real width and token count and timed on ``t_small`` frames: one ViT block,
  the image encoder, one (st, ts) depth step of the motion encoder and of the decoder, and the
  smoother + tokenizer decoder. Estimate = sum of (time x number of such blocks) x t / t_small.
  Neglected: the patch embedding, heads and embeddings (< 1 % of the FLOPs) and the growth of
  temporal attention from t_small to t frames (< 2 % of the FLOPs at t = 60, paper sizes).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from moro.model.config import PRESETS, MoRoConfig
from moro.model.dstformer import DSTBlock

__all__ = ["OFFICIAL_SLOTS", "official_shape_hierarchy", "build_preset", "PartCount", "count_parameters",
           "estimate_forward_seconds"]

# Slot counts (max neighbours) of the authors' connection files, pool / unpool levels 0..6 (layout 3.2).
OFFICIAL_SLOTS = {"pool": (31, 41, 24, 59, 28, 84, 34), "unpool": (31, 17, 24, 15, 28, 17, 34)}
_REDUCED_ABOVE = 50_000_000


def official_shape_hierarchy():
    """A :class:`~moro.tokenizer.MeshHierarchy` with the authors' sizes 9383 -> 2618 -> 546 -> 87 and
    slot counts, every slot used; for counting and timing only (the neighbours are arbitrary)."""
    from moro.tokenizer import MeshHierarchy, NeighbourList
    from moro.tokenizer.hierarchy import SMPLX_BODY_LEVEL_SIZES as sizes

    def nlist(num_out: int, num_in: int, m: int) -> NeighbourList:
        anchor = np.arange(num_out) * max(num_in // num_out, 1)  # distinct, itself first
        ids = (anchor[:, None] + np.arange(m)[None, :]) % num_in
        dists = np.ones_like(ids)
        dists[:, 0] = 0
        return NeighbourList(ids, dists, num_in)

    pool, unpool = [], []
    for k in range(2 * (len(sizes) - 1) + 1):
        i = k // 2
        if k % 2:  # pooling level i -> i+1, unpooling back
            pool.append(nlist(sizes[i + 1], sizes[i], OFFICIAL_SLOTS["pool"][k]))
            unpool.append(nlist(sizes[i], sizes[i + 1], OFFICIAL_SLOTS["unpool"][k]))
        else:
            pool.append(nlist(sizes[i], sizes[i], OFFICIAL_SLOTS["pool"][k]))
            unpool.append(nlist(sizes[i], sizes[i], OFFICIAL_SLOTS["unpool"][k]))
    return MeshHierarchy(tuple(pool), tuple(unpool), source="official-shapes")


def _tokenizer(preset: str):
    from moro.tokenizer import MeshVQVAE, MeshVQVAEConfig, build_hierarchy

    if preset == "paper":
        return MeshVQVAE(MeshVQVAEConfig.paper(), official_shape_hierarchy())
    nx, ny = 15, 41  # 615 vertices, like Anny notoes_collapse5pc
    x, y = np.meshgrid(np.arange(nx), np.arange(ny))
    idx = (y * nx + x)[:-1, :-1].ravel()
    faces = np.concatenate([np.stack([idx, idx + 1, idx + nx + 1], 1), np.stack([idx, idx + nx + 1, idx + nx], 1)])
    cfg = MeshVQVAEConfig.tiny()
    return MeshVQVAE(cfg, build_hierarchy(faces, nx * ny, cfg.hierarchy, cache=False))


def build_preset(preset: str, device: str | torch.device = "meta"):
    """(MoRo, config) of a preset with its image encoder and backbone (untrained), on ``device``."""
    from moro.model.image_encoder import PRESETS as IMAGE_PRESETS
    from moro.model.image_encoder import ImageEncoder, build_image_backbone
    from moro.model.moro import MoRo

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    tokenizer = _tokenizer(preset)  # real (small), then moved
    config = MoRoConfig.paper() if preset == "paper" else MoRoConfig.tiny(tokenizer.config, tokenizer.num_vertices)
    icfg = IMAGE_PRESETS[preset]()
    with torch.device(device):
        image_encoder = ImageEncoder(icfg)
        backbone = build_image_backbone(icfg)
        model = MoRo(config, tokenizer.to(device), image_encoder, backbone=backbone)
    return model, config


@dataclass
class PartCount:
    name: str
    params: int  # all parameters
    trainable: bool  # False for parts MoRo always freezes (tokenizer)


def count_parameters(model: nn.Module) -> list[PartCount]:
    """Parameters per part of a MoRo (the image encoder count excludes the backbone)."""
    out = []
    for name, part in model.part_modules().items():
        out.append(PartCount(name, sum(p.numel() for p in part.parameters()), name != "tokenizer"))
    return out


def _randomize(module: nn.Module) -> nn.Module:
    """Materialise a meta module on the CPU with small random weights (timing only)."""
    module = copy.deepcopy(module).to_empty(device="cpu")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.02)
        for name, buf in module.named_buffers():
            if buf.is_floating_point():
                buf.zero_()
    return module.eval()


def _time(fn, repeats: int = 2) -> float:
    with torch.no_grad():
        fn()  # warm-up
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
    return best


def estimate_forward_seconds(preset: str, frames: int | None = None, t_small: int = 4) -> tuple[dict[str, float], str]:
    """Seconds per part for one clip (batch 1) of ``frames`` frames (default: the preset's clip).

    Returns:
        ``({part: seconds}, method)`` with method "direct" or "reduced (...)"; see the module docstring.
    """
    meta_model, config = build_preset(preset, "meta")
    t = frames or config.clip_frames
    total_params = sum(p.numel() for p in meta_model.parameters())
    bb, enc = meta_model.backbone, meta_model.image_encoder
    n, d = config.tokens.num_tokens, config.transformer.width
    p = enc.config.num_patches
    g = torch.Generator().manual_seed(0)
    if total_params <= _REDUCED_ABOVE:
        model, _ = build_preset(preset, "cpu")
        model.eval()
        images = torch.randn(1, t, 3, *bb.input_size, generator=g)
        bbox = torch.tensor([0.0, 0.0, 1.0]).expand(1, t, 3)
        ids = torch.randint(0, config.tokens.num_codes, (1, t, n), generator=g)
        secs = {}
        feats = {}
        secs["image_backbone"] = _time(lambda: feats.__setitem__("tok", model.backbone.encode_frames(images)))
        secs["image_encoder"] = _time(lambda: feats.__setitem__("img", model.encode_image(bbox, patch_tokens=feats["tok"])))
        secs["motion_encoder"] = _time(lambda: feats.__setitem__("mot", model(ids)))
        secs["decoder"] = _time(lambda: model.decoder(feats["img"].patch_features, feats["img"].coarse_traj,
                                                      feats["mot"].motion.features))
        secs["smoother+tokenizer"] = _time(lambda: model.mesh_from_ids(ids))
        return secs, f"direct (b=1, t={t})"
    tr, ts = config.transformer, t_small
    scale = t / ts
    secs = {}
    vit_block = _randomize(bb.blocks[0])
    x_bb = torch.randn(ts, bb.num_patches, bb.dim, generator=g)
    secs["image_backbone"] = _time(lambda: vit_block(x_bb)) * len(bb.blocks) * scale
    enc_cpu = _randomize(enc)
    from moro.model.image_encoder import sine_position_encoding_2d

    enc_cpu.pos_enc = sine_position_encoding_2d(*enc.config.backbone_grid, enc.config.width)
    tok_in = torch.randn(1, ts, p, enc.config.backbone_dim, generator=g)
    bbox = torch.tensor([0.0, 0.0, 1.0]).expand(1, ts, 3)
    secs["image_encoder"] = _time(lambda: enc_cpu(tok_in, bbox)) * scale
    kw = dict(mlp_ratio=tr.mlp_ratio, rope_base=tr.rope_base, max_positions=tr.max_positions, eps=tr.ln_eps)
    pair = nn.ModuleList(DSTBlock(d, tr.num_heads, tr.window, order, **kw) for order in ("st", "ts")).eval()
    for part, slots, depth in (("motion_encoder", n + 1, tr.motion_depth), ("decoder", n + p + 2, tr.decoder_depth)):
        x = torch.randn(1, ts, slots, d, generator=g)
        secs[part] = _time(lambda: [blk(x) for blk in pair]) * depth * scale
    tok_cpu = _tokenizer(preset).eval()
    smoother = _randomize(meta_model.smoother)
    z = torch.randn(1, ts, n, config.tokens.code_dim, generator=g)
    secs["smoother+tokenizer"] = _time(lambda: tok_cpu.decode_latents(smoother(z))) * scale
    return secs, f"reduced (blocks timed alone at t_small={ts} frames, scaled by block count and t/t_small={scale:g})"
