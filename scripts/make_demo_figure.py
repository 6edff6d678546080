"""Write ``docs/demo.png`` from a ``moro demo`` output folder: ground truth vs moro vs the per-frame baseline.

Columns are frames of the most occluded stretch of the demo video (the ``--span`` frames with the
largest fraction of occluded joints, unless ``--start`` picks it); rows are

1. ground truth: the synthetic labels' mesh (``vertices_cam``) and 22 joints,
2. moro: the fitted mesh and joints of ``OUT/moro/motion.npz``,
3. per-frame: the same model with every frame decoded alone (``OUT/per_frame/motion.npz``),

each drawn over the input frame with the renderer of the overlay video
(:class:`moro.inference.videos.MeshPainter`, :func:`~moro.inference.videos.draw_joints`).
In every row a joint the ground truth marks occluded (hidden by an occluder or outside the
image) is a hollow red circle, a visible one a green dot, so one sees where each method puts the
hidden joints; the prediction panels carry their MPJPE-occ of that frame (mm, pelvis-aligned).
Panels are cropped to the person (the ground-truth boxes of the stretch).

    .venv/bin/moro demo --out out/demo
    .venv/bin/python scripts/make_demo_figure.py out/demo                 # -> docs/demo.png
    .venv/bin/python scripts/make_demo_figure.py out/demo --columns 6 --out /tmp/demo.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from moro.body import load_anny
from moro.inference.videos import MeshPainter, draw_joints
from moro.metrics import mpjpe
from moro.synth.render import Camera

ROWS = (("ground truth", None), ("moro", "moro"), ("per-frame", "per_frame"))
WHITE, GREY = (255, 255, 255), (40, 40, 40)


def occluded_stretch(visibility: np.ndarray, span: int) -> int:
    """First frame of the ``span`` consecutive frames with the most occluded joints; visibility (t, 22) bool."""
    occ = (~visibility).mean(1)
    span = min(span, len(occ))
    sums = np.convolve(occ, np.ones(span), mode="valid")
    return int(np.argmax(sums))


def crop_box(boxes: np.ndarray, width: int, height: int, aspect: float) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) around HMR boxes (k, 3) ``(cx, cy, s)`` with the aspect ``w / h``, inside the image."""
    half = 100.0 * boxes[:, 2:3]
    lo, hi = (boxes[:, :2] - half).min(0), (boxes[:, :2] + half).max(0)
    c, size = (lo + hi) / 2, hi - lo
    h = max(size[1], size[0] / aspect)
    h = min(h, height, width / aspect)
    w = h * aspect
    x0 = int(np.clip(c[0] - w / 2, 0, width - w))
    y0 = int(np.clip(c[1] - h / 2, 0, height - h))
    return x0, y0, int(x0 + w), int(y0 + h)


