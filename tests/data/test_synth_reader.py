"""Reader of the synthetic world (moro.data.synth): samples and clips in the shared schema, streaming,
and specific errors for truncated, partial and foreign folders."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from moro.data import (
    Clip, CorruptFileError, ForeignFolderError, IncompleteSequenceError, Sample, SynthDataset, SynthFormatError,
    SynthSequence, VideoError, find_sequences, read_frames,
)
from moro.data.synth import LABELS_FILE, META_FILE, SPLIT_FILE
from moro.synth.splits import plan_split
from moro.synth.writer import write_split

T, W, H = 20, 160, 90


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """A 2-sequence val split (mp4) and the same first sequence written as PNG frames."""
    root = tmp_path_factory.mktemp("synth_reader")
    write_split(root / "val", plan_split("val", sequences=2, frames=T, width=W, height=H))
    write_split(root / "val_png", plan_split("val", sequences=1, frames=T, width=W, height=H, png=True))
    return root


@pytest.fixture
def seq_copy(split, tmp_path):
    """A private copy of one complete sequence folder (to damage)."""
    dst = tmp_path / "s00000"
    shutil.copytree(split / "val" / "s00000", dst)
    return dst


def test_dataset_lists_sequences_and_indexes_frames(split):
    ds = SynthDataset(split / "val")
    assert ds.names == ["s00000", "s00001"] and len(ds) == 2 and ds.num_samples == 2 * T
    s = ds.sample(T + 3)
    assert isinstance(s, Sample) and s.sequence == "s00001" and s.frame_id == 3
    np.testing.assert_array_equal(s.joints_cam, ds["s00001"].labels["joints_cam"][3])


def test_sample_fields_follow_the_schema(split):
    seq = SynthDataset(split / "val")[0]
    s = seq.sample(5, image=True, vertex_visibility=True)
    assert s.image.shape == (H, W, 3) and s.image.dtype == np.uint8
    assert s.joints_cam.shape == (22, 3) and s.coco2d.shape == (17, 2) and s.visibility.shape == (22,)
    assert s.box_gt.shape == (3,) and s.vertex_visibility.shape == (615,) and s.K.shape == (3, 3)
    assert s.body.body_pose.shape == (35, 3, 3) and s.body.betas.shape == (136,) and s.body.model == "anny:notoes_collapse5pc"
    assert s.image_size == (W, H) and s.fps == 30.0 and isinstance(s.motion_label, str)
    assert s.vertices_cam is None  # not saved without --save-vertices


def test_clip_streaming_equals_decoded_frames(split):
    seq = SynthSequence(split / "val" / "s00000")
    clip = seq.clip(7, 9)
    assert isinstance(clip, Clip) and clip.images.shape == (9, H, W, 3) and list(clip.frame_ids) == list(range(7, 16))
    all_frames = np.stack(list(seq.frames()))  # one pass from frame 0
    assert all_frames.shape == (T, H, W, 3)
    for i in range(9):
        single = seq.sample(7 + i, image=True)
        np.testing.assert_array_equal(clip.images[i], single.image)
        np.testing.assert_array_equal(clip.images[i], all_frames[7 + i])
        one = clip.sample(i)
        np.testing.assert_array_equal(one.kp2d, single.kp2d)
        np.testing.assert_array_equal(one.body.root_rot_cam, single.body.root_rot_cam)
        assert one.frame_id == single.frame_id and one.motion_label == single.motion_label
    assert [c.frame_ids[0] for c in seq.clips(8, images=False)] == [0, 8]


def test_png_frames_match_the_video(split):
    png = SynthSequence(split / "val_png" / "s00000")
    mp4 = SynthSequence(split / "val" / "s00000")
    assert png.meta["frames"] == "frames" and png.meta["labels_digest"] == mp4.meta["labels_digest"]
    a, b = np.stack(list(png.frames())).astype(float), np.stack(list(mp4.frames())).astype(float)
    assert np.abs(a - b).mean() < 4.0  # H.264 at CRF 18 vs lossless PNG, frame by frame
    np.testing.assert_array_equal(png.clip(3, 4).images, a[3:7].astype(np.uint8))


def test_truncated_video_is_named(seq_copy):
    video = seq_copy / "video.mp4"
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    with pytest.raises(CorruptFileError, match="video.mp4"):
        SynthSequence(seq_copy)
    # even with meta.json made to agree, decoding stops with the file named
    meta = json.loads((seq_copy / META_FILE).read_text())
    meta["files"]["video.mp4"]["bytes"] = video.stat().st_size
    (seq_copy / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(VideoError, match="video.mp4"):
        list(SynthSequence(seq_copy).frames())


def test_truncated_or_foreign_labels_are_named(split, seq_copy):
    labels = seq_copy / LABELS_FILE
    labels.write_bytes(labels.read_bytes()[:1000])
    with pytest.raises(CorruptFileError, match="labels.npz"):
        SynthSequence(seq_copy)
    with np.load(split / "val" / "s00000" / LABELS_FILE) as z:
        keep = {k: z[k] for k in z.files if k != "kp2d"}
    np.savez(labels, **keep)
    meta = json.loads((seq_copy / META_FILE).read_text())
    meta["files"][LABELS_FILE]["bytes"] = labels.stat().st_size
    (seq_copy / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(SynthFormatError, match=r"labels.npz: missing key\(s\) \['kp2d'\]"):
        SynthSequence(seq_copy).sample(0)


def test_partial_folders_are_never_accepted(seq_copy):
    meta_path = seq_copy / META_FILE
    meta = json.loads(meta_path.read_text())
    meta["complete"] = False
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(IncompleteSequenceError, match="meta.json"):
        SynthSequence(seq_copy)
    meta_path.write_text(json.dumps(meta)[:200])  # a half-written meta.json
    with pytest.raises(IncompleteSequenceError, match="meta.json"):
        SynthSequence(seq_copy)
    meta_path.unlink()  # crashed before meta.json
    with pytest.raises(IncompleteSequenceError, match="meta.json missing"):
        SynthSequence(seq_copy)
    with pytest.raises(IncompleteSequenceError):
        find_sequences(seq_copy.parent)
    with pytest.raises(ForeignFolderError):  # skipped when not strict: nothing left
        find_sequences(seq_copy.parent, strict=False)
    tmp = seq_copy.with_name("s00001.tmp-abcd")
    seq_copy.rename(tmp)  # a write in progress: skipped by listings, refused when opened
    with pytest.raises(IncompleteSequenceError, match="still being written"):
        SynthSequence(tmp)
    with pytest.raises(ForeignFolderError, match="no moro synthetic sequence"):
        find_sequences(tmp.parent)


def test_foreign_folders_are_named(tmp_path, seq_copy):
    other = tmp_path / "photos"
    other.mkdir()
    (other / "a.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(ForeignFolderError, match="no moro synthetic sequence"):
        SynthDataset(other)
    with pytest.raises(ForeignFolderError, match="no meta.json"):
        SynthSequence(other)
    meta = json.loads((seq_copy / META_FILE).read_text())
    (seq_copy / META_FILE).write_text(json.dumps({**meta, "format": "coco"}))
    with pytest.raises(ForeignFolderError, match="meta.json: format 'coco'"):
        SynthSequence(seq_copy)
    (seq_copy / META_FILE).write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(ForeignFolderError, match="format_version 99"):
        SynthSequence(seq_copy)
    with pytest.raises(FileNotFoundError):
        SynthDataset(tmp_path / "missing")


def test_manifest_lists_every_sequence(split, tmp_path):
    root = tmp_path / "val"
    shutil.copytree(split / "val", root)
    assert json.loads((root / SPLIT_FILE).read_text())["sequences"] == ["s00000", "s00001"]
    shutil.rmtree(root / "s00001")
    with pytest.raises(IncompleteSequenceError, match="s00001"):
        SynthDataset(root)
    assert SynthDataset(root, strict=False).names == ["s00000"]


def test_read_frames_bad_range(split):
    seq = SynthSequence(split / "val" / "s00000")
    with pytest.raises(IndexError):
        seq.clip(15, 10)
    with pytest.raises(VideoError, match="truncated"):
        list(read_frames(seq.video_path, T - 2, 5, 30.0))
