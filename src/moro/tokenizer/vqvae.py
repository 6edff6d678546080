"""Mesh-VQ-VAE: fully convolutional mesh autoencoder with an EMA-quantized token bottleneck.

Data flow for L = len(channels) levels (paper: 9383 x 3 -> 87 tokens x 9 -> 9383 x 3):

    encoder  conv(3 -> c_0) pool conv(c_0 -> c_1) pool ... conv(c_{L-1} -> d)       layers 0 .. 2L
    quantizer  nearest of k codes (d dims) per token
    decoder  conv(d -> c_{L-1}) unpool conv(c_{L-1} -> c_{L-2}) unpool ... conv(c_0 -> 3)  layers 2L+1 .. 4L+1

Layer l uses hierarchy.pool[l] (encoder) or hierarchy.unpool[4L+1 - l] (decoder); every conv is
followed by ELU except the last (so the encoder latents pass through ELU, as in the authors'
code). With the paper config and the authors' hierarchy files the parameters have exactly the
authors' shapes: `layers.{l}.weights|bias|w_weights|p_neighbors` = `fully_conv_ae.{name}{l}`,
`quantizer.codebook|ema_sum|ema_count` = `vq_vae._embedding.weight|_ema_w|_ema_cluster_size`.

Vertices are in metres, body-local and root-centred (docs/conventions.md); the model itself
does not normalise them. Shape letters: b batch ("..." any leading shape), v vertices, n tokens,
d token dimension.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import torch
from torch import nn

from moro.tokenizer.hierarchy import HierarchySpec, build_hierarchy
from moro.tokenizer.layers import MeshLayer
from moro.tokenizer.neighbours import MeshHierarchy
from moro.tokenizer.quantizer import VectorQuantizerEMA

__all__ = ["MeshVQVAEConfig", "MeshVQVAEOutput", "MeshVQVAE", "PRESETS"]


@dataclass
class MeshVQVAEConfig:
    """Architecture of the tokenizer; stored in checkpoints (`to_dict` / `from_dict`)."""

    channels: tuple[int, ...] = (32, 64, 128)  # encoder conv widths per level (decoder mirrors); len = pooling steps L
    latent_dim: int = 9  # d: token dimension = code dimension (paper 9)
    num_basis: int = 9  # M: basis kernels per conv, mixed per vertex and slot (paper 9)
    codebook_size: int = 512  # k: codes in the single codebook (paper 512; id k is the transformer's [MASK])
    ema_decay: float = 0.99  # codebook EMA decay (paper 0.99)
    commitment_weight: float = 0.25  # weight of the commitment loss (paper 0.25)
    vertex_weight: float = 1.0  # weight of the mean per-vertex Euclidean error (paper 1.0)
    restart_after: int = 100  # training steps without use before a code is restarted (tiny: 20, small batches)
    num_vertices: int | None = None  # expected v_0; None = any mesh (checked against the hierarchy)
    template_offset: bool = False  # ours: encode/decode residuals from a fixed mean mesh (buffer `template`); off in paper
    hierarchy: HierarchySpec = field(default_factory=HierarchySpec)  # how to generate the pooling hierarchy

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        if isinstance(self.hierarchy, dict):
            self.hierarchy = HierarchySpec.from_dict(self.hierarchy)
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"channels must be a non-empty tuple of positive widths, got {self.channels}")
        if len(self.hierarchy.levels) != len(self.channels):
            raise ValueError(
                f"{len(self.channels)} channel widths need {len(self.channels)} pooling steps, "
                f"but hierarchy.levels has {len(self.hierarchy.levels)}; give one level per width"
            )

    @classmethod
    def paper(cls) -> "MeshVQVAEConfig":
        """The authors' tokenizer on the SMPL-X body mesh without eyeballs (9383 v -> 87 tokens)."""
        return cls(num_vertices=9383)

    @classmethod
    def anny(cls) -> "MeshVQVAEConfig":
        """The authors' architecture on Anny `anny-noeyes-notongue` (13348 v -> 3724 -> 777 -> 124 tokens)."""
        return cls(num_vertices=13348)

    @classmethod
    def tiny(cls) -> "MeshVQVAEConfig":
        """Ours, for CPUs: Anny `notoes_collapse5pc` 615 v -> 246 -> 96 tokens, widths 16/32, template offset.

        Level choice, measured on 2 shared CPU cores (1 torch thread): short trainings of 200
        AdamW steps, batch 32, local meshes of the motion generator with random adult shapes,
        PVE = mean vertex error on 256 held-out meshes (other motions and shapes):

        ===========================  ========  ========  ===========  ============
        levels (tokens)              widths    template  lr           PVE @ 200
        ===========================  ========  ========  ===========  ============
        615 -> 246 -> 92 -> 37 (37)  16/32/32  no        1e-3         49.3 mm
        615 -> 246 -> 96 (96)        16/32     no        1e-3         50.3 mm
        615 -> 246 -> 92 -> 37 (37)  16/32/32  yes       1e-3 / 3e-3  30.8 / 29.7 mm
        615 -> 246 -> 96 (96)        16/32     yes       2e-3         24.2 mm
        ===========================  ========  ========  ===========  ============

        The template offset (encode/decode residuals from the mean training mesh) is the biggest
        win for short trainings; with it, 96 tokens beat 37 by ~20 % at about the same cost per step
        (~0.55 s). More tokens should also lower the floor of a long run (not measured). The full
        run (3600 steps, 26 min; models/README.md) reaches 8.8 mm held-out PVE. On other meshes the
        ratios give e.g. 642 -> 257 -> 100 (icosphere) or 120 -> 48 -> 19 (10 x 12 grid).
        """
        return cls(channels=(16, 32), restart_after=20, template_offset=True, hierarchy=HierarchySpec(levels=(0.4, 0.39)))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        d["hierarchy"] = self.hierarchy.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "MeshVQVAEConfig":
        return cls(**d)


