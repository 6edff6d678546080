"""A protocol = a source of :class:`GroundTruthSequence` + scoring options; :func:`evaluate` runs it.

Any reader plugs in by subclassing :class:`Protocol` (implement :meth:`Protocol.sequences`) or by
wrapping an iterable with :class:`SequenceProtocol`. Predictions come from a callable per method,
``sequence name -> PredictionSequence``; :class:`PredictionDir` reads moro's files from
``DIR/<method>/<sequence>.npz``. The ground truth is read once per sequence and every method is
scored on it, so memory stays bounded by one sequence.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from moro.metrics.predictions.format import PredictionSequence, prediction_path, read_prediction

from .report import REFERENCE_NAME, EvalResult, MethodResult
from .scoring import MethodScores, score_reference, score_sequence
from .sequence import GroundTruthSequence

log = logging.getLogger(__name__)

__all__ = ["Protocol", "SequenceProtocol", "PredictionDir", "PredictionSource", "discover_methods", "evaluate"]

PredictionSource = Callable[[str], PredictionSequence]
"""``source(sequence_name) -> PredictionSequence`` for one method."""


class Protocol:
    """Base class of the evaluation protocols.

    Attributes:
        name: protocol name (file names, table footers).
        accel_drop_ends: WHAM-style Accel (drop the first and last acceleration frame).
        notes: protocol-level notes copied into every report (deviations, options).
    """

    name: str = "protocol"
    accel_drop_ends: bool = False

    def __init__(self) -> None:
        self.notes: list[str] = []

    def sequences(self) -> Iterator[GroundTruthSequence]:
        """Yield the validated ground truth of every scored sequence, in a fixed order."""
        raise NotImplementedError  # abstractmethod: subclasses implement it

    def options(self) -> dict:
        """Options recorded in the JSON report."""
        return {"accel_drop_ends": self.accel_drop_ends}


class SequenceProtocol(Protocol):
    """A protocol over an explicit iterable of ground-truth sequences (e.g. the synthetic world's)."""

    def __init__(self, name: str, sequences: Iterable[GroundTruthSequence] | Callable[[], Iterable[GroundTruthSequence]]):
        super().__init__()
        self.name = name
        self._sequences = sequences

    def sequences(self) -> Iterator[GroundTruthSequence]:
        seqs = self._sequences() if callable(self._sequences) else self._sequences
        for gt in seqs:
            yield gt.validate()


class PredictionDir:
    """Reads one method's predictions from ``root/<sequence>.npz`` (see :mod:`moro.metrics.predictions.format`)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def __call__(self, sequence: str) -> PredictionSequence:
        return read_prediction(prediction_path(self.root, sequence), sequence)

    def __repr__(self) -> str:
        return f"PredictionDir({str(self.root)!r})"


def discover_methods(pred_dir: str | os.PathLike, names: Iterable[str] | None = None) -> dict[str, PredictionDir]:
    """Methods in ``pred_dir``: its sub-folders holding ``.npz`` files (sorted), or the given ``names``.

    Raises FileNotFoundError naming the folder and the methods available.
    """
    root = Path(pred_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"prediction directory {root} not found; expected {root}/<method>/<sequence>.npz")
    available = sorted(p.name for p in root.iterdir() if p.is_dir() and next(p.rglob("*.npz"), None) is not None)
    if names is None:
        if not available:
            raise FileNotFoundError(f"no method folders with .npz predictions in {root}; expected {root}/<method>/<sequence>.npz")
        return {n: PredictionDir(root / n) for n in available}
    out = {}
    for n in names:
        if not (root / n).is_dir():
            raise FileNotFoundError(f"method {n!r}: no folder {root / n}; methods with predictions in {root}: {available}")
        out[n] = PredictionDir(root / n)
    return out


def evaluate(
    protocol: Protocol,
    methods: Mapping[str, PredictionSource | str | os.PathLike],
    *,
    reference: bool = True,
    progress: Callable[[int, GroundTruthSequence], None] | None = None,
) -> EvalResult:
    """Score every method on every sequence of ``protocol``; frame-weighted pooling.

    Args:
        protocol: the ground-truth source and options.
        methods: ``{name: source}``; a source is a :data:`PredictionSource` or a folder path
            (read with :class:`PredictionDir`). Order = table order.
        reference: add the ground truth's own jitter / sliding as a reference row.
        progress: optional callback ``(index, gt)`` after each sequence (the CLI's progress).
    Returns:
        :class:`EvalResult`. Any missing or malformed prediction raises (naming the method,
        sequence and fix): a protocol is scored completely or not at all.
    """
    if not methods:
        raise ValueError("no methods to evaluate; pass at least one {name: prediction source}")
    sources = {n: (s if callable(s) else PredictionDir(s)) for n, s in methods.items()}
    scores = {n: MethodScores(n) for n in sources}
    ref = MethodScores(REFERENCE_NAME) if reference else None
    n_seq = n_frames = 0
    notes: list[str] = []
    for i, gt in enumerate(protocol.sequences()):
        if gt.deviation and f"ground truth: {gt.deviation}" not in notes:
            notes.append(f"ground truth: {gt.deviation}")
        for name, source in sources.items():
            score_sequence(source(gt.name), gt, scores[name], accel_drop_ends=protocol.accel_drop_ends)
        if ref is not None:
            score_reference(gt, ref)
        n_seq += 1
        n_frames += gt.num_frames
        log.info("%s: scored %s (%d frames)", protocol.name, gt.name, gt.num_frames)
        if progress is not None:
            progress(i, gt)
    if n_seq == 0:
        raise ValueError(f"protocol {protocol.name!r} yielded no sequence to score; check the ground-truth root")
    return EvalResult(
        protocol=protocol.name, methods=[MethodResult.from_scores(scores[n]) for n in sources],
        reference=None if ref is None else MethodResult.from_scores(ref), n_sequences=n_seq, n_frames=n_frames,
        notes=list(protocol.notes) + notes, options=protocol.options(),
    )
