"""`moro bench accuracy --quick` and `moro bench speed --quick` on tiny fixtures: last-line formats, RESULTS.md."""

from __future__ import annotations

import re

import pytest
import torch

from moro.cli import main


@pytest.fixture(scope="module")
def fixture_splits(tmp_path_factory):
    """A random tiny checkpoint, a 2-sequence bench split (occ + clean) and a 1-sequence val split, 24 frames each."""
    from moro.bench.models import build_network
    from moro.synth.splits import plan_split
    from moro.synth.writer import write_split

    root = tmp_path_factory.mktemp("bench")
    torch.set_num_threads(1)
    model, _ = build_network("tiny", "cpu", None)
    model.save(root / "moro-tiny-random.ckpt")
    write_split(root / "bench", plan_split("bench", sequences=2, frames=24, width=160, height=90, save_vertices=True),
                seed=2026)
    write_split(root / "val", plan_split("val", sequences=1, frames=24, width=160, height=90), seed=1)
    return root


def test_accuracy_quick_prints_the_ratios_last(fixture_splits, tmp_path, capsys):
    r = fixture_splits
    rc = main(["bench", "accuracy", "--quick", "--checkpoint", str(r / "moro-tiny-random.ckpt"), "--bench", str(r / "bench"),
               "--val", str(r / "val"), "--frames", "16", "--results", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert re.fullmatch(r"mpjpe_occ_ratio=\d+\.\d{3} jitter_ratio=\d+\.\d{3}", out.rstrip().splitlines()[-1])
    assert "RANDOM WEIGHTS" in out and "network's own mesh joints" in out
    page = (tmp_path / "RESULTS.md").read_text()
    assert "Row `mean pose`: moro's decoded trajectory" in page
    for row in ("| moro |", "| per-frame |", "| per-frame+gaussian |", "| per-frame+one-euro |", "| mean pose |",
                "| moro averaged pose |", "| moro no carry |",
                "| moro no prior |", "| moro K=1 |", "| moro K=3 |", "| moro K=10 |"):
        assert row in page
    assert (tmp_path / "results" / "accuracy.json").is_file()
    assert (tmp_path / "results" / "error_vs_occlusion.png").is_file() or "matplotlib is not installed" in page


def test_mean_pose_row_places_one_body_with_the_decoded_trajectory(fixture_splits):
    """mean_local_mesh is the vertex-wise mean of the posed ground-truth bodies; mean_pose_variant turns and
    moves that one mesh by each frame's trajectory, so every frame's root-relative mesh, unrotated, is it."""
    import numpy as np

    from moro.bench.accuracy import _sequences, mean_local_mesh, mean_pose_variant
    from moro.bench.models import build_network
    from moro.geometry.rotations import rot6d_to_rotmat, rotmat_to_rot6d
    from moro.inference.loading import resolve_body

    body = resolve_body(build_network("tiny", "cpu", str(fixture_splits / "moro-tiny-random.ckpt"))[0])
    seqs = _sequences(fixture_splits / "val", None)
    mean = mean_local_mesh(body, seqs, 10)
    lab = seqs[0].labels
    direct = body(torch.as_tensor(lab["body_pose"][:10]), torch.as_tensor(lab["betas"])).vertices.mean(0)
    torch.testing.assert_close(mean, direct, atol=1e-5, rtol=0)
    g = torch.Generator().manual_seed(0)
    rot = torch.linalg.qr(torch.randn(5, 3, 3, generator=g, dtype=torch.float64))[0]
    rot = rot * torch.sign(torch.linalg.det(rot))[:, None, None]
    trans = torch.randn(5, 3, generator=g, dtype=torch.float64) + torch.tensor([0.0, 0.0, 4.0], dtype=torch.float64)
    traj = torch.cat((rotmat_to_rot6d(rot), trans), -1).numpy().astype(np.float32)
    out = mean_pose_variant(body, mean, traj)
    back = (torch.from_numpy(out["vertices_cam"]).double() - trans[:, None]) @ rot6d_to_rotmat(
        torch.from_numpy(traj[:, :6]).double())
    torch.testing.assert_close(back, mean.double()[None].expand(5, -1, -1), atol=1e-4, rtol=0)
    assert out["joints_cam"].shape == (5, 22, 3) and out["feet_cam"].shape == (5, 4, 3)
    # the averaged-pose row recovers the local meshes and averages them: one body placed twice gives it back
    from moro.bench.accuracy import averaged_pose_variant, local_meshes

    torch.testing.assert_close(local_meshes(out["vertices_cam"], traj), back, atol=1e-6, rtol=0)
    two = np.concatenate([out["vertices_cam"][:1], mean_pose_variant(body, 0.5 * mean, traj[:1])["vertices_cam"]])
    avg = averaged_pose_variant(body, two, np.concatenate([traj[:1], traj[:1]]))
    torch.testing.assert_close(torch.from_numpy(avg["vertices_cam"][0]),
                               torch.from_numpy(mean_pose_variant(body, 0.75 * mean, traj[:1])["vertices_cam"][0]),
                               atol=1e-5, rtol=0)


def _fake(spec: dict) -> dict:
    """Canned child results (the real children take minutes); one scaling point runs for real below."""
    r = {**spec, "peak_rss_mb": 500.0}
    if spec["kind"] == "matmul":
        return {**spec, "flops_per_s": 1e11, "size": 2048, "dtype": "float32"}
    if spec["kind"] == "tokenizer":
        return {**r, "encode_fps": 100.0, "decode_fps": 50.0, "vertices": 615, "tokens": 96}
    if spec["kind"] == "decode":
        return {**r, "fps": 3.0, "timed_passes": spec.get("passes", 5), "flops": 1e9 * spec["frames"],
                "achieved_flops_per_s": 3e9}
    if spec["kind"] == "pipeline":
        return {**r, "fps": 2.5, "timed_passes": spec.get("passes") or 5, "fit": spec["network"] == "tiny",
                "stages_ms_per_frame": {"crops": 1.0, "backbone": 2.0, "encode+decode": 300.0}}
    return {**r, "seconds": 0.5 + 0.01 * spec["frames"], "fps": 1.0, "peak_rss_mb": 800.0 + 0.1 * spec["frames"]}


def test_speed_quick_prints_the_headline_last(tmp_path, capsys, monkeypatch):
    import moro.bench.speed as speed

    monkeypatch.setattr(speed, "run_child", lambda spec, threads=None: _fake(spec))
    assert main(["bench", "speed", "--quick", "--results", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.rstrip().splitlines()
    m = re.fullmatch(r"tiny_fps=(\S+) paper_decode_fps=(\S+) peak_mem_ratio_18000_vs_600=(\S+)", lines[-1])
    assert m and float(m.group(1)) == 2.5 and float(m.group(2)) == 3.0
    assert float(m.group(3)) == pytest.approx(980.0 / 860.0, abs=1e-3)  # quick: 1800 vs 600, said in the output
    assert any("SHORTENED" in ln for ln in lines)
    page = (tmp_path / "RESULTS.md").read_text()
    assert "masked decoding" in page and "% of peak" in page and "Scaling" in page


def test_a_measurement_runs_in_a_fresh_child():
    from moro.bench.measure import run_child

    r = run_child({"kind": "scaling", "network": "micro", "frames": 40, "iterations": 1, "device": "cpu"}, threads=1)
    assert r["frames"] == 40 and r["seconds"] > 0 and r["peak_rss_mb"] > 100 and r["network_info"]["width"] == 32
