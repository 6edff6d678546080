"""The synthetic benchmark protocol: GT from ``moro synth`` labels, the eval round trip, known perturbations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from moro.cli import main
from moro.data.synth import SynthDataset
from moro.metrics.predictions import PredictionSequence, prediction_path, write_prediction
from moro.metrics.protocols import EvalConfig, GroundTruthError, SynthBenchmark, evaluate, run_eval, write_gt_predictions
from moro.synth.splits import plan_split
from moro.synth.writer import write_split


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth_eval") / "bench"
    write_split(out, plan_split("bench", sequences=2, frames=20, width=160, height=90, save_vertices=True), seed=2026)
    return out


def test_ground_truth_comes_from_the_labels(bench):
    protocol = SynthBenchmark(bench)
    gts = list(protocol.sequences())
    assert [g.name for g in gts] == ["clean/s00000", "occ/s00000"]
    for gt in gts:
        lab = SynthDataset(bench)[gt.name].labels
        assert gt.num_frames == 20 and gt.fps == 30.0 and gt.topology == "anny-notoes_collapse5pc:615"
        np.testing.assert_array_equal(gt.visibility, lab["visibility"])
        np.testing.assert_allclose(gt.camera_to_world(gt.joints_cam), gt.joints_world, atol=1e-5)
        np.testing.assert_array_equal(gt.boxes, lab["box_det"])
        np.testing.assert_array_equal(gt.foot_vertex_ids, lab["foot_vertex_ids"])
    assert (~gts[1].visibility).any() and gts[1].meta["subset"] == "occ"
    with_gt_boxes = next(SynthBenchmark(bench, use_gt_boxes=True).sequences())
    np.testing.assert_array_equal(with_gt_boxes.boxes, SynthDataset(bench)["clean/s00000"].labels["box_gt"])


def test_eval_of_the_ground_truth_prints_zeros(bench, tmp_path, capsys):
    pred = tmp_path / "pred"
    assert len(write_gt_predictions(bench, pred)) == 2
    rc = main(["eval", "--protocol", "synth", "--gt", str(bench), "--pred", str(pred), "--out", str(tmp_path / "eval"),
               "--no-plot"])
    text = capsys.readouterr().out
    assert rc == 0 and text.rstrip().splitlines()[-1] == "metrics_ok=1"
    rows = {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[2:-1]] for r in text.splitlines()
            if r.startswith("| ") and not r.startswith("| Method")}
    gt_row, ref = rows["ground-truth"], rows["GT (reference)"]
    assert gt_row[:9] == ["0.00"] * 9  # PA-MPJPE, MPJPE all/vis/occ, PVE, GMPJPE, RTE, Accel, G-accel
    assert gt_row[9:] == ref[9:]  # jitter and sliding equal the ground truth's own
    data = json.loads((tmp_path / "eval" / "synth_metrics.json").read_text())
    m = data["methods"][0]["metrics"]
    assert m["mpjpe_occ"]["value"] == pytest.approx(0.0, abs=1e-3) and m["mpjpe_occ"]["entries"] > 0
    assert m["pve"]["value"] == pytest.approx(0.0, abs=1e-3) and m["pve"]["entries"] == 40


def test_known_perturbations_are_scored_exactly(bench, tmp_path):
    pred = tmp_path / "pred"
    d = np.zeros((22, 3))
    d[:, 0] = 0.01
    d[2, 0] = -0.01  # hips opposite: pelvis kept, every joint 10 mm off
    c, s = np.cos(0.3), np.sin(0.3)
    R = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    for gt in SynthBenchmark(bench).sequences():
        for method, joints in (("offset", gt.joints_cam + d), ("similar", 1.1 * gt.joints_cam @ R.T + [0.2, 0.0, 0.5])):
            write_prediction(prediction_path(pred / method, gt.name), PredictionSequence(
                sequence=gt.name, frame_ids=gt.frame_ids, fps=gt.fps, joints_cam=joints))
    result, _ = run_eval(EvalConfig(protocol="synth", gt_root=bench, pred_dir=pred, methods=["offset", "similar"]))
    offset, similar = (m.values for m in result.methods)
    for key in ("mpjpe", "mpjpe_vis", "mpjpe_occ"):
        assert offset[key].mean == pytest.approx(10.0, abs=1e-3)
    assert similar["pa_mpjpe"].mean == pytest.approx(0.0, abs=1e-3) and similar["mpjpe"].mean > 10 and result.ok


def test_bad_ground_truth_roots_are_named(tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    rc = main(["eval", "--protocol", "synth", "--gt", str(tmp_path), "--pred", str(tmp_path)])
    assert rc == 2 and "no moro synthetic sequence folders" in capsys.readouterr().err
    with pytest.raises(GroundTruthError, match="not found"):
        SynthBenchmark(tmp_path / "missing")


def test_only_one_half_can_be_scored(bench, tmp_path):
    pred = tmp_path / "pred"
    write_gt_predictions(bench / "occ", pred)
    result = evaluate(SynthBenchmark(bench / "occ"), {"gt": pred / "ground-truth"})
    assert result.n_sequences == 1 and result.methods[0].values["mpjpe"].mean == pytest.approx(0.0, abs=1e-3)
