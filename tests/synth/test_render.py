"""Cameras, rendering (EGL and software), occluders, truncation and visibility labels.

Most tests use a box as the "body" (any mesh renders as the body), so they need no body model;
one end-to-end test poses the small Anny topology. EGL tests skip with the reason when no
headless context can be created; the software backend is always tested.
"""

from __future__ import annotations

import logging
import sys
import types

import numpy as np
import pytest
import torch

from moro.geometry import project_points
from moro.synth.render import (
    Background, Camera, CameraSamplingConfig, Material, Occluder, OccluderConfig, Scene, box_mesh,
    egl_available, estimate_occlusion, make_renderer, point_visibility, sample_camera, sample_occluders,
    sample_scene, trajectory_centre, truncate_framing, truncation_profile, vertex_visibility,
)
from moro.synth.render.software_renderer import SoftwareRenderer

EGL_OK, EGL_WHY = egl_available()
needs_egl = pytest.mark.skipif(not EGL_OK, reason=f"no headless EGL context here: {EGL_WHY}")
BACKENDS = [pytest.param("software"), pytest.param("egl", marks=needs_egl)]

W, H = 192, 144
BODY = box_mesh((0.5, 1.8, 0.3))  # the stand-in body: a 0.5 x 1.8 x 0.3 m box on the ground at the origin


def pose_at(x, y, z, yaw=0.0) -> np.ndarray:
    m = np.eye(4)
    m[0, 0], m[0, 2], m[2, 0], m[2, 2] = np.cos(yaw), np.sin(yaw), -np.sin(yaw), np.cos(yaw)
    m[:3, 3] = (x, y, z)
    return m


def front_camera(width=W, height=H, focal=220.0) -> Camera:
    """5 m in front of the body (camera at z = -5 looking along +z), eye height 1 m."""
    return Camera.look_at((0.0, 1.0, -5.0), (0.0, 1.0, 0.0), focal, width, height)


def make_scene(occluders=(), wall_z=None) -> Scene:
    bg = Background((0.8, 0.8, 0.9), (0.3, 0.4, 0.8))
    if wall_z is not None:
        bg = Background((0.8, 0.8, 0.9), (0.3, 0.4, 0.8), Material((0.5, 0.5, 0.4)), np.array([0, 0, wall_z], np.float32),
                        np.array([0, 0, -1], np.float32))
    ground = Material((0.4, 0.4, 0.4), (0.6, 0.6, 0.6), "checker", 1.0)
    return Scene(BODY.faces, BODY.vertices, Material((0.8, 0.6, 0.5), (0.2, 0.2, 0.6), "stripes", 0.1), ground, bg,
                 occluders=tuple(occluders))


def panel(x=0.0, z=-2.5, size=(0.4, 2.5, 0.1)) -> Occluder:
    return Occluder("wall", box_mesh(size), pose_at(x, 0.0, z), Material((0.9, 0.1, 0.1)))


@pytest.fixture(scope="module")
def renderers():
    made = {}

    def get(name):
        if name not in made:
            made[name] = make_renderer(name)
        return made[name]

    yield get
    for r in made.values():
        r.close()


# ----------------------------------------------------------------------------- camera
def test_look_at_centres_the_target_and_uses_opencv_axes():
    cam = front_camera()
    uv, depth = cam.project(np.array([[0.0, 1.0, 0.0], [0.0, 2.0, 0.0]]))
    np.testing.assert_allclose(uv[0], [(W - 1) / 2, (H - 1) / 2], atol=1e-9)
    np.testing.assert_allclose(depth, [5.0, 5.0], atol=1e-12)
    assert uv[1, 1] < uv[0, 1]  # a higher world point is higher in the image (smaller v): y down
    np.testing.assert_allclose(cam.position, [0, 1, -5], atol=1e-12)


