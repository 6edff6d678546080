"""What every real-dataset reader shares: errors, decoding of stored values, posing into the schema.

- :class:`DatasetFormatError`: a dataset file is missing or is not what its format says; the
  message names the file, the key or setting, and the fix. (``moro.metrics`` raises the same
  type, as ``GroundTruthError``, for ground-truth files.)
- :func:`as_str` turns the ways datasets store a string (``b'male'``, 0-d or 1-element arrays,
  ``np.str_``) into ``str``; :func:`load_npz` loads an ``.npz`` (pickles allowed, as the real
  files need) and checks its required keys.
- :func:`pose_frames` poses SMPL / SMPL-X parameters (:class:`moro.body.params.SmplPose`) given
  in some parameter frame into the schema's world and camera fields (:mod:`.schema`).
- :func:`facing_transform` / :func:`virtual_camera`: the AMASS test canonicalisation and the
  camera used for camera-less motion capture.

Frames and units (``docs/conventions.md``): metres, radians, OpenCV camera, world Y up with the
ground at ``y = 0``. 4x4 transforms are named ``T_<from>2<to>`` and map column vectors.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from moro.body.joint_sets import CONTACT_JOINTS
from moro.body.model import BodyModel
from moro.body.params import SmplPose
from moro.geometry.camera import bbox_from_points, project_points

from .schema import BodyParams

__all__ = [
    "DatasetFormatError", "MaskLengthError", "BodyModelSource", "as_str", "load_npz", "rigid", "rigid_inverse",
    "Z_UP_TO_Y_UP", "pose_frames", "facing_transform", "virtual_camera", "transform_world", "CONTACT_SPEED",
]

BodyModelSource = Callable[[str, str], BodyModel]
"""``models(kind, gender) -> BodyModel``, kind ``"smplx" | "smpl"``, gender ``"neutral" | "female" |
"male"`` (``moro.metrics.predictions.file_body_models`` over the user's files; tests pass small ones)."""

_CHUNK = 256  # frames posed at once (bounds memory: 256 x 10475 x 3 floats)
CONTACT_SPEED = 0.3  # m/s: a foot joint slower than this is in contact (design.md "Training")
Z_UP_TO_Y_UP = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])
"""(3, 3) rotation ``R_x(-pi/2)``: (x, y, z) Z-up -> (x, z, -y) Y-up (AMASS -> moro world)."""


class DatasetFormatError(ValueError):
    """A dataset file is missing or not in its documented layout (message: the file, key and fix)."""


class MaskLengthError(DatasetFormatError):
    """A visibility mask does not cover exactly the frames it should."""


def as_str(x: object) -> str:
    """A stored string as ``str``: ``b'male'``, ``np.array('male')``, ``np.array([b'male'])``, ``np.str_``."""
    if isinstance(x, np.ndarray):
        if x.size != 1:
            raise ValueError(f"expected one string, got an array of shape {x.shape}")
        x = x.reshape(-1)[0]
    if isinstance(x, (bytes, np.bytes_)):
        return bytes(x).decode("utf-8", errors="replace").strip()
    return str(x).strip()


