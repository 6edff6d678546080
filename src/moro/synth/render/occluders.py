"""Occluders between the camera and the person, sampled to reach a target occlusion level.

Kinds (local frame: base on ``y = 0``, wide side facing local +z):

* ``box`` (crates, 0.4-1.3 m tall), ``pillar`` (cylinders 2.5-4 m), ``table`` (0.7-0.8 m, hides
  legs), ``wall`` (low fences to full-height panels, 1-3.5 m wide), ``person`` (a second human:
  a posed Anny mesh when a body model is given, else a box mannequin).
* Static props stand still; with probability ``moving_prob`` a ``person`` or ``box`` instead
  crosses the line of sight at 0.5-1.5 m/s (a passer-by, a pushed cart).

Placement: a frame ``k`` is drawn, the prop goes on the ground segment from the camera to the
person at frame ``k`` (25-85 % of the way, jittered sideways) and is turned to face the camera.
Props never touch the person's path (``clearance`` metres around every frame's position) nor
the camera.

Target level: the fraction of (frame, point) pairs of ``person_points`` hidden by occluders.
It is *estimated* without rendering, by testing the segment camera -> point against the props'
covering boxes (:func:`estimate_occlusion`); candidates are added greedily while the
estimate stays within ``tolerance`` of the target (best of ``candidates_per_step`` per added prop).
Only points inside the image can be hidden, so a target above the in-image fraction is out of
reach (the closest set is returned). The rendered labels
(:mod:`~moro.synth.render.visibility`) are the ground truth; the estimate only steers sampling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from moro.body.anny_model import sample_adult_phenotypes
from moro.geometry import rotvec_to_rotmat
from moro.synth.render.camera import Camera
from moro.synth.render.meshes import Mesh, box_mesh, cylinder_mesh, mannequin_mesh, table_mesh
from moro.synth.render.scene import Occluder, sample_material

__all__ = ["OCCLUDER_KINDS", "OccluderConfig", "sample_occluders", "estimate_occlusion", "human_mesh"]

OCCLUDER_KINDS = ("box", "pillar", "table", "wall", "person")


@dataclass(frozen=True)
class OccluderConfig:
    """Options of :func:`sample_occluders`."""

    kinds: tuple[str, ...] = OCCLUDER_KINDS  # prop types to draw from
    moving_prob: float = 0.35  # chance that a person / box prop moves across the view
    max_occluders: int = 4  # at most this many props per sequence
    tolerance: float = 0.05  # accept the estimated level within +-tolerance of the target
    attempts: int = 60  # candidate props tried in all before giving up (keeps the closest set)
    candidates_per_step: int = 6  # candidates compared before each prop is added
    clearance: float = 0.35  # m kept free around the person's position in every frame
    fps: float = 30.0  # frame rate, for the speed of moving props

    def __post_init__(self) -> None:
        bad = [k for k in self.kinds if k not in OCCLUDER_KINDS]
        if bad or not self.kinds:
            raise ValueError(f"unknown occluder kinds {bad}; choose from {OCCLUDER_KINDS}")
        if not (0 <= self.moving_prob <= 1 and self.max_occluders >= 0 and self.tolerance > 0 and self.fps > 0
                and self.candidates_per_step >= 1 and self.attempts >= 0):
            raise ValueError("need 0 <= moving_prob <= 1, max_occluders >= 0, tolerance > 0, fps > 0, "
                             "candidates_per_step >= 1, attempts >= 0")


def _points(person_points) -> np.ndarray:
    if isinstance(person_points, torch.Tensor):
        person_points = person_points.detach().cpu().numpy()
    p = np.asarray(person_points, np.float64)
    if p.ndim == 2:
        p = p[:, None]
    if p.ndim != 3 or p.shape[-1] != 3 or p.shape[0] == 0 or not np.isfinite(p).all():
        raise ValueError(f"person points must be finite (t, 3) or (t, n, 3) world metres, got {p.shape}")
    return p


def _yaw_pose(yaw: np.ndarray, xz: np.ndarray) -> np.ndarray:
    """(t, 4, 4) poses: rotation ``yaw`` (t,) about +y (local +z -> (sin, 0, cos)), then the
    ground translation ``xz`` (t, 2)."""
    c, s = np.cos(yaw), np.sin(yaw)
    m = np.zeros((len(yaw), 4, 4))
    m[:, 0, 0], m[:, 0, 2], m[:, 2, 0], m[:, 2, 2] = c, s, -s, c
    m[:, 1, 1] = m[:, 3, 3] = 1
    m[:, 0, 3], m[:, 2, 3] = xz[:, 0], xz[:, 1]
    return m


def estimate_occlusion(camera: Camera, occluders, person_points, margin: float = 0.05) -> np.ndarray:
    """Which points are hidden by the occluders' covering boxes (ray test, no rendering).

    Args:
        camera: the :class:`Camera` (only its centre is used).
        occluders: sequence of :class:`Occluder`.
        person_points: (t, n, 3) or (t, 3) world points, metres.
        margin: a box must be crossed at least ``margin`` metres before the point.
    Returns:
        (t, n) bool, True where the point projects into the image and the segment
        camera -> point crosses a box (points outside the image count as truncated, not hidden).
    """
    pts = _points(person_points)  # (t, n, 3)
    hidden = np.zeros(pts.shape[:2], bool)
    in_image = camera.in_image(*camera.project(pts))
    eye = camera.position
    for occ in occluders:
        poses = occ.poses if not occ.is_static else np.broadcast_to(occ.poses, (len(pts), 4, 4))
        if len(poses) != len(pts):
            raise ValueError(f"occluder has {len(poses)} poses, person points {len(pts)} frames")
        rot, trans = poses[:, :3, :3].astype(np.float64), poses[:, :3, 3].astype(np.float64)
        # Into the prop's local frame: x_local = R^T (x - t).
        o = np.einsum("tji,tj->ti", rot, eye - trans)[:, None, :]  # (t, 1, 3)
        d = np.einsum("tji,tnj->tni", rot, pts - trans[:, None]) - o  # (t, n, 3) segment o -> o + d
        length = np.linalg.norm(d, axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / d
            for lo, hi in occ.mesh.boxes.astype(np.float64):  # slab test per box
                t0, t1 = (lo - o) * inv, (hi - o) * inv  # (t, n, 3) slab entry/exit
                t_in = np.nanmax(np.minimum(t0, t1), axis=-1)
                t_out = np.nanmin(np.maximum(t0, t1), axis=-1)
                hidden |= (t_in <= t_out) & (t_out > 0) & (t_in < 1 - margin / np.maximum(length, 1e-9))
    return hidden & in_image


def human_mesh(body, rng: np.random.Generator) -> Mesh:
    """A second person as a rigid prop: ``body`` (a :class:`moro.body.BodyModel`) in a random
    relaxed pose and shape, feet on ``y = 0``, facing +z, covered by one box per skinning bone."""
    pose = body.identity_pose(1)
    rot = torch.as_tensor(rng.normal(0, 0.12, (pose.shape[1], 3)), dtype=pose.dtype)
    pose = pose @ rotvec_to_rotmat(rot)[None]
    betas = body.zero_betas(1)
    if hasattr(body, "phenotype_to_betas"):  # Anny: a random adult shape
        g = torch.Generator().manual_seed(int(rng.integers(2**31)))
        betas = body.phenotype_to_betas(sample_adult_phenotypes(1, g).double()).to(pose.dtype)
    with torch.no_grad():
        v = body(pose, betas).vertices[0].numpy().astype(np.float32)
    v[:, 1] -= v[:, 1].min()
    part = body.weights.argmax(1).numpy()
    boxes = np.stack([[v[part == j].min(0), v[part == j].max(0)] for j in np.unique(part)])
    return Mesh(v, body.faces.numpy().astype(np.int32), boxes.astype(np.float32))


def _prop(kind: str, rng: np.random.Generator, body) -> Mesh:
    u = rng.uniform
    if kind == "box":
        return box_mesh((u(0.4, 1.2), u(0.4, 1.3), u(0.4, 1.0)))
    if kind == "pillar":
        return cylinder_mesh(u(0.15, 0.4), u(2.5, 4.0)) if u() < 0.5 else box_mesh((u(0.3, 0.7), u(2.5, 4.0), u(0.3, 0.7)))
    if kind == "table":
        return table_mesh(u(0.8, 1.8), u(0.6, 1.0), u(0.7, 0.8))
    if kind == "wall":
        return box_mesh((u(1.0, 3.5), u(0.8, 2.2), u(0.1, 0.25)))
    return human_mesh(body, rng) if body is not None else mannequin_mesh(u(1.5, 1.95), u(0.85, 1.25))


def _footprint_distance(poses: np.ndarray, boxes: np.ndarray, xz: np.ndarray) -> np.ndarray:
    """(t,) horizontal distance from points xz (t, 2) to the props' posed boxes (poses (t, 4, 4))."""
    c, s = poses[:, 0, 0], poses[:, 0, 2]
    dx, dz = xz[:, 0] - poses[:, 0, 3], xz[:, 1] - poses[:, 2, 3]
    lx, lz = c * dx - s * dz, s * dx + c * dz  # into the prop frame (inverse yaw)
    gap_x = np.maximum(np.maximum(boxes[None, :, 0, 0] - lx[:, None], lx[:, None] - boxes[None, :, 1, 0]), 0)
    gap_z = np.maximum(np.maximum(boxes[None, :, 0, 2] - lz[:, None], lz[:, None] - boxes[None, :, 1, 2]), 0)
    return np.hypot(gap_x, gap_z).min(1)