def test_project_matches_geometry_project_points_numpy_and_torch():
    cam = front_camera()
    x = torch.tensor([[0.3, 0.2, 1.0], [-1.0, 1.5, 2.0]], dtype=torch.float64)
    uv_t, z_t = cam.project(x)
    x_cam = x @ torch.tensor(cam.R).T + torch.tensor(cam.t)
    uv_ref, _ = project_points(x_cam, torch.tensor(cam.K))
    torch.testing.assert_close(uv_t, uv_ref)
    uv_n, z_n = cam.project(x.numpy())
    np.testing.assert_allclose(uv_n, uv_ref.numpy(), atol=1e-9)
    np.testing.assert_allclose(z_n, z_t.numpy())
    assert Camera.from_dict(cam.to_dict()) == cam


@pytest.mark.parametrize(
    "kwargs",
    [dict(focal=0.0), dict(focal=-10.0), dict(width=-640), dict(height=0), dict(width=640.5)],
)
def test_camera_bad_input_raises(kwargs):
    args = dict(eye=(0, 1, -5), target=(0, 1, 0), focal=500.0, width=640, height=360) | kwargs
    with pytest.raises(ValueError):
        Camera.look_at(**args)


def test_camera_rejects_bad_matrices():
    K = np.array([[500.0, 0, 320], [0, 500, 180], [0, 0, 1]])
    with pytest.raises(ValueError, match="rotation"):
        Camera(K, np.diag([1.0, 1.0, -1.0]), np.zeros(3), 640, 360)
    with pytest.raises(ValueError, match="focal"):
        Camera(np.diag([-1.0, 500, 1]), np.eye(3), np.zeros(3), 640, 360)
    for bad in (dict(focal_range=(0.0, 100.0)), dict(width=-1), dict(distance_range=(5.0, 2.0))):
        with pytest.raises(ValueError):
            CameraSamplingConfig(**bad)


def walk(frames=60, speed=1.0) -> np.ndarray:
    """(t, 3) pelvis positions walking along +x at 0.89 m height."""
    t = np.arange(frames) / 30.0
    return np.stack([speed * (t - t.mean()), np.full_like(t, 0.89), 0.3 * np.sin(t)], -1)


def walk_points(frames=60) -> np.ndarray:
    """(t, 5, 3) crude body points (feet, pelvis, chest, head) over the walk."""
    root = walk(frames)
    offsets = np.array([[0.1, -0.85, 0], [-0.1, -0.85, 0], [0, 0, 0], [0, 0.45, 0], [0, 0.8, 0]])
    return root[:, None] + offsets


def test_sample_camera_respects_ranges():
    traj = walk()
    centre = trajectory_centre(traj)
    cfg = CameraSamplingConfig()
    assert cfg.width * 9 == cfg.height * 16  # 16:9 by default
    for seed in range(40):
        cam = sample_camera(traj, np.random.default_rng(seed), cfg)
        assert (cam.width, cam.height) == (960, 540)
        assert 600 <= cam.K[0, 0] <= 1600 and cam.K[0, 0] == cam.K[1, 1]
        assert 2.0 - 1e-9 <= np.linalg.norm(cam.position - centre) <= 8.0 + 1e-9
        assert 0.5 - 1e-9 <= cam.position[1] <= 2.5 + 1e-9
        assert abs(np.degrees(np.arcsin(cam.R[2, 1]))) < 30  # small pitch
        assert np.linalg.norm(traj[:, [0, 2]] - cam.position[[0, 2]], axis=1).min() >= 1.0
        uv, z = cam.project(centre[None])
        assert z[0] > 0 and abs(uv[0, 0] - cam.K[0, 2]) < 0.3 * cam.width and abs(uv[0, 1] - cam.K[1, 2]) < 0.3 * cam.height
    small = sample_camera(traj, np.random.default_rng(0), CameraSamplingConfig(width=320, height=240))
    assert (small.width, small.height) == (320, 240)