def load_npz(path: str | os.PathLike, required: tuple[str, ...] = (), what: str = "dataset file") -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` (``allow_pickle=True``: the real files hold object arrays).

    Raises:
        DatasetFormatError: the file is missing or unreadable, or a ``required`` key is absent
            (the message lists the keys found).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(f"{path} not found ({what}); check --root and the layout in docs/datasets.md")
    try:
        with np.load(path, allow_pickle=True) as z:
            data = {k: z[k] for k in z.files}
    except Exception as e:  # zip / pickle errors of many types
        raise DatasetFormatError(f"{path}: not a readable .npz ({type(e).__name__}: {e}); re-download the file") from e
    missing = [k for k in required if k not in data]
    if missing:
        raise DatasetFormatError(f"{path}: missing key(s) {missing} of a {what}; found {sorted(data)}")
    return data


def rigid(R: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
    """(4, 4) float64 transform from a rotation (3, 3) and a translation (3,) in metres."""
    T = np.eye(4)
    T[:3, :3] = R
    if t is not None:
        T[:3, 3] = t
    return T


def rigid_inverse(T: np.ndarray) -> np.ndarray:
    """Inverse of rigid 4x4 transforms (..., 4, 4)."""
    R, t = T[..., :3, :3], T[..., :3, 3]
    out = np.zeros_like(T)
    out[..., :3, :3] = np.swapaxes(R, -1, -2)
    out[..., :3, 3] = -np.einsum("...ji,...j->...i", R, t)
    out[..., 3, 3] = 1.0
    return out


def _apply(T: np.ndarray, x: np.ndarray) -> np.ndarray:
    """x (..., 3) -> R x + t for a (4, 4) T."""
    return x @ T[:3, :3].T + T[:3, 3]


def pose_frames(
    body: BodyModel,
    pose: SmplPose,
    *,
    T_p2w: np.ndarray,
    T_w2c: np.ndarray,
    K: np.ndarray,
    image_size: tuple[int, int],
    fps: float,
    vertices: bool = False,
) -> dict:
    """Pose t frames and fill the schema's label fields.

    Args:
        body: the body model the parameters belong to (named ``smplx/<gender>`` etc.).
        pose: (t, ...) decoded parameters in the *parameter frame* p (:func:`moro.body.params.smpl_params_to_pose`).
        T_p2w: (4, 4) parameter frame -> world (Y up, ground y = 0), metres.
        T_w2c: (4, 4) world -> camera (OpenCV).
        K: (3, 3) intrinsics, pixels, or (t, 3, 3) one per frame (image datasets).
        image_size: (width, height) pixels, or (t, 2) per frame.
        fps: frame rate (contacts are foot joints slower than :data:`CONTACT_SPEED`).
        vertices: also return ``vertices_cam`` (t, v, 3).
    Returns:
        dict of :class:`~moro.data.schema.Clip` fields: ``body`` (:class:`BodyParams`; betas =
        the mean over frames), ``joints_world``/``joints_cam`` (t, 22, 3), ``coco_world``/``coco_cam``
        (t, 17, 3), ``kp2d`` (t, 22, 2), ``coco2d`` (t, 17, 2), ``in_image`` (t, 22), ``coco_in_image``
        (t, 17), ``box_gt`` (t, 3), ``feet_world``/``feet_cam`` (t, 4, 3), ``contacts`` (t, 4), all float32/bool.
    """
    dt = body.v_template.dtype  # float32 for file models: posing happens in chunks of _CHUNK frames
    Rpw, tpw = torch.from_numpy(T_p2w[:3, :3]).to(dt), torch.from_numpy(T_p2w[:3, 3]).to(dt)
    Rwc, twc = torch.from_numpy(T_w2c[:3, :3]).to(dt), torch.from_numpy(T_w2c[:3, 3]).to(dt)
    root_rot_w = Rpw @ pose.root_rot.to(dt)
    root_trans_w = pose.root_trans.to(dt) @ Rpw.T + tpw
    parts: dict[str, list] = {k: [] for k in ("j_w", "j_c", "c_w", "c_c", "f_w", "f_c", "v_c")}
    with torch.no_grad():
        for s in range(0, root_rot_w.shape[0], _CHUNK):
            sl = slice(s, s + _CHUNK)
            verts_w = body(pose.body_pose[sl].to(dt), pose.betas[sl].to(dt), root_rot_w[sl], root_trans_w[sl]).vertices
            verts_c = verts_w @ Rwc.T + twc  # (t, v, 3)
            parts["j_w"].append(body.joints22(verts_w))
            parts["j_c"].append(body.joints22(verts_c))
            parts["c_w"].append(body.coco17(verts_w))
            parts["c_c"].append(body.coco17(verts_c))
            parts["f_w"].append(body.foot_points(verts_w))
            parts["f_c"].append(body.foot_points(verts_c))
            if vertices:
                parts["v_c"].append(verts_c)
    j_w, j_c, c_w, c_c, f_w, f_c = (torch.cat(parts[k]).double() for k in ("j_w", "j_c", "c_w", "c_c", "f_w", "f_c"))
    Kt = torch.from_numpy(np.asarray(K, dtype=np.float64)).expand(j_c.shape[0], 3, 3)  # (3, 3) or per frame (t, 3, 3)
    uv, front = project_points(j_c, Kt)
    uvc, frontc = project_points(c_c, Kt)
    wh = np.asarray(image_size, dtype=np.float64).reshape(-1, 2)  # (1, 2) or per frame (t, 2)
    w, h = torch.from_numpy(wh[:, :1]), torch.from_numpy(wh[:, 1:])

    def inside(p, ok):
        return (ok & (p[..., 0] >= 0) & (p[..., 0] <= w - 1) & (p[..., 1] >= 0) & (p[..., 1] <= h - 1)).numpy()

    box = bbox_from_points(torch.where(front[..., None], uv, torch.zeros_like(uv)), 1.2,
                           valid=front | ~front.any(-1, keepdim=True))
    speed = np.zeros((j_w.shape[0], 4))
    jw = j_w.numpy()[:, list(CONTACT_JOINTS)]
    if jw.shape[0] > 1:
        v = np.linalg.norm(np.diff(jw, axis=0), axis=-1) * fps
        speed = np.concatenate([v[:1], v], axis=0)
    f32 = lambda x: np.asarray(x.numpy() if torch.is_tensor(x) else x, dtype=np.float32)  # noqa: E731
    params = BodyParams(
        model=body.name, body_pose=f32(pose.body_pose), betas=f32(pose.betas.mean(0)), root_rot_world=f32(root_rot_w),
        root_trans_world=f32(root_trans_w), root_rot_cam=f32(Rwc @ root_rot_w), root_trans_cam=f32(root_trans_w @ Rwc.T + twc),
    )
    return dict(
        body=params, joints_world=f32(j_w), joints_cam=f32(j_c), coco_world=f32(c_w), coco_cam=f32(c_c), kp2d=f32(uv),
        coco2d=f32(uvc), in_image=inside(uv, front), coco_in_image=inside(uvc, frontc), box_gt=f32(box),
        feet_world=f32(f_w), feet_cam=f32(f_c), contacts=speed < CONTACT_SPEED,
        vertices_cam=f32(torch.cat(parts['v_c'])) if vertices else None,
    )


def transform_world(fields: dict, T_w2n: np.ndarray) -> dict:
    """Re-express the world fields of :func:`pose_frames` output in a new world ``n`` (camera unchanged).

    ``joints_world``, ``coco_world``, ``feet_world``, the world root of ``body`` and ``T_w2c``
    (-> ``T_n2c = T_w2c @ T_w2n^-1``, when present) are updated; camera-frame fields are untouched.
    """
    out = dict(fields)
    for k in ("joints_world", "coco_world", "feet_world"):
        if out.get(k) is not None:
            out[k] = _apply(T_w2n, out[k].astype(np.float64)).astype(np.float32)
    bp = out.get("body")
    if bp is not None:
        from dataclasses import replace

        R = T_w2n[:3, :3]
        out["body"] = replace(bp, root_rot_world=(R @ bp.root_rot_world.astype(np.float64)).astype(np.float32),
                              root_trans_world=_apply(T_w2n, bp.root_trans_world.astype(np.float64)).astype(np.float32))
    if out.get("T_w2c") is not None:
        out["T_w2c"] = np.asarray(out["T_w2c"], dtype=np.float64) @ rigid_inverse(T_w2n)
    return out


def facing_transform(joints_world: np.ndarray) -> np.ndarray:
    """AMASS test canonicalisation (data-formats.md): (4, 4) world -> canonical world.

    The floor goes to ``y = 0`` at the lowest joint over all frames; frame 0's pelvis to the
    horizontal origin; frame 0 faces +Z (the body's left, from the hips and shoulders, along +X);
    the rotation is about the vertical axis through the pelvis.

    Args:
        joints_world: (t, 22, 3) JOINTS22 in a Y-up world, metres.
    """
    j0 = joints_world[0]
    across = (j0[1] - j0[2]) + (j0[16] - j0[17])  # right -> left hips + shoulders
    across = np.array([across[0], 0.0, across[2]])
    n = np.linalg.norm(across)
    if n < 1e-8:
        raise ValueError("cannot canonicalise: hips and shoulders give no horizontal left-right direction")
    left = across / n
    fwd = np.cross(left, [0.0, 1.0, 0.0])  # left x up = forward
    R = np.stack([left, [0.0, 1.0, 0.0], fwd])  # rows: new x (left), y (up), z (forward)
    p = np.array([j0[0, 0], 0.0, j0[0, 2]])
    T = rigid(R, -R @ p)
    T[1, 3] = -float(joints_world[..., 1].min())
    return T


def virtual_camera(joints_world: np.ndarray, distance: float = 5.0, height: float = 1.0,
                   image_size: tuple[int, int] = (1280, 720)) -> tuple[np.ndarray, np.ndarray]:
    """A static camera for motion capture without video: ``distance`` m in front of frame 0's
    pelvis (facing it, from the hips and shoulders), ``height`` m above the ground, level.

    Args:
        joints_world: (t, 22, 3) Y-up world joints, metres.
    Returns:
        ``(T_w2c (4, 4), K (3, 3))``; focal from :func:`moro.geometry.camera.estimate_focal`.
    """
    from moro.geometry.camera import default_intrinsics

    T_w2f = facing_transform(joints_world)  # world -> frame facing +Z, pelvis at the origin
    c = np.array([0.0, height, distance])  # camera centre in that frame (its ground is y = 0)
    R_f2c = np.diag([1.0, -1.0, -1.0])  # looks along -Z (back at the body), y down
    T_f2c = rigid(R_f2c, -R_f2c @ c)
    T_f2c_world = T_f2c @ T_w2f
    return T_f2c_world, default_intrinsics(*image_size, dtype=torch.float64).numpy()
