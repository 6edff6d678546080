"""Adapter for GVHMR's published output, ``hmr4d_results.pt`` (GVHMR ``tools/demo/demo.py``).

The file is ``torch.save`` of a dict (L = frames of the video, neutral SMPL-X, 10 betas):

======================= ============ ==================================================================
key                     shape        meaning
======================= ============ ==================================================================
smpl_params_incam       dict         camera frame: ``body_pose (L, 63)``, ``betas (L, 10)``,
                                     ``global_orient (L, 3)``, ``transl (L, 3)`` (axis-angle, metres)
smpl_params_global      dict         the same keys in GVHMR's gravity-aware world frame (Y up)
K_fullimg               (L, 3, 3)    intrinsics used (optional here)
net_outputs             dict         intermediate outputs (ignored)
======================= ============ ==================================================================

GVHMR scores SMPL: its SMPL-X vertices are mapped with the ``smplx2smpl`` vertex transfer and
the neutral SMPL regressor; pass ``scoring=ScoringBody.smplx_to_smpl(transfer, smpl)`` to do the
same (without it the SMPL-X joints are used and the result is labelled a deviation). GVHMR's
frames are the video's frames 0..L-1; frame ``i`` becomes dataset frame ``i + frame_offset``.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from moro.body.model import BodyModel

from .baseline import prediction_from_params
from .format import PredictionFileError, PredictionSequence
from .scoring_body import ScoringBody

__all__ = ["GVHMR_PARAM_KEYS", "read_gvhmr_results", "gvhmr_to_prediction"]

GVHMR_PARAM_KEYS = ("body_pose", "betas", "global_orient", "transl")
_WIDTH = {"body_pose": 63, "betas": 10, "global_orient": 3, "transl": 3}


def _numpy(x: object) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


def read_gvhmr_results(path: str | os.PathLike, trusted: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """Read ``hmr4d_results.pt``.

    Args:
        path: the file.
        trusted: allow arbitrary pickled objects (``torch.load(weights_only=False)``); only for
            files you produced yourself. By default only tensors and containers are loaded.
    Returns:
        ``{"smpl_params_incam": {key: (L, d) float64}, "smpl_params_global": {...}}``, every key of
        :data:`GVHMR_PARAM_KEYS` checked for width and frame count.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GVHMR output {path} not found; run GVHMR's tools/demo/demo.py (it writes hmr4d_results.pt)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=not trusted)
    except pickle.UnpicklingError as e:
        raise PredictionFileError(
            f"{path}: holds objects other than tensors ({e}); if you produced this file yourself, pass trusted=True"
        ) from e
    except Exception as e:  # zip / format errors of many types
        raise PredictionFileError(f"{path}: not a readable hmr4d_results.pt ({type(e).__name__}: {e})") from e
    if not isinstance(data, Mapping):
        raise PredictionFileError(f"{path}: expected GVHMR's results dict, got {type(data).__name__}")
    out: dict[str, dict[str, np.ndarray]] = {}
    frames = None
    for group in ("smpl_params_incam", "smpl_params_global"):
        g = data.get(group)
        if not isinstance(g, Mapping):
            raise PredictionFileError(f"{path}: missing dict {group!r}; GVHMR writes smpl_params_incam and smpl_params_global")
        missing = [k for k in GVHMR_PARAM_KEYS if k not in g]
        if missing:
            raise PredictionFileError(f"{path}: {group} lacks {missing}; expected {list(GVHMR_PARAM_KEYS)}")
        out[group] = {}
        for k in GVHMR_PARAM_KEYS:
            a = _numpy(g[k])
            frames = a.shape[0] if frames is None else frames
            if a.ndim != 2 or a.shape != (frames, _WIDTH[k]):
                raise PredictionFileError(
                    f"{path}: {group}.{k} must have shape ({frames}, {_WIDTH[k]}) (all parameters one row per frame), "
                    f"got {a.shape}"
                )
            out[group][k] = a
    return out


def gvhmr_to_prediction(
    source: str | os.PathLike | Mapping[str, Mapping[str, np.ndarray]],
    *,
    smplx: BodyModel,
    sequence: str,
    variant: Literal["cam", "world"] = "world",
    frame_offset: int = 0,
    fps: float = 30.0,
    scoring: ScoringBody | None = None,
    trusted: bool = False,
    keep_vertices: bool = True,
) -> PredictionSequence:
    """Convert GVHMR's results for one video into moro's prediction format.

    Args:
        source: path of ``hmr4d_results.pt`` or the dict :func:`read_gvhmr_results` returned.
        smplx: the neutral SMPL-X :class:`BodyModel` (10 betas).
        sequence: protocol sequence name.
        variant: ``"cam"`` (GVHMR -Cam) or ``"world"`` (GVHMR -World, mapped per supplement C).
        frame_offset: added to the video frame index 0..L-1 to get dataset frame ids.
        fps: frame rate.
        scoring: scoring skeleton; ``ScoringBody.smplx_to_smpl(...)`` follows metrics.md, the
            default ``ScoringBody.from_body(smplx)`` is a labelled deviation.
        trusted: see :func:`read_gvhmr_results`.
        keep_vertices: store the mesh (for PVE).
    """
    where = str(source) if not isinstance(source, Mapping) else "GVHMR results"
    r = read_gvhmr_results(source, trusted=trusted) if not isinstance(source, Mapping) else source
    frames = r["smpl_params_incam"]["transl"].shape[0]
    return prediction_from_params(
        sequence=sequence, body=smplx, scoring=scoring or ScoringBody.from_body(smplx), cam=r["smpl_params_incam"],
        world=r["smpl_params_global"], variant=variant, frame_ids=np.arange(frames) + int(frame_offset), fps=fps,
        method=f"gvhmr-{variant}", source=f"GVHMR {where}", keep_vertices=keep_vertices,
    )
