"""moro's prediction files (strict reader) and the WHAM / GVHMR adapters (round trips on their formats)."""

from __future__ import annotations

import pickle
import types

import numpy as np
import pytest
import torch
from test_metric_protocols_fixtures import (
    fk_joints22,
    motion_params,
    rot,
    smplx_to_smpl_transfer,
    synthetic_models,
    transform_params,
    write_joblib_like,
)

from moro.metrics.predictions import (
    FrameMismatchError,
    NonFiniteError,
    PredictionFileError,
    PredictionSequence,
    ScoringBody,
    UnknownJointSetError,
    gvhmr_to_prediction,
    load_vertex_transfer,
    prediction_path,
    read_prediction,
    read_wham_output,
    wham_to_prediction,
    write_prediction,
)
from moro.metrics.predictions.joblib_pickle import UnsafePickleError, load_joblib_pickle

F = 12
A = rot([0.2, -1.1, 0.4])  # camera -> "world" rotation of the baselines' second trajectory
B = np.array([1.0, -0.3, 2.0])


def _pred(**kw) -> PredictionSequence:
    rng = np.random.default_rng(0)
    base = dict(sequence="rec/master", frame_ids=np.arange(3, 3 + F), fps=30.0, joints_cam=rng.normal(size=(F, 22, 3)))
    base.update(kw)
    return PredictionSequence(**base)


def _raw_npz(path, **arrays):
    good = {"format": np.array("moro-prediction"), "format_version": np.array(1), "sequence": np.array("rec/master"),
            "frame_ids": np.arange(F), "fps": np.array(30.0), "joint_set": np.array("smpl22"),
            "joints_cam": np.zeros((F, 22, 3), np.float32)}
    good.update(arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **good)
    return path


def test_prediction_file_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    pred = _pred(vertices_cam=rng.normal(size=(F, 72, 3)), topology="smpl:72", feet_cam=rng.normal(size=(F, 4, 3)),
                 params={"betas": rng.normal(size=10), "transl_cam": rng.normal(size=(F, 3))}, body_model="smpl",
                 method="m", source="s")
    path = write_prediction(prediction_path(tmp_path / "m", pred.sequence), pred)
    assert path == tmp_path / "m" / "rec" / "master.npz"
    back = read_prediction(path, "rec/master")
    np.testing.assert_allclose(back.joints_cam, pred.joints_cam, atol=1e-6)
    np.testing.assert_allclose(back.vertices_cam, pred.vertices_cam, atol=1e-6)
    np.testing.assert_array_equal(back.frame_ids, pred.frame_ids)
    np.testing.assert_array_equal(back.params["betas"], pred.params["betas"])
    assert (back.topology, back.body_model, back.method, back.fps) == ("smpl:72", "smpl", "m", 30.0)


@pytest.mark.parametrize(
    "arrays, error, match",
    [
        ({"joints_cam": np.zeros((F - 1, 22, 3), np.float32)}, FrameMismatchError, r"rec/master.*11 frames but frame_ids lists 12"),
        ({"joints_cam": np.full((F, 22, 3), np.nan, np.float32)}, NonFiniteError, r"rec/master.*NaN.*first: frame id 0"),
        ({"joint_set": np.array("coco17")}, UnknownJointSetError, r"'coco17' is not scored.*smpl22"),
        ({"joints_cam": np.zeros((F, 24, 3), np.float32)}, PredictionFileError, r"\(F, 22, 3\).*joints\[:, :22\]"),
        ({"frame_ids": np.arange(F)[::-1].copy()}, FrameMismatchError, r"strictly increasing"),
        ({"format": np.array("other")}, PredictionFileError, r"not a moro prediction"),
        ({"sequence": np.array("rec/sub_1")}, PredictionFileError, r"holds sequence 'rec/sub_1'.*<method>/rec/sub_1.npz"),
        ({"vertices_cam": np.zeros((F, 72, 3), np.float32)}, PredictionFileError, r"topology '<kind>:72'"),
    ],
)
def test_reader_rejects_bad_files_naming_sequence_and_fix(tmp_path, arrays, error, match):
    path = _raw_npz(tmp_path / "m" / "rec" / "master.npz", **arrays)
    with pytest.raises(error, match=match):
        read_prediction(path, "rec/master")


