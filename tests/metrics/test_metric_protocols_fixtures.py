"""Fixture writers for the protocol tests (imported by test_metric_protocols_*.py; holds no tests).

- Small synthetic SMPL-like (24 joints, 72 vertices) and SMPL-X-like (55 joints, 165 vertices)
  body models: three vertices per joint, rigidly skinned to it, offsets summing to zero, so the
  regressed joint (mean of its three vertices) equals the FK joint exactly. A one-hot vertex
  transfer maps the SMPL-X-like mesh onto the SMPL-like one joint by joint.
- Writers of the *real* on-disk layouts (data-formats.md): EgoBody (+ EgoBody-Occ files),
  RICH (GVHMR preprocessed labels, OpenCV XML calibration), WHAM's wham_output.pkl (joblib
  layout), GVHMR's hmr4d_results.pt.
"""

from __future__ import annotations

import csv
import json
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from moro.body.model import BodyModel
from moro.body.model_data import BodyModelData
from moro.body.smpl_files import SMPL_PARENTS, SMPLX_PARENTS

REST22 = np.array([
    [0, 0, 0], [0.06, -0.09, 0], [-0.06, -0.09, 0], [0, 0.11, 0], [0.10, -0.47, 0], [-0.10, -0.47, 0],
    [0, 0.25, 0], [0.09, -0.87, -0.04], [-0.09, -0.87, -0.04], [0, 0.30, 0.02], [0.12, -0.93, 0.08],
    [-0.12, -0.93, 0.08], [0, 0.51, 0], [0.08, 0.41, 0], [-0.08, 0.41, 0], [0, 0.60, 0.05], [0.19, 0.44, 0],
    [-0.19, 0.44, 0], [0.45, 0.42, -0.02], [-0.45, 0.42, -0.02], [0.71, 0.43, 0], [-0.71, 0.43, 0],
])  # approximate SMPL rest joints, metres
FOOT_JOINTS = (7, 10, 8, 11)


def _body(kind: str, parents: tuple[int, ...], seed: int, gender: str) -> BodyModel:
    rng = np.random.default_rng(seed)
    j = len(parents)
    rest = np.zeros((j, 3))
    rest[:22] = REST22
    for i in range(22, j):  # SMPL hands / SMPL-X jaw, eyes, fingers: short bones off their parent
        side = -1.0 if i in (23, 41) or (i >= 40) else 1.0
        rest[i] = rest[parents[i]] + np.array([0.04 * side, 0.01, 0.01]) + rng.normal(scale=0.005, size=3)
    a, b = rng.normal(scale=0.02, size=(2, j, 3))
    offsets = np.stack([a, b, -(a + b)], axis=1)  # (j, 3, 3), sum over the 3 vertices = 0
    v = (rest[:, None] + offsets).reshape(-1, 3)  # (3j, 3)
    owner = np.repeat(np.arange(j), 3)
    weights = np.eye(j)[owner]  # (3j, j) rigid skinning
    reg = weights.T / 3.0  # (j, 3j): mean of each joint's three vertices
    shapedirs = rng.normal(scale=0.005, size=(3 * j, 3, 10))
    data = BodyModelData(
        name=f"{kind}/{gender}", v_template=torch.tensor(v), shapedirs=torch.tensor(shapedirs),
        j_template=torch.tensor(reg @ v), j_shapedirs=torch.tensor(np.einsum("jv,vcs->jcs", reg, shapedirs)),
        weights=torch.tensor(weights), posedirs=None, parents=list(parents), joint_names=[f"j{i}" for i in range(j)],
        faces=torch.tensor([[0, 1, 2]]), joints22_regressor=torch.tensor(reg[:22]),
        coco17_regressor=torch.tensor(reg[[15] * 5 + [16, 17, 18, 19, 20, 21, 1, 2, 4, 5, 7, 8]]),
        foot_vertices=torch.tensor([3 * k for k in FOOT_JOINTS]), joint_regressor=torch.tensor(reg),
        meta={"kind": kind, "gender": gender},
    )
    return BodyModel(data).double()


_CACHE: dict = {}


