"""Procedural human motion on the Anny body: moro's own motion source (no mocap licence needed).

Usage::

    from moro.body import load_anny
    from moro.synth.motion import generate_motion

    body = load_anny("notoes_collapse5pc")
    motion = generate_motion(body, num_frames=300, seed=7)             # all motion types
    walk = generate_motion(body, 90, seed=1, types=["walk", "idle"])   # a subset
    out = motion.pose(body)  # vertices (t, v, 3), joints (t, 36, 3), world frame, metres

A sequence is a random schedule of segments (``MOTION_TYPES``: walk, jog, side_step,
back_step, turn, idle, squat, sit, reach, pick_up, wave, gesture) with smooth transitions;
feet are planned as footsteps and reached by leg IK, so planted feet do not slide (ground
truth foot sliding well under 5 mm/frame, ``benchmarks/synth_motion.py``), the lowest vertex
stays above -1 cm, and every joint stays within the anatomical table of ``limits.py``.

Modules, in pipeline order: ``schedule`` (vocabulary, segments) -> ``base_path`` (root path on
the ground) -> ``footsteps`` (step plan) -> ``feet`` (foot poses) -> ``posture`` (action layers)
-> ``legs`` / ``arms`` (IK, arm angles) -> ``limits`` -> ``generator`` (assembly, checks);
``rig`` (rest geometry, FK), ``so3``, ``smoothing`` are helpers; ``spec`` holds the
input/output dataclasses. Imports nothing from moro's model, tokenizer or rendering.
"""

from .generator import generate_motion
from .limits import LIMIT_TABLE, clamp_to_limits, joint_angles, limit_violation, resolve_limits
from .rig import build_rig
from .schedule import DEFAULT_WEIGHTS, MOTION_TYPES
from .spec import CONTACT_SPEED, Motion, MotionSpec, contact_labels

__all__ = [
    "CONTACT_SPEED", "DEFAULT_WEIGHTS", "LIMIT_TABLE", "MOTION_TYPES", "Motion", "MotionSpec",
    "build_rig", "clamp_to_limits", "contact_labels", "generate_motion", "joint_angles",
    "limit_violation", "resolve_limits",
]
