"""Per-frame labels of a synthetic sequence (issue 3, item 4): geometry, visibility, boxes.

Given a generated :class:`~moro.synth.motion.Motion`, its posed world mesh and the static
:class:`~moro.synth.render.Camera`, :func:`geometry_labels` computes every label that needs no
rendering; :func:`visibility_labels` adds the depth-test labels of one rendered frame
(:mod:`moro.synth.render.visibility`); :func:`detector_boxes` simulates a person detector from the
visible keypoints. The keys and shapes are the ``labels.npz`` table of :mod:`moro.data.synth`.

Camera-frame body parameters: the root maps like any rigid frame, ``R_c = R_w2c R_w``,
``t_c = R_w2c t_w + t_w2c`` (``t`` = the root joint's position), so
``body(body_pose, betas, R_c, t_c)`` is the camera-frame mesh. Camera-frame points are computed
in float64 from the world points and stored as float32; 2D keypoints are the projections of the
*stored* float32 camera points with ``K`` (so re-projecting the stored labels reproduces them).

Boxes are HMR squares ``(cx, cy, s)``, pixels, side ``200 s`` (:func:`moro.geometry.bbox_from_points`):

- ``box_gt``: enclosing all 22 projected joints (inside the image or not), scale 1.2 (MoRo's GT box);
- ``box_det``: a detector-like box: enclosing the *visible* 22 joints and COCO keypoints at scale
  1.2 (in-image ones when fewer than 3 are visible; ``box_gt`` when none is in the image), with
  slowly varying centre / scale errors (AR(1), sigma :data:`DET_CENTRE_SIGMA` of the side and
  :data:`DET_SCALE_SIGMA` in log scale) and stretches of frames where it is too tight (x0.65-0.85,
  about :data:`DET_TIGHT_FRACTION` of the frames; flagged in ``box_det_tight``).
"""

from __future__ import annotations

import numpy as np
import torch

from moro.geometry import bbox_from_points
from moro.synth.render import Camera, point_visibility, vertex_visibility

__all__ = ["BOX_SCALE", "geometry_labels", "visibility_labels", "detector_boxes", "project"]

BOX_SCALE = 1.2  # MoRo's box enlargement
DET_CENTRE_SIGMA = 0.04  # fraction of the box side: stationary std of the detector's centre error
DET_SCALE_SIGMA = 0.06  # log-scale std of the detector's size error
DET_AR = 0.9  # frame-to-frame correlation of the detector errors (a tracker smooths them)
DET_TIGHT_FRACTION = 0.12  # expected fraction of frames with a too-tight detector box
DET_TIGHT_RANGE = (0.65, 0.85)  # scale factor of a too-tight box
DET_TIGHT_LENGTH = (5, 30)  # frames per too-tight stretch


