"""Person boxes: HOG on a rendered person, IoU tracking with gaps and a distractor, the boxes file formats."""

import json

import numpy as np
import pytest

from moro.inference.boxes import fill_track, hmr_to_xyxy, iou, read_boxes_file, xyxy_to_hmr
from moro.inference.detection import DetectorConfig, HOGDetector, IoUTracker, select_track, track_boxes
from moro.inference.errors import BoxesFileError, NoPersonError


def test_hog_finds_the_rendered_person(person_clip):
    hog = HOGDetector(DetectorConfig())
    frames = range(6, 60, 9)
    hits = 0
    for i in frames:
        xyxy, scores = hog(person_clip["frames"][i])
        if len(xyxy):
            gt = person_clip["boxes"][i]  # HMR box: x1.2 square around the projected mesh
            box = xyxy_to_hmr(xyxy[np.argmax(scores)])
            assert iou(hmr_to_xyxy(box)[None], hmr_to_xyxy(gt)[None])[0, 0] > 0.5
            hits += 1
    assert hits >= len(frames) // 2


def test_tracker_follows_the_person_through_a_gap_and_ignores_a_distractor():
    person = lambda f: np.array([100 + 2 * f, 50, 160 + 2 * f, 200], float)  # noqa: E731 walking right
    tracker = IoUTracker(iou_match=0.3, max_gap=30)
    for f in range(0, 60, 3):
        dets, scores = [], []
        if not 20 <= f < 35:  # missed for 5 detector runs
            dets.append(person(f)), scores.append(1.0)
        if f in (9, 12):  # a short false positive elsewhere
            dets.append(np.array([300, 10, 330, 60.0])), scores.append(2.0)
        tracker.update(f, np.array(dets).reshape(-1, 4), np.array(scores))
    track = select_track(tracker.tracks)
    assert len(track.frames) == 15 and track.frames[0] == 0
    boxes, detected, score = track_boxes(track, 60)
    assert detected.sum() == 15 and not detected[1] and detected[57]
    expect = xyxy_to_hmr(np.stack([person(f) for f in range(60)]))
    assert np.allclose(boxes[:58], expect[:58])  # linear motion: interpolation is exact
    assert np.allclose(boxes[58:], expect[57])  # held after the last detection
    assert boxes[0, 2] == pytest.approx(150 * 1.2 / 200) and score[1] == 0


def test_no_detection_is_a_specific_error():
    with pytest.raises(NoPersonError, match="--boxes"):
        select_track(IoUTracker().tracks)


def test_fill_track_interpolates_and_holds():
    known = np.array([False, True, False, False, True, False])
    boxes = np.zeros((6, 3))
    boxes[1], boxes[4] = [10, 20, 1], [40, 50, 4]
    out = fill_track(known, boxes)
    assert np.allclose(out[:, 0], [10, 10, 20, 30, 40, 40]) and np.allclose(out[2], [20, 30, 2])


def test_boxes_file_formats(tmp_path):
    j = tmp_path / "b.json"
    j.write_text(json.dumps({"boxes": [{"frame": 0, "xyxy": [10, 20, 50, 120]}, {"frame": 3, "xywh": [10, 20, 40, 100]},
                                       {"frame": 5, "cxcys": [30, 70, 0.6], "score": 0.5}]}))
    b = read_boxes_file(j)
    assert sorted(b) == [0, 3, 5] and np.allclose(b[0][0], [30, 70, 0.6]) and np.allclose(b[3][0], b[0][0])
    assert b[5][1] == 0.5
    c = tmp_path / "b.csv"
    c.write_text("frame,x0,y0,x1,y1,score\n0,10,20,50,120,0.9\n# comment\n7,12,20,52,120,0.8\n")
    b = read_boxes_file(c)
    assert sorted(b) == [0, 7] and np.allclose(b[0][0], [30, 70, 0.6]) and b[7][1] == 0.8
    (tmp_path / "l.json").write_text(json.dumps([{"frame": 2, "xyxy": [0, 0, 10, 10]}]))
    assert list(read_boxes_file(tmp_path / "l.json")) == [2]


@pytest.mark.parametrize("name,text,match", [
    ("a.json", "{not json", "not valid JSON"),
    ("b.json", '{"boxes": [{"xyxy": [0, 0, 1, 1]}]}', r"boxes\[0\]: missing 'frame'"),
    ("c.json", '{"boxes": [{"frame": 0, "xyxy": [0, 0, 1]}]}', "4 finite numbers"),
    ("d.json", '{"boxes": [{"frame": 0, "xyxy": [5, 0, 1, 1]}]}', "no area"),
    ("e.json", '{"boxes": [{"frame": 1.5, "xyxy": [0, 0, 1, 1]}]}', "integer"),
    ("f.json", '{"boxes": [{"frame": 0, "xyxy": [0, 0, 1, 1], "xywh": [0, 0, 1, 1]}]}', "exactly one"),
    ("g.json", '{"boxes": [{"frame": 0, "xyxy": [0, 0, 1, 1]}, {"frame": 0, "xyxy": [0, 0, 2, 2]}]}', "two boxes"),
    ("h.json", '{"boxes": []}', "holds no box"),
    ("i.csv", "frame,a,b\n0,1,2\n", "header"),
    ("j.csv", "frame,x0,y0,x1,y1\n0,1,2,3\n", "line 2 has 4 columns"),
    ("k.csv", "frame,x0,y0,x1,y1\n0,1,2,3,4\n1,1,x,3,4\n", "line 3 .*not a number"),
    ("l.csv", "", "empty"),
])
def test_malformed_boxes_files(tmp_path, name, text, match):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(BoxesFileError, match=match):
        read_boxes_file(p)
    with pytest.raises(BoxesFileError, match="not found"):
        read_boxes_file(tmp_path / "missing.json")


def test_detection_pass_is_cached(person_clip, tmp_path, monkeypatch):
    from infer_fixtures import write_video

    import moro.inference.frontend as frontend
    from moro.inference.store import CacheEntry
    from moro.inference.video import open_video

    info = open_video(write_video(tmp_path / "p.mp4", person_clip["frames"][:12]))
    entry = CacheEntry(tmp_path / "cache", "boxes", "k1")
    track = frontend.detect_boxes(info, 30.0, DetectorConfig(every=3), entry)
    assert len(track) == 12 and entry.complete and track.detected.sum() >= 2 and track.source == "hog"
    assert np.all(track.detected[track.detected] == (np.arange(12) % 3 == 0)[track.detected])  # detector frames only
    monkeypatch.setattr(frontend, "make_detector", lambda cfg: pytest.fail("detector ran despite the cache"))
    again = frontend.detect_boxes(info, 30.0, DetectorConfig(every=3), CacheEntry(tmp_path / "cache", "boxes", "k1"))
    assert np.array_equal(again.boxes, track.boxes) and np.array_equal(again.source_frame, np.arange(12))
    assert again.source == "hog"
