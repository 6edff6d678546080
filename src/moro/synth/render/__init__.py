"""Cameras, rendering, occluders and visibility labels of the synthetic occlusion world.

Data flow for one sequence (all world metres, Y up, ground y = 0; camera = OpenCV)::

    camera    = sample_camera(root_trajectory, rng)                        # camera.py
    camera    = truncate_framing(camera, joints, rng)                       # truncation.py (some sequences)
    occluders = sample_occluders(camera, joints, rng, level=0.3, body=body) # occluders.py
    scene     = sample_scene(rng, body.faces, rest_vertices, occluders,
                             camera.position, joints)                       # scene.py
    with make_renderer() as r:                                              # renderer.py (egl | software)
        for i, frame in enumerate(r.render_sequence(scene, camera, vertices)):
            vis = point_visibility(joints[i], camera, frame.depth,
                                   frame.body_depth, frame.instance)        # visibility.py

Modules (one concept each): ``camera`` (Camera, sampler), ``meshes`` (primitive props),
``scene`` (materials, occluders, scene record), ``renderer`` (interface, backend choice),
``gl_renderer`` (moderngl/EGL), ``software_renderer`` (torch z-buffer fallback),
``occluders`` (placement to a target level), ``truncation`` (frame-edge truncation),
``visibility`` (per-point and per-vertex labels). Never imports moro.model or moro.tokenizer.
"""

from moro.synth.render.camera import Camera, CameraSamplingConfig, sample_camera, trajectory_centre
from moro.synth.render.meshes import Mesh, box_mesh, cylinder_mesh, mannequin_mesh, merge_meshes, table_mesh
from moro.synth.render.occluders import OCCLUDER_KINDS, OccluderConfig, estimate_occlusion, human_mesh, sample_occluders
from moro.synth.render.renderer import BACKEND_ENV, RenderedFrame, Renderer, egl_available, make_renderer
from moro.synth.render.scene import (
    INSTANCE_BACKGROUND, INSTANCE_BODY, INSTANCE_FIRST_OCCLUDER, Background, Material, Occluder, Scene,
    sample_material, sample_scene,
)
from moro.synth.render.truncation import truncate_framing, truncation_profile
from moro.synth.render.visibility import DEFAULT_MARGIN, Visibility, point_visibility, vertex_visibility

__all__ = [
    "BACKEND_ENV", "Background", "Camera", "CameraSamplingConfig", "DEFAULT_MARGIN", "INSTANCE_BACKGROUND",
    "INSTANCE_BODY", "INSTANCE_FIRST_OCCLUDER", "Material", "Mesh", "OCCLUDER_KINDS", "Occluder", "OccluderConfig",
    "RenderedFrame", "Renderer", "Scene", "Visibility", "box_mesh", "cylinder_mesh", "egl_available",
    "estimate_occlusion", "human_mesh", "make_renderer", "mannequin_mesh", "merge_meshes", "point_visibility",
    "sample_camera", "sample_material", "sample_occluders", "sample_scene", "table_mesh", "trajectory_centre",
    "truncate_framing", "truncation_profile", "vertex_visibility",
]
