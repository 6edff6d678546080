"""Many videos, many devices: ``moro infer`` over folders, several paths or a list file.

**Inputs** (:func:`collect_videos`), each argument one of:

* a video file (``.mp4``, ``.avi``, ``.mov``, ... any container PyAV reads);
* a folder of videos: its video files (:data:`VIDEO_SUFFIXES`, not recursive, sorted by name);
  a folder without videos but with sub-folders of images: each sub-folder is one video;
* an image folder (images and no video file): one video;
* a list file (``.txt`` / ``.lst``): one path per line (``#`` starts a comment; relative paths
  are relative to the list file's folder), each expanded as above.

**Outputs**: one folder per video, ``OUT/<video stem>/`` (the files of ``moro infer``, written
atomically by :class:`~moro.inference.exports.OutputDir`), plus ``OUT/infer-batch.json`` (one
record per video: done / skipped / failed, the error, seconds). Two videos with the same stem
are refused before any work (rename one, or run them separately).

**Boxes**: a boxes file beside the video named ``<stem>.boxes.json`` or ``<stem>.boxes.csv``
(:mod:`moro.inference.boxes`) is used for that video; the others go to the detector.

**Skipping done videos**: a video whose ``OUT/<stem>/summary.json`` is complete (written last,
``"complete": true``) and records the same input content (sha256) is skipped; ``redo=True``
recomputes it. A crashed or interrupted video leaves only a hidden temporary folder, never a
complete-looking one, so re-running the same command resumes where it stopped.

**Devices and processes** (:func:`plan_workers`): one worker process per device and ``workers``
processes per device (``--device cuda``: every visible GPU, or the first ``--devices N``; CPU:
``--workers N`` processes sharing the cores, each with ``cores // N`` torch threads). Workers
are ``torch.multiprocessing`` processes started with ``spawn`` (CUDA and EGL contexts do not
survive ``fork``); each loads the model once and takes the next video from a shared queue, so
long and short videos balance out. A single worker runs in the calling process. Videos are
independent - no gradients, no collectives - so no process group is formed (Lightning Fabric,
the training engine, would add one plus a ~20 s import per process on a small CPU machine).

**Many machines**: ``shard=(i, n)`` keeps the videos whose position in the sorted input list is
``i`` modulo ``n``; run the same command on n machines (e.g. ``--shard $SLURM_PROCID/$SLURM_NTASKS``)
with a shared ``--out``: each machine writes its own ``infer-batch-<i>of<n>.json``, and the skip
rule makes restarts cheap.

**Failures**: an error on one video (bad input, out of memory, any exception) is recorded with its
message and the worker goes on with the next video; a worker process that dies marks its current
video failed. The run returns every record; the CLI exits with status 1 if any video failed.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from moro.inference.errors import InferenceError, InputVideoError
from moro.inference.exports import read_summary
from moro.inference.video import IMAGE_SUFFIXES
from moro.paths import atomic_write

log = logging.getLogger(__name__)

__all__ = ["VIDEO_SUFFIXES", "LIST_SUFFIXES", "VideoRecord", "BatchResult", "collect_videos", "output_names",
           "sidecar_boxes", "plan_workers", "shard_videos", "is_done", "run_batch"]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")
LIST_SUFFIXES = (".txt", ".lst")
BATCH_FILE = "infer-batch.json"


@dataclass
class VideoRecord:
    """What happened to one video."""

    video: str
    out: str
    status: str  # "done" | "skipped" | "failed"
    error: str = ""  # "<ErrorClass>: message" when failed
    seconds: float = 0.0  # wall time of this video in its worker
    frames: int = 0
    device: str = ""


@dataclass
class BatchResult:
    out: Path
    records: list[VideoRecord]

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.records)

    @property
    def failed(self) -> list[VideoRecord]:
        return [r for r in self.records if r.status == "failed"]


# ----------------------------------------------------------------------------- inputs
def _has(folder: Path, suffixes: Sequence[str]) -> bool:
    return any(p.is_file() and p.suffix.lower() in suffixes for p in folder.iterdir())


def _expand(path: Path, seen_lists: set[Path]) -> list[Path]:
    if path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        key = path.resolve()
        if key in seen_lists:
            raise InputVideoError(f"{path}: the list file includes itself (directly or through another list)")
        seen_lists.add(key)
        out = []
        for n, line in enumerate(path.read_text().splitlines(), start=1):
            entry = line.split("#", 1)[0].strip()
            if not entry:
                continue
            p = Path(entry).expanduser()
            p = p if p.is_absolute() else path.parent / p
            if not p.exists():
                raise InputVideoError(f"{path}: line {n}: {p} does not exist; fix the path or remove the line")
            out += _expand(p, seen_lists)
        return out
    if path.is_dir():
        if _has(path, VIDEO_SUFFIXES):
            return sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if _has(path, IMAGE_SUFFIXES):
            return [path]  # an image folder: one video
        subs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".") and _has(p, IMAGE_SUFFIXES))
        if subs:
            return subs
        raise InputVideoError(f"{path}: holds no video file ({', '.join(VIDEO_SUFFIXES[:4])}, ...), no image and no "
                              "folder of images; give videos, an image folder or a list file")
    if not path.exists():
        raise InputVideoError(f"{path}: no such video file, folder or list file")
    return [path]  # a video file (checked when it is opened)


def collect_videos(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """The videos named by ``inputs`` (module docstring), in order, each once.

    Raises:
        InputVideoError: a missing path, a folder with nothing to read, a list line naming a missing path.
    """
    videos: list[Path] = []
    seen: set[Path] = set()
    for item in inputs:
        for v in _expand(Path(item).expanduser(), set()):
            key = v.resolve()
            if key not in seen:
                seen.add(key)
                videos.append(v)
    if not videos:
        raise InputVideoError("no video to process")
    return videos


def _stem(video: Path) -> str:
    return video.name if video.is_dir() else video.stem


def output_names(videos: Sequence[Path]) -> list[str]:
    """Output folder names (video stems); InputVideoError if two videos share one."""
    names: dict[str, Path] = {}
    for v in videos:
        s = _stem(v)
        if s in names:
            raise InputVideoError(f"two videos would write to the same output folder {s!r}: {names[s]} and {v}; "
                                  "rename one, or run them with separate --out folders")
        names[s] = v
    return list(names)


def sidecar_boxes(video: Path) -> Path | None:
    """``<stem>.boxes.json`` / ``<stem>.boxes.csv`` beside the video (for an image folder: beside the folder)."""
    for suffix in (".boxes.json", ".boxes.csv"):
        p = video.parent / f"{_stem(video)}{suffix}"
        if p.is_file():
            return p
    return None


def shard_videos(videos: Sequence[Path], shard: tuple[int, int] | None) -> list[Path]:
    """The videos of shard ``(i, n)``: positions ``k`` with ``k % n == i`` (None: all)."""
    if shard is None:
        return list(videos)
    i, n = shard
    if not (isinstance(i, int) and isinstance(n, int) and n >= 1 and 0 <= i < n):
        raise ValueError(f"shard must be I/N with 0 <= I < N, got {i}/{n}")
    return [v for k, v in enumerate(videos) if k % n == i]


def plan_workers(device: str = "cpu", devices: int | None = None, workers: int = 1,
                 cuda_count: int | None = None) -> list[str]:
    """One torch device string per worker process.

    Args:
        device: ``"cpu"``, ``"cuda"`` (all visible GPUs, or the first ``devices``), ``"cuda:K"`` (that
            GPU only), or another torch device (``"mps"``: one device).
        devices: number of GPUs to use with ``device="cuda"`` (None: all visible).
        workers: processes per device (>= 1).
        cuda_count: visible GPUs (None: ``torch.cuda.device_count()``).
    Returns:
        e.g. ``["cuda:0", "cuda:1"]`` or ``["cpu", "cpu"]``.
    Raises:
        ValueError: workers < 1, devices < 1, more devices asked than visible, or --devices without cuda.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"--workers must be an integer >= 1, got {workers!r}")
    if devices is not None and (isinstance(devices, bool) or not isinstance(devices, int) or devices < 1):
        raise ValueError(f"--devices must be an integer >= 1, got {devices!r}")
    if device == "cuda":
        if cuda_count is None:
            import torch

            cuda_count = torch.cuda.device_count()
        if cuda_count < 1:
            raise ValueError("--device cuda but no CUDA GPU is visible; use --device cpu (with --workers N)")
        n = cuda_count if devices is None else devices
        if n > cuda_count:
            raise ValueError(f"--devices {n} but only {cuda_count} CUDA GPU(s) are visible")
        return [f"cuda:{i}" for i in range(n) for _ in range(workers)]
    if devices not in (None, 1):
        raise ValueError(f"--devices {devices} needs --device cuda; on {device} use --workers N for several processes")
    return [device] * workers


