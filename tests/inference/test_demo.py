"""`moro demo` end to end on a short synthetic video with a random tiny MoRo: every output, the per-frame
baseline decoded frame by frame, scores equal to `moro eval --protocol synth`, the last line, re-runs, errors."""

import json
import re

import numpy as np
import pytest

from moro.cli import main
from moro.inference.demo import (
    DemoConfig, DemoError, per_frame_config, prediction_from_motion, run_demo, score_against_synth,
)
from moro.inference.pipeline import InferenceConfig

SMALL = {"frames": 24, "width": 320, "height": 180, "iterations": 2, "shape_frames": 4}
MORO_OUTPUTS = ["motion.bvh", "motion.glb", "motion.npz", "overlay.mp4", "summary.json", "world.mp4"]


@pytest.fixture(scope="module")
def demo(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    return run_demo(DemoConfig(out=str(out), checkpoint=str(tiny_checkpoint), **SMALL))


def test_demo_writes_everything(demo):
    out = demo.out
    assert sorted(p.name for p in (out / "moro").iterdir()) == MORO_OUTPUTS
    assert sorted(p.name for p in (out / "per_frame").iterdir()) == ["motion.npz", "summary.json"]
    assert {p.name for p in demo.sequence.iterdir()} == {"video.mp4", "labels.npz", "meta.json"}
    meta = json.loads((demo.sequence / "meta.json").read_text())
    assert meta["settings"]["save_vertices"] and meta["occluders"]["count"] > 0  # an occluded, bench/occ-style sequence
    boxes = json.loads((out / "boxes.json").read_text())["boxes"]
    with np.load(demo.sequence / "labels.npz") as z:
        assert np.allclose([b["cxcys"] for b in boxes], z["box_det"], atol=1e-3) and len(boxes) == 24
    moro, base = demo.moro.summary, demo.baseline.summary
    assert moro["boxes"]["source"].endswith("boxes.json") and moro["windows"]["size"] == 500
    assert base["windows"]["size"] == 1 and base["windows"]["count"] == 24  # every frame alone
    assert base["cache"]["features"] == "hit"  # the baseline reused moro's backbone features
    doc = json.loads((out / "demo.json").read_text())
    assert doc["complete"] and doc["frames"] == 24 and set(doc["scores"]) == {"moro", "per_frame"}
    assert doc["headline"] == f"mpjpe_occ_mm={demo.scores['moro']['mpjpe_occ']:.1f} " \
        f"baseline_mpjpe_occ_mm={demo.scores['per_frame']['mpjpe_occ']:.1f} fps={demo.fps:.2f}"
    for run in ("moro", "per_frame"):
        s = demo.scores[run]
        assert np.isfinite(s["mpjpe_occ"]) and s["mpjpe_occ"] > 0 and np.isfinite(s["pve"]) and "foot_sliding" in s


def test_scores_equal_moro_eval(demo):
    """score_against_synth is the synth protocol's scoring: same numbers as `moro eval --protocol synth`;
    the ground truth itself scores zero."""
    from moro.metrics.predictions.format import PredictionSequence
    from moro.metrics.protocols import evaluate
    from moro.metrics.protocols.synth import SynthBenchmark

    motion = demo.moro.motion_path
    result = evaluate(SynthBenchmark(demo.out / "synth"), {"moro": lambda name: prediction_from_motion(motion, name)})
    for key, value in demo.scores["moro"].items():
        assert result.methods[0].value(key) == pytest.approx(value, rel=1e-9, nan_ok=True), key
    with np.load(demo.sequence / "labels.npz") as z:
        gt = PredictionSequence("x", z["frame_ids"], 30.0, z["joints_cam"], vertices_cam=z["vertices_cam"],
                                topology="anny-notoes_collapse5pc:615")
    s = score_against_synth(gt, demo.sequence)
    assert s["mpjpe_occ"] == 0 and s["mpjpe_vis"] == 0 and s["pve"] == 0


def test_per_frame_config():
    cfg = per_frame_config(InferenceConfig(boxes="b.json"))
    assert (cfg.windows.size, cfg.windows.overlap, cfg.windows.drop) == (1, 0, 0)
    assert not (cfg.videos or cfg.glb or cfg.bvh) and cfg.boxes == "b.json"


def test_rerun_reuses_the_video(demo, tiny_checkpoint):
    from moro.synth.writer import SettingsMismatchError

    with pytest.raises(SettingsMismatchError):  # a video made with other settings is refused, never overwritten
        run_demo(DemoConfig(out=str(demo.out), checkpoint=str(tiny_checkpoint), **{**SMALL, "width": 640}))
    assert not (demo.out / "demo.json").exists()  # the failed run left no result that looks current
    r = run_demo(DemoConfig(out=str(demo.out), checkpoint=str(tiny_checkpoint), **SMALL))
    assert r.video_cached and r.scores["moro"]["mpjpe_occ"] == pytest.approx(demo.scores["moro"]["mpjpe_occ"], abs=1e-6)
    assert json.loads((demo.out / "demo.json").read_text())["complete"]


def test_cli_last_line(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "d"
    argv = ["demo", "--out", str(out), "--checkpoint", str(tiny_checkpoint), "--frames", "12", "--iterations", "1",
            "--no-progress"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"mpjpe_occ_mm=\d+\.\d baseline_mpjpe_occ_mm=\d+\.\d fps=\d+\.\d\d", lines[-1]), lines[-1]
    assert any("no person detector was run" in line for line in lines)
    assert any(str(out / "moro" / "overlay.mp4") in line for line in lines)


def test_demo_errors(tmp_path, monkeypatch, capsys):
    from moro.inference.loading import CHECKPOINT_ENV

    monkeypatch.setenv("MORO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv(CHECKPOINT_ENV, raising=False)
    import moro.inference.loading as loading

    monkeypatch.setattr(loading, "PACKAGED_CHECKPOINT", "no-such-model.ckpt")  # as if the tiny model were not shipped
    with pytest.raises(DemoError, match="--checkpoint"):
        run_demo(DemoConfig(out=str(tmp_path / "a")))
    assert not (tmp_path / "a").exists()  # nothing was started
    assert main(["demo", "--out", str(tmp_path / "a")]) == 2
    assert "needs a trained MoRo checkpoint" in capsys.readouterr().err
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("x")
    monkeypatch.setenv(CHECKPOINT_ENV, str(tmp_path / "x.ckpt"))
    (tmp_path / "x.ckpt").write_bytes(b"")
    with pytest.raises(DemoError, match="not a moro demo folder"):
        run_demo(DemoConfig(out=str(mine)))
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]


def test_demo_figure_script(demo, tmp_path, monkeypatch, capsys):
    """scripts/make_demo_figure.py turns a demo folder into the three-row picture."""
    import runpy
    import sys
    from pathlib import Path

    import cv2

    script = Path(__file__).parents[2] / "scripts" / "make_demo_figure.py"
    out = tmp_path / "demo.png"
    monkeypatch.setattr(sys, "argv", [str(script), str(demo.out), "--out", str(out), "--columns", "3", "--span", "9",
                                      "--panel-height", "120"])
    runpy.run_path(str(script), run_name="__main__")
    img = cv2.imread(str(out))
    assert img is not None and img.shape[0] == 3 * 120 + 28  # three rows and the legend
    assert "-> " + str(out) in capsys.readouterr().out
