"""``moro body check``: build/load a body model, time the cached load, run the fit round trip."""

from __future__ import annotations

import time

import torch

from moro.body.fitting import fit_sequence
from moro.body.model import BodyModel
from moro.body.registry import load_body_model


def random_shape(body: BodyModel, generator: torch.Generator) -> torch.Tensor:
    """A plausible random shape (s,): adult Anny phenotypes, or N(0, 1) SMPL-family betas."""
    if hasattr(body, "phenotype_to_betas"):
        from moro.body.anny_model import sample_adult_phenotypes

        return body.phenotype_to_betas(sample_adult_phenotypes(1, generator))[0]
    return torch.randn(body.num_betas, generator=generator)


def random_pose(body: BodyModel, frames: int, generator: torch.Generator, std_rad: float = 0.25) -> torch.Tensor:
    """(frames, j-1, 3, 3) random parent-relative rotations, axis-angle ~ N(0, std_rad^2) per axis."""
    from moro.geometry.rotations import rotvec_to_rotmat

    return rotvec_to_rotmat(std_rad * torch.randn(frames, body.num_joints - 1, 3, generator=generator))


def check_body(model: str = "anny", topology: str | None = None, path=None, frames: int = 16, seed: int = 0) -> dict:
    """Load (building on first use), time a cached load, and measure the fit round trip.

    Returns a dict with: name, vertices, joints, betas, load_s (seconds of a load from the
    cache), fit_pve_mm (mean vertex error of random pose+shape -> mesh -> fit -> mesh, mm),
    fit_s (seconds for fitting ``frames`` frames).
    """
    load_body_model(model, topology, path)  # builds and caches on first use
    t0 = time.perf_counter()
    body = load_body_model(model, topology, path)
    load_s = time.perf_counter() - t0
    g = torch.Generator().manual_seed(seed)
    from moro.geometry.rotations import random_rotmat

    betas = random_shape(body, g)
    target = body(random_pose(body, frames, g), betas, random_rotmat((frames,), generator=g),
                  torch.randn(frames, 3, generator=g))
    t0 = time.perf_counter()
    fit = fit_sequence(body, target.vertices)
    fit_s = time.perf_counter() - t0
    pve_mm = (fit.vertices - target.vertices).norm(dim=-1).mean().item() * 1000.0
    return dict(name=body.name, vertices=body.num_vertices, joints=body.num_joints, betas=body.num_betas,
                load_s=load_s, fit_pve_mm=pve_mm, fit_s=fit_s)
