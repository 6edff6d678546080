"""`moro infer` on many videos: inputs expanded, one folder per video, two CPU worker processes,
a failing video reported without stopping the others, finished videos skipped on a re-run."""

import json

import numpy as np
import pytest
from infer_fixtures import write_video

from moro.cli import main
from moro.inference.batch import collect_videos, output_names, plan_workers, shard_videos
from moro.inference.errors import InputVideoError

FAST = ["--no-videos", "--no-glb", "--no-bvh", "--shape-frames", "4", "--iterations", "2", "--no-progress"]


def test_collect_videos(tmp_path):
    vids = tmp_path / "vids"
    vids.mkdir()
    for name in ("b.mp4", "a.MOV", "notes.md"):
        (vids / name).write_bytes(b"x")
    frames = tmp_path / "frames"
    (frames / "take1").mkdir(parents=True)
    (frames / "take2").mkdir()
    for take in ("take1", "take2"):
        (frames / take / "000.png").write_bytes(b"x")
    (tmp_path / "one.png").write_bytes(b"x")
    lst = tmp_path / "list.txt"
    lst.write_text("# my videos\nvids/b.mp4\n\nframes/take1   # an image folder\n")
    assert collect_videos([vids]) == [vids / "a.MOV", vids / "b.mp4"]  # sorted, not the .md
    assert collect_videos([frames]) == [frames / "take1", frames / "take2"]  # a folder of image folders
    assert collect_videos([frames / "take1"]) == [frames / "take1"]  # an image folder is one video
    assert collect_videos([lst, vids]) == [vids / "b.mp4", frames / "take1", vids / "a.MOV"]  # each once, in order
    lst.write_text("vids/missing.mp4\n")
    with pytest.raises(InputVideoError, match="line 1"):
        collect_videos([lst])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputVideoError, match="no video file"):
        collect_videos([tmp_path / "empty"])
    with pytest.raises(InputVideoError, match="no such"):
        collect_videos([tmp_path / "nope.mp4"])
    other = tmp_path / "other"
    other.mkdir()
    (other / "b.mkv").write_bytes(b"x")
    with pytest.raises(InputVideoError, match="same output folder 'b'"):
        output_names(collect_videos([vids, other]))


def test_plan_workers_and_shards():
    assert plan_workers("cpu", workers=2) == ["cpu", "cpu"]
    assert plan_workers("cuda", cuda_count=3) == ["cuda:0", "cuda:1", "cuda:2"]
    assert plan_workers("cuda", devices=2, workers=2, cuda_count=4) == ["cuda:0", "cuda:0", "cuda:1", "cuda:1"]
    assert plan_workers("cuda:1", cuda_count=4) == ["cuda:1"]
    with pytest.raises(ValueError, match="only 1 CUDA"):
        plan_workers("cuda", devices=2, cuda_count=1)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        plan_workers("cuda", cuda_count=0)
    with pytest.raises(ValueError, match="needs --device cuda"):
        plan_workers("cpu", devices=2)
    with pytest.raises(ValueError, match="--workers"):
        plan_workers("cpu", workers=0)
    v = [f"v{i}" for i in range(7)]
    parts = [shard_videos(v, (i, 3)) for i in range(3)]
    assert parts[0] == ["v0", "v3", "v6"] and sorted(sum(parts, [])) == v
    with pytest.raises(ValueError, match="shard"):
        shard_videos(v, (3, 3))


@pytest.fixture(scope="module")
def video_dir(person_clip, tmp_path_factory):
    """Two 12-frame videos with boxes files beside them, and a broken one."""
    root = tmp_path_factory.mktemp("batch") / "videos"
    root.mkdir()
    for name, start in (("walk_a", 0), ("walk_b", 20)):
        write_video(root / f"{name}.mp4", person_clip["frames"][start : start + 12])
        boxes = [{"frame": i, "cxcys": b.tolist()} for i, b in enumerate(person_clip["boxes"][start : start + 12])]
        (root / f"{name}.boxes.json").write_text(json.dumps({"boxes": boxes}))
    (root / "broken.mp4").write_bytes(b"\x00not a video" * 64)
    return root


