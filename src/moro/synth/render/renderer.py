"""The renderer interface, its output record and the choice of backend.

Two backends draw the same :class:`~moro.synth.render.scene.Scene`:

* ``"egl"`` (:class:`~moro.synth.render.gl_renderer.EGLRenderer`): OpenGL 3.3 through moderngl on
  a headless EGL context (Mesa's llvmpipe on CPU machines, the GPU driver elsewhere). Smooth
  shading, procedural textures. One context and one set of buffers per scene; per frame only
  the body's vertex buffer is rewritten.
* ``"software"`` (:class:`~moro.synth.render.software_renderer.SoftwareRenderer`): a vectorised
  torch z-buffer rasteriser with flat shading and plain material colours. Slow (tens of ms
  per frame) but needs no GL at all; depth, instance masks and hence every label are the same
  up to pixel-boundary rasterisation differences.

:func:`make_renderer` picks the backend: the argument, else ``$MORO_RENDER_BACKEND``
(``egl`` | ``software`` | ``auto``), else ``auto`` = EGL when a context can be created, otherwise
the software rasteriser with a logged warning.

A renderer owns its GL context: create one per process (an EGL context does not survive a
``fork``; build renderers inside worker processes) and reuse it across sequences with
:meth:`Renderer.set_scene`.

Both backends follow the same conventions: pixel (i, j) samples the scene at its centre, the
OpenCV image point (u, v) = (i, j); depth is the camera-frame z of the nearest surface in
metres (``inf`` where nothing is hit: the sky); near/far clipping planes at
``NEAR``/``FAR`` metres.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from moro.synth.render.camera import Camera
from moro.synth.render.scene import INSTANCE_BODY, INSTANCE_FIRST_OCCLUDER, Background, Scene

log = logging.getLogger(__name__)

__all__ = ["BACKEND_ENV", "NEAR", "FAR", "RenderedFrame", "Renderer", "make_renderer", "egl_available", "opengl_projection"]

BACKEND_ENV = "MORO_RENDER_BACKEND"
BACKENDS = ("auto", "egl", "software")
NEAR, FAR = 0.05, 500.0  # metres
GROUND_HALF_SIZE = 150.0  # metres: the ground quad spans +-GROUND_HALF_SIZE around the camera
WALL_HEIGHT = 60.0  # metres: tall enough to fill the view above the horizon behind the person
QUAD_FACES = np.array([[0, 1, 2], [0, 2, 3]], np.int32)  # two triangles of a 4-corner quad


@dataclass
class RenderedFrame:
    """One rendered frame (numpy, H x W = the camera's height x width).

    Attributes:
        rgb: (H, W, 3) uint8 colour image.
        depth: (H, W) float32 camera z (metres) of the full scene; ``inf`` on the sky.
        body_depth: (H, W) float32 camera z of the body alone (a body-only pass, no occluders,
            ground or wall); ``inf`` where the body is absent.
        instance: (H, W) uint8 id of the visible surface: 0 background (sky, ground, wall),
            1 body, ``2 + k`` occluder ``k``.
    """

    rgb: np.ndarray
    depth: np.ndarray
    body_depth: np.ndarray
    instance: np.ndarray

    @property
    def body_mask(self) -> np.ndarray:
        """(H, W) bool: the body is the visible surface."""
        return self.instance == INSTANCE_BODY

    @property
    def occluder_mask(self) -> np.ndarray:
        """(H, W) bool: an occluder is the visible surface."""
        return self.instance >= INSTANCE_FIRST_OCCLUDER

    @property
    def segmentation(self) -> np.ndarray:
        """(H, W) uint8 classes: 0 background, 1 body, 2 any occluder."""
        return np.minimum(self.instance, INSTANCE_FIRST_OCCLUDER)


def opengl_projection(camera: Camera, near: float = NEAR, far: float = FAR) -> np.ndarray:
    """(4, 4) float64 matrix taking OpenCV camera coordinates to OpenGL clip space.

    Pixel centres line up with OpenCV's: image point (u, v) lands on window coordinates
    (u + 0.5, v + 0.5), i.e. GL row ``j`` of the read-back buffer is image row ``j`` (no flip).
    Clip depth maps ``z = near`` to -1 and ``z = far`` to +1.
    """
    K, W, H = camera.K, camera.width, camera.height
    P = np.zeros((4, 4))
    P[0, :3] = [2 * K[0, 0] / W, 2 * K[0, 1] / W, (2 * K[0, 2] + 1) / W - 1]
    P[1, :3] = [0, 2 * K[1, 1] / H, (2 * K[1, 2] + 1) / H - 1]
    P[2, 2:] = [(far + near) / (far - near), -2 * far * near / (far - near)]
    P[3, 2] = 1.0
    return P


def ground_quad() -> np.ndarray:
    """(4, 3) float32 corners of the ground (y = 0) around the origin; renderers shift it under the camera."""
    g = GROUND_HALF_SIZE
    return np.array([[-g, 0, -g], [-g, 0, g], [g, 0, g], [g, 0, -g]], np.float32)


def wall_quad(background: Background) -> tuple[np.ndarray, np.ndarray] | None:
    """The far wall of ``background`` as (4, 3) float32 world corners and (4, 3) pattern
    coordinates (along the wall, height, const), or None without a wall. It reaches 0.5 m below
    the ground so no gap shows at its base."""
    if background.wall is None:
        return None
    n = background.wall_normal / np.linalg.norm(background.wall_normal)
    side = np.array([n[2], 0, -n[0]], np.float32)  # horizontal, along the wall
    g = GROUND_HALF_SIZE
    along_up = np.array([[-g, -0.5], [-g, WALL_HEIGHT], [g, WALL_HEIGHT], [g, -0.5]], np.float32)
    corners = background.wall_point + along_up[:, :1] * side
    corners[:, 1] = along_up[:, 1]
    return corners.astype(np.float32), np.c_[along_up, np.full(4, 0.37, np.float32)]


def as_vertices(body_vertices, num_vertices: int) -> np.ndarray:
    """Body vertices (v, 3) numpy or tensor -> contiguous float32 numpy, checked."""
    import torch  # a core dependency

    if isinstance(body_vertices, torch.Tensor):
        body_vertices = body_vertices.detach().cpu().numpy()
    v = np.ascontiguousarray(body_vertices, dtype=np.float32)
    if v.shape != (num_vertices, 3):
        raise ValueError(f"body_vertices must be ({num_vertices}, 3) world metres for this scene, got {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("body_vertices contain NaN or inf")
    return v


class Renderer:
    """Common interface of the backends. Use :func:`make_renderer` to get one.

    Usage::

        r = make_renderer()
        r.set_scene(scene)                       # upload static geometry once per sequence
        frame = r.render(camera, verts[i], i)    # per frame: body (v, 3) world metres
        r.close()
    """

    backend = "abstract"

    def __init__(self) -> None:
        self.scene: Scene | None = None

    def set_scene(self, scene: Scene) -> None:
        """Make ``scene`` current (uploads its static geometry)."""
        self.scene = scene

    def render(self, camera: Camera, body_vertices, frame: int = 0) -> RenderedFrame:
        """Render frame ``frame`` of the current scene.

        Args:
            camera: the :class:`Camera` (its size sets the output size).
            body_vertices: (v, 3) body vertices in world metres (numpy or tensor).
            frame: frame index, selects the occluders' poses.
        """
        raise NotImplementedError  # abstractmethod: each backend implements it

    def render_sequence(self, scene: Scene, camera: Camera, body_vertices) -> Iterator[RenderedFrame]:
        """Render every frame of ``body_vertices`` (t, v, 3) with ``scene``; yields :class:`RenderedFrame`."""
        self.set_scene(scene)
        for i in range(len(body_vertices)):
            yield self.render(camera, body_vertices[i], i)

    def _require_scene(self) -> Scene:
        if self.scene is None:
            raise RuntimeError("call set_scene(scene) before render()")
        return self.scene

    def close(self) -> None:
        """Release GL resources (no-op for the software backend)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def egl_available() -> tuple[bool, str]:
    """Whether a headless EGL context can be created here: ``(ok, reason if not)``."""
    try:
        import moderngl

        ctx = moderngl.create_context(standalone=True, backend="egl")
        ctx.release()
        return True, ""
    except Exception as e:  # noqa: BLE001 - any failure means "no GL here"
        return False, f"{type(e).__name__}: {e}"


def make_renderer(backend: str | None = None) -> Renderer:
    """Create a renderer.

    Args:
        backend: ``"egl"``, ``"software"`` or ``"auto"``; None reads ``$MORO_RENDER_BACKEND``
            (default ``auto``). ``auto`` falls back to software with a warning when EGL fails.
    Raises:
        ValueError: unknown backend name.
        RuntimeError: ``egl`` was requested explicitly but no EGL context can be created.
    """
    name = (backend or os.environ.get(BACKEND_ENV) or "auto").strip().lower()
    if name not in BACKENDS:
        source = "argument" if backend else BACKEND_ENV
        raise ValueError(f"unknown render backend {name!r} (from {source}); choose one of {BACKENDS}")
    if name in ("auto", "egl"):
        try:
            from moro.synth.render.gl_renderer import EGLRenderer

            return EGLRenderer()
        except Exception as e:  # noqa: BLE001
            if name == "egl":
                raise RuntimeError(
                    f"EGL rendering unavailable ({type(e).__name__}: {e}); install moderngl and an EGL "
                    f"driver (Mesa: libegl1 libgl1-mesa-dri) or set {BACKEND_ENV}=software"
                ) from e
            log.warning("EGL rendering unavailable (%s: %s); falling back to the slow software rasteriser "
                        "(set %s=software to silence this)", type(e).__name__, e, BACKEND_ENV)
    from moro.synth.render.software_renderer import SoftwareRenderer

    return SoftwareRenderer()
