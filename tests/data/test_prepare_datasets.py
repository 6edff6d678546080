"""``moro prepare`` (amass, bedlam, egobody, rich, images): manifest, resumption, skips, the prepared reader."""

from __future__ import annotations

import json

import numpy as np
import pytest
from real_fixtures import bedlam_person, synthetic_models, write_amass_g, write_amass_n, write_bedlam_scene, write_egobody, write_rich

from moro.cli_prepare import prepare
from moro.data.prepared import PreparedDataset


def _amass(root):
    write_amass_n(root / "ACCAD" / "s1" / "walk_stageii.npz", frames=400, fps=120, seed=1)  # 100 frames -> 1 clip
    write_amass_g(root / "CMU" / "01" / "01_01_poses.npz", frames=260, fps=60, seed=2)  # 130 frames -> 2 clips
    write_amass_n(root / "SFU" / "0005" / "0005_Walk_stageii.npz", frames=300, fps=120, seed=3)  # test: 75 frames -> 1 clip
    write_amass_n(root / "SFU" / "0005" / "0005_Odd_stageii.npz", frames=100, fps=100, seed=4)  # 100 fps: skipped
    write_amass_n(root / "HDM05" / "dg" / "HDM_dg_07-01_01_120_stageii.npz", frames=130, fps=120, seed=5)  # excluded
    write_amass_n(root / "KIT" / "3" / "x_stageii.npz", frames=130, fps=120, seed=6)  # no split


def test_prepare_amass_manifest_stats_skips_and_reader(tmp_path):
    src, out = tmp_path / "amass", tmp_path / "out"
    _amass(src)
    m = prepare("amass", src, out, synthetic_models, progress=False)
    c = m["counts"]
    assert (c["items"], c["sequences"], c["clips"], c["skipped"]) == (6, 3, 4, 3)
    assert c["per_split"] == {"test": {"sequences": 1, "clips": 1}, "train": {"sequences": 2, "clips": 3}}
    assert "not an integer multiple of 30" in m["skipped"]["SFU/0005/0005_Odd_stageii.npz"]
    assert "exclusion" in m["skipped"]["HDM05/dg/HDM_dg_07-01_01_120_stageii.npz"]
    ds = PreparedDataset(out)
    assert ds.clip_index("test") == [("SFU/0005/0005_Walk@00000", 0, 60)]
    clip = ds.clip(0, "train")
    assert clip.num_frames == 60 and clip.dataset == "amass" and clip.body.body_pose.shape == (60, 54, 3, 3)
    # the prepared clip reproduces the reader's clip (rotations stored as axis-angle)
    from moro.data.amass import amass_clip, read_amass
    ref = amass_clip(read_amass(src / "ACCAD" / "s1" / "walk_stageii.npz", src), synthetic_models)
    np.testing.assert_allclose(clip.joints_world, ref.joints_world[:60], atol=1e-6)
    np.testing.assert_allclose(clip.body.root_rot_world, ref.body.root_rot_world[:60], atol=1e-5)
    stats = ds.trajectory_stats()
    assert stats.mean.shape == (9,) and (stats.std > 0).all()
    assert json.loads((out / "trajectory_stats.json").read_text())["frames"] == 3 * 59


def test_prepare_amass_resumes_without_redoing_finished_items(tmp_path, monkeypatch):
    src, out = tmp_path / "amass", tmp_path / "out"
    _amass(src)
    prepare("amass", src, out, synthetic_models, progress=False, limit=2)
    done = sorted(p.name for p in (out / "items").iterdir())
    import moro.cli_prepare as cp
    calls = []
    real = cp._work
    monkeypatch.setattr(cp, "_work", lambda d, item, r, o: calls.append(item["id"]) or real(d, item, r, o))
    m = prepare("amass", src, out, synthetic_models, progress=False)
    assert len(done) == 2 and len(calls) == 4  # the two finished items were not redone
    assert m["counts"]["sequences"] == 3 and not list(out.rglob("*.tmp"))


def test_prepare_bedlam_egobody_rich(tmp_path):
    bed = tmp_path / "bedlam"
    frames = list(range(0, 62)) + list(range(70, 75))
    write_bedlam_scene(bed / "20221010_3_1000_batch01hand_6fps.npz", {"seq_000003": {"a": (frames, bedlam_person(len(frames), 1))}})
    m = prepare("bedlam", bed, tmp_path / "b_out", synthetic_models, progress=False)
    info = m["sequences"]["20221010_3_1000_batch01hand_6fps/seq_000003/p0"]
    assert info["clips"] == [[0, 60]] and info["frames"] == 67 and info["kept_frames"] == 67  # no clip across the gap
    ego = tmp_path / "ego"
    write_egobody(ego, frames=64, start=3, end=12, nan_outside=False)
    (ego / "data_info_release.csv").write_text("recording_name,body_idx_0,body_idx_1,body_idx_fpv,start_frame,end_frame,scene_name\n"
                                               "recording_20210921_S11_S10_01,0 male,1 female,0 male,1,64,seminar_j716\n")
    m = prepare("egobody", ego, tmp_path / "e_out", synthetic_models, progress=False)
    assert m["counts"]["sequences"] == 2 and m["counts"]["clips"] == 2  # body 1 from master and sub_2
    assert m["counts"]["skipped"] == 2 and "fits of body 0 not found" in next(iter(m["skipped"].values()))
    seq = PreparedDataset(tmp_path / "e_out")["recording_20210921_S11_S10_01/sub_2/body_1"]
    np.testing.assert_allclose(seq.data["dist_coeffs"], [0.1, -0.05, 0, 0, 0])
    rich = tmp_path / "rich"
    rich.mkdir()
    write_rich(rich, frames=20)
    m = prepare("rich", rich, tmp_path / "r_out", synthetic_models, progress=False)
    assert list(m["sequences"]) == ["test/Gym_013_burpee4/cam_06"] and m["counts"]["frames"] == 20


def test_prepare_amass_rich_registered_on_the_cli(tmp_path):
    from moro.cli import build_parser, main

    args = build_parser().parse_args(["prepare", "amass", "--root", "A", "--out", "B", "--workers", "2"])
    assert (args.dataset, args.root, args.out, args.workers) == ("amass", "A", "B", 2)
    assert main(["prepare", "rich", "--root", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    with pytest.raises(SystemExit):
        build_parser().parse_args(["prepare", "h36m", "--root", "A", "--out", "B"])
