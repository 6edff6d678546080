"""Evaluation results: the paper-style table (markdown), CSV and JSON files.

One row per method, side by side as in supplement Table 1; values in the report units of
:data:`.scoring.TABLE_COLUMNS`; "-" where a metric could not be computed for that method.
Files written by :meth:`EvalResult.write` (``<p>`` = protocol name):

- ``<p>_metrics.csv``       one row per method: every column (Table 1 + W/WA-MPJPE100), units in headers
- ``<p>_per_sequence.csv``  one row per (method, sequence): frames and per-sequence means
- ``<p>_metrics.json``      everything: values, entry counts, per-joint errors, notes, protocol options
- ``<p>_per_joint.png``     per-joint MPJPE, visible vs occluded (:mod:`.plot`)
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moro.body.joint_sets import JOINTS22
from moro.metrics.pooling import Pooled
from moro.paths import atomic_write

from .scoring import ALL_COLUMNS, TABLE_COLUMNS, MethodScores

__all__ = ["MethodResult", "EvalResult", "REFERENCE_NAME"]

REFERENCE_NAME = "GT (reference)"


@dataclass
class MethodResult:
    """Pooled results of one method (or of the ground-truth reference row)."""

    name: str
    values: dict[str, Pooled]  # metric key -> pooled mean (report unit), entries, undefined entries
    seq_counts: dict[str, int]  # metric key -> sequences that contributed
    per_joint: dict[str, list[float]]  # "all" / "vis" / "occ" -> 22 means, mm (NaN: no entry)
    per_sequence: list[dict]
    notes: list[str]
    n_sequences: int
    n_frames: int

    @classmethod
    def from_scores(cls, s: MethodScores) -> "MethodResult":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN metrics are reported as "-"
            values = s.pool.results()
        per_joint = {
            k: [float(x) if c else float("nan") for x, c in zip(s.joint_sum[k] / np.maximum(s.joint_count[k], 1), s.joint_count[k])]
            for k in s.joint_sum
        }
        return cls(s.name, values, dict(s.seq_counts), per_joint, s.per_sequence, list(s.notes), s.n_sequences, s.n_frames)

    def value(self, key: str) -> float:
        p = self.values.get(key)
        return float("nan") if p is None else p.mean


def _fmt(x: float) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.2f}"


@dataclass
class EvalResult:
    """A protocol's results for several methods."""

    protocol: str
    methods: list[MethodResult]
    reference: MethodResult | None = None
    n_sequences: int = 0
    n_frames: int = 0
    notes: list[str] = field(default_factory=list)  # protocol-level notes (deviations, options)
    options: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every method scored every sequence and each Table-1 value is finite or absent."""
        for m in self.methods:
            if m.n_sequences != self.n_sequences or self.n_sequences == 0:
                return False
            for key, _, _ in TABLE_COLUMNS:
                p = m.values.get(key)
                if p is not None and p.count > 0 and not math.isfinite(p.mean):
                    return False
        return bool(self.methods)

    def rows(self) -> list[MethodResult]:
        return self.methods + ([self.reference] if self.reference is not None else [])

    def markdown(self) -> str:
        """The paper-style table: methods side by side, Table 1 columns with units."""
        head = ["Method"] + [f"{h} ({u})" for _, h, u in TABLE_COLUMNS]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * len(TABLE_COLUMNS)) + "|"]
        for m in self.rows():
            cells = [m.name] + [_fmt(m.value(k)) for k, _, _ in TABLE_COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
        foot = [f"protocol {self.protocol}: {self.n_sequences} sequences, {self.n_frames} scored frames; "
                f"frame-weighted means over all sequences"]
        foot += [f"note: {n}" for n in self.notes]
        for m in self.methods:
            foot += [f"note ({m.name}): {n}" for n in m.notes]
        return "\n".join(lines + [""] + foot)

    def to_json(self) -> dict:
        def method(m: MethodResult) -> dict:
            return {
                "name": m.name, "sequences": m.n_sequences, "frames": m.n_frames, "notes": m.notes,
                "metrics": {
                    k: {"value": None if not math.isfinite(m.value(k)) else m.value(k), "unit": u,
                        "entries": m.values[k].count if k in m.values else 0,
                        "undefined_entries": m.values[k].n_undefined if k in m.values else 0,
                        "sequences": m.seq_counts.get(k, 0)}
                    for k, _, u in ALL_COLUMNS
                },
                "per_joint_mm": {k: dict(zip(JOINTS22, [None if not math.isfinite(x) else x for x in v]))
                                 for k, v in m.per_joint.items()},
                "per_sequence": m.per_sequence,
            }

        return {
            "protocol": self.protocol, "sequences": self.n_sequences, "frames": self.n_frames, "notes": self.notes,
            "options": self.options, "metrics_ok": self.ok, "methods": [method(m) for m in self.methods],
            "reference": None if self.reference is None else method(self.reference),
        }

    def write(self, out_dir: str | os.PathLike, plot: bool = True) -> dict[str, Path]:
        """Write the CSV / JSON (and PNG) files; returns ``{"csv", "per_sequence_csv", "json", "png"}`` paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "csv": out / f"{self.protocol}_metrics.csv", "per_sequence_csv": out / f"{self.protocol}_per_sequence.csv",
            "json": out / f"{self.protocol}_metrics.json",
        }
        with atomic_write(paths["csv"]) as tmp, open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["method", "sequences", "frames"] + [f"{h} [{u}]" for _, h, u in ALL_COLUMNS])
            for m in self.rows():
                w.writerow([m.name, m.n_sequences, m.n_frames] + [_csv(m.value(k)) for k, _, _ in ALL_COLUMNS])
        with atomic_write(paths["per_sequence_csv"]) as tmp, open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["method", "sequence", "frames"] + [f"{h} [{u}]" for _, h, u in ALL_COLUMNS])
            for m in self.rows():
                for r in m.per_sequence:
                    w.writerow([m.name, r["sequence"], r["frames"]] + [_csv(r.get(k, float("nan"))) for k, _, _ in ALL_COLUMNS])
        with atomic_write(paths["json"]) as tmp, open(tmp, "w") as fh:
            json.dump(_clean(self.to_json()), fh, indent=1)
        if plot:
            from .plot import plot_per_joint

            paths["png"] = plot_per_joint(self, out / f"{self.protocol}_per_joint.png")
        return paths


def _csv(x: float) -> str:
    return "" if x is None or not math.isfinite(x) else f"{x:.6g}"


def _clean(x):
    """JSON without NaN (-> null)."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, (np.floating, np.integer)):
        return _clean(x.item())
    return x
