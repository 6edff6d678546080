"""Procedural motion on the Anny body: :func:`generate_motion`.

Pipeline (one pass, no physics; ~1-3 ms per frame on a CPU, about half of it the body forward pass):

1. body shape: phenotypes drawn with :func:`moro.body.anny_model.sample_adult_phenotypes`;
2. a random schedule of motion segments (``schedule.py``) over the frames plus a pre-roll;
3. the base path on the ground (``base_path.py``) and the footsteps (``footsteps.py``);
4. planted-foot poses (``feet.py``), postural layers (``posture.py``);
5. the pelvis: base + gait sway and bob + postural shifts, orientation from the heading, the
   feet and the gait; heels rise and the pelvis comes down where a foot would be out of reach;
6. legs by two-bone IK to the planned ankles (``legs.py``), spine and neck, arms
   (``arms.py``), clamped to the joint limits (``limits.py``);
7. one forward pass of the body: lift frames whose lowest vertex is below the ground tolerance,
   foot-contact labels from contact-joint speeds.
"""

from __future__ import annotations

import numpy as np
import torch

from moro.body.anny_model import sample_adult_phenotypes
from moro.body.joint_sets import CONTACT_JOINTS

from . import so3
from .arms import arm_locals, reach_rotation, upper_arm_rotation
from .base_path import build_base_path, forward_dir, left_dir
from .feet import finish_swings, plan_stances, raise_heels, sole_min_height
from .footsteps import GaitConfig, plan_footsteps
from .legs import REACH, reach_deficit, solve_leg
from .limits import clamp_to_limits, resolve_limits
from .posture import build_posture
from .rig import SIDES, build_rig, forward_kinematics
from .schedule import sample_schedule
from .smoothing import conservative_smooth, gaussian_smooth
from .spec import Motion, MotionSpec, contact_labels

SPINE_WEIGHTS = np.array([0.15, 0.2, 0.25, 0.2, 0.2])  # spine05 (lumbar) .. spine01 (chest)
NECK_WEIGHTS = np.array([0.25, 0.25, 0.2, 0.3])  # neck01 .. head
MAX_HEEL_PITCH = 0.75  # rad: highest heel rise at push-off
MAX_LOWERING = 0.15  # m: the pelvis comes down at most this much to keep a foot within reach


def _pelvis(path, tracks, posture, rig, speed, jog, moving, stand_h, fps):
    """Root position (n, 3), orientation (n, 3, 3), yaw (n,) and gait yaw oscillation (n,)."""
    fwd, left = forward_dir(path.heading), left_dir(path.heading)
    planted = {s: gaussian_smooth(tracks[s].planted.astype(float), 2.0) for s in SIDES}
    ankle_xz = {s: tracks[s].ankle[:, [0, 2]] for s in SIDES}
    wsum = planted["L"] + planted["R"] + 1e-3
    support = (planted["L"][:, None] * ankle_xz["L"] + planted["R"][:, None] * ankle_xz["R"]) / wsum[:, None]
    mid = 0.5 * (ankle_xz["L"] + ankle_xz["R"])
    lateral = np.sum((support - path.pos) * left, -1)
    offset = (0.35 * lateral)[:, None] * left + (0.5 * (1 - moving))[:, None] * (mid - path.pos)
    offset = gaussian_smooth(offset, 3.0)
    offset += posture.pelvis_side[:, None] * left - posture.pelvis_back[:, None] * fwd
    xz = path.pos + offset
    n_s = planted["L"] + planted["R"]
    a_walk = 0.03 * np.clip(speed / 1.2, 0, 1)
    bob = (1 - jog) * a_walk * (1.5 - n_s) + jog * 0.06 * (0.5 - n_s)
    crouch = 0.012 * np.minimum(speed, 1.8) * (1 - jog) + 0.035 * jog
    y = stand_h - posture.pelvis_drop + gaussian_smooth(bob, 1.5) - crouch
    fwd_off = {s: np.sum((ankle_xz[s] - path.pos) * fwd, -1) for s in SIDES}
    yaw_osc = gaussian_smooth(-0.12 * (fwd_off["L"] - fwd_off["R"]) * (1 - 0.3 * jog), 1.0)
    feet_yaw = np.arctan2(np.sin(tracks["L"].yaw) + np.sin(tracks["R"].yaw), np.cos(tracks["L"].yaw) + np.cos(tracks["R"].yaw))
    yaw = path.heading + 0.5 * so3.wrap_angle(feet_yaw - path.heading) + yaw_osc
    tilt = posture.pelvis_tilt + (0.03 + 0.02 * np.minimum(speed, 1.8)) * (1 - jog) + 0.08 * jog
    roll = gaussian_smooth(0.06 * (planted["L"] - planted["R"]) * moving, 1.5) + 1.0 * posture.pelvis_side
    rot = so3.rot_y(yaw) @ so3.rot_x(tilt) @ so3.rot_z(roll)
    pos = np.stack([xz[:, 0], y, xz[:, 1]], -1)
    return pos, rot, yaw, yaw_osc, fwd_off, tilt


