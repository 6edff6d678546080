"""EgoBody-Occ protocol on fixtures written in the real EgoBody layout (synthetic small bodies)."""

from __future__ import annotations

import numpy as np
import pytest
from test_metric_protocols_fixtures import (
    EGO_REC,
    MASTER2WORLD,
    SUB2MASTER,
    fk_joints22,
    smplx_to_smpl_transfer,
    synthetic_models,
    write_egobody,
)

from moro.metrics.predictions import (
    HandPCA,
    MissingFramesError,
    PredictionSequence,
    ScoringBody,
    prediction_path,
    write_prediction,
)
from moro.metrics.protocols import REFERENCE_NAME, EgoBodyOcc, GroundTruthError, MaskLengthError, evaluate


def _apply(T: np.ndarray, x: np.ndarray) -> np.ndarray:
    return x @ T[:3, :3].T + T[:3, 3]


def _scoring() -> ScoringBody:
    return ScoringBody.smplx_to_smpl(smplx_to_smpl_transfer(), synthetic_models("smpl", "neutral"))


@pytest.fixture(scope="module")
def ego(tmp_path_factory):
    root = tmp_path_factory.mktemp("egobody")
    info = write_egobody(root)
    protocol = EgoBodyOcc(root, synthetic_models, _scoring())
    return root, info, protocol, list(protocol.sequences())


def write_method(pred_root, method, gts, joints=lambda gt: gt.joints_cam, frame_ids=None):
    for gt in gts:
        fid = gt.frame_ids if frame_ids is None else frame_ids
        pred = PredictionSequence(
            sequence=gt.name, frame_ids=fid, fps=gt.fps, joints_cam=joints(gt),
            vertices_cam=gt.vertices_cam if frame_ids is None else None, topology=gt.topology if frame_ids is None else None,
        )
        write_prediction(prediction_path(pred_root / method, gt.name), pred)
    return pred_root / method


def test_ground_truth_is_the_scored_interval_in_each_view_and_one_world(ego):
    root, info, protocol, gts = ego
    assert [g.name for g in gts] == [f"{EGO_REC}/master", f"{EGO_REC}/sub_2"]
    p32 = {k: v.astype(np.float32).astype(np.float64)[4:24] for k, v in info["params"].items()}  # frames 5..24
    master = fk_joints22(synthetic_models("smplx", "female"), p32)  # oracle: FK of the gendered body
    for gt in gts:
        view = gt.name.split("/")[1]
        np.testing.assert_array_equal(gt.frame_ids, np.arange(5, 25))
        np.testing.assert_array_equal(gt.visibility, info["masks"][view][:, :22].astype(bool))
        expected_cam = master if view == "master" else _apply(np.linalg.inv(SUB2MASTER[view]), master)
        np.testing.assert_allclose(gt.joints_cam, expected_cam, atol=1e-5)
        np.testing.assert_allclose(gt.joints_world, _apply(MASTER2WORLD, master), atol=1e-5)
        assert gt.joint_source.startswith("smplx->smpl") and gt.deviation is None
        assert gt.vertices_cam.shape == (20, 72, 3) and gt.feet_world.shape == (20, 4, 3)


def test_predictions_equal_to_ground_truth_score_zero(ego, tmp_path):
    _, _, protocol, gts = ego
    result = evaluate(protocol, {"same": write_method(tmp_path, "same", gts)})
    m, ref = result.methods[0], result.reference
    assert ref.name == REFERENCE_NAME and result.ok
    for key in ("pa_mpjpe", "mpjpe", "mpjpe_vis", "mpjpe_occ", "pve", "gmpjpe", "rte", "w_mpjpe", "wa_mpjpe"):
        assert abs(m.value(key)) < 2e-3, key
    assert abs(m.value("accel_error")) < 0.02 and abs(m.value("g_accel_error")) < 0.02
    assert ref.value("jitter") > 1.0  # a moving person: the reference is not trivially zero
    assert m.value("jitter") == pytest.approx(ref.value("jitter"), abs=0.05)
    assert m.value("foot_sliding") == pytest.approx(ref.value("foot_sliding"), abs=0.01)
    assert m.n_frames == 40 and result.n_sequences == 2


