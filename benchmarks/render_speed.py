"""Rendering throughput of the synthetic world, posing included (issue 3, item 2: >= 30 frames/s at 512x512).

Per backend, times the full per-frame cost of data generation: posing the Anny body
(``notoes_collapse5pc``, batched 30 frames at a time as a sequence generator does), then
rendering each frame (body-only pass + full scene with ground, sky or wall and occluders,
read back as RGB, two depth maps and the instance mask).

    .venv/bin/python benchmarks/render_speed.py [--size 512 512] [--frames 150] [--software-frames 10]

Prints one line per backend: ``backend=<b> size=WxH frames=<n> fps=<x> pose_ms=<p> render_ms=<r>``.
Backends that cannot start (no EGL) are reported as unavailable. The machine's load matters:
run it on an otherwise idle machine for a representative number.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch

from moro.body import load_anny
from moro.geometry import rotvec_to_rotmat
from moro.synth.render import (
    CameraSamplingConfig, make_renderer, sample_camera, sample_occluders, sample_scene,
)

CHUNK = 30  # frames posed per body forward


def motion(body, frames: int, seed: int = 0):
    """A smooth synthetic motion: (t, j-1, 3, 3) body pose, (t, 3, 3) root rotation, (t, 3) root
    position walking 1 m/s along +x (facing +x)."""
    g = np.random.default_rng(seed)
    j = body.num_joints - 1
    amp, freq, phase = g.uniform(0, 0.25, (j, 3)), g.uniform(0.5, 1.5, (j, 1)), g.uniform(0, 2 * math.pi, (j, 3))
    t = np.arange(frames) / 30.0
    rotvec = amp * np.sin(2 * math.pi * freq * t[:, None, None] + phase)  # (t, j, 3)
    pose = rotvec_to_rotmat(torch.tensor(rotvec, dtype=torch.float32))
    root_rot = torch.tensor([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]]).expand(frames, 3, 3)  # canonical +z -> world +x
    root = torch.zeros(frames, 3)
    root[:, 0] = torch.tensor(t - t.mean(), dtype=torch.float32)
    root[:, 1] = 0.89
    return pose, root_rot, root


def bench(backend: str, frames: int, width: int, height: int, body, seed: int = 0) -> str:
    try:
        renderer = make_renderer(backend)
    except RuntimeError as e:
        return f"backend={backend} unavailable: {e}"
    pose, root_rot, root = motion(body, frames, seed)
    betas = body.zero_betas()
    with torch.no_grad():
        rest = body(body.identity_pose(1), betas).vertices[0]
        joints = body.joints22(body(pose, betas, root_rot, root).vertices)
    rest = rest - torch.tensor([0.0, float(rest[:, 1].min()), 0.0])
    rng = np.random.default_rng(seed)
    camera = sample_camera(root.numpy(), rng, CameraSamplingConfig(width=width, height=height))
    occluders = sample_occluders(camera, joints.numpy(), rng, level=0.3, body=body)
    scene = sample_scene(rng, body.faces.numpy(), rest.numpy(), occluders, camera.position, joints.numpy())
    renderer.set_scene(scene)
    with torch.no_grad():  # warm-up (shader compilation, buffer allocation)
        renderer.render(camera, body(pose[:1], betas, root_rot[:1], root[:1]).vertices[0], 0)
    pose_s = render_s = 0.0
    for start in range(0, frames, CHUNK):
        t0 = time.perf_counter()
        with torch.no_grad():
            verts = body(pose[start:start + CHUNK], betas, root_rot[start:start + CHUNK], root[start:start + CHUNK]).vertices
        t1 = time.perf_counter()
        for i in range(len(verts)):
            renderer.render(camera, verts[i], start + i)
        pose_s += t1 - t0
        render_s += time.perf_counter() - t1
    renderer.close()
    total = pose_s + render_s
    return (f"backend={renderer.backend} size={width}x{height} frames={frames} fps={frames / total:.1f} "
            f"pose_ms={1000 * pose_s / frames:.2f} render_ms={1000 * render_s / frames:.2f} "
            f"occluders={len(occluders)} load1={os.getloadavg()[0]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, nargs=2, default=(512, 512), metavar=("W", "H"))
    ap.add_argument("--frames", type=int, default=150, help="frames for the EGL backend")
    ap.add_argument("--software-frames", type=int, default=10, help="frames for the software backend")
    ap.add_argument("--backend", choices=("both", "egl", "software"), default="both")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    body = load_anny("notoes_collapse5pc")
    w, h = args.size
    if args.backend in ("both", "egl"):
        print(bench("egl", args.frames, w, h, body), flush=True)
    if args.backend in ("both", "software"):
        print(bench("software", args.software_frames, w, h, body), flush=True)


if __name__ == "__main__":
    main()
