"""AMASS reader on files in the real N / G layouts, checked against independently posed joints."""

from __future__ import annotations

import numpy as np
import pytest
from real_fixtures import Z2Y, oracle_joints, synthetic_models, write_amass_g, write_amass_n

from moro.data.amass import (FrameRateError, amass_clip, amass_split, clip_starts, find_amass_files, is_excluded,
                             read_amass)
from moro.data.formats import DatasetFormatError


def test_n_release_120fps_resampled_and_posed_in_y_up_world(tmp_path):
    path = tmp_path / "ACCAD" / "Female1General_c3d" / "A1_-_Stand_stageii.npz"
    d = write_amass_n(path, frames=250, fps=120)
    m = read_amass(path, tmp_path)
    assert (m.name, m.subset, m.release, m.gender, m.stride) == ("ACCAD/Female1General_c3d/A1_-_Stand", "ACCAD", "smplx", "neutral", 4)
    np.testing.assert_array_equal(m.poses, d["poses"][::4])  # integer stride, frame 0 kept
    assert m.num_frames == 63
    clip = amass_clip(m, synthetic_models)
    body = synthetic_models("smplx", "neutral")
    p = d["poses"][::4]
    want = oracle_joints(body, p[:, :3], p[:, 3:].reshape(-1, 54, 3), d["betas"][:10], d["trans"][::4], R_p2x=Z2Y)
    want[..., 1] -= want[..., 1].min()  # floor at the lowest joint
    np.testing.assert_allclose(clip.joints_world, want, atol=1e-5)
    assert clip.joints_world[..., 1].min() == pytest.approx(0.0, abs=1e-6)
    # camera fields agree with the world ones through T_w2c, and the body faces the virtual camera
    R, t = clip.T_w2c[:3, :3], clip.T_w2c[:3, 3]
    np.testing.assert_allclose(clip.joints_cam, clip.joints_world @ R.T + t, atol=1e-5)
    assert clip.in_image[0].all() and (clip.joints_cam[..., 2] > 2).all()
    # up in the world is "up" in the image (smaller v for the head than the feet)
    assert clip.kp2d[0, 15, 1] < clip.kp2d[0, 7, 1]


def test_g_release_bytes_gender_60fps_and_hands_dropped_on_smpl(tmp_path):
    path = tmp_path / "CMU" / "01" / "01_01_poses.npz"
    d = write_amass_g(path, frames=90, fps=60, gender=b"female")
    m = read_amass(path, tmp_path)
    assert (m.release, m.gender, m.stride, m.num_frames) == ("smplh", "female", 2, 45)
    clip = amass_clip(m, synthetic_models, start=0, length=30)
    body = synthetic_models("smpl", "female")
    p = d["poses"][::2][:30]
    full = np.zeros((30, 23, 3))
    full[:, :21] = p[:, 3:66].reshape(-1, 21, 3)  # SMPL's hand joints stay at rest
    want = oracle_joints(body, p[:, :3], full, d["betas"][:10], d["trans"][::2][:30], R_p2x=Z2Y)
    want[..., 1] -= want[..., 1].min()
    np.testing.assert_allclose(clip.joints_world, want, atol=1e-5)
    assert clip.body.model == "smpl/female" and clip.body.body_pose.shape == (30, 23, 3, 3)


def test_g_release_on_smplx_puts_hands_on_the_finger_joints(tmp_path):
    path = tmp_path / "SFU" / "0005" / "0005_Walking001_poses.npz"
    d = write_amass_g(path, frames=60, fps=60, gender=np.array(b"male"))
    clip = amass_clip(read_amass(path, tmp_path), synthetic_models, g_model="smplx")
    p = d["poses"][::2]
    rv = clip.body.body_pose  # (t, 54, 3, 3)
    from scipy.spatial.transform import Rotation
    np.testing.assert_allclose(Rotation.from_matrix(rv[:, 24:54].reshape(-1, 3, 3)).as_rotvec().reshape(30, 90),
                               p[:, 66:156], atol=1e-5)
    np.testing.assert_allclose(rv[:, 21:24], np.broadcast_to(np.eye(3), (30, 3, 3, 3)), atol=1e-6)  # jaw, eyes at rest


