"""Video inference: masked decoding, windows, the video front end, parametric fit, world frame, exports.

Data flow of ``moro infer VIDEO`` (:func:`run_inference`; one module per concept)::

    video.py        frames from a file or image folder, resampled to 30 fps (streamed)
    boxes.py        user boxes file; detection.py  HOG / YOLO + IoU tracker (gaps interpolated)
    crops.py        HMR crops, crop intrinsics, CLIFF bbox info, backbone batches
    frontend.py     frames -> boxes -> backbone tokens, cached on disk (store.py)
    windows.py      500-frame windows (overlap 120, drop 60) -> decoding.py (K = 5 masked iterations)
    postprocess.py  tokens -> smoother -> tokenizer decoder -> camera-frame mesh -> one-shape fit
    ground.py       RANSAC ground plane under the slow feet -> world frame (Y up, ground y = 0)
    outputs.py      motion.npz (exports.py), motion.glb (gltf.py), motion.bvh (bvh.py), videos (videos.py)
    pipeline.py     the stages, caching, atomic output folder, summary.json

Bad input raises the errors of :mod:`moro.inference.errors` (all ``InferenceError``).
"""

from moro.inference.decoding import DecodeResult, DecodingConfig, StepOutput, decode_clip, iterative_decode, masked_schedule
from moro.inference.detection import DetectorConfig
from moro.inference.errors import (
    BodyModelMismatchError, BoxesFileError, EmptyVideoError, InferenceError, InputVideoError, InvalidFocalError,
    ModelNotForVideoError, NoPersonError, OutputDirError,
)
from moro.inference.pipeline import InferenceConfig, InferenceResult, run_inference
from moro.inference.postprocess import FitConfig
from moro.inference.windows import Window, WindowConfig, plan_windows

__all__ = [
    "DecodeResult", "DecodingConfig", "StepOutput", "decode_clip", "iterative_decode", "masked_schedule",
    "DetectorConfig", "FitConfig", "Window", "WindowConfig", "plan_windows",
    "InferenceConfig", "InferenceResult", "run_inference",
    "BodyModelMismatchError", "BoxesFileError", "EmptyVideoError", "InferenceError", "InputVideoError",
    "InvalidFocalError", "ModelNotForVideoError", "NoPersonError", "OutputDirError",
]
