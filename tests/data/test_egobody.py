"""EgoBody third-person reader on the real layout (fit pickles, calibrations, splits, OpenPose boxes)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from real_fixtures import EGO_REC, EGO_SCENE, MASTER2WORLD, SUB2MASTER, oracle_joints, synthetic_models, write_egobody

from moro.data.egobody import (consecutive_runs, egobody_clip, read_color_params, read_data_info, read_mask, read_occ_info,
                               read_splits)
from moro.data.formats import DatasetFormatError, MaskLengthError


def _root(tmp_path, frames=20):
    info = write_egobody(tmp_path, frames=frames, start=3, end=12, nan_outside=False)
    (tmp_path / "data_info_release.csv").write_text(
        "recording_name,body_idx_0,body_idx_1,body_idx_fpv,start_frame,end_frame,scene_name\n"
        f"{EGO_REC},0 male,1 female,0 male,1,{frames},{EGO_SCENE}\n")
    (tmp_path / "data_splits.csv").write_text(f"train,val,test\n{EGO_REC},recording_20210911_S07_S06_01,\n,,recording_x\n")
    return info


def test_sub_view_body_in_camera_and_world_matches_the_fits(tmp_path):
    info = _root(tmp_path)
    rec = read_data_info(tmp_path)[0]
    assert rec.bodies == {0: "male", 1: "female"} and rec.fpv_idx == 0 and (rec.start, rec.end) == (1, 20)
    clip = egobody_clip(tmp_path, rec, "sub_2", 1, synthetic_models, frames=range(1, 11))
    body = synthetic_models("smplx", "female")
    p = {k: v[:10] for k, v in info["params"].items()}
    full = np.zeros((10, 54, 3))
    full[:, :21] = p["body_pose"].reshape(10, 21, 3)  # hands flat without a hand PCA; jaw/eyes from the fits
    master = oracle_joints(body, p["global_orient"], full, p["betas"][0], p["transl"])
    # the pickles also hold jaw/eye poses: they move only joints 22.., never the 22 scoring joints
    m2c = np.linalg.inv(SUB2MASTER["sub_2"])
    np.testing.assert_allclose(clip.joints_cam, master @ m2c[:3, :3].T + m2c[:3, 3], atol=1e-4)
    np.testing.assert_allclose(clip.joints_world, master @ MASTER2WORLD[:3, :3].T + MASTER2WORLD[:3, 3], atol=1e-4)
    assert clip.body.model == "smplx/female"
    assert clip.image_files[0] == f"kinect_color/{EGO_REC}/sub_2/frame_00001.jpg"
    np.testing.assert_array_equal(clip.frame_ids, np.arange(1, 11))


def test_missing_fit_frames_are_dropped_and_clips_avoid_the_gap(tmp_path):
    _root(tmp_path)
    shutil.rmtree(tmp_path / "smplx_interactee" / EGO_REC / "body_idx_1" / "results" / "frame_00005")
    rec = read_data_info(tmp_path)[0]
    clip = egobody_clip(tmp_path, rec, "master", 1, synthetic_models)
    assert 5 not in clip.frame_ids and len(clip.frame_ids) == 19
    assert consecutive_runs(clip.frame_ids) == [(0, 4), (4, 15)]


def test_openpose_boxes_become_box_det(tmp_path):
    _root(tmp_path)
    kp = tmp_path / "keypoints_cleaned" / EGO_REC / "master"
    kp.mkdir(parents=True)
    pts = np.zeros((25, 3))
    pts[:4] = [[100, 200, 0.9], [140, 260, 0.8], [120, 300, 0.1], [900, 900, 0.2]]  # conf <= 0.2 ignored
    (kp / "frame_00001_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": pts.reshape(-1).tolist()}]}))
    rec = read_data_info(tmp_path)[0]
    clip = egobody_clip(tmp_path, rec, "master", 1, synthetic_models, frames=range(1, 4))
    np.testing.assert_allclose(clip.box_det[0], [120, 230, 60 * 1.2 / 200])
    np.testing.assert_allclose(clip.box_det[1:], clip.box_det[:1].repeat(2, 0))  # no file: previous box reused


def test_splits_occ_info_masks_and_camera_params(tmp_path):
    _root(tmp_path)
    assert read_splits(tmp_path) == {EGO_REC: "train", "recording_20210911_S07_S06_01": "val", "recording_x": "test"}
    entries = read_occ_info(tmp_path)
    assert [(e.view, e.target_idx, e.fpv_idx, e.start, e.end) for e in entries] == [("master", 1, 0, 3, 12), ("sub_2", 1, 0, 3, 12)]
    assert read_mask(tmp_path, entries[0]).shape == (10, 22)
    K, dist = read_color_params(tmp_path, "master")
    np.testing.assert_allclose(K[0], [918.0, 0, 958.0])
    np.testing.assert_allclose(dist, [0.1, -0.05, 0, 0, 0])
    np.save(tmp_path / "mask_joint" / EGO_REC / "master" / "mask_joint.npy", np.ones((9, 22)))
    with pytest.raises(MaskLengthError, match=r"9 frames but the scored interval \[3, 12\]"):
        read_mask(tmp_path, entries[0])


def test_bad_csv_names_the_column(tmp_path):
    (tmp_path / "data_info_release.csv").write_text("recording_name,body_idx_0\nrec,0 male\n")
    with pytest.raises(DatasetFormatError, match=r"missing column\(s\) \['body_idx_1', 'body_idx_fpv'"):
        read_data_info(tmp_path)
    (tmp_path / "data_info_release.csv").write_text(
        "recording_name,body_idx_0,body_idx_1,body_idx_fpv,start_frame,end_frame,scene_name\nrec,0 robot,1 male,0 male,1,2,s\n")
    with pytest.raises(DatasetFormatError, match=r"column 'body_idx_0' gender 'robot'"):
        read_data_info(tmp_path)
