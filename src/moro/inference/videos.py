"""The two output videos: the mesh over the input frames, and a world view with ground and trajectory.

* **overlay** (``overlay.mp4``): each input frame (resampled to 30 fps; scaled down to at most
  ``max_side`` px) with the fitted mesh drawn over it in the camera frame, the 22-joint
  skeleton, and the person box. Joints whose confidence is below ``low_confidence``, or that
  project outside the image, are drawn as hollow red circles (occluded / uncertain), the others
  as filled green dots.
* **world** (``world.mp4``, 640 x 360): the world frame (Y up, ground y = 0) seen from above and
  behind the original camera: the ground, the mesh, the root's path on the ground (walked part
  bright, the rest faint).

Meshes are drawn by the synthetic world's renderer (:func:`moro.synth.render.make_renderer`,
EGL or the software rasteriser, ``backend``); with ``backend="points"`` (or when no GL context
exists and ``backend="auto"``) a plain OpenCV drawing of the mesh vertices is used instead.
Frames stream through: one frame and one chunk of meshes in memory at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["SKELETON22", "VideoWriter", "MeshPainter", "draw_joints", "world_camera", "write_overlay", "write_world_view"]

# Parents of the 22 scoring joints (SMPL order, ``moro.body.joint_sets.JOINTS22``).
SKELETON22 = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)
MESH_COLOUR = np.array([0.55, 0.75, 0.95], np.float32)


class VideoWriter:
    """H.264 (libx264, yuv420p) writer of RGB frames; odd sizes are padded by one black pixel."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float = 30.0) -> None:
        import av

        self.width, self.height = width + width % 2, height + height % 2
        self._c = av.open(str(path), "w")
        self._s = self._c.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001),
                                     options={"crf": "20", "preset": "veryfast"})
        self._s.width, self._s.height, self._s.pix_fmt = self.width, self.height, "yuv420p"
        self._av, self.count = av, 0

    def write(self, rgb: np.ndarray) -> None:
        if rgb.shape[:2] != (self.height, self.width):
            pad = np.zeros((self.height, self.width, 3), np.uint8)
            pad[: rgb.shape[0], : rgb.shape[1]] = rgb[: self.height, : self.width]
            rgb = pad
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.count
        for p in self._s.encode(frame):
            self._c.mux(p)
        self.count += 1

    def close(self) -> None:
        for p in self._s.encode():
            self._c.mux(p)
        self._c.close()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class MeshPainter:
    """Draws a mesh seen by a pinhole camera over an image: renderer if possible, else points."""

    def __init__(self, faces: np.ndarray, rest_vertices: np.ndarray, backend: str = "auto",
                 ground: bool = False) -> None:
        from moro.synth.render import Background, Material, Scene, egl_available, make_renderer

        self.renderer = None
        if backend != "points" and (backend != "auto" or egl_available()[0]):
            self.renderer = make_renderer(None if backend == "auto" else backend)
            ground_mat = Material([0.62, 0.62, 0.6], [0.5, 0.5, 0.48], "checker", 1.0)
            self.renderer.set_scene(Scene(faces, rest_vertices, Material(MESH_COLOUR), ground_mat,
                                          Background([0.85, 0.87, 0.9], [0.55, 0.65, 0.85]), ambient=0.45))
        self.ground = ground
        self.backend = "points" if self.renderer is None else self.renderer.backend

    def paint(self, image: np.ndarray, camera, vertices: np.ndarray, alpha: float = 0.65) -> np.ndarray:
        """``image`` (H, W, 3) uint8 with the mesh (v, 3) (camera's world coordinates) drawn on it.
        With ``ground=True`` the renderer's whole picture (ground, sky) replaces the image."""
        if self.renderer is not None:
            frame = self.renderer.render(camera, vertices.astype(np.float32), 0)
            if self.ground:
                return frame.rgb.copy()
            out = image.copy()
            m = frame.body_mask
            out[m] = (alpha * frame.rgb[m] + (1 - alpha) * image[m]).astype(np.uint8)
            return out
        import cv2

        out = image.copy()
        uv, z = camera.project(vertices)
        ok = (z > 0.05) & np.isfinite(uv).all(-1)
        for u, v in np.round(uv[ok][:: max(1, ok.sum() // 1500)]).astype(int):
            cv2.circle(out, (int(u), int(v)), 1, (140, 190, 240), -1)
        return out

    def close(self) -> None:
        if self.renderer is not None:
            self.renderer.close()


def draw_joints(image: np.ndarray, uv: np.ndarray, low: np.ndarray, box: np.ndarray | None = None) -> np.ndarray:
    """Skeleton of 22 joints at pixels ``uv`` (22, 2); ``low`` (22,) bool marks occluded/uncertain ones."""
    import cv2

    h, w = image.shape[:2]
    out = image
    uv = np.clip(np.nan_to_num(np.asarray(uv, np.float64), nan=-1e4), -1e4, 1e4)  # behind the camera: far away
    p = np.round(uv).astype(int)
    for j, par in enumerate(SKELETON22):
        if par >= 0:
            cv2.line(out, tuple(p[j]), tuple(p[par]), (255, 255, 255), 1, cv2.LINE_AA)
    for j in range(len(p)):
        inside = 0 <= uv[j, 0] < w and 0 <= uv[j, 1] < h
        if low[j] or not inside:
            cv2.circle(out, tuple(p[j]), 4, (230, 40, 40), 1, cv2.LINE_AA)
        else:
            cv2.circle(out, tuple(p[j]), 3, (40, 210, 60), -1, cv2.LINE_AA)
    if box is not None:
        half = 100.0 * box[2]
        cv2.rectangle(out, (int(box[0] - half), int(box[1] - half)), (int(box[0] + half), int(box[1] + half)),
                      (250, 220, 60), 1)
    return out


def _camera(K: np.ndarray, R: np.ndarray, t: np.ndarray, width: int, height: int):
    from moro.synth.render import Camera

    return Camera(K, R, t, width, height)


def write_overlay(
    path: str | Path,
    frames: Iterator[np.ndarray],
    meshes: Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    faces: np.ndarray,
    rest_vertices: np.ndarray,
    K: np.ndarray,
    fps: float = 30.0,
    max_side: int = 1280,
    backend: str = "auto",
    low_confidence: float = 0.5,
) -> str:
    """Write ``overlay.mp4``.

    Args:
        frames: input frames (H, W, 3) uint8, in order.
        meshes: per frame ``(vertices_cam (v, 3), joints22_cam (22, 3), joint_confidence (22,), box (3,))``.
        faces, rest_vertices: the body mesh (rest vertices texture the renderer's material).
        K: (3, 3) intrinsics of the input frames.
    Returns:
        the drawing backend used ("egl", "software" or "points").
    """
    import cv2

    painter, writer = MeshPainter(faces, rest_vertices, backend), None
    try:
        for rgb, (verts, joints, conf, box) in zip(frames, meshes):
            if writer is None:
                h, w = rgb.shape[:2]
                f = min(1.0, max_side / max(h, w))
                size = (int(round(w * f)), int(round(h * f)))
                Ks = np.diag([f, f, 1.0]) @ K
                Ks[:2, 2] = (K[:2, 2] + 0.5) * f - 0.5
                cam = _camera(Ks, np.eye(3), np.zeros(3), *size)
                writer = VideoWriter(path, *size, fps)
            img = rgb if f == 1.0 else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            img = painter.paint(img, cam, verts)
            uv, _ = cam.project(joints)
            sbox = np.array([(box[0] + 0.5) * f - 0.5, (box[1] + 0.5) * f - 0.5, box[2] * f])
            writer.write(draw_joints(img, uv, np.asarray(conf) < low_confidence, sbox))
    finally:
        painter.close()
        if writer is not None:
            writer.close()
    return painter.backend


def world_camera(root_world: np.ndarray, camera_position: np.ndarray, width: int = 640, height: int = 360):
    """A camera above and behind the original one, framing the whole root path (world frame)."""
    from moro.synth.render import Camera

    centre = root_world.mean(0)
    extent = float(np.linalg.norm(root_world.max(0) - root_world.min(0)))
    back = np.asarray(camera_position, np.float64) - centre
    back[1] = 0.0
    back = back / np.linalg.norm(back) if np.linalg.norm(back) > 1e-6 else np.array([0.0, 0.0, -1.0])
    dist = 3.5 + 1.2 * extent
    eye = centre + back * dist + np.array([0.0, 0.5 * dist + 1.0, 0.0])
    target = np.array([centre[0], 0.8, centre[2]])
    return Camera.look_at(eye, target, 0.9 * width, width, height)


def write_world_view(
    path: str | Path,
    meshes: Iterator[np.ndarray],
    root_world: np.ndarray,
    camera_position: np.ndarray,
    faces: np.ndarray,
    rest_vertices: np.ndarray,
    fps: float = 30.0,
    backend: str = "auto",
    progress: Callable[[int], None] | None = None,
) -> str:
    """Write ``world.mp4``: ``meshes`` yields world-frame vertices (v, 3) per frame; ``root_world``
    (t, 3) is the root path; ``camera_position`` (3,) the input camera's centre in the world."""
    import cv2

    cam = world_camera(np.asarray(root_world), camera_position)
    painter = MeshPainter(faces, rest_vertices, backend, ground=True)
    ground_path = np.asarray(root_world, np.float64).copy()
    ground_path[:, 1] = 0.005
    uv, z = cam.project(ground_path)
    path_px = np.round(uv).astype(np.int32)
    try:
        with VideoWriter(path, cam.width, cam.height, fps) as writer:
            for i, verts in enumerate(meshes):
                if painter.renderer is not None:
                    img = painter.paint(None, cam, verts)
                else:
                    img = np.full((cam.height, cam.width, 3), 200, np.uint8)
                    _grid(img, cam)
                    img = painter.paint(img, cam, verts)
                cv2.polylines(img, [path_px.reshape(-1, 1, 2)], False, (255, 255, 255), 1, cv2.LINE_AA)
                cv2.polylines(img, [path_px[: i + 1].reshape(-1, 1, 2)], False, (230, 60, 30), 2, cv2.LINE_AA)
                writer.write(img)
                if progress is not None:
                    progress(1)
    finally:
        painter.close()
    return painter.backend


def _grid(img: np.ndarray, cam, half: float = 10.0, step: float = 1.0) -> None:
    """A 1 m grid on the ground (y = 0) around the world origin, for the point-drawing fallback."""
    import cv2

    for s in np.arange(-half, half + step, step):
        for a, b in (([s, 0, -half], [s, 0, half]), ([-half, 0, s], [half, 0, s])):
            pts = np.linspace(a, b, 40)
            uv, z = cam.project(pts)
            ok = z > 0.1
            if ok.sum() > 1:
                cv2.polylines(img, [np.round(uv[ok]).astype(np.int32).reshape(-1, 1, 2)], False, (150, 150, 150), 1)
