"""The SMPL-X inference path with the authors' weights: a synthetic release (the 792 names, scaled widths,
the authors' 9383 -> 2618 -> 546 -> 87 tokenizer levels) is converted, then ``moro infer VIDEO --checkpoint
converted.ckpt --body-model smplx --smplx SMPLX_NEUTRAL.npz`` runs on a tiny generated video with a fake
SMPL-X file in the real key layout. Checked: the exports (motion.npz with AMASS key names, summary.json,
GLB, BVH), one shape per sequence, the fit recovering the pose the network decodes, and an independent
SMPL-X forward pass (written here from the file's arrays, smplx-package conventions) reproducing the
exported joints from the exported parameters. Bad input: the authors' unconverted checkpoint (any stage),
an SMPL-X file of another topology, version or joint count."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from official_smplx import (BODY, SMPLX_PARENTS, STANDING_TRAJ, fake_smplx_arrays, smplx_target, write_smplx_npz,
                            write_smplx_release)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference"))
from infer_fixtures import pattern_frames, write_video  # noqa: E402

from moro.cli import main  # noqa: E402

T = 16  # frames of the test video
BODY_JOINTS = range(1, 22)  # SMPL-X joints posed in the decoded mesh (pelvis children .. wrists)


def _rotmats(rotvecs: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 3, 3) (Rodrigues, float64)."""
    th = np.linalg.norm(rotvecs, axis=-1, keepdims=True)[..., None]
    k = rotvecs / np.maximum(np.linalg.norm(rotvecs, axis=-1, keepdims=True), 1e-12)
    kx = np.zeros(k.shape[:-1] + (3, 3))
    kx[..., 0, 1], kx[..., 0, 2], kx[..., 1, 2] = -k[..., 2], k[..., 1], -k[..., 0]
    kx = kx - np.swapaxes(kx, -1, -2)
    return np.eye(3) + np.sin(th) * kx + (1 - np.cos(th)) * kx @ kx


