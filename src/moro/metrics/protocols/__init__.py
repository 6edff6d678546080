"""Evaluation protocols: ground truth of real benchmarks, scoring, pooled tables, ``moro eval``.

Data flow: a reader yields :class:`GroundTruthSequence` s -> :func:`evaluate` scores every
method's :class:`~moro.metrics.predictions.PredictionSequence` on each (:mod:`.scoring`, using the
pure metrics of :mod:`moro.metrics`) -> :class:`EvalResult` (markdown table of supplement
Table 1, CSV, JSON, per-joint PNG).

Modules (one concept each):
- :mod:`.sequence`    the ground-truth record every reader returns
- :mod:`.boxes`       GT boxes (supplement D), RICH truncation boxes, in-box visibility
- :mod:`.scoring`     per-sequence scoring into frame-weighted pools; the table's columns
- :mod:`.report`      results, markdown / CSV / JSON
- :mod:`.plot`        per-joint PNG (visible vs occluded)
- :mod:`.protocol`    Protocol base, prediction folders, :func:`evaluate`
- :mod:`.egobody_occ` EgoBody-Occ reader (real EgoBody layout)
- :mod:`.rich`        RICH (GVHMR labels) and the truncation variant
- :mod:`.synth`       the synthetic benchmark (``moro synth`` folders); GT written as predictions
- :mod:`.run`         protocols by name, :func:`run_eval` behind ``moro eval``
"""

from .boxes import gt_boxes, joints_in_boxes, truncate_boxes
from .egobody_occ import EgoBodyOcc, EgoBodyOccEntry, openpose_boxes, read_occ_info
from .protocol import PredictionDir, PredictionSource, Protocol, SequenceProtocol, discover_methods, evaluate
from .report import REFERENCE_NAME, EvalResult, MethodResult
from .rich import Rich, read_rich_calibration
from .run import PROTOCOLS, EvalConfig, ProtocolUnavailableError, build_protocol, register_protocol, run_eval
from .scoring import ALL_COLUMNS, EXTRA_COLUMNS, TABLE_COLUMNS, MethodScores, score_sequence
from .sequence import GroundTruthError, GroundTruthSequence, MaskLengthError, camera_to_world
from .synth import SynthBenchmark, synth_ground_truth, write_gt_predictions

__all__ = [
    "GroundTruthSequence", "GroundTruthError", "MaskLengthError", "camera_to_world",
    "gt_boxes", "truncate_boxes", "joints_in_boxes",
    "TABLE_COLUMNS", "EXTRA_COLUMNS", "ALL_COLUMNS", "MethodScores", "score_sequence",
    "EvalResult", "MethodResult", "REFERENCE_NAME",
    "Protocol", "SequenceProtocol", "PredictionDir", "PredictionSource", "discover_methods", "evaluate",
    "EgoBodyOcc", "EgoBodyOccEntry", "read_occ_info", "openpose_boxes", "Rich", "read_rich_calibration",
    "SynthBenchmark", "synth_ground_truth", "write_gt_predictions",
    "PROTOCOLS", "EvalConfig", "ProtocolUnavailableError", "build_protocol", "register_protocol", "run_eval",
]
