"""Regenerate ``docs/synth.png``: a contact sheet of synthetic frames with the 2D keypoints drawn.

Each tile is one frame of a ``moro synth`` split with its 22 projected joints: visible joints
as green dots, occluded ones (hidden by an occluder or outside the image) as red crosses, the
skeleton in white, the ground-truth box in yellow and the detector-like box in cyan (dashed
when it was made too tight).

    # generate a small bench (or point --data at an existing split folder)
    .venv/bin/python scripts/make_contact_sheet.py                      # -> docs/synth.png
    .venv/bin/python scripts/make_contact_sheet.py --data OUT/bench --rows 3 --cols 4

Without ``--data`` it writes a 12-sequence x 90-frame bench (seed 2026, 640x360) to a temporary
folder first; the tiles are taken from the occluded half and the clean half (3:1), at frames
spread over each sequence.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np

from moro.data.synth import SynthDataset

# JOINTS22 parents (SMPL kinematic tree)
PARENTS22 = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)
GREEN, RED, WHITE, YELLOW, CYAN = (60, 220, 60), (40, 40, 255), (235, 235, 235), (0, 220, 255), (255, 220, 0)  # BGR


def _box(img, box, colour, dashed=False):
    cx, cy, s = (float(x) for x in box)
    h = 100.0 * s
    pts = np.array([[cx - h, cy - h], [cx + h, cy - h], [cx + h, cy + h], [cx - h, cy + h]])
    for a, b in zip(pts, np.roll(pts, -1, 0)):
        if not dashed:
            cv2.line(img, tuple(np.int32(a)), tuple(np.int32(b)), colour, 1, cv2.LINE_AA)
            continue
        n = max(2, int(np.linalg.norm(b - a) / 6))
        for k in range(0, n, 2):
            p, q = a + (b - a) * k / n, a + (b - a) * min(k + 1, n) / n
            cv2.line(img, tuple(np.int32(p)), tuple(np.int32(q)), colour, 1, cv2.LINE_AA)


def draw(sample, width: int) -> np.ndarray:
    """The sample's image (BGR, resized to ``width``) with keypoints, skeleton and boxes."""
    img = np.ascontiguousarray(sample.image[..., ::-1])
    f = width / img.shape[1]
    img = cv2.resize(img, (width, int(round(img.shape[0] * f))), interpolation=cv2.INTER_AREA)
    uv = (sample.kp2d + 0.5) * f - 0.5
    _box(img, [(sample.box_gt[0] + 0.5) * f - 0.5, (sample.box_gt[1] + 0.5) * f - 0.5, sample.box_gt[2] * f], YELLOW)
    tight = bool(sample.box_det[2] * 200 < 0.9 * sample.box_gt[2] * 200)
    _box(img, [(sample.box_det[0] + 0.5) * f - 0.5, (sample.box_det[1] + 0.5) * f - 0.5, sample.box_det[2] * f], CYAN, tight)
    for j, p in enumerate(PARENTS22):
        if p >= 0:
            cv2.line(img, tuple(np.int32(uv[j])), tuple(np.int32(uv[p])), WHITE, 1, cv2.LINE_AA)
    for j in range(22):
        x, y = (int(round(c)) for c in uv[j])
        if sample.visibility[j]:
            cv2.circle(img, (x, y), 3, GREEN, -1, cv2.LINE_AA)
        else:
            cv2.drawMarker(img, (x, y), RED, cv2.MARKER_TILTED_CROSS, 8, 2, cv2.LINE_AA)
    label = f"{sample.sequence} #{sample.frame_id}  occluded {int((~sample.visibility).sum())}/22"
    cv2.putText(img, label, (5, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, label, (5, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, WHITE, 1, cv2.LINE_AA)
    return img


def contact_sheet(data: Path, rows: int, cols: int, tile_width: int) -> np.ndarray:
    ds = SynthDataset(data)
    occ = [s for s in ds.names if s.startswith("occ/")] or ds.names
    clean = [s for s in ds.names if s.startswith("clean/")]
    n = rows * cols
    picks = [occ[i % len(occ)] for i in range(n - n // 4)] + [clean[i % len(clean)] for i in range(n // 4)] if clean else \
        [occ[i % len(occ)] for i in range(n)]
    tiles, used = [], {}
    for name in picks:
        seq = ds[name]
        k = used.get(name, 0)
        used[name] = k + 1
        repeats = picks.count(name)
        frame = int((k + 0.5) / repeats * len(seq))
        tiles.append(draw(seq.sample(frame, image=True), tile_width))
    h = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, h - t.shape[0]), (0, 0), (0, 0))) for t in tiles]
    grid = [np.concatenate(tiles[r * cols:(r + 1) * cols], 1) for r in range(rows)]
    return np.concatenate(grid, 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="a `moro synth` split folder (default: generate a small bench)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "synth.png"))
    ap.add_argument("--rows", type=int, default=3)
    ap.add_argument("--cols", type=int, default=4)
    ap.add_argument("--tile-width", type=int, default=320)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else None
        if data is None:
            from moro.synth.splits import plan_split
            from moro.synth.writer import write_split

            data = Path(tmp) / "bench"
            write_split(data, plan_split("bench", sequences=12, frames=90, width=640, height=360), seed=2026)
        sheet = contact_sheet(data, args.rows, args.cols, args.tile_width)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(args.out, sheet):
        raise SystemExit(f"could not write {args.out}")
    print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
    main()
