"""What the motion generator takes (:class:`MotionSpec`) and gives (:class:`Motion`).

Shapes use t = frames. Units: metres, radians, seconds; ``fps`` frames per second. Rotations
follow :mod:`moro.body.model` (parent-relative, canonical rest axes; ``root_trans`` is the root
joint's world position). World frame: gravity-aligned, Y up, ground plane y = 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from .schedule import DEFAULT_WEIGHTS, MOTION_TYPES

CONTACT_SPEED = 0.3  # m/s: a contact joint slower than this is in contact (design.md, MoRo's GT rule)


@dataclass
class MotionSpec:
    """Configuration of one generated sequence."""

    num_frames: int  # t >= 1: length of the sequence
    seed: int = 0  # everything random (schedule, parameters, body shape) derives from it
    fps: float = 30.0  # MoRo's clips are 30 fps; other rates scale every timing
    types: Mapping[str, float] | Sequence[str] | None = None  # allowed motion types (weights); None = all
    preroll_s: float = 1.5  # simulated before frame 0 and dropped, so a clip may start mid-stride
    max_penetration: float = 0.005  # m: frames whose lowest vertex is deeper are lifted to this depth

    def weights(self) -> dict[str, float]:
        """Validated sampling weights {type: weight > 0}."""
        return resolve_types(self.types)

    def validate(self) -> None:
        """Raise ValueError naming the fix for impossible settings."""
        if isinstance(self.num_frames, bool) or not isinstance(self.num_frames, int) or self.num_frames <= 0:
            raise ValueError(f"num_frames must be a positive integer, got {self.num_frames!r}")
        if isinstance(self.fps, bool) or not isinstance(self.fps, (int, float)) or not self.fps > 0 or self.fps == float("inf"):
            raise ValueError(f"fps must be a positive finite number of frames per second, got {self.fps!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not self.preroll_s >= 0:
            raise ValueError(f"preroll_s must be >= 0 seconds, got {self.preroll_s!r}")
        self.weights()


def resolve_types(types: Mapping[str, float] | Sequence[str] | str | None) -> dict[str, float]:
    """Sampling weights for ``types``: None (all, default weights), names, or {name: weight}."""
    if types is None:
        return dict(DEFAULT_WEIGHTS)
    if isinstance(types, str):
        types = [types]
    if isinstance(types, Mapping):
        weights = {str(k): float(v) for k, v in types.items()}
    else:
        weights = {str(k): DEFAULT_WEIGHTS.get(str(k), 1.0) for k in types}
    unknown = [k for k in weights if k not in MOTION_TYPES]
    if unknown:
        raise ValueError(f"unknown motion type(s) {unknown}; valid types: {', '.join(MOTION_TYPES)}")
    if any(not w >= 0 or w == float("inf") for w in weights.values()):
        raise ValueError(f"motion type weights must be finite and >= 0, got {weights}")
    if not weights or sum(weights.values()) <= 0:
        raise ValueError(f"give at least one motion type with a positive weight; valid types: {', '.join(MOTION_TYPES)}")
    return {k: w for k, w in weights.items() if w > 0}


@dataclass
class Motion:
    """One generated sequence on the Anny body (tensors on CPU).

    The global mesh is ``body(body_pose, betas, root_rot, root_trans)``; its lowest vertex is
    >= -0.01 m in every frame and planted feet do not slide.
    """

    body_pose: torch.Tensor  # (t, 35, 3, 3) float32 parent-relative joint rotations
    betas: torch.Tensor  # (136,) float32 Anny shape coefficients
    phenotypes: torch.Tensor  # (6,) float32 Anny phenotype sliders in [0, 1] (gender, age, muscle, weight, height, proportions)
    root_rot: torch.Tensor  # (t, 3, 3) float32 root (pelvis) orientation, world
    root_trans: torch.Tensor  # (t, 3) float32 root joint position, world, metres
    fps: float
    labels: list[str]  # (t,) motion type of each frame (the segment it belongs to)
    contacts: torch.Tensor  # (t, 4) bool: L ankle, L foot, R ankle, R foot joint speed < 0.3 m/s
    segments: list[tuple[str, int, int]] = field(default_factory=list)  # (type, first frame, end frame), clipped to [0, t)
    seed: int = 0

    @property
    def num_frames(self) -> int:
        return self.body_pose.shape[0]

    def pose(self, body) -> "object":
        """The posed body (:class:`moro.body.BodyOutput`): vertices (t, v, 3), joints (t, 36, 3)."""
        with torch.no_grad():
            return body(self.body_pose, self.betas, self.root_rot, self.root_trans)


def contact_labels(joints: torch.Tensor, fps: float, speed_thresh: float = CONTACT_SPEED) -> torch.Tensor:
    """Ground-truth contact (t, 4) bool from contact-joint trajectories (t, 4, 3), metres.

    Speed at frame t is ``||x_{t+1} - x_t|| * fps`` (the last frame repeats the previous one;
    a single frame counts as at rest). Contact when the speed is below ``speed_thresh`` m/s.
    """
    if joints.shape[0] < 2:
        return torch.ones(joints.shape[:2], dtype=torch.bool)
    speed = torch.linalg.vector_norm(joints[1:] - joints[:-1], dim=-1) * fps  # (t-1, 4)
    speed = torch.cat([speed, speed[-1:]], 0)
    return speed < speed_thresh
