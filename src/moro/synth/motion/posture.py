"""Postural layers of the action segments: pelvis lowering, trunk lean, head, arm poses.

Each action segment (idle, squat, sit, reach, pick_up, wave, gesture) adds smooth curves to a
set of per-frame channels, multiplied by an envelope that is 0 at the segment's edges, so
consecutive segments blend through the relaxed stance and any order of segments is continuous.
Locomotion segments add nothing here (their gait layers come from the feet, see generator.py).

Channels (all (n,) float64 unless noted; radians and metres):
    pelvis_drop   lowering of the pelvis below its standing height (>= 0)
    pelvis_back   backward shift of the pelvis along the heading (squats, sitting)
    pelvis_side   shift to the body's left (weight shifts)
    pelvis_tilt   anterior pelvic tilt (+ = top forward), part of the trunk lean
    trunk_flex    forward flexion of the spine (sum over the five spine joints)
    trunk_bend    bending to the left; trunk_twist: chest turned to the left
    head_pitch    + = looking down; head_yaw: + = looking left
    arm_swing     locomotion arm-swing gain in [0, 1] (0 while an action uses the arms)
    arms[side]    dict of arm angles elev, plane, twist, elbow (see arms.py)
    reach_w[side] weight in [0, 1] of the reaching IK for that arm
    reach_at[side] (n, 3) wrist target in the heading frame at the base point: (left, up, forward)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .arms import NEUTRAL, twist_for_raised_forearm
from .rig import Rig
from .schedule import Segment
from .smoothing import envelope, gaussian_smooth, smoothstep

ARM_KEYS = ("elev", "plane", "twist", "elbow")


@dataclass
class Posture:
    n: int
    pelvis_drop: np.ndarray = None
    pelvis_back: np.ndarray = None
    pelvis_side: np.ndarray = None
    pelvis_tilt: np.ndarray = None
    trunk_flex: np.ndarray = None
    trunk_bend: np.ndarray = None
    trunk_twist: np.ndarray = None
    head_pitch: np.ndarray = None
    head_yaw: np.ndarray = None
    arm_swing: np.ndarray = None
    arms: dict = field(default_factory=dict)
    reach_w: dict = field(default_factory=dict)
    reach_at: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in ("pelvis_drop", "pelvis_back", "pelvis_side", "pelvis_tilt", "trunk_flex", "trunk_bend",
                     "trunk_twist", "head_pitch", "head_yaw"):
            setattr(self, name, np.zeros(self.n))
        self.arm_swing = np.ones(self.n)
        for s in ("L", "R"):
            self.arms[s] = {k: np.full(self.n, NEUTRAL[k]) for k in ARM_KEYS}
            self.reach_w[s] = np.zeros(self.n)
            self.reach_at[s] = np.zeros((self.n, 3))

    def blend_arm(self, side: str, sl: slice, weight: np.ndarray, **angles) -> None:
        """Move arm ``side`` towards ``angles`` (each scalar or (m,)) with weight (m,) over frames sl."""
        for k, v in angles.items():
            cur = self.arms[side][k][sl]
            self.arms[side][k][sl] = cur + weight * (v - cur)
        self.arm_swing[sl] = np.minimum(self.arm_swing[sl], 1.0 - weight)


def _sides(side: str) -> tuple[str, ...]:
    return ("L", "R") if side == "both" else (side,)


def crouch_geometry(rig: Rig, compression: float, shin_tilt: float) -> tuple[float, float]:
    """Pelvis (drop below standing, backward shift) for a crouch with heels down.

    ``compression``: hip height above the ankle as a fraction of the straight leg;
    ``shin_tilt``: forward lean of the shin (rad, = ankle dorsiflexion). The hip ends up behind
    the ankle by what the thigh needs to close the chain.
    """
    leg = rig.legs["L"]
    l1, l2 = leg.thigh_len, leg.shin_len
    h = compression * leg.length
    up = h - l2 * np.cos(shin_tilt)
    fwd = l2 * np.sin(shin_tilt) - np.sqrt(max(l1 * l1 - up * up, 0.0))
    standing = 0.99 * leg.length
    return max(standing - h, 0.0), max(-fwd, 0.0)


def _phases(m: int, fps: float, hold: float, reps: int = 1) -> tuple[np.ndarray, float]:
    """Envelope (m,) of ``reps`` down-hold-up cycles filling a segment, and the ramp time (s)."""
    t = np.arange(m) / fps
    dur = m / fps - 0.6  # 0.3 s of neutral at each end
    cycle = dur / reps
    ramp = max(0.5 * cycle * (1.0 - hold), 0.2)
    env = np.zeros(m)
    for r in range(reps):
        s = 0.3 + r * cycle
        env = np.maximum(env, envelope(t, s, s + cycle, ramp, ramp))
    return env, ramp


def build_posture(segments: list[Segment], rig: Rig, fps: float, rng: np.random.Generator) -> Posture:
    """Sum the postural layers of all action segments (frame 0 = ``segments[0].start``)."""
    origin = segments[0].start
    n = segments[-1].end - origin
    P = Posture(n)
    arm_l = rig.arms["L"]
    for seg in segments:
        m, p = seg.frames, seg.params
        sl = slice(seg.start - origin, seg.end - origin)
        t = np.arange(m) / fps
        if seg.kind == "idle":
            env = envelope(t, 0.0, m / fps, min(0.6, m / fps / 3), min(0.6, m / fps / 3))
            shift = p["shift_amp"] * np.sin(2 * np.pi * t / p["shift_period"] + p["shift_phase"])
            P.pelvis_side[sl] += 0.045 * shift * env
            P.trunk_bend[sl] += -0.03 * shift * env
            look = gaussian_smooth(np.interp(t, [k[0] for k in p["look_knots"]], [k[1] for k in p["look_knots"]]), 0.3 * fps)
            P.head_yaw[sl] += look * env
            for s in ("L", "R"):
                P.blend_arm(s, sl, 0.7 * env, elev=NEUTRAL["elev"] + p["arm_elev"], elbow=NEUTRAL["elbow"] + p["arm_elbow"])
        elif seg.kind in ("squat", "sit", "pick_up"):
            reps = p.get("reps", 1)
            env, ramp = _phases(m, fps, p.get("hold", 0.2), reps)
            if seg.kind == "squat":
                drop, back = crouch_geometry(rig, p["compression"], p["shin_tilt"])
                flex = 0.15 + 1.6 * back
                for s in ("L", "R"):
                    P.blend_arm(s, sl, env, elev=p["arm_elev"], plane=1.45, elbow=p["arm_elbow"], twist=0.0)
            elif seg.kind == "sit":
                drop, back = crouch_geometry(rig, p["seat"], 0.08)
                # lean forward while going down or up (0 < env < 1), upright with a small lean when seated
                moving = np.clip(4.0 * env * (1.0 - env), 0.0, 1.0)
                P.trunk_flex[sl] += 0.75 * moving + p["lean"] * env
                P.pelvis_tilt[sl] += 0.25 * moving
                for s in ("L", "R"):
                    P.blend_arm(s, sl, env, elev=p["arm_elev"], plane=1.3, elbow=p["arm_elbow"], twist=-0.2)
            else:  # pick_up
                drop, back = crouch_geometry(rig, p["compression"], 0.3)
                flex = 1.0 + 0.4 * (1 - p["compression"])
                reach_env = smoothstep(env * 1.4 - 0.4)  # reach only in the low part
                first_half = t < (0.3 + (m / fps - 0.6) / 2)
                for s in _sides(p["side"]):
                    lateral = (p["lateral"] if s == "L" else -p["lateral"]) if p["side"] != "both" else \
                        (0.18 if s == "L" else -0.18)
                    P.reach_w[s][sl] = np.maximum(P.reach_w[s][sl], reach_env)
                    P.reach_at[s][sl] = np.array([lateral, p["height"], p["forward"] + 0.1])
                    # after grasping, the hand comes back to the chest
                    P.blend_arm(s, sl, np.where(first_half, 0.0, env), elev=0.45, plane=1.45, elbow=1.7, twist=0.3)
                    P.arm_swing[sl] = np.minimum(P.arm_swing[sl], 1.0 - env)
            P.pelvis_drop[sl] += drop * env
            P.pelvis_back[sl] += back * env
            if seg.kind != "sit":
                P.trunk_flex[sl] += 0.65 * flex * env
                P.pelvis_tilt[sl] += 0.35 * flex * env
            P.head_pitch[sl] += -0.3 * (P.trunk_flex[sl] + P.pelvis_tilt[sl]) * (seg.kind == "pick_up")
        elif seg.kind == "reach":
            env, _ = _phases(m, fps, p["hold"])
            for s in _sides(p["side"]):
                P.blend_arm(s, sl, env, elev=p["elev"], plane=p["plane"], elbow=p["elbow"], twist=0.0)
            sgn = {"L": 1.0, "R": -1.0, "both": 0.0}[p["side"]]
            P.trunk_flex[sl] += p["lean"] * np.sin(p["plane"]) * env
            P.trunk_twist[sl] += 0.25 * sgn * np.cos(p["plane"]) * env
            P.trunk_bend[sl] += -0.1 * sgn * np.cos(p["plane"]) * env
            P.head_pitch[sl] += -0.25 * max(p["elev"] - 1.5, 0.0) * env
        elif seg.kind == "wave":
            env, _ = _phases(m, fps, 0.6)
            twist0 = twist_for_raised_forearm(arm_l, p["elev"], 0.35, p["elbow"])
            wag = p["amp"] * np.sin(2 * np.pi * p["freq"] * t) * smoothstep(env * 2 - 1)
            for s in _sides(p["side"]):
                P.blend_arm(s, sl, env, elev=p["elev"], plane=0.35, elbow=p["elbow"], twist=twist0 + wag)
            P.head_yaw[sl] += 0.2 * {"L": 1.0, "R": -1.0, "both": 0.0}[p["side"]] * env
        elif seg.kind == "gesture":
            env = envelope(t, 0.2, m / fps - 0.2, 0.5, 0.5)
            for s in ("L", "R"):
                knots = np.array([k[0] for k in p[f"knots_{s}"]])
                poses = np.array(p[f"poses_{s}"])[: len(knots)]
                if len(poses) < len(knots):
                    poses = np.resize(poses, (len(knots), 4))
                idx = np.clip(np.searchsorted(knots, t, side="right") - 1, 0, len(knots) - 1)
                nxt = np.minimum(idx + 1, len(knots) - 1)
                span = np.maximum(np.where(nxt > idx, knots[nxt] - knots[idx], 1.0), 1e-6)
                w = smoothstep((t - knots[idx]) / span)[:, None]
                curve = poses[idx] * (1 - w) + poses[nxt] * w
                active = p["active"] in (s, "both")
                weight = env * (1.0 if active else 0.35)
                P.blend_arm(s, sl, weight, elev=curve[:, 0], plane=curve[:, 1], twist=curve[:, 2], elbow=curve[:, 3])
            P.head_pitch[sl] += p["nod"] * np.sin(2 * np.pi * 1.3 * t) * env
            P.trunk_twist[sl] += 0.1 * np.sin(2 * np.pi * t / 2.7) * env
    return P
