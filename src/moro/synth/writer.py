"""Write a whole split of the synthetic world (``moro synth``): workers, resume, manifest, summary.

:func:`write_split` generates every :class:`~moro.synth.splits.SequenceTask` not yet on disk,
each with :func:`moro.synth.sequence.write_sequence` (atomic per sequence), then writes the
split manifest ``split.json`` (sequence names, settings, a digest of all labels). The format is
documented in :mod:`moro.data.synth`.

- **Workers**: ``workers > 1`` runs a ``spawn`` process pool; every worker loads the body and
  creates its own renderer (EGL contexts do not survive ``fork``). Each sequence is generated with
  one torch thread, so labels are bit-identical whatever the number of workers.
- **Resume**: a sequence folder that is complete and was made with the same settings is skipped
  (its statistics are read back from its labels); leftover ``<seq>.tmp-*`` folders of crashed
  runs are removed before their sequence is regenerated; a complete folder made with *other*
  settings stops the run (never overwritten). One writer per output folder at a time.
- **Determinism**: a sequence depends only on its task (seed, size, frames, ...), never on the
  run; ``bench`` therefore gives identical labels on every run of the same moro version with the
  same render backend (``labels_digest`` in meta.json / split.json; geometry labels do not depend
  on the backend, visibility labels can differ at pixel boundaries between EGL and software).

The summary (:class:`SplitSummary`) gives the CLI's last line ``occluded_joint_fraction=<x>
render_fps=<y> gt_foot_sliding_mm=<z>``:

- ``occluded_joint_fraction``: occluded (hidden by an occluder or outside the image) joint-frames
  of the 22 joints over all frames of the *occluded part* - ``bench/occ`` for ``bench``, every
  sequence for ``train`` / ``val`` (sequences skipped on resume included);
- ``render_fps``: frames rendered in this run per second of posing + rendering, per worker process
  (body-only and full pass, read-back; labels and video encoding excluded; ``nan`` if nothing was
  rendered);
- ``gt_foot_sliding_mm``: ground-truth foot sliding of all sequences of the split,
  ``moro.metrics.foot_sliding(feet_world, feet_world)`` pooled frame-weighted (mm/frame over
  contact entries, contact = foot vertex moving < 1 cm per frame).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import multiprocessing as mp
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import moro
from moro.data.synth import FORMAT, FORMAT_VERSION, META_FILE, SPLIT_FILE, SynthFormatError, SynthSequence, read_meta
from moro.paths import atomic_write

from .sequence import SequenceResult, sequence_stats, write_sequence
from .splits import SequenceTask

log = logging.getLogger(__name__)

__all__ = ["SplitSummary", "write_split", "SettingsMismatchError"]


class SettingsMismatchError(ValueError):
    """The output folder holds data made with other settings (never overwritten)."""


@dataclass
class SplitSummary:
    """Totals of one :func:`write_split` run."""

    split: str
    out: Path
    sequences: int = 0
    generated: int = 0
    frames: int = 0
    rendered_frames: int = 0
    render_s: float = 0.0  # posing + rendering seconds of the frames rendered in this run (summed over workers)
    occluded_joints: dict[str, int] = field(default_factory=dict)  # subset -> occluded joint-frames
    joint_frames: dict[str, int] = field(default_factory=dict)  # subset -> 22 x frames
    frames_per_subset: dict[str, int] = field(default_factory=dict)
    sequences_per_subset: dict[str, int] = field(default_factory=dict)
    slide_sum: float = 0.0  # sum of GT foot-sliding entries (mm/frame)
    slide_count: int = 0
    digests: dict[str, str] = field(default_factory=dict)  # sequence -> labels digest

    def add(self, r: SequenceResult) -> None:
        sub = r.name.rsplit("/", 1)[0] if "/" in r.name else ""
        self.sequences += 1
        self.generated += int(r.generated)
        self.frames += r.frames
        if r.generated:
            self.rendered_frames += r.frames
            self.render_s += r.pose_s + r.render_s
        self.occluded_joints[sub] = self.occluded_joints.get(sub, 0) + r.occluded_joints
        self.joint_frames[sub] = self.joint_frames.get(sub, 0) + r.joint_frames
        self.frames_per_subset[sub] = self.frames_per_subset.get(sub, 0) + r.frames
        self.sequences_per_subset[sub] = self.sequences_per_subset.get(sub, 0) + 1
        ok = ~np.isnan(r.foot_sliding_mm)
        self.slide_sum += float(r.foot_sliding_mm[ok].sum())
        self.slide_count += int(ok.sum())
        self.digests[r.name] = r.labels_digest

    def occluded_fraction(self, subset: str | None = None) -> float:
        """Occluded joint-frames / joint-frames of ``subset`` (None: the occluded part, see module doc)."""
        if subset is None:
            subs = ["occ"] if "occ" in self.joint_frames else list(self.joint_frames)
        else:
            subs = [subset]
        n = sum(self.joint_frames.get(s, 0) for s in subs)
        return sum(self.occluded_joints.get(s, 0) for s in subs) / n if n else float("nan")

    @property
    def render_fps(self) -> float:
        return self.rendered_frames / self.render_s if self.render_s > 0 else float("nan")

    @property
    def gt_foot_sliding_mm(self) -> float:
        return self.slide_sum / self.slide_count if self.slide_count else float("nan")

    @property
    def labels_digest(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.digests):
            h.update(f"{name}:{self.digests[name]}\n".encode())
        return h.hexdigest()

    def line(self) -> str:
        """``occluded_joint_fraction=<x> render_fps=<y> gt_foot_sliding_mm=<z>``."""
        return (f"occluded_joint_fraction={self.occluded_fraction():.4f} render_fps={self.render_fps:.1f} "
                f"gt_foot_sliding_mm={self.gt_foot_sliding_mm:.3f}")


# ----------------------------------------------------------------------------- worker processes
_STATE: dict = {}


def _worker_init(topology: str, backend: str | None) -> None:
    import torch

    torch.set_num_threads(1)
    _STATE.update(topology=topology, backend=backend)


def _resources(topology: str, backend: str | None):
    """The process's body and renderer, created on first use (never inherited across fork)."""
    if _STATE.get("body_topology") != topology:
        from moro.body import load_anny

        _STATE["body"] = load_anny(topology)
        _STATE["body_topology"] = topology
    if "renderer" not in _STATE:
        from moro.synth.render import make_renderer

        _STATE["renderer"] = make_renderer(backend)
    return _STATE["body"], _STATE["renderer"]


