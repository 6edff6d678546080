"""OpenGL backend: moderngl on a headless EGL context (see :mod:`moro.synth.render.renderer`).

Per frame two passes into off-screen framebuffers (no window, no anti-aliasing, so masks and
depth are exact per pixel):

1. *body pass*: the body alone, writing its camera z into an R32F target (``body_depth``);
2. *scene pass*: ground, optional far wall, occluders, the body and the sky gradient (a
   full-screen triangle at the far plane), writing RGBA8 colour, camera z (R32F) and the
   instance id (R8).

The camera is static over a sequence, so everything that does not move (sky, ground, wall,
static occluders) is rendered once per camera into a *backdrop* framebuffer, colour and depth
buffer together; each frame starts from a GPU copy of it and draws only the body and the moving
occluders on top, depth-tested against the copied depth buffer.

Camera z is written by the fragment shader from the interpolated camera-frame position, so
depth is exact metres (no depth-buffer linearisation). The projection matrix
(:func:`~moro.synth.render.renderer.opengl_projection`) maps OpenCV image rows onto GL rows
directly, so read-back buffers need no vertical flip.

Buffers: one context per renderer; per scene the static meshes are uploaded once; per frame
only the body's (v, 6) position + normal buffer is rewritten and the occluders' model matrices
are set as uniforms. Empty pixels hold depth ``+inf`` (written by the sky and the clears),
so the read-back buffers are returned without post-processing.
"""

from __future__ import annotations

import moderngl
import numpy as np

from moro.synth.render.camera import Camera
from moro.synth.render.meshes import face_incidence, vertex_normals
from moro.synth.render.renderer import (
    QUAD_FACES, Renderer, RenderedFrame, as_vertices, ground_quad, opengl_projection, wall_quad,
)
from moro.synth.render.scene import INSTANCE_BODY, INSTANCE_FIRST_OCCLUDER, PATTERNS, Material, Scene

__all__ = ["EGLRenderer"]

_VERTEX = """
#version 330
uniform mat4 u_model;   // local -> world
uniform mat4 u_view;    // world -> OpenCV camera
uniform mat4 u_proj;    // OpenCV camera -> clip
in vec3 in_pos;
in vec3 in_normal;
in vec3 in_pattern;
out vec3 v_world;
out vec3 v_normal;
out vec3 v_pattern;
out float v_z;
void main() {
    vec4 pw = u_model * vec4(in_pos, 1.0);
    vec4 pc = u_view * pw;
    v_world = pw.xyz;
    v_normal = mat3(u_model) * in_normal;
    v_pattern = in_pattern;
    v_z = pc.z;
    gl_Position = u_proj * pc;
}
"""

_FRAGMENT = """
#version 330
uniform vec3 u_colour;
uniform vec3 u_colour2;
uniform vec3 u_lower;
uniform int u_has_lower;
uniform float u_split_y;
uniform int u_pattern;      // index into PATTERNS: solid, stripes, checker, noise
uniform float u_scale;
uniform int u_ground;       // 1: pattern on world (x, z), for the ground that follows the camera
uniform vec3 u_light;       // unit vector towards the light (world)
uniform float u_ambient;
uniform vec3 u_eye;         // camera centre (world)
uniform float u_instance;
in vec3 v_world;
in vec3 v_normal;
in vec3 v_pattern;
in float v_z;
layout(location = 0) out vec4 f_colour;
layout(location = 1) out float f_z;     // camera z, metres
layout(location = 2) out float f_id;    // instance id / 255 (R8 target stores it exactly)

float hash(vec3 p) {
    p = fract(p * 0.3183099 + 0.1) * 17.0;
    return fract(p.x * p.y * p.z * (p.x + p.y + p.z));
}
float vnoise(vec3 x) {
    vec3 i = floor(x);
    vec3 f = fract(x);
    f = f * f * (3.0 - 2.0 * f);
    return mix(mix(mix(hash(i), hash(i + vec3(1, 0, 0)), f.x),
                   mix(hash(i + vec3(0, 1, 0)), hash(i + vec3(1, 1, 0)), f.x), f.y),
               mix(mix(hash(i + vec3(0, 0, 1)), hash(i + vec3(1, 0, 1)), f.x),
                   mix(hash(i + vec3(0, 1, 1)), hash(i + vec3(1, 1, 1)), f.x), f.y), f.z);
}
void main() {
    vec3 p = (u_ground == 1 ? vec3(v_world.x, v_world.z, 0.37) : v_pattern) / u_scale;
    bool lower = u_has_lower == 1 && v_pattern.y < u_split_y;
    vec3 base = lower ? u_lower : u_colour;
    vec3 second = lower ? u_lower * 0.7 : u_colour2;
    float m = 0.0;
    if (u_pattern == 1) m = step(0.5, fract(p.y));
    else if (u_pattern == 2) m = mod(floor(p.x) + floor(p.y) + floor(p.z), 2.0);
    else if (u_pattern == 3) m = smoothstep(0.3, 0.7, 0.65 * vnoise(p) + 0.35 * vnoise(2.7 * p));
    vec3 albedo = mix(base, second, m);
    vec3 n = normalize(v_normal);
    vec3 view = normalize(u_eye - v_world);
    if (dot(n, view) < 0.0) n = -n;  // two-sided lighting
    float diffuse = max(dot(n, u_light), 0.0);
    float spec = 0.08 * pow(max(dot(reflect(-u_light, n), view), 0.0), 16.0);
    f_colour = vec4(clamp(albedo * (u_ambient + (1.0 - u_ambient) * diffuse) + spec, 0.0, 1.0), 1.0);
    f_z = v_z;
    f_id = u_instance / 255.0;
}
"""

