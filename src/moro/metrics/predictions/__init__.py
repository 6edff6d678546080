"""Prediction files: moro's per-sequence format, and adapters for WHAM's and GVHMR's outputs.

- :mod:`.format`       the documented ``.npz`` per sequence, strict writer and reader
- :mod:`.scoring_body` SMPL / SMPL-X parameters -> the 22 SMPL scoring joints, vertices, feet
- :mod:`.baseline`     camera / world parameter sets -> one prediction (supplement C alignment)
- :mod:`.wham`         ``wham_output.pkl`` -> prediction
- :mod:`.gvhmr`        ``hmr4d_results.pt`` -> prediction
- :mod:`.moro_motion`  ``moro infer``'s ``motion.npz`` (SMPL-X with the authors' weights) -> prediction
- :mod:`.joblib_pickle` data-only reader of ``joblib.dump`` files (WHAM's)
"""

from .baseline import VARIANTS, prediction_from_params
from .format import (
    FORMAT,
    FORMAT_VERSION,
    JOINT_SETS,
    FrameMismatchError,
    MissingFramesError,
    NonFiniteError,
    PredictionFileError,
    PredictionSequence,
    UnknownJointSetError,
    prediction_path,
    read_prediction,
    select_frames,
    write_prediction,
)
from .gvhmr import gvhmr_to_prediction, read_gvhmr_results
from .moro_motion import moro_motion_to_prediction, read_moro_motion
from .scoring_body import (
    BodyModelSource,
    HandPCA,
    PosedSequence,
    Scored,
    ScoringBody,
    file_body_models,
    load_vertex_transfer,
    pose_smpl_params,
)
from .wham import read_wham_output, wham_to_prediction

__all__ = [
    "FORMAT", "FORMAT_VERSION", "JOINT_SETS", "PredictionSequence", "PredictionFileError", "UnknownJointSetError",
    "FrameMismatchError", "MissingFramesError", "NonFiniteError", "prediction_path", "read_prediction",
    "write_prediction", "select_frames", "ScoringBody", "Scored", "PosedSequence", "HandPCA", "BodyModelSource",
    "file_body_models", "load_vertex_transfer", "pose_smpl_params", "prediction_from_params", "VARIANTS",
    "read_wham_output", "wham_to_prediction", "read_gvhmr_results", "gvhmr_to_prediction",
    "read_moro_motion", "moro_motion_to_prediction",
]
