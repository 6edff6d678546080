"""Static pinhole cameras of the synthetic world: the :class:`Camera` record and its sampler.

Frames (``docs/conventions.md``): world Y up with the ground at ``y = 0``; camera = OpenCV
(x right, y down, z forward), ``x_cam = R x_world + t``; pixels follow OpenCV's pixel-centre
convention (pixel (i, j) is centred on (u, v) = (i, j), the image spans
``[-0.5, W - 0.5] x [-0.5, H - 0.5]``). Tensors are projected with
:func:`moro.geometry.project_points`, numpy arrays with the same formula in numpy.

:func:`sample_camera` draws a realistic handheld/tripod-like view of a person's trajectory:
focal 600-1600 px at the default 960 x 540 (16:9; other sizes scale the focal range with the
width, keeping the fields of view), 2-8 m from the trajectory centre, 0.5-2.5 m above the ground,
aimed at the trajectory centre with a small jitter, small pitch and roll. Focal length and
distance are drawn jointly so that the person fills a plausible fraction of the frame height.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from moro.geometry import intrinsics, project_points

__all__ = ["Camera", "CameraSamplingConfig", "sample_camera", "trajectory_centre"]


def _size(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive int number of pixels, got {value!r}")
    return int(value)


@dataclass(frozen=True, eq=False)
class Camera:
    """A static pinhole camera.

    Attributes:
        K: (3, 3) float64 intrinsics in pixels (fx, fy > 0; last row 0 0 1).
        R: (3, 3) float64 world -> camera rotation (rows = camera x, y, z axes in world coordinates).
        t: (3,) float64 translation in metres, ``x_cam = R @ x_world + t``.
        width, height: image size in pixels.
    """

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    width: int
    height: int

    def __post_init__(self) -> None:
        K, R, t = (np.array(x, dtype=np.float64) for x in (self.K, self.R, self.t))
        object.__setattr__(self, "width", _size("width", self.width))
        object.__setattr__(self, "height", _size("height", self.height))
        if K.shape != (3, 3) or R.shape != (3, 3) or t.shape != (3,):
            raise ValueError(f"camera needs K (3, 3), R (3, 3), t (3,); got {K.shape}, {R.shape}, {t.shape}")
        if not (np.isfinite(K).all() and np.isfinite(R).all() and np.isfinite(t).all()):
            raise ValueError("camera K, R, t must be finite")
        if not (K[0, 0] > 0 and K[1, 1] > 0):
            raise ValueError(f"focal lengths must be > 0 pixels, got fx={K[0, 0]}, fy={K[1, 1]}")
        if not np.allclose(K[2], [0, 0, 1]) or K[1, 0] != 0:
            raise ValueError(f"K must be upper triangular with last row (0, 0, 1), got {K.tolist()}")
        if not (np.allclose(R @ R.T, np.eye(3), atol=1e-5) and np.linalg.det(R) > 0):
            raise ValueError("R must be a rotation matrix (orthonormal, det +1)")
        for name, x in (("K", K), ("R", R), ("t", t)):
            x.setflags(write=False)
            object.__setattr__(self, name, x)

    def __eq__(self, other) -> bool:
        """Exact equality of size, K, R and t."""
        if not isinstance(other, Camera):
            return NotImplemented
        return (self.width, self.height) == (other.width, other.height) and all(
            np.array_equal(getattr(self, k), getattr(other, k)) for k in ("K", "R", "t"))

    __hash__ = None  # mutable-looking arrays inside: not hashable

    # ----------------------------------------------------------------- construction
    @classmethod
    def look_at(cls, eye, target, focal: float, width: int, height: int, roll: float = 0.0) -> "Camera":
        """Camera at ``eye`` (3,) looking at ``target`` (3,) (world metres), principal point at the
        image centre, square pixels of focal ``focal`` px; ``roll`` (radians) turns the image
        clockwise about the optical axis. World up is +Y; the view must not be vertical."""
        if not (np.isfinite(focal) and focal > 0):
            raise ValueError(f"focal must be > 0 pixels, got {focal}")
        width, height = _size("width", width), _size("height", height)
        eye, target = np.asarray(eye, np.float64), np.asarray(target, np.float64)
        z = target - eye
        if not np.linalg.norm(z) > 1e-9:
            raise ValueError("look_at needs target != eye")
        z = z / np.linalg.norm(z)
        x = np.cross(z, [0.0, 1.0, 0.0])  # right = forward x up (world Y up)
        if np.linalg.norm(x) < 1e-6:
            raise ValueError("look_at cannot look straight up or down (world up is +Y)")
        x = x / np.linalg.norm(x)
        y = np.cross(z, x)  # down
        c, s = math.cos(roll), math.sin(roll)
        x, y = c * x + s * y, -s * x + c * y
        R = np.stack([x, y, z])
        K = np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]], np.float64)
        return cls(K, R, -R @ eye, width, height)

    def to_dict(self) -> dict:
        """JSON-friendly record (lists of floats); inverse of :meth:`from_dict`."""
        return {"K": self.K.tolist(), "R": self.R.tolist(), "t": self.t.tolist(), "width": self.width, "height": self.height}

    @classmethod
    def from_dict(cls, d: dict) -> "Camera":
        return cls(d["K"], d["R"], d["t"], d["width"], d["height"])

    # ----------------------------------------------------------------- properties
    @property
    def focal(self) -> float:
        """fx in pixels."""
        return float(self.K[0, 0])

    @property
    def position(self) -> np.ndarray:
        """(3,) camera centre in the world, metres (``-R^T t``)."""
        return -self.R.T @ self.t

    @property
    def world_to_camera_matrix(self) -> np.ndarray:
        """(4, 4) float64 homogeneous world -> camera transform."""
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = self.R, self.t
        return m

    # ----------------------------------------------------------------- maps
    def world_to_camera(self, x_world):
        """World points (..., n, 3) -> OpenCV camera frame (..., n, 3), metres.

        Accepts a numpy array (returns numpy) or a float tensor (returns a tensor of its dtype/device).
        """
        if isinstance(x_world, torch.Tensor):
            R = torch.tensor(self.R, dtype=x_world.dtype, device=x_world.device)  # copies: R is read-only
            t = torch.tensor(self.t, dtype=x_world.dtype, device=x_world.device)
            return x_world @ R.T + t
        x = np.asarray(x_world)
        return (x @ self.R.T + self.t).astype(np.result_type(x.dtype, np.float32))

    def project(self, x_world):
        """Project world points.

        Args:
            x_world: (..., n, 3) world points, metres; numpy array or float tensor.
        Returns:
            ``(uv, depth)``: uv (..., n, 2) pixels (OpenCV pixel centres; meaningless where
            ``depth <= 1e-6``, as in :func:`moro.geometry.project_points`), depth (..., n) camera
            z in metres. Same array type and dtype as the input (numpy integers give float64);
            tensors go through :func:`moro.geometry.project_points`, numpy arrays through the
            same formula in numpy.
        """
        if x_world.ndim < 2 or x_world.shape[-1] != 3:
            raise ValueError(f"x_world must have shape (..., n, 3), got {tuple(x_world.shape)}")
        if isinstance(x_world, torch.Tensor):
            x_cam = self.world_to_camera(x_world)
            K = torch.tensor(self.K, dtype=x_world.dtype, device=x_world.device).expand(*x_world.shape[:-2], 3, 3)
            uv, _ = project_points(x_cam, K)
            return uv, x_cam[..., 2]
        # numpy: the same pinhole map as project_points, element-wise (tiny torch matmuls are
        # pathologically slow on a loaded machine; labels and samplers call this a lot).
        x = np.asarray(x_world)
        dtype = np.result_type(x.dtype, np.float32)
        x_cam = x.astype(np.float64) @ self.R.T + self.t
        z = x_cam[..., 2]
        z_safe = np.where(z > 1e-6, z, 1.0)
        xn, yn = x_cam[..., 0] / z_safe, x_cam[..., 1] / z_safe
        K = self.K
        uv = np.stack([K[0, 0] * xn + K[0, 1] * yn + K[0, 2], K[1, 1] * yn + K[1, 2]], -1)
        return uv.astype(dtype), z.astype(dtype)

    def in_image(self, uv, depth):
        """(..., n) bool: in front of the camera and inside ``[-0.5, W - 0.5) x [-0.5, H - 0.5)``.

        Args:
            uv: (..., n, 2) pixels, depth: (..., n) metres (numpy or tensors, as from :meth:`project`).
        """
        u, v = uv[..., 0], uv[..., 1]
        return (depth > 0) & (u >= -0.5) & (u < self.width - 0.5) & (v >= -0.5) & (v < self.height - 0.5)

    def intrinsics_tensor(self, dtype=torch.float32) -> torch.Tensor:
        """K as a (3, 3) tensor (built with :func:`moro.geometry.intrinsics`)."""
        K = self.K
        return intrinsics(K[0, 0], K[1, 1], K[0, 2], K[1, 2], dtype=dtype)


@dataclass(frozen=True)
class CameraSamplingConfig:
    """Ranges of :func:`sample_camera` (metres, pixels, degrees)."""

    width: int = 960  # 16:9 by default; writers may ask for any size
    height: int = 540
    focal_range: tuple[float, float] = (600.0, 1600.0)  # px at reference_width: phone to short-tele lenses
    # focal_range scales by width / reference_width (same fields of view at any size); None: absolute px
    reference_width: int | None = 960
    distance_range: tuple[float, float] = (2.0, 8.0)  # m, camera centre to the trajectory centre (3D)
    height_range: tuple[float, float] = (0.5, 2.5)  # m, camera centre above the ground
    person_fraction: tuple[float, float] = (0.3, 0.9)  # person height / image height, couples focal and distance
    person_height: float = 1.7  # m, stature assumed by person_fraction
    max_pitch_deg: float = 25.0  # keep views near-horizontal ("small pitch")
    max_roll_deg: float = 3.0  # a slightly tilted tripod
    aim_jitter: float = 0.3  # m, the camera looks *roughly* at the person
    min_clearance: float = 1.0  # m, horizontal distance from the camera to every trajectory point

    def __post_init__(self) -> None:
        _size("width", self.width)
        _size("height", self.height)
        for name in ("focal_range", "distance_range", "height_range", "person_fraction"):
            lo, hi = getattr(self, name)
            if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo <= hi):
                raise ValueError(f"{name} must be (low, high) with 0 < low <= high, got {(lo, hi)}")
        if not (0 < self.max_pitch_deg < 80 and 0 <= self.max_roll_deg < 45):
            raise ValueError("max_pitch_deg must be in (0, 80) and max_roll_deg in [0, 45)")
        if self.reference_width is not None:
            _size("reference_width", self.reference_width)
        if self.person_height <= 0 or self.aim_jitter < 0 or self.min_clearance < 0:
            raise ValueError("person_height must be > 0, aim_jitter and min_clearance >= 0 (metres)")


def trajectory_centre(person_trajectory) -> np.ndarray:
    """(3,) centre of a root trajectory (t, 3) or point track (t, n, 3): the middle of its
    horizontal bounding box, at the mean height."""
    p = np.asarray(person_trajectory, dtype=np.float64)
    if p.ndim not in (2, 3) or p.shape[-1] != 3 or p.shape[0] == 0 or not np.isfinite(p).all():
        raise ValueError(f"person_trajectory must be finite (t, 3) or (t, n, 3), got {p.shape}")
    p = p.reshape(-1, 3)
    c = 0.5 * (p.min(0) + p.max(0))
    c[1] = p[:, 1].mean()
    return c


def sample_camera(
    person_trajectory, rng: np.random.Generator, config: CameraSamplingConfig = CameraSamplingConfig()
) -> Camera:
    """Sample a static camera that films a person's trajectory.

    Args:
        person_trajectory: (t, 3) root (pelvis) positions or (t, n, 3) points, world metres.
        rng: numpy generator (the only source of randomness).
        config: ranges, see :class:`CameraSamplingConfig`.
    Returns:
        :class:`Camera` of size ``config.width x config.height`` whose centre is
        ``distance_range`` from :func:`trajectory_centre`, ``height_range`` above the ground,
        with ``fx = fy`` in ``focal_range`` (scaled by ``width / reference_width``) and the
        principal point at the image centre.
    """
    c = config
    centre = trajectory_centre(person_trajectory)
    pts = np.asarray(person_trajectory, dtype=np.float64).reshape(-1, 3)
    f = rng.uniform(*c.focal_range) * (1.0 if c.reference_width is None else c.width / c.reference_width)
    # Distance that makes the person person_fraction of the image height, within distance_range.
    d_lo = max(c.distance_range[0], f * c.person_height / (c.person_fraction[1] * c.height))
    d_hi = min(c.distance_range[1], f * c.person_height / (c.person_fraction[0] * c.height))
    if d_lo > d_hi:  # the focal cannot frame the person as asked: stay inside distance_range
        d_lo = d_hi = float(np.clip(d_lo if d_lo > c.distance_range[1] else d_hi, *c.distance_range))
    target = centre + [rng.normal(0, c.aim_jitter / 2), rng.uniform(-0.2, 0.2), rng.normal(0, c.aim_jitter / 2)]
    tan_p = math.tan(math.radians(c.max_pitch_deg))
    eye = None
    for _ in range(64):  # rejection: keep the camera off the person's path
        d = rng.uniform(d_lo, d_hi)
        h_lo = max(c.height_range[0], centre[1] - d * math.sin(math.atan(tan_p)))
        h_hi = min(c.height_range[1], centre[1] + d * math.sin(math.atan(tan_p)))
        h = rng.uniform(h_lo, h_hi) if h_lo <= h_hi else float(np.clip(centre[1], *c.height_range))
        horiz = math.sqrt(max(d * d - (h - centre[1]) ** 2, 1e-6))
        az = rng.uniform(0, 2 * math.pi)
        cand = np.array([centre[0] + horiz * math.cos(az), h, centre[2] + horiz * math.sin(az)])
        if np.linalg.norm(pts[:, [0, 2]] - cand[[0, 2]], axis=1).min() >= c.min_clearance:
            eye = cand
            break
    if eye is None:
        raise ValueError(
            f"no camera position {c.distance_range} m from the trajectory centre keeps {c.min_clearance} m "
            "from every trajectory point; the trajectory is too spread out: raise distance_range or lower min_clearance"
        )
    roll = math.radians(rng.uniform(-c.max_roll_deg, c.max_roll_deg))
    return Camera.look_at(eye, target, f, c.width, c.height, roll)