def test_per_joint_offset_of_10_mm_gives_10_mm(ego, tmp_path):
    _, _, protocol, gts = ego
    rng = np.random.default_rng(0)
    d = rng.normal(size=(22, 3))
    d[2] = -d[1]  # hips move oppositely: the pelvis (their mean) stays put
    d = 0.01 * d / np.linalg.norm(d, axis=1, keepdims=True)  # every joint moves by exactly 10 mm
    shift = np.array([0.006, -0.008, 0.0])  # the whole body by 10 mm
    result = evaluate(protocol, {
        "per-joint": write_method(tmp_path, "per-joint", gts, lambda gt: gt.joints_cam + d),
        "shifted": write_method(tmp_path, "shifted", gts, lambda gt: gt.joints_cam + shift),
    })
    per_joint, shifted = result.methods
    for key in ("mpjpe", "mpjpe_vis", "mpjpe_occ", "gmpjpe"):
        assert per_joint.value(key) == pytest.approx(10.0, abs=2e-3), key
    assert per_joint.value("pve") == pytest.approx(0.0, abs=2e-3)  # vertices untouched, same pelvis
    assert shifted.value("mpjpe") == pytest.approx(0.0, abs=2e-3)
    assert shifted.value("pa_mpjpe") == pytest.approx(0.0, abs=2e-3)
    assert shifted.value("gmpjpe") == pytest.approx(10.0, abs=2e-3)
    np.testing.assert_allclose(per_joint.per_joint["all"], 10.0, atol=2e-3)


def test_predictions_outside_the_interval_are_ignored_and_missing_frames_raise(ego, tmp_path):
    _, _, protocol, gts = ego
    ids = np.arange(1, 31)

    def padded(gt):  # frames 1..30: garbage outside the scored 5..24
        out = np.full((30, 22, 3), 50.0)
        out[4:24] = gt.joints_cam
        return out

    result = evaluate(protocol, {"long": write_method(tmp_path, "long", gts, padded, frame_ids=ids)})
    assert result.methods[0].value("mpjpe") < 2e-3 and result.methods[0].value("gmpjpe") < 2e-3
    short = write_method(tmp_path, "short", gts, lambda gt: gt.joints_cam[:-1], frame_ids=np.arange(5, 24))
    with pytest.raises(MissingFramesError, match=r"missing.*\[24\]"):
        evaluate(protocol, {"short": short})


def test_mask_of_wrong_length_raises(tmp_path):
    write_egobody(tmp_path, mask_rows=19)
    with pytest.raises(MaskLengthError, match=r"19 frames .*\[5, 24\].* has 20"):
        next(EgoBodyOcc(tmp_path, synthetic_models, _scoring()).sequences())


def test_missing_fit_names_the_file(tmp_path):
    write_egobody(tmp_path)
    (tmp_path / "smplx_interactee" / EGO_REC / "body_idx_1" / "results" / "frame_00010" / "000.pkl").unlink()
    with pytest.raises(GroundTruthError, match=r"frame 10 missing: .*frame_00010"):
        next(EgoBodyOcc(tmp_path, synthetic_models, _scoring()).sequences())


def test_smplx_joints_without_transfer_are_a_reported_deviation(ego, tmp_path):
    root, _, _, gts = ego
    protocol = EgoBodyOcc(root, synthetic_models, None)
    gt = next(protocol.sequences())
    assert gt.deviation and "not SMPL's neutral regressor" in gt.deviation
    np.testing.assert_allclose(gt.joints_cam, gts[0].joints_cam, atol=1e-9)  # same joints on these bodies
    joints_only = write_method(tmp_path, "same", gts, frame_ids=gts[0].frame_ids)  # SMPL vertices would not match
    result = evaluate(protocol, {"same": joints_only}, reference=False)
    assert any(n.startswith("ground truth:") for n in result.notes)
    assert "note: ground truth:" in result.markdown()


def test_hand_pca_is_expanded_and_leaves_body_joints(ego):
    root, _, _, gts = ego
    rng = np.random.default_rng(1)
    pca = HandPCA(rng.normal(size=(45, 45)), rng.normal(size=(45, 45)), rng.normal(size=45), rng.normal(size=45))
    protocol = EgoBodyOcc(root, synthetic_models, _scoring(), hand_pca=pca)
    gt = next(protocol.sequences())
    np.testing.assert_allclose(gt.joints_cam, gts[0].joints_cam, atol=1e-9)
    assert not any("hand" in n for n in protocol.notes)


def test_openpose_boxes_skip_low_confidence_and_reuse_the_previous_box(tmp_path):
    import json

    from moro.metrics.protocols import openpose_boxes

    def write(frame, pts):
        flat = [v for p in pts for v in p] + [0.0] * (75 - 3 * len(pts))
        (tmp_path / f"frame_{frame:05d}_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": flat}]}))

    write(5, [(100, 200, 0.1), (110, 210, 0.9)])  # one valid keypoint: no box yet (back-filled)
    write(6, [(100, 200, 0.9), (300, 250, 0.5), (900, 900, 0.2)])  # conf 0.2 is ignored
    write(7, [(0, 0, 0.1)])  # reuses frame 6
    boxes = openpose_boxes(tmp_path, range(5, 9))  # frame 8 has no file: reuses frame 7's
    expected = [200.0, 225.0, 1.2 * 200 / 200]
    np.testing.assert_allclose(boxes, np.tile(expected, (4, 1)))
