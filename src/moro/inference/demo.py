"""``moro demo``: a synthetic occluded video with known ground truth, moro on it, and the per-frame baseline.

Steps of :func:`run_demo` (``OUT`` = the demo folder, ``--out``)::

    1. video     one bench/occ-style sequence of the synthetic world (occluders + truncation),
                 150 frames at 640 x 360, fixed seed, written by the synth writer with its labels:
                 OUT/synth/occ/s00000/{video.mp4, labels.npz, meta.json} (kept: a re-run reuses it)
    2. boxes     the sequence's detector-like boxes (labels ``box_det``: around the visible
                 keypoints, jittered, sometimes too tight) as a user boxes file OUT/boxes.json
                 (JSON ``{"boxes": [{"frame": i, "cxcys": [cx, cy, s]}, ...]}``, the format of
                 :mod:`moro.inference.boxes`), so the demo does not depend on the HOG detector
    3. moro      :func:`~moro.inference.run_inference` with the known intrinsics -> OUT/moro/
                 (motion.npz with vertices, summary.json, overlay.mp4, world.mp4, motion.glb, motion.bvh)
    4. baseline  the same model, each frame decoded alone (:func:`per_frame_config`:
                 ``WindowConfig(size=1, overlap=0, drop=0)``, no temporal context in the
                 transformer), reusing the cached backbone features -> OUT/per_frame/
                 (motion.npz, summary.json; no videos or GLB/BVH)
    5. scores    both against the ground truth with the code of ``moro eval --protocol synth``
                 (:func:`score_against_synth`) -> OUT/demo.json (written last, ``"complete": true``)

The baseline shares everything after decoding with moro (token smoother, one-shape parametric
fit), so the difference measured is the temporal context of the masked transformer; the smoother
(a gated residual over a few neighbouring frames) gives the baseline a little temporal context,
which can only narrow the gap.

Headline metric: MPJPE-occ (``shared/metrics.md``): pelvis-aligned per-joint error of the 22
scoring joints, ``sum(err * (1 - m)) / sum(1 - m)`` with ``m`` the synthetic labels'
``visibility`` (False = hidden by an occluder or outside the image), mm.

Library functions reused by ``moro bench``: :func:`demo_sequence`, :func:`write_synth_boxes`,
:func:`per_frame_config`, :func:`prediction_from_motion`, :func:`score_against_synth`.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from moro.inference.decoding import DecodingConfig
from moro.inference.errors import InferenceError
from moro.inference.pipeline import InferenceConfig, InferenceResult, ProgressFactory, run_inference
from moro.inference.postprocess import FitConfig
from moro.inference.windows import WindowConfig
from moro.paths import atomic_write

log = logging.getLogger(__name__)

__all__ = [
    "DEMO_SEED", "DemoConfig", "DemoResult", "DemoError", "demo_sequence", "write_synth_boxes", "per_frame_config",
    "prediction_from_motion", "score_against_synth", "run_demo", "headline",
]

DEMO_SEED = 10  # bench-style split seed: a walk behind a pillar, a person in front, the camera truncating
DEMO_MARK = ".moro-demo"  # ownership mark: a folder without it (and not empty) is never written into
DEMO_FILE = "demo.json"


class DemoError(InferenceError):
    """The demo cannot run as asked (no checkpoint, a foreign --out folder)."""


@dataclass
class DemoConfig:
    """Settings of ``moro demo`` (defaults: under 2 minutes on 2 CPU cores)."""

    out: str = "moro-demo"  # the demo folder
    checkpoint: str | None = None  # MoRo checkpoint (None: $MORO_CHECKPOINT or the shipped tiny model)
    frames: int = 150  # frames at 30 fps (5 s)
    width: int = 640  # image size, pixels (even: H.264)
    height: int = 360
    seed: int = DEMO_SEED  # split seed of the synthetic sequence
    iterations: int = 5  # masked-decoding iterations (paper 5)
    shape_frames: int = 24  # frames that fix the body shape (the shape fit costs ~ frames x 136 Anny betas^2)
    device: str = "cpu"  # torch device
    render_backend: str = "auto"  # synthetic world and overlay renderer: "auto" | "egl" | "software"


@dataclass
class DemoResult:
    out: Path
    sequence: Path  # the synthetic sequence folder (video.mp4, labels.npz, meta.json)
    video_cached: bool  # the sequence was already there (not regenerated)
    checkpoint: Path
    shipped_model: bool  # the checkpoint is the tiny model shipped with moro
    moro: InferenceResult
    baseline: InferenceResult
    scores: dict[str, dict[str, float]]  # {"moro": {...}, "per_frame": {...}}, report units
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per step
    frames: int = 0
    occluded_joint_fraction: float = float("nan")  # of the 22 joints over all frames, from the labels

    @property
    def fps(self) -> float:
        """End-to-end frames per second of the moro run (model load + every inference stage + exports)."""
        return self.frames / self.seconds["moro"]

    def files(self) -> dict[str, Path]:
        """Where to look: name -> path."""
        m, b = self.moro.out_dir, self.baseline.out_dir
        return {"input video": self.sequence / "video.mp4", "overlay (moro)": m / "overlay.mp4",
                "world view (moro)": m / "world.mp4", "motion (moro)": m / "motion.npz",
                "GLB / BVH (moro)": m / "motion.glb", "motion (per-frame)": b / "motion.npz",
                "ground truth": self.sequence / "labels.npz", "scores": self.out / DEMO_FILE}


# ----------------------------------------------------------------------------- input
def demo_sequence(folder: str | os.PathLike, frames: int = 150, width: int = 640, height: int = 360,
                  seed: int = DEMO_SEED, backend: str | None = None) -> tuple[Path, bool]:
    """Write (or find) one bench/occ-style synthetic sequence with its labels and mesh.

    Args:
        folder: split folder; the sequence goes to ``folder/occ/s00000``.
        frames: t frames at 30 fps; width, height: pixels (even); seed: the split seed.
        backend: render backend ("egl" / "software"; None = auto).
    Returns:
        ``(sequence folder, cached)``; ``cached`` is True when a complete sequence made with the
        same settings was already there (the synth writer's resume rule; other settings raise
        :class:`moro.synth.writer.SettingsMismatchError`).
    """
    from moro.synth.splits import plan_split
    from moro.synth.writer import write_split

    tasks = plan_split("bench", 1, frames, seed, width=width, height=height, save_vertices=True,
                       backend=None if backend == "auto" else backend)
    summary = write_split(folder, tasks, seed=seed)
    return Path(folder) / tasks[0].name, summary.generated == 0


def write_synth_boxes(sequence: str | os.PathLike, path: str | os.PathLike, key: str = "box_det") -> Path:
    """The sequence's boxes (labels ``key``, (t, 3) HMR ``(cx, cy, s)`` px) as a user boxes file (JSON).

    Format (:mod:`moro.inference.boxes`): ``{"boxes": [{"frame": i, "cxcys": [cx, cy, s]}, ...]}``,
    one entry per frame of the sequence's video, plus a ``"source"`` note.
    """
    with np.load(Path(sequence) / "labels.npz") as z:
        boxes = np.asarray(z[key], np.float64)
    doc = {"source": f"moro synth labels {key} of {sequence}",
           "boxes": [{"frame": i, "cxcys": [round(float(v), 3) for v in b]} for i, b in enumerate(boxes)]}
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(doc) + "\n")
    return Path(path)


def per_frame_config(config: InferenceConfig) -> InferenceConfig:
    """The per-frame baseline's settings: ``config`` with each frame decoded alone
    (``WindowConfig(size=1, overlap=0, drop=0)``) and no videos, GLB or BVH (features are reused
    from the cache when ``config`` used it)."""
    windows = WindowConfig(size=1, overlap=0, drop=0, encoder_chunk=config.windows.encoder_chunk)
    return replace(config, windows=windows, videos=False, glb=False, bvh=False)


# ----------------------------------------------------------------------------- scoring
def prediction_from_motion(motion: str | os.PathLike, sequence: str = "demo", method: str = "moro"):
    """A ``motion.npz`` of ``moro infer`` as a :class:`~moro.metrics.predictions.format.PredictionSequence`.

    Frame ids are the source frames (``source_frame``, (t,)); joints are ``joints22_cam``
    (t, 22, 3) metres; with ``--save-vertices`` the fitted mesh ``vertices_cam`` (t, v, 3) rides
    along with topology ``"<model>-<topology>:<v>"`` (e.g. ``anny-notoes_collapse5pc:615``, the
    synthetic ground truth's naming), which gives PVE and foot sliding against the synthetic world.
    """
    from moro.metrics.predictions.format import PredictionSequence

    with np.load(motion) as z:
        m = {k: z[k] for k in ("source_frame", "fps", "joints22_cam", "joints22_world", "body_model")}
        verts = z["vertices_cam"] if "vertices_cam" in z.files else None
    frames = m["source_frame"].astype(np.int64)
    if np.any(np.diff(frames) <= 0):
        raise InferenceError(f"{motion}: source frames repeat (the video was resampled up to {float(m['fps']):g} fps); "
                             "score predictions of a video at the output frame rate")
    body = str(m["body_model"])
    return PredictionSequence(
        sequence=sequence, frame_ids=frames, fps=float(m["fps"]), joints_cam=m["joints22_cam"],
        vertices_cam=verts, topology=None if verts is None else f"{body.replace('/', '-')}:{verts.shape[1]}",
        joints_world=m["joints22_world"], body_model=body.split("/")[0], method=method, source=str(motion),
        scoring="fitted-mesh joints22",
    ).validate(str(motion))


def score_against_synth(prediction, sequence: str | os.PathLike, scores=None) -> dict[str, float]:
    """Score a prediction against one synthetic sequence exactly as ``moro eval --protocol synth``.

    Args:
        prediction: a ``motion.npz`` path of ``moro infer``, or a
            :class:`~moro.metrics.predictions.format.PredictionSequence` (frame ids = the
            sequence's frames).
        sequence: the sequence folder (``video.mp4``, ``labels.npz``, ``meta.json``).
        scores: a :class:`~moro.metrics.protocols.scoring.MethodScores` to accumulate into
            (pool several sequences frame-weighted); None = a fresh one.
    Returns:
        the pooled means of ``scores`` in report units: ``mpjpe_occ``, ``mpjpe_vis``, ``mpjpe``,
        ``pa_mpjpe``, ``pve`` (mm), ``gmpjpe`` (mm), ``rte`` (%), ``accel_error``, ``g_accel_error``
        (m/s^2), ``jitter`` (10 m/s^3), ``foot_sliding`` (mm/frame), ``w_mpjpe``, ``wa_mpjpe`` (mm);
        metrics without inputs are absent (``scores.notes`` says why).
    """
    from moro.data.synth import SynthSequence
    from moro.metrics.protocols.scoring import MethodScores, score_sequence
    from moro.metrics.protocols.synth import synth_ground_truth

    seq = SynthSequence(sequence)
    gt = synth_ground_truth(seq)
    if not hasattr(prediction, "joints_cam"):
        prediction = prediction_from_motion(prediction, seq.name)
    prediction.sequence = seq.name
    scores = scores if scores is not None else MethodScores(prediction.method or "prediction")
    score_sequence(prediction, gt, scores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a metric without a defined entry (e.g. RTE, static) is NaN
        return scores.pool.means()


def headline(scores: dict[str, dict[str, float]], fps: float) -> str:
    """The demo's last line: ``mpjpe_occ_mm=<moro> baseline_mpjpe_occ_mm=<per-frame> fps=<moro run>``."""
    return (f"mpjpe_occ_mm={scores['moro']['mpjpe_occ']:.1f} "
            f"baseline_mpjpe_occ_mm={scores['per_frame']['mpjpe_occ']:.1f} fps={fps:.2f}")


# ----------------------------------------------------------------------------- the demo
def _claim(out: Path) -> None:
    """Make ``out`` a demo folder; refuse a non-empty folder that is not one. A stale demo.json goes first."""
    if out.exists() and not out.is_dir():
        raise DemoError(f"--out {out} is a file; give a folder path")
    if out.exists() and any(out.iterdir()) and not (out / DEMO_MARK).is_file():
        raise DemoError(f"--out {out} exists and is not a moro demo folder (no {DEMO_MARK}); choose a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARK).write_text("written by moro demo; everything in this folder may be replaced by the next run\n")
    (out / DEMO_FILE).unlink(missing_ok=True)  # a failed re-run never leaves the last run's result looking current


def resolve_demo_checkpoint(path: str | None) -> tuple[Path, bool]:
    """``(checkpoint, is_the_shipped_tiny_model)``; :class:`DemoError` naming the fix when there is none."""
    from moro.inference.loading import PACKAGED_CHECKPOINT, resolve_checkpoint
    from moro.paths import asset_path

    try:
        ckpt = resolve_checkpoint(path)
    except FileNotFoundError as e:
        raise DemoError(f"moro demo needs a trained MoRo checkpoint, and the shipped tiny model "
                        f"({asset_path(PACKAGED_CHECKPOINT).name}) is not in this copy of moro: {e}") from None
    return ckpt, ckpt.resolve() == asset_path(PACKAGED_CHECKPOINT).resolve()


def run_demo(config: DemoConfig | None = None, progress: ProgressFactory | None = None,
             on_step=None) -> DemoResult:
    """Run the demo of the module docstring.

    Args:
        config: :class:`DemoConfig`.
        progress: the per-stage progress factory of :func:`~moro.inference.run_inference`.
        on_step: called with a short text before each step (the CLI prints it).
    Returns:
        :class:`DemoResult` (also written to ``OUT/demo.json``).
    Raises:
        DemoError: no checkpoint, or ``--out`` is a folder the demo does not own.
    """
    cfg = config or DemoConfig()
    step = on_step or (lambda text: None)
    out = Path(cfg.out)
    ckpt, shipped = resolve_demo_checkpoint(cfg.checkpoint)  # fail before any work
    _claim(out)
    seconds: dict[str, float] = {}

    step(f"synthetic occluded video ({cfg.frames} frames, {cfg.width}x{cfg.height}, seed {cfg.seed})")
    t0 = time.perf_counter()
    seq, cached = demo_sequence(out / "synth", cfg.frames, cfg.width, cfg.height, cfg.seed, cfg.render_backend)
    boxes = write_synth_boxes(seq, out / "boxes.json")
    seconds["video"] = time.perf_counter() - t0
    with np.load(seq / "labels.npz") as z:
        K, visibility = z["K"].astype(np.float64), z["visibility"]

    step(f"moro on the video ({'shipped tiny model' if shipped else ckpt})")
    t0 = time.perf_counter()
    from moro.inference.loading import body_record, load_model, resolve_body

    model = load_model(ckpt, cfg.device)
    body = resolve_body(model, body_record(ckpt))
    icfg = InferenceConfig(checkpoint=str(ckpt), boxes=str(boxes), focal=float(K[0, 0]), device=cfg.device,
                           decoding=DecodingConfig(cfg.iterations), fit=FitConfig(shape_frames=cfg.shape_frames),
                           save_vertices=True, cache_dir=str(out / "cache"), render_backend=cfg.render_backend)
    video = seq / "video.mp4"
    moro_run = run_inference(video, out / "moro", icfg, model=model, body=body, intrinsics=K, progress=progress)
    seconds["moro"] = time.perf_counter() - t0

    step("per-frame baseline (the same model, each frame decoded alone)")
    t0 = time.perf_counter()
    base_run = run_inference(video, out / "per_frame", per_frame_config(icfg), model=model, body=body, intrinsics=K,
                             progress=progress)
    seconds["per_frame"] = time.perf_counter() - t0

    step("scores against the ground truth")
    t0 = time.perf_counter()
    scores = {"moro": score_against_synth(moro_run.motion_path, seq),
              "per_frame": score_against_synth(base_run.motion_path, seq)}
    seconds["scores"] = time.perf_counter() - t0
    result = DemoResult(out, seq, cached, ckpt, shipped, moro_run, base_run, scores, seconds,
                        frames=int(moro_run.summary["frames"]), occluded_joint_fraction=float((~visibility).mean()))
    _write_demo_json(result, cfg)
    return result


def _write_demo_json(r: DemoResult, cfg: DemoConfig) -> None:
    doc = {"format": "moro-demo", "version": 1, "config": asdict(cfg), "sequence": str(r.sequence),
           "checkpoint": str(r.checkpoint), "shipped_model": r.shipped_model, "frames": r.frames,
           "occluded_joint_fraction": r.occluded_joint_fraction, "boxes": "labels box_det (detector-like), boxes.json",
           "scores": {k: {m: (None if np.isnan(v) else v) for m, v in d.items()} for k, d in r.scores.items()},
           "units": {"mpjpe*": "mm", "pve": "mm", "gmpjpe": "mm", "rte": "%",
                                         "accel_error": "m/s^2", "jitter": "10 m/s^3", "foot_sliding": "mm/frame"},
           "fps": r.fps, "seconds": {k: round(v, 3) for k, v in r.seconds.items()},
           "files": {k: str(v) for k, v in r.files().items()}, "headline": headline(r.scores, r.fps), "complete": True}
    with atomic_write(r.out / DEMO_FILE) as tmp:
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
