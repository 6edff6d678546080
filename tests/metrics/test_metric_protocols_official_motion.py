"""The SMPL evaluation path of the authors' weights: ``moro infer``'s SMPL-X ``motion.npz`` -> SMPL joints
(``smplx2smpl`` transfer + neutral SMPL regressor) -> ``moro eval`` on the EgoBody-Occ and RICH fixtures.

The motion files are written here in the documented layout (:mod:`moro.inference.exports`) from the
fixtures' own ground-truth SMPL-X parameters, so a correct mapping scores zero error."""

from __future__ import annotations

import numpy as np
import pytest
from test_metric_protocols_fixtures import (
    EGO_REC,
    RICH_VID,
    SUB2MASTER,
    smplx_to_smpl_transfer,
    synthetic_models,
    transform_params,
    write_egobody,
    write_rich,
)

from moro.metrics.predictions import (PredictionFileError, ScoringBody, moro_motion_to_prediction, prediction_path,
                                      read_prediction, write_prediction)
from moro.metrics.protocols import EgoBodyOcc, Rich, evaluate


def _scoring() -> ScoringBody:
    return ScoringBody.smplx_to_smpl(smplx_to_smpl_transfer(), synthetic_models("smpl", "neutral"))


def write_motion(path, p: dict, surface: str = "smplx", source_frame=None):
    """A ``motion.npz`` of ``moro infer`` holding the camera-frame SMPL-X parameters ``p`` (flat hands,
    neutral jaw and eyes; world keys omitted: the adapter does not read them)."""
    f = len(p["transl"])
    z = np.zeros
    arrays = {"format": np.array("moro-motion"), "format_version": np.array(1), "fps": np.array(30.0),
              "surface_model_type": np.array(surface), "source_frame": np.arange(f) if source_frame is None else source_frame,
              "betas": np.asarray(p["betas"])[0].astype(np.float32), "joints22_cam": z((f, 22, 3), np.float32),
              "root_orient_cam": p["global_orient"].astype(np.float32), "trans_cam": p["transl"].astype(np.float32),
              "pose_body": p["body_pose"].astype(np.float32), "pose_jaw": z((f, 3), np.float32),
              "pose_eye": z((f, 6), np.float32), "pose_hand": z((f, 90), np.float32)}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def _rich(root, frames: int = 130) -> dict:
    root.mkdir(parents=True)
    return write_rich(root, frames=frames)


def _no_face(p: dict) -> dict:
    return {k: v for k, v in p.items() if k in ("global_orient", "body_pose", "betas", "transl")}


def test_official_smplx_motion_scores_zero_on_egobody_occ(tmp_path):
    root = tmp_path / "egobody"
    info = write_egobody(root)  # SMPL-X fits of frames 1..30, master camera; scored frames 5..24
    body = synthetic_models("smplx", "female")
    protocol = EgoBodyOcc(root, synthetic_models, _scoring())
    gts = list(protocol.sequences())
    pred = tmp_path / "pred" / "moro"
    for gt in gts:
        view = gt.name.split("/")[1]
        p = _no_face(info["params"])
        if view != "master":
            inv = np.linalg.inv(SUB2MASTER[view])
            p = transform_params(body, p, inv[:3, :3], inv[:3, 3])
        motion = write_motion(tmp_path / "runs" / view / "motion.npz", p)
        pr = moro_motion_to_prediction(motion, sequence=gt.name, smplx=body, scoring=_scoring(), frame_offset=1)
        assert pr.scoring == "smplx->smpl (vertex transfer)" and pr.topology == "smpl:72"
        write_prediction(prediction_path(pred, gt.name), pr)
    back = read_prediction(prediction_path(pred, f"{EGO_REC}/master"))
    np.testing.assert_array_equal(back.frame_ids, np.arange(1, 31))
    result = evaluate(protocol, {"moro": pred})
    m = result.methods[0]
    for key in ("pa_mpjpe", "mpjpe", "mpjpe_vis", "mpjpe_occ", "pve", "gmpjpe"):
        assert abs(m.value(key)) < 0.5, (key, m.value(key))  # mm (float32 parameters)


def test_official_smplx_motion_scores_zero_on_rich(tmp_path):
    info = _rich(tmp_path / "rich")  # camera-frame parameters of dataset frames 45..174
    body = synthetic_models("smplx", "female")
    protocol = Rich(tmp_path / "rich", synthetic_models, _scoring())
    motion = write_motion(tmp_path / "run" / "motion.npz", _no_face(info["cam_params"]))
    pred = tmp_path / "pred" / "moro"
    pr = moro_motion_to_prediction(motion, sequence=RICH_VID, smplx=body, scoring=_scoring(), frame_offset=45)
    write_prediction(prediction_path(pred, RICH_VID), pr)
    m = evaluate(protocol, {"moro": pred}).methods[0]
    for key in ("pa_mpjpe", "mpjpe", "pve", "gmpjpe"):
        assert abs(m.value(key)) < 0.5, (key, m.value(key))


def test_official_motion_without_transfer_is_a_labelled_deviation(tmp_path):
    info = _rich(tmp_path / "rich", 20)
    motion = write_motion(tmp_path / "motion.npz", _no_face(info["cam_params"]))
    pr = moro_motion_to_prediction(motion, sequence=RICH_VID, smplx=synthetic_models("smplx", "neutral"))
    assert "DEVIATION" in pr.scoring and pr.joints_cam.shape == (20, 22, 3)


def test_official_motion_bad_input(tmp_path):
    info = _rich(tmp_path / "rich", 12)
    p = _no_face(info["cam_params"])
    motion = write_motion(tmp_path / "a" / "motion.npz", p, source_frame=np.repeat(np.arange(6), 2))
    with pytest.raises(PredictionFileError, match="source frames repeat.*native 30 fps"):
        moro_motion_to_prediction(motion, sequence=RICH_VID, smplx=synthetic_models("smplx", "neutral"))
    motion = write_motion(tmp_path / "b" / "motion.npz", p)
    with pytest.raises(PredictionFileError, match="needs smplx="):
        moro_motion_to_prediction(motion, sequence=RICH_VID)
    with pytest.raises(PredictionFileError, match="has 24 joints"):
        moro_motion_to_prediction(motion, sequence=RICH_VID, smplx=synthetic_models("smpl", "neutral"))
    with pytest.raises(PredictionFileError, match=r"has 165 vertices but the vertex transfer maps 150.*full SMPL-X"):
        moro_motion_to_prediction(motion, sequence=RICH_VID, smplx=synthetic_models("smplx", "neutral"),
                                  scoring=ScoringBody.smplx_to_smpl(smplx_to_smpl_transfer()[:, :150],
                                                                    synthetic_models("smpl", "neutral")))
    with np.load(motion) as z:
        bad = {k: z[k] for k in z.files}
    bad["pose_hand"] = bad["pose_hand"][:, :30]  # PCA-like width: not moro's export
    np.savez(tmp_path / "c.npz", **bad)
    with pytest.raises(PredictionFileError, match=r"pose_hand must have shape \(12, 90\)"):
        moro_motion_to_prediction(tmp_path / "c.npz", sequence=RICH_VID, smplx=synthetic_models("smplx", "neutral"))
    anny = write_motion(tmp_path / "d" / "motion.npz", p, surface="anny")
    pr = moro_motion_to_prediction(anny, sequence=RICH_VID)
    assert pr.scoring.startswith("anny | DEVIATION")