def test_two_workers_a_failure_and_skipping_done_videos(video_dir, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["infer", str(video_dir), "--checkpoint", str(tiny_checkpoint), "--out", str(out), "--focal", "300",
            "--cache-dir", str(tmp_path / "cache"), *FAST]
    assert main([*argv, "--workers", "2"]) == 1  # one video failed
    text = capsys.readouterr().out
    assert "2 worker process(es)" in text and "videos=3 done=2 skipped=0 failed=1" in text
    assert sorted(p.name for p in out.iterdir()) == ["infer-batch.json", "walk_a", "walk_b"]  # nothing for the broken one
    records = {r["video"].rsplit("/", 1)[1]: r for r in json.loads((out / "infer-batch.json").read_text())["records"]}
    assert records["broken.mp4"]["status"] == "failed" and "InputVideoError" in records["broken.mp4"]["error"]
    assert records["walk_a.mp4"]["frames"] == 12 and records["walk_a.mp4"]["status"] == "done"
    for name in ("walk_a", "walk_b"):
        s = json.loads((out / name / "summary.json").read_text())
        assert s["complete"] and s["boxes"]["source"].endswith(f"{name}.boxes.json")  # the sidecar boxes were used
        assert s["model"]["checkpoint"] == str(tiny_checkpoint)
    with np.load(out / "walk_b" / "motion.npz") as z:
        assert z["joints22_cam"].shape == (12, 22, 3)

    # a re-run skips the finished videos; an output that is not complete is redone
    summary_b = out / "walk_b" / "summary.json"
    summary_b.write_text(summary_b.read_text().replace('"complete": true', '"complete": false'))
    assert main(argv) == 1
    text = capsys.readouterr().out
    assert "videos=3 done=1 skipped=1 failed=1" in text and "[skipped]" in text and "walk_a" in text
    assert json.loads(summary_b.read_text())["complete"] is True
    assert main([*argv, "--redo", "--shard", "1/3"]) == 0  # this shard is walk_a only (sorted: broken, walk_a, walk_b)
    assert "videos=1 done=1 skipped=0 failed=0" in capsys.readouterr().out
    assert (out / "infer-batch-1of3.json").is_file()


def test_several_videos_refuse_one_boxes_file(video_dir, tiny_checkpoint, tmp_path, capsys):
    argv = ["infer", str(video_dir / "walk_a.mp4"), str(video_dir / "walk_b.mp4"), "--checkpoint", str(tiny_checkpoint),
            "--boxes", str(video_dir / "walk_a.boxes.json"), "--out", str(tmp_path / "o"), *FAST]
    assert main(argv) == 2
    assert "<stem>.boxes.json" in capsys.readouterr().err
    assert main(argv[:5] + FAST) == 2  # several inputs need --out
    assert "--out DIR" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_crash_late_in_a_video_leaves_nothing_that_looks_done(video_dir, tiny_checkpoint, tmp_path, monkeypatch):
    import moro.inference.pipeline as pipeline
    from moro.inference import InferenceConfig
    from moro.inference.batch import run_batch

    def boom(*a, **k):
        raise RuntimeError("disk full")

    cfg = InferenceConfig(checkpoint=str(tiny_checkpoint), focal=300.0, videos=False, glb=False,
                          cache_dir=str(tmp_path / "cache"))
    cfg.fit.shape_frames = 4
    out = tmp_path / "out"
    monkeypatch.setattr(pipeline, "write_bvh_file", boom)  # fails after motion.npz was written
    r = run_batch([video_dir / "walk_a.mp4"], out, cfg)
    assert r.count("failed") == 1 and "RuntimeError: disk full" in r.records[0].error
    assert sorted(p.name for p in out.iterdir()) == ["infer-batch.json"]  # no walk_a/, no hidden temporary folder
    monkeypatch.undo()
    r = run_batch([video_dir / "walk_a.mp4"], out, cfg)
    assert r.count("done") == 1 and (out / "walk_a" / "motion.bvh").is_file()