def synthetic_models(kind: str, gender: str) -> BodyModel:
    """The synthetic :data:`BodyModelSource`: (kind, gender) -> small body (gendered shapes differ)."""
    key = (kind, gender)
    if key not in _CACHE:
        seed = {"neutral": 0, "female": 1, "male": 2}[gender] + (10 if kind == "smplx" else 0)
        _CACHE[key] = _body(kind, SMPLX_PARENTS if kind == "smplx" else SMPL_PARENTS, seed, gender)
    return _CACHE[key]




def smplx_to_smpl_transfer() -> torch.Tensor:
    """(72, 165) one-hot transfer: SMPL-like joint j's vertices <- SMPL-X-like joint j (hands <- index1)."""
    m = torch.zeros(72, 165, dtype=torch.float64)
    src_joint = list(range(22)) + [25, 40]
    for j, s in enumerate(src_joint):
        for k in range(3):
            m[3 * j + k, 3 * s + k] = 1.0
    return m


# ----------------------------------------------------------------------------- motions
def rot(rotvec) -> np.ndarray:
    return Rotation.from_rotvec(rotvec).as_matrix()


def motion_params(frames: int, seed: int, *, body_pose_dim: int = 63, upright_in: np.ndarray | None = None) -> dict:
    """smplx-style parameters (float64) of a person walking ~1 m/s, upright for an OpenCV camera.

    ``upright_in``: rotation (3, 3) camera -> parameter frame (identity: parameters in the camera).
    """
    rng = np.random.default_rng(seed)
    s = np.arange(frames) / 30.0
    t = s - np.sin(2 * np.pi * 1.5 * s) / (2 * np.pi * 1.5)  # motion time: pauses every 2/3 s (foot contacts)
    R_up = upright_in if upright_in is not None else np.eye(3)
    yaw = 0.3 * np.sin(0.7 * t)
    orient = [R_up @ rot([np.pi, 0, 0]) @ rot([0, y, 0]) for y in yaw]
    path = np.stack([-0.5 + 1.0 * t, 0.2 + 0.02 * np.sin(6 * t), 3.0 + 0.3 * np.sin(t)], axis=1)  # camera frame
    body_pose = 0.3 * np.sin(t[:, None] * rng.uniform(1, 3, body_pose_dim) + rng.uniform(0, 6, body_pose_dim))
    return {
        "global_orient": Rotation.from_matrix(np.stack(orient)).as_rotvec(),
        "body_pose": body_pose,
        "betas": np.tile(rng.normal(scale=0.5, size=10), (frames, 1)),
        "transl": path @ R_up.T,
    }


def transform_params(body: BodyModel, p: dict, R: np.ndarray, t: np.ndarray) -> dict:
    """The same bodies moved by x -> R x + t (orientation and SMPL transl updated exactly)."""
    betas = torch.tensor(np.asarray(p["betas"]), dtype=torch.float64)
    j0 = body.root_joint_rest(betas).numpy()  # (F, 3)
    root = np.asarray(p["transl"]) + j0
    out = dict(p)
    out["global_orient"] = Rotation.from_matrix(R @ rot(p["global_orient"])).as_rotvec()
    out["transl"] = root @ R.T + t - j0
    return out


def fk_joints22(body: BodyModel, p: dict) -> np.ndarray:
    """Independent oracle: FK joints 0..21 of ``body`` posed with ``p`` (via BodyModel.forward)."""
    f = p["global_orient"].shape[0]
    j = body.num_joints
    full = np.zeros((f, j - 1, 3))
    full.reshape(f, -1)[:, : p["body_pose"].shape[1]] = p["body_pose"]
    betas = torch.tensor(np.asarray(p["betas"]))
    pose = torch.tensor(rot(full.reshape(-1, 3)).reshape(f, j - 1, 3, 3))
    root = body.smpl_transl_to_root_trans(torch.tensor(p["transl"]), betas)
    out = body(pose, betas, torch.tensor(rot(p["global_orient"])), root)
    return out.joints[:, :22].numpy()


def rigid(R: np.ndarray, t) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, t
    return T


# ----------------------------------------------------------------------------- EgoBody
EGO_REC = "recording_20210921_S11_S10_01"
EGO_SCENE = "seminar_j716"
MASTER2WORLD = rigid(rot([-np.pi / 2 + 0.1, 0.4, 0.0]), [2.0, 1.5, -0.7])
SUB2MASTER = {"sub_2": rigid(rot([0.0, -0.6, 0.05]), [1.5, 0.0, 0.5])}


