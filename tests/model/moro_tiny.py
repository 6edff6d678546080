"""Tiny MoRo builders for the model tests: a grid-mesh tokenizer, stand-in image features, a synthetic clip."""

from __future__ import annotations

import numpy as np
import torch

from moro.model import ImageFeatures, MoRo, MoRoConfig
from moro.tokenizer import HierarchySpec, MeshVQVAE, MeshVQVAEConfig, build_hierarchy

NUM_CODES = 32  # small codebook: fast heads, and the overfit test sees every class often


def grid_faces(nx: int, ny: int) -> np.ndarray:
    """Faces (f, 3) of a flat nx x ny vertex grid (a connected triangle mesh)."""
    x, y = np.meshgrid(np.arange(nx), np.arange(ny))
    idx = (y * nx + x)[:-1, :-1].ravel()
    return np.concatenate([np.stack([idx, idx + 1, idx + nx + 1], 1), np.stack([idx, idx + nx + 1, idx + nx], 1)])


def tiny_tokenizer(nx: int = 10, ny: int = 12, seed: int = 0) -> MeshVQVAE:
    """Small tokenizer on a 120-vertex grid (120 -> 48 -> 18 -> 7 tokens), random codebook.

    Pinned here rather than taken from ``MeshVQVAEConfig.tiny()`` (now 2 levels + template offset),
    so these model tests do not move when the tokenizer preset is retuned.
    """
    cfg = MeshVQVAEConfig(channels=(16, 32, 32), restart_after=20, hierarchy=HierarchySpec(levels=(0.4, 0.375, 0.4)))
    cfg.codebook_size = NUM_CODES
    torch.manual_seed(seed)  # module init only (tests), not inside any forward
    tok = MeshVQVAE(cfg, build_hierarchy(grid_faces(nx, ny), nx * ny, cfg.hierarchy, cache=False))
    g = torch.Generator().manual_seed(seed)
    tok.quantizer.codebook.copy_(torch.randn(NUM_CODES, cfg.latent_dim, generator=g))
    return tok


def joint_regressor(num_vertices: int, num_joints: int = 22, seed: int = 0) -> torch.Tensor:
    """(j, v) random convex combinations of vertices (rows sum to 1)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(num_joints, num_vertices, generator=g) ** 4
    return w / w.sum(1, keepdim=True)


def tiny_model(seed: int = 0, **overrides) -> MoRo:
    tok = tiny_tokenizer(seed=seed)
    cfg = MoRoConfig.tiny(tok.config, tok.num_vertices)
    for k, v in overrides.items():
        setattr(cfg.transformer, k, v)
    torch.manual_seed(seed)
    return MoRo(cfg, tok, joint_regressor=joint_regressor(tok.num_vertices))


def image_features(b: int, t: int, width: int, p: int = 6, seed: int = 0, requires_grad: bool = False) -> ImageFeatures:
    """Stand-in image encoder output: patches (b, t, p, d), 6D rotation near identity, translation ~3 m ahead."""
    g = torch.Generator().manual_seed(seed)
    rot6d = torch.tensor([1.0, 0, 0, 0, 1, 0]) + 0.05 * torch.randn(b, t, 6, generator=g)
    transl = torch.tensor([0.0, 0.0, 3.0]) + 0.1 * torch.randn(b, t, 3, generator=g)
    patches = torch.randn(b, t, p, width, generator=g)
    if requires_grad:
        patches.requires_grad_(True)
        rot6d.requires_grad_(True)
        transl.requires_grad_(True)
    return ImageFeatures(patch_features=patches, coarse_rot6d=rot6d, coarse_transl=transl)
