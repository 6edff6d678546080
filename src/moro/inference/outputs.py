"""Turn the decoded and fitted per-frame stores into the files of ``--out``.

:class:`Motion` bundles what the exports read (stores on disk, the shared shape, the world
frame, the camera, the frame table and boxes) and produces per-frame quantities chunk by chunk
(world-frame root, meshes, projected joints). The writers:

* :func:`write_motion_npz` -> ``motion.npz`` (keys: :mod:`moro.inference.exports`);
* :func:`write_glb_file` -> ``motion.glb`` (:mod:`moro.inference.gltf`);
* :func:`write_bvh_file` -> ``motion.bvh`` (:mod:`moro.inference.bvh`);
* :func:`write_videos` -> ``overlay.mp4``, ``world.mp4`` (:mod:`moro.inference.videos`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from moro.body.joint_sets import JOINTS22
from moro.geometry import rotmat_to_rotvec
from moro.inference.exports import MOTION_FORMAT, MOTION_VERSION, NpzStreamWriter, chunked
from moro.inference.frontend import FrameTrack
from moro.inference.ground import WorldFrame
from moro.inference.store import FrameStore

__all__ = ["Motion", "write_motion_npz", "write_glb_file", "write_bvh_file", "write_videos", "surface_model_type"]

CHUNK = 256  # frames per chunk when streaming stores into files


def surface_model_type(body) -> str:
    """AMASS ``surface_model_type``: "anny", "smplx" or "smpl"."""
    return str(body.meta.get("kind") or body.name.split("/")[0]).lower()


@dataclass
class Motion:
    """Everything the exports read; per-frame data stays in the stores."""

    body: torch.nn.Module
    betas: torch.Tensor  # (s,)
    world: WorldFrame
    K: np.ndarray  # (3, 3)
    image_size: tuple[int, int]  # (width, height)
    fps: float
    track: FrameTrack
    decoded: dict[str, FrameStore]
    fitted: dict[str, FrameStore]

    @property
    def num_frames(self) -> int:
        return len(self.track)

    def root_world(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """World root orientation (c, 3, 3) and root joint position (c, 3) of frames a..b-1."""
        R = self.world.rotations(self.fitted["root_rot_cam"].read(a, b).astype(np.float64))
        t = self.world.points(self.fitted["root_trans_cam"].read(a, b).astype(np.float64))
        return R, t

    def vertices(self, a: int, b: int, frame: str = "cam") -> np.ndarray:
        """Fitted meshes (c, v, 3) float32 of frames a..b-1 in the camera or world frame."""
        pose = torch.from_numpy(self.fitted["body_pose"].read(a, b)).float()
        if frame == "cam":
            R, t = self.fitted["root_rot_cam"].read(a, b), self.fitted["root_trans_cam"].read(a, b)
        else:
            R, t = self.root_world(a, b)
        out = self.body(pose, self.betas.float(), torch.from_numpy(np.asarray(R, np.float32)),
                        torch.from_numpy(np.asarray(t, np.float32)))
        return out.vertices.numpy()

    def rest(self) -> tuple[np.ndarray, np.ndarray]:
        """Rest mesh (v, 3) and rest joints (j, 3) of the fitted shape (model rest pose)."""
        v, j = self.body.shaped(self.betas.float())
        return v.numpy(), j.numpy()


def _rotvec(R: np.ndarray) -> np.ndarray:
    return rotmat_to_rotvec(torch.from_numpy(np.asarray(R, np.float64))).numpy()


def write_motion_npz(path: Path, m: Motion, save_vertices: bool = False) -> None:
    """``motion.npz`` (keys and shapes: :mod:`moro.inference.exports`)."""
    body, t, j = m.body, m.num_frames, m.body.num_joints
    betas = m.betas.float()
    root_rest = body.root_joint_rest(betas).numpy()
    surface = surface_model_type(body)
    dec, fit = m.decoded, m.fitted
    f32, jj = np.float32, j - 1
    with NpzStreamWriter(path) as z:
        for k, v in {"format": MOTION_FORMAT, "format_version": MOTION_VERSION, "fps": m.fps, "mocap_frame_rate": m.fps,
                     "surface_model_type": surface, "body_model": body.name,
                     "gender": str(body.meta.get("gender", "neutral")),
                     "joint_names": np.array(body.joint_names), "parents": np.array(body.parents, np.int64),
                     "joints22_names": np.array(JOINTS22), "betas": betas.numpy(),
                     "image_size": np.array(m.image_size, np.int64), "K": m.K, "T_cam2world": m.world.T_c2w,
                     "T_world2cam": m.world.T_w2c,
                     "ground_plane_cam": np.r_[m.world.plane.normal, m.world.plane.offset],
                     "time": m.track.time, "source_time": m.track.source_time, "source_frame": m.track.source_frame,
                     "bbox": m.track.boxes, "bbox_detected": m.track.detected}.items():
            z.add(k, v)
        rw = lambda a, b: m.root_world(a, b)  # noqa: E731
        z.add_chunks("poses", (t, 3 * j), f32, chunked(lambda a, b: np.concatenate(
            [_rotvec(rw(a, b)[0]), _rotvec(fit["body_pose"].read(a, b)).reshape(b - a, -1)], 1), t, CHUNK))
        z.add_chunks("root_orient", (t, 3), f32, chunked(lambda a, b: _rotvec(rw(a, b)[0]), t, CHUNK))
        z.add_chunks("trans", (t, 3), f32, chunked(lambda a, b: rw(a, b)[1] - root_rest, t, CHUNK))
        groups = {"pose_body": (0, jj)}
        if surface in ("smpl", "smplx"):
            groups = {"pose_body": (0, 21)}
            if surface == "smplx" and jj >= 54:
                groups.update(pose_jaw=(21, 22), pose_eye=(22, 24), pose_hand=(24, 54))
        for name, (lo, hi) in groups.items():
            z.add_chunks(name, (t, 3 * (hi - lo)), f32, chunked(
                lambda a, b, lo=lo, hi=hi: _rotvec(fit["body_pose"].read(a, b)[:, lo:hi]).reshape(b - a, -1), t, CHUNK))
        z.add_chunks("root_orient_cam", (t, 3), f32, chunked(lambda a, b: _rotvec(fit["root_rot_cam"].read(a, b)), t, CHUNK))
        z.add_chunks("trans_cam", (t, 3), f32,
                     chunked(lambda a, b: fit["root_trans_cam"].read(a, b) - root_rest, t, CHUNK))
        z.add_chunks("body_pose", (t, jj, 3, 3), f32, (c for _, c in fit["body_pose"].chunks(CHUNK)))
        z.add_chunks("root_rot_world", (t, 3, 3), f32, chunked(lambda a, b: rw(a, b)[0], t, CHUNK))
        z.add_chunks("root_rot_cam", (t, 3, 3), f32, (c for _, c in fit["root_rot_cam"].chunks(CHUNK)))
        z.add_chunks("root_trans_world", (t, 3), f32, chunked(lambda a, b: rw(a, b)[1], t, CHUNK))
        z.add_chunks("root_trans_cam", (t, 3), f32, (c for _, c in fit["root_trans_cam"].chunks(CHUNK)))
        z.add_chunks("joints22_world", (t, 22, 3), f32, chunked(
            lambda a, b: m.world.points(fit["joints22_cam"].read(a, b).astype(np.float64)), t, CHUNK))
        z.add_chunks("joints22_cam", (t, 22, 3), f32, (c for _, c in fit["joints22_cam"].chunks(CHUNK)))
        z.add_chunks("joints2d", (t, 22, 2), f32, chunked(lambda a, b: _project(fit["joints22_cam"].read(a, b), m.K), t, CHUNK))
        z.add_chunks("confidence", (t,), f32, chunked(
            lambda a, b: dec["confidence"].read(a, b).astype(f32).mean(-1), t, CHUNK))
        z.add_chunks("joint_confidence", (t, 22), f32, (c for _, c in fit["joint_confidence"].chunks(CHUNK)))
        z.add_chunks("hidden_share", (t,), f32, (c for _, c in dec["hidden_share"].chunks(CHUNK)))
        prob = lambda a, b: 1.0 / (1.0 + np.exp(-dec["contact"].read(a, b).astype(np.float64)))  # noqa: E731
        z.add_chunks("contact", (t, 4), np.bool_, chunked(lambda a, b: prob(a, b) > 0.5, t, CHUNK))
        z.add_chunks("contact_prob", (t, 4), f32, chunked(prob, t, CHUNK))
        z.add_chunks("fit_error", (t,), f32, (c for _, c in fit["fit_error"].chunks(CHUNK)))
        z.add_chunks("token_ids", (t, dec["ids"].frame_shape[0]), dec["ids"].dtype, (c for _, c in dec["ids"].chunks(CHUNK)))
        z.add_chunks("traj_cam", (t, 9), f32, (c for _, c in dec["traj"].chunks(CHUNK)))
        if save_vertices:
            z.add_chunks("vertices_cam", (t, body.num_vertices, 3), f32, (c for _, c in fit["vertices_cam"].chunks(CHUNK)))
            z.add("faces", body.faces.numpy().astype(np.int32))


def _project(x: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection of (..., 3) camera points (depth clamped to 1 mm)."""
    x = np.asarray(x, np.float64)
    z = np.maximum(x[..., 2:], 1e-3)
    return (x[..., :2] / z) * np.diag(K)[:2] + K[:2, 2]


