"""BEDLAM processed labels in the real layout: grouping, camera-frame body, closeups, filters."""

from __future__ import annotations

import numpy as np
import pytest
from real_fixtures import BEDLAM_EXT, BEDLAM_K, bedlam_person, oracle_joints, synthetic_models, write_bedlam_scene

from moro.data.bedlam import bedlam_clip, clip_ok, frame_keep, image_size_of, read_bedlam_labels
from moro.data.formats import DatasetFormatError


def _scene(tmp_path, name="20221010_3_1000_batch01hand_6fps", frames=(0, 1, 2, 4, 5, 6)):
    a, b = bedlam_person(len(frames), 1), bedlam_person(len(frames), 2, depth=7.0)
    path = tmp_path / f"{name}.npz"
    write_bedlam_scene(path, {"seq_000001": {"a": (list(frames), a), "b": (list(frames)[::-1], {k: (v[::-1] if k != "shape" else v) for k, v in b.items()})}})
    return path, a, b


def test_rows_grouped_by_sequence_and_person_sorted_by_frame(tmp_path):
    path, a, b = _scene(tmp_path)
    seqs = read_bedlam_labels(path)
    assert [s.name for s in seqs] == ["20221010_3_1000_batch01hand_6fps/seq_000001/p0", "20221010_3_1000_batch01hand_6fps/seq_000001/p1"]
    for s in seqs:
        np.testing.assert_array_equal(s.frame_ids, [0, 1, 2, 4, 5, 6])  # frame 3 missing; b's rows were reversed
        assert s.gender == "neutral" and s.subject_gender == "neutral" and s.image_files[0].endswith("png/seq_000001/seq_000001_0000.png")
    by_shape = {tuple(np.round(s.shape, 4)): s for s in seqs}
    s_b = by_shape[tuple(np.round(b["shape"], 4))]
    np.testing.assert_allclose(s_b.pose_cam, b["pose_cam"], atol=1e-12)


def test_camera_frame_body_adds_cam_ext_translation(tmp_path):
    path, a, _ = _scene(tmp_path)
    s = next(x for x in read_bedlam_labels(path) if np.allclose(x.shape, a["shape"]))
    clip = bedlam_clip(s, synthetic_models)
    body = synthetic_models("smplx", "neutral")
    p = a["pose_cam"]
    want_cam = oracle_joints(body, p[:, :3], p[:, 3:].reshape(-1, 54, 3), a["shape"][:10], a["trans_cam"], t_p2x=BEDLAM_EXT[:3, 3])
    np.testing.assert_allclose(clip.joints_cam, want_cam, atol=1e-5)
    R, t = BEDLAM_EXT[:3, :3], BEDLAM_EXT[:3, 3]
    # world = BEDLAM's label world (cam_ext^-1 camera, y down) turned upright by diag(1, -1, -1)
    np.testing.assert_allclose(clip.joints_world, ((want_cam - t) @ R) * [1.0, -1.0, -1.0], atol=1e-5)
    uv = want_cam[..., :2] / want_cam[..., 2:] * 1500.0 + [640.0, 360.0]
    np.testing.assert_allclose(clip.kp2d, uv, atol=1e-3)
    assert clip.image_size == (1280, 720) and not s.moving_camera


def test_closeup_scene_is_portrait_and_kid_factor_refused(tmp_path):
    K = np.array([[1500.0, 0, 360.0], [0, 1500.0, 640.0], [0, 0, 1]])
    person = bedlam_person(3, 4)
    path = tmp_path / "20221019_3-8_250_highbmihand_closeup_suburb_a.npz"
    write_bedlam_scene(path, {"seq_000000": {"a": ([0, 1, 2], person)}}, gender=np.array("female"), K=K)
    s = read_bedlam_labels(path)[0]
    # the 'gender' column is the subject's (df_full_body.py writes gender_sub); the parameters are the neutral model's
    assert image_size_of(s.scene) == (720, 1280) and s.subject_gender == "female" and s.gender == "neutral"
    clip = bedlam_clip(s, synthetic_models)
    assert clip.image_size == (720, 1280) and clip.body.model == "smplx/neutral"
    s.shape = s.shape.copy()
    s.shape[10] = 0.5
    with pytest.raises(DatasetFormatError, match="kid factor"):
        bedlam_clip(s, synthetic_models)


def test_visibility_filters():
    inside = np.zeros((10, 22), bool)
    inside[:, :16] = True
    assert frame_keep(inside).all() and clip_ok(inside)
    inside[:3, 8:] = False  # 3 of 10 frames with only 8 joints: kept as frames, clip below 80 %
    assert frame_keep(inside).all() and not clip_ok(inside)
    inside[0, 7:] = False
    assert not frame_keep(inside)[0]
    inside[:3] = True
    inside[3:5, 10:] = False  # 80 % exactly: kept
    assert clip_ok(inside)


def test_bad_label_file_names_the_key(tmp_path):
    path = tmp_path / "scene.npz"
    np.savez(path, imgname=np.array(["seq_000000/seq_000000_0000.png"]), pose_cam=np.zeros((1, 165)))
    with pytest.raises(DatasetFormatError, match=r"scene.npz: missing key\(s\) \['shape', 'trans_cam', 'cam_int', 'cam_ext'\]"):
        read_bedlam_labels(path)
    np.savez(path, imgname=np.array(["frame0.png"]), pose_cam=np.zeros((1, 165)), shape=np.zeros((1, 11)),
             trans_cam=np.zeros((1, 3)), cam_int=BEDLAM_K[None], cam_ext=np.eye(4)[None])
    with pytest.raises(DatasetFormatError, match=r"'imgname' entry 'frame0.png'"):
        read_bedlam_labels(path)
