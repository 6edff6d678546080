"""RICH reader on GVHMR's preprocessed test labels + OpenCV XML calibration (real layout)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from real_fixtures import RICH_K, RICH_SCAN2CAM, RICH_VID, W2AZ, Z2Y, fk_joints22, synthetic_models, write_rich

from moro.data.formats import DatasetFormatError
from moro.data.rich import RichRoot, is_multi_person, read_rich_calibration, rich_clip


def test_camera_world_and_boxes_match_an_independent_pose(tmp_path):
    gt = write_rich(tmp_path, frames=40)
    rich = RichRoot(tmp_path)
    assert rich.single_person_vids() == [RICH_VID]  # the multi-person vid is skipped
    clip = rich_clip(rich, RICH_VID, synthetic_models)
    want_cam = fk_joints22(synthetic_models("smplx", "female"), gt["cam_params"])
    np.testing.assert_allclose(clip.joints_cam, want_cam, atol=1e-4)
    # world = Y-up frame of GVHMR: R_x(-90 deg) @ w2az @ scan
    T_s2w = np.eye(4)
    T_s2w[:3, :3] = Z2Y
    T_s2w = T_s2w @ W2AZ
    want_world = (want_cam - RICH_SCAN2CAM[:3, 3]) @ RICH_SCAN2CAM[:3, :3]  # camera -> scan
    want_world = want_world @ T_s2w[:3, :3].T + T_s2w[:3, 3]
    np.testing.assert_allclose(clip.joints_world, want_world, atol=1e-4)
    np.testing.assert_allclose(clip.K, RICH_K)
    np.testing.assert_array_equal(clip.frame_ids, np.arange(40) + 45)
    np.testing.assert_allclose(clip.box_det[:, 2], gt["bbx_xys"][:, 2] / 200.0, rtol=1e-6)
    assert clip.image_size == (4112, 3008) and clip.image_files[0] == "images/test/Gym_013_burpee4/cam_06/00045_06.jpeg"


def test_calibration_errors_and_names(tmp_path):
    write_rich(tmp_path, frames=5)
    T, K = read_rich_calibration(tmp_path / "scan_calibration" / "Gym" / "calibration" / "006.xml")
    np.testing.assert_allclose(T, RICH_SCAN2CAM, atol=1e-9)
    with pytest.raises(DatasetFormatError, match="calibration .*007.xml not found"):
        read_rich_calibration(tmp_path / "scan_calibration" / "Gym" / "calibration" / "007.xml")
    assert is_multi_person("LectureHall_009_021_reparingprojector1") and not is_multi_person("Gym_013_burpee4")
    labels = torch.load(tmp_path / "rich_test_labels.pt")
    labels[RICH_VID]["gender"] = np.array(b"female")  # gender stored as bytes in a 0-d array
    labels[RICH_VID]["gt_smplx_params"]["transl"] = labels[RICH_VID]["gt_smplx_params"]["transl"][:3]
    torch.save(labels, tmp_path / "rich_test_labels.pt")
    with pytest.raises(DatasetFormatError, match="holds non-tensor objects"):
        RichRoot(tmp_path)
    rich = RichRoot(tmp_path, trusted=True)
    assert rich.label(RICH_VID)[2] == "female"
    with pytest.raises(ValueError, match="transl has 3 frames but global_orient has 5"):
        rich_clip(rich, RICH_VID, synthetic_models)