def test_frame_rate_not_multiple_of_30_is_a_named_error(tmp_path):
    path = tmp_path / "SFU" / "0005" / "0005_Jogging001_stageii.npz"
    write_amass_n(path, frames=50, fps=100)
    with pytest.raises(FrameRateError, match=r"mocap_frame_rate = 100 is not an integer multiple of 30"):
        read_amass(path, tmp_path)


def test_bad_files_name_file_and_key(tmp_path):
    path = tmp_path / "CMU" / "02" / "02_01_poses.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, poses=np.zeros((10, 156)), trans=np.zeros((10, 3)), gender="male")
    with pytest.raises(DatasetFormatError, match=r"02_01_poses.npz: missing key\(s\) \['betas', 'mocap_framerate'\]"):
        read_amass(path, tmp_path)
    bad = tmp_path / "CMU" / "02" / "02_02_poses.npz"
    np.savez(bad, poses=np.zeros((10, 165)), trans=np.zeros((10, 3)), gender="male", betas=np.zeros(16), mocap_framerate=60.0)
    with pytest.raises(DatasetFormatError, match=r"'poses' must be \(T, 156\)"):
        read_amass(bad, tmp_path)
    with pytest.raises(DatasetFormatError, match="no AMASS sequences"):
        (tmp_path / "empty").mkdir()
        find_amass_files(tmp_path / "empty")


def test_split_exclusions_file_discovery_and_clips(tmp_path):
    for rel in ("HDM05/dg/HDM_dg_07-01_01_120_stageii.npz", "HDM05/dg/HDM_dg_03-02_01_120_stageii.npz",
                "BMLrub/rub001/0001_treadmill_norm_stageii.npz", "ACCAD/s/x_stagei.npz", "CMU/01/shape.npz"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in find_amass_files(tmp_path)]
    assert found == ["BMLrub/rub001/0001_treadmill_norm_stageii.npz", "HDM05/dg/HDM_dg_03-02_01_120_stageii.npz",
                     "HDM05/dg/HDM_dg_07-01_01_120_stageii.npz"]  # stagei / shape.npz are not sequences
    assert is_excluded("MPI_HDM05", "HDM_dg_07-01_01_120") and not is_excluded("HDM05", "HDM_dg_03-02_01_120")
    assert is_excluded("BMLrub", "0001_treadmill_norm") and is_excluded("BioMotionLab_NTroje", "rub002_normal_walk1")
    assert not is_excluded("CMU", "0001_treadmill_norm")
    assert [amass_split(s) for s in ("CMU", "MPI_Limits", "TotalCapture", "TCD_handMocap", "KIT")] == ["train", "train", "test", "test", None]
    assert clip_starts(179) == [0, 60] and clip_starts(180) == [0, 60, 120] and clip_starts(59) == []


def test_test_canonicalisation_faces_plus_z_with_pelvis_at_origin(tmp_path):
    path = tmp_path / "TotalCapture" / "s1" / "walking1_stageii.npz"
    write_amass_n(path, frames=120, fps=60, seed=3)
    m = read_amass(path, tmp_path)
    plain = amass_clip(m, synthetic_models, start=0, length=60)
    can = amass_clip(m, synthetic_models, start=0, length=60, canonical=True)
    j = can.joints_world
    np.testing.assert_allclose(j[0, 0, [0, 2]], 0.0, atol=1e-6)  # frame-0 pelvis at the horizontal origin
    assert j[..., 1].min() == pytest.approx(0.0, abs=1e-6)
    across = (j[0, 1] - j[0, 2]) + (j[0, 16] - j[0, 17])
    assert abs(across[2]) < 1e-6 and across[0] > 0  # left along +X, so the body faces +Z
    # a rigid motion of the world: pairwise distances and heights above the floor unchanged
    np.testing.assert_allclose(np.linalg.norm(j[:, 0] - j[:, 10], axis=-1),
                               np.linalg.norm(plain.joints_world[:, 0] - plain.joints_world[:, 10], axis=-1), atol=1e-6)
    np.testing.assert_allclose(can.joints_cam, plain.joints_cam, atol=1e-5)  # the camera moves along
