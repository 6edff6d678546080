"""``moro eval``'s library side: build a protocol by name, score a prediction directory, write files.

Protocols by name (:data:`PROTOCOLS`): ``egobody-occ``, ``rich``, ``rich-trunc``, ``synth``
(the synthetic benchmark written by ``moro synth``, :mod:`.synth`). Other readers plug in through
:class:`SequenceProtocol` / :func:`register_protocol`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from moro.metrics.predictions.scoring_body import (
    BodyModelSource,
    HandPCA,
    ScoringBody,
    file_body_models,
    load_vertex_transfer,
)

from .protocol import Protocol, discover_methods, evaluate
from .report import EvalResult

__all__ = ["EvalConfig", "PROTOCOLS", "ProtocolUnavailableError", "build_protocol", "register_protocol", "run_eval"]


class ProtocolUnavailableError(RuntimeError):
    """The protocol exists in the paper but its ground-truth reader is not in this moro yet."""


@dataclass
class EvalConfig:
    """Options of ``moro eval`` (each maps to a CLI flag)."""

    protocol: str  # one of PROTOCOLS
    gt_root: Path  # dataset root of the protocol's ground truth
    pred_dir: Path  # DIR/<method>/<sequence>.npz
    methods: list[str] | None = None  # None: every method folder in pred_dir
    out_dir: Path | None = None  # where CSV / JSON / PNG go (None: nothing written)
    smplx: Path | None = None  # SMPL-X model file or folder (None: moro's search order)
    smpl: Path | None = None  # SMPL model file or folder (for the SMPL-X -> SMPL mapping)
    smplx2smpl: Path | None = None  # vertex transfer; None = SMPL-X joints (a reported deviation)
    gt_boxes: bool = False  # supplement D's GT boxes as the protocol's input boxes
    trusted: bool = False  # unpickle ground-truth .pt files fully
    reference: bool = True  # add the ground truth's own jitter / sliding row
    plot: bool = True
    models: BodyModelSource | None = None  # override (tests: synthetic bodies)
    extra: dict = field(default_factory=dict)  # reader-specific options


def _scoring(cfg: EvalConfig, models: BodyModelSource) -> ScoringBody | None:
    if cfg.smplx2smpl is None:
        return None
    return ScoringBody.smplx_to_smpl(load_vertex_transfer(cfg.smplx2smpl), models("smpl", "neutral"))


def _egobody(cfg: EvalConfig, models: BodyModelSource) -> Protocol:
    from .egobody_occ import EgoBodyOcc

    hand_pca = cfg.extra.get("hand_pca")
    if hand_pca is None and cfg.smplx is not None and Path(cfg.smplx).is_file():
        try:
            hand_pca = HandPCA.from_smplx_file(cfg.smplx)
        except ValueError:
            hand_pca = None
    return EgoBodyOcc(cfg.gt_root, models, _scoring(cfg, models), hand_pca=hand_pca, use_gt_boxes=cfg.gt_boxes)


def _rich(truncation: bool) -> Callable[[EvalConfig, BodyModelSource], Protocol]:
    def build(cfg: EvalConfig, models: BodyModelSource) -> Protocol:
        from .rich import Rich

        return Rich(cfg.gt_root, models, _scoring(cfg, models), truncation=truncation, use_gt_boxes=cfg.gt_boxes,
                    trusted=cfg.trusted)

    return build


def _synth(cfg: EvalConfig, models: BodyModelSource) -> Protocol:
    from .synth import SynthBenchmark

    return SynthBenchmark(cfg.gt_root, use_gt_boxes=cfg.gt_boxes, verify=bool(cfg.extra.get("verify", False)))


PROTOCOLS: dict[str, Callable[[EvalConfig, BodyModelSource], Protocol]] = {
    "egobody-occ": _egobody,
    "rich": _rich(False),
    "rich-trunc": _rich(True),
    "synth": _synth,
}


def register_protocol(name: str, build: Callable[[EvalConfig, BodyModelSource], Protocol]) -> None:
    """Add (or replace) a protocol builder ``build(cfg, models) -> Protocol`` under ``name``."""
    PROTOCOLS[name] = build


def build_protocol(cfg: EvalConfig) -> Protocol:
    """The :class:`Protocol` named by ``cfg.protocol`` over ``cfg.gt_root``."""
    if cfg.protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {cfg.protocol!r}; choose one of {sorted(PROTOCOLS)}")
    if cfg.protocol != "synth" and not Path(cfg.gt_root).is_dir():
        raise FileNotFoundError(f"ground-truth root {cfg.gt_root} not found (--gt)")
    models = cfg.models or file_body_models(smplx=cfg.smplx, smpl=cfg.smpl)
    return PROTOCOLS[cfg.protocol](cfg, models)


def run_eval(
    cfg: EvalConfig, progress: Callable[[int, object], None] | None = None
) -> tuple[EvalResult, dict[str, Path]]:
    """Score every method of ``cfg.pred_dir`` on ``cfg.protocol``; write files when ``cfg.out_dir``.

    Returns:
        the :class:`EvalResult` and the written paths (empty without ``out_dir``).
    """
    protocol = build_protocol(cfg)
    methods = discover_methods(cfg.pred_dir, cfg.methods)
    result = evaluate(protocol, methods, reference=cfg.reference, progress=progress)
    paths = result.write(cfg.out_dir, plot=cfg.plot) if cfg.out_dir is not None else {}
    return result, paths


def default_out_dir(pred_dir: str | os.PathLike, protocol: str) -> Path:
    """``<pred_dir>/eval-<protocol>`` (used by the CLI when ``--out`` is not given)."""
    return Path(pred_dir) / f"eval-{protocol}"
