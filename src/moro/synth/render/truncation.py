"""Frame-edge truncation: re-aim a static camera so that the person partly leaves the frame.

The camera stays where it is and keeps its intrinsics; only its orientation turns (yaw about
the world vertical through the camera centre, then a pitch about the camera x axis). Among a
grid of such turns, :func:`truncate_framing` keeps the one whose *truncated frames* (frames in
which some, but at most ``max_outside``, of the person's points project outside the image)
cover a fraction of the sequence closest to the requested one. Because the person moves while
the camera does not, truncated frames form stretches (entering or leaving the frame); a person
standing still is truncated in all frames or none.

Points outside the image are labelled occluded by :mod:`~moro.synth.render.visibility`.
"""

from __future__ import annotations

import math

import numpy as np

from moro.synth.render.camera import Camera

__all__ = ["truncation_profile", "truncate_framing"]


def truncation_profile(camera: Camera, person_points) -> np.ndarray:
    """(t,) fraction of each frame's points (t, n, 3) (world metres) outside the image or behind the camera."""
    pts = np.asarray(person_points, dtype=np.float64)
    if pts.ndim != 3 or pts.shape[-1] != 3:
        raise ValueError(f"person_points must be (t, n, 3) world metres, got {pts.shape}")
    uv, depth = camera.project(pts)
    return 1.0 - camera.in_image(uv, depth).mean(-1)


def _turned(camera: Camera, yaw: float, pitch: float) -> Camera:
    """The camera turned by ``yaw`` about world +y (through its centre) then ``pitch`` about its own x axis."""
    c, s = math.cos(yaw), math.sin(yaw)
    r_yaw = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    c, s = math.cos(pitch), math.sin(pitch)
    r_pitch = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    R = r_pitch @ camera.R @ r_yaw.T  # world -> camera: undo the world yaw, then tilt in camera axes
    return Camera(camera.K, R, -R @ camera.position, camera.width, camera.height)


def truncate_framing(
    camera: Camera,
    person_points,
    rng: np.random.Generator,
    fraction: tuple[float, float] = (0.2, 0.5),
    max_outside: float = 0.7,
    steps: int = 25,
) -> Camera:
    """Turn the camera so the person is partly out of frame in about ``fraction`` of the frames.

    Args:
        camera: the sampled :class:`Camera`.
        person_points: (t, n, 3) world points of the person (e.g. the 22 joints), metres.
        rng: numpy generator; draws the target fraction uniformly in ``fraction``.
        fraction: (low, high) range of the fraction of frames to truncate, within [0, 1].
        max_outside: a frame counts as truncated when 0 < (points outside) <= max_outside;
            turns that push more than this out of any frame are rejected.
        steps: grid resolution per axis (yaw over +-the horizontal field of view, pitch over
            +-half the vertical one).
    Returns:
        A new :class:`Camera` with the same centre and intrinsics (the input camera when no
        turn truncates anything within the limits).
    """
    lo, hi = fraction
    if not (0 <= lo <= hi <= 1) or not (0 < max_outside <= 1) or steps < 2:
        raise ValueError(f"need 0 <= fraction low <= high <= 1, 0 < max_outside <= 1, steps >= 2; "
                         f"got {fraction}, {max_outside}, {steps}")
    target = rng.uniform(lo, hi)
    hfov = 2 * math.atan(camera.width / (2 * camera.K[0, 0]))
    vfov = 2 * math.atan(camera.height / (2 * camera.K[1, 1]))
    best, best_err = camera, abs(0.0 - target)
    side = rng.choice([-1.0, 1.0])  # which edge to prefer on ties
    for yaw in side * np.linspace(-hfov, hfov, steps):
        for pitch in np.linspace(-vfov / 2, vfov / 2, steps // 2 + 1):
            cand = _turned(camera, float(yaw), float(pitch))
            out = truncation_profile(cand, person_points)
            if out.max() > max_outside:
                continue
            err = abs(float((out > 0).mean()) - target) + 1e-3 * (abs(yaw) + abs(pitch))  # prefer small turns
            if err < best_err:
                best, best_err = cand, err
    return best
