"""The synthetic-world writer and ``moro synth``: label consistency, determinism, atomicity, resume.

One tiny bench (2 sequences x 20 frames at 160x90, mesh saved) is written once through the CLI;
the determinism test writes it again with two spawn workers and compares every label array.
"""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch

from moro.body import load_anny
from moro.cli import main
from moro.data.synth import LABELS_FILE, META_FILE, SPLIT_FILE, SynthDataset, find_sequences
from moro.geometry import bbox_from_points
from moro.synth import sequence as sequence_module
from moro.synth.motion import generate_motion
from moro.synth.splits import plan_split
from moro.synth.writer import SettingsMismatchError, write_split

ARGS = dict(sequences=2, frames=20, width=160, height=90, save_vertices=True)
LINE = re.compile(r"^occluded_joint_fraction=(\S+) render_fps=(\S+) gt_foot_sliding_mm=(\S+)$")


@pytest.fixture(scope="module")
def body():
    return load_anny("notoes_collapse5pc")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """(folder, stdout) of `moro synth --split bench` on a tiny size."""
    out = tmp_path_factory.mktemp("synth") / "bench"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["synth", "--split", "bench", "--out", str(out), "--sequences", "2", "--frames", "20", "--width", "160",
                   "--height", "90", "--save-vertices", "--no-progress"])
    assert rc == 0
    return out, buf.getvalue()


def _labels(folder):
    with np.load(folder / LABELS_FILE) as z:
        return {k: z[k] for k in z.files}


def test_cli_writes_both_halves_and_prints_the_proof_line(bench):
    out, text = bench
    m = LINE.match(text.rstrip().splitlines()[-1])
    assert m, text
    occ, fps, slide = (float(x) for x in m.groups())
    assert 0.05 < occ <= 1.0 and fps > 0 and 0 <= slide < 5.0
    assert [n for n, _ in find_sequences(out)] == ["clean/s00000", "occ/s00000"]
    manifest = json.loads((out / SPLIT_FILE).read_text())
    assert manifest["complete"] is True and manifest["seed"] == 2026 and manifest["sequences"] == ["occ/s00000", "clean/s00000"]
    meta = json.loads((out / "occ" / "s00000" / META_FILE).read_text())
    assert list(meta)[-1] == "complete" and meta["occluders"]["count"] >= 1
    assert json.loads((out / "clean" / "s00000" / META_FILE).read_text())["occluders"]["count"] == 0
    assert occ == pytest.approx(meta["stats"]["occluded_joint_fraction"], abs=1e-4)  # bench: the occluded half only


def test_labels_are_consistent(bench, body):
    out, _ = bench
    for name, folder in find_sequences(out):
        lab = _labels(folder)
        K, T = lab["K"], lab["T_w2c"]
        R, t = T[:3, :3], T[:3, 3]
        jc = lab["joints_cam"].astype(np.float64)
        # projecting the camera joints with K gives the 2D keypoints
        uv = jc @ K.T
        np.testing.assert_allclose(uv[..., :2] / uv[..., 2:], lab["kp2d"], atol=1e-3)
        cc = lab["coco_cam"].astype(np.float64) @ K.T
        np.testing.assert_allclose(cc[..., :2] / cc[..., 2:], lab["coco2d"], atol=1e-3)
        # world -> camera maps world joints, feet and the root onto their camera versions
        np.testing.assert_allclose(lab["joints_world"] @ R.T + t, jc, atol=1e-5)
        np.testing.assert_allclose(lab["feet_world"] @ R.T + t, lab["feet_cam"], atol=1e-5)
        np.testing.assert_allclose(R @ lab["root_rot_world"], lab["root_rot_cam"], atol=1e-6)
        np.testing.assert_allclose(lab["root_trans_world"] @ R.T + t, lab["root_trans_cam"], atol=1e-5)
        # the camera-frame body parameters pose the camera-frame mesh, whose joints are the labels
        with torch.no_grad():
            v = body(torch.from_numpy(lab["body_pose"]), torch.from_numpy(lab["betas"]),
                     torch.from_numpy(lab["root_rot_cam"]), torch.from_numpy(lab["root_trans_cam"])).vertices
        np.testing.assert_allclose(v.numpy(), lab["vertices_cam"], atol=1e-4)
        np.testing.assert_allclose(body.joints22(v).numpy(), jc, atol=1e-4)
        np.testing.assert_allclose(v[:, body.foot_vertices].numpy(), lab["feet_cam"], atol=1e-4)
        # GT box = all projected joints x1.2; visibility implies in-image; per-vertex bits unpack to (t, v)
        box = bbox_from_points(torch.from_numpy(lab["kp2d"].astype(np.float64)), scale=1.2).numpy()
        np.testing.assert_allclose(lab["box_gt"], box, rtol=1e-5, atol=1e-3)
        assert not (lab["visibility"] & ~lab["in_image"]).any()
        assert np.unpackbits(lab["vertex_visibility_packed"], axis=-1, count=int(lab["num_vertices"])).shape == (20, 615)
        assert np.isfinite(lab["box_det"]).all() and (lab["box_det"][:, 2] > 0).all()
        # the motion is the generator's for the recorded seed
        meta = json.loads((folder / META_FILE).read_text())
        motion = generate_motion(body, 20, seed=meta["seed"])
        np.testing.assert_array_equal(motion.body_pose.numpy(), lab["body_pose"])
        np.testing.assert_array_equal(motion.contacts.numpy(), lab["contacts"])
        assert [motion.labels[i] for i in range(20)] == list(lab["motion_types"][lab["motion_label"]])