def _hips(rig, root_pos, root_rot):
    return {s: root_pos + root_rot @ rig.hip_offset(s) for s in SIDES}


def _spine_and_neck(rig, posture, path, yaw, yaw_osc, tilt, speed, jog, local):
    flex = posture.trunk_flex + (0.03 + 0.02 * np.minimum(speed, 1.8)) * (1 - jog) + 0.12 * jog
    twist = posture.trunk_twist - 1.0 * yaw_osc + 0.5 * so3.wrap_angle(path.heading - yaw)
    bend = posture.trunk_bend
    for w, j in zip(SPINE_WEIGHTS, rig.spine):
        local[:, j - 1] = so3.rot_y(w * twist) @ so3.rot_x(w * flex) @ so3.rot_z(-w * bend)
    head_pitch = posture.head_pitch - 0.8 * (flex + tilt)
    head_yaw = so3.wrap_angle(posture.head_yaw + path.heading - yaw - twist)
    for w, j in zip(NECK_WEIGHTS, rig.neck):
        local[:, j - 1] = so3.rot_y(w * head_yaw) @ so3.rot_x(w * head_pitch)


def _arms(rig, posture, path, fwd_off, jog, root_pos, root_rot, local):
    """Arm locals from the posture's arm angles, the gait arm swing and reaching IK (in place)."""
    arm = rig.arms["L"]
    results = {}
    for s in SIDES:
        other = "R" if s == "L" else "L"
        a = {k: v.copy() for k, v in posture.arms[s].items()}
        gain = posture.arm_swing
        wj = jog * gain
        for k, v in (("elev", 0.2), ("plane", 0.8), ("elbow", 1.5), ("twist", 0.1)):
            a[k] = a[k] + wj * (v - a[k])
        swing = gain * (0.5 + 0.25 * jog) * (fwd_off[other] - fwd_off[s])
        swing = np.clip(gaussian_smooth(swing, 1.5), -0.7, 0.9)
        elbow = a["elbow"] + 0.35 * np.maximum(swing, 0.0) * (1 - jog)
        upper = so3.rot_x(-swing) @ upper_arm_rotation(arm, a["elev"], a["plane"], a["twist"])
        results[s] = [upper, elbow, a["elev"]]
        for j, R in arm_locals(rig, s, upper, elbow, a["elev"]).items():
            local[:, j - 1] = R
    # reaching: two-bone IK towards targets given in the heading frame at the base point
    for s in SIDES:
        w = posture.reach_w[s]
        idx = np.nonzero(w > 1e-4)[0]
        if len(idx) == 0:
            continue
        G, P = forward_kinematics(rig, local[idx], root_rot[idx], root_pos[idx])
        own = rig.arms[s]
        base3 = np.stack([path.pos[idx, 0], np.zeros(len(idx)), path.pos[idx, 1]], -1)
        target = base3 + (so3.rot_y(path.heading[idx]) @ posture.reach_at[s][idx][..., None])[..., 0]
        v = (np.swapaxes(G[:, own.shoulder], -1, -2) @ (target - P[:, own.upper])[..., None])[..., 0]
        if s == "R":
            v = v * np.array([-1.0, 1.0, 1.0])
        u_ik, e_ik = reach_rotation(arm, v)
        upper, elbow, elev = (x[idx] for x in results[s])
        clav = so3.rot_z(0.25 * np.clip(elev - 1.4, 0.0, None))
        upper = so3.slerp(upper, clav @ u_ik, w[idx])
        elbow = elbow + w[idx] * (e_ik - elbow)
        for j, R in arm_locals(rig, s, upper, elbow, elev).items():
            local[idx, j - 1] = R