def read_frames(video: Path, frames: list[int]) -> dict[int, np.ndarray]:
    """RGB frames (H, W, 3) uint8 of the given indices (decode order)."""
    import av

    want, out = set(frames), {}
    with av.open(str(video)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i in want:
                out[i] = f.to_ndarray(format="rgb24")
            if i >= max(frames):
                break
    return out


def label(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.5) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, GREY, 3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, WHITE, 1, cv2.LINE_AA)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("demo", type=Path, help="output folder of `moro demo` (holds demo.json)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "demo.png")
    ap.add_argument("--columns", type=int, default=5, help="frames shown")
    ap.add_argument("--span", type=int, default=40, help="frames of the stretch the columns are spread over")
    ap.add_argument("--start", type=int, default=None, help="first frame of the stretch (default: most occluded)")
    ap.add_argument("--panel-height", type=int, default=260, help="pixels per panel")
    ap.add_argument("--backend", default="auto", choices=["auto", "egl", "software", "points"])
    args = ap.parse_args()

    doc = json.loads((args.demo / "demo.json").read_text())
    if not doc.get("complete"):
        raise SystemExit(f"{args.demo / 'demo.json'} is not complete; run `moro demo --out {args.demo}` first")
    seq = Path(doc["sequence"])
    meta = json.loads((seq / "meta.json").read_text())
    with np.load(seq / "labels.npz") as z:
        lab = {k: z[k] for k in ("K", "visibility", "joints_cam", "vertices_cam", "box_gt")}
    preds = {}
    for _, run in ROWS[1:]:
        with np.load(args.demo / run / "motion.npz") as z:
            if "vertices_cam" not in z.files:
                raise SystemExit(f"{args.demo / run / 'motion.npz'} has no vertices_cam (the demo saves them; re-run it)")
            preds[run] = {k: z[k] for k in ("joints22_cam", "vertices_cam", "faces", "source_frame")}
    t = len(lab["visibility"])
    start = occluded_stretch(lab["visibility"], args.span) if args.start is None else args.start
    span = min(args.span, t - start)
    cols = sorted(set(np.linspace(start, start + span - 1, args.columns).round().astype(int).tolist()))
    frames = read_frames(seq / "video.mp4", cols)
    height, width = next(iter(frames.values())).shape[:2]
    x0, y0, x1, y1 = crop_box(lab["box_gt"][cols], width, height, aspect=0.8)

    body = load_anny(meta["body"]["topology"])
    rest = body.shaped(body.zero_betas())[0].numpy()
    faces_gt = body.faces.numpy()
    camera = Camera(lab["K"], np.eye(3), np.zeros(3), width, height)
    err = {run: mpjpe(torch.from_numpy(p["joints22_cam"].astype(np.float64)), torch.from_numpy(lab["joints_cam"]),
                      lab["visibility"]).occ.numpy() for run, p in preds.items()}  # (t, 22) mm, NaN where visible

    rows = []
    for name, run in ROWS:
        verts = lab["vertices_cam"] if run is None else preds[run]["vertices_cam"]
        joints = lab["joints_cam"] if run is None else preds[run]["joints22_cam"]
        faces = faces_gt if run is None else preds[run]["faces"]
        painter = MeshPainter(faces, rest if len(rest) == verts.shape[1] else verts[0], args.backend)
        panels = []
        try:
            for f in cols:
                img = painter.paint(frames[f], camera, verts[f], alpha=0.85)
                uv, _ = camera.project(joints[f])
                img = draw_joints(img, uv, ~lab["visibility"][f])[y0:y1, x0:x1]
                size = (round(img.shape[1] * args.panel_height / img.shape[0]), args.panel_height)
                img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
                label(img, f"frame {f}", (6, 18))
                if run is not None:
                    e = err[run][f]
                    text = f"occ {np.nanmean(e):.0f} mm" if np.isfinite(e).any() else "no occluded joint"
                    label(img, text, (6, img.shape[0] - 8))
                panels.append(img)
        finally:
            painter.close()
        row = np.concatenate(panels, 1)
        head = np.full((row.shape[0], 130, 3), 30, np.uint8)
        label(head, name, (8, row.shape[0] // 2), 0.6)
        rows.append(np.concatenate([head, row], 1))
    sheet = np.concatenate(rows, 0)
    foot = np.full((28, sheet.shape[1], 3), 30, np.uint8)
    scores = doc["scores"]
    label(foot, f"green dot: visible joint, red circle: occluded in the ground truth | MPJPE-occ over the video: "
                f"moro {scores['moro']['mpjpe_occ']:.1f} mm, per-frame {scores['per_frame']['mpjpe_occ']:.1f} mm",
          (8, 19), 0.45)
    sheet = np.concatenate([sheet, foot], 0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.out), np.ascontiguousarray(sheet[..., ::-1])):
        raise SystemExit(f"could not write {args.out}")
    print(f"frames {cols} (stretch {start}..{start + span - 1}, {100 * (~lab['visibility'][start:start + span]).mean():.0f} % "
          f"of the joints occluded) -> {args.out} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
    main()
