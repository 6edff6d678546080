"""What a rendered sequence contains: materials, background, light, occluders and the scene record.

A :class:`Scene` is everything the renderer needs besides the camera and the per-frame body
vertices: the body's faces and texture coordinates, its material, the ground, the background
(sky gradient or a far wall), the light and the occluders with their per-frame poses. It is
plain data (numpy), shared by both render backends.

**Instance ids** written into the renderer's ``instance`` map: 0 = background (sky, ground,
wall), 1 = the body, ``2 + k`` = occluder ``k`` of ``Scene.occluders``.

**Materials** are procedural (no image textures): a base colour and a second colour combined by
a pattern evaluated on *pattern coordinates* (metres): the rest-pose vertex positions for the
body (so the texture sticks to the skin while it moves), local mesh coordinates for occluders
and world coordinates for the ground and the wall. ``split_y`` gives the body clothes: below it
(rest-pose y, metres) ``lower_colour`` replaces the base colour (trousers vs shirt). The
software backend draws the base colours only (flat shading, no patterns).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from moro.synth.render.meshes import Mesh

__all__ = [
    "PATTERNS", "INSTANCE_BACKGROUND", "INSTANCE_BODY", "INSTANCE_FIRST_OCCLUDER", "MAX_OCCLUDERS",
    "Material", "Background", "Occluder", "Scene", "sample_material", "sample_scene",
]

PATTERNS = ("solid", "stripes", "checker", "noise")
INSTANCE_BACKGROUND, INSTANCE_BODY, INSTANCE_FIRST_OCCLUDER = 0, 1, 2
MAX_OCCLUDERS = 253  # instance ids are stored as uint8


def _colour(name: str, c) -> np.ndarray:
    c = np.asarray(c, dtype=np.float32)
    if c.shape != (3,) or not (np.isfinite(c).all() and (c >= 0).all() and (c <= 1).all()):
        raise ValueError(f"{name} must be an RGB triple in [0, 1], got {c.tolist()}")
    return c


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class Material:
    """Procedural surface appearance.

    Attributes:
        colour: (3,) RGB in [0, 1], the base albedo.
        colour2: (3,) RGB in [0, 1], the pattern's second albedo.
        pattern: one of ``PATTERNS``.
        scale: pattern period in metres (> 0).
        lower_colour: (3,) RGB used instead of ``colour`` below ``split_y``, or None.
        split_y: pattern-coordinate height (metres) of the colour split (ignored without lower_colour).
    """

    colour: np.ndarray
    colour2: np.ndarray | None = None
    pattern: str = "solid"
    scale: float = 0.2
    lower_colour: np.ndarray | None = None
    split_y: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "colour", _colour("colour", self.colour))
        object.__setattr__(self, "colour2", self.colour if self.colour2 is None else _colour("colour2", self.colour2))
        if self.lower_colour is not None:
            object.__setattr__(self, "lower_colour", _colour("lower_colour", self.lower_colour))
        if self.pattern not in PATTERNS:
            raise ValueError(f"unknown pattern {self.pattern!r}; choose one of {PATTERNS}")
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"pattern scale must be > 0 metres, got {self.scale}")


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class Background:
    """Sky gradient (by view-ray elevation) and an optional far wall.

    Attributes:
        horizon: (3,) RGB at the horizon; zenith: (3,) RGB straight up.
        wall: optional material of a vertical wall; None shows only the sky behind the ground.
        wall_point: (3,) a point of the wall plane (world, metres), used when ``wall`` is set.
        wall_normal: (3,) horizontal unit normal of the wall, pointing towards the camera.
    """

    horizon: np.ndarray
    zenith: np.ndarray
    wall: Material | None = None
    wall_point: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    wall_normal: np.ndarray = field(default_factory=lambda: np.array([0, 0, 1], np.float32))

    def __post_init__(self) -> None:
        object.__setattr__(self, "horizon", _colour("horizon", self.horizon))
        object.__setattr__(self, "zenith", _colour("zenith", self.zenith))


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class Occluder:
    """A rigid occluding prop and its pose in every frame.

    Attributes:
        kind: label (``box``, ``pillar``, ``table``, ``wall``, ``person``, ...).
        mesh: the prop's :class:`Mesh` in its local frame.
        poses: (t, 4, 4) float32 local -> world transforms per frame, or (1, 4, 4) for a static prop.
        material: its :class:`Material`.
    """

    kind: str
    mesh: Mesh
    poses: np.ndarray
    material: Material

    def __post_init__(self) -> None:
        p = np.asarray(self.poses, dtype=np.float32)
        if p.ndim == 2:
            p = p[None]
        if p.ndim != 3 or p.shape[1:] != (4, 4) or len(p) == 0 or not np.isfinite(p).all():
            raise ValueError(f"occluder poses must be finite (t, 4, 4) or (4, 4), got {np.shape(self.poses)}")
        object.__setattr__(self, "poses", p)

    @property
    def is_static(self) -> bool:
        return len(self.poses) == 1

    def pose(self, frame: int) -> np.ndarray:
        """(4, 4) local -> world transform at ``frame`` (static props: the same every frame)."""
        if self.is_static:
            return self.poses[0]
        if not 0 <= frame < len(self.poses):
            raise ValueError(f"frame {frame} outside the occluder's {len(self.poses)} poses")
        return self.poses[frame]

    def world_vertices(self, frame: int) -> np.ndarray:
        """(v, 3) float32 mesh vertices in the world at ``frame``."""
        m = self.pose(frame)
        return (self.mesh.vertices @ m[:3, :3].T + m[:3, 3]).astype(np.float32)


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class Scene:
    """Everything rendered besides the camera and the body's per-frame vertices.

    Attributes:
        body_faces: (f, 3) int32 triangle indices of the body mesh.
        body_pattern_coords: (v, 3) float32 texture coordinates of the body (its rest-pose
            vertices, metres), so patterns follow the skin.
        body_material, ground_material: :class:`Material`.
        background: :class:`Background`.
        light_dir: (3,) unit vector *towards* the light (world frame).
        ambient: ambient light fraction in [0, 1].
        occluders: list of :class:`Occluder` (instance id ``2 + index``).
    """

    body_faces: np.ndarray
    body_pattern_coords: np.ndarray
    body_material: Material
    ground_material: Material
    background: Background
    light_dir: np.ndarray = field(default_factory=lambda: np.array([0.3, 0.9, 0.3], np.float32))
    ambient: float = 0.35
    occluders: tuple[Occluder, ...] = ()

    def __post_init__(self) -> None:
        faces = np.asarray(self.body_faces, dtype=np.int32)
        coords = np.asarray(self.body_pattern_coords, dtype=np.float32)
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(f"body_faces must be (f, 3), got {faces.shape}")
        if coords.ndim != 2 or coords.shape[1] != 3 or faces.max() >= len(coords):
            raise ValueError(f"body_pattern_coords must be (v, 3) covering the faces' indices, got {coords.shape}")
        light = np.asarray(self.light_dir, dtype=np.float32)
        if light.shape != (3,) or not np.linalg.norm(light) > 0:
            raise ValueError(f"light_dir must be a non-zero (3,) vector, got {light.tolist()}")
        if not 0 <= self.ambient <= 1:
            raise ValueError(f"ambient must be in [0, 1], got {self.ambient}")
        if len(self.occluders) > MAX_OCCLUDERS:
            raise ValueError(f"at most {MAX_OCCLUDERS} occluders fit the uint8 instance map, got {len(self.occluders)}")
        object.__setattr__(self, "body_faces", faces)
        object.__setattr__(self, "body_pattern_coords", coords)
        object.__setattr__(self, "light_dir", light / np.linalg.norm(light))
        object.__setattr__(self, "occluders", tuple(self.occluders))

    @property
    def num_vertices(self) -> int:
        return len(self.body_pattern_coords)


def _random_colour(rng: np.random.Generator, sat=(0.1, 0.8), val=(0.15, 0.95)) -> np.ndarray:
    """A random RGB from hue/saturation/value ranges."""
    h, s, v = rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*val)
    k = (np.array([5.0, 3.0, 1.0]) + h * 6) % 6
    return (v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)).astype(np.float32)


def sample_material(rng: np.random.Generator, scale=(0.05, 0.5), patterns=PATTERNS) -> Material:
    """A random :class:`Material`: two colours, one of ``patterns``, period in ``scale`` (metres)."""
    c = _random_colour(rng)
    c2 = np.clip(c * rng.uniform(0.4, 1.6) + rng.normal(0, 0.1, 3), 0, 1).astype(np.float32)
    return Material(c, c2, str(rng.choice(patterns)), float(rng.uniform(*scale)))


def sample_scene(
    rng: np.random.Generator,
    body_faces: np.ndarray,
    body_rest_vertices: np.ndarray,
    occluders=(),
    camera_position=None,
    person_points=None,
) -> Scene:
    """A :class:`Scene` with a random per-sequence look: body clothes, ground texture, sky or far wall, sun.

    Args:
        rng: numpy generator (the only source of randomness).
        body_faces: (f, 3) body triangles.
        body_rest_vertices: (v, 3) rest-pose body vertices (metres, Y up): the pattern
            coordinates; the clothes split sits at 45-60 % of their height.
        occluders: the scene's :class:`Occluder` list (see :func:`~moro.synth.render.occluders.sample_occluders`).
        camera_position: optional (3,) camera centre (world); with ``person_points`` it enables a
            far wall (half of the scenes) placed 1.5-6 m behind the farthest point of the person.
        person_points: optional (..., 3) world points of the person over the sequence.
    """
    rest = np.asarray(body_rest_vertices, dtype=np.float32)
    lo, hi = float(rest[:, 1].min()), float(rest[:, 1].max())
    top = _random_colour(rng)
    body = Material(
        top, np.clip(top * rng.uniform(0.3, 0.8), 0, 1), str(rng.choice(PATTERNS)), float(rng.uniform(0.03, 0.15)),
        lower_colour=_random_colour(rng, val=(0.1, 0.7)), split_y=lo + rng.uniform(0.45, 0.6) * (hi - lo),
    )
    ground = sample_material(rng, scale=(0.3, 2.0), patterns=("checker", "noise", "stripes"))
    horizon = _random_colour(rng, sat=(0.0, 0.3), val=(0.6, 1.0))
    zenith = _random_colour(rng, sat=(0.2, 0.7), val=(0.4, 0.9))
    bg = Background(horizon, zenith)
    if camera_position is not None and person_points is not None and rng.uniform() < 0.5:
        cam = np.asarray(camera_position, dtype=np.float64)[[0, 2]]
        pts = np.asarray(person_points, dtype=np.float64).reshape(-1, 3)[:, [0, 2]]
        d = pts.mean(0) - cam
        d = d / max(np.linalg.norm(d), 1e-6)  # horizontal viewing direction towards the person
        reach = float(((pts - cam) @ d).max()) + rng.uniform(1.5, 6.0)
        point = np.array([cam[0] + d[0] * reach, 0.0, cam[1] + d[1] * reach], np.float32)
        bg = Background(horizon, zenith, sample_material(rng, scale=(0.2, 1.5)), point,
                        np.array([-d[0], 0.0, -d[1]], np.float32))
    elev, azim = rng.uniform(0.5, 1.3), rng.uniform(0, 2 * np.pi)
    light = np.array([np.cos(elev) * np.cos(azim), np.sin(elev), np.cos(elev) * np.sin(azim)], np.float32)
    return Scene(body_faces, rest, body, ground, bg, light, float(rng.uniform(0.25, 0.5)), tuple(occluders))