def test_writer_refuses_invalid_and_missing_file_names_sequence(tmp_path):
    with pytest.raises(NonFiniteError):
        write_prediction(tmp_path / "x.npz", _pred(joints_cam=np.full((F, 22, 3), np.inf)))
    assert not (tmp_path / "x.npz").exists()
    with pytest.raises(FileNotFoundError, match=r"sequence 'rec/sub_3'"):
        read_prediction(tmp_path / "m" / "rec" / "sub_3.npz", "rec/sub_3")


def _wham_subject(body, frames=F, seed=0):
    cam = motion_params(frames, seed, body_pose_dim=69)
    world = transform_params(body, cam, A, B)
    subj = {"pose": np.concatenate([cam["global_orient"], cam["body_pose"]], 1).astype(np.float32),
            "trans": cam["transl"].astype(np.float32),
            "pose_world": np.concatenate([world["global_orient"], world["body_pose"]], 1).astype(np.float32),
            "trans_world": world["transl"].astype(np.float32), "betas": cam["betas"].astype(np.float32),
            "verts": np.zeros((frames, 72, 3), np.float32), "frame_ids": np.arange(frames)}
    return cam, subj


def _as_float32(p):
    return {k: np.asarray(v, np.float32).astype(np.float64) for k, v in p.items()}


@pytest.mark.parametrize("writer", ["joblib-layout", "joblib", "pickle"])
def test_wham_adapter_round_trip(tmp_path, writer):
    smpl = synthetic_models("smpl", "neutral")
    cam, subj = _wham_subject(smpl)
    path = tmp_path / "wham_output.pkl"
    if writer == "joblib":
        joblib = pytest.importorskip("joblib")
        joblib.dump({0: subj}, path)
    elif writer == "joblib-layout":
        write_joblib_like(path, {0: subj})
    else:
        path.write_bytes(pickle.dumps({0: subj}))
    np.testing.assert_array_equal(read_wham_output(path)["0"]["pose"], subj["pose"])
    pc = wham_to_prediction(path, smpl=smpl, sequence="rec/master", variant="cam", frame_offset=5)
    pw = wham_to_prediction(path, smpl=smpl, sequence="rec/master", variant="world", frame_offset=5)
    np.testing.assert_array_equal(pc.frame_ids, np.arange(5, 5 + F))
    cam32 = _as_float32(cam)
    np.testing.assert_allclose(pc.joints_cam, fk_joints22(smpl, cam32), atol=1e-5)
    # the world trajectory is the camera one moved rigidly: supplement C's alignment undoes it
    np.testing.assert_allclose(pw.joints_cam, pc.joints_cam, atol=1e-4)
    np.testing.assert_allclose(pw.feet_cam, pc.feet_cam, atol=1e-4)
    np.testing.assert_allclose(pw.params["R_w2c"].reshape(3, 3), A.T, atol=1e-5)
    np.testing.assert_allclose(pw.joints_world, fk_joints22(smpl, _as_float32(transform_params(smpl, cam32, A, B))), atol=1e-4)
    assert pc.topology == "smpl:72" and pc.vertices_cam.shape == (F, 72, 3)
    back = read_prediction(write_prediction(prediction_path(tmp_path / "wham-world", "rec/master"), pw), "rec/master")
    np.testing.assert_allclose(back.joints_cam, pw.joints_cam, atol=1e-6)
    assert "supplement C" in back.source