def _leg_locals(rig, limits, side, tr, hip, root_rot, pelvis_yaw, local):
    """Leg IK to the planned ankles (in place). A swinging foot whose planned orientation is
    beyond the ankle's range is turned back into range and its ankle lifted if the sole would
    then touch the ground."""
    leg = rig.legs[side]
    n = len(tr.yaw)
    pole = 0.7 * forward_dir(tr.yaw) + 0.3 * forward_dir(pelvis_yaw)
    pole3 = np.stack([pole[:, 0], np.zeros(n), pole[:, 1]], -1)
    ankle = tr.ankle.copy()
    g_thigh, g_shin = solve_leg(hip, ankle, pole3, leg)
    g_foot = so3.rot_y(tr.yaw) @ so3.rot_x(tr.pitch)
    foot_local = np.swapaxes(g_shin, -1, -2) @ g_foot
    probe = np.zeros((n, len(rig.parents) - 1, 3, 3))
    probe[:] = np.eye(3)
    probe[:, leg.ankle - 1] = foot_local
    fixed, excess = clamp_to_limits(limits, probe)
    swing = ~tr.planted
    if excess > 0 and swing.any():
        changed = swing & np.any(np.abs(fixed[:, leg.ankle - 1] - foot_local) > 1e-9, axis=(-1, -2))
        idx = np.nonzero(changed)[0]
        if len(idx):
            g_foot[idx] = g_shin[idx] @ fixed[idx, leg.ankle - 1]
            low = sole_min_height(ankle[idx], g_foot[idx], tr.toe[idx], leg, rig)
            ankle[idx, 1] += np.maximum(0.004 - low, 0.0)
            g_thigh[idx], g_shin[idx] = solve_leg(hip[idx], ankle[idx], pole3[idx], leg)
    local[:, leg.hip - 1] = np.swapaxes(root_rot, -1, -2) @ g_thigh
    local[:, leg.knee - 1] = np.swapaxes(g_thigh, -1, -2) @ g_shin
    local[:, leg.ankle - 1] = np.swapaxes(g_shin, -1, -2) @ g_foot
    local[:, leg.ball - 1] = so3.rot_x(-tr.toe)


