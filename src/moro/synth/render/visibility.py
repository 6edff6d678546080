"""Visibility labels of 3D points (joints, keypoints, mesh vertices) from rendered depth.

**Rule.** A point is *occluded* in a frame when

1. it projects outside the image (or lies behind the camera): truncation; or
2. at its projected pixel an *occluder* is the visible surface of the full scene and that
   surface is nearer than the body surface there by more than ``margin``:
   ``instance >= 2`` and ``depth < body_ref - margin``, where ``body_ref`` is the nearer of
   the body-only depth at the pixel and the point's own depth. The body surface decides for
   joints (they lie inside the body, behind its surface); the point's depth decides where the
   body-only pass missed the pixel (a joint projecting just outside a thin limb's silhouette)
   and for points in front of the body surface (a keypoint regressed slightly outside the
   skin is not hidden by an occluder standing behind it).

Otherwise it is *visible*. The pixel is the one containing the projection (nearest pixel
centre, OpenCV convention).

**Self-occlusion is not occlusion.** Only occluders count: a joint hidden behind the person's
own arm or torso is visible, because the body-only depth at its pixel is the body's nearest
surface (the arm), so the test only fires when an occluder is in front of *that* surface. The
ground and the far wall never occlude (they are instance 0; a foot a centimetre below the ground
stays visible). Points on the far side of the body follow the same rule: a back vertex is
occluded exactly when the body surface in front of it is hidden by an occluder. This matches
MoRo's use of visibility: it tells which body parts an image can show, not which mesh
triangles face the camera.

Per-vertex visibility is the same test applied to vertices (:func:`vertex_visibility`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from moro.synth.render.camera import Camera
from moro.synth.render.scene import INSTANCE_FIRST_OCCLUDER

__all__ = ["DEFAULT_MARGIN", "Visibility", "point_visibility", "vertex_visibility"]

DEFAULT_MARGIN = 0.03  # metres: an occluder must be this much in front of the body surface


@dataclass
class Visibility:
    """Per-point labels (numpy bool, same leading shape ``(..., n)`` as the points).

    Attributes:
        visible: not occluded and inside the image.
        in_image: projects inside the image, in front of the camera.
        occluded_by_occluder: inside the image but hidden by an occluder (rule 2).
    """

    visible: np.ndarray
    in_image: np.ndarray
    occluded_by_occluder: np.ndarray

    @property
    def occluded(self) -> np.ndarray:
        """(..., n) bool: outside the image or hidden by an occluder (``~visible``)."""
        return ~self.visible


def _maps(name: str, x, shape=None) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim < 2 or (shape is not None and a.shape != shape):
        raise ValueError(f"{name} must be (..., H, W) like the depth map {shape}, got {a.shape}")
    return a


def point_visibility(
    points_world,
    camera: Camera,
    depth,
    body_depth,
    instance,
    margin: float = DEFAULT_MARGIN,
) -> Visibility:
    """Label 3D points visible / occluded in rendered frames (rule in the module docstring).

    Args:
        points_world: (..., n, 3) world points in metres (numpy or tensor), e.g. (22, 3) joints
            of one frame or (t, 17, 3) COCO keypoints of t frames.
        camera: the :class:`Camera` that rendered the maps.
        depth: (..., H, W) float full-scene camera z (``RenderedFrame.depth``), metres, inf = sky.
        body_depth: (..., H, W) float body-only camera z (``RenderedFrame.body_depth``), inf = no body.
        instance: (..., H, W) integer instance ids (``RenderedFrame.instance``).
        margin: metres an occluder must be in front of the body surface (>= 0).
    Returns:
        :class:`Visibility` with (..., n) bool arrays.
    """
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0 metres, got {margin}")
    pts = points_world.detach().cpu().numpy() if isinstance(points_world, torch.Tensor) else np.asarray(points_world)
    if pts.ndim < 2 or pts.shape[-1] != 3:
        raise ValueError(f"points_world must have shape (..., n, 3), got {pts.shape}")
    depth = _maps("depth", depth)
    body_depth = _maps("body_depth", body_depth, depth.shape)
    instance = _maps("instance", instance, depth.shape)
    H, W = depth.shape[-2:]
    if (H, W) != (camera.height, camera.width):
        raise ValueError(f"maps are {W}x{H} but the camera is {camera.width}x{camera.height}")
    if depth.shape[:-2] != pts.shape[:-2]:
        raise ValueError(f"points leading shape {pts.shape[:-2]} must equal the maps' {depth.shape[:-2]}")
    uv, z = camera.project(pts.astype(np.float64))
    in_image = camera.in_image(uv, z)
    col = np.clip(np.rint(uv[..., 0]), 0, W - 1).astype(np.int64)
    row = np.clip(np.rint(uv[..., 1]), 0, H - 1).astype(np.int64)
    lead = depth.shape[:-2]
    flat = (np.arange(int(np.prod(lead))).reshape(lead + (1,)) * (H * W) if lead else 0) + row * W + col
    scene_z = depth.reshape(-1)[flat]
    body_z = body_depth.reshape(-1)[flat]
    body_ref = np.minimum(body_z, z)  # body_z is inf where the body-only pass missed the pixel
    by_occluder = in_image & (instance.reshape(-1)[flat] >= INSTANCE_FIRST_OCCLUDER) & (scene_z < body_ref - margin)
    return Visibility(in_image & ~by_occluder, in_image, by_occluder)


def vertex_visibility(
    vertices_world, camera: Camera, depth, body_depth, instance, margin: float = DEFAULT_MARGIN
) -> np.ndarray:
    """Per-vertex visibility: (..., v) bool, True unless the vertex is outside the image or hidden
    by an occluder. Same rule and arguments as :func:`point_visibility` with ``vertices_world``
    (..., v, 3) world metres; self-occluded (back-facing) vertices count as visible."""
    return point_visibility(vertices_world, camera, depth, body_depth, instance, margin).visible
