"""A cheap stand-in mesh source for trainer tests: deformed icospheres, a pure function of (seed, step)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tokenizer"))
from tok_meshes import icosphere  # noqa: E402

from moro.training.mesh_source import MeshBatch  # noqa: E402


class SphereSource:
    """Icospheres (162 v) scaled, stretched and sheared at random; ``batch(step, b)`` like LocalMeshSource."""

    def __init__(self, seed: int = 0, subdivisions: int = 2):
        v, self.faces = icosphere(subdivisions)
        self.template = torch.from_numpy(v)
        self.seed = seed

    @property
    def num_vertices(self) -> int:
        return self.template.shape[0]

    def batch(self, step: int, b: int) -> MeshBatch:
        g = torch.Generator().manual_seed(self.seed * 100_003 + step)
        a = torch.rand(b, 5, generator=g) - 0.5
        x, y, z = self.template.unbind(-1)
        verts = torch.stack([x * (1 + 0.6 * a[:, :1]), y * (1 + 0.6 * a[:, 1:2]),
                             z * (1 + 0.6 * a[:, 2:3]) + 0.6 * a[:, 3:4] * x * y], -1)
        verts = 0.5 * (1 + 0.8 * a[:, 4:5, None]) * verts
        return MeshBatch(verts, torch.zeros(b, 0, 3, 3), a)