# ----------------------------------------------------------------------------- one video
def is_done(video: Path, out: Path) -> bool:
    """Whether ``out`` is a complete moro output of this very video (same content digest)."""
    summary = read_summary(out)
    if summary is None:
        return False
    from moro.inference.video import open_video, video_digest

    try:
        return summary.get("input", {}).get("sha256") == video_digest(open_video(video))
    except InferenceError:
        return False


class _Runner:
    """Loads the model once (per process) and runs videos one by one, never raising."""

    def __init__(self, config, device: str, redo: bool, progress=None) -> None:
        self.config = replace(config, device=device)
        self.device, self.redo, self.progress = device, redo, progress
        self.model = self.body = None
        self.load_error: str | None = None

    def _load(self) -> None:
        if self.model is not None or self.load_error is not None:
            return
        from moro.inference.loading import body_record, load_model, resolve_body

        try:
            cfg = self.config
            self.model = load_model(cfg.checkpoint, self.device)
            self.body = resolve_body(self.model, body_record(cfg.checkpoint), cfg.body_model, cfg.topology,
                                     cfg.smplx_path)
        except Exception as e:  # noqa: BLE001 - every video of this worker fails with this message
            self.load_error = f"{type(e).__name__}: {e}"

    def run(self, video: Path, out: Path) -> VideoRecord:
        from moro.inference.pipeline import run_inference

        t0 = time.perf_counter()
        rec = VideoRecord(str(video), str(out), "failed", device=self.device)
        try:
            if not self.redo and is_done(video, out):
                rec.status = "skipped"
                rec.frames = int(read_summary(out).get("frames", 0))
                return rec
            self._load()
            if self.load_error is not None:
                rec.error = f"the model could not be loaded: {self.load_error}"
                return rec
            boxes = sidecar_boxes(video)
            cfg = self.config if boxes is None else replace(self.config, boxes=str(boxes))
            result = run_inference(video, out, cfg, model=self.model, body=self.body, progress=self.progress)
            rec.status, rec.frames = "done", int(result.summary["frames"])
        except Exception as e:  # noqa: BLE001 - one video's failure is reported, never fatal for the rest
            rec.error = f"{type(e).__name__}: {e}"
            if not isinstance(e, (InferenceError, FileNotFoundError)):
                log.warning("%s failed:\n%s", video, traceback.format_exc())
            if self.device.startswith("cuda"):  # e.g. out of memory: give the next video a clean slate
                import torch

                torch.cuda.empty_cache()
        finally:
            rec.seconds = round(time.perf_counter() - t0, 3)
        return rec


