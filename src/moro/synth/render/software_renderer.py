"""Software backend: a vectorised numpy z-buffer rasteriser, used when no GL context exists.

Same scene, camera and output conventions as the EGL backend (see
:mod:`moro.synth.render.renderer`), computed without any graphics driver:

1. triangles are moved to the OpenCV camera frame and clipped against the near plane
   (``z = NEAR``; a triangle crossing it becomes one or two triangles);
2. each triangle is cut into spans (one per pixel row it covers, x-range from its edges), and
   every pixel centre of a span is a fragment; its depth is exact and perspective-correct
   because ``1 / z`` is an affine function of (u, v) on a triangle;
3. fragments are packed into int64 keys (depth in micrometres, then the triangle index), so one
   ``np.minimum.at`` gives the z-buffer and the visible face together.

Pure numpy on purpose: its element-wise kernels run on one thread, while torch's thread pool
slows this kind of gather/scatter work down by 10-30x on a CPU shared with other jobs.

Shading is flat (one Lambert colour per triangle from the material's base colour, no
procedural patterns). The sky uses the EGL backend's gradient formula. Speed: tens of ms per
512 x 512 frame for a person with a few props, more when props fill the view (every covered
pixel of every triangle is a fragment): fine for tests and small runs, too slow for data
generation at scale.
"""

from __future__ import annotations

import numpy as np

from moro.synth.render.camera import Camera
from moro.synth.render.renderer import (
    NEAR, QUAD_FACES, Renderer, RenderedFrame, as_vertices, ground_quad, wall_quad,
)
from moro.synth.render.scene import INSTANCE_BACKGROUND, INSTANCE_BODY, INSTANCE_FIRST_OCCLUDER, Material, Scene

__all__ = ["SoftwareRenderer", "rasterize"]

_ID_BITS = 22  # triangle ids packed under the quantised depth in one int64 key