def test_sample_camera_is_deterministic_per_seed():
    a = sample_camera(walk(), np.random.default_rng(7))
    b = sample_camera(walk(), np.random.default_rng(7))
    c = sample_camera(walk(), np.random.default_rng(8))
    assert np.array_equal(a.K, b.K) and np.array_equal(a.R, b.R) and np.array_equal(a.t, b.t)
    assert not np.array_equal(a.t, c.t)


# ----------------------------------------------------------------------------- rendering
@pytest.mark.parametrize("backend", BACKENDS)
def test_box_silhouette_lands_on_projected_corners(renderers, backend):
    r = renderers(backend)
    occ = Occluder("box", box_mesh((0.6, 0.8, 0.5)), pose_at(0.4, 0.3, -2.0, yaw=0.5), Material((0.2, 0.7, 0.2)))
    cam = front_camera()
    r.set_scene(make_scene([occ]))
    frame = r.render(cam, BODY.vertices + [0, 0, 3.0])  # body well behind
    assert frame.rgb.shape == (H, W, 3) and frame.rgb.dtype == np.uint8
    assert frame.depth.shape == frame.body_depth.shape == frame.instance.shape == (H, W)
    rows, cols = np.nonzero(frame.instance == 2)
    corners = occ.world_vertices(0)
    uv, _ = cam.project(corners)
    # Pixel centres covered by the convex silhouette: ceil(min) .. floor(max) of the projected corners.
    expect = np.array([np.ceil(uv[:, 0].min()), np.ceil(uv[:, 1].min()), np.floor(uv[:, 0].max()), np.floor(uv[:, 1].max())])
    got = np.array([cols.min(), rows.min(), cols.max(), rows.max()])
    np.testing.assert_allclose(got, expect, atol=1.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_depth_is_camera_z_of_known_planes(renderers, backend):
    r = renderers(backend)
    cam = front_camera()
    r.set_scene(make_scene(wall_z=7.0))
    frame = r.render(cam, BODY.vertices + [0, 0, 2.0])
    wall = np.zeros((H, W), bool)
    wall[: H // 2 - 1] = True  # above the horizon (the camera looks horizontally): the 60 m tall wall or the body
    wall &= frame.instance == 0
    assert wall.sum() > 1000
    np.testing.assert_allclose(frame.depth[wall], 12.0, atol=2e-4)
    # Ground pixels back-project onto y = 0.
    v, u = np.nonzero((frame.instance == 0) & (frame.depth < 11.0))
    z = frame.depth[v, u].astype(np.float64)
    x_cam = np.stack([(u - cam.K[0, 2]) / cam.K[0, 0] * z, (v - cam.K[1, 2]) / cam.K[1, 1] * z, z], -1)
    y_world = ((x_cam - cam.t) @ cam.R)[:, 1]
    assert len(y_world) > 500 and np.abs(y_world).max() < 2e-3
    # Body front face (z = 2 - 0.15) is a fronto-parallel plane at 6.85 m; body depth is the same there.
    body = frame.instance == 1
    np.testing.assert_allclose(frame.depth[body], 6.85, atol=2e-4)
    np.testing.assert_array_equal(frame.body_depth[body], frame.depth[body])
    assert np.isinf(frame.body_depth[~body]).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_rendering_is_deterministic(renderers, backend):
    r = renderers(backend)
    scene = make_scene([panel()], wall_z=6.0)
    a = list(r.render_sequence(scene, front_camera(), np.stack([BODY.vertices] * 2)))
    b = list(r.render_sequence(scene, front_camera(), np.stack([BODY.vertices] * 2)))
    for fa, fb in zip(a, b):
        for k in ("rgb", "depth", "body_depth", "instance"):
            np.testing.assert_array_equal(getattr(fa, k), getattr(fb, k))


@pytest.mark.parametrize("backend", BACKENDS)
def test_camera_change_redraws_the_static_backdrop(renderers, backend):
    r = renderers(backend)
    scene = make_scene([panel(x=0.3)], wall_z=6.0)
    other = Camera.look_at((2.0, 1.5, -4.0), (0.0, 1.0, 0.0), 200.0, W, H)
    r.set_scene(scene)
    r.render(front_camera(), BODY.vertices)
    moved = r.render(other, BODY.vertices)
    with make_renderer(backend) as fresh:  # a second renderer (GL context) in the same process
        fresh.set_scene(scene)
        ref = fresh.render(other, BODY.vertices)
        again = r.render(other, BODY.vertices)  # interleaved use keeps each renderer on its own context
    np.testing.assert_array_equal(moved.instance, ref.instance)
    np.testing.assert_array_equal(moved.depth, ref.depth)
    np.testing.assert_array_equal(again.rgb, r.render(other, BODY.vertices).rgb)


@needs_egl
def test_backends_agree_on_masks_and_depth(renderers):
    moving = np.stack([pose_at(-0.8 + 0.3 * i, 0, -1.0, 0.7) for i in range(3)])  # a box sliding sideways
    occ = [panel(x=0.2), Occluder("box", box_mesh((0.5, 0.5, 0.5)), moving, Material((0.1, 0.2, 0.9)))]
    scene, cam = make_scene(occ, wall_z=5.0), front_camera()
    verts = BODY.vertices @ np.array([[0.9, 0, 0.43], [0, 1, 0], [-0.43, 0, 0.9]], np.float32).T  # turned body
    frames = {}
    for name in ("egl", "software"):
        r = renderers(name)
        r.set_scene(scene)
        r.render(cam, verts, 0)
        frames[name] = r.render(cam, verts, 2)
    e, s = frames["egl"], frames["software"]
    for label in (1, 2, 3):
        a, b = e.instance == label, s.instance == label
        assert a.sum() > 50 and (a & b).sum() / (a | b).sum() > 0.95, label
    both = np.isfinite(e.depth) & np.isfinite(s.depth) & (e.instance == s.instance)
    assert np.median(np.abs(e.depth[both] - s.depth[both])) < 1e-3
    assert (np.isfinite(e.body_depth) == np.isfinite(s.body_depth)).mean() > 0.99


def test_backend_selection(monkeypatch, caplog):
    monkeypatch.setenv("MORO_RENDER_BACKEND", "software")
    assert isinstance(make_renderer(), SoftwareRenderer)
    monkeypatch.setenv("MORO_RENDER_BACKEND", "vulkan")
    with pytest.raises(ValueError, match="unknown render backend"):
        make_renderer()
    monkeypatch.delenv("MORO_RENDER_BACKEND")

    def broken():
        raise RuntimeError("no display")

    # A GL module whose context creation fails, as on a machine without EGL.
    monkeypatch.setitem(sys.modules, "moro.synth.render.gl_renderer", types.SimpleNamespace(EGLRenderer=broken))
    with caplog.at_level(logging.WARNING):
        assert isinstance(make_renderer("auto"), SoftwareRenderer)
    assert "falling back" in caplog.text
    with pytest.raises(RuntimeError, match="MORO_RENDER_BACKEND=software"):
        make_renderer("egl")


def test_render_bad_input():
    r = SoftwareRenderer()
    with pytest.raises(RuntimeError, match="set_scene"):
        r.render(front_camera(), BODY.vertices)
    r.set_scene(make_scene())
    with pytest.raises(ValueError, match="body_vertices"):
        r.render(front_camera(), BODY.vertices[:5])
    with pytest.raises(ValueError, match="pattern"):
        Material((0.5, 0.5, 0.5), pattern="plaid")
    with pytest.raises(ValueError, match="size"):
        box_mesh((1.0, -1.0, 1.0))


# ----------------------------------------------------------------------------- visibility
@pytest.mark.parametrize("backend", BACKENDS)
def test_visibility_labels(renderers, backend):
    r = renderers(backend)
    cam = front_camera()
    r.set_scene(make_scene([panel(x=0.0, size=(0.1, 2.5, 0.1))]))  # hides the body's middle (|x| < 0.1)
    f = r.render(cam, BODY.vertices)
    pts = np.array([
        [0.0, 1.0, 0.0],    # body centre, behind the panel: occluded
        [0.2, 1.0, 0.0],    # body side, not behind the panel: visible
        [0.2, 1.0, 0.14],   # behind the body's own front face (self-occlusion): visible
        [0.0, 1.0, -3.0],   # in front of the panel (and of the body): visible
        [30.0, 1.0, 0.0],   # far outside the image: occluded
        [0.0, 1.0, -6.0],   # behind the camera: occluded
    ])
    vis = point_visibility(pts, cam, f.depth, f.body_depth, f.instance)
    np.testing.assert_array_equal(vis.visible, [False, True, True, True, False, False])
    np.testing.assert_array_equal(vis.in_image, [True, True, True, True, False, False])
    np.testing.assert_array_equal(vis.occluded_by_occluder, [True, False, False, False, False, False])
    # Batched frames equal per-frame calls; vertices follow the same rule.
    stack = lambda x: np.stack([x, x])  # noqa: E731
    both = point_visibility(stack(pts), cam, stack(f.depth), stack(f.body_depth), stack(f.instance))
    np.testing.assert_array_equal(both.visible, stack(vis.visible))
    # Vertices follow the same rule: a row across the body's front face is hidden where the panel's
    # shadow falls (|x| < 0.099 m at the body) and visible elsewhere, back-face corners included.
    x = np.linspace(-0.24, 0.24, 25)
    row = np.stack([x, np.full_like(x, 1.0), np.full_like(x, -0.15)], -1)
    verts = torch.from_numpy(np.concatenate([row, BODY.vertices]))
    vv = vertex_visibility(verts, cam, f.depth, f.body_depth, f.instance)
    sure = (np.abs(x) < 0.09) | (np.abs(x) > 0.11)
    assert vv.shape == (len(verts),) and vv[len(x):].all()
    np.testing.assert_array_equal(vv[: len(x)][sure], np.abs(x[sure]) > 0.1)


def test_visibility_bad_input():
    cam = front_camera()
    d = np.full((H, W), np.inf, np.float32)
    i = np.zeros((H, W), np.uint8)
    with pytest.raises(ValueError, match="margin"):
        point_visibility(np.zeros((2, 3)), cam, d, d, i, margin=-1.0)
    with pytest.raises(ValueError, match=r"\(\.\.\., n, 3\)"):
        point_visibility(np.zeros((2, 2)), cam, d, d, i)
    with pytest.raises(ValueError, match="camera"):
        point_visibility(np.zeros((2, 3)), cam, d[:10], d[:10], i[:10])
    with pytest.raises(ValueError, match="leading"):
        point_visibility(np.zeros((3, 2, 3)), cam, d, d, i)


# ----------------------------------------------------------------------------- occluders and truncation
def test_sample_occluders_reaches_target_and_keeps_clear():
    pts = walk_points(60)
    cfg = OccluderConfig()
    for seed, level in ((0, 0.2), (1, 0.35), (2, 0.5)):
        rng = np.random.default_rng(seed)
        cam = sample_camera(pts[:, 2], rng, CameraSamplingConfig(width=320, height=180))
        occ = sample_occluders(cam, pts, rng, level, cfg)
        assert occ and abs(estimate_occlusion(cam, occ, pts).mean() - level) <= cfg.tolerance, (seed, level)
        for o in occ:  # nothing stands in the person's way
            for t in range(len(pts)):
                local = (pts[t, 2] - o.pose(t)[:3, 3]) @ o.pose(t)[:3, :3]
                lo, hi = o.mesh.boxes[:, 0], o.mesh.boxes[:, 1]
                gap = np.maximum(np.maximum(lo - local, local - hi), 0)[:, [0, 2]]
                assert np.linalg.norm(gap, axis=1).min() >= cfg.clearance - 1e-6
    assert sample_occluders(cam, pts, np.random.default_rng(0), 0.0) == []
    with pytest.raises(ValueError, match="level"):
        sample_occluders(cam, pts, np.random.default_rng(0), 1.5)
    a = sample_occluders(cam, pts, np.random.default_rng(5), 0.3)
    b = sample_occluders(cam, pts, np.random.default_rng(5), 0.3)
    assert [o.kind for o in a] == [o.kind for o in b] and all(np.array_equal(x.poses, y.poses) for x, y in zip(a, b))


def test_estimated_occlusion_matches_rendered_labels():
    pts = walk_points(20)
    rng = np.random.default_rng(3)
    cam = sample_camera(pts[:, 2], rng, CameraSamplingConfig(width=256, height=144))
    occ = sample_occluders(cam, pts, rng, 0.4)
    scene = make_scene(occ)
    hidden = []
    with make_renderer() as r:
        r.set_scene(scene)
        for t in range(len(pts)):
            f = r.render(cam, BODY.vertices + [pts[t, 2, 0], 0, pts[t, 2, 2]], t)
            hidden.append(point_visibility(pts[t], cam, f.depth, f.body_depth, f.instance, margin=0.0).occluded_by_occluder)
    est = estimate_occlusion(cam, occ, pts)
    assert (np.array(hidden) == est).mean() > 0.9


def test_truncate_framing_cuts_a_stretch_of_frames():
    pts = walk_points(90)
    rng = np.random.default_rng(0)
    cam = sample_camera(pts[:, 2], rng, CameraSamplingConfig(width=320, height=180, person_fraction=(0.5, 0.6)))
    new = truncate_framing(cam, pts, rng, fraction=(0.3, 0.3))
    out = truncation_profile(new, pts)
    assert abs((out > 0).mean() - 0.3) < 0.1 and out.max() <= 0.7
    np.testing.assert_allclose(new.position, cam.position, atol=1e-9)
    np.testing.assert_array_equal(new.K, cam.K)
    with pytest.raises(ValueError):
        truncate_framing(cam, pts, rng, fraction=(0.6, 0.2))


# ----------------------------------------------------------------------------- end to end with Anny
def test_anny_sequence_end_to_end():
    from moro.body import load_anny

    body = load_anny("notoes_collapse5pc")
    t = 4
    root = torch.tensor(walk(t), dtype=torch.float32)
    with torch.no_grad():
        rest = body(body.identity_pose(1), body.zero_betas()).vertices[0]
        verts = body(body.identity_pose(t), body.zero_betas(), torch.eye(3).expand(t, 3, 3), root).vertices
    joints, coco = body.joints22(verts), body.coco17(verts)
    rng = np.random.default_rng(0)
    cam = sample_camera(root.numpy(), rng, CameraSamplingConfig(width=256, height=144))
    occ = sample_occluders(cam, joints.numpy(), rng, 0.3, OccluderConfig(kinds=("person",), moving_prob=1.0), body=body)
    assert occ and not occ[0].is_static and len(occ[0].mesh.vertices) == body.num_vertices
    scene = sample_scene(rng, body.faces.numpy(), (rest - torch.tensor([0, rest[:, 1].min(), 0])).numpy(), occ,
                         cam.position, joints.numpy())
    with make_renderer() as r:
        frames = list(r.render_sequence(scene, cam, verts))
    for i, f in enumerate(frames):
        assert (f.instance == 1).sum() > 100
        v22 = point_visibility(joints[i], cam, f.depth, f.body_depth, f.instance)
        v17 = point_visibility(coco[i], cam, f.depth, f.body_depth, f.instance)
        assert v22.visible.shape == (22,) and v17.visible.shape == (17,)
    assert vertex_visibility(verts, cam, np.stack([f.depth for f in frames]), np.stack([f.body_depth for f in frames]),
                             np.stack([f.instance for f in frames])).shape == (t, body.num_vertices)