def write_egobody(root: Path, *, frames: int = 30, start: int = 5, end: int = 24, mask_rows: int | None = None,
                  nan_outside: bool = True, seed: int = 0) -> dict:
    """EgoBody + EgoBody-Occ layout for one recording seen from master and sub_2.

    Returns the SMPL-X parameters of frames 1..frames (master camera frame) and the masks.
    Fits outside [start, end] hold NaN (``nan_outside``) to prove they are never read.
    """
    p = motion_params(frames, seed)
    rng = np.random.default_rng(seed + 1)
    fit_root = root / "smplx_interactee" / EGO_REC / "body_idx_1" / "results"
    for i in range(frames):
        frame = i + 1
        fit = {k: np.asarray(v[i : i + 1], dtype=np.float32) for k, v in p.items()}
        fit.update({k: rng.normal(scale=0.1, size=(1, 3)).astype(np.float32) for k in ("jaw_pose", "leye_pose", "reye_pose")})
        fit.update({k: rng.normal(scale=0.5, size=(1, 12)).astype(np.float32) for k in ("left_hand_pose", "right_hand_pose")})
        fit["expression"] = np.zeros((1, 10), np.float32)
        if nan_outside and not start <= frame <= end:
            fit = {k: np.full_like(v, np.nan) for k, v in fit.items()}
        path = fit_root / f"frame_{frame:05d}" / "000.pkl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            pickle.dump(fit, fh)
    cal = root / "calibrations" / EGO_REC / "cal_trans"
    (cal / "kinect12_to_world").mkdir(parents=True, exist_ok=True)
    (cal / "kinect12_to_world" / f"{EGO_SCENE}.json").write_text(json.dumps({"trans": MASTER2WORLD.tolist()}))
    (cal / "kinect_13to12_color.json").write_text(json.dumps({"trans": SUB2MASTER["sub_2"].tolist()}))
    masks = {}
    for view in ("master", "sub_2"):
        K = [[918.0, 0, 958.0], [0, 917.0, 550.0], [0, 0, 1]]
        cam = root / "kinect_cam_params" / f"kinect_{view}"
        cam.mkdir(parents=True, exist_ok=True)
        (cam / "Color.json").write_text(json.dumps({"f": [918.0, 917.0], "c": [958.0, 550.0], "camera_mtx": K,
                                                    "k": [0.1, -0.05, 0, 0, 0]}))
        n = mask_rows if mask_rows is not None else end - start + 1
        m = (rng.random((n, 25)) > 0.3).astype(np.float64)
        m[0, :22] = 1
        m[1, :22] = 0
        (root / "mask_joint" / EGO_REC / view).mkdir(parents=True, exist_ok=True)
        np.save(root / "mask_joint" / EGO_REC / view / "mask_joint.npy", m)
        masks[view] = m
    with open(root / "egobody_occ_info.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["recording_name", "view", "target_idx", "target_gender", "body_idx_fpv", "scene_name",
                    "target_start_frame", "target_end_frame"])
        for view in ("master", "sub_2"):
            w.writerow([EGO_REC, view, 1, "female", "0 male", EGO_SCENE, start, end])
    return {"params": p, "masks": masks, "start": start, "end": end}


# ----------------------------------------------------------------------------- RICH
RICH_SEQ = "Gym_013_burpee4"
RICH_VID = f"test/{RICH_SEQ}/cam_06"
RICH_MULTI = "test/LectureHall_009_021_reparingprojector1/cam_00"
RICH_K = np.array([[1200.0, 0, 2056.0], [0, 1200.0, 1504.0], [0, 0, 1]])
RICH_SCAN2CAM = rigid(rot([0.05, 0.3, 0.0]), [0.2, -0.1, 0.5])
W2AZ = rigid(rot([np.pi / 2, 0, 0.2]), [0.1, 0.0, 1.4])


def _xml_matrix(name: str, m: np.ndarray) -> str:
    data = " ".join(f"{x:.12g}" for x in m.reshape(-1))
    return (f"<{name} type_id=\"opencv-matrix\"><rows>{m.shape[0]}</rows><cols>{m.shape[1]}</cols><dt>d</dt>"
            f"<data>{data}</data></{name}>")


