"""Score one prediction against one ground-truth sequence; accumulate per method.

The columns are those of supplement Table 1 (:data:`TABLE_COLUMNS`), plus GVHMR's W-/WA-MPJPE100
(:data:`EXTRA_COLUMNS`, in the CSV / JSON only). Every value comes from the pure metric
functions of :mod:`moro.metrics`; this module only decides *what* is fed to them:

- camera-frame metrics (PA-MPJPE, MPJPE all/vis/occ, PVE, Accel) use ``joints_cam``;
- world-frame metrics (GMPJPE, W/WA-MPJPE, RTE, G-accel, Jitter, Sliding) use the prediction's
  camera-frame joints taken into the world with the **ground-truth** camera (``T_w2c``), so
  every metric scores one consistent set of predictions (supplement C). Baselines with their own
  world trajectory are brought into the camera beforehand (:mod:`moro.metrics.predictions.baseline`);
- pooling is frame-weighted over all sequences (:class:`moro.metrics.MetricPool`).

The ground-truth reference row (``reference=True``) holds the ground truth's own jitter and foot
sliding: a prediction equal to the ground truth reproduces exactly those values.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from moro.metrics import (
    MetricPool,
    accel_error,
    foot_sliding,
    g_accel_error,
    gmpjpe,
    jitter,
    mpjpe,
    pa_mpjpe,
    pve,
    rte,
    w_mpjpe,
    wa_mpjpe,
)
from moro.metrics.predictions.format import PredictionFileError, PredictionSequence, select_frames

from .sequence import GroundTruthSequence

__all__ = ["TABLE_COLUMNS", "EXTRA_COLUMNS", "ALL_COLUMNS", "MethodScores", "score_sequence", "score_reference"]

TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("pa_mpjpe", "PA-MPJPE", "mm"),
    ("mpjpe", "MPJPE-all", "mm"),
    ("mpjpe_vis", "MPJPE-vis", "mm"),
    ("mpjpe_occ", "MPJPE-occ", "mm"),
    ("pve", "PVE", "mm"),
    ("gmpjpe", "GMPJPE", "mm"),
    ("rte", "RTE", "%"),
    ("accel_error", "Accel", "m/s^2"),
    ("g_accel_error", "G-accel", "m/s^2"),
    ("jitter", "Jitter", "10 m/s^3"),
    ("foot_sliding", "Sliding", "mm/frame"),
)
"""(key, header, report unit) of supplement Table 1, in its order."""

EXTRA_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("w_mpjpe", "W-MPJPE100", "mm"),
    ("wa_mpjpe", "WA-MPJPE100", "mm"),
)
ALL_COLUMNS = TABLE_COLUMNS + EXTRA_COLUMNS


@dataclass
class MethodScores:
    """Streaming accumulator of one method over the sequences of a protocol."""

    name: str
    pool: MetricPool = field(default_factory=MetricPool)
    seq_counts: dict[str, int] = field(default_factory=dict)  # metric -> sequences that contributed
    joint_sum: dict[str, np.ndarray] = field(default_factory=dict)  # "all"/"vis"/"occ" -> (22,) mm sums
    joint_count: dict[str, np.ndarray] = field(default_factory=dict)  # -> (22,) entry counts
    per_sequence: list[dict] = field(default_factory=list)  # one row per sequence: frames + metric means
    notes: list[str] = field(default_factory=list)
    n_sequences: int = 0
    n_frames: int = 0

    def add(self, name: str, values: torch.Tensor, row: dict) -> None:
        self.pool.add(name, values)
        self.seq_counts[name] = self.seq_counts.get(name, 0) + 1
        v = values[~torch.isnan(values)]
        row[name] = float(v.mean()) if v.numel() else float("nan")

    def add_joints(self, kind: str, err: torch.Tensor) -> None:
        """err (F, 22) mm with NaN where the joint is not of this kind."""
        e = err.numpy()
        ok = ~np.isnan(e)
        self.joint_sum[kind] = self.joint_sum.get(kind, 0.0) + np.where(ok, e, 0.0).sum(0)
        self.joint_count[kind] = self.joint_count.get(kind, 0) + ok.sum(0)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def _pred_feet(pred: PredictionSequence, gt: GroundTruthSequence) -> np.ndarray | None:
    if pred.feet_cam is not None:
        return pred.feet_cam
    if pred.vertices_cam is not None and gt.foot_vertex_ids is not None and pred.topology == gt.topology:
        return pred.vertices_cam[:, gt.foot_vertex_ids]
    return None


def score_sequence(
    pred: PredictionSequence, gt: GroundTruthSequence, acc: MethodScores, *, accel_drop_ends: bool = False
) -> dict:
    """Score ``pred`` against ``gt`` and add the per-frame values to ``acc``.

    The prediction is restricted to the ground truth's scored frame ids (all must be present).
    Metrics whose inputs are absent (no visibility mask, no vertices, no feet, too few frames)
    are skipped for this sequence and noted in ``acc.notes``.

    Returns:
        the per-sequence row ``{"sequence", "frames", <metric>: mean}`` (also kept in ``acc``).
    """
    where = f"method {acc.name!r}, sequence {gt.name!r}"
    if abs(pred.fps - gt.fps) > 1e-6:
        raise PredictionFileError(
            f"{where}: prediction at {pred.fps} fps but the ground truth is at {gt.fps} fps; predict every "
            f"frame of the original sequence (velocity metrics depend on the frame rate)"
        )
    p = select_frames(pred, gt.frame_ids, where)
    if "DEVIATION" in p.scoring:
        acc.note(f"prediction joints: {p.scoring}")
    f = gt.num_frames
    row: dict = {"sequence": gt.name, "frames": f}
    P, G = _t(p.joints_cam), _t(gt.joints_cam)

    # camera frame
    acc.add("pa_mpjpe", pa_mpjpe(P, G), row)
    all_err = mpjpe(P, G, np.ones((f, 22), dtype=bool)).vis  # (F, 22) per-joint errors, mm
    acc.add("mpjpe", all_err.mean(dim=1), row)
    acc.add_joints("all", all_err)
    if gt.visibility is not None:
        split = mpjpe(P, G, gt.visibility)
        acc.add("mpjpe_vis", split.vis, row)
        acc.add("mpjpe_occ", split.occ, row)
        acc.add_joints("vis", split.vis)
        acc.add_joints("occ", split.occ)
    else:
        acc.note("MPJPE-vis/-occ: the protocol has no visibility mask for some sequences")
    if gt.vertices_cam is not None and p.vertices_cam is not None:
        if p.topology != gt.topology:
            raise PredictionFileError(
                f"{where}: prediction vertices are {p.topology} but the ground truth's are {gt.topology}; write vertices "
                f"of the scoring topology (SMPL-X -> SMPL with the smplx2smpl transfer) or omit vertices_cam"
            )
        acc.add("pve", pve(_t(p.vertices_cam), _t(gt.vertices_cam), pred_joints=P, gt_joints=G), row)
    else:
        acc.note("PVE: vertices missing (prediction or ground truth) for some sequences")

    # world frame: the prediction taken into the world with the ground-truth camera
    Pw, Gw = _t(gt.camera_to_world(p.joints_cam)), _t(gt.joints_world)
    acc.add("gmpjpe", gmpjpe(Pw, Gw), row)
    acc.add("w_mpjpe", w_mpjpe(Pw, Gw), row)
    acc.add("wa_mpjpe", wa_mpjpe(Pw, Gw), row)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        acc.add("rte", rte(Pw, Gw), row)
    if any("static subject" in str(w.message) for w in caught):
        acc.note("RTE: static subjects (ground-truth path < 0.1 mm) are left out (NaN), see metrics.md")
    need = 5 if accel_drop_ends else 3
    if f >= need:
        acc.add("accel_error", accel_error(P, G, gt.fps, drop_ends=accel_drop_ends), row)
        acc.add("g_accel_error", g_accel_error(Pw, Gw, gt.fps), row)
    else:
        acc.note(f"Accel / G-accel: sequences shorter than {need} frames are left out")
    if f >= 4:
        acc.add("jitter", jitter(Pw, gt.fps), row)
    else:
        acc.note("Jitter: sequences shorter than 4 frames are left out")
    feet = _pred_feet(p, gt)
    if feet is not None and gt.feet_world is not None and f >= 2:
        acc.add("foot_sliding", foot_sliding(_t(gt.camera_to_world(feet)), _t(gt.feet_world)), row)
    else:
        acc.note("Sliding: foot vertices missing (prediction or ground truth) for some sequences")
    acc.n_sequences += 1
    acc.n_frames += f
    acc.per_sequence.append(row)
    return row


def score_reference(gt: GroundTruthSequence, acc: MethodScores) -> None:
    """The ground truth's own jitter and foot sliding (what a perfect prediction scores)."""
    row: dict = {"sequence": gt.name, "frames": gt.num_frames}
    if gt.num_frames >= 4:
        acc.add("jitter", jitter(_t(gt.joints_world), gt.fps), row)
    if gt.feet_world is not None and gt.num_frames >= 2:
        acc.add("foot_sliding", foot_sliding(_t(gt.feet_world), _t(gt.feet_world)), row)
    acc.n_sequences += 1
    acc.n_frames += gt.num_frames
    acc.per_sequence.append(row)
