"""Pooling per-frame metric values over sequences into one number per metric.

The rule (``shared/metrics.md``): values are pooled over all frames of all sequences - a
frame-weighted mean, never a mean of per-sequence means. Precisely:

- every entry of every sequence weighs the same. For per-frame metrics, (F,), an entry is a
  frame; for the metrics whose definition pools over (frame, joint) or (frame, foot) pairs -
  MPJPE-vis / -occ, (F, J), and foot sliding, (F-1, 4) - an entry is such a pair;
- NaN marks an entry the metric leaves undefined - an occluded joint in MPJPE-vis, a visible
  one in MPJPE-occ, a foot not in contact, every frame of a static sequence in RTE. NaN entries
  are skipped (in numerator and denominator alike) and counted in ``Pooled.n_undefined``;
- inf is never a valid metric value and raises ``ValueError``;
- if no defined entry remains, the pooled mean is NaN and a ``RuntimeWarning`` is issued.

One metric must keep one entry layout: all sequences pooled together have the same trailing
shape (all (F,), or all (F, 22), ...); mixing raises ``ValueError``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import torch

__all__ = ["Pooled", "pool_frames", "MetricPool"]


class Pooled(NamedTuple):
    """A pooled metric."""

    mean: float  # mean over all defined entries (NaN if none), in the metric's report unit
    count: int  # number of defined (non-NaN) entries that entered the mean
    n_undefined: int  # number of NaN entries skipped


def _as_values(name: str, v: object) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        t = v.detach().to(torch.float64)
    elif isinstance(v, np.ndarray):
        t = torch.from_numpy(np.asarray(v, dtype=np.float64))
    else:
        raise TypeError(f"{name}: per-frame values must be a torch.Tensor or numpy array, got {type(v).__name__}")
    if t.dim() == 0:
        raise ValueError(f"{name}: expected per-frame values (F, ...), got a scalar; pool per-frame values, not means")
    if bool(torch.isinf(t).any()):
        raise ValueError(f"{name}: values contain inf, which is never a valid metric value; check the inputs")
    return t


class MetricPool:
    """Accumulates per-frame values of several metrics over sequences (streaming, exact).

    Example::

        pool = MetricPool()
        for seq in sequences:
            pool.add("mpjpe", mpjpe(pred, gt))
            pool.add("rte", rte(pred_w, gt_w))
        table = pool.means()  # {"mpjpe": ..., "rte": ...}
    """

    def __init__(self) -> None:
        self._sum: dict[str, float] = {}
        self._count: dict[str, int] = {}
        self._nan: dict[str, int] = {}
        self._layout: dict[str, tuple[int, ...]] = {}

    def add(self, name: str, values: object) -> None:
        """Add one sequence's values of metric ``name``: a (F, ...) tensor or array."""
        t = _as_values(name, values)
        layout = tuple(t.shape[1:])
        if self._layout.setdefault(name, layout) != layout:
            raise ValueError(
                f"{name}: entry layout changed between sequences, {self._layout[name]} then {layout} "
                f"(trailing shape after the frame axis); pool one kind of entry per metric name"
            )
        defined = ~torch.isnan(t)
        self._sum[name] = self._sum.get(name, 0.0) + float(t[defined].sum())
        self._count[name] = self._count.get(name, 0) + int(defined.sum())
        self._nan[name] = self._nan.get(name, 0) + int((~defined).sum())

    def names(self) -> list[str]:
        """Metric names in the order they were first added."""
        return list(self._layout)

    def result(self, name: str) -> Pooled:
        """The pooled value of one metric (see the module docstring for the rule)."""
        if name not in self._layout:
            raise KeyError(f"no values were added for metric {name!r}; have {self.names()}")
        count, n_nan = self._count[name], self._nan[name]
        if count == 0:
            warnings.warn(
                f"{name}: no defined entry to pool ({n_nan} NaN entries); the pooled value is NaN",
                RuntimeWarning,
                stacklevel=2,
            )
            return Pooled(float("nan"), 0, n_nan)
        return Pooled(self._sum[name] / count, count, n_nan)

    def results(self) -> dict[str, Pooled]:
        """All pooled metrics, in insertion order."""
        return {n: self.result(n) for n in self._layout}

    def means(self) -> dict[str, float]:
        """All pooled means, in insertion order (report units)."""
        return {n: p.mean for n, p in self.results().items()}


def pool_frames(values: object | Iterable[object], name: str = "values") -> Pooled:
    """Pool one metric's per-frame values over sequences (frame-weighted, NaN-aware).

    Args:
        values: one (F, ...) tensor/array, or an iterable of them (one per sequence).
        name: metric name for error messages.
    Returns:
        :class:`Pooled` ``(mean, count, n_undefined)``; see the module docstring for the rule.
    """
    pool = MetricPool()
    seqs = [values] if isinstance(values, (torch.Tensor, np.ndarray)) else list(values)  # type: ignore[arg-type]
    if not seqs:
        raise ValueError(f"{name}: nothing to pool, got an empty list of sequences")
    for v in seqs:
        pool.add(name, v)
    return pool.result(name)