def generate_motion(body, num_frames: int, seed: int = 0, types=None, fps: float = 30.0,
                    spec: MotionSpec | None = None) -> Motion:
    """Generate one random motion sequence on ``body`` (an Anny body from :func:`moro.body.load_anny`).

    Args:
        body: the body model (36-joint Anny rig).
        num_frames: t >= 1 frames.
        seed: non-negative int; the same seed (and arguments) gives identical arrays.
        types: allowed motion types, as names or {name: weight} (``schedule.MOTION_TYPES``);
            None = all with default weights.
        fps: frames per second (> 0).
        spec: a full :class:`MotionSpec` instead of the four arguments above.
    Returns:
        :class:`Motion` (body_pose (t, 35, 3, 3), betas (136,), phenotypes (6,), root_rot
        (t, 3, 3), root_trans (t, 3), labels (t,), contacts (t, 4), ...).
    Raises:
        ValueError: num_frames <= 0, fps <= 0, negative seed, or an unknown motion type (the
        message lists the valid ones).
    """
    spec = spec or MotionSpec(num_frames=num_frames, seed=seed, fps=fps, types=types)
    spec.validate()
    weights = spec.weights()
    fps, T = float(spec.fps), spec.num_frames
    rng = np.random.default_rng(spec.seed)
    phen = sample_adult_phenotypes(1, torch.Generator().manual_seed(spec.seed))[0]
    betas = body.phenotype_to_betas(phen).float()
    rig = build_rig(body, betas)
    limits = resolve_limits(rig)

    pre = int(round(spec.preroll_s * fps))
    segments = sample_schedule(rng, weights, -pre, T, fps)
    n = segments[-1].end - segments[0].start  # >= T + pre: the last segment runs past the end
    half_width = abs(rig.hip_offset("L")[0]) * rng.uniform(0.8, 1.1)
    leg_len = rig.legs["L"].length + rig.ankle_height  # hip height, metres
    path = build_base_path(segments, fps, rng.uniform(-np.pi, np.pi), rng.uniform(-1.0, 1.0, 2), half_width,
                           rest_frames=min(int(0.2 * fps), pre // 3),
                           speed_scale=float(np.clip(np.sqrt(leg_len / 0.9), 0.85, 1.0)))
    cfg = GaitConfig(fps=fps, leg_length=leg_len, toe_out=rng.uniform(0.04, 0.18),
                     cadence_scale=rng.uniform(0.93, 1.07), placement=0.5)
    initial, steps = plan_footsteps(path, cfg)
    tracks = {}
    for s in SIDES:
        own = [st for st in steps if st.side == s]
        tracks[s] = plan_stances(initial[s], own, n, rig.legs[s], rig, fps)
        finish_swings(tracks[s], own, rig.legs[s], rig)
    posture = build_posture(segments, rig, fps, rng)

    speed, jog = path.speed, path.jog
    moving = np.clip(gaussian_smooth(speed, 0.2 * fps) / 0.4, 0.0, 1.0)
    stand_h = rig.standing_root_height(half_width, 0.985)
    root_pos, root_rot, yaw, yaw_osc, fwd_off, tilt = _pelvis(path, tracks, posture, rig, speed, jog, moving, stand_h, fps)

    # feet within reach: heels rise first, the pelvis comes down for the rest
    hips = _hips(rig, root_pos, root_rot)
    for s in SIDES:
        raise_heels(tracks[s], rig.legs[s], rig, hips[s], REACH * rig.legs[s].length, MAX_HEEL_PITCH)
        finish_swings(tracks[s], [st for st in steps if st.side == s], rig.legs[s], rig)
    deficit = np.maximum(*(reach_deficit(hips[s], tracks[s].ankle, rig.legs[s], REACH - 0.002) for s in SIDES))
    root_pos[:, 1] -= conservative_smooth(np.minimum(deficit, MAX_LOWERING), 4)
    hips = _hips(rig, root_pos, root_rot)
    for s in SIDES:  # a lower pelvis bends the knees more: the shins may now need higher heels
        raise_heels(tracks[s], rig.legs[s], rig, hips[s], REACH * rig.legs[s].length, MAX_HEEL_PITCH)
        finish_swings(tracks[s], [st for st in steps if st.side == s], rig.legs[s], rig)

    local = np.broadcast_to(np.eye(3), (n, len(rig.parents) - 1, 3, 3)).copy()
    for s in SIDES:
        _leg_locals(rig, limits, s, tracks[s], hips[s], root_rot, yaw, local)
    _spine_and_neck(rig, posture, path, yaw, yaw_osc, tilt, speed, jog, local)
    _arms(rig, posture, path, fwd_off, jog, root_pos, root_rot, local)
    local, _ = clamp_to_limits(limits, local)

    sl = slice(pre, pre + T)
    body_pose = torch.from_numpy(local[sl]).float()
    root_rot_t = torch.from_numpy(root_rot[sl]).float()
    root_trans = torch.from_numpy(root_pos[sl]).float()
    with torch.no_grad():
        out = body(body_pose, betas, root_rot_t, root_trans)
    lowest = out.vertices[..., 1].amin(-1).double().numpy()  # (t,)
    lift = conservative_smooth(np.maximum(-spec.max_penetration - lowest, 0.0), 3)
    if lift.max() > 0:
        root_trans[:, 1] += torch.from_numpy(lift).float()
    joints = body.joints22(out.vertices)[:, list(CONTACT_JOINTS)]
    joints[..., 1] += torch.from_numpy(lift).float()[:, None]
    contacts = contact_labels(joints, fps)

    labels = [""] * T
    kept = []
    for seg in segments:
        a, b = max(seg.start, 0), min(seg.end, T)
        if a < b:
            labels[a:b] = [seg.kind] * (b - a)
            kept.append((seg.kind, a, b))
    return Motion(body_pose=body_pose, betas=betas, phenotypes=phen.float(), root_rot=root_rot_t, root_trans=root_trans,
                  fps=fps, labels=labels, contacts=contacts, segments=kept, seed=spec.seed)
