"""The sample / clip schema every moro dataset reader returns (synthetic now, real datasets later).

A :class:`Sample` is one frame, a :class:`Clip` is ``t`` consecutive frames of one sequence.
Both carry the same label fields; in a sample their leading shape ``L`` is ``()``, in a clip
``(t,)``. Shapes below are written for a clip; drop the leading ``t`` for a sample.

Frames and units (``docs/conventions.md``): metres and radians; ``*_cam`` in the sequence's
OpenCV camera frame, ``*_world`` in the gravity-aligned world (Y up, ground ``y = 0``);
``T_w2c`` maps world to camera (``x_cam = R x_world + t``); pixels follow OpenCV's pixel-centre
convention (``u = fx x / z + cx``). Boxes are HMR squares ``(cx, cy, s)`` in pixels with side
``200 s`` (:mod:`moro.geometry.camera`). Joint orders: :data:`moro.body.JOINTS22` (22 SMPL-order
scoring joints) and :data:`moro.body.COCO17`. Label fields a dataset does not provide are None.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

__all__ = ["BodyParams", "Sample", "Clip", "SchemaError"]


class SchemaError(ValueError):
    """A sample or clip field has the wrong shape (message: the field and the expected shape)."""


@dataclass
class BodyParams:
    """Body-model parameters of the frames (leading shape L = () or (t,)).

    The global mesh is ``model(body_pose, betas, root_rot_world, root_trans_world)`` in the
    world and ``model(body_pose, betas, root_rot_cam, root_trans_cam)`` in the camera, where
    ``root_rot_cam = R_w2c @ root_rot_world`` and ``root_trans_cam = R_w2c @ root_trans_world + t_w2c``
    (``root_trans`` is the root joint's position, :class:`moro.body.BodyModel`).
    """

    model: str  # body model and topology, e.g. "anny:notoes_collapse5pc" or "smpl:6890"
    body_pose: np.ndarray  # (t, j-1, 3, 3) float32 parent-relative joint rotations (local pose)
    betas: np.ndarray  # (s,) float32 shape coefficients, shared by the sequence
    root_rot_world: np.ndarray  # (t, 3, 3) float32 root orientation, world
    root_trans_world: np.ndarray  # (t, 3) float32 root joint position, world, metres
    root_rot_cam: np.ndarray  # (t, 3, 3) float32 root orientation, camera
    root_trans_cam: np.ndarray  # (t, 3) float32 root joint position, camera, metres
    phenotypes: np.ndarray | None = None  # (6,) float32 Anny sliders in [0, 1] (gender, age, muscle, weight, height, proportions)

    def index(self, i) -> "BodyParams":
        """Frames ``i`` (an int or a slice) of a clip's parameters."""
        return replace(self, body_pose=self.body_pose[i], root_rot_world=self.root_rot_world[i],
                       root_trans_world=self.root_trans_world[i], root_rot_cam=self.root_rot_cam[i],
                       root_trans_cam=self.root_trans_cam[i])


# field name -> trailing shape (None = any size on that axis); leading L = () or (t,)
_LABEL_SHAPES: dict[str, tuple] = {
    "joints_cam": (22, 3), "joints_world": (22, 3), "coco_cam": (17, 3), "coco_world": (17, 3),
    "kp2d": (22, 2), "coco2d": (17, 2), "visibility": (22,), "in_image": (22,), "coco_visibility": (17,),
    "coco_in_image": (17,), "box_gt": (3,), "box_det": (3,), "contacts": (4,), "feet_world": (4, 3),
    "feet_cam": (4, 3), "vertices_cam": (None, 3), "vertex_visibility": (None,),
}
_PER_FRAME = tuple(_LABEL_SHAPES)


@dataclass
class _Frames:
    """Labels shared by :class:`Sample` and :class:`Clip` (see the module docstring for frames/units)."""

    dataset: str  # "synth", "egobody", "rich", ...
    sequence: str  # sequence name inside the dataset ("/" separated)
    fps: float  # frames per second of the sequence
    image_size: tuple[int, int]  # (width, height) pixels
    K: np.ndarray  # (3, 3) float64 intrinsics, pixels (static camera)
    T_w2c: np.ndarray  # (4, 4) float64 world -> camera rigid transform, metres (static camera)
    joints_cam: np.ndarray  # (t, 22, 3) float32 JOINTS22, camera frame, metres
    joints_world: np.ndarray  # (t, 22, 3) float32 JOINTS22, world frame, metres
    kp2d: np.ndarray  # (t, 22, 2) float32 projected joints_cam, pixels (may lie outside the image)
    box_gt: np.ndarray  # (t, 3) float32 box enclosing all projected 22 joints, scale 1.2
    coco_cam: np.ndarray | None = None  # (t, 17, 3) float32 COCO17 keypoints, camera frame
    coco_world: np.ndarray | None = None  # (t, 17, 3) float32 COCO17 keypoints, world frame
    coco2d: np.ndarray | None = None  # (t, 17, 2) float32 projected COCO keypoints, pixels
    visibility: np.ndarray | None = None  # (t, 22) bool: visible (inside the image and not hidden by an occluder)
    in_image: np.ndarray | None = None  # (t, 22) bool: projects inside the image (False = truncated)
    coco_visibility: np.ndarray | None = None  # (t, 17) bool, as ``visibility``
    coco_in_image: np.ndarray | None = None  # (t, 17) bool, as ``in_image``
    box_det: np.ndarray | None = None  # (t, 3) float32 detector-like box (jittered, sometimes too tight)
    contacts: np.ndarray | None = None  # (t, 4) bool foot contact: L ankle, L foot, R ankle, R foot joints
    feet_world: np.ndarray | None = None  # (t, 4, 3) float32 foot-sliding vertices (L heel, L toe, R heel, R toe), world
    feet_cam: np.ndarray | None = None  # (t, 4, 3) float32 the same vertices, camera frame
    vertices_cam: np.ndarray | None = None  # (t, v, 3) float32 mesh in the camera frame (when stored)
    vertex_visibility: np.ndarray | None = None  # (t, v) bool per-vertex visibility (when requested)
    body: BodyParams | None = None  # body-model parameters
    motion_label: np.ndarray | str | None = None  # (t,) str motion type of each frame ("walk", "sit", ...)

    def _check(self, lead: tuple) -> None:
        where = f"{self.dataset}:{self.sequence}"
        for name, want in {"K": (3, 3), "T_w2c": (4, 4)}.items():
            if np.shape(getattr(self, name)) != want:
                raise SchemaError(f"{where}: {name} must have shape {want}, got {np.shape(getattr(self, name))}")
        for name, tail in _LABEL_SHAPES.items():
            a = getattr(self, name)
            if a is None:
                continue
            s = np.shape(a)
            ok = len(s) == len(lead) + len(tail) and s[: len(lead)] == lead and all(
                w is None or w == g for w, g in zip(tail, s[len(lead):]))
            if not ok:
                pretty = lead + tuple("v" if w is None else w for w in tail)
                raise SchemaError(f"{where}: {name} must have shape {pretty}, got {s}")


@dataclass
class Sample(_Frames):
    """One frame (label fields without the leading ``t``)."""

    frame_id: int = 0  # index of the frame in its sequence
    image: np.ndarray | None = None  # (H, W, 3) uint8 RGB, when decoded
    image_file: str | None = None  # image path (relative to the dataset's source root), real datasets

    def validate(self) -> "Sample":
        """Check every field's shape; raise :class:`SchemaError` naming the field."""
        self._check(())
        if self.image is not None and np.shape(self.image) != (self.image_size[1], self.image_size[0], 3):
            raise SchemaError(f"{self.sequence}: image must be (H, W, 3) = {(self.image_size[1], self.image_size[0], 3)}, "
                              f"got {np.shape(self.image)}")
        return self


@dataclass
class Clip(_Frames):
    """``t`` consecutive frames of one sequence."""

    frame_ids: np.ndarray | None = None  # (t,) int64 frame indices in the sequence
    images: np.ndarray | None = None  # (t, H, W, 3) uint8 RGB, when decoded
    image_files: np.ndarray | None = None  # (t,) str image paths (relative to the dataset's source root), real datasets

    @property
    def num_frames(self) -> int:
        return int(self.joints_cam.shape[0])

    def validate(self) -> "Clip":
        """Check every field's shape against ``t``; raise :class:`SchemaError` naming the field."""
        t = self.num_frames
        self._check((t,))
        if self.frame_ids is None or np.shape(self.frame_ids) != (t,):
            raise SchemaError(f"{self.sequence}: frame_ids must have shape ({t},), got {np.shape(self.frame_ids)}")
        w, h = self.image_size
        if self.images is not None and np.shape(self.images) != (t, h, w, 3):
            raise SchemaError(f"{self.sequence}: images must be (t, H, W, 3) = {(t, h, w, 3)}, got {np.shape(self.images)}")
        return self

    def sample(self, i: int) -> Sample:
        """Frame ``i`` of the clip (0 <= i < t) as a :class:`Sample`."""
        if not -self.num_frames <= i < self.num_frames:
            raise IndexError(f"frame {i} outside the clip's {self.num_frames} frames")
        shared = {f.name: getattr(self, f.name) for f in fields(_Frames) if f.name not in _PER_FRAME}
        per_frame = {n: (None if getattr(self, n) is None else getattr(self, n)[i]) for n in _PER_FRAME}
        shared["body"] = None if self.body is None else self.body.index(i)
        ml = self.motion_label
        shared["motion_label"] = None if ml is None else str(ml[i])
        return Sample(**shared, **per_frame, frame_id=int(self.frame_ids[i]),
                      image=None if self.images is None else self.images[i],
                      image_file=None if self.image_files is None else str(self.image_files[i]))