def _local_rotations(m: Motion, i: int):
    """Chunks (c, 3, 3) of joint i's rotation: the world root orientation for i = 0, else body_pose."""
    for a in range(0, m.num_frames, CHUNK):
        b = min(m.num_frames, a + CHUNK)
        yield m.root_world(a, b)[0] if i == 0 else m.fitted["body_pose"].read(a, b)[:, i - 1]


def write_glb_file(path: Path, m: Motion) -> None:
    """``motion.glb``: the fitted body as a skinned, animated mesh in the world frame."""
    from moro.inference.gltf import write_glb

    rest_v, rest_j = m.rest()
    write_glb(path, names=list(m.body.joint_names), parents=list(m.body.parents), rest_joints=rest_j,
              rest_vertices=rest_v, faces=m.body.faces.numpy(), weights=m.body.weights.numpy(),
              num_frames=m.num_frames, fps=m.fps, local_rotations=lambda i: _local_rotations(m, i),
              root_translation=lambda: (m.root_world(a, min(m.num_frames, a + CHUNK))[1]
                                        for a in range(0, m.num_frames, CHUNK)))


def write_bvh_file(path: Path, m: Motion) -> None:
    """``motion.bvh``: the rig's skeleton animation in the world frame (metres)."""
    from moro.inference.bvh import write_bvh

    def frames():
        for a in range(0, m.num_frames, CHUNK):
            b = min(m.num_frames, a + CHUNK)
            R, t = m.root_world(a, b)
            rots = np.concatenate([R[:, None], m.fitted["body_pose"].read(a, b).astype(np.float64)], 1)
            yield t, rots

    _, rest_j = m.rest()
    write_bvh(path, list(m.body.joint_names), list(m.body.parents), rest_j, m.num_frames, m.fps, frames())


