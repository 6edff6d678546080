"""The one ground-truth record every protocol reader returns: :class:`GroundTruthSequence`.

A reader (EgoBody-Occ, RICH, the synthetic benchmark, ...) turns its dataset's layout into these;
:mod:`.protocol` scores predictions against an iterable of them, whatever the dataset. Only the
scored frames are present (F = number of scored frames).

Frames: ``*_cam`` arrays are in the OpenCV camera frame of the sequence's camera; ``*_world``
arrays in the dataset's world frame (gravity-aligned, Y up, where the dataset provides it);
``T_w2c[t]`` maps world to camera at frame t (static cameras repeat one matrix). All positions
in metres, float64 (vertices float32 to bound memory).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["GroundTruthSequence", "GroundTruthError", "MaskLengthError", "camera_to_world", "rigid_inverse"]


from moro.data.formats import DatasetFormatError, MaskLengthError, rigid_inverse  # noqa: E402,F401 - shared with the readers

GroundTruthError = DatasetFormatError
"""Ground truth is missing or inconsistent (message: the file or sequence, and the fix); the
dataset readers of ``moro.data`` raise the same type."""


def camera_to_world(x_cam: np.ndarray, T_w2c: np.ndarray) -> np.ndarray:
    """Points (F, N, 3) in each frame's camera -> world, with per-frame ``T_w2c`` (F, 4, 4).

    ``x_world = R^T (x_cam - t)`` for ``T_w2c = [R | t]``.
    """
    R, t = T_w2c[:, :3, :3], T_w2c[:, :3, 3]
    return np.einsum("fji,fnj->fni", R, np.asarray(x_cam, dtype=np.float64) - t[:, None, :])


@dataclass
class GroundTruthSequence:
    """Ground truth of one scored sequence.

    Shapes use F = scored frames, V = vertices of ``topology``.
    """

    name: str  # protocol sequence name, e.g. "recording_20210907_S02_S01_01/master"; "/" = folders
    frame_ids: np.ndarray  # (F,) int64 dataset frame numbers of the scored frames
    fps: float  # frames per second
    joints_cam: np.ndarray  # (F, 22, 3) SMPL-order scoring joints, camera frame, metres
    joints_world: np.ndarray  # (F, 22, 3) the same joints in the world frame, metres
    T_w2c: np.ndarray  # (F, 4, 4) world -> camera rigid transforms (metres)
    K: np.ndarray | None = None  # (F, 3, 3) pixel intrinsics, or None when unknown
    image_size: tuple[int, int] | None = None  # (width, height) pixels
    visibility: np.ndarray | None = None  # (F, 22) bool, True = visible; None: no vis/occ split
    vertices_cam: np.ndarray | None = None  # (F, V, 3) scored mesh in the camera frame (PVE)
    topology: str | None = None  # "<kind>:<V>" of vertices_cam, e.g. "smpl:6890"
    feet_world: np.ndarray | None = None  # (F, 4, 3) foot-sliding vertex trajectories, world frame
    foot_vertex_ids: np.ndarray | None = None  # (4,) ids of those vertices in ``topology``
    boxes: np.ndarray | None = None  # (F, 3) input boxes (cx, cy, s) px, side 200 s, for image methods
    joint_source: str = ""  # how the joints were obtained (e.g. "smplx->smpl (vertex transfer)")
    deviation: str | None = None  # set when the joints deviate from metrics.md (reported)
    meta: dict = field(default_factory=dict)  # reader-specific extras (gender, files, notes)

    @property
    def num_frames(self) -> int:
        return int(self.frame_ids.shape[0])

    def camera_to_world(self, x_cam: np.ndarray) -> np.ndarray:
        """(F, N, 3) camera-frame points of this sequence -> world frame (metres)."""
        return camera_to_world(x_cam, self.T_w2c)

    def validate(self) -> "GroundTruthSequence":
        """Check every shape against F; raise :class:`GroundTruthError` naming the field."""
        at = f"ground truth {self.name!r}"
        self.frame_ids = np.asarray(self.frame_ids, dtype=np.int64)
        f = self.frame_ids.shape[0]
        if self.frame_ids.ndim != 1 or f < 1 or np.any(np.diff(self.frame_ids) <= 0):
            raise GroundTruthError(f"{at}: frame_ids must be a non-empty strictly increasing (F,) array")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise GroundTruthError(f"{at}: fps must be positive, got {self.fps}")
        want = {
            "joints_cam": (f, 22, 3), "joints_world": (f, 22, 3), "T_w2c": (f, 4, 4), "K": (f, 3, 3),
            "visibility": (f, 22), "feet_world": (f, 4, 3), "boxes": (f, 3), "foot_vertex_ids": (4,),
        }
        for name, shape in want.items():
            a = getattr(self, name)
            if a is None:
                continue
            a = np.asarray(a)
            if a.shape != shape:
                hint = " (it must cover exactly the scored frames)" if a.ndim and a.shape[0] != f and name != "foot_vertex_ids" else ""
                err = MaskLengthError if name == "visibility" else GroundTruthError
                raise err(f"{at}: {name} must have shape {shape}, got {a.shape}{hint}")
            if name == "visibility":
                a = a.astype(bool)
            elif name == "foot_vertex_ids":
                a = a.astype(np.int64)
            else:
                a = a.astype(np.float64)
                if not np.isfinite(a).all():
                    raise GroundTruthError(f"{at}: {name} contains NaN or inf; the reader must drop or fix those frames")
            setattr(self, name, a)
        if self.vertices_cam is not None:
            v = np.asarray(self.vertices_cam)
            if v.ndim != 3 or v.shape[0] != f or v.shape[2] != 3:
                raise GroundTruthError(f"{at}: vertices_cam must have shape ({f}, V, 3), got {v.shape}")
            if not self.topology or not self.topology.endswith(f":{v.shape[1]}"):
                raise GroundTruthError(f"{at}: vertices_cam needs topology '<kind>:{v.shape[1]}', got {self.topology!r}")
        return self