def test_bench_labels_are_deterministic_whatever_the_workers(bench, tmp_path):
    out, _ = bench
    again = tmp_path / "bench"
    summary = write_split(again, plan_split("bench", **ARGS), workers=2, seed=2026)
    assert summary.generated == 2
    for (name, a), (_, b) in zip(find_sequences(out), find_sequences(again)):
        la, lb = _labels(a), _labels(b)
        assert la.keys() == lb.keys()
        for k in la:
            np.testing.assert_array_equal(la[k], lb[k], err_msg=f"{name}: {k}")
    digests = [json.loads((d / SPLIT_FILE).read_text())["labels_digest"] for d in (out, again)]
    assert digests[0] == digests[1]


def test_resume_skips_complete_sequences_and_refuses_other_settings(bench, tmp_path):
    out = tmp_path / "bench"
    shutil.copytree(bench[0], out)
    stale = out / "occ" / "s00000.tmp-crashed"
    shutil.copytree(out / "occ" / "s00000", stale)
    (stale / META_FILE).unlink()
    before = (out / "occ" / "s00000" / LABELS_FILE).stat().st_mtime_ns
    seen = []
    summary = write_split(out, plan_split("bench", **ARGS), seed=2026, progress=lambda r: seen.append(r.name))
    assert summary.generated == 0 and sorted(seen) == ["clean/s00000", "occ/s00000"]
    assert (out / "occ" / "s00000" / LABELS_FILE).stat().st_mtime_ns == before
    assert summary.line().startswith(f"occluded_joint_fraction={summary.occluded_fraction('occ'):.4f} render_fps=nan")
    assert len(SynthDataset(out)) == 2  # the crashed copy is never a sequence
    with pytest.raises(SettingsMismatchError, match="frames"):
        write_split(out, plan_split("bench", **{**ARGS, "frames": 30}), seed=2026)
    grown = write_split(out, plan_split("bench", **{**ARGS, "sequences": 3}), seed=2026)  # extending reuses the rest
    assert (grown.generated, grown.sequences) == (1, 3) and len(SynthDataset(out)) == 3
    write_split(out, plan_split("bench", **ARGS), seed=2026)  # the manifest defines the split again
    assert SynthDataset(out).names == ["clean/s00000", "occ/s00000"]


def test_a_crash_while_writing_leaves_no_sequence(tmp_path, monkeypatch):
    def crash(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(sequence_module, "file_record", crash)
    task = plan_split("val", sequences=1, frames=4, width=64, height=36)
    with pytest.raises(RuntimeError, match="disk full"):
        write_split(tmp_path, task)
    assert not (tmp_path / "s00000").exists() and not list(tmp_path.glob("s00000*"))
    assert not (tmp_path / SPLIT_FILE).exists()


@pytest.mark.parametrize("kwargs, match", [
    (dict(split="test"), "unknown split"), (dict(split="train", sequences=-1), "sequences"),
    (dict(split="train", frames=0), "frames"), (dict(split="train", width=161), "even"),
    (dict(split="train", seed=-3), "seed"), (dict(split="val", height=-90), "height"),
])
def test_plan_split_rejects_impossible_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plan_split(**kwargs)


def test_plan_split_seeds_do_not_depend_on_the_count():
    a, b = plan_split("bench", sequences=4), plan_split("bench", sequences=40)
    assert [t.name for t in a] == ["occ/s00000", "occ/s00001", "clean/s00000", "clean/s00001"]
    assert len(b) == 40 and sum(t.subset == "occ" for t in b) == 20
    assert {t.name: t.seed for t in a}.items() <= {t.name: t.seed for t in b}.items()
    assert plan_split("train", 3)[0].seed != plan_split("val", 3, seed=0)[0].seed
