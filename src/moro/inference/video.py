"""The video front end: open a video file or an image folder and stream its frames at 30 fps.

Inputs:

* **video files** (``.mp4``, ``.avi``, ``.mov``, ``.mkv``, ``.webm``, ... anything FFmpeg reads),
  decoded with PyAV one frame at a time; a frame's time is its presentation timestamp in
  seconds from the first frame (variable frame rates are fine);
* **image folders**: every ``.png``/``.jpg``/``.jpeg``/``.bmp``/``.tif``/``.tiff``/``.webp``
  file, in natural order of the names (``img2.png`` before ``img10.png``), read with OpenCV;
  frame ``i`` is at ``i / source_fps`` seconds (default 30).

**Resampling** (:func:`iter_frames`): output frame ``i`` is at ``time = i / fps`` (default 30)
and shows the source frame nearest in time (ties: the earlier one), for every ``i`` with
``i / fps <= `` the last source frame's time. A 30 fps source maps one to one; 60 fps drops every
other frame; 24 fps repeats some. No frame is interpolated, and each output frame keeps the
index and timestamp of the source frame it shows. Only two decoded frames are held at a time.

Errors: :class:`~moro.inference.errors.InputVideoError` (missing, unreadable, no video stream),
:class:`~moro.inference.errors.EmptyVideoError` (no frame decodes). Frames are RGB ``uint8``
(H, W, 3).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from moro.inference.errors import EmptyVideoError, InputVideoError
from moro.inference.store import file_digest

log = logging.getLogger(__name__)

__all__ = ["IMAGE_SUFFIXES", "VideoInfo", "Frame", "open_video", "iter_source_frames", "iter_frames", "video_digest"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
TIME_EPS = 1e-6  # seconds: tolerance when comparing timestamps


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`open_video` learns without decoding the whole input."""

    path: Path
    kind: str  # "file" | "images"
    width: int  # pixels
    height: int
    source_fps: float  # nominal source frame rate (container average rate; images: as given)
    source_frames: int | None  # frame count if known up front (image folders; some containers)
    images: tuple[Path, ...] = ()  # the frames of an image folder, in order


class Frame(NamedTuple):
    """One output frame of :func:`iter_frames`."""

    index: int  # output frame index at the target rate
    time: float  # index / fps, seconds
    source_index: int  # index of the source frame shown (0-based, decode order)
    source_time: float  # its timestamp, seconds from the first source frame
    rgb: np.ndarray  # (H, W, 3) uint8


def _natural_key(path: Path):
    return [int(s) if s.isdigit() else s.lower() for s in re.split(r"(\d+)", path.name)]


def _av():
    try:
        import av
    except ImportError as e:  # pragma: no cover - PyAV is a dependency of the render extra
        raise ImportError("reading videos needs PyAV: pip install 'moro[render]' (or give a folder of images)") from e
    return av


def open_video(path: str | os.PathLike, source_fps: float | None = None) -> VideoInfo:
    """Check that ``path`` is a readable video file or image folder and read its size and rate.

    Args:
        path: a video file or a folder of images.
        source_fps: frame rate of an image folder (default 30); for files it overrides the
            container's rate only when the file carries no timestamps.
    Raises:
        InputVideoError, EmptyVideoError.
    """
    path = Path(path)
    if source_fps is not None and not (np.isfinite(source_fps) and source_fps > 0):
        raise InputVideoError(f"source fps must be > 0, got {source_fps}")
    if not path.exists():
        raise InputVideoError(f"{path}: no such video file or image folder")
    if path.is_dir():
        images = tuple(sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                              key=_natural_key))
        if not images:
            raise EmptyVideoError(f"{path}: the folder holds no image ({', '.join(IMAGE_SUFFIXES)}); give a video "
                                  "file or a folder of frames")
        first = _read_image(images[0])
        return VideoInfo(path, "images", first.shape[1], first.shape[0], float(source_fps or 30.0), len(images), images)
    av = _av()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputVideoError(f"{path}: holds no video stream (audio only?); give a video file")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else float(source_fps or 30.0)
            width, height = stream.codec_context.width, stream.codec_context.height
            frames = stream.frames or None
    except InputVideoError:
        raise
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise InputVideoError(f"{path}: not a readable video ({type(e).__name__}: {e}); check the file, or convert it "
                              "with ffmpeg -i IN -c:v libx264 OUT.mp4") from e
    if not width or not height:
        raise InputVideoError(f"{path}: the video stream has no frame size; the file is damaged")
    return VideoInfo(path, "file", int(width), int(height), fps, frames)


def _read_image(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputVideoError(f"{path}: not a readable image")
    return np.ascontiguousarray(img[..., ::-1])


def iter_source_frames(info: VideoInfo) -> Iterator[tuple[int, float, np.ndarray]]:
    """Every source frame in order: ``(source_index, source_time (s), rgb (H, W, 3) uint8)``.

    Raises EmptyVideoError when nothing decodes. A decoding error after some frames ends the
    stream there with a logged warning (truncated files are common).
    """
    if info.kind == "images":
        for i, p in enumerate(info.images):
            img = _read_image(p)
            if img.shape[:2] != (info.height, info.width):
                raise InputVideoError(f"{p}: size {img.shape[1]}x{img.shape[0]} differs from the first image's "
                                      f"{info.width}x{info.height}; all frames of a folder must have one size")
            yield i, i / info.source_fps, img
        return
    av = _av()
    count, t0 = 0, None
    try:
        container = av.open(str(info.path))
    except (av.error.FFmpegError, OSError) as e:
        raise InputVideoError(f"{info.path}: not a readable video ({e})") from e
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                t = frame.time if frame.time is not None else count / info.source_fps
                t0 = t if t0 is None else t0
                yield count, float(t - t0), frame.to_ndarray(format="rgb24")
                count += 1
        except av.error.FFmpegError as e:
            if count == 0:
                raise EmptyVideoError(f"{info.path}: no frame could be decoded ({e}); the file is damaged") from e
            log.warning("%s: decoding stopped after %d frames (%s); using the frames read so far", info.path, count, e)
    if count == 0:
        raise EmptyVideoError(f"{info.path}: the video holds no frame")


def iter_frames(info: VideoInfo, fps: float = 30.0) -> Iterator[Frame]:
    """Source frames resampled to ``fps`` by nearest timestamp (module docstring)."""
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be > 0, got {fps}")
    i, prev = 0, None
    for cur in iter_source_frames(info):
        if prev is not None and cur[1] <= prev[1]:
            log.warning("%s: source frame %d has a non-increasing timestamp; skipped", info.path, cur[0])
            continue
        while i / fps <= cur[1] + TIME_EPS:
            target = i / fps
            if prev is None or abs(cur[1] - target) < abs(target - prev[1]) - TIME_EPS:
                src = cur
            else:
                src = prev
            yield Frame(i, target, src[0], src[1], src[2])
            i += 1
        prev = cur


def video_digest(info: VideoInfo) -> str:
    """Content digest of the input: SHA-256 of the file, or of the images' names and bytes."""
    if info.kind == "file":
        return file_digest(info.path)
    import hashlib

    h = hashlib.sha256()
    for p in info.images:
        h.update(p.name.encode())
        h.update(file_digest(p).encode())
    return h.hexdigest()