def _worker(rank: int, device: str, config, redo: bool, threads: int, jobs, results) -> None:
    """Worker process: take ``(index, video, out)`` jobs until ``None``; report ``("start"|"done", rank, index, record)``."""
    import torch

    if device == "cpu":
        torch.set_num_threads(threads)
    runner = _Runner(config, device, redo)
    while True:
        job = jobs.get()
        if job is None:
            return
        index, video, out = job
        results.put(("start", rank, index, None))
        results.put(("done", rank, index, asdict(runner.run(Path(video), Path(out)))))


# ----------------------------------------------------------------------------- the batch
def run_batch(
    videos: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    config,
    *,
    worker_devices: Sequence[str] = ("cpu",),
    redo: bool = False,
    shard: tuple[int, int] | None = None,
    on_record: Callable[[VideoRecord], None] | None = None,
    progress=None,
) -> BatchResult:
    """Run :func:`~moro.inference.run_inference` on every video (module docstring).

    Args:
        videos: video paths (already expanded by :func:`collect_videos`).
        out: output root; video ``v`` goes to ``out/<stem of v>/``.
        config: :class:`~moro.inference.InferenceConfig` (``boxes`` must be None: boxes come from sidecar files).
        worker_devices: one device string per worker process (:func:`plan_workers`); one = in this process.
        redo: recompute videos that are already done.
        shard: ``(i, n)``: only this machine's share of ``videos``.
        on_record: called in this process with each finished :class:`VideoRecord`, in completion order.
        progress: per-stage progress factory, used only with a single in-process worker.
    Returns:
        :class:`BatchResult` (records in input order), also written to ``out/infer-batch[-<i>of<n>].json``.
    """
    from moro.inference.loading import resolve_checkpoint

    if config.boxes is not None:
        raise ValueError("--boxes names one video's boxes; with several videos put <stem>.boxes.json (or .csv) "
                         "beside each video instead")
    if not worker_devices:
        raise ValueError("no worker device")
    videos = [Path(v) for v in videos]
    names = output_names(videos)  # stems are unique over the whole list, whatever the shard
    mine = set(shard_videos(videos, shard))
    jobs = [(k, v, Path(out) / n) for k, (v, n) in enumerate(zip(videos, names)) if v in mine]
    config = replace(config, checkpoint=str(resolve_checkpoint(config.checkpoint)))  # a missing model fails once, here
    Path(out).mkdir(parents=True, exist_ok=True)
    records: dict[int, VideoRecord] = {}

    def record(k: int, r: VideoRecord) -> None:
        records[k] = r
        if on_record is not None:
            on_record(r)

    if len(worker_devices) == 1 or len(jobs) <= 1:
        runner = _Runner(config, worker_devices[0], redo, progress)
        for k, v, o in jobs:
            record(k, runner.run(v, o))
    else:
        _run_processes(jobs, config, list(worker_devices)[: len(jobs)], redo, record, records)
    result = BatchResult(Path(out), [records[k] for k, _, _ in jobs])
    name = BATCH_FILE if shard is None else BATCH_FILE.replace(".json", f"-{shard[0]}of{shard[1]}.json")
    with atomic_write(Path(out) / name) as tmp:
        tmp.write_text(json.dumps({"format": "moro-infer-batch", "version": 1, "shard": shard,
                                   "workers": list(worker_devices), "records": [asdict(r) for r in result.records]},
                                  indent=1) + "\n")
    return result


