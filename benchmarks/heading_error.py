"""How much of a row's MPJPE is the body's heading: rotation between predicted and true pelvis-aligned joints.

Reads the predictions that ``moro bench accuracy`` leaves in ``RESULTS/accuracy-work/pred/<half>/<row>/``
and the ground truth of the bench split. Per frame: joints minus the mean of the hips (metrics.md's
pelvis alignment), the rotation R that best maps prediction onto truth (Kabsch, no scale), its angle
and axis, and the facing yaw (hips x neck direction, about the camera's vertical axis) of both.

    python benchmarks/heading_error.py runs/bench-accuracy --row moro [--half occ] [--bench /work/data/synth/bench]

Prints: MPJPE and the rotation-aligned error (mm); the rotation angle's quartiles; the share of frames
and of MPJPE in angle bands; the mean |axis| of rotations over 30 deg (camera x, y, z; y is vertical);
the circular standard deviation of the predicted and the true facing yaw (a small predicted one: the
network gives nearly one heading to every frame) and the size of the yaw error.
"""

from __future__ import annotations

import argparse
import glob
from pathlib import Path

import numpy as np

PELVIS = (1, 2)  # hips (metrics.md)
NECK = 12


def kabsch(p: np.ndarray, g: np.ndarray) -> np.ndarray:
    """(j, 3), (j, 3) centred joints -> (3, 3) rotation R minimising |p R^T - g|."""
    u, _, vt = np.linalg.svd(p.T @ g)
    z = np.diag([1.0, 1.0, np.sign(np.linalg.det(vt.T @ u.T))])
    return vt.T @ z @ u.T


def facing_yaw(j: np.ndarray) -> float:
    """Degrees about the camera's vertical axis of the facing direction (hip vector x trunk vector)."""
    fwd = np.cross(j[PELVIS[1]] - j[PELVIS[0]], j[NECK] - j[0])
    return float(np.degrees(np.arctan2(fwd[0], fwd[2])))


def circular_std(deg: np.ndarray) -> float:
    """Circular standard deviation, degrees: sqrt(-2 ln R), R the mean resultant length of the angles."""
    r = np.abs(np.exp(1j * np.radians(deg)).mean())
    return float(np.degrees(np.sqrt(-2.0 * np.log(max(r, 1e-12)))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", type=Path, help="the --results folder of `moro bench accuracy`")
    ap.add_argument("--row", default="moro")
    ap.add_argument("--half", default="occ", choices=["occ", "clean"])
    ap.add_argument("--bench", type=Path, default=Path("/work/data/synth/bench"))
    args = ap.parse_args()
    files = sorted(glob.glob(str(args.results / "accuracy-work" / "pred" / args.half / args.row / "*.npz")))
    if not files:
        raise SystemExit(f"no predictions under {args.results}/accuracy-work/pred/{args.half}/{args.row}/")
    ang, err, err_rot, axes, yaw_p, yaw_g = [], [], [], [], [], []
    for f in files:
        seq = Path(f).stem
        pred = np.load(f)["joints_cam"]
        gt = np.load(args.bench / args.half / seq / "labels.npz")["joints_cam"][: len(pred)]
        pred = pred - pred[:, PELVIS].mean(1, keepdims=True)
        gt = gt - gt[:, PELVIS].mean(1, keepdims=True)
        for p, g in zip(pred, gt):
            r = kabsch(p, g)
            ang.append(np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1))))
            ax = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
            axes.append(np.abs(ax) / (np.linalg.norm(ax) + 1e-12))
            err.append(1000 * np.linalg.norm(p - g, axis=1).mean())
            err_rot.append(1000 * np.linalg.norm(p @ r.T - g, axis=1).mean())
            yaw_p.append(facing_yaw(p))
            yaw_g.append(facing_yaw(g))
    ang, err, err_rot, axes = map(np.asarray, (ang, err, err_rot, axes))
    yaw_p, yaw_g = np.asarray(yaw_p), np.asarray(yaw_g)
    print(f"{args.row} ({args.half}, {len(files)} sequences, {len(ang)} frames): MPJPE {err.mean():.1f} mm, "
          f"rotation-aligned {err_rot.mean():.1f} mm")
    print("rotation angle quartiles (deg):", np.percentile(ang, [25, 50, 75]).round(1))
    for lo, hi in ((0, 30), (30, 90), (90, 181)):
        m = (ang >= lo) & (ang < hi)
        print(f"  {lo:>3}-{hi:<3} deg: {100 * m.mean():5.1f} % of frames, {100 * err[m].sum() / err.sum():5.1f} % of the MPJPE")
    print("mean |axis| of rotations over 30 deg (camera x, y, z):", axes[ang > 30].mean(0).round(2))
    d = (yaw_p - yaw_g + 180) % 360 - 180
    print(f"facing yaw circular std: predicted {circular_std(yaw_p):.1f} deg, true {circular_std(yaw_g):.1f} deg; "
          f"|yaw error| median {np.median(np.abs(d)):.1f} deg, over 90 deg on {100 * np.mean(np.abs(d) > 90):.1f} % of frames")


if __name__ == "__main__":
    main()