PRESETS = {"paper": MeshVQVAEConfig.paper, "anny": MeshVQVAEConfig.anny, "tiny": MeshVQVAEConfig.tiny}


class MeshVQVAEOutput(NamedTuple):
    reconstruction: torch.Tensor  # (..., v, 3) metres
    codes: torch.Tensor  # (..., n) int64
    loss: torch.Tensor  # () vertex_weight * vertex_error + commit_loss
    vertex_error: torch.Tensor  # () mean per-vertex Euclidean distance, metres
    commit_loss: torch.Tensor  # () weighted commitment loss
    perplexity: torch.Tensor  # () codebook perplexity of this batch


class MeshVQVAE(nn.Module):
    """Mesh tokenizer: (..., v, 3) vertices <-> (..., n) codes / (..., n, d) latents.

    Args:
        config: architecture.
        hierarchy: pooling hierarchy with len(config.channels) pooling steps, generated
            (`from_mesh`) or the authors' files (`load_official_hierarchy`).
    """

    def __init__(self, config: MeshVQVAEConfig, hierarchy: MeshHierarchy) -> None:
        super().__init__()
        num_levels = len(config.channels)
        if hierarchy.num_levels != num_levels:
            raise ValueError(
                f"config has {num_levels} levels (channels {config.channels}) but the hierarchy "
                f"({hierarchy.source or 'unnamed'}) has {hierarchy.num_levels} pooling steps {hierarchy.level_sizes}; "
                "build the hierarchy with one level per channel width"
            )
        if config.num_vertices is not None and hierarchy.level_sizes[0] != config.num_vertices:
            raise ValueError(
                f"this config expects meshes of {config.num_vertices} vertices but the hierarchy has "
                f"{hierarchy.level_sizes[0]}; for the paper preset use the SMPL-X body without eyeballs "
                "(vertices 0..9382, faces whose indices are all < 9383), or set num_vertices=None"
            )
        self.config, self.hierarchy = config, hierarchy
        self.hierarchy_digest = hierarchy.digest
        c, d, m = config.channels, config.latent_dim, config.num_basis
        layers = []
        for i in range(num_levels):  # encoder
            layers.append(MeshLayer(hierarchy.pool[2 * i], 3 if i == 0 else c[i - 1], c[i], m, 0.0))
            layers.append(MeshLayer(hierarchy.pool[2 * i + 1], c[i], c[i], m, 1.0))
        layers.append(MeshLayer(hierarchy.pool[2 * num_levels], c[-1], d, m, 0.0))
        layers.append(MeshLayer(hierarchy.unpool[2 * num_levels], d, c[-1], m, 0.0))  # decoder
        for i in reversed(range(num_levels)):
            layers.append(MeshLayer(hierarchy.unpool[2 * i + 1], c[i], c[i], m, 1.0))
            c_out = 3 if i == 0 else c[i - 1]
            layers.append(MeshLayer(hierarchy.unpool[2 * i], c[i], c_out, m, 0.0, activation=i > 0))
        self.layers = nn.ModuleList(layers)
        self.num_encoder_layers = 2 * num_levels + 1
        self.quantizer = VectorQuantizerEMA(
            config.codebook_size, d, config.ema_decay, config.commitment_weight, restart_after=config.restart_after
        )
        if config.template_offset:  # (v, 3) metres; set from data by the trainer (`set_template`)
            self.register_buffer("template", torch.zeros(hierarchy.level_sizes[0], 3))
        else:
            self.template = None

    @classmethod
    def from_mesh(cls, config: MeshVQVAEConfig, faces, num_vertices: int, *, cache: bool = True, cache_dir=None) -> "MeshVQVAE":
        """Build with the hierarchy generated (or read from cache) for this mesh topology; faces (f, 3)."""
        return cls(config, build_hierarchy(faces, num_vertices, config.hierarchy, cache=cache, cache_dir=cache_dir))

    @property
    def num_vertices(self) -> int:
        return self.hierarchy.level_sizes[0]

    @property
    def num_tokens(self) -> int:
        return self.hierarchy.num_tokens

    @property
    def codebook(self) -> torch.Tensor:
        """(k, d) current code vectors."""
        return self.quantizer.codebook

    @torch.no_grad()
    def set_template(self, template: torch.Tensor) -> None:
        """Set the (v, 3) mean mesh, metres, that encode subtracts and decode adds (config.template_offset)."""
        if self.template is None:
            raise ValueError("this tokenizer has no template; build it with config.template_offset=True")
        if tuple(template.shape) != (self.num_vertices, 3):
            raise ValueError(f"template must have shape ({self.num_vertices}, 3), got {tuple(template.shape)}")
        self.template.copy_(template)

    def encode_latents(self, vertices: torch.Tensor) -> torch.Tensor:
        """Continuous (pre-quantization) latents: (..., v, 3) -> (..., n, d)."""
        x, lead = self._to_vertex_major(vertices, self.num_vertices, 3, "vertices")
        if self.template is not None:
            x = x - self.template.to(x.dtype).unsqueeze(1)  # (v, b, 3) residual from the mean mesh
        for layer in self.layers[: self.num_encoder_layers]:
            x = layer(x)
        return x.transpose(0, 1).reshape(*lead, self.num_tokens, self.config.latent_dim)

    def encode(self, vertices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens of meshes: (..., v, 3) -> codes (..., n) int64, z_q (..., n, d).

        z_q carries straight-through gradients to the encoder; the codebook is updated only in train mode.
        """
        out = self.quantizer(self.encode_latents(vertices))
        return out.codes, out.quantized

    def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Meshes from token vectors (codebook vectors or any continuous mix): (..., n, d) -> (..., v, 3)."""
        x, lead = self._to_vertex_major(z, self.num_tokens, self.config.latent_dim, "latents")
        for layer in self.layers[self.num_encoder_layers :]:
            x = layer(x)
        if self.template is not None:
            x = x + self.template.to(x.dtype).unsqueeze(1)
        return x.transpose(0, 1).reshape(*lead, self.num_vertices, 3)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Meshes from code ids: (..., n) int -> (..., v, 3)."""
        if codes.shape[-1:] != (self.num_tokens,):
            raise ValueError(f"codes must end with the token count {self.num_tokens}, got shape {tuple(codes.shape)}")
        return self.decode_latents(self.quantizer.lookup(codes))

    def forward(self, vertices: torch.Tensor) -> MeshVQVAEOutput:
        """Encode, quantize, decode and score: (..., v, 3) -> MeshVQVAEOutput (losses averaged over all meshes)."""
        q = self.quantizer(self.encode_latents(vertices))
        recon = self.decode_latents(q.quantized)
        vertex_error = (recon - vertices).norm(dim=-1).mean()
        loss = self.config.vertex_weight * vertex_error + q.commit_loss
        return MeshVQVAEOutput(recon, q.codes, loss, vertex_error, q.commit_loss, q.perplexity)

    @staticmethod
    def _to_vertex_major(x: torch.Tensor, rows: int, cols: int, what: str) -> tuple[torch.Tensor, tuple[int, ...]]:
        """(..., rows, cols) -> (rows, b, cols) with b = prod(...), and the leading shape."""
        if x.dim() < 2 or tuple(x.shape[-2:]) != (rows, cols):
            raise ValueError(f"{what} must have shape (..., {rows}, {cols}), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"{what} must be floating point (float32), got {x.dtype}")
        lead = tuple(x.shape[:-2])
        return x.reshape(-1, rows, cols).transpose(0, 1).contiguous(), lead
