"""The video front end: streamed frames equal a full decode; containers; image folders; resampling to 30 fps."""

import av
import cv2
import numpy as np
import pytest
from infer_fixtures import pattern_frames, write_video

from moro.inference.errors import EmptyVideoError, InputVideoError
from moro.inference.video import iter_frames, open_video, video_digest


def _full_decode(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mov"])
def test_streamed_frames_equal_full_decode(tmp_path, suffix):
    frames = pattern_frames(12)
    path = write_video(tmp_path / f"clip{suffix}", frames)
    info = open_video(path)
    assert (info.width, info.height, info.kind) == (96, 64, "file") and info.source_fps == pytest.approx(30)
    full = _full_decode(path)
    got = list(iter_frames(info))
    assert len(got) == len(full) == 12
    for i, fr in enumerate(got):
        assert (fr.index, fr.source_index) == (i, i) and fr.time == pytest.approx(i / 30) == pytest.approx(fr.source_time)
        assert np.array_equal(fr.rgb, full[i])
    assert np.abs(got[5].rgb.astype(int) - frames[5]).mean() < 8  # the codec kept the picture
    assert video_digest(info) == video_digest(open_video(path))


@pytest.mark.parametrize("fps,expected", [(60, [0, 2, 4, 6, 8, 10]), (24, [0, 1, 2, 2, 3, 4, 5, 6, 6, 7, 8])])
def test_resampling_keeps_source_frames_and_times(tmp_path, fps, expected):
    n = 12 if fps == 60 else 9
    path = write_video(tmp_path / f"clip{fps}.mp4", pattern_frames(n), fps=fps)
    full = _full_decode(path)
    got = list(iter_frames(open_video(path)))
    assert [f.source_index for f in got] == expected[: len(got)] and len(got) == int((n - 1) * 30 / fps) + 1
    for f in got:
        assert f.source_time == pytest.approx(f.source_index / fps, abs=1e-4)
        assert abs(f.source_time - f.time) <= 0.5 / fps + 1e-6  # nearest source frame
        assert np.array_equal(f.rgb, full[f.source_index])


def test_image_folder_in_natural_order(tmp_path):
    frames = pattern_frames(11, seed=2)
    for i, rgb in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), rgb[..., ::-1])
    (tmp_path / "notes.txt").write_text("not a frame")
    info = open_video(tmp_path)
    assert info.kind == "images" and info.source_frames == 11 and info.images[2].name == "img2.png"
    got = list(iter_frames(info))
    assert len(got) == 11 and all(np.array_equal(f.rgb, frames[i]) for i, f in enumerate(got))
    assert [f.source_index for f in iter_frames(open_video(tmp_path, source_fps=15))][:4] == [0, 0, 1, 1]


def test_bad_inputs(tmp_path):
    with pytest.raises(InputVideoError, match="no such"):
        open_video(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(InputVideoError, match="not a readable video"):
        open_video(junk)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EmptyVideoError, match="holds no image"):
        open_video(empty)
    with pytest.raises(InputVideoError):
        open_video(tmp_path / "missing", source_fps=0)
