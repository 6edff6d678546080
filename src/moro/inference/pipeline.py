"""``moro infer``: a video in, the person's motion out (issue 8; design.md "Inference").

Stages (each reports progress as frames done; per-frame data lives in on-disk stores, so memory
does not grow with the video's length)::

    open      video file or image folder (moro.inference.video), focal -> K
    boxes     boxes file, or detector + tracker pass (cached: video digest + detector settings)
    features  crops -> backbone tokens (cached: video digest + boxes + backbone weights)
    decode    windows of 500 frames, K = 5 masked-decoding iterations each (moro.inference.windows)
    fit       meshes -> one-shape parametric fit, chunked (moro.inference.postprocess)
    world     RANSAC ground plane under the slow feet -> world frame (moro.inference.ground)
    export    motion.npz, motion.glb, motion.bvh, overlay.mp4, world.mp4, summary.json

A re-run with other decoding or fitting settings reuses the cached boxes and features and only
repeats decode, fit, world and export. Outputs appear atomically (:class:`moro.inference.exports.OutputDir`).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import moro
from moro.inference.crops import bbox_info, camera_intrinsics
from moro.inference.decoding import DecodingConfig
from moro.inference.detection import DetectorConfig
from moro.inference.errors import InferenceError
from moro.inference.exports import SUMMARY_FILE, OutputDir, write_summary
from moro.inference.frontend import FileBoxes, detect_boxes, detector_key, extract_features, feature_key, load_track
from moro.inference.ground import world_from_ground
from moro.inference.loading import backbone_of, body_record, load_model, resolve_body, resolve_checkpoint
from moro.inference.outputs import Motion, write_bvh_file, write_glb_file, write_motion_npz, write_videos
from moro.inference.postprocess import FitConfig, fit_sequence_chunks
from moro.inference.store import CacheEntry, FrameStore, tensor_digest
from moro.inference.video import open_video, video_digest
from moro.inference.windows import WindowConfig, decode_windows, plan_windows

log = logging.getLogger(__name__)

__all__ = ["InferenceConfig", "InferenceResult", "run_inference", "STAGES"]

STAGES = ("boxes", "features", "decode", "fit", "export")
ProgressFactory = Callable[[str, int | None], Callable[[int], None]]


@dataclass
class InferenceConfig:
    """Settings of one ``moro infer`` run (the CLI flags)."""

    checkpoint: str | None = None  # MoRo checkpoint (None: $MORO_CHECKPOINT or the shipped model)
    boxes: str | None = None  # user boxes file (JSON / CSV, moro.inference.boxes); None = detector
    focal: float | None = None  # pixels; None = image diagonal (moro.geometry.estimate_focal)
    source_fps: float | None = None  # frame rate of an image folder (default 30)
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    windows: WindowConfig = field(default_factory=WindowConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    heading: str = "camera"  # world heading: "camera" (look direction) or "body" (facing at frame 0)
    save_vertices: bool = False  # per-frame fitted vertices in motion.npz
    videos: bool = True  # overlay.mp4 and world.mp4
    glb: bool = True  # motion.glb
    bvh: bool = True  # motion.bvh
    render_backend: str = "auto"  # "auto" | "egl" | "software" | "points" (OpenCV drawing)
    cache_dir: str | None = None  # cache root (default $MORO_CACHE_DIR/infer)
    use_cache: bool = True  # reuse / store boxes and backbone tokens
    device: str = "cpu"  # torch device for the network
    body_model: str | None = None  # override the checkpoint's body model (must match its mesh)
    topology: str | None = None  # Anny topology override
    smplx_path: str | None = None  # SMPL-X / SMPL model file or folder
    backbone_batch: int = 16  # crops per backbone call
    feature_dtype: str = "float16"  # dtype of cached backbone tokens

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class InferenceResult:
    out_dir: Path
    summary: dict

    @property
    def motion_path(self) -> Path:
        return self.out_dir / "motion.npz"


def _noop_progress(stage: str, total: int | None) -> Callable[[int], None]:
    return lambda n: None


@contextmanager
def _timed(timings: dict, stage: str):
    t0 = time.perf_counter()
    yield
    timings[stage] = round(time.perf_counter() - t0, 3)


def run_inference(
    video: str | Path,
    out: str | Path,
    config: InferenceConfig | None = None,
    *,
    model=None,
    body=None,
    intrinsics: np.ndarray | None = None,
    progress: ProgressFactory | None = None,
) -> InferenceResult:
    """Run the whole pipeline on one video (module docstring).

    Args:
        video: video file or image folder.
        out: output folder (created atomically; an earlier moro output there is replaced).
        config: :class:`InferenceConfig`.
        model: an already loaded MoRo (eval mode) instead of ``config.checkpoint`` (then only recorded in the
            summary as the model's file); body: its body model.
        intrinsics: (3, 3) full-image intrinsics instead of ``config.focal`` (e.g. a known camera).
        progress: ``progress(stage, total_frames_or_None) -> update(n)``; the CLI passes tqdm bars.
    Returns:
        :class:`InferenceResult` (the output folder and the summary written to it).
    Raises:
        InferenceError subclasses for bad input (moro.inference.errors), FileNotFoundError.
    """
    cfg = config or InferenceConfig()
    progress = progress or _noop_progress
    timings: dict[str, float] = {}
    info = open_video(video, cfg.source_fps)
    K = np.asarray(intrinsics, np.float64) if intrinsics is not None else camera_intrinsics(info.width, info.height, cfg.focal)
    if cfg.heading not in ("camera", "body"):
        raise InferenceError(f"heading must be 'camera' or 'body', got {cfg.heading!r}")
    file_boxes = FileBoxes(cfg.boxes) if cfg.boxes is not None else None  # malformed files fail before any work
    ckpt = None if cfg.checkpoint is None else Path(cfg.checkpoint)  # a given model: recorded as its file
    if model is None:
        ckpt = resolve_checkpoint(cfg.checkpoint)
        with _timed(timings, "load"):
            model = load_model(ckpt, cfg.device)
    if body is None:
        body = resolve_body(model, body_record(ckpt) if ckpt else None, cfg.body_model, cfg.topology, cfg.smplx_path)
    fps = float(model.config.fps)
    est_frames = None if info.source_frames is None else int(info.source_frames * fps / info.source_fps)
    output = OutputDir(out)
    try:
        with _timed(timings, "digest"):
            video_key = video_digest(info)
        backbone = backbone_of(model, inference=True)
        # ---- boxes
        if file_boxes is not None:
            boxes, box_key, box_source = file_boxes, f"file:{file_boxes.key}", "file"
        else:
            entry = CacheEntry(cfg.cache_dir, "boxes", detector_key(video_key, fps, cfg.detector)) if cfg.use_cache else None
            with _timed(timings, "boxes"):
                boxes = detect_boxes(info, fps, cfg.detector, entry, progress("boxes", est_frames))
            box_key, box_source = f"det:{detector_key(video_key, fps, cfg.detector)}", "detector"
        # ---- features
        fkey = feature_key(video_key, fps, box_key, tensor_digest(backbone.state_dict()), cfg.feature_dtype)
        work = output.path(".work")
        entry = CacheEntry(cfg.cache_dir if cfg.use_cache else work, "features", fkey)
        feature_cached = entry.complete
        with _timed(timings, "features"):
            if not feature_cached:
                try:
                    extract_features(info, fps, boxes, backbone, entry.begin(), cfg.backbone_batch, cfg.feature_dtype,
                                     progress("features", est_frames))
                except BaseException:
                    entry.abort()
                    raise
                entry.finish({"video": str(info.path)})
            track, tokens = load_track(entry.path / "track.npz"), FrameStore(entry.path, "tokens")
        t = len(track)
        info_cliff = bbox_info(K, track.boxes)
        # ---- decode
        with _timed(timings, "decode"):
            decoded = decode_windows(model, tokens, info_cliff, work, cfg.windows, cfg.decoding, progress("decode", t))
        # ---- fit + world
        with _timed(timings, "fit"):
            betas, fitted = fit_sequence_chunks(model, body, decoded, work, cfg.fit, cfg.save_vertices, progress("fit", t))
            world = world_from_ground(fitted["feet_cam"][0:t], fitted["root_trans_cam"][0:t],
                                      fitted["root_rot_cam"][0:1], cfg.heading)
        motion = Motion(body, betas, world, K, (info.width, info.height), fps, track, decoded, fitted)
        # ---- export
        files = {"motion.npz": "per-frame body-model parameters, joints, boxes, confidence"}
        with _timed(timings, "export"):
            write_motion_npz(output.path("motion.npz"), motion, cfg.save_vertices)
            if cfg.glb:
                write_glb_file(output.path("motion.glb"), motion)
                files["motion.glb"] = "animated skinned mesh (glTF 2.0), world frame"
            if cfg.bvh:
                write_bvh_file(output.path("motion.bvh"), motion)
                files["motion.bvh"] = "skeleton animation (BVH, metres), world frame"
            backends = {}
            if cfg.videos:
                backends = write_videos(output.tmp, motion, info, cfg.render_backend, progress("videos", 2 * t))
                files["overlay.mp4"] = "mesh and joints over the input (red hollow joints: occluded / uncertain)"
                files["world.mp4"] = "world view: ground, mesh, root path"
        summary = _summary(cfg, info, video_key, K, track, model, body, ckpt, world, decoded, fitted, fps, timings,
                           files, box_source, feature_cached, backends)
        shutil.rmtree(work, ignore_errors=True)
        write_summary(output.path(SUMMARY_FILE), summary)
        out_dir = output.commit()
    except BaseException:
        output.abort()
        raise
    return InferenceResult(out_dir, summary)


def _carry_summary(model, cfg, decoded) -> dict:
    """Whether the heading was carried (moro.inference.heading), with what settings, over how many trusted frames."""
    head = getattr(model, "visibility_head", None)
    if head is None:
        return {"applied": False, "reason": "the checkpoint has no visibility head (moro train visibility fits one)"}
    share = np.concatenate([c for _, c in decoded["hidden_share"].chunks(4096)]) if len(decoded["hidden_share"]) else np.zeros(0)
    applied = cfg.decoding.heading_carry and cfg.windows.size > 1
    return {"applied": bool(applied), "tau": head.tau, "sigma_frames": head.sigma,
            "trusted_frames": int((share < head.tau).sum()), "frames": int(len(share))}


def _summary(cfg, info, video_key, K, track, model, body, ckpt, world, decoded, fitted, fps, timings, files,
             box_source, feature_cached, backends) -> dict:
    t = len(track)
    conf = float(np.mean([c.astype(np.float32).mean() for _, c in decoded["confidence"].chunks(1024)]))
    fit_err = float(np.mean(np.concatenate([c for _, c in fitted["fit_error"].chunks(4096)])))
    cam_height = float(world.t_c2w[1])
    return {
        "format": "moro-infer-summary",
        "version": 1,
        "moro_version": moro.__version__,
        "input": {"path": str(info.path), "kind": info.kind, "sha256": video_key, "width": info.width,
                  "height": info.height, "source_fps": info.source_fps},
        "frames": t,
        "fps": fps,
        "duration_s": round(t / fps, 3),
        "camera": {"K": K.tolist(), "focal_px": float(K[0, 0]),
                   "focal_source": "user" if cfg.focal is not None else "estimated (image diagonal)",
                   "height_above_ground_m": round(cam_height, 4)},
        "boxes": {"source": cfg.boxes if box_source == "file" else track.source,
                  "frames_with_box": int(track.detected.sum()), "interpolated_frames": int((~track.detected).sum())},
        "model": {"checkpoint": None if ckpt is None else str(ckpt), "preset": model.config.name,
                  "body_model": body.name, "tokens": model.config.tokens.num_tokens,
                  "codes": model.config.tokens.num_codes, "device": cfg.device},
        "decoding": asdict(cfg.decoding),
        "heading_carry": _carry_summary(model, cfg, decoded),
        "windows": {**cfg.windows.to_dict(), "count": len(plan_windows(t, cfg.windows))},
        "fit": {**cfg.fit.to_dict(), "mean_fit_error_mm": round(1000 * fit_err, 3)},
        "world": {"ground_source": world.plane.source, "ground_inliers": world.plane.inliers,
                  "ground_points": world.plane.points, "heading": world.heading},
        "confidence_mean": round(conf, 5),
        "cache": {"features": "hit" if feature_cached else "computed", "use_cache": cfg.use_cache},
        "render_backends": backends,
        "timings_s": timings,
        "outputs": files,
    }
