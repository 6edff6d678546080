"""Per-joint error plot (PNG): pelvis-aligned MPJPE of each of the 22 joints, visible vs occluded.

Drawn with OpenCV (matplotlib is not a dependency): one group of bars per joint, one colour per
method; a solid bar is the error over the frames where the joint is visible, the hatched bar
beside it the error where it is occluded. Without a visibility mask, one solid bar over all frames.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from moro.body.joint_sets import JOINTS22
from moro.paths import atomic_write

if TYPE_CHECKING:
    from .report import EvalResult

__all__ = ["plot_per_joint"]

_COLOURS = [(180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148), (75, 86, 140), (194, 119, 227)]
_SHORT = {"left": "L", "right": "R"}


def _label(name: str) -> str:
    side, _, rest = name.partition("_")
    return f"{_SHORT[side]}.{rest}" if side in _SHORT else name


def _text(img, s, org, scale=0.45, colour=(30, 30, 30), thick=1):
    import cv2

    cv2.putText(img, s, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thick, cv2.LINE_AA)


def _vertical_text(img, s, x, y_top, scale=0.42):
    """Write ``s`` rotated 90 degrees (reading bottom-up) with its right end at (x, y_top)."""
    import cv2

    (w, h), base = cv2.getTextSize(s, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    patch = np.full((h + base + 2, w + 2, 3), 255, np.uint8)
    _text(patch, s, (1, h + 1), scale)
    patch = cv2.rotate(patch, cv2.ROTATE_90_COUNTERCLOCKWISE)
    ph, pw = patch.shape[:2]
    x0 = max(0, x - pw // 2)
    img[y_top : y_top + ph, x0 : x0 + pw] = np.minimum(img[y_top : y_top + ph, x0 : x0 + pw], patch)


def plot_per_joint(result: "EvalResult", path: str | os.PathLike) -> Path:
    """Write the per-joint bar chart of ``result``'s methods to ``path`` (PNG); returns the path."""
    try:
        import cv2
    except ImportError as e:  # pragma: no cover - cv2 ships with moro[render]
        raise RuntimeError("the per-joint plot needs OpenCV: pip install 'moro[render]' (opencv-python-headless)") from e
    methods = result.methods
    has_occ = any("occ" in m.per_joint for m in methods)
    kinds = ("vis", "occ") if has_occ else ("all",)
    data = np.array([[m.per_joint.get(k, [math.nan] * 22) for k in kinds] for m in methods], dtype=float)  # (M, K, 22)
    data = data.reshape(len(methods), len(kinds), 22) if methods else np.zeros((0, len(kinds), 22))
    top = np.nanmax(data) if data.size and np.isfinite(data).any() else 1.0
    top = max(top, 1e-6) * 1.1

    bar = 7 if len(methods) * len(kinds) <= 6 else 4
    group = bar * len(methods) * len(kinds) + 10
    left, right, up, down = 70, 20, 60, 95
    width = left + right + 22 * group
    height = 455
    plot_h = height - up - down
    img = np.full((height, width, 3), 255, np.uint8)
    y0 = up + plot_h  # baseline
    for i in range(6):  # grid and y labels
        v = top * i / 5
        y = int(y0 - plot_h * i / 5)
        cv2.line(img, (left, y), (width - right, y), (225, 225, 225), 1)
        _text(img, f"{v:.0f}", (8, y + 4))
    _text(img, "mm", (8, up - 12))
    for j in range(22):
        gx = left + j * group + 5
        for mi in range(len(methods)):
            colour = _COLOURS[mi % len(_COLOURS)]
            for ki, kind in enumerate(kinds):
                v = data[mi, ki, j]
                x = gx + (mi * len(kinds) + ki) * bar
                if not math.isfinite(v):
                    continue
                y = int(round(y0 - plot_h * v / top))
                if kind == "occ":  # hatched: outline + diagonal lines
                    cv2.rectangle(img, (x, y), (x + bar - 2, y0), colour, 1)
                    for yy in range(y0, y, -4):
                        cv2.line(img, (x, yy), (x + bar - 2, max(y, yy - bar + 2)), colour, 1)
                else:
                    cv2.rectangle(img, (x, y), (x + bar - 2, y0), colour, -1)
        _vertical_text(img, _label(JOINTS22[j]), left + j * group + group // 2, y0 + 6)
    cv2.line(img, (left, y0), (width - right, y0), (0, 0, 0), 1)
    title = f"{result.protocol}: per-joint MPJPE" + (" - solid: visible, hatched: occluded" if has_occ else " (all frames)")
    _text(img, title, (left, 22), 0.55, thick=1)
    x = left
    for mi, m in enumerate(methods):  # legend
        colour = _COLOURS[mi % len(_COLOURS)]
        cv2.rectangle(img, (x, 34), (x + 14, 46), colour, -1)
        _text(img, m.name, (x + 18, 45))
        x += 30 + cv2.getTextSize(m.name, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)[0][0]
    ok, buf = cv2.imencode(".png", img)
    if not ok:  # pragma: no cover
        raise RuntimeError("OpenCV failed to encode the per-joint plot")
    path = Path(path)
    with atomic_write(path) as tmp:
        tmp.write_bytes(buf.tobytes())
    return path
