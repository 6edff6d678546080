"""Person boxes: the user's boxes file, gap interpolation, and the HMR box ``(cx, cy, s)``.

**Boxes file** (``moro infer --boxes FILE``): one box per frame of the *source* video (the frame
numbers the user sees in a player or annotation tool, 0-based, before resampling to 30 fps),
for the one person to reconstruct. Frames without a box are interpolated. Two formats:

* JSON (``.json``)::

      {"boxes": [{"frame": 0, "xyxy": [x0, y0, x1, y1]},
                 {"frame": 1, "xywh": [x, y, w, h], "score": 0.9},
                 {"frame": 2, "cxcys": [cx, cy, s]}, ...]}

  (a bare list of entries works too). Each entry has ``frame`` and exactly one of ``xyxy``
  (corners), ``xywh`` (top-left corner and size) or ``cxcys`` (an HMR box, used as is);
  ``score`` is optional.
* CSV (``.csv``, ``.txt``): a header line naming the columns ``frame,x0,y0,x1,y1`` (optional
  ``score``), then one row per box; ``frame,x,y,w,h`` is accepted too.

Coordinates are full-image pixels (OpenCV: pixel centres at integers). A malformed file raises
:class:`~moro.inference.errors.BoxesFileError` naming the entry or line.

**HMR box**: ``(cx, cy, s)``, a square of side ``200 s`` px centred on (cx, cy); from a
rectangle, ``s = max(w, h) * 1.2 / 200`` (:data:`BOX_SCALE`; official checkpoint layout,
section 4, "Input crop").

**Interpolation** (:func:`fill_track`): linear in (cx, cy, s) between known frames; frames before
the first or after the last known box repeat it.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from moro.inference.errors import BoxesFileError

__all__ = ["BOX_SCALE", "xyxy_to_hmr", "hmr_to_xyxy", "read_boxes_file", "fill_track", "smooth_track", "iou"]

BOX_SCALE = 1.2  # box enlargement: s = max(w, h) * 1.2 / 200


def xyxy_to_hmr(xyxy: np.ndarray, scale: float = BOX_SCALE) -> np.ndarray:
    """Rectangles (..., 4) ``[x0, y0, x1, y1]`` -> HMR boxes (..., 3) ``[cx, cy, max(w, h) * scale / 200]``."""
    xyxy = np.asarray(xyxy, dtype=np.float64)
    wh = xyxy[..., 2:] - xyxy[..., :2]
    return np.concatenate([0.5 * (xyxy[..., :2] + xyxy[..., 2:]), wh.max(-1, keepdims=True) * scale / 200.0], -1)


def hmr_to_xyxy(box: np.ndarray) -> np.ndarray:
    """HMR boxes (..., 3) -> the square's corners (..., 4)."""
    box = np.asarray(box, dtype=np.float64)
    half = 100.0 * box[..., 2:]
    return np.concatenate([box[..., :2] - half, box[..., :2] + half], -1)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of rectangles a (m, 4) and b (k, 4) -> (m, k)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(-1)
    area = lambda r: np.clip(r[:, 2:] - r[:, :2], 0, None).prod(-1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _entry_box(entry: dict, where: str) -> tuple[int, np.ndarray, float]:
    if not isinstance(entry, dict):
        raise BoxesFileError(f"{where}: expected an object with 'frame' and a box, got {type(entry).__name__}")
    if "frame" not in entry:
        raise BoxesFileError(f"{where}: missing 'frame' (0-based source frame number)")
    frame = entry["frame"]
    if isinstance(frame, bool) or not isinstance(frame, (int, float)) or frame != int(frame) or frame < 0:
        raise BoxesFileError(f"{where}: 'frame' must be an integer >= 0, got {frame!r}")
    kinds = [k for k in ("xyxy", "xywh", "cxcys") if k in entry]
    if len(kinds) != 1:
        raise BoxesFileError(f"{where}: give exactly one of 'xyxy', 'xywh', 'cxcys', got {kinds or 'none'}")
    kind = kinds[0]
    try:
        v = np.asarray(entry[kind], dtype=np.float64)
    except (TypeError, ValueError):
        raise BoxesFileError(f"{where}: '{kind}' must be numbers, got {entry[kind]!r}") from None
    if v.shape != ((3,) if kind == "cxcys" else (4,)) or not np.isfinite(v).all():
        raise BoxesFileError(f"{where}: '{kind}' must be {3 if kind == 'cxcys' else 4} finite numbers, got {entry[kind]!r}")
    score = entry.get("score", 1.0)
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not np.isfinite(score):
        raise BoxesFileError(f"{where}: 'score' must be a number, got {score!r}")
    return int(frame), _to_hmr(kind, v, where), float(score)


def _to_hmr(kind: str, v: np.ndarray, where: str) -> np.ndarray:
    if kind == "xywh":
        v = np.array([v[0], v[1], v[0] + v[2], v[1] + v[3]])
        kind = "xyxy"
    if kind == "xyxy":
        if not (v[2] > v[0] and v[3] > v[1]):
            raise BoxesFileError(f"{where}: box {v.tolist()} has no area (need x1 > x0 and y1 > y0)")
        return xyxy_to_hmr(v)
    if not v[2] > 0:
        raise BoxesFileError(f"{where}: HMR box scale s must be > 0, got {v[2]}")
    return v


def _read_json(path: Path) -> list[tuple[int, np.ndarray, float]]:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BoxesFileError(f"{path}: not valid JSON ({e})") from None
    entries = data.get("boxes") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise BoxesFileError(f"{path}: expected {{\"boxes\": [...]}} or a list of box entries")
    return [_entry_box(e, f"{path}: boxes[{i}]") for i, e in enumerate(entries)]


def _read_csv(path: Path) -> list[tuple[int, np.ndarray, float]]:
    try:
        rows = list(csv.reader(path.read_text().splitlines()))
    except (UnicodeDecodeError, csv.Error) as e:
        raise BoxesFileError(f"{path}: not a readable CSV file ({e})") from None
    rows = [r for r in rows if r and not r[0].lstrip().startswith("#")]
    if not rows:
        raise BoxesFileError(f"{path}: empty boxes file")
    header = [c.strip().lower() for c in rows[0]]
    if {"frame", "x0", "y0", "x1", "y1"} <= set(header):
        kind, cols = "xyxy", ["x0", "y0", "x1", "y1"]
    elif {"frame", "x", "y", "w", "h"} <= set(header):
        kind, cols = "xywh", ["x", "y", "w", "h"]
    else:
        raise BoxesFileError(f"{path}: line 1 must be a header 'frame,x0,y0,x1,y1[,score]' or 'frame,x,y,w,h[,score]', "
                             f"got {','.join(rows[0])!r}")
    out = []
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise BoxesFileError(f"{path}: line {n} has {len(row)} columns, the header has {len(header)}")
        rec = dict(zip(header, (c.strip() for c in row)))
        try:
            entry = {"frame": float(rec["frame"]), kind: [float(rec[c]) for c in cols]}
            if "score" in rec:
                entry["score"] = float(rec["score"])
        except ValueError:
            raise BoxesFileError(f"{path}: line {n} holds a value that is not a number: {','.join(row)!r}") from None
        out.append(_entry_box(entry, f"{path}: line {n}"))
    return out


def read_boxes_file(path: str | os.PathLike) -> dict[int, tuple[np.ndarray, float]]:
    """Read a boxes file (module docstring) -> ``{source frame: (HMR box (3,), score)}``.

    Raises BoxesFileError (malformed, empty, or one frame given twice).
    """
    path = Path(path)
    if not path.is_file():
        raise BoxesFileError(f"{path}: boxes file not found")
    entries = _read_json(path) if path.suffix.lower() == ".json" else _read_csv(path)
    if not entries:
        raise BoxesFileError(f"{path}: holds no box")
    boxes: dict[int, tuple[np.ndarray, float]] = {}
    for frame, box, score in entries:
        if frame in boxes:
            raise BoxesFileError(f"{path}: frame {frame} has two boxes; give one box per frame (one person)")
        boxes[frame] = (box, score)
    return boxes


def fill_track(known: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Interpolate HMR boxes over frames without one.

    Args:
        known: (t,) bool, frames with a box.
        boxes: (t, 3) HMR boxes (rows where ``known`` is False are ignored).
    Returns:
        (t, 3) float64: linear interpolation in (cx, cy, s) inside gaps, the nearest known box
        before the first and after the last.
    """
    known = np.asarray(known, bool)
    if not known.any():
        raise ValueError("fill_track needs at least one known box")
    idx = np.flatnonzero(known)
    t = np.arange(len(known))
    return np.stack([np.interp(t, idx, np.asarray(boxes, np.float64)[idx, c]) for c in range(3)], -1)


def smooth_track(boxes: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing (sigma in frames, edges reflected) of a (t, 3) box track; sigma 0 = unchanged."""
    boxes = np.asarray(boxes, np.float64)
    if sigma <= 0 or len(boxes) < 2:
        return boxes.copy()
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    pad = np.pad(boxes, ((r, r), (0, 0)), mode="reflect" if len(boxes) > r else "edge")
    return np.stack([np.convolve(pad[:, c], k, mode="valid") for c in range(boxes.shape[1])], -1)