def write_videos(out: Path, m: Motion, info, backend: str = "auto", progress=None) -> dict[str, str]:
    """``overlay.mp4`` and ``world.mp4``; returns ``{name: drawing backend}``."""
    from moro.inference.video import iter_frames
    from moro.inference.videos import write_overlay, write_world_view

    rest_v, _ = m.rest()
    faces = m.body.faces.numpy()
    fit = m.fitted

    def meshes_cam():
        for a in range(0, m.num_frames, CHUNK):
            b = min(m.num_frames, a + CHUNK)
            verts = m.vertices(a, b, "cam")
            joints, conf = fit["joints22_cam"].read(a, b), fit["joint_confidence"].read(a, b)
            for k in range(b - a):
                if progress is not None:
                    progress(1)
                yield verts[k], joints[k], conf[k].astype(np.float32), m.track.boxes[a + k]

    frames = (f.rgb for f in iter_frames(info, m.fps))
    used = {"overlay.mp4": write_overlay(out / "overlay.mp4", frames, meshes_cam(), faces, rest_v, m.K, m.fps,
                                         backend=backend)}

    def meshes_world():
        for a in range(0, m.num_frames, CHUNK):
            yield from m.vertices(a, min(m.num_frames, a + CHUNK), "world")

    root_w = np.concatenate([m.root_world(a, min(m.num_frames, a + CHUNK))[1] for a in range(0, m.num_frames, CHUNK)])
    used["world.mp4"] = write_world_view(out / "world.mp4", meshes_world(), root_w, m.world.t_c2w, faces, rest_v,
                                         m.fps, backend, progress)
    return used
