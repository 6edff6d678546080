"""End to end: `moro infer` on a 2-second rendered video with a random tiny MoRo writes every output;
a re-run reuses the cached features; bad input raises specific errors and leaves no output behind."""

import json
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from infer_fixtures import write_video

from moro.cli import main
from moro.inference import (
    BodyModelMismatchError, BoxesFileError, EmptyVideoError, InferenceConfig, InputVideoError, InvalidFocalError,
    ModelNotForVideoError, NoPersonError, run_inference,
)
from moro.inference.bvh import read_bvh
from moro.inference.gltf import read_glb

OUTPUTS = ["motion.bvh", "motion.glb", "motion.npz", "overlay.mp4", "summary.json", "world.mp4"]


def _frames(path):
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


@pytest.fixture(scope="module")
def run(person_video, person_boxes, tiny_checkpoint, tmp_path_factory):
    """One full CLI run (module scope: the later tests inspect its outputs)."""
    root = tmp_path_factory.mktemp("infer")
    out = root / "out"
    argv = ["infer", str(person_video), "--boxes", str(person_boxes), "--checkpoint", str(tiny_checkpoint),
            "--focal", "300", "--out", str(out), "--shape-frames", "12", "--cache-dir", str(root / "cache"),
            "--no-progress", "--save-vertices"]
    assert main(argv) == 0
    return {"out": out, "root": root, "argv": argv}


def test_infer_writes_every_output(run, body):
    out = run["out"]
    assert sorted(p.name for p in out.iterdir()) == OUTPUTS
    assert [p.name for p in run["root"].iterdir() if p.name.startswith(".")] == []  # no temporary folder left
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is True and summary["frames"] == 60 and summary["boxes"]["frames_with_box"] == 15
    assert summary["camera"]["focal_px"] == 300 and summary["model"]["body_model"] == "anny/notoes_collapse5pc"
    assert summary["cache"]["features"] == "computed" and summary["windows"]["count"] == 1
    assert _frames(out / "overlay.mp4") == 60 and _frames(out / "world.mp4") == 60
    doc, _ = read_glb(out / "motion.glb")
    assert len(doc["nodes"]) == body.num_joints + 1
    bvh = read_bvh(out / "motion.bvh")
    assert len(bvh.motion) == 60 and len(bvh.names) == body.num_joints


def test_motion_npz_is_consistent(run, body):
    with np.load(run["out"] / "motion.npz") as z:
        m = {k: z[k] for k in z.files}
    t, j = 60, body.num_joints
    shapes = {"poses": (t, 3 * j), "pose_body": (t, 3 * (j - 1)), "root_orient": (t, 3), "trans": (t, 3),
              "body_pose": (t, j - 1, 3, 3), "root_rot_world": (t, 3, 3), "joints22_world": (t, 22, 3),
              "joints22_cam": (t, 22, 3), "joints2d": (t, 22, 2), "bbox": (t, 3), "bbox_detected": (t,),
              "confidence": (t,), "joint_confidence": (t, 22), "contact": (t, 4), "token_ids": (t, 96),
              "vertices_cam": (t, body.num_vertices, 3), "betas": (body.num_betas,), "time": (t,)}
    for k, s in shapes.items():
        assert m[k].shape == s, k
    assert str(m["surface_model_type"]) == "anny" and float(m["mocap_frame_rate"]) == 30.0
    assert m["bbox_detected"].sum() == 15 and np.allclose(m["time"], np.arange(t) / 30)
    assert np.all((m["confidence"] >= 0) & (m["confidence"] <= 1)) and m["contact"].dtype == bool
    T = m["T_cam2world"]
    assert np.allclose(m["joints22_cam"] @ T[:3, :3].T + T[:3, 3], m["joints22_world"], atol=1e-4)
    # the parameters reproduce the stored mesh and joints, in both frames
    betas = torch.from_numpy(m["betas"])
    cam = body(torch.from_numpy(m["body_pose"]), betas, torch.from_numpy(m["root_rot_cam"]),
               torch.from_numpy(m["root_trans_cam"]))
    assert np.allclose(cam.vertices.numpy(), m["vertices_cam"], atol=1e-4)
    assert np.allclose(body.joints22(cam.vertices).numpy(), m["joints22_cam"], atol=1e-4)
    world = body(torch.from_numpy(m["body_pose"]), betas, torch.from_numpy(m["root_rot_world"]),
                 torch.from_numpy(m["root_trans_world"]))
    assert np.allclose(body.joints22(world.vertices).numpy(), m["joints22_world"], atol=1e-4)
    assert np.allclose(m["trans"], m["root_trans_world"] - body.root_joint_rest(betas).numpy(), atol=1e-5)