def project(points_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection (..., n, 3) camera metres -> (..., n, 2) float64 pixels (z assumed > 0)."""
    p = np.asarray(points_cam, dtype=np.float64)
    z = p[..., 2:3]
    xy = p[..., :2] / z
    return np.concatenate([K[0, 0] * xy[..., :1] + K[0, 1] * xy[..., 1:] + K[0, 2], K[1, 1] * xy[..., 1:] + K[1, 2]], -1)


def _to_cam(x_world: np.ndarray, camera: Camera) -> np.ndarray:
    return (np.asarray(x_world, dtype=np.float64) @ camera.R.T + camera.t).astype(np.float32)


def _boxes(uv: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    t = torch.from_numpy(np.asarray(uv, dtype=np.float64))
    v = None if valid is None else torch.from_numpy(np.asarray(valid, dtype=bool))
    return bbox_from_points(t, scale=BOX_SCALE, valid=v).numpy()


def geometry_labels(body, motion, vertices_world: torch.Tensor, camera: Camera, save_vertices: bool = False) -> dict:
    """Every label that needs no rendering.

    Args:
        body: the :class:`moro.body.BodyModel` the motion was generated on.
        motion: :class:`~moro.synth.motion.Motion` (t frames).
        vertices_world: (t, v, 3) posed world mesh (``motion.pose(body).vertices``), metres.
        camera: the sequence's static camera.
        save_vertices: add ``vertices_cam`` (t, v, 3).
    Returns:
        dict of numpy arrays keyed as in :mod:`moro.data.synth` (all but visibility and detector boxes).
    """
    t = motion.num_frames
    R, tr = camera.R, camera.t
    with torch.no_grad():
        joints_w = body.joints22(vertices_world).double().numpy()  # (t, 22, 3)
        coco_w = body.coco17(vertices_world).double().numpy()  # (t, 17, 3)
        feet_w = body.foot_points(vertices_world).double().numpy()  # (t, 4, 3)
    root_rot_w = motion.root_rot.double().numpy()
    root_trans_w = motion.root_trans.double().numpy()
    K = np.asarray(camera.K, dtype=np.float64)
    T = camera.world_to_camera_matrix
    joints_c, coco_c = _to_cam(joints_w, camera), _to_cam(coco_w, camera)
    kp2d, coco2d = project(joints_c, K), project(coco_c, K)
    types = sorted(set(motion.labels)) or ["idle"]
    out = {
        "fps": np.array(float(motion.fps)), "image_size": np.array([camera.width, camera.height], np.int64),
        "K": K, "T_w2c": T, "frame_ids": np.arange(t, dtype=np.int64),
        "body_pose": motion.body_pose.float().numpy(), "betas": motion.betas.float().numpy(),
        "phenotypes": motion.phenotypes.float().numpy(),
        "root_rot_world": root_rot_w.astype(np.float32), "root_trans_world": root_trans_w.astype(np.float32),
        "root_rot_cam": (R @ root_rot_w).astype(np.float32), "root_trans_cam": (root_trans_w @ R.T + tr).astype(np.float32),
        "joints_world": joints_w.astype(np.float32), "joints_cam": joints_c,
        "coco_world": coco_w.astype(np.float32), "coco_cam": coco_c,
        "kp2d": kp2d.astype(np.float32), "coco2d": coco2d.astype(np.float32),
        "box_gt": _boxes(kp2d).astype(np.float32),
        "contacts": motion.contacts.numpy().astype(bool),
        "feet_world": feet_w.astype(np.float32), "feet_cam": _to_cam(feet_w, camera),
        "foot_vertex_ids": body.foot_vertices.numpy().astype(np.int64),
        "num_vertices": np.array(body.num_vertices, np.int64),
        "motion_label": np.array([types.index(x) for x in motion.labels], np.int16),
        "motion_types": np.array(types),
    }
    if save_vertices:
        out["vertices_cam"] = _to_cam(vertices_world.double().numpy(), camera)
    return out


def visibility_labels(joints_world, coco_world, vertices_world, camera: Camera, frame) -> dict:
    """Depth-test labels of one rendered frame (:func:`moro.synth.render.point_visibility`).

    Args:
        joints_world: (22, 3), coco_world: (17, 3), vertices_world: (v, 3) world metres of this frame.
        camera: the camera that rendered ``frame`` (a :class:`~moro.synth.render.RenderedFrame`).
    Returns:
        ``visibility``, ``in_image`` (22,), ``coco_visibility``, ``coco_in_image`` (17,) bool and
        ``vertex_visibility_packed`` (ceil(v / 8),) uint8.
    """
    maps = (frame.depth, frame.body_depth, frame.instance)
    v22 = point_visibility(joints_world, camera, *maps)
    v17 = point_visibility(coco_world, camera, *maps)
    vv = vertex_visibility(vertices_world, camera, *maps)
    return {"visibility": v22.visible, "in_image": v22.in_image, "coco_visibility": v17.visible,
            "coco_in_image": v17.in_image, "vertex_visibility_packed": np.packbits(vv, axis=-1)}


def _ar1(rng: np.random.Generator, t: int, sigma: float, shape=()) -> np.ndarray:
    """(t, *shape) stationary AR(1) noise with std ``sigma`` and correlation :data:`DET_AR`."""
    e = rng.normal(0.0, sigma * np.sqrt(1 - DET_AR**2), (t,) + shape)
    x = np.empty_like(e)
    x[0] = rng.normal(0.0, sigma, shape)
    for i in range(1, t):
        x[i] = DET_AR * x[i - 1] + e[i]
    return x


def detector_boxes(labels: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Detector-like boxes from the visible keypoints (rule in the module docstring).

    Args:
        labels: dict with ``kp2d`` (t, 22, 2), ``coco2d`` (t, 17, 2), ``visibility`` /
            ``in_image`` (t, 22), ``coco_visibility`` / ``coco_in_image`` (t, 17), ``box_gt`` (t, 3).
        rng: numpy generator (the only source of randomness).
    Returns:
        ``box_det`` (t, 3) float32 ``(cx, cy, s)`` and ``box_det_tight`` (t,) bool.
    """
    uv = np.concatenate([labels["kp2d"], labels["coco2d"]], 1).astype(np.float64)  # (t, 39, 2)
    vis = np.concatenate([labels["visibility"], labels["coco_visibility"]], 1)
    inside = np.concatenate([labels["in_image"], labels["coco_in_image"]], 1)
    t = uv.shape[0]
    use = np.where((vis.sum(1) >= 3)[:, None], vis, inside)
    none = ~use.any(1)
    use[none] = True  # placeholder, replaced by box_gt below
    base = _boxes(uv, use)
    base[none] = labels["box_gt"][none]
    centre_err = _ar1(rng, t, DET_CENTRE_SIGMA, (2,))
    scale_err = np.exp(_ar1(rng, t, DET_SCALE_SIGMA))
    tight = np.zeros(t, bool)
    factor = np.ones(t)
    i = 0
    mean_len = 0.5 * sum(DET_TIGHT_LENGTH)
    p_start = DET_TIGHT_FRACTION / mean_len / max(1e-9, 1 - DET_TIGHT_FRACTION)
    while i < t:  # a stretch starts at each clean frame with probability p_start
        if rng.uniform() < p_start:
            n = int(rng.integers(DET_TIGHT_LENGTH[0], DET_TIGHT_LENGTH[1] + 1))
            tight[i:i + n] = True
            factor[i:i + n] = rng.uniform(*DET_TIGHT_RANGE)
            i += n
        else:
            i += 1
    side = 200.0 * base[:, 2]
    box = np.stack([base[:, 0] + centre_err[:, 0] * side, base[:, 1] + centre_err[:, 1] * side,
                    base[:, 2] * scale_err * factor], 1)
    return box.astype(np.float32), tight