def _clip_near(tri: np.ndarray, near: float) -> tuple[np.ndarray, np.ndarray]:
    """Clip camera-frame triangles (n, 3, 3) against ``z >= near``.

    Returns the clipped triangles (m, 3, 3) and, for each, the index (m,) of its source triangle.
    """
    inside = tri[..., 2] > near  # (n, 3)
    cnt = inside.sum(1)
    src = np.arange(len(tri))
    out, out_src = [tri[cnt == 3]], [src[cnt == 3]]

    def lerp(a, b):  # point on segment a -> b at z = near
        return a + ((near - a[:, 2]) / (b[:, 2] - a[:, 2]))[:, None] * (b - a)

    for c, special_inside in ((1, True), (2, False)):
        sel = cnt == c
        if not sel.any():
            continue
        t, ins = tri[sel], inside[sel]
        k = np.argmax(ins if special_inside else ~ins, axis=1)  # the odd vertex
        rows = np.arange(len(t))
        v0, v1, v2 = t[rows, k], t[rows, (k + 1) % 3], t[rows, (k + 2) % 3]
        if c == 1:  # v0 in front: one smaller triangle
            out.append(np.stack([v0, lerp(v0, v1), lerp(v0, v2)], 1))
            out_src.append(src[sel])
        else:  # v0 behind: the quad v1, v2, p20, p10 as two triangles
            p10, p20 = lerp(v1, v0), lerp(v2, v0)
            out += [np.stack([v1, v2, p20], 1), np.stack([v1, p20, p10], 1)]
            out_src += [src[sel], src[sel]]
    return np.concatenate(out), np.concatenate(out_src)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expand runs: for run i, ``counts[i]`` consecutive values from ``starts[i]``.
    Returns (run index (total,), value (total,))."""
    run = np.repeat(np.arange(len(counts)), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    return run, starts[run] + np.arange(len(run)) - first


def rasterize(tri_cam: np.ndarray, K: np.ndarray, width: int, height: int, near: float = NEAR):
    """Z-buffer rasterisation of camera-frame triangles at pixel centres.

    Args:
        tri_cam: (n, 3, 3) triangles in the OpenCV camera frame, metres (computed in float64).
        K: (3, 3) intrinsics, pixels.
        width, height: image size in pixels.
        near: near clipping plane, metres.
    Returns:
        ``(depth, face)``: depth (H, W) float32 camera z of the nearest surface (``inf`` where
        empty; quantised to 1 micrometre); face (H, W) int64 index of the visible triangle
        (-1 where empty).
    """
    W, H = width, height
    if len(tri_cam) >= 1 << _ID_BITS:
        raise ValueError(f"rasterize handles fewer than {1 << _ID_BITS} triangles, got {len(tri_cam)}")
    tri, src = _clip_near(np.asarray(tri_cam, dtype=np.float64), near)
    z = tri[..., 2]  # (m, 3)
    xn, yn = tri[..., 0] / z, tri[..., 1] / z
    u, v = K[0, 0] * xn + K[0, 1] * yn + K[0, 2], K[1, 1] * yn + K[1, 2]  # (m, 3) pixels
    area = (u[:, 1] - u[:, 0]) * (v[:, 2] - v[:, 0]) - (u[:, 2] - u[:, 0]) * (v[:, 1] - v[:, 0])
    y0 = np.clip(np.ceil(v.min(1)), 0, H - 1).astype(np.int64)
    y1 = np.clip(np.floor(v.max(1)), -1, H - 1).astype(np.int64)
    keep = np.nonzero((y1 >= y0) & (np.abs(area) > 1e-9) & (u.max(1) >= -0.5) & (u.min(1) <= W - 0.5))[0]
    u, v, w = u[keep], v[keep], 1.0 / z[keep]
    # 1/z is affine in screen space: 1/z = a u + b v + c per triangle (perspective-correct depth),
    # the plane through (u_i, v_i, 1/z_i): normal = e1 x e2, whose z component is the signed area.
    e1 = np.stack([u[:, 1] - u[:, 0], v[:, 1] - v[:, 0], w[:, 1] - w[:, 0]], -1)
    e2 = np.stack([u[:, 2] - u[:, 0], v[:, 2] - v[:, 0], w[:, 2] - w[:, 0]], -1)
    nrm = np.cross(e1, e2)
    a, b = -nrm[:, 0] / nrm[:, 2], -nrm[:, 1] / nrm[:, 2]
    c = w[:, 0] - a * u[:, 0] - b * v[:, 0]
    # Spans: one per (triangle, pixel row); its x-range from the edges crossing the row.
    r_tri, r_y = _ranges(y0[keep], y1[keep] - y0[keep] + 1)
    ry = r_y[:, None].astype(np.float64)
    ua, va = u[r_tri], v[r_tri]  # (r, 3) edge starts; edges i -> i + 1
    ub, vb = np.roll(ua, -1, 1), np.roll(va, -1, 1)
    crosses = (np.minimum(va, vb) <= ry) & (np.maximum(va, vb) >= ry) & (va != vb)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = ua + (ry - va) * (ub - ua) / (vb - va)
    x_lo = np.maximum(np.ceil(np.where(crosses, x, np.inf).min(1)), 0)
    x_hi = np.minimum(np.floor(np.where(crosses, x, -np.inf).max(1)), W - 1)
    n = np.nan_to_num(np.maximum(x_hi - x_lo + 1, 0)).astype(np.int64)
    x_lo = np.where(n > 0, x_lo, 0).astype(np.int64)
    # Fragments, packed as (quantised depth << ID_BITS | triangle) so one minimum gives depth and face.
    f_span, f_x = _ranges(x_lo, n)
    f_y, f_tri = r_y[f_span], r_tri[f_span]
    zf = 1.0 / (a[f_tri] * f_x + b[f_tri] * f_y + c[f_tri])
    key = (np.clip(np.rint(zf * 1e6), 0, (1 << (62 - _ID_BITS)) - 1).astype(np.int64) << _ID_BITS) | keep[f_tri]
    empty = np.iinfo(np.int64).max
    buf = np.full(H * W, empty, dtype=np.int64)
    np.minimum.at(buf, f_y * W + f_x, key)
    hit = buf != empty
    depth = np.where(hit, (buf >> _ID_BITS) * 1e-6, np.inf)
    face = np.where(hit, src[np.where(hit, buf & ((1 << _ID_BITS) - 1), 0)], -1)
    return depth.reshape(H, W).astype(np.float32), face.reshape(H, W)


def sky_colours(camera: Camera, horizon: np.ndarray, zenith: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 sky gradient by view-ray elevation (the EGL sky shader's formula)."""
    u, v = np.meshgrid(np.arange(camera.width), np.arange(camera.height))
    pix = np.stack([u, v, np.ones_like(u)], -1).astype(np.float64)
    d = pix @ (camera.R.T @ np.linalg.inv(camera.K)).T
    e = d[..., 1] / np.linalg.norm(d, axis=-1)
    s = np.clip(e / 0.6, 0, 1)
    s = s * s * (3 - 2 * s)  # smoothstep(0, 0.6, e)
    return (horizon + (zenith - horizon) * s[..., None]).astype(np.float32)