def smplx_forward(a: dict, poses: np.ndarray, betas: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """The smplx package's SMPL-X forward (flat hands, no expression) on the file's arrays.

    Args:
        a: arrays of the model file (``v_template``, ``shapedirs``, ``posedirs``, ``J_regressor``, ``weights``).
        poses: (t, 165) axis-angle, root first (AMASS ``poses``); betas: (s,); trans: (t, 3) metres.
    Returns:
        (t, 10475, 3) vertices, metres.
    """
    t, s = len(poses), len(betas)
    v = a["v_template"] + a["shapedirs"][..., :s] @ betas  # (v, 3)
    J = a["J_regressor"] @ v  # (55, 3)
    R = _rotmats(poses.reshape(t, 55, 3))  # (t, 55, 3, 3)
    feat = (R[:, 1:] - np.eye(3)).reshape(t, -1)  # (t, 486)
    vp = v[None] + np.einsum("vck,tk->tvc", a["posedirs"], feat)
    G = np.zeros((t, 55, 4, 4))
    G[..., 3, 3] = 1
    for j, p in enumerate(SMPLX_PARENTS):
        local = np.zeros((t, 4, 4))
        local[:, :3, :3], local[:, :3, 3], local[:, 3, 3] = R[:, j], J[j] - (J[p] if p >= 0 else 0), 1
        G[:, j] = local if p < 0 else G[:, p] @ local
    G[..., :3, 3] -= np.einsum("tjab,jb->tja", G[..., :3, :3], J)  # relative to the rest joints
    A = np.einsum("vj,tjab->tvab", a["weights"], G)
    return np.einsum("tvab,tvb->tva", A[..., :3, :3], vp) + A[..., :3, 3] + trans[:, None]


@pytest.fixture(scope="module")
def smplx_run(tmp_path_factory):
    """Release -> convert -> ``moro infer`` (module scope: the tests below read its outputs)."""
    from moro.body import load_smplx
    from moro.convert import convert_official

    root = tmp_path_factory.mktemp("official-smplx")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MORO_CACHE_DIR", str(root / "cache"))
        arrays = fake_smplx_arrays(seed=0)
        smplx = write_smplx_npz(root / "body_models" / "SMPLX_NEUTRAL.npz", arrays)
        rng = np.random.default_rng(1)
        pose = np.zeros((54, 3))
        pose[[j - 1 for j in BODY_JOINTS]] = rng.normal(0, 0.25, (21, 3))
        body = load_smplx(smplx, body_only=True)
        local = body(torch.from_numpy(_rotmats(pose)).float(), body.zero_betas(), torch.eye(3), torch.zeros(3))
        release = write_smplx_release(root / "authors", arrays, local.vertices.numpy())
        ckpt = root / "moro_paper.ckpt"
        report = convert_official(release.ckpt, release.conn_dir, release.stats_path, ckpt, target=smplx_target(),
                                  smplx=smplx)
        video = write_video(root / "clip.mp4", pattern_frames(T, 96, 128))
        boxes = root / "boxes.json"
        boxes.write_text(json.dumps({"boxes": [{"frame": 0, "cxcys": [64.0, 48.0, 0.45]}]}))
        out = root / "out"
        argv = ["infer", str(video), "--checkpoint", str(ckpt), "--body-model", "smplx", "--smplx", str(smplx),
                "--boxes", str(boxes), "--focal", "150", "--out", str(out), "--no-videos", "--no-progress",
                "--cache-dir", str(root / "infer-cache")]
        assert main(argv) == 0
    return dict(root=root, arrays=arrays, smplx=smplx, pose=pose, release=release, ckpt=ckpt, report=report,
                video=video, boxes=boxes, out=out, argv=argv)


def _motion(run) -> dict[str, np.ndarray]:
    with np.load(run["out"] / "motion.npz") as z:
        return {k: z[k] for k in z.files}


def test_official_smplx_infer_writes_the_anny_path_exports(smplx_run):
    from moro.inference.bvh import read_bvh
    from moro.inference.gltf import read_glb

    out = smplx_run["out"]
    assert sorted(p.name for p in out.iterdir()) == ["motion.bvh", "motion.glb", "motion.npz", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is True and summary["frames"] == T
    assert summary["model"]["body_model"] == "smplx/neutral/body" and summary["model"]["tokens"] == 87
    assert summary["fit"]["mean_fit_error_mm"] < 1.0  # the decoded mesh is an SMPL-X body: fitted exactly
    doc, _ = read_glb(out / "motion.glb")
    assert len(doc["nodes"]) == 55 + 1
    bvh = read_bvh(out / "motion.bvh")
    assert len(bvh.motion) == T and len(bvh.names) == 55
    payload = torch.load(smplx_run["ckpt"], weights_only=True, mmap=True)
    assert payload["body"]["model"] == "smplx" and payload["body"]["topology"] == "body"
    assert payload["body"]["reference"]["num_vertices"] == 10475


def test_official_smplx_motion_npz_has_amass_keys(smplx_run):
    m = _motion(smplx_run)
    shapes = {"poses": (T, 165), "root_orient": (T, 3), "trans": (T, 3), "betas": (10,), "pose_body": (T, 63),
              "pose_jaw": (T, 3), "pose_eye": (T, 6), "pose_hand": (T, 90), "root_orient_cam": (T, 3),
              "trans_cam": (T, 3), "body_pose": (T, 54, 3, 3), "joints22_cam": (T, 22, 3),
              "joints22_world": (T, 22, 3), "joints2d": (T, 22, 2), "token_ids": (T, 87), "joint_names": (55,)}
    for k, s in shapes.items():
        assert m[k].shape == s, k
    assert str(m["surface_model_type"]) == "smplx" and str(m["gender"]) == "neutral"
    assert float(m["mocap_frame_rate"]) == 30.0 and str(m["body_model"]) == "smplx/neutral/body"
    p = m["poses"]
    np.testing.assert_allclose(p[:, :3], m["root_orient"], atol=1e-6)
    np.testing.assert_allclose(p[:, 3:66], m["pose_body"], atol=1e-6)
    np.testing.assert_allclose(p[:, 66:69], m["pose_jaw"], atol=1e-6)
    np.testing.assert_allclose(p[:, 69:75], m["pose_eye"], atol=1e-6)
    np.testing.assert_allclose(p[:, 75:], m["pose_hand"], atol=1e-6)
    assert np.all(m["pose_eye"] == 0)  # the eyes move no body-mesh vertex: rest pose, not the fit's arbitrary value


def test_official_smplx_fit_recovers_the_decoded_body(smplx_run):
    """The network decodes one posed SMPL-X body every frame: the fit gets that pose back, one shape per
    sequence, and the decoder's trajectory places it (upright, 3.5 m ahead)."""
    from moro.geometry import rot6d_to_rotmat, rotvec_to_rotmat

    m = _motion(smplx_run)
    want = rotvec_to_rotmat(torch.from_numpy(smplx_run["pose"][:21]))  # (21, 3, 3)
    got = torch.from_numpy(m["body_pose"][:, :21]).double()
    cos = ((want.transpose(-1, -2) @ got).diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    angle = torch.arccos(cos.clamp(-1, 1))
    # the fake model's parts are 3 cm blobs: leaf joints (feet, head) are weakly determined by smplfitter's
    # part-wise fit (up to ~0.6 rad here at < 1 mm vertex error); the others come back to a few mrad
    worst = angle.max(0).values
    assert float(worst.median()) < 0.01 and int((worst < 0.03).sum()) >= 17, worst
    assert float(np.abs(m["betas"]).max()) < 0.05 and float(m["fit_error"].max()) < 1e-3
    # placed with the network's refined camera trajectory (root-centred local mesh: root joint = t)
    traj = torch.from_numpy(m["traj_cam"]).double()
    np.testing.assert_allclose(m["root_rot_cam"], rot6d_to_rotmat(traj[:, :6]).numpy(), atol=2e-3)
    np.testing.assert_allclose(m["root_trans_cam"], m["traj_cam"][:, 6:], atol=1e-3)
    np.testing.assert_allclose(m["traj_cam"], np.broadcast_to(STANDING_TRAJ, (T, 9)), atol=0.1)  # upright, in view


@pytest.mark.parametrize("frame", ["world", "cam"])
def test_official_smplx_reposing_reproduces_the_exported_joints(smplx_run, frame):
    """AMASS-style parameters through an independent SMPL-X forward (full 10475-vertex mesh, smplx
    conventions: ``trans`` is SMPL's translation) give ``joints22_<frame>`` back."""
    m, a = _motion(smplx_run), smplx_run["arrays"]
    poses = m["poses"].astype(np.float64)
    if frame == "cam":
        poses = np.concatenate([m["root_orient_cam"], poses[:, 3:]], 1)
    trans = m["trans" if frame == "world" else "trans_cam"].astype(np.float64)
    verts = smplx_forward(a, poses, m["betas"].astype(np.float64), trans)
    joints = np.einsum("jv,tvc->tjc", a["J_regressor"][:22], verts)
    np.testing.assert_allclose(joints, m[f"joints22_{frame}"], atol=2e-4)  # metres (float32 exports)


# ------------------------------------------------------------------ bad input
def _infer_error(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def test_official_unconverted_checkpoints_are_named_at_infer(smplx_run, tmp_path, capsys):
    argv = list(smplx_run["argv"])
    i = argv.index("--checkpoint") + 1
    argv[argv.index("--out") + 1] = str(tmp_path / "out")
    argv[i] = str(smplx_run["release"].ckpt)
    err = _infer_error(argv, capsys)
    assert "the authors' MoRo checkpoint (Lightning, unconverted)" in err and "moro convert official" in err
    state = smplx_run["release"].state
    stage2 = {k: v for k, v in state.items() if not k.startswith(("backbone.", "mask_transformer.dst_former.img_",
                                                                     "mask_transformer.dst_former.d_"))}
    torch.save({"state_dict": stage2, "epoch": 3}, tmp_path / "motion_pretrain.ckpt")
    argv[i] = str(tmp_path / "motion_pretrain.ckpt")
    err = _infer_error(argv, capsys)
    assert "training stage motion_pretrain (stage 2)" in err and "image encoder" in err
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def converted_model(smplx_run):
    from moro.inference.loading import load_model

    return load_model(smplx_run["ckpt"])


def _resolve(run, model, arrays: dict, tmp_path) -> object:
    from moro.inference.loading import body_record, resolve_body

    path = write_smplx_npz(tmp_path / "SMPLX_NEUTRAL.npz", arrays)
    return resolve_body(model, body_record(run["ckpt"]), "smplx", None, str(path))


def test_official_smplx_of_another_topology_is_refused(smplx_run, converted_model, tmp_path, monkeypatch):
    from moro.inference import BodyModelMismatchError

    monkeypatch.setenv("MORO_CACHE_DIR", str(tmp_path / "cache"))
    arrays = dict(smplx_run["arrays"])
    arrays["f"] = arrays["f"][:, [0, 2, 1]].copy()  # same counts, other faces
    with pytest.raises(BodyModelMismatchError, match="another mesh topology.*converted from the authors' release"):
        _resolve(smplx_run, converted_model, arrays, tmp_path)


def test_official_smplx_of_another_version_warns(smplx_run, converted_model, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MORO_CACHE_DIR", str(tmp_path / "cache"))
    arrays = dict(smplx_run["arrays"])
    arrays["shapedirs"] = 1.05 * arrays["shapedirs"]
    with caplog.at_level(logging.WARNING, logger="moro.inference.loading"):
        body = _resolve(smplx_run, converted_model, arrays, tmp_path)
    assert body.num_vertices == BODY and "different SMPL-X version" in caplog.text


@pytest.mark.parametrize("edit, message", [
    (lambda a: a.update(v_template=a["v_template"][:-10]), r"'v_template' must have shape \(10475, 3\)"),
    (lambda a: a.update(J_regressor=a["J_regressor"][:52]), r"'J_regressor'.*\(52 joints: the SMPL\+H"),
    (lambda a: a.update(shapedirs=a["shapedirs"][..., :16]), r"'shapedirs' must have 400 .* or 20"),
])
def test_official_smplx_files_of_other_layouts_are_named(smplx_run, converted_model, tmp_path, monkeypatch, edit, message):
    from moro.inference import InferenceError

    monkeypatch.setenv("MORO_CACHE_DIR", str(tmp_path / "cache"))
    arrays = dict(smplx_run["arrays"])
    edit(arrays)
    with pytest.raises(InferenceError, match=r"SMPLX_NEUTRAL\.npz: key " + message):
        _resolve(smplx_run, converted_model, arrays, tmp_path)


def test_official_smplx_motion_feeds_moro_eval(smplx_run, monkeypatch):
    """The exported motion.npz becomes a ``moro eval`` prediction: posed with the full SMPL-X (10475
    vertices), its 22 joints equal the exported ones (SMPL-X's own regressor: the labelled deviation used
    without an smplx2smpl matrix; with one, the same vertices go through the transfer)."""
    from moro.body import load_smplx
    from moro.metrics.predictions import moro_motion_to_prediction

    monkeypatch.setenv("MORO_CACHE_DIR", str(smplx_run["root"] / "cache"))
    full = load_smplx(smplx_run["smplx"])
    pr = moro_motion_to_prediction(smplx_run["out"] / "motion.npz", sequence="rec/master", smplx=full, frame_offset=1)
    m = _motion(smplx_run)
    np.testing.assert_array_equal(pr.frame_ids, np.arange(1, T + 1))
    np.testing.assert_allclose(pr.joints_cam, m["joints22_cam"], atol=2e-4)
    assert pr.vertices_cam.shape == (T, 10475, 3) and "DEVIATION" in pr.scoring
