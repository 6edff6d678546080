"""Local body meshes for tokenizer training and evaluation, a pure function of (seed, step).

A local mesh is the body posed with its body pose only (no global rotation, no translation),
root joint at the origin (design.md, "Representation"): ``body(body_pose, betas).vertices``.

Poses come from the procedural motion generator (:func:`moro.synth.motion.generate_motion`) on
Anny bodies: motion ``j`` of a source is generated with seed ``motion_seed(seed, j)`` at
``fps`` frames per second (10 by default: consecutive frames of a 30 fps clip are nearly equal,
so a coarser clock gives more distinct poses per generated second). Step ``s`` draws its poses
uniformly from the ``window`` motions ending at ``j = window - 1 + s // refresh``, so the pool
slides over ever new motions while each motion is generated once (kept in a small cache).
Body shapes are drawn per mesh, independently of the pose: adult Anny phenotypes, or N(0, 1)
betas for SMPL-family models. Bodies without a motion generator (SMPL-X, the ``paper`` preset,
until the AMASS / BEDLAM readers exist) get random parent-relative rotations
(:func:`moro.body.check.random_pose`, ``random_pose_std`` rad per axis) as a stand-in.

Everything is drawn from generators seeded by (seed, step): batch ``s`` is the same whatever
happened before, which is what makes a resumed training run repeat an uninterrupted one.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import torch

from moro.body.model import BodyModel

__all__ = ["MeshBatch", "LocalMeshSource", "motion_seed", "TRAIN_SEED", "HELD_OUT_SEED"]

TRAIN_SEED, HELD_OUT_SEED = 0, 1000  # default seeds of the training and held-out sources: disjoint motions
FRAMES_PER_MOTION = 300  # default frames per generated motion (30 s at 10 fps)


def motion_seed(seed: int, j: int) -> int:
    """Seed of motion ``j`` of the source with ``seed``: disjoint ranges for seeds < 2000 (2**20 motions each)."""
    return (int(seed) * (1 << 20) + int(j)) % (1 << 31)


class MeshBatch(NamedTuple):
    vertices: torch.Tensor  # (b, v, 3) float32 local meshes, metres, root joint at the origin
    body_pose: torch.Tensor  # (b, j-1, 3, 3) parent-relative rotations
    betas: torch.Tensor  # (b, s) shape coefficients


class LocalMeshSource:
    """Batches of local meshes of ``body`` (module docstring).

    Args:
        body: the body model; Anny bodies use the motion generator, others random poses.
        seed: source seed; training and held-out sources use different seeds (``TRAIN_SEED``, ``HELD_OUT_SEED``).
        frames_per_motion: frames of each generated motion (default ``FRAMES_PER_MOTION``).
        fps: clock of the generated motions.
        window: motions in the pool at any step.
        refresh: steps between two new motions entering the pool.
        random_pose_std: std (rad per axis) of the stand-in random poses for bodies without a motion generator.
    """

    def __init__(
        self,
        body: BodyModel,
        seed: int = TRAIN_SEED,
        *,
        frames_per_motion: int | None = None,
        fps: float = 10.0,
        window: int = 16,
        refresh: int = 25,
        random_pose_std: float = 0.3,
    ) -> None:
        frames_per_motion = FRAMES_PER_MOTION if frames_per_motion is None else frames_per_motion
        if frames_per_motion < 1 or window < 1 or refresh < 1 or fps <= 0:
            raise ValueError("frames_per_motion, window and refresh must be >= 1 and fps > 0")
        self.body, self.seed = body, int(seed)
        self.frames_per_motion, self.fps = int(frames_per_motion), float(fps)
        self.window, self.refresh, self.random_pose_std = int(window), int(refresh), float(random_pose_std)
        self.uses_motion_generator = hasattr(body, "phenotype_to_betas")
        self._cache: OrderedDict[int, torch.Tensor] = OrderedDict()

    @property
    def num_vertices(self) -> int:
        return self.body.num_vertices

    def _generator(self, step: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + int(step) * 7919 + 17)

    def motion(self, j: int) -> torch.Tensor:
        """(frames_per_motion, j-1, 3, 3) body poses of motion ``j`` (cached)."""
        if j not in self._cache:
            from moro.synth.motion import generate_motion

            m = generate_motion(self.body, self.frames_per_motion, seed=motion_seed(self.seed, j), fps=self.fps)
            self._cache[j] = m.body_pose.float()
            while len(self._cache) > self.window + 1:
                self._cache.popitem(last=False)
        self._cache.move_to_end(j)
        return self._cache[j]

    def poses(self, step: int, batch: int, generator: torch.Generator) -> torch.Tensor:
        """(batch, j-1, 3, 3) body poses of ``step``."""
        if not self.uses_motion_generator:
            from moro.body.check import random_pose

            return random_pose(self.body, batch, generator, self.random_pose_std)
        last = self.window - 1 + int(step) // self.refresh
        which = last - torch.randint(self.window, (batch,), generator=generator)
        frame = torch.randint(self.frames_per_motion, (batch,), generator=generator)
        return torch.stack([self.motion(int(j))[int(f)] for j, f in zip(which, frame)])

    def betas(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        """(batch, s) shape coefficients of ``step``: adult Anny phenotypes, else N(0, 1)."""
        if self.uses_motion_generator:
            from moro.body.anny_model import sample_adult_phenotypes

            return self.body.phenotype_to_betas(sample_adult_phenotypes(batch, generator)).float()
        return torch.randn(batch, self.body.num_betas, generator=generator)

    @torch.no_grad()
    def batch(self, step: int, batch: int) -> MeshBatch:
        """Batch ``step`` of ``batch`` local meshes; the same (seed, step, batch) always gives the same meshes."""
        if batch < 1 or step < 0:
            raise ValueError(f"need batch >= 1 and step >= 0, got batch={batch}, step={step}")
        gen = self._generator(step)
        pose = self.poses(step, batch, gen)
        betas = self.betas(batch, gen)
        dtype = self.body.v_template.dtype
        verts = self.body(pose.to(dtype), betas.to(dtype)).vertices.float()
        return MeshBatch(verts, pose, betas)
