"""Frame storage of a sequence: an H.264 ``.mp4`` (PyAV) or a folder of PNG frames.

Writing (:class:`FrameWriter`): RGB uint8 frames ``(H, W, 3)`` in order, at a fixed frame rate.
The mp4 uses libx264 (``yuv420p``, CRF 18, no B-frames, a keyframe at least every
:data:`KEYFRAME_INTERVAL` frames so random access decodes at most that many frames); frame ``i``
has presentation time ``i / fps`` seconds. H.264 with ``yuv420p`` needs an even width and
height. PNG frames are ``frames/000000.png`` ... (lossless).

Reading (:func:`read_frames`): frames ``start .. start + count - 1`` streamed in order, decoding
only from the keyframe before ``start``; the frame index of a decoded picture is
``round(time * fps)``. Decoding is deterministic: the same frame decodes to the same pixels
whether it is read alone or inside a clip.

PyAV (``av``, the ``render`` extra) is imported only when a video is written or read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

__all__ = ["KEYFRAME_INTERVAL", "VIDEO_FILE", "FRAMES_DIR", "FrameWriter", "read_frames", "VideoError"]

KEYFRAME_INTERVAL = 30  # frames: worst-case decode cost of random access
VIDEO_FILE = "video.mp4"
FRAMES_DIR = "frames"


class VideoError(ValueError):
    """A video or frame folder is missing, unreadable or shorter than asked (message: the file)."""


def _av():
    try:
        import av
    except ImportError as e:  # pragma: no cover - av is in the render extra
        raise ImportError("reading or writing mp4 needs PyAV: pip install 'moro[render]' (or use PNG frames)") from e
    return av


def _png_path(folder: Path, i: int) -> Path:
    return folder / f"{i:06d}.png"


class FrameWriter:
    """Write RGB frames to ``<folder>/video.mp4`` (``png=False``) or ``<folder>/frames/*.png``.

    Usage::

        with FrameWriter(folder, width, height, fps=30.0) as w:
            for rgb in frames:        # (H, W, 3) uint8
                w.write(rgb)
        w.path                        # the file or folder written
    """

    def __init__(self, folder: str | os.PathLike, width: int, height: int, fps: float = 30.0, png: bool = False, crf: int = 18):
        self.width, self.height, self.fps, self.png = int(width), int(height), float(fps), png
        self.count = 0
        folder = Path(folder)
        if png:
            self.path = folder / FRAMES_DIR
            self.path.mkdir(parents=True, exist_ok=True)
            return
        if self.width % 2 or self.height % 2:
            raise ValueError(f"H.264 video needs an even width and height, got {self.width}x{self.height}; "
                             f"choose an even size or write PNG frames")
        av = _av()
        self.path = folder / VIDEO_FILE
        self._container = av.open(str(self.path), "w")
        rate = Fraction(self.fps).limit_denominator(1001)
        self._stream = self._container.add_stream(
            "libx264", rate=rate,
            options={"crf": str(crf), "preset": "veryfast", "g": str(KEYFRAME_INTERVAL), "bf": "0"},
        )
        self._stream.width, self._stream.height, self._stream.pix_fmt = self.width, self.height, "yuv420p"
        self._av = av

    def write(self, rgb: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame."""
        rgb = np.ascontiguousarray(rgb)
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise ValueError(f"frames must be ({self.height}, {self.width}, 3) uint8, got {rgb.shape} {rgb.dtype}")
        if self.png:
            import cv2

            if not cv2.imwrite(str(_png_path(self.path, self.count)), rgb[..., ::-1]):
                raise OSError(f"could not write {_png_path(self.path, self.count)}")
        else:
            frame = self._av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = self.count
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        self.count += 1

    def close(self) -> None:
        if not self.png and self._container is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None

    def __enter__(self) -> "FrameWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _read_png(folder: Path, start: int, count: int) -> Iterator[np.ndarray]:
    import cv2

    for i in range(start, start + count):
        p = _png_path(folder, i)
        img = cv2.imread(str(p), cv2.IMREAD_COLOR) if p.is_file() else None
        if img is None:
            raise VideoError(f"{p}: frame {i} missing or unreadable; the frame folder is truncated - regenerate the sequence")
        yield np.ascontiguousarray(img[..., ::-1])


def read_frames(path: str | os.PathLike, start: int, count: int, fps: float) -> Iterator[np.ndarray]:
    """Stream frames ``start .. start + count - 1`` of a video file or PNG frame folder.

    Args:
        path: ``video.mp4`` or a ``frames/`` folder written by :class:`FrameWriter`.
        start: first frame index (>= 0); count: number of frames (>= 0).
        fps: the frame rate the video was written at (maps timestamps to frame indices).
    Yields:
        (H, W, 3) uint8 RGB frames, in order.
    Raises:
        VideoError naming the file when it is unreadable or ends before ``start + count``.
    """
    path = Path(path)
    if start < 0 or count < 0:
        raise ValueError(f"start and count must be >= 0, got {start}, {count}")
    if count == 0:
        return
    if path.is_dir():
        yield from _read_png(path, start, count)
        return
    av = _av()
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:
        raise VideoError(f"{path}: not a readable video ({e}); the file is truncated or foreign - regenerate the sequence") from e
    with container:
        if not container.streams.video:
            raise VideoError(f"{path}: holds no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        end, want = start + count, start
        try:
            if start > 0:
                container.seek(int(round(start / fps / stream.time_base)), stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                i = int(round(float(frame.time) * fps))
                if i < want:
                    continue
                if i > want:
                    raise VideoError(f"{path}: frame {want} missing (next decoded frame is {i}); the video is damaged")
                yield frame.to_ndarray(format="rgb24")
                want += 1
                if want == end:
                    return
        except av.error.FFmpegError as e:
            raise VideoError(f"{path}: decoding failed at frame {want} ({e}); the video is truncated - "
                             f"regenerate the sequence") from e
    raise VideoError(f"{path}: ends at frame {want} but frames up to {end - 1} were asked; the video is truncated")
