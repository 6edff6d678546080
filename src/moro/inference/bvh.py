"""BVH export of the skeleton animation (and a small reader, used to check round trips).

The file (Biovision Hierarchy, as read by Blender, MotionBuilder, Unity importers):

* HIERARCHY: the body model's rig (Anny: 36 joints, their names), nested depth-first; each
  joint's OFFSET is its rest bone ``J_rest[i] - J_rest[parent]`` of the fitted shape, in
  **metres** (Blender's importer: scale 1; tools expecting centimetres: scale 100); the root's
  OFFSET is 0 and its position channels carry the root joint's world position. Leaf joints end
  in an ``End Site`` half a parent bone further along the bone.
* Channels: root ``Xposition Yposition Zposition Zrotation Xrotation Yrotation``, every other
  joint ``Zrotation Xrotation Yrotation``, degrees. The three angles (z, x, y) of a joint give
  its parent-relative rotation ``R = Rz(z) Rx(x) Ry(y)`` (rest axes = world axes at rest, the
  body model's convention); the root's rotation is its world orientation.
* MOTION: one line per frame, ``Frame Time`` = 1 / fps; world frame Y up, ground y = 0.

Forward kinematics of the file (:func:`bvh_positions`) reproduces the body model's skeleton
joints: positions are written with 6 decimals (1 micrometre) and angles with 6 decimals.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["euler_zxy_from_rotmat", "rotmat_from_euler_zxy", "write_bvh", "BVH", "read_bvh", "bvh_positions"]


def euler_zxy_from_rotmat(R: np.ndarray) -> np.ndarray:
    """Rotations (..., 3, 3) -> angles (..., 3) = (z, x, y) radians with ``R = Rz(z) Rx(x) Ry(y)``."""
    R = np.asarray(R, np.float64)
    x = np.arcsin(np.clip(R[..., 2, 1], -1.0, 1.0))
    gimbal = np.abs(R[..., 2, 1]) > 1 - 1e-9
    z = np.where(gimbal, np.arctan2(R[..., 1, 0], R[..., 0, 0]), np.arctan2(-R[..., 0, 1], R[..., 1, 1]))
    y = np.where(gimbal, 0.0, np.arctan2(-R[..., 2, 0], R[..., 2, 2]))
    return np.stack([z, x, y], -1)


def _axis(angle: np.ndarray, axis: int) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    R = np.zeros(np.shape(angle) + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    R[..., axis, axis] = 1
    R[..., i, i], R[..., j, j], R[..., i, j], R[..., j, i] = c, c, -s, s
    return R


def rotmat_from_euler_zxy(angles: np.ndarray) -> np.ndarray:
    """Angles (..., 3) = (z, x, y) radians -> ``Rz(z) Rx(x) Ry(y)`` (..., 3, 3)."""
    a = np.asarray(angles, np.float64)
    return _axis(a[..., 0], 2) @ _axis(a[..., 1], 0) @ _axis(a[..., 2], 1)


def _dfs(parents: list[int]) -> list[int]:
    order, stack = [], [0]
    while stack:
        i = stack.pop()
        order.append(i)
        stack.extend(reversed([c for c in range(len(parents)) if parents[c] == i]))
    return order


def write_bvh(
    path: str | os.PathLike,
    names: list[str],
    parents: list[int],
    rest_joints: np.ndarray,
    num_frames: int,
    fps: float,
    frames: Iterable[tuple[np.ndarray, np.ndarray]],
) -> None:
    """Write the BVH of the module docstring.

    Args:
        names, parents: the rig (j joints, ``parents[0] == -1``).
        rest_joints: (j, 3) rest joint positions of the fitted shape, metres.
        num_frames, fps: motion length and rate.
        frames: chunks ``(root_position (c, 3) metres, rotations (c, j, 3, 3))`` in frame order;
            ``rotations[:, 0]`` is the root's world orientation, the others parent-relative.
    """
    rest = np.asarray(rest_joints, np.float64)
    order = _dfs(parents)
    lines = ["HIERARCHY"]

    def emit(i: int, depth: int) -> None:
        pad = "  " * depth
        off = np.zeros(3) if parents[i] < 0 else rest[i] - rest[parents[i]]
        lines.append(f"{pad}{'ROOT' if parents[i] < 0 else 'JOINT'} {names[i].replace(' ', '_')}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {off[0]:.6f} {off[1]:.6f} {off[2]:.6f}")
        chans = "6 Xposition Yposition Zposition" if parents[i] < 0 else "3"
        lines.append(f"{pad}  CHANNELS {chans} Zrotation Xrotation Yrotation")
        kids = [c for c in range(len(parents)) if parents[c] == i]
        for c in kids:
            emit(c, depth + 1)
        if not kids:
            end = 0.5 * (rest[i] - rest[parents[i]]) if parents[i] >= 0 else np.array([0.0, 0.1, 0.0])
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {end[0]:.6f} {end[1]:.6f} {end[2]:.6f}",
                          f"{pad}  }}"])
        lines.append(f"{pad}}}")

    emit(0, 0)
    lines += ["MOTION", f"Frames: {num_frames}", f"Frame Time: {1.0 / fps:.8f}"]
    written = 0
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
        for root, rots in frames:
            deg = np.degrees(euler_zxy_from_rotmat(np.asarray(rots)[:, order]))  # (c, j, 3)
            rows = np.concatenate([np.asarray(root, np.float64), deg.reshape(len(deg), -1)], 1)
            f.write("\n".join(" ".join(f"{v:.6f}" for v in row) for row in rows) + "\n")
            written += len(rows)
    if written != num_frames:
        raise ValueError(f"BVH: {written} frames written but num_frames={num_frames}")


@dataclass
class BVH:
    """A parsed BVH file (joints in file order)."""

    names: list[str]
    parents: list[int]
    offsets: np.ndarray  # (j, 3)
    channels: list[list[str]]  # per joint
    motion: np.ndarray  # (t, total channels)
    frame_time: float


def read_bvh(path: str | os.PathLike) -> BVH:
    """Parse a BVH file (any channel order per joint); ValueError on a malformed file."""
    tokens = Path(path).read_text().split()
    names, parents, offsets, channels, stack = [], [], [], [], []
    i = 0
    try:
        if tokens[i] != "HIERARCHY":
            raise ValueError("missing HIERARCHY")
        i += 1
        pending = None
        while tokens[i] != "MOTION":
            tok = tokens[i]
            if tok in ("ROOT", "JOINT"):
                names.append(tokens[i + 1])
                parents.append(stack[-1] if stack else -1)
                pending = len(names) - 1
                i += 2
            elif tok == "End":
                pending = "end"
                i += 2
            elif tok == "{":
                stack.append(pending)
                i += 1
            elif tok == "}":
                stack.pop()
                i += 1
            elif tok == "OFFSET":
                if stack[-1] != "end":
                    offsets.append([float(v) for v in tokens[i + 1 : i + 4]])
                i += 4
            elif tok == "CHANNELS":
                n = int(tokens[i + 1])
                channels.append(tokens[i + 2 : i + 2 + n])
                i += 2 + n
            else:
                raise ValueError(f"unexpected token {tok!r}")
        frames = int(tokens[i + 2])
        frame_time = float(tokens[i + 5])
        values = np.array(tokens[i + 6 :], np.float64)
    except (IndexError, ValueError) as e:
        raise ValueError(f"{path}: malformed BVH ({e})") from e
    parents = [-1 if p is None or p == -1 else p for p in parents]
    width = sum(len(c) for c in channels)
    if values.size != frames * width:
        raise ValueError(f"{path}: {values.size} motion values, expected {frames} x {width}")
    return BVH(names, parents, np.array(offsets), channels, values.reshape(frames, width), frame_time)


def bvh_positions(bvh: BVH) -> np.ndarray:
    """Forward kinematics: joint world positions (t, j, 3) in file order."""
    t, j = len(bvh.motion), len(bvh.names)
    pos, glob = np.zeros((t, j, 3)), np.zeros((t, j, 3, 3))
    col = 0
    for k in range(j):
        local, trans = np.tile(np.eye(3), (t, 1, 1)), np.zeros((t, 3))
        for name in bvh.channels[k]:
            v = bvh.motion[:, col]
            col += 1
            axis = "XYZ".index(name[0])
            if name.endswith("position"):
                trans[:, axis] = v
            else:
                local = local @ _axis(np.radians(v), axis)
        p = bvh.parents[k]
        if p < 0:
            glob[:, k], pos[:, k] = local, bvh.offsets[k] + trans
        else:
            glob[:, k] = glob[:, p] @ local
            pos[:, k] = pos[:, p] + np.einsum("tij,tj->ti", glob[:, p], bvh.offsets[k] + trans)
    return pos