_DEPTH_VERTEX = """
#version 330
uniform mat4 u_view;
uniform mat4 u_proj;
in vec3 in_pos;
out float v_z;
void main() {
    vec4 pc = u_view * vec4(in_pos, 1.0);
    v_z = pc.z;
    gl_Position = u_proj * pc;
}
"""

_DEPTH_FRAGMENT = """
#version 330
in float v_z;
layout(location = 0) out float f_z;
void main() { f_z = v_z; }
"""

_SKY_VERTEX = """
#version 330
in vec2 in_ndc;
void main() { gl_Position = vec4(in_ndc, 1.0, 1.0); }  // at the far plane
"""

_SKY_FRAGMENT = """
#version 330
uniform mat3 u_ray;   // R^T K^-1: pixel (u, v, 1) -> world ray direction
uniform vec3 u_horizon;
uniform vec3 u_zenith;
layout(location = 0) out vec4 f_colour;
layout(location = 1) out float f_z;
layout(location = 2) out float f_id;
void main() {
    vec3 d = normalize(u_ray * vec3(gl_FragCoord.xy - 0.5, 1.0));
    f_colour = vec4(mix(u_horizon, u_zenith, smoothstep(0.0, 0.6, d.y)), 1.0);
    f_z = uintBitsToFloat(0x7F800000u);  // +inf: nothing hit
    f_id = 0.0;
}
"""


def _mat(m: np.ndarray) -> bytes:
    """Row-major numpy matrix -> column-major float32 bytes for a GLSL mat uniform."""
    return np.ascontiguousarray(np.asarray(m, dtype=np.float32).T).tobytes()


def _set(prog: moderngl.Program, name: str, value) -> None:
    """Set a uniform if the compiler kept it (unused uniforms are optimised away)."""
    if name not in prog:
        return
    if isinstance(value, np.ndarray) and value.ndim == 2:
        prog[name].write(_mat(value))
    else:
        prog[name].value = tuple(float(x) for x in value) if isinstance(value, np.ndarray) else value


def _interleave(vertices: np.ndarray, faces: np.ndarray, pattern: np.ndarray) -> bytes:
    """(v, 9) float32 bytes: position, normal, pattern coordinates."""
    return np.concatenate([vertices, vertex_normals(vertices, faces), pattern], 1).astype(np.float32).tobytes()


