"""How much of a row's MPJPE is the body's heading: rotation between predicted and true pelvis-aligned joints.

Reads the predictions that ``moro bench accuracy`` leaves in ``RESULTS/accuracy-work/pred/<half>/<row>/``
and the ground truth of the bench split. Per frame: joints minus the mean of the hips (metrics.md's
pelvis alignment), the rotation R that best maps prediction onto truth (Kabsch, no scale), its angle
and axis, and the facing yaw (hips x neck direction, about the camera's vertical axis) of both.

    python benchmarks/heading_error.py runs/bench-accuracy --row moro [--half occ] [--bench /work/data/synth/bench]

Prints: MPJPE and the rotation-aligned error (mm); how much the pose varies over frames, predicted and
true (:func:`pose_spread`: a near-constant predicted body shows as small values); the rotation angle's quartiles; the share of frames
and of MPJPE in angle bands; the mean |axis| of rotations over 30 deg (camera x, y, z; y is vertical);
the circular standard deviation of the predicted and the true facing yaw (a small predicted one: the
network gives nearly one heading to every frame) and the size of the yaw error.

With the ground truth's visibility it also splits the error by occlusion (every figure of a row is
measured on its own predictions; run it for ``--row moro`` and ``--row per-frame`` to compare):
MPJPE-occ with and without the rotation aligned (the rotation fitted on all 22 joints: what is left
is the local pose); the rotation angle by the share of the frame's 22 joints hidden; the lengths of
the runs of frames with at least ``--hidden`` of their joints hidden; and oracles (the ground truth
picks those frames) that turn each of them about the vertical to another facing yaw (:data:`ORACLES`):
the prediction's own yaw of the nearest frame below that share (hold) or interpolated across the run;
the true yaw interpolated across the run (what a heading right on the seen frames, carried through the
occlusion, would give); the true yaw itself (the most any heading fix on those frames can give). Last line:
every frame turned to the true yaw, the floor of any heading fix (what is left is the local pose and tilt).
"""

from __future__ import annotations

import argparse
import glob
from pathlib import Path

import numpy as np

PELVIS = (1, 2)  # hips (metrics.md)
NECK = 12
ORACLES = {  # how the hidden frames' facing yaw is replaced (main's last lines)
    "hold": "the prediction's own yaw of the nearest other frame (heading hold)",
    "interp": "the prediction's own yaw interpolated from the frames around",
    "true interp": "the true yaw interpolated from the frames around (a perfect heading where seen)",
    "true": "the true yaw (the most any heading fix on those frames can give)",
}


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


def rot_y(rad: float) -> np.ndarray:
    """(3, 3) rotation about the camera's vertical (y) axis that adds ``rad`` to :func:`facing_yaw` (in radians)."""
    c, s = np.cos(rad), np.sin(rad)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def hidden_runs(hidden: np.ndarray) -> list[int]:
    """Lengths of the runs of consecutive True frames of a (t,) bool array, in order."""
    runs, n = [], 0
    for h in np.asarray(hidden, dtype=bool):
        if h:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    return runs + ([n] if n else [])


def set_heading(joints: np.ndarray, yaw_deg: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Pelvis-aligned joints (t, j, 3) whose ``frames`` (t,) bool are turned about the vertical axis so that
    their :func:`facing_yaw` becomes ``yaw_deg`` (t,) degrees; the other frames unchanged."""
    out = joints.copy()
    for t in np.flatnonzero(frames):
        out[t] = joints[t] @ rot_y(np.radians(yaw_deg[t] - facing_yaw(joints[t]))).T
    return out


def hold_heading(joints: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """Pelvis-aligned joints (t, j, 3) whose ``hidden`` (t,) frames are turned about the vertical axis to the
    facing yaw of the nearest frame that is not hidden (ties: the earlier one); unchanged if all are hidden."""
    hidden = np.asarray(hidden, dtype=bool)
    seen = np.flatnonzero(~hidden)
    if len(seen) == 0:
        return joints.copy()
    yaw = np.array([facing_yaw(j) for j in joints])
    near = seen[np.argmin(np.abs(seen[None] - np.arange(len(joints))[:, None]), axis=1)]
    return set_heading(joints, yaw[near], hidden)


def interpolated_yaw(yaw_deg: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """(t,) degrees whose ``hidden`` frames take the yaw interpolated linearly (the shorter way round) between
    the nearest frames on each side that are not hidden, held beyond the first / last of them; the other
    frames keep theirs. All hidden: unchanged."""
    hidden = np.asarray(hidden, dtype=bool)
    seen = np.flatnonzero(~hidden)
    out = np.asarray(yaw_deg, dtype=np.float64).copy()
    if len(seen):
        out[hidden] = np.interp(np.flatnonzero(hidden), seen, np.degrees(np.unwrap(np.radians(out[seen]))))
    return out


LEG = ((1, 7), (2, 8))  # (hip, ankle) left and right (JOINTS22)
WRISTS = (20, 21)


def pose_spread(joints: np.ndarray) -> dict[str, float]:
    """How much the body pose varies over frames (t, 22, 3) of pelvis-aligned joints, metres: the standard deviation
    over frames of each leg's hip-to-ankle distance (legs bending: sitting, squatting, stepping) and of each wrist's
    height (camera y) relative to the pelvis, averaged over left and right. Rotation-invariant (the leg) or nearly so (upright bodies); a network that gives every
    frame about the same body has small values."""
    legs = np.mean([np.linalg.norm(joints[:, a] - joints[:, b], axis=-1).std() for a, b in LEG])
    return {"hip-ankle distance": float(legs), "wrist height": float(joints[:, list(WRISTS), 1].std(0).mean())}


def results_parser(doc: str) -> argparse.ArgumentParser:
    """The arguments shared by the scripts that read ``moro bench accuracy`` predictions."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", type=Path, help="the --results folder of `moro bench accuracy`")
    ap.add_argument("--row", default="moro")
    ap.add_argument("--half", default="occ", choices=["occ", "clean"])
    ap.add_argument("--bench", type=Path, default=Path("/work/data/synth/bench"))
    ap.add_argument("--hidden", type=float, default=0.6, help="share of hidden joints that makes a frame 'hidden'")
    return ap


