"""RICH (GVHMR preprocessed labels) and its truncation variant, on fixtures in the real layout."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from test_metric_protocols_egobody import write_method
from test_metric_protocols_fixtures import (
    RICH_K,
    RICH_SCAN2CAM,
    RICH_VID,
    W2AZ,
    fk_joints22,
    project,
    smplx_to_smpl_transfer,
    synthetic_models,
    write_rich,
)

from moro.metrics.predictions import ScoringBody
from moro.metrics.protocols import Rich, evaluate, gt_boxes, truncate_boxes


def _scoring() -> ScoringBody:
    return ScoringBody.smplx_to_smpl(smplx_to_smpl_transfer(), synthetic_models("smpl", "neutral"))


@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    root = tmp_path_factory.mktemp("rich")
    return root, write_rich(root)


def test_rich_reads_gvhmr_labels_in_camera_and_gravity_aligned_world(rich):
    root, info = rich
    protocol = Rich(root, synthetic_models, _scoring())
    gts = list(protocol.sequences())
    assert [g.name for g in gts] == [RICH_VID]  # the multi-person sequence is skipped
    assert any("multi-person" in n for n in protocol.notes)
    gt = gts[0]
    np.testing.assert_array_equal(gt.frame_ids, np.arange(45, 175))
    assert gt.visibility is None and gt.image_size == (4112, 3008)
    np.testing.assert_allclose(gt.joints_cam, fk_joints22(synthetic_models("smplx", "female"), info["cam_params"]), atol=1e-4)
    R_az2ay = np.eye(4)
    R_az2ay[:3, :3] = Rotation.from_rotvec([-np.pi / 2, 0, 0]).as_matrix()
    T_scan2world = R_az2ay @ W2AZ
    np.testing.assert_allclose(gt.T_w2c[0], RICH_SCAN2CAM @ np.linalg.inv(T_scan2world), atol=1e-9)
    np.testing.assert_allclose(gt.K[0], RICH_K)
    b = info["bbx_xys"]
    np.testing.assert_allclose(gt.boxes, np.stack([b[:, 0], b[:, 1], b[:, 2] / 200], 1), rtol=1e-6)


def test_rich_equal_predictions_score_zero_without_vis_split(rich, tmp_path):
    root, _ = rich
    protocol = Rich(root, synthetic_models, _scoring())
    gts = list(protocol.sequences())
    result = evaluate(protocol, {"same": write_method(tmp_path, "same", gts)})
    m = result.methods[0]
    for key in ("pa_mpjpe", "mpjpe", "pve", "gmpjpe", "rte"):
        assert abs(m.value(key)) < 2e-3, key
    assert m.value("jitter") == pytest.approx(result.reference.value("jitter"), abs=0.05)
    assert np.isnan(m.value("mpjpe_vis"))
    row = [line for line in result.markdown().splitlines() if line.startswith("| same")][0]
    assert row.split("|")[4].strip() == "-" and row.split("|")[5].strip() == "-"  # MPJPE-vis / -occ


def test_rich_trunc_uses_upper_body_boxes_and_in_box_visibility(rich, tmp_path):
    root, info = rich
    protocol = Rich(root, synthetic_models, _scoring(), truncation=True)
    assert protocol.name == "rich-trunc"
    gt = next(protocol.sequences())
    b = info["bbx_xys"]
    s = b[:, 2] / 200
    cut = np.arange(130) >= 100
    np.testing.assert_allclose(gt.boxes[~cut], np.stack([b[:, 0], b[:, 1], s], 1)[~cut], rtol=1e-6)
    np.testing.assert_allclose(gt.boxes[cut], np.stack([b[:, 0], b[:, 1] - 50 * s, s / 2], 1)[cut], rtol=1e-6)
    assert gt.visibility[~cut].all()  # the full box encloses every joint
    assert gt.visibility[cut][:, 15].all() and not gt.visibility[cut][:, [7, 8, 10, 11]].any()  # head in, feet out
    result = evaluate(protocol, {"same": write_method(tmp_path, "same", [gt])})
    m = result.methods[0]
    assert m.values["mpjpe_occ"].count == int((~gt.visibility).sum()) > 0
    assert abs(m.value("mpjpe_vis")) < 2e-3 and abs(m.value("mpjpe_occ")) < 2e-3


def test_gt_boxes_enclose_the_projected_joints_scaled_1_2(rich):
    root, _ = rich
    gt = next(Rich(root, synthetic_models, _scoring(), use_gt_boxes=True).sequences())
    uv = project(gt.joints_cam, RICH_K)  # independent numpy projection
    lo, hi = uv.min(1), uv.max(1)
    np.testing.assert_allclose(gt.boxes[:, :2], (lo + hi) / 2, rtol=1e-9)
    np.testing.assert_allclose(gt.boxes[:, 2], 1.2 * (hi - lo).max(1) / 200, rtol=1e-9)


def test_box_helpers_on_hand_computed_values():
    K = np.array([[[100.0, 0, 0], [0, 100.0, 0], [0, 0, 1]]])
    joints = np.array([[[0.0, 0.0, 1.0], [1.0, 0.5, 1.0], [0.5, 0.2, 2.0]]])  # uv (0,0), (100,50), (25,10)
    np.testing.assert_allclose(gt_boxes(joints, K), [[50.0, 25.0, 0.6]])
    boxes = np.tile([[10.0, 20.0, 2.0]], (201, 1))
    out = truncate_boxes(boxes)
    np.testing.assert_allclose(out[99], [10, 20, 2])
    np.testing.assert_allclose(out[100], [10, 20 - 100, 1])
    np.testing.assert_allclose(out[199], [10, -80, 1])
    np.testing.assert_allclose(out[200], [10, 20, 2])
