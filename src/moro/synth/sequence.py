"""Generate, render and write one synthetic sequence: :func:`write_sequence`.

Pipeline for a :class:`~moro.synth.splits.SequenceTask` (every random draw from its seed;
independent streams for the camera, truncation, occluders, scene and detector so that one
stage's draws never shift another's):

1. motion: :func:`moro.synth.motion.generate_motion` (seed = the task seed), posed once;
2. camera: :func:`~moro.synth.render.sample_camera` (redrawn up to 12 times until the person
   stays in frame); with ``truncation_prob`` re-aimed by
   :func:`~moro.synth.render.truncate_framing`;
3. occluders (with ``occluded_prob``): the target level ``L ~ U(level)`` counts every hidden
   joint-frame, so the props aim at ``L`` minus the truncated fraction (at least 0.1), placed by
   :func:`~moro.synth.render.sample_occluders`;
4. scene, rendering (body-only + full pass per frame), per-frame visibility labels, RGB frames
   encoded on the fly (:class:`moro.data.video.FrameWriter`);
5. labels (:mod:`moro.synth.labels`) -> ``labels.npz``; ``meta.json`` last; the folder renamed
   from ``<seq>.tmp-XXXX`` to ``<seq>`` (the format: :mod:`moro.data.synth`).

Geometry labels do not depend on the render backend; visibility labels may differ between
backends (EGL / software) at pixel boundaries: ``meta.json`` records the backend.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import moro
from moro.data.synth import FORMAT, FORMAT_VERSION, LABELS_FILE, META_FILE, TMP_MARK, file_record
from moro.data.video import FrameWriter
from moro.paths import atomic_write
from moro.synth.labels import detector_boxes, geometry_labels, visibility_labels
from moro.synth.motion import generate_motion
from moro.synth.render import (
    CameraSamplingConfig, OccluderConfig, sample_camera, sample_occluders, sample_scene, truncate_framing,
    truncation_profile,
)

from .splits import SequenceTask

log = logging.getLogger(__name__)

__all__ = ["SequenceResult", "write_sequence", "labels_digest", "sequence_stats", "torch_threads"]

CAMERA_DRAWS = 12  # cameras tried to keep a long walk in frame
MAX_UNINTENDED_TRUNCATION = 0.01  # fraction of joint-frames a camera may cut without being asked to
MIN_OCCLUDER_LEVEL = 0.1  # occluded sequences always get some props, even when truncation alone reaches the target


@dataclass
class SequenceResult:
    """What the split writer needs from one sequence (small; crosses process boundaries)."""

    name: str
    frames: int
    generated: bool  # False: found complete on disk and skipped
    occluded_joints: int  # joint-frames of the 22 joints labelled occluded
    joint_frames: int  # 22 x frames
    foot_sliding_mm: np.ndarray  # (frames-1, 4) GT foot sliding per contact entry, NaN elsewhere (moro.metrics)
    pose_s: float = 0.0  # seconds posing the body (motion generation excluded)
    render_s: float = 0.0  # seconds rendering (labels and encoding excluded)
    labels_digest: str = ""


@contextlib.contextmanager
def torch_threads(n: int):
    """Run torch with ``n`` threads inside the block (bit-identical labels whatever the machine)."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def labels_digest(labels: dict[str, np.ndarray]) -> str:
    """sha256 over the sorted keys, dtypes, shapes and bytes of the label arrays (file-independent)."""
    h = hashlib.sha256()
    for k in sorted(labels):
        a = np.ascontiguousarray(labels[k])
        h.update(f"{k}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def sequence_stats(name: str, labels: dict[str, np.ndarray], generated: bool) -> SequenceResult:
    """Occlusion counts and GT foot sliding (``moro.metrics.foot_sliding``, mm/frame) of one sequence."""
    from moro.metrics.world import foot_sliding

    feet = labels["feet_world"].astype(np.float64)
    t = feet.shape[0]
    slide = foot_sliding(feet, feet).numpy() if t >= 2 else np.zeros((0, 4))
    vis = labels["visibility"]
    return SequenceResult(name, t, generated, int((~vis).sum()), int(vis.size), slide)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_sequence(body, renderer, task: SequenceTask, out_dir: str | Path) -> SequenceResult:
    """Generate ``task`` and write it atomically to ``out_dir/<task.name>``.

    Args:
        body: the Anny :class:`moro.body.BodyModel` of ``task.topology``.
        renderer: a :class:`moro.synth.render.Renderer` owned by this process.
        task: the sequence to make.
        out_dir: the split folder (``--out``).
    Returns:
        :class:`SequenceResult` (timings of this run, occlusion counts, GT foot sliding).
    """
    final = Path(out_dir) / task.name
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        raise FileExistsError(f"{final} exists; the split writer skips or reports existing sequences before writing")
    for stale in final.parent.glob(f"{final.name}{TMP_MARK}*"):  # a crashed earlier write of this sequence
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{final.name}{TMP_MARK}", dir=final.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private
    try:
        with torch_threads(1):
            result, labels, meta = _generate(body, renderer, task, tmp)
        np.savez(tmp / LABELS_FILE, **labels)
        names = sorted([LABELS_FILE, Path(meta["frames"]).name])
        _fsync(tmp, names)  # data on disk before the meta.json that vouches for it
        files = {name: file_record(tmp / name) for name in names}
        meta["files"] = files
        meta["complete"] = True  # last key of the last file written
        with atomic_write(tmp / META_FILE) as p:
            p.write_text(json.dumps(meta, indent=1, default=_json_default))
        (tmp / META_FILE).chmod(0o644)
        tmp.rename(final)
        log.info("wrote %s: %d frames, occluded joint-frames %.3f", final, task.frames, meta["stats"]["occluded_joint_fraction"])
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def _fsync(folder: Path, names: list[str]) -> None:
    for name in names:
        p = folder / name
        for f in sorted(p.rglob("*")) if p.is_dir() else [p]:
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())


