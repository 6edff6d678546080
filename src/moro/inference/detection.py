"""Person detection and tracking when no boxes file is given.

Detectors (:func:`make_detector`), in order of preference:

* **YOLO** (Ultralytics, optional): used when ``ultralytics`` is importable and weights are given
  (``--yolo-weights yolo11x.pt``; the authors track with YOLO11x). Person class only.
* **HOG** (OpenCV's built-in pedestrian SVM, no weights to download): frames are resized to
  ``hog_height`` pixels (people need to be at least ~100 px tall there), and the detection
  windows, which hold a margin around the person, are shrunk to the person
  (:data:`HOG_PERSON_FRACTION` of the window's width and height). HOG costs ~0.15 s per 640 x
  480 frame on one core, so by default it runs on every 3rd frame (``every``) and the track is
  interpolated in between. It finds upright people; crouching, lying or heavily occluded people
  are often missed (frames without a detection are interpolated).

**Tracking** (:class:`IoUTracker`): greedy IoU matching of each frame's detections to where the
live tracks are expected (constant velocity from their last two detections; IoU >= ``iou_match``);
a track ends after ``max_gap_s`` seconds without a match. The
person reconstructed is the track with the most detections (ties: the larger summed score).
Its boxes become HMR boxes ``s = max(w, h) * 1.2 / 200``, gaps are filled linearly
(:func:`moro.inference.boxes.fill_track`), then smoothed (Gaussian, ``smooth_sigma`` frames).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from moro.inference.boxes import fill_track, iou, smooth_track, xyxy_to_hmr
from moro.inference.errors import InferenceError, NoPersonError

log = logging.getLogger(__name__)

__all__ = ["HOG_PERSON_FRACTION", "DetectorConfig", "HOGDetector", "YOLODetector", "make_detector",
           "Track", "IoUTracker", "select_track", "track_boxes"]

HOG_PERSON_FRACTION = (0.5, 0.7)  # (width, height) of the person inside a HOG window (measured on renders)


@dataclass
class DetectorConfig:
    """How people are found when no boxes file is given (saved in the cache key)."""

    kind: str = "auto"  # "auto": YOLO if weights are given (and ultralytics imports), else HOG; or "hog" | "yolo"
    yolo_weights: str | None = None  # Ultralytics weights file, e.g. yolo11x.pt
    every: int = 3  # run the detector on every n-th frame, interpolate the others (HOG is slow)
    hog_height: int = 480  # HOG sees frames resized to this height (its window is 64 x 128 px)
    min_score: float = 0.0  # detections below this score are ignored (HOG: SVM margin; YOLO: confidence)
    iou_match: float = 0.3  # IoU with a track's last box to continue that track
    max_gap_s: float = 1.0  # a track ends after this long without a match
    smooth_sigma: float = 1.5  # Gaussian smoothing of the chosen track, frames (0 = none)

    def __post_init__(self) -> None:
        if self.kind not in ("auto", "hog", "yolo"):
            raise ValueError(f"detector must be 'auto', 'hog' or 'yolo', got {self.kind!r}")
        if self.every < 1 or self.hog_height < 64:
            raise ValueError(f"detector every must be >= 1 and hog_height >= 64, got {self.every}, {self.hog_height}")

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class HOGDetector:
    """OpenCV's HOG + linear SVM people detector: rgb (H, W, 3) -> (xyxy (m, 4), scores (m,))."""

    name = "hog"

    def __init__(self, config: DetectorConfig) -> None:
        import cv2

        self.cv2, self.config = cv2, config
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cv2 = self.cv2
        f = self.config.hog_height / rgb.shape[0]
        img = cv2.resize(rgb, None, fx=f, fy=f, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
        rects, weights = self.hog.detectMultiScale(img[..., ::-1], winStride=(8, 8), padding=(8, 8), scale=1.05)
        if len(rects) == 0:
            return np.zeros((0, 4)), np.zeros(0)
        rects = np.asarray(rects, np.float64) / f  # (m, 4) x, y, w, h in full-image pixels
        centre = rects[:, :2] + 0.5 * rects[:, 2:]
        half = 0.5 * rects[:, 2:] * np.array(HOG_PERSON_FRACTION)
        xyxy = np.concatenate([centre - half, centre + half], 1)
        scores = np.asarray(weights, np.float64).reshape(-1)
        keep = scores >= self.config.min_score
        return xyxy[keep], scores[keep]


class YOLODetector:
    """Ultralytics YOLO, person class: rgb (H, W, 3) -> (xyxy (m, 4), scores (m,))."""

    name = "yolo"

    def __init__(self, config: DetectorConfig) -> None:
        try:
            from ultralytics import YOLO
        except ImportError as e:
            raise InferenceError("--detector yolo needs the ultralytics package (pip install ultralytics); "
                                 "or use --detector hog, or give --boxes FILE") from e
        if not config.yolo_weights:
            raise InferenceError("--detector yolo needs --yolo-weights FILE (e.g. yolo11x.pt)")
        self.model, self.config = YOLO(config.yolo_weights), config

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        res = self.model.predict(np.ascontiguousarray(rgb[..., ::-1]), classes=[0], verbose=False)[0]
        xyxy = res.boxes.xyxy.cpu().numpy().astype(np.float64)
        scores = res.boxes.conf.cpu().numpy().astype(np.float64)
        keep = scores >= self.config.min_score
        return xyxy[keep], scores[keep]


def make_detector(config: DetectorConfig):
    """The detector ``config`` asks for (module docstring); ``auto`` falls back to HOG with a log line."""
    if config.kind == "yolo":
        return YOLODetector(config)
    if config.kind == "auto" and config.yolo_weights:
        try:
            return YOLODetector(config)
        except InferenceError as e:
            log.warning("%s; using the HOG detector instead", e)
    return HOGDetector(config)


@dataclass
class Track:
    """One tracked person: the frames where it was detected, its rectangles and scores."""

    frames: list[int] = field(default_factory=list)
    xyxy: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    def predict(self, frame: int) -> np.ndarray:
        """The rectangle expected at ``frame``: constant velocity from the last two detections."""
        if len(self.frames) < 2:
            return self.xyxy[-1]
        velocity = (self.xyxy[-1] - self.xyxy[-2]) / (self.frames[-1] - self.frames[-2])
        return self.xyxy[-1] + velocity * (frame - self.frames[-1])


class IoUTracker:
    """Greedy IoU tracking over the frames where the detector ran (module docstring)."""

    def __init__(self, iou_match: float = 0.3, max_gap: int = 30) -> None:
        self.iou_match, self.max_gap = iou_match, max_gap
        self.live: list[Track] = []
        self.done: list[Track] = []

    def update(self, frame: int, xyxy: np.ndarray, scores: np.ndarray) -> None:
        """Add the detections (m, 4), (m,) of ``frame`` (frames in increasing order)."""
        ended = [t for t in self.live if frame - t.frames[-1] > self.max_gap]
        self.done += ended
        self.live = [t for t in self.live if t not in ended]
        free = list(range(len(xyxy)))
        if self.live and len(xyxy):
            overlap = iou(np.stack([t.predict(frame) for t in self.live]), xyxy)  # (tracks, detections)
            while free and overlap.size:
                ti, di = np.unravel_index(np.argmax(overlap), overlap.shape)
                if overlap[ti, di] < self.iou_match:
                    break
                track = self.live[ti]
                track.frames.append(frame)
                track.xyxy.append(np.asarray(xyxy[di], np.float64))
                track.scores.append(float(scores[di]))
                overlap[ti, :], overlap[:, di] = -1, -1
                free.remove(di)
        for di in free:
            self.live.append(Track([frame], [np.asarray(xyxy[di], np.float64)], [float(scores[di])]))

    @property
    def tracks(self) -> list[Track]:
        return self.done + self.live


def select_track(tracks: list[Track]) -> Track:
    """The track with the most detections (ties: the larger summed score)."""
    if not tracks:
        raise NoPersonError("no person was detected in any frame; give a boxes file (--boxes FILE, see "
                            "`moro infer --help`), or YOLO weights (--yolo-weights) if the person is small or not upright")
    return max(tracks, key=lambda t: (len(t.frames), sum(t.scores)))


def track_boxes(track: Track, num_frames: int, smooth_sigma: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A track as per-frame HMR boxes.

    Returns:
        ``(boxes (t, 3) float64 [cx, cy, s], detected (t,) bool, score (t,) float64)``; score is 0
        on interpolated frames.
    """
    detected = np.zeros(num_frames, bool)
    raw = np.zeros((num_frames, 3))
    score = np.zeros(num_frames)
    frames = np.asarray(track.frames)
    detected[frames] = True
    raw[frames] = xyxy_to_hmr(np.stack(track.xyxy))
    score[frames] = track.scores
    return smooth_track(fill_track(detected, raw), smooth_sigma), detected, score