def project(x_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Independent pinhole projection (numpy): (F, N, 3) -> (F, N, 2) px."""
    uv = x_cam[..., :2] / x_cam[..., 2:3]
    return uv * K[[0, 1], [0, 1]] + K[[0, 1], [2, 2]]


def write_rich(root: Path, *, frames: int = 130, seed: int = 3) -> dict:
    """GVHMR-preprocessed RICH test labels for one single-person and one multi-person vid."""
    R_c2scan = RICH_SCAN2CAM[:3, :3].T
    cam = motion_params(frames, seed)  # camera frame
    body = synthetic_models("smplx", "female")
    scan = transform_params(body, cam, R_c2scan, -R_c2scan @ RICH_SCAN2CAM[:3, 3])
    uv = project(fk_joints22(body, cam), RICH_K)
    lo, hi = uv.min(1), uv.max(1)
    bbx = np.concatenate([(lo + hi) / 2, 1.2 * (hi - lo).max(1, keepdims=True)], axis=1)  # cx, cy, size px
    t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    labels, preproc = {}, {}
    for vid in (RICH_VID, RICH_MULTI):
        labels[vid] = {"frame_id": torch.arange(frames) + 45, "gender": "female",
                       "gt_smplx_params": {k: t(v) for k, v in scan.items()}}
        preproc[vid] = {"bbx_xys": t(bbx), "img_wh": torch.tensor([4112, 3008]), "kp2d": torch.zeros(frames, 17, 3)}
    torch.save(labels, root / "rich_test_labels.pt")
    torch.save(preproc, root / "rich_test_preproc.pt")
    xml = root / "scan_calibration" / "Gym" / "calibration"
    xml.mkdir(parents=True, exist_ok=True)
    (xml / "006.xml").write_text(
        "<?xml version=\"1.0\"?>\n<opencv_storage>\n" + _xml_matrix("CameraMatrix", RICH_SCAN2CAM[:3])
        + _xml_matrix("Intrinsics", RICH_K) + _xml_matrix("Distortion", np.zeros((1, 5))) + "\n</opencv_storage>\n")
    (root / "w2az_sahmr.json").write_text(json.dumps({"Gym_scan_camcoord": W2AZ.tolist()}))
    (root / "test.txt").write_text(
        "sequence_name\tcapture_name\tscan_name\tid\tmoving_cam\tgender\tscene\taction/scene-interaction\tsubjects\tview_id\n"
        f"{RICH_SEQ}\tGym\tscan_camcoord\t013\tX\tfemale\tX\tV\tV\t0,4,5,6\n")
    return {"cam_params": cam, "scan_params": scan, "bbx_xys": bbx}


# ----------------------------------------------------------------------------- WHAM / GVHMR
def write_joblib_like(path: Path, obj) -> None:
    """Write ``obj`` as ``joblib.dump`` lays it out (NumpyArrayWrapper + aligned raw bytes), without joblib."""

    class NumpyArrayWrapper:  # pickled under joblib's module path
        def __init__(self, a: np.ndarray):
            self.subclass, self.shape, self.order, self.dtype = np.ndarray, a.shape, "C", a.dtype
            self.allow_mmap, self.numpy_array_alignment_bytes = True, 16

    NumpyArrayWrapper.__module__ = "joblib.numpy_pickle"
    NumpyArrayWrapper.__qualname__ = "NumpyArrayWrapper"
    fake = types.ModuleType("joblib.numpy_pickle")
    fake.NumpyArrayWrapper = NumpyArrayWrapper
    saved = {k: sys.modules.get(k) for k in ("joblib", "joblib.numpy_pickle")}
    sys.modules.setdefault("joblib", types.ModuleType("joblib"))
    sys.modules["joblib.numpy_pickle"] = fake

    class Pickler(pickle._Pickler):
        def save(self, o, save_persistent_id=True):
            if isinstance(o, np.ndarray) and not o.dtype.hasobject:
                super().save(NumpyArrayWrapper(o))
                self.framer.commit_frame(force=True)
                pad = 16 - (self._fh.tell() + 1) % 16
                self._fh.write(bytes([pad]) + b"\xff" * pad + np.ascontiguousarray(o).tobytes())
                return
            super().save(o, save_persistent_id)

    try:
        with open(path, "wb") as fh:
            p = Pickler(fh, protocol=4)
            p._fh = fh
            p.dump(obj)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