class EGLRenderer(Renderer):
    """moderngl renderer on a standalone EGL context. Raises on construction when EGL is missing."""

    backend = "egl"

    def __init__(self) -> None:
        super().__init__()
        self.ctx = moderngl.create_context(standalone=True, backend="egl")
        self.prog = self.ctx.program(vertex_shader=_VERTEX, fragment_shader=_FRAGMENT)
        self.depth_prog = self.ctx.program(vertex_shader=_DEPTH_VERTEX, fragment_shader=_DEPTH_FRAGMENT)
        self.sky_prog = self.ctx.program(vertex_shader=_SKY_VERTEX, fragment_shader=_SKY_FRAGMENT)
        tri = np.array([[-1, -1], [3, -1], [-1, 3]], np.float32)  # one triangle covering the screen
        self._sky_vbo = self.ctx.buffer(tri.tobytes())
        self._sky_vao = self.ctx.vertex_array(self.sky_prog, [(self._sky_vbo, "2f", "in_ndc")])
        self._size: tuple[int, int] | None = None
        self._backdrop_key = None
        self._targets: list = []
        self._scene_objects: list = []
        self._draws: list = []

    # ------------------------------------------------------------------ resources
    def _framebuffers(self, width: int, height: int) -> None:
        if self._size == (width, height):
            return
        for obj in self._targets:
            obj.release()
        size, rb = (width, height), self.ctx.renderbuffer
        self._targets = []

        def scene_fbo():
            att = [rb(size, 4), rb(size, 1, dtype="f4"), rb(size, 1)]  # RGBA8, camera z, instance
            depth = self.ctx.depth_renderbuffer(size)
            fbo = self.ctx.framebuffer(att, depth)
            self._targets += [fbo, depth, *att]
            return fbo

        self.fbo, self.backdrop = scene_fbo(), scene_fbo()
        zbody, depth_body = rb(size, 1, dtype="f4"), self.ctx.depth_renderbuffer(size)
        self.fbo_body = self.ctx.framebuffer([zbody], depth_body)
        self._targets += [self.fbo_body, zbody, depth_body]
        self._size, self._backdrop_key = size, None

    def _static(self, vertices: np.ndarray, faces: np.ndarray, pattern: np.ndarray):
        vbo = self.ctx.buffer(_interleave(vertices, faces, pattern))
        ibo = self.ctx.buffer(np.ascontiguousarray(faces, dtype=np.int32).tobytes())
        vao = self.ctx.vertex_array(self.prog, [(vbo, "3f 3f 3f", "in_pos", "in_normal", "in_pattern")], ibo, 4)
        self._scene_objects += [vao, vbo, ibo]
        return vao

    def set_scene(self, scene: Scene) -> None:
        """Upload the scene's static geometry (ground, wall, occluders, body topology)."""
        with self.ctx:  # make our context current: several renderers may live in one process
            self._upload(scene)

    def _upload(self, scene: Scene) -> None:
        for obj in self._scene_objects:
            obj.release()
        self._scene_objects, self._draws = [], []
        self._backdrop_key = None
        super().set_scene(scene)
        # The ground follows the camera (its pattern uses world x, z); the wall's pattern uses (along, up).
        ground = ground_quad()
        self._draws.append(("ground", self._static(ground, QUAD_FACES, ground), scene.ground_material, 0))
        wall = wall_quad(scene.background)
        if wall is not None:
            self._draws.append(("wall", self._static(wall[0], QUAD_FACES, wall[1]), scene.background.wall, 0))
        for k, occ in enumerate(scene.occluders):
            vao = self._static(occ.mesh.vertices, occ.mesh.faces, occ.mesh.vertices)
            self._draws.append(("occluder", vao, occ.material, INSTANCE_FIRST_OCCLUDER + k, occ))
        v = scene.num_vertices
        self._incidence = face_incidence(scene.body_faces, v)
        self._body_vbo = self.ctx.buffer(reserve=v * 6 * 4, dynamic=True)
        pat = self.ctx.buffer(scene.body_pattern_coords.astype(np.float32).tobytes())
        ibo = self.ctx.buffer(scene.body_faces.astype(np.int32).tobytes())
        self._body_vao = self.ctx.vertex_array(
            self.prog, [(self._body_vbo, "3f 3f", "in_pos", "in_normal"), (pat, "3f", "in_pattern")], ibo, 4)
        self._body_depth_vao = self.ctx.vertex_array(self.depth_prog, [(self._body_vbo, "3f 12x", "in_pos")], ibo, 4)
        self._scene_objects += [self._body_vao, self._body_depth_vao, self._body_vbo, pat, ibo]
        self._draws.insert(0, ("body", self._body_vao, scene.body_material, INSTANCE_BODY))

    def _material(self, m: Material, instance: int) -> None:
        p = self.prog
        _set(p, "u_colour", m.colour)
        _set(p, "u_colour2", m.colour2)
        _set(p, "u_lower", m.colour if m.lower_colour is None else m.lower_colour)
        _set(p, "u_has_lower", int(m.lower_colour is not None))
        _set(p, "u_split_y", float(m.split_y))
        _set(p, "u_pattern", PATTERNS.index(m.pattern))
        _set(p, "u_scale", float(m.scale))
        _set(p, "u_instance", float(instance))

    # ------------------------------------------------------------------ render
    def _draw(self, items, camera: Camera, frame: int) -> None:
        """Draw scene items (kind, vao, material, instance[, occluder]) into the bound framebuffer."""
        p, scene, eye = self.prog, self.scene, camera.position
        _set(p, "u_view", camera.world_to_camera_matrix)
        _set(p, "u_proj", opengl_projection(camera))
        _set(p, "u_light", scene.light_dir)
        _set(p, "u_ambient", float(scene.ambient))
        _set(p, "u_eye", eye)
        for kind, vao, material, instance, *occ in items:
            model = np.eye(4)
            if kind == "occluder":
                model = occ[0].pose(frame)
            elif kind == "ground":  # follow the camera so the ground always reaches the horizon
                model[[0, 2], 3] = eye[[0, 2]]
            _set(p, "u_model", model)
            _set(p, "u_ground", int(kind == "ground"))
            self._material(material, instance)
            vao.render(moderngl.TRIANGLES)

    def _update_backdrop(self, camera: Camera) -> None:
        """Render what does not change while the camera stays put (sky, ground, wall, static
        occluders) once, colour and depth; every frame starts from a copy of it."""
        key = (camera.K.tobytes(), camera.R.tobytes(), camera.t.tobytes())
        if self._backdrop_key == key:
            return
        self.backdrop.use()
        self.backdrop.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        self.ctx.enable(moderngl.DEPTH_TEST)
        static = [d for d in self._draws if d[0] in ("ground", "wall") or (d[0] == "occluder" and d[4].is_static)]
        self._draw(static, camera, 0)
        self.ctx.depth_func = "<="  # the sky sits at the far plane: fills only what is still empty
        _set(self.sky_prog, "u_ray", camera.R.T @ np.linalg.inv(camera.K))
        _set(self.sky_prog, "u_horizon", self.scene.background.horizon)
        _set(self.sky_prog, "u_zenith", self.scene.background.zenith)
        self._sky_vao.render(moderngl.TRIANGLES)
        self.ctx.depth_func = "<"
        self._backdrop_key = key

    def render(self, camera: Camera, body_vertices, frame: int = 0) -> RenderedFrame:
        scene = self._require_scene()
        verts = as_vertices(body_vertices, scene.num_vertices)
        with self.ctx:  # make our context current (and restore the previous one after)
            return self._render(scene, camera, verts, frame)

    def _render(self, scene: Scene, camera: Camera, verts: np.ndarray, frame: int) -> RenderedFrame:
        W, H = camera.width, camera.height
        self._framebuffers(W, H)
        self._update_backdrop(camera)
        normals = vertex_normals(verts, scene.body_faces, self._incidence)
        self._body_vbo.write(np.concatenate([verts, normals], 1).tobytes())
        ctx = self.ctx
        ctx.enable(moderngl.DEPTH_TEST)

        # Body-only pass.
        self.fbo_body.use()
        self.fbo_body.clear(float("inf"), 0.0, 0.0, 0.0, depth=1.0)
        _set(self.depth_prog, "u_view", camera.world_to_camera_matrix)
        _set(self.depth_prog, "u_proj", opengl_projection(camera))
        self._body_depth_vao.render(moderngl.TRIANGLES)

        # Full scene: the static backdrop (colour, z, id and depth buffer), then body and moving props.
        ctx.copy_framebuffer(self.fbo, self.backdrop)
        self.fbo.use()
        self._draw([d for d in self._draws if d[0] == "body" or (d[0] == "occluder" and not d[4].is_static)], camera, frame)

        rgb = np.empty((H, W, 3), np.uint8)
        depth, body_depth = np.empty((H, W), np.float32), np.empty((H, W), np.float32)
        instance = np.empty((H, W), np.uint8)
        self.fbo.read_into(rgb, components=3, attachment=0)
        self.fbo.read_into(depth, components=1, attachment=1, dtype="f4")
        self.fbo.read_into(instance, components=1, attachment=2)
        self.fbo_body.read_into(body_depth, components=1, attachment=0, dtype="f4")
        return RenderedFrame(rgb, depth, body_depth, instance)

    def close(self) -> None:
        if self.ctx is None:
            return
        with self.ctx:
            for obj in self._scene_objects + self._targets:
                obj.release()
        self._scene_objects, self._targets, self._size = [], [], None
        self.ctx.release()
        self.ctx = None