def _framed_camera(root: np.ndarray, joints: np.ndarray, rng: np.random.Generator, task: SequenceTask):
    """The first of up to :data:`CAMERA_DRAWS` sampled cameras that keeps the person in frame
    (at most :data:`MAX_UNINTENDED_TRUNCATION` of the joint-frames outside), else the best one:
    truncation is only ever deliberate (:func:`~moro.synth.render.truncate_framing`)."""
    cfg = CameraSamplingConfig(width=task.width, height=task.height)
    best, best_out = None, np.inf
    for _ in range(CAMERA_DRAWS):
        cam = sample_camera(root, rng, cfg)
        out = float(truncation_profile(cam, joints).mean())
        if out < best_out:
            best, best_out = cam, out
        if out <= MAX_UNINTENDED_TRUNCATION:
            break
    return best


def _generate(body, renderer, task: SequenceTask, folder: Path):
    ss = np.random.SeedSequence(task.seed)
    rng_cam, rng_trunc, rng_occ, rng_scene, rng_det, rng_plan = (np.random.default_rng(s) for s in ss.spawn(6))
    motion = generate_motion(body, task.frames, seed=task.seed, fps=task.fps)
    t0 = time.perf_counter()
    with torch.no_grad():
        verts = motion.pose(body).vertices  # (t, v, 3) world
        joints = body.joints22(verts)
        coco = body.coco17(verts)
        rest = body(body.identity_pose(1), motion.betas).vertices[0]
    pose_s = time.perf_counter() - t0
    rest = rest - torch.tensor([0.0, float(rest[:, 1].min()), 0.0])
    joints_np = joints.double().numpy()

    occluded = rng_plan.uniform() < task.occluded_prob
    truncated = rng_plan.uniform() < task.truncation_prob
    target = float(rng_plan.uniform(*task.level)) if occluded else 0.0
    camera = _framed_camera(motion.root_trans.double().numpy(), joints_np, rng_cam, task)
    if truncated:
        camera = truncate_framing(camera, joints_np, rng_trunc)
    trunc_frac = float(truncation_profile(camera, joints_np).mean())
    occluders, level = [], 0.0
    if occluded:
        level = float(np.clip(target - trunc_frac, MIN_OCCLUDER_LEVEL, 0.9))
        occluders = sample_occluders(camera, joints_np, rng_occ, level, OccluderConfig(fps=task.fps), body=body)
    scene = sample_scene(rng_scene, body.faces.numpy(), rest.numpy(), occluders, camera.position, joints_np)

    labels = geometry_labels(body, motion, verts, camera, save_vertices=task.save_vertices)
    per_frame: dict[str, list] = {}
    render_s = 0.0
    with FrameWriter(folder, task.width, task.height, task.fps, png=task.png) as writer:
        renderer.set_scene(scene)
        for i in range(task.frames):
            t0 = time.perf_counter()
            frame = renderer.render(camera, verts[i], i)
            render_s += time.perf_counter() - t0
            for k, v in visibility_labels(joints[i], coco[i], verts[i], camera, frame).items():
                per_frame.setdefault(k, []).append(v)
            writer.write(frame.rgb)
    labels.update({k: np.stack(v) for k, v in per_frame.items()})
    labels["box_det"], labels["box_det_tight"] = detector_boxes(labels, rng_det)
    labels["format_version"] = np.array(FORMAT_VERSION, np.int64)

    digest = labels_digest(labels)
    result = sequence_stats(task.name, labels, generated=True)
    result.pose_s, result.render_s, result.labels_digest = pose_s, render_s, digest
    vis = labels["visibility"]
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "moro_version": moro.__version__,
        "sequence": task.name, "split": task.split, "subset": task.subset, "index": task.index, "seed": task.seed,
        "settings": task.settings(), "num_frames": task.frames, "fps": task.fps,
        "image_size": [task.width, task.height], "frames": writer.path.name,
        "body": {"model": "anny", "topology": task.topology, "num_vertices": body.num_vertices,
                 "foot_vertex_ids": body.foot_vertices.tolist()},
        "motion": {"segments": [list(s) for s in motion.segments], "phenotypes": motion.phenotypes.tolist()},
        "camera": {**camera.to_dict(), "position": camera.position.tolist(), "focal": camera.focal, "truncated": truncated},
        "occluders": {"count": len(occluders), "kinds": [o.kind for o in occluders],
                      "moving": [not o.is_static for o in occluders], "target_level": target, "prop_level": level},
        "render": {"backend": renderer.backend},
        "stats": {"occluded_joint_fraction": float((~vis).mean()),
                  "truncated_joint_fraction": float((~labels["in_image"]).mean()),
                  "detector_tight_fraction": float(labels["box_det_tight"].mean())},
        "labels_digest": digest,
    }
    return result, labels, meta