def _work(job: tuple[SequenceTask, str]) -> SequenceResult:
    task, out = job
    body, renderer = _resources(task.topology, task.backend)
    return write_sequence(body, renderer, task, out)


def _close_resources() -> None:
    r = _STATE.pop("renderer", None)
    if r is not None:
        r.close()


# ----------------------------------------------------------------------------- split
def _existing(task: SequenceTask, out: Path) -> SequenceResult | None:
    """Stats of ``task``'s complete folder with the same settings; None when absent."""
    folder = out / task.name
    if not folder.exists():
        return None
    try:
        meta = read_meta(folder)
    except SynthFormatError as e:
        raise SettingsMismatchError(f"{folder} exists but is not a complete sequence ({e}); delete it to regenerate") from e
    if meta.get("settings") != task.settings():
        raise SettingsMismatchError(
            f"{folder / META_FILE} was made with other settings ({_diff(meta.get('settings') or {}, task.settings())}); "
            f"use another --out, or delete the folder to regenerate it with these settings")
    seq = SynthSequence(folder, task.name)
    r = sequence_stats(task.name, seq.labels, generated=False)
    r.labels_digest = meta.get("labels_digest", "")
    return r


def _diff(old: dict, new: dict) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} on disk vs {new.get(k)!r} now" for k in keys) or "unknown"


def _manifest(split: str, seed: int | None, tasks: list[SequenceTask], summary: SplitSummary) -> dict:
    t0 = tasks[0]
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "moro_version": moro.__version__, "split": split, "seed": seed,
        "sequences": [t.name for t in tasks], "frames": t0.frames, "image_size": [t0.width, t0.height],
        "topology": t0.topology, "save_vertices": t0.save_vertices, "png": t0.png,
        "labels_digest": summary.labels_digest,
        "occluded_joint_fraction": {s or "all": summary.occluded_fraction(s) for s in sorted(summary.joint_frames)},
        "gt_foot_sliding_mm": summary.gt_foot_sliding_mm, "complete": True,
    }


def write_split(
    out: str | os.PathLike,
    tasks: list[SequenceTask],
    *,
    workers: int = 1,
    seed: int | None = None,
    progress: Callable[[SequenceResult], None] | None = None,
) -> SplitSummary:
    """Generate every task into ``out`` (resuming), then write ``out/split.json``.

    Args:
        out: the split folder (sequences go to ``out/<task.name>``).
        tasks: from :func:`moro.synth.splits.plan_split` (one split, one set of settings).
        workers: processes (1 = in this process).
        seed: the split seed, recorded in the manifest.
        progress: called with each :class:`SequenceResult` (generated or skipped), in completion order.
    Returns:
        :class:`SplitSummary`.
    Raises:
        SettingsMismatchError: ``out`` holds sequences or a manifest made with other settings.
    """
    if not tasks:
        raise ValueError("no sequences to write")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    split = tasks[0].split
    manifest_path = out / SPLIT_FILE
    if manifest_path.is_file():
        old = json.loads(manifest_path.read_text())
        new = _manifest(split, seed, tasks, SplitSummary(split, out))
        # the sequence list may grow or shrink (sequence i does not depend on the count); the rest may not change
        keys = ("split", "seed", "frames", "image_size", "topology", "save_vertices", "png", "format_version")
        if any(old.get(k) != new.get(k) for k in keys):
            raise SettingsMismatchError(
                f"{manifest_path} describes another split ({_diff({k: old.get(k) for k in keys}, {k: new[k] for k in keys})}); "
                f"use another --out or delete the folder")
        manifest_path.unlink()  # rewritten below once every sequence is complete
    summary = SplitSummary(split, out)
    todo = []
    for task in tasks:
        done = _existing(task, out)
        if done is None:
            todo.append(task)
            continue
        summary.add(done)
        if progress is not None:
            progress(done)
    if todo:
        topology, backend = todo[0].topology, todo[0].backend
        if workers == 1 or len(todo) == 1:
            try:
                for task in todo:
                    r = _work((task, str(out)))
                    summary.add(r)
                    if progress is not None:
                        progress(r)
            finally:
                _close_resources()
        else:
            ctx = mp.get_context("spawn")
            with ctx.Pool(min(workers, len(todo)), initializer=_worker_init, initargs=(topology, backend)) as pool:
                for r in pool.imap_unordered(_work, [(t, str(out)) for t in todo]):
                    summary.add(r)
                    if progress is not None:
                        progress(r)
    with atomic_write(manifest_path) as p:
        p.write_text(json.dumps(_manifest(split, seed, tasks, summary), indent=1))
    manifest_path.chmod(0o644)
    if not math.isfinite(summary.gt_foot_sliding_mm):
        log.info("no foot contact in %s: gt_foot_sliding_mm is nan", out)
    return summary