def _run_processes(jobs, config, devices: list[str], redo: bool, record, records: dict) -> None:
    """Spawn one process per entry of ``devices``; feed them ``jobs`` through a queue; ``record`` every result."""
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    job_q, result_q = ctx.Queue(), ctx.Queue()
    for k, v, o in jobs:
        job_q.put((k, str(v), str(o)))
    for _ in devices:
        job_q.put(None)  # one stop sign per worker
    threads = max(1, (os.cpu_count() or 1) // max(1, sum(d == "cpu" for d in devices)))
    procs = [ctx.Process(target=_worker, args=(rank, d, config, redo, threads, job_q, result_q), daemon=True)
             for rank, d in enumerate(devices)]
    for p in procs:
        p.start()
    paths = {k: (v, o) for k, v, o in jobs}
    current: dict[int, int] = {}  # worker rank -> index of the video it is on
    try:
        while len(records) < len(jobs):
            try:
                kind, rank, k, rec = result_q.get(timeout=1.0)
            except queue.Empty:
                for rank, p in enumerate(procs):
                    if not p.is_alive() and rank in current:  # died mid-video
                        k = current.pop(rank)
                        record(k, VideoRecord(str(paths[k][0]), str(paths[k][1]), "failed",
                                              f"worker process {rank} ({devices[rank]}) died with exit code {p.exitcode} "
                                              "while on this video", device=devices[rank]))
                if not any(p.is_alive() for p in procs) and result_q.empty():
                    for k in sorted(set(paths) - set(records)):  # left in the queue, no worker to take it
                        record(k, VideoRecord(str(paths[k][0]), str(paths[k][1]), "failed", "no worker process left"))
                continue
            if kind == "start":
                current[rank] = k
            elif k not in records:
                current.pop(rank, None)
                record(k, VideoRecord(**rec))
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