class SoftwareRenderer(Renderer):
    """Torch z-buffer renderer with flat shading (no GL needed)."""

    backend = "software"

    def set_scene(self, scene: Scene) -> None:
        super().set_scene(scene)
        self._sky_key, self._sky = None, None
        self._ground = ground_quad()[QUAD_FACES]  # (2, 3, 3)
        wall = wall_quad(scene.background)
        self._wall = None if wall is None else wall[0][QUAD_FACES]
        # Body triangles below the clothes split take the lower colour (per-face centroid test).
        m = scene.body_material
        self._body_albedo = np.tile(m.colour, (len(scene.body_faces), 1))
        if m.lower_colour is not None:
            cy = scene.body_pattern_coords[scene.body_faces][:, :, 1].mean(1)  # (f,) rest-pose centroid height
            self._body_albedo[cy < m.split_y] = m.lower_colour

    def _shade(self, tri_world: np.ndarray, albedo: np.ndarray, eye: np.ndarray) -> np.ndarray:
        """(n, 3) flat Lambert colours of world triangles (n, 3, 3), two-sided, in [0, 1]."""
        scene = self.scene
        n = np.cross(tri_world[:, 1] - tri_world[:, 0], tri_world[:, 2] - tri_world[:, 0])
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        n *= np.sign(((eye - tri_world.mean(1)) * n).sum(1, keepdims=True) + 1e-12)
        diffuse = np.clip(n @ scene.light_dir, 0, None)[:, None]
        return np.clip(albedo * (scene.ambient + (1 - scene.ambient) * diffuse), 0, 1)

    def render(self, camera: Camera, body_vertices, frame: int = 0) -> RenderedFrame:
        scene = self._require_scene()
        verts = as_vertices(body_vertices, scene.num_vertices)
        eye = camera.position.astype(np.float32)
        ground = self._ground + np.array([eye[0], 0, eye[2]], np.float32)
        body_tris = verts[scene.body_faces]
        groups: list[tuple[np.ndarray, Material | np.ndarray, int]] = [(ground, scene.ground_material, INSTANCE_BACKGROUND)]
        if self._wall is not None:
            groups.append((self._wall, scene.background.wall, INSTANCE_BACKGROUND))
        for k, occ in enumerate(scene.occluders):
            groups.append((occ.world_vertices(frame)[occ.mesh.faces], occ.material, INSTANCE_FIRST_OCCLUDER + k))
        groups.append((body_tris, self._body_albedo, INSTANCE_BODY))
        tris = np.concatenate([g[0] for g in groups]).astype(np.float64)
        colours = np.concatenate([
            self._shade(tri.astype(np.float64), albedo.colour if isinstance(albedo, Material) else albedo, eye)
            for tri, albedo, _ in groups])
        ids = np.concatenate([np.full(len(g[0]), g[2], np.uint8) for g in groups])

        def to_cam(t):
            return t @ camera.R.T + camera.t

        depth, face = rasterize(to_cam(tris), camera.K, camera.width, camera.height)
        body_depth, _ = rasterize(to_cam(body_tris.astype(np.float64)), camera.K, camera.width, camera.height)
        hit = face >= 0
        key = (camera.K.tobytes(), camera.R.tobytes(), camera.width, camera.height)
        if self._sky_key != key:  # the camera is static over a sequence: compute the sky once
            self._sky_key, self._sky = key, sky_colours(camera, scene.background.horizon, scene.background.zenith)
        rgb = self._sky.copy()
        rgb[hit] = colours[face[hit]]
        instance = np.where(hit, ids[np.maximum(face, 0)], INSTANCE_BACKGROUND).astype(np.uint8)
        return RenderedFrame(np.rint(rgb * 255).astype(np.uint8), depth, body_depth, instance)
