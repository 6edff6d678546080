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
    """One processed label file: ``scene_frames`` = {seq: {person_key: (frame ids, person dict)}}.

    A person dict may carry per-frame ``cam_ext`` (t, 4, 4) / ``cam_int`` (t, 3, 3); else BEDLAM_EXT / ``K``."""
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
                rows["cam_int"].append(person["cam_int"][i] if "cam_int" in person else K)
                rows["cam_ext"].append(person["cam_ext"][i] if "cam_ext" in person else BEDLAM_EXT)
                rows["gender"].append(gender)
                rows["proj_verts"].append(np.zeros((437, 2)))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: np.array(v, dtype=object if k == "gender" else None) for k, v in rows.items()})
    return rows


# --------------------------------------------------------------------------- BEDLAM raw (Unreal render) layout
_PNG_CACHE: dict = {}


def bedlam_png_bytes() -> bytes:
    """A stored 1280 x 720 frame: grey with a red 40 x 20 block in the top-left corner (to see rotations)."""
    if "png" not in _PNG_CACHE:
        import io

        from PIL import Image

        a = np.full((720, 1280, 3), 120, np.uint8)
        a[:20, :40] = (255, 0, 0)
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PNG")
        _PNG_CACHE["png"] = buf.getvalue()
    return _PNG_CACHE["png"]


def bedlam_raw_motion(frames: int, seed: int) -> dict:
    """A motion_seq.npz body: SMPL-X parameters in its own Y-up frame (feet near y = 0), 11 betas."""
    rng = np.random.default_rng(seed)
    s = np.arange(frames) / 30.0
    poses = 0.25 * np.sin(s[:, None] * rng.uniform(1, 3, 165) + rng.uniform(0, 6, 165))
    yaw = 0.4 * np.sin(0.5 * s) + rng.uniform(-1, 1)
    poses[:, :3] = Rotation.from_euler("YX", np.stack([yaw, 0.05 * np.sin(s)], 1)).as_rotvec()
    trans = np.stack([0.3 * s - 0.2, 0.95 + 0.02 * np.sin(4 * s), 0.2 * s], 1)
    betas = np.zeros(11)
    betas[:10] = rng.normal(scale=0.5, size=10)
    return {"poses": poses, "trans": trans, "betas": betas}


def write_bedlam_raw(root: Path, folder: str, seqs: dict, png_frames: dict | None = None,
                     gender=np.array("neutral"), gender_sub=np.array("female")) -> None:
    """``<root>/<folder>/{be_seq.csv, ground_truth/camera/<seq>_camera.csv, png/<seq>/*.png}`` and
    ``<root>/neutral_ground_truth_motioninfo/<subject>/<id>/motion_seq.npz``.

    ``seqs`` = {seq: {"camera": {x, y, z, yaw, pitch, roll, focal_length: (F,)}, "bodies": [(body name,
    (X, Y, Z) cm, Yaw deg, start_frame, motion dict)]}}; ``png_frames`` = {seq: frame numbers with a png}
    (default: every camera row).
    """
    base = root / folder
    (base / "ground_truth" / "camera").mkdir(parents=True, exist_ok=True)
    lines = ["Index,Type,Body,X,Y,Z,Yaw,Pitch,Roll,Comment", "0,Comment,,0,0,0,0,0,0,# BEDLAM batch for moro tests"]
    for seq, spec in seqs.items():
        cam = spec["camera"]
        n = len(cam["x"])
        lines.append(f"{len(lines) - 1},Group,,{cam['x'][0]},{cam['y'][0]},{cam['z'][0]},{cam['yaw'][0]},0,0,"
                     f"sequence_name={seq};frames={n};hdri=rural_asphalt_road_4k;camera_hfov=52.0")
        for body, (X, Y, Z), yaw, start, motion in spec["bodies"]:
            lines.append(f"{len(lines) - 1},Body,{body},{X},{Y},{Z},{yaw},0.0,0.0,"
                         f"start_frame={start};texture_body=skin_f_1;texture_clothing=texture_05")
            subject, _, mid = body.rpartition("_")
            mp = root / "neutral_ground_truth_motioninfo" / subject / mid / "motion_seq.npz"
            mp.parent.mkdir(parents=True, exist_ok=True)
            np.savez(mp, poses=motion["poses"], trans=motion["trans"], betas=motion["betas"], gender=gender,
                     gender_sub=gender_sub, motion_info=np.array(["CMU", "walk"], dtype=object))
        rows = ["name,x,y,z,yaw,pitch,roll,focal_length"]
        rows += [f"{seq}_{i:04d},{cam['x'][i]},{cam['y'][i]},{cam['z'][i]},{cam['yaw'][i]},{cam['pitch'][i]},{cam['roll'][i]},"
                 f"{cam['focal_length'][i]}" for i in range(n)]
        (base / "ground_truth" / "camera" / f"{seq}_camera.csv").write_text("\n".join(rows) + "\n")
        png = base / "png" / seq
        png.mkdir(parents=True, exist_ok=True)
        for f in (png_frames or {}).get(seq, range(n)):
            (png / f"{seq}_{f:04d}.png").write_bytes(bedlam_png_bytes())
    (base / "be_seq.csv").write_text("\n".join(lines) + "\n")


def bedlam_camera(frames: int, x=0.0, y=0.0, z=120.0, yaw=5.0, pitch=-4.0, roll=1.5, focal=40.0, move=True) -> dict:
    """Per-frame Unreal camera (cm, degrees, mm); ``move``: drifts sideways and pans slowly."""
    i = np.arange(frames, dtype=np.float64)
    m = 1.0 if move else 0.0
    return {"x": x + 0 * i, "y": y + m * 0.5 * i, "z": z + 0 * i, "yaw": yaw + m * 0.1 * i, "pitch": pitch + 0 * i,
            "roll": roll + 0 * i, "focal_length": focal + 0 * i}


def bedlam_raw_oracle(cam: dict, i: int, placement_cm, body_yaw: float, closeup: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) motion frame -> camera of frame i, written out from the BEDLAM authors' conventions with scipy:
    camera ``C = R_z(roll') R_x(pitch') R_y(yaw')`` of the negated angles (roll' + 90 for closeups), body
    ``R_y(Yaw - 90) diag(1, -1, -1)``, Unreal (x, y, z) cm -> (y, -z, x) m."""
    to_cv = lambda v: np.array([v[1], -v[2], v[0]]) / 100.0  # noqa: E731
    r = -cam["roll"][i] + (90.0 if closeup else 0.0)
    C = Rotation.from_euler("ZXY", [r, -cam["pitch"][i], -cam["yaw"][i]], degrees=True).as_matrix()
    B = Rotation.from_euler("Y", body_yaw - 90.0, degrees=True).as_matrix() @ np.diag([1.0, -1.0, -1.0])
    c = to_cv([cam["x"][i], cam["y"][i], cam["z"][i]])
    return C @ B, C @ (to_cv(placement_cm) - c)