def prediction_files(args: argparse.Namespace) -> list[str]:
    """The row's per-sequence prediction files, ``<results>/accuracy-work/pred/<half>/<row>/<sequence>.npz``."""
    files = sorted(glob.glob(str(args.results / "accuracy-work" / "pred" / args.half / args.row / "*.npz")))
    if not files:
        raise SystemExit(f"no predictions under {args.results}/accuracy-work/pred/{args.half}/{args.row}/: "
                         f"run `moro bench accuracy --results {args.results}` with that row first")
    return files


def aligned_joints(pred_file: str, bench: Path, half: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pelvis-aligned predicted and true camera-frame joints (t, 22, 3), metres, and the visibility (t, 22) bool
    of the bench sequence named by the prediction file."""
    pred = np.load(pred_file)["joints_cam"]
    labels = np.load(bench / half / Path(pred_file).stem / "labels.npz")
    gt, vis = labels["joints_cam"][: len(pred)], labels["visibility"][: len(pred)].astype(bool)
    return (pred - pred[:, PELVIS].mean(1, keepdims=True), gt - gt[:, PELVIS].mean(1, keepdims=True), vis)


def main() -> None:
    args = results_parser(__doc__).parse_args()
    files = prediction_files(args)
    ang, err, err_rot, axes, yaw_p, yaw_g = [], [], [], [], [], []
    occ, frac, err_j, err_rot_j, runs = [], [], [], [], []
    oracles = {k: [] for k in ORACLES}
    true_everywhere = []  # every frame turned to the true yaw: what is left is the local pose (and the tilt)
    spread_p, spread_g = [], []
    for f in files:
        pred, gt, vis = aligned_joints(f, args.bench, args.half)
        spread_p.append(pred)
        spread_g.append(gt)
        hidden = (~vis).mean(1) >= args.hidden
        occ.append(~vis)
        frac.append((~vis).mean(1))
        runs += hidden_runs(hidden)
        err_j.append(1000 * np.linalg.norm(pred - gt, axis=-1))
        own, true = np.array([facing_yaw(j) for j in pred]), np.array([facing_yaw(j) for j in gt])
        turned = {"hold": hold_heading(pred, hidden), "interp": set_heading(pred, interpolated_yaw(own, hidden), hidden),
                  "true interp": set_heading(pred, interpolated_yaw(true, hidden), hidden),
                  "true": set_heading(pred, true, hidden)}
        for k, j in turned.items():
            oracles[k].append(1000 * np.linalg.norm(j - gt, axis=-1))
        true_everywhere.append(1000 * np.linalg.norm(set_heading(pred, true, np.ones(len(pred), bool)) - gt, axis=-1))
        for p, g in zip(pred, gt):
            r = kabsch(p, g)
            ang.append(np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1))))
            ax = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
            axes.append(np.abs(ax) / (np.linalg.norm(ax) + 1e-12))
            err.append(1000 * np.linalg.norm(p - g, axis=1).mean())
            err_rot_j.append(1000 * np.linalg.norm(p @ r.T - g, axis=1))
            err_rot.append(err_rot_j[-1].mean())
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
    sp, sg = pose_spread(np.concatenate(spread_p)), pose_spread(np.concatenate(spread_g))
    print("pose spread over frames (std, mm), predicted vs true: " + ", ".join(
        f"{k} {1000 * sp[k]:.0f} vs {1000 * sg[k]:.0f}" for k in sp))
    occ, frac, runs = np.concatenate(occ), np.concatenate(frac), np.asarray(runs)
    e, er = np.concatenate(err_j), np.stack(err_rot_j)
    if not occ.any():
        print("no hidden joints in these frames: no occlusion split")
        return
    print(f"MPJPE-occ {e[occ].mean():.1f} mm, rotation-aligned {er[occ].mean():.1f} mm "
          f"(visible joints: {e[~occ].mean():.1f} / {er[~occ].mean():.1f} mm)")
    for lo, hi in ((0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 1.01)):
        m = (frac >= lo) & (frac < hi)
        if m.any():
            print(f"  {lo:.1f}-{min(hi, 1.0):.1f} of the joints hidden: {100 * m.mean():5.1f} % of frames, rotation angle "
                  f"median {np.median(ang[m]):5.1f} deg, over 90 deg on {100 * np.mean(ang[m] > 90):5.1f} %")
    if len(runs):
        print(f"runs of frames with >= {args.hidden:.0%} of the joints hidden: {len(runs)}, length quartiles "
              f"{np.percentile(runs, [25, 50, 75]).round(1)} frames; {100 * runs[runs > 32].sum() / runs.sum():.1f} % of "
              f"those frames lie in runs over 32 frames")
    print(f"oracles: the frames with >= {args.hidden:.0%} of the joints hidden (picked by the ground truth) turned to")
    for k, what in ORACLES.items():
        eo = np.concatenate(oracles[k])
        print(f"  {what}: MPJPE-occ {eo[occ].mean():.1f} mm, MPJPE-all {eo.mean():.1f} mm")
    eo = np.concatenate(true_everywhere)
    print(f"every frame turned to the true yaw (the floor of any heading fix; what is left is the local pose): "
          f"MPJPE-occ {eo[occ].mean():.1f} mm, MPJPE-all {eo.mean():.1f} mm")


if __name__ == "__main__":
    main()
