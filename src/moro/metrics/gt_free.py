"""Ground-truth-free realism metrics (PROX protocol of RoHM): skating ratio, ground penetration,
acceleration norm. (Jitter, also ground-truth free, lives in :mod:`moro.metrics.world`.)

One predicted sequence per call, world joints (F, J, 3) in metres (torch or numpy). The floor is
an explicit argument: the plane ``x[up_axis] = floor_height`` with ``+up_axis`` pointing up
(moro's world: Y up, ground y = 0, i.e. ``up_axis=1, floor_height=0``). Feet of the 22-joint set:
left ankle / toe 7 / 10, right ankle / toe 8 / 11. Definitions: ``shared/metrics.md``; the
details metrics.md leaves open follow RoHM's evaluation code and are stated per function.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from . import _inputs
from ._differences import second_difference
from .units import M_TO_MM, TO_PERCENT

__all__ = ["FEET", "TOE_JOINTS", "skating_ratio", "ground_penetration", "GroundPenetration", "accel_norm"]

FEET: tuple[tuple[int, int], tuple[int, int]] = ((7, 10), (8, 11))
"""(ankle, toe) joint indices of the left and right leg in the 22-joint set."""

TOE_JOINTS: tuple[int, int] = (10, 11)
"""Left and right toe joints in the 22-joint set."""


def _up_axis(up_axis: int) -> int:
    if up_axis not in (0, 1, 2):
        raise ValueError(f"up_axis must be 0, 1 or 2 (moro's world is Y up: 1), got {up_axis!r}")
    return int(up_axis)


def _float(name: str, v: float) -> float:
    f = float(v)
    if f != f or f in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, got {v!r}")
    return f


def skating_ratio(
    joints: object,
    fps: float = 30.0,
    *,
    floor_height: float = 0.0,
    up_axis: int = 1,
    feet: Sequence[Sequence[int]] = FEET,
    speed_thresh: float = 0.10,
    ankle_height: float = 0.15,
    toe_height: float = 0.10,
) -> torch.Tensor:
    """Skating ratio per frame step, in % (100 where the frame skates, else 0).

    A leg skates between frames t and t+1 when its ankle and its toe both move horizontally
    faster than ``speed_thresh`` (``fps ||x_{t+1} - x_t||`` over the two horizontal axes) while,
    at frame t, the ankle is lower than ``ankle_height`` and the toe lower than ``toe_height``
    above the floor. A frame step counts when both legs skate. Its mean over frames is the
    skating ratio.

    Args:
        joints: (F, J, 3) predicted world joints, metres; F >= 2.
        fps: frames per second.
        floor_height: floor position along ``up_axis``, metres.
        up_axis: index of the up axis (1 = Y).
        feet: ((ankle, toe) left, (ankle, toe) right) joint indices.
        speed_thresh: horizontal speed threshold, m/s.
        ankle_height: ankle height threshold above the floor, metres.
        toe_height: toe height threshold above the floor, metres.
    Returns:
        (F-1,) 100 where both legs skate between t and t+1, else 0; %.
    """
    fps = _inputs.positive("fps", fps)
    j = _inputs.points("joints", joints)
    _inputs.min_frames("joints", j, 2, "skating_ratio")
    up = _up_axis(up_axis)
    floor = _float("floor_height", floor_height)
    horizontal = [a for a in range(3) if a != up]
    legs = [list(leg) for leg in feet]
    if len(legs) != 2 or any(len(leg) != 2 for leg in legs):
        raise ValueError(f"feet must be ((ankle, toe), (ankle, toe)) for the left and right leg, got {feet!r}")
    skate = torch.ones(j.shape[0] - 1, dtype=torch.bool, device=j.device)
    for leg in legs:
        idx = _inputs.joint_indices("feet", leg, j.shape[1])
        x = j[:, idx]  # (F, 2, 3): ankle, toe
        speed = torch.linalg.vector_norm((x[1:] - x[:-1])[..., horizontal], dim=-1) * fps  # (F-1, 2)
        height = x[:-1, :, up] - floor  # (F-1, 2), at frame t
        leg_skates = (speed > speed_thresh).all(dim=-1) & (height[:, 0] < ankle_height) & (height[:, 1] < toe_height)
        skate &= leg_skates
    return skate.to(j.dtype) * TO_PERCENT


class GroundPenetration(NamedTuple):
    """Ground penetration per frame (toe joints)."""

    frequency: torch.Tensor  # (F,) % of toes deeper than the threshold below the floor
    depth: torch.Tensor  # (F,) mean depth below the floor over toes (0 above it), mm


def ground_penetration(
    joints: object,
    *,
    floor_height: float = 0.0,
    up_axis: int = 1,
    toe_joints: Sequence[int] = TOE_JOINTS,
    depth_thresh_m: float = 0.05,
) -> GroundPenetration:
    """Ground penetration of the toe joints: frequency (%) and mean depth (mm), per frame.

    With ``h_tk`` the height of toe k above the floor at frame t:
    ``frequency_t = 100 mean_k [h_tk < -depth_thresh_m]`` and
    ``depth_t = 1000 mean_k max(0, -h_tk)``. As in RoHM, the depth is averaged over all frames
    and toes (0 where the toe is above the floor) and is not thresholded.

    Args:
        joints: (F, J, 3) predicted world joints, metres.
        floor_height: floor position along ``up_axis``, metres.
        up_axis: index of the up axis (1 = Y).
        toe_joints: toe joint indices (left, right).
        depth_thresh_m: depth below the floor that counts as penetration, metres (5 cm).
    Returns:
        :class:`GroundPenetration` with ``frequency`` (F,) in % and ``depth`` (F,) in mm.
    """
    j = _inputs.points("joints", joints)
    up = _up_axis(up_axis)
    floor = _float("floor_height", floor_height)
    idx = _inputs.joint_indices("toe_joints", toe_joints, j.shape[1])
    thresh = _inputs.positive("depth_thresh_m", depth_thresh_m)
    h = j[:, idx, up] - floor  # (F, K)
    frequency = (h < -thresh).to(j.dtype).mean(dim=-1) * TO_PERCENT
    depth = (-h).clamp_min(0.0).mean(dim=-1) * M_TO_MM
    return GroundPenetration(frequency, depth)


def accel_norm(joints: object, fps: float = 30.0) -> torch.Tensor:
    """Acceleration magnitude of a prediction, in m/s^2.

    ``fps^2 mean_j ||P_{t-1} - 2 P_t + P_{t+1}||`` for t = 1..F-2, on world joints.

    Args:
        joints: (F, J, 3) predicted world joints, metres; F >= 3.
        fps: frames per second.
    Returns:
        (F-2,) mean joint acceleration norm per frame, m/s^2.
    """
    fps = _inputs.positive("fps", fps)
    j = _inputs.points("joints", joints)
    _inputs.min_frames("joints", j, 3, "accel_norm")
    return torch.linalg.vector_norm(second_difference(j, fps), dim=-1).mean(dim=-1)
