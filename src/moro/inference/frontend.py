"""Frames -> person boxes -> crops -> backbone tokens, streamed and cached on disk.

Two passes over the video at most, each holding one frame (plus one backbone batch):

1. **boxes** (only without a boxes file): every frame is decoded, the detector runs on every
   ``every``-th one, detections are tracked (:mod:`moro.inference.detection`); the result
   (frame table + per-frame boxes) is cached under a key of the video's digest and the
   detector settings;
2. **features**: every frame is decoded again, cropped around its box
   (:func:`moro.inference.crops.crop_frame`), and batches of crops go through the backbone;
   tokens are appended to an on-disk store (float16 by default), cached under a key of the
   video digest, the box source and the backbone weights. With a boxes file the boxes are
   looked up here directly (interpolated over the source frames without a box).

Frame table and boxes (t output frames): ``time``, ``source_frame``, ``source_time``,
``boxes`` (t, 3) HMR ``(cx, cy, s)``, ``detected`` (t,) bool, ``score`` (t,).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from moro.inference.boxes import read_boxes_file
from moro.inference.crops import backbone_batch, crop_frame, crop_geometry
from moro.inference.detection import DetectorConfig, IoUTracker, make_detector, select_track, track_boxes
from moro.inference.errors import BoxesFileError
from moro.inference.store import CacheEntry, FrameStore, digest, file_digest
from moro.inference.video import Frame, VideoInfo, iter_frames

log = logging.getLogger(__name__)

__all__ = ["FrameTrack", "FileBoxes", "detect_boxes", "extract_features", "load_track", "save_track", "feature_key", "detector_key"]

Progress = Callable[[int], None]


@dataclass
class FrameTrack:
    """Per-output-frame timing and person boxes."""

    time: np.ndarray  # (t,) seconds
    source_frame: np.ndarray  # (t,) int64
    source_time: np.ndarray  # (t,) seconds
    boxes: np.ndarray  # (t, 3) float64 HMR boxes (cx, cy, s), pixels
    detected: np.ndarray  # (t,) bool: a detection / file box at this frame (False: interpolated)
    score: np.ndarray  # (t,) float64 detector score (0 when interpolated)
    source: str = ""  # where the boxes came from: "file", "hog" or "yolo"

    def __len__(self) -> int:
        return len(self.time)


def save_track(path: Path, track: FrameTrack) -> None:
    np.savez(path, **track.__dict__)


def load_track(path: Path) -> FrameTrack:
    with np.load(path) as z:
        arrays = {k: z[k] for k in FrameTrack.__dataclass_fields__ if k != "source"}
        return FrameTrack(**arrays, source=str(z["source"]) if "source" in z.files else "")


class FileBoxes:
    """Boxes from a user file, looked up per source frame (module docstring of :mod:`.boxes`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        entries = read_boxes_file(self.path)
        self.frames = np.array(sorted(entries), np.int64)
        self.boxes = np.stack([entries[f][0] for f in self.frames])
        self.scores = np.array([entries[f][1] for f in self.frames])
        self.key = file_digest(self.path)[:16]

    def __call__(self, frame: Frame) -> tuple[np.ndarray, bool, float]:
        s = frame.source_index
        box = np.array([np.interp(s, self.frames, self.boxes[:, c]) for c in range(3)])
        k = np.searchsorted(self.frames, s)
        hit = k < len(self.frames) and self.frames[k] == s
        return box, bool(hit), float(self.scores[k]) if hit else 0.0


def detect_boxes(info: VideoInfo, fps: float, config: DetectorConfig, entry: CacheEntry | None,
                 progress: Progress | None = None) -> FrameTrack:
    """Pass 1 (module docstring): detect and track the person; cached in ``entry`` if given."""
    if entry is not None and entry.complete:
        log.info("boxes from cache %s", entry.path)
        return load_track(entry.path / "track.npz")
    detector = make_detector(config)
    tracker = IoUTracker(config.iou_match, max(1, int(round(config.max_gap_s * fps))))
    time, src, src_t = [], [], []
    for fr in iter_frames(info, fps):
        if fr.index % config.every == 0:
            tracker.update(fr.index, *detector(fr.rgb))
        time.append(fr.time), src.append(fr.source_index), src_t.append(fr.source_time)
        if progress is not None:
            progress(1)
    track = select_track(tracker.tracks)
    boxes, detected, score = track_boxes(track, len(time), config.smooth_sigma)
    log.info("%s detector: person in %d of %d detector frames", detector.name, detected.sum(),
             (len(time) + config.every - 1) // config.every)
    out = FrameTrack(np.array(time), np.array(src, np.int64), np.array(src_t), boxes, detected, score, detector.name)
    if entry is not None:
        save_track(entry.begin() / "track.npz", out)
        entry.finish({"detector": detector.name, "frames": len(out)})
    return out


@torch.no_grad()
def extract_features(
    info: VideoInfo,
    fps: float,
    boxes: FrameTrack | FileBoxes,
    backbone: torch.nn.Module,
    folder: Path,
    batch: int = 16,
    dtype: str = "float16",
    progress: Progress | None = None,
) -> tuple[FrameTrack, FrameStore]:
    """Pass 2 (module docstring): crops -> backbone tokens into ``folder/tokens`` (+ ``folder/track.npz``).

    Args:
        boxes: the per-output-frame track of pass 1, or the user's :class:`FileBoxes`.
        backbone: the model's image backbone ((b, 3, H, W) -> (b, p, d)), eval mode; crops follow its input_size.
        folder: where the store goes (a cache entry or the run's work folder).
    Returns:
        ``(track, tokens store (t, p, d))``.
    """
    device = next(backbone.parameters()).device
    size, width = crop_geometry(backbone)
    writer = FrameStore.create(folder, "tokens", (backbone.num_patches, backbone.dim), dtype)
    rows: list[tuple] = []
    crops: list[np.ndarray] = []

    def flush() -> None:
        if crops:
            x = backbone_batch(np.stack(crops), width=width).to(device)
            writer.append(backbone(x).float().cpu().numpy())
            if progress is not None:
                progress(len(crops))
            crops.clear()

    for fr in iter_frames(info, fps):
        if isinstance(boxes, FileBoxes):
            box, det, score = boxes(fr)
        else:
            if fr.index >= len(boxes):
                break  # the detection pass saw fewer frames (cannot happen with deterministic decoding)
            box, det, score = boxes.boxes[fr.index], bool(boxes.detected[fr.index]), float(boxes.score[fr.index])
        rows.append((fr.time, fr.source_index, fr.source_time, box, det, score))
        crops.append(crop_frame(fr.rgb, box, size))
        if len(crops) == batch:
            flush()
    flush()
    store = writer.close()
    time, src, src_t, bx, det, score = zip(*rows)
    source = "file" if isinstance(boxes, FileBoxes) else boxes.source
    track = FrameTrack(np.array(time), np.array(src, np.int64), np.array(src_t), np.stack(bx), np.array(det),
                       np.array(score), source)
    if isinstance(boxes, FileBoxes) and not track.detected.any():
        raise BoxesFileError(f"{boxes.path}: none of its frames ({boxes.frames.min()}..{boxes.frames.max()}) is a frame "
                             f"of the video (source frames 0..{track.source_frame.max()}); check the frame numbers "
                             "(0-based, source frame rate)")
    save_track(folder / "track.npz", track)
    return track, store


def feature_key(video_key: str, fps: float, box_key: str, backbone_key: str, dtype: str) -> str:
    """Cache key of the backbone tokens (see :mod:`moro.inference.store`)."""
    return digest("features-v1", video_key, fps, box_key, backbone_key, dtype)


def detector_key(video_key: str, fps: float, config: DetectorConfig) -> str:
    """Cache key of the detection pass."""
    return digest("boxes-v1", video_key, fps, config.to_dict())
