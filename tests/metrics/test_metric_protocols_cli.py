"""``moro eval``: table with methods side by side, CSV / JSON / PNG, ``metrics_ok``, a foreign synth folder."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from test_metric_protocols_egobody import write_method
from test_metric_protocols_fixtures import smplx_to_smpl_transfer, synthetic_models, write_egobody

import moro.metrics.protocols.run as run_module
from moro.cli import main
from moro.metrics.predictions import ScoringBody
from moro.metrics.protocols import EgoBodyOcc


@pytest.fixture
def egobody_eval(tmp_path, monkeypatch):
    """EgoBody fixture, two methods' predictions, synthetic body models behind the CLI."""
    gt_root = tmp_path / "egobody"
    gt_root.mkdir()
    write_egobody(gt_root)
    scoring = ScoringBody.smplx_to_smpl(smplx_to_smpl_transfer(), synthetic_models("smpl", "neutral"))
    gts = list(EgoBodyOcc(gt_root, synthetic_models, scoring).sequences())
    pred = tmp_path / "pred"
    write_method(pred, "moro", gts)
    d = np.zeros((22, 3))
    d[:, 0] = 0.01
    d[2, 0] = -0.01  # hips opposite: pelvis kept, every joint 10 mm off
    write_method(pred, "offset", gts, lambda gt: gt.joints_cam + d)
    np.save(tmp_path / "smplx2smpl.npy", smplx_to_smpl_transfer().numpy())
    monkeypatch.setattr(run_module, "file_body_models", lambda **kw: synthetic_models)
    return gt_root, pred, tmp_path


def test_eval_prints_table_writes_files_and_metrics_ok(egobody_eval, capsys):
    gt_root, pred, tmp = egobody_eval
    out = tmp / "out"
    rc = main(["eval", "--protocol", "egobody-occ", "--gt", str(gt_root), "--pred", str(pred), "--method", "offset",
               "moro", "--out", str(out), "--smplx2smpl", str(tmp / "smplx2smpl.npy")])
    text = capsys.readouterr().out
    assert rc == 0 and text.rstrip().splitlines()[-1] == "metrics_ok=1"
    lines = text.splitlines()
    assert lines[0].startswith("| Method | PA-MPJPE (mm) | MPJPE-all (mm) | MPJPE-vis (mm) | MPJPE-occ (mm) | PVE (mm)")
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| Method")]
    assert [r.split("|")[1].strip() for r in rows] == ["offset", "moro", "GT (reference)"]  # --method order
    assert rows[0].split("|")[3].strip() == "10.00" and rows[1].split("|")[3].strip() == "0.00"
    with open(out / "egobody-occ_metrics.csv") as fh:
        table = list(csv.DictReader(fh))
    assert [r["method"] for r in table] == ["offset", "moro", "GT (reference)"]
    assert float(table[0]["MPJPE-occ [mm]"]) == pytest.approx(10.0, abs=2e-3)
    data = json.loads((out / "egobody-occ_metrics.json").read_text())
    assert data["metrics_ok"] is True and data["methods"][0]["metrics"]["gmpjpe"]["unit"] == "mm"
    assert data["methods"][0]["per_joint_mm"]["vis"]["head"] == pytest.approx(10.0, abs=2e-3)
    assert len(data["methods"][1]["per_sequence"]) == 2
    import cv2

    img = cv2.imread(str(out / "egobody-occ_per_joint.png"))
    assert img is not None and img.shape[0] > 200 and img.shape[1] > 400
    assert (out / "egobody-occ_per_sequence.csv").is_file()


def test_eval_missing_prediction_is_an_error_naming_the_sequence(egobody_eval, capsys):
    gt_root, pred, tmp = egobody_eval
    (pred / "moro" / "recording_20210921_S11_S10_01" / "sub_2.npz").unlink()
    rc = main(["eval", "--protocol", "egobody-occ", "--gt", str(gt_root), "--pred", str(pred), "--method", "moro",
               "--no-plot", "--smplx2smpl", str(tmp / "smplx2smpl.npy")])
    err = capsys.readouterr().err
    assert rc == 2 and "sub_2.npz not found for sequence 'recording_20210921_S11_S10_01/sub_2'" in err


def test_eval_unknown_method_lists_available(egobody_eval, capsys):
    gt_root, pred, _ = egobody_eval
    assert main(["eval", "--protocol", "egobody-occ", "--gt", str(gt_root), "--pred", str(pred), "--method", "x"]) == 2
    assert "['moro', 'offset']" in capsys.readouterr().err


def test_eval_synth_names_a_folder_without_synthetic_data(tmp_path, capsys):
    rc = main(["eval", "--protocol", "synth", "--gt", str(tmp_path), "--pred", str(tmp_path)])
    assert rc == 2 and "no moro synthetic sequence folders" in capsys.readouterr().err