def test_rerun_reuses_cached_features(run):
    argv = list(run["argv"])
    argv[argv.index("--save-vertices")] = "--no-videos"
    argv += ["--iterations", "1", "--no-glb", "--no-bvh"]
    assert main(argv) == 0
    summary = json.loads((run["out"] / "summary.json").read_text())
    assert summary["cache"]["features"] == "hit" and summary["decoding"]["iterations"] == 1
    assert "features" in summary["timings_s"] and summary["timings_s"]["features"] < 1.0
    assert sorted(p.name for p in run["out"].iterdir()) == ["motion.npz", "summary.json"]  # replaced as a whole


def _expect_no_output(out: Path):
    assert not out.exists() and not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def test_bad_inputs(tmp_path, person_video, person_boxes, tiny_checkpoint, tiny_model, body, capsys):
    out = tmp_path / "out"
    cfg = lambda **kw: InferenceConfig(checkpoint=str(tiny_checkpoint), cache_dir=str(tmp_path / "c"), **kw)  # noqa: E731
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 64)
    with pytest.raises(InputVideoError, match="not a readable video"):
        run_inference(junk, out, cfg())
    empty = tmp_path / "empty.mp4"
    with av.open(str(empty), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    with pytest.raises((EmptyVideoError, InputVideoError)):
        run_inference(empty, out, cfg(boxes=str(person_boxes)))
    _expect_no_output(out)
    blank = write_video(tmp_path / "blank.mp4", np.zeros((6, 96, 128, 3), np.uint8))
    with pytest.raises(NoPersonError, match="no person"):
        run_inference(blank, out, InferenceConfig(checkpoint=str(tiny_checkpoint), use_cache=False))
    _expect_no_output(out)
    bad_boxes = tmp_path / "boxes.csv"
    bad_boxes.write_text("frame,x0,y0,x1,y1\n0,1,2,3\n")
    with pytest.raises(BoxesFileError, match="line 2"):
        run_inference(person_video, out, cfg(boxes=str(bad_boxes)))
    with pytest.raises(InvalidFocalError):
        run_inference(person_video, out, cfg(focal=-3.0))
    assert main(["infer", str(person_video), "--focal", "0", "--checkpoint", str(tiny_checkpoint), "--out", str(out)]) == 2
    assert "focal length must be" in capsys.readouterr().err
    with pytest.raises(BodyModelMismatchError, match="predicts anny meshes"):
        run_inference(person_video, out, cfg(boxes=str(person_boxes), body_model="smplx"))
    _expect_no_output(out)


def test_checkpoints_that_cannot_run(tmp_path, person_video, person_boxes):
    sys.path.insert(0, str(Path(__file__).parents[1] / "model"))
    from moro_tiny import tiny_model as grid_model
    from moro_tiny import tiny_tokenizer

    from moro.model import MoRo, MoRoConfig
    from moro.model.image_encoder import ImageEncoder, ImageEncoderConfig, build_image_backbone

    motion_only = tmp_path / "motion.pt"
    grid_model().save(motion_only)
    with pytest.raises(ModelNotForVideoError, match="motion-only"):
        run_inference(person_video, tmp_path / "o", InferenceConfig(checkpoint=str(motion_only), boxes=str(person_boxes)))
    tok = tiny_tokenizer()  # a 120-vertex grid: no body model's mesh
    icfg = ImageEncoderConfig.tiny()
    other = MoRo(MoRoConfig.tiny(tok.config, tok.num_vertices), tok, ImageEncoder(icfg), backbone=build_image_backbone(icfg))
    path = tmp_path / "other.pt"
    other.save(path)
    with pytest.raises(BodyModelMismatchError, match="120 vertices"):
        run_inference(person_video, tmp_path / "o", InferenceConfig(checkpoint=str(path), boxes=str(person_boxes)))
    _expect_no_output(tmp_path / "o")


def test_checkpoint_resolution(tmp_path, monkeypatch, tiny_checkpoint):
    from moro.inference.loading import CHECKPOINT_ENV, SHIPPED_CHECKPOINT, resolve_checkpoint

    import moro.inference.loading as loading

    monkeypatch.setenv("MORO_DATA_DIR", str(tmp_path))
    monkeypatch.delenv(CHECKPOINT_ENV, raising=False)
    packaged = tmp_path / "assets" / "moro_tiny.ckpt"
    monkeypatch.setattr(loading, "asset_path", lambda name: tmp_path / "assets" / name)
    with pytest.raises(FileNotFoundError, match="--checkpoint"):
        resolve_checkpoint(None)
    packaged.parent.mkdir()
    packaged.write_bytes(b"")
    assert resolve_checkpoint(None) == packaged  # the model shipped inside the package comes last
    monkeypatch.setenv(CHECKPOINT_ENV, str(tiny_checkpoint))
    assert resolve_checkpoint(None) == tiny_checkpoint
    monkeypatch.delenv(CHECKPOINT_ENV)
    shipped = tmp_path.joinpath(*SHIPPED_CHECKPOINT)
    shipped.parent.mkdir(parents=True)
    shipped.write_bytes(b"")
    assert resolve_checkpoint(None) == shipped
    with pytest.raises(FileNotFoundError, match="not found"):
        resolve_checkpoint(tmp_path / "nope.pt")