def _candidate(camera: Camera, pts: np.ndarray, rng: np.random.Generator, cfg: OccluderConfig, body) -> Occluder | None:
    t = len(pts)
    kind = str(rng.choice(cfg.kinds))
    mesh = _prop(kind, rng, body)
    centre = pts.mean(1)[:, [0, 2]]  # (t, 2) person position per frame
    cam = camera.position[[0, 2]]
    k = int(rng.integers(t))
    to_person = centre[k] - cam
    dist = np.linalg.norm(to_person)
    if dist < 1e-3:
        return None
    fwd = to_person / dist
    side = np.array([-fwd[1], fwd[0]])
    anchor = cam + fwd * dist * rng.uniform(0.25, 0.85) + side * rng.normal(0, 0.25)
    yaw0 = math.atan2(-fwd[0], -fwd[1]) + rng.normal(0, 0.25)  # local +z faces the camera
    moving = kind in ("person", "box") and rng.uniform() < cfg.moving_prob
    if moving:
        speed = rng.uniform(0.5, 1.5) * rng.choice([-1.0, 1.0])
        xz = anchor + side * speed * ((np.arange(t) - k) / cfg.fps)[:, None]
        yaw = np.full(t, math.atan2(side[0], side[1]) if speed > 0 else math.atan2(-side[0], -side[1]))
        poses = _yaw_pose(yaw, xz)
    else:
        poses = _yaw_pose(np.array([yaw0]), anchor[None])
    full = poses if moving else np.broadcast_to(poses, (t, 4, 4))
    if _footprint_distance(full, mesh.boxes, centre).min() < cfg.clearance:
        return None
    if _footprint_distance(full, mesh.boxes, np.broadcast_to(cam, (t, 2))).min() < 0.3:
        return None
    return Occluder(kind, mesh, poses.astype(np.float32), sample_material(rng))


