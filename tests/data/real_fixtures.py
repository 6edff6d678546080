"""Fixture writers for the real-dataset reader tests (no tests here).

Body models: the small synthetic SMPL-like (24 joints, 72 vertices) and SMPL-X-like (55 joints,
165 vertices) models of the protocol tests (``tests/metrics/test_metric_protocols_fixtures.py``:
three rigidly skinned vertices per joint, so the regressed joints equal the FK joints exactly).
Writers produce the *real* on-disk layouts of ``shared/data-formats.md`` (keys, dtypes, shapes,
folder names); oracles compute joints independently with scipy rotations and ``BodyModel.forward``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "metrics"))
from test_metric_protocols_fixtures import (  # noqa: E402,F401
    EGO_REC, EGO_SCENE, MASTER2WORLD, RICH_K, RICH_SCAN2CAM, RICH_SEQ, RICH_VID, SUB2MASTER, W2AZ, fk_joints22, motion_params,
    project, rigid, synthetic_models, write_egobody, write_rich,
)

Z2Y = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])  # written out independently of moro.data.formats


def rot(rotvec) -> np.ndarray:
    return Rotation.from_rotvec(np.asarray(rotvec).reshape(-1, 3)).as_matrix().reshape(np.shape(rotvec)[:-1] + (3, 3))


def oracle_joints(body, global_orient, full_pose, betas, transl, R_p2x=np.eye(3), t_p2x=np.zeros(3)) -> np.ndarray:
    """FK joints 0..21 (t, 22, 3) of ``body`` for axis-angle ``full_pose`` (t, j-1, 3), moved by x -> R x + t."""
    f = global_orient.shape[0]
    b = torch.tensor(np.broadcast_to(np.asarray(betas, np.float64), (f, body.num_betas)).copy())
    root = body.smpl_transl_to_root_trans(torch.tensor(np.asarray(transl, np.float64)), b).numpy()
    R = R_p2x @ rot(global_orient)
    out = body(torch.tensor(rot(full_pose)), b, torch.tensor(R), torch.tensor(root @ R_p2x.T + t_p2x))
    return out.joints[:, :22].numpy()


def amass_motion(frames: int, seed: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(frames, width) axis-angle poses of an upright (Z-up) walker and (frames, 3) trans (Z up)."""
    rng = np.random.default_rng(seed)
    s = np.arange(frames) / 120.0
    poses = 0.25 * np.sin(s[:, None] * rng.uniform(1, 4, width) + rng.uniform(0, 6, width))
    yaw = 0.6 * s + rng.uniform(0, 6)
    # SMPL rest frame is Y up; an upright body in a Z-up world: R_z(yaw) @ R_x(+90 deg)
    poses[:, :3] = Rotation.from_matrix(Rotation.from_rotvec(np.stack([np.zeros_like(yaw), np.zeros_like(yaw), yaw], 1)).as_matrix()
                                        @ Rotation.from_rotvec([np.pi / 2, 0, 0]).as_matrix()).as_rotvec()
    trans = np.stack([0.8 * s, 0.3 * np.sin(s), 0.95 + 0.02 * np.sin(5 * s)], 1)
    return poses, trans


def write_amass_n(path: Path, frames: int, fps: float, seed: int = 0, gender=np.array("neutral")) -> dict:
    """SMPL-X N release ``*_stageii.npz`` with every key of the real files."""
    poses, trans = amass_motion(frames, seed, 165)
    betas = np.zeros(16)
    betas[:10] = np.random.default_rng(seed).normal(scale=0.5, size=10)
    d = dict(gender=gender, surface_model_type=np.array("smplx"), mocap_frame_rate=np.array(float(fps)),
             mocap_time_length=np.array(frames / fps), trans=trans, poses=poses, betas=betas, num_betas=np.array(16),
             markers_latent=np.zeros((53, 3)), latent_labels=np.array(["C7"] * 53), markers_latent_vids=np.array({"C7": 1}, dtype=object),
             expression=np.zeros((frames, 10)))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **d)
    return d


def write_amass_g(path: Path, frames: int, fps: float, seed: int = 0, gender=b"female") -> dict:
    """SMPL+H G release ``*_poses.npz`` (note ``mocap_framerate``)."""
    poses, trans = amass_motion(frames, seed, 156)
    betas = np.zeros(16)
    betas[:10] = np.random.default_rng(seed + 7).normal(scale=0.5, size=10)
    d = dict(poses=poses, betas=betas, dmpls=np.zeros((frames, 8)), trans=trans, gender=np.array(gender),
             mocap_framerate=np.array(float(fps)))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **d)
    return d


BEDLAM_K = np.array([[1500.0, 0, 640.0], [0, 1500.0, 360.0], [0, 0, 1]])
BEDLAM_EXT = rigid(Rotation.from_rotvec([0.1, 0.4, 0.0]).as_matrix(), [0.3, -1.2, 0.5])


def bedlam_person(frames: int, seed: int, depth: float = 5.0) -> dict:
    """pose_cam (t, 165) / trans_cam (t, 3) of a person ``depth`` m in front of an OpenCV camera."""
    p = motion_params(frames, seed, body_pose_dim=162)  # upright in the camera frame
    pose = np.concatenate([p["global_orient"], p["body_pose"]], 1)
    trans = p["transl"] + np.array([0.0, 0.0, depth - 3.0]) - BEDLAM_EXT[:3, 3]
    return {"pose_cam": pose, "trans_cam": trans, "shape": np.concatenate([p["betas"][0], [0.0]])}


def write_bedlam_scene(path: Path, scene_frames: dict, gender=b"neutral", K=BEDLAM_K) -> dict:
    """One processed label file: ``scene_frames`` = {seq: {person_key: (frame ids, person dict)}}."""
    rows = {k: [] for k in ("imgname", "center", "scale", "pose_cam", "pose_world", "shape", "trans_cam", "trans_world",
                            "gtkps", "cam_int", "cam_ext", "gender", "proj_verts")}
    for seq, people in scene_frames.items():
        for _, (frames, person) in people.items():
            for i, f in enumerate(frames):
                rows["imgname"].append(f"{seq}/{seq}_{f:04d}.png")
                rows["center"].append([640.0, 360.0])
                rows["scale"].append(2.0)
                rows["pose_cam"].append(person["pose_cam"][i])
                rows["pose_world"].append(np.zeros(165))
                rows["shape"].append(person["shape"])
                rows["trans_cam"].append(person["trans_cam"][i])
                rows["trans_world"].append(np.zeros(3))
                rows["gtkps"].append(np.zeros((127, 3)))
                rows["cam_int"].append(K)
                rows["cam_ext"].append(BEDLAM_EXT)
                rows["gender"].append(gender)
                rows["proj_verts"].append(np.zeros((437, 2)))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: np.array(v, dtype=object if k == "gender" else None) for k, v in rows.items()})
    return rows