def test_wham_with_several_subjects_needs_a_choice(tmp_path):
    smpl = synthetic_models("smpl", "neutral")
    _, s0 = _wham_subject(smpl, seed=0)
    _, s1 = _wham_subject(smpl, frames=8, seed=1)
    path = tmp_path / "wham_output.pkl"
    write_joblib_like(path, {0: s0, 3: s1})
    with pytest.raises(ValueError, match=r"2 tracked subjects .*subject=<id>"):
        wham_to_prediction(path, smpl=smpl, sequence="s")
    assert wham_to_prediction(path, smpl=smpl, sequence="s", subject=3).num_frames == 8
    bad = dict(s0, trans=s0["trans"][:-1])
    write_joblib_like(path, {0: bad})
    with pytest.raises(PredictionFileError, match=r"subject 0: trans must have shape \(12, 3\)"):
        read_wham_output(path)


def test_gvhmr_adapter_round_trip_with_smplx_to_smpl(tmp_path):
    smplx, smpl = synthetic_models("smplx", "neutral"), synthetic_models("smpl", "neutral")
    cam = motion_params(F, 4)
    world = transform_params(smplx, cam, A, B)
    t = lambda p: {k: torch.tensor(v, dtype=torch.float32) for k, v in p.items()}  # noqa: E731
    path = tmp_path / "hmr4d_results.pt"
    torch.save({"smpl_params_incam": t(cam), "smpl_params_global": t(world), "K_fullimg": torch.eye(3).repeat(F, 1, 1),
                "net_outputs": {"pred_x": torch.zeros(1, F, 151)}}, path)
    np.save(tmp_path / "smplx2smpl.npy", smplx_to_smpl_transfer().numpy())
    scoring = ScoringBody.smplx_to_smpl(load_vertex_transfer(tmp_path / "smplx2smpl.npy"), smpl)
    pc = gvhmr_to_prediction(path, smplx=smplx, sequence="v", variant="cam", scoring=scoring)
    pw = gvhmr_to_prediction(path, smplx=smplx, sequence="v", variant="world", scoring=scoring)
    np.testing.assert_allclose(pc.joints_cam, fk_joints22(smplx, _as_float32(cam)), atol=1e-5)
    np.testing.assert_allclose(pw.joints_cam, pc.joints_cam, atol=1e-4)
    assert pc.topology == "smpl:72" and "DEVIATION" not in pc.scoring
    native = gvhmr_to_prediction(path, smplx=smplx, sequence="v", variant="cam")
    assert "DEVIATION" in native.scoring and native.topology == "smplx:165"
    torch.save({"smpl_params_incam": dict(t(cam), body_pose=torch.zeros(F, 69)), "smpl_params_global": t(world)}, path)
    with pytest.raises(PredictionFileError, match=r"smpl_params_incam.body_pose must have shape \(12, 63\)"):
        gvhmr_to_prediction(path, smplx=smplx, sequence="v")


def test_joblib_reader_refuses_code(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"x": types.SimpleNamespace(a=1)}))
    with pytest.raises(UnsafePickleError, match="types.SimpleNamespace"):
        load_joblib_pickle(path)


@pytest.mark.parametrize("fmt", ["pt-sparse", "pkl-mtx", "npz"])
def test_vertex_transfer_formats(tmp_path, fmt):
    import scipy.sparse as sp

    m = smplx_to_smpl_transfer()
    if fmt == "pt-sparse":  # GVHMR's smplx2smpl_sparse.pt
        torch.save(m.to_sparse().float(), tmp_path / "t.pt")
        path = tmp_path / "t.pt"
    elif fmt == "pkl-mtx":  # SMPL-X deformation transfer: [vertices | normals] columns, scipy sparse
        path = tmp_path / "t.pkl"
        path.write_bytes(pickle.dumps({"mtx": sp.csr_matrix(np.hstack([m.numpy(), np.ones_like(m.numpy())]))}))
    else:
        np.savez(tmp_path / "t.npz", matrix=m.numpy())
        path = tmp_path / "t.npz"
    torch.testing.assert_close(load_vertex_transfer(path), m)
