"""Pure metric functions for human motion recovery, exactly as ``shared/metrics.md`` defines them.

Every metric takes ONE sequence - joints (F, J, 3) or vertices (F, V, 3) in metres, torch
tensors or numpy arrays - and returns per-frame values as a float64 torch tensor in the paper's
report unit (stated in each docstring and in :data:`REPORT_UNITS`). Pool over sequences with
:func:`pool_frames` / :class:`MetricPool` (frame-weighted, NaN-aware). Wrong input (shapes,
frame counts, NaN, masks) raises ``ValueError`` with the fix; nothing is broadcast or shortened.

Modules (one concept each; this package never imports the model or inference):
- :mod:`.align`    pelvis, per-frame Procrustes, Umeyama, first-two-frames and per-chunk
  alignment; world -> camera mapping of baselines (supplement C)
- :mod:`.local`    camera-frame accuracy: MPJPE (all / vis / occ), PA-MPJPE, PVE, Accel
- :mod:`.world`    world-frame accuracy and realism: GMPJPE, W-/WA-MPJPE100, RTE, G-accel,
  jitter, foot sliding
- :mod:`.gt_free`  ground-truth-free realism: skating ratio, ground penetration, accel norm
- :mod:`.pooling`  frame-weighted pooling over sequences
- :mod:`.units`    report units and conversion factors
"""

from .align import (
    HIP_JOINTS,
    WorldToCamera,
    baseline_world_to_camera,
    chunk_align,
    first_frames_align,
    fit_world_to_camera,
    pelvis_align,
    pelvis_center,
    procrustes_align,
    umeyama_align,
)
from .gt_free import FEET, TOE_JOINTS, GroundPenetration, accel_norm, ground_penetration, skating_ratio
from .local import VisibilitySplit, accel_error, mpjpe, pa_mpjpe, pve
from .pooling import MetricPool, Pooled, pool_frames
from .units import REPORT_UNITS
from .world import FOOT_VERTICES_SMPL, foot_sliding, g_accel_error, gmpjpe, jitter, rte, w_mpjpe, wa_mpjpe

__all__ = [
    # alignment
    "HIP_JOINTS",
    "pelvis_center",
    "pelvis_align",
    "procrustes_align",
    "umeyama_align",
    "first_frames_align",
    "chunk_align",
    "fit_world_to_camera",
    "baseline_world_to_camera",
    "WorldToCamera",
    # camera-frame accuracy
    "mpjpe",
    "VisibilitySplit",
    "pa_mpjpe",
    "pve",
    "accel_error",
    # world-frame accuracy and realism
    "gmpjpe",
    "w_mpjpe",
    "wa_mpjpe",
    "rte",
    "g_accel_error",
    "jitter",
    "foot_sliding",
    "FOOT_VERTICES_SMPL",
    # ground-truth free
    "skating_ratio",
    "ground_penetration",
    "GroundPenetration",
    "accel_norm",
    "FEET",
    "TOE_JOINTS",
    # pooling and units
    "pool_frames",
    "MetricPool",
    "Pooled",
    "REPORT_UNITS",
]
