"""`moro tokenizer summary`, `moro train tokenizer`, `moro eval tokenizer` end to end on the tiny preset (few steps)."""

import re

import pytest

from moro import cli
from moro.training import mesh_source
from moro.training import tokenizer as training


def test_summary_prints_exact_tiny_counts(capsys):
    assert cli.main(["tokenizer", "summary", "--preset", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "615 -> 246 -> 96" in out
    assert re.search(r"^params=\d+ tokens=96 \(exact\)$", out.strip().splitlines()[-1])


def test_summary_of_the_paper_preset_matches_the_authors_count(capsys):
    assert cli.main(["tokenizer", "summary", "--preset", "paper"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("params=7257285 tokens=87")  # + 10,240 codebook buffers = the 7.27M elements of the layout doc


def test_train_resume_and_eval(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(mesh_source, "FRAMES_PER_MOTION", 12)  # cheap motions
    monkeypatch.setitem(training.TRAIN_PRESETS, "tiny", {**training.TRAIN_PRESETS["tiny"], "template_meshes": 4})
    out = tmp_path / "run"
    args = ["train", "tokenizer", "--preset", "tiny", "--out", str(out), "--steps", "3", "--batch", "2", "--log-every", "0"]
    assert cli.main(args) == 0
    assert (out / "tokenizer.ckpt").is_file() and (out / "last.ckpt").is_file()
    assert cli.main(args) == 2  # the folder holds a run: the error asks for --resume
    assert "--resume" in capsys.readouterr().err
    assert cli.main(args + ["--resume"]) == 0  # already complete: nothing to do, exported again
    assert cli.main(["eval", "tokenizer", "--checkpoint", str(out / "tokenizer.ckpt"), "--meshes", "4", "--batch", "2"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"pve_mm=\d+\.\d\d perplexity=\d+\.\d meshes_per_s=\d+", last), last
    with pytest.raises(SystemExit):
        cli.main(["eval", "tokenizer"])  # --checkpoint is required