def sample_occluders(
    camera: Camera,
    person_trajectory,
    rng: np.random.Generator,
    level: float,
    config: OccluderConfig = OccluderConfig(),
    body=None,
) -> list[Occluder]:
    """Sample props between the camera and the person to hide about ``level`` of the points.

    Args:
        camera: the sequence's :class:`Camera`.
        person_trajectory: (t, n, 3) world points of the person per frame (joints work best;
            (t, 3) root positions are accepted), metres. Their per-frame mean is the person's
            position for placement; the occlusion level is measured over them.
        rng: numpy generator (the only source of randomness).
        level: target fraction in [0, 1] of (frame, point) pairs hidden by props (0 = no props).
        config: :class:`OccluderConfig`.
        body: optional :class:`moro.body.BodyModel` for ``person`` props (else box mannequins).
    Returns:
        list of :class:`Occluder` (possibly empty). The estimated level is within
        ``config.tolerance`` of ``level`` when reachable with ``config.max_occluders`` props;
        otherwise the closest set found is returned.
    """
    if not (isinstance(level, (int, float)) and 0.0 <= level <= 1.0):
        raise ValueError(f"occlusion level must be a fraction in [0, 1], got {level!r}")
    pts = _points(person_trajectory)
    chosen: list[Occluder] = []
    hidden = np.zeros(pts.shape[:2], bool)
    if level <= 0:
        return chosen
    tries = 0
    while tries < config.attempts and len(chosen) < config.max_occluders:
        current = hidden.mean()
        if current >= level - config.tolerance:
            break
        # Best of a few candidates: the one that brings the estimate closest to the target
        # without overshooting it (big props first, small ones to finish).
        best, best_err, best_hidden = None, np.inf, hidden
        for _ in range(config.candidates_per_step):
            tries += 1
            cand = _candidate(camera, pts, rng, config, body)
            if cand is None:
                continue
            new = hidden | estimate_occlusion(camera, [cand], pts)
            if new.mean() > level + config.tolerance or new.mean() < current + 0.01:
                continue  # overshoots the target or hides nothing new
            if abs(new.mean() - level) < best_err:
                best, best_err, best_hidden = cand, abs(new.mean() - level), new
        if best is not None:
            chosen.append(best)
            hidden = best_hidden
    return chosen
