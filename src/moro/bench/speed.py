"""Speed, memory and scaling measurements (``moro bench speed``); each runs in its own child process.

Measurements (``spec["kind"]``), all under ``torch.no_grad``, float32 (bf16 autocast on CUDA with
``bf16``), batch 1, times synchronised on CUDA:

``matmul``     this device's matrix-multiply peak (:func:`moro.bench.flops.matmul_peak`)
``tokenizer``  mesh tokenizer: ids -> meshes (decode) and meshes -> ids (encode), ``frames`` meshes per call
``decode``     masked decoding of one window of ``frames`` frames: motion encoder + decoder, all K
               passes (:func:`moro.inference.decoding.decode_clip`) from given image features.
               ``passes < iterations`` times only that many passes (identical in shape) and scales
               the time by K / passes (said in the output). FLOPs are counted on the meta device.
``pipeline``   frames -> fitted parameters without video decoding: crops of in-memory 960 x 540
               frames, backbone (or random backbone tokens with ``backbone: false``), image
               encoder + windowed masked decoding (500-frame windows, stores on disk), then
               meshes and the one-shape parametric fit (tiny) or meshes only (paper: its SMPL-X
               body model is licence-gated, so no fit is timed). The synthetic frames stand in
               for video decoding; making them is not timed.
``scaling``    windowed decoding (image encoder + K passes per 500-frame window, results streamed to
               on-disk stores) of ``frames`` frames of random backbone tokens read from an on-disk
               store; time of the decoding only (the token store is written first, untimed)

Every child reports its peak resident set (and peak CUDA memory) - see :mod:`moro.bench.measure`.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from moro.bench.flops import count_flops, matmul_peak
from moro.bench.measure import peak_memory, run_child, sync, timed
from moro.bench.models import build_network, describe_network, meta_copy
from moro.bench.scaling import linear_fit, memory_ratio

log = logging.getLogger(__name__)

__all__ = ["SpeedConfig", "plan_speed", "measure", "run_speed", "summary_line", "SCALING_LENGTHS"]

SCALING_LENGTHS = (60, 600, 6000, 18000)
QUICK_SCALING_LENGTHS = (60, 300, 600, 1800)  # --quick on a CPU: shortened, and said so
FRAME_SIZE = (960, 540)  # (W, H) of the pipeline's synthetic frames (the bench split's size)


@dataclass
class SpeedConfig:
    """Options of ``moro bench speed``."""

    quick: bool = False  # few frames, micro network for the 18000-frame scaling (minutes on a CPU)
    device: str = "cpu"  # "cpu" or "cuda[:i]"
    bf16: bool = False  # bf16 autocast on CUDA (the matmul peak is then measured in bf16 too)
    threads: int | None = None  # torch threads per child (default: usable cores)
    checkpoint: str | None = None  # tiny checkpoint (default: shipped, else random weights)
    iterations: int = 5  # K decoding passes (paper 5)
    only: list[str] = field(default_factory=list)  # run only these kinds (tests, partial reruns)


# ------------------------------------------------------------------ plan (parent side)
def plan_speed(cfg: SpeedConfig) -> list[dict]:
    """The measurements of one run, in order (module docstring); CPU and CUDA differ only in sizes."""
    gpu = cfg.device.startswith("cuda")
    q, K = cfg.quick, cfg.iterations
    base = {"device": cfg.device, "bf16": cfg.bf16, "checkpoint": cfg.checkpoint, "iterations": K}
    specs: list[dict] = [{"kind": "matmul"}]
    specs += [{"kind": "tokenizer", "network": "tiny", "frames": 64 if q else 512},
              {"kind": "tokenizer", "network": "paper", "frames": 4 if q and not gpu else 64}]
    # (frames, timed passes): the passes of one decode are identical in shape, so timing fewer
    # than K and scaling by K / passes is exact up to the per-pass bookkeeping (said in the output)
    tiny_windows = [(60, K), (500, 1 if q and not gpu else K)]
    if gpu:
        paper_windows = [(60, K), (500, K)]
    elif q:
        paper_windows = [(8, 1)]  # CPU quick: an 8-frame window, 1 of K passes timed (~95 GFLOP / frame / pass)
    else:
        paper_windows = [(60, 1), (500, 1)]
    for net, windows in (("tiny", tiny_windows), ("paper", paper_windows)):
        for t, passes in windows:
            specs.append({"kind": "decode", "network": net, "frames": t, "passes": passes, "warmup": net == "tiny" or gpu})
    # the tiny pipeline always runs a 10 s video (300 frames), --quick too: the per-video costs (shape fit,
    # token-joint weights) are then amortised as in use, and the headline tiny_fps means the same in both
    specs.append({"kind": "pipeline", "network": "tiny", "backbone": True, "frames": 300, "warmup": True})
    paper_frames, paper_passes = (60, K) if gpu else ((2, 1) if q else (16, 1))
    for bb in (False, True):
        specs.append({"kind": "pipeline", "network": "paper", "backbone": bb, "frames": paper_frames,
                      "passes": paper_passes, "warmup": gpu})
    if q and not gpu:  # CPU quick: lengths shortened (said in the output), micro network, 1 pass
        net, it, lengths = "micro", 1, QUICK_SCALING_LENGTHS
    else:  # full CPU: tiny with 1 pass per window (K passes = K x the time, same memory); GPU: all K
        net, it, lengths = "tiny", (K if gpu else 1), SCALING_LENGTHS
    for t in lengths:
        specs.append({"kind": "scaling", "network": net, "frames": t, "iterations": it})
    specs.append({"kind": "matmul", "when": "end"})  # the peak again: the higher of the two normalises
    specs = [{**base, **s} for s in specs]
    if cfg.only:
        specs = [s for s in specs if s["kind"] in cfg.only or s["kind"] == "matmul"]
    return specs


# ------------------------------------------------------------------ measurements (child side)
def _autocast(spec: dict):
    if spec.get("bf16") and spec["device"].startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _reset_cuda_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)


def _random_features(model, t: int, device, seed: int = 0):
    from moro.model.moro import ImageFeatures

    g = torch.Generator().manual_seed(seed)
    p = describe_network(model)["patches"]
    d = model.config.transformer.width
    rot = torch.tensor([1.0, 0, 0, 0, -1, 0]).expand(1, t, 6)  # upright, facing the camera
    transl = torch.tensor([0.0, 0.3, 3.5]).expand(1, t, 3) + 0.01 * torch.randn(1, t, 3, generator=g)
    return ImageFeatures(torch.randn(1, t, p, d, generator=g).to(device), rot.to(device), transl.to(device))


def _measure_matmul(spec: dict) -> dict:
    dtype = torch.bfloat16 if spec.get("bf16") and spec["device"].startswith("cuda") else torch.float32
    return matmul_peak(spec["device"], dtype)


@torch.no_grad()
def _measure_tokenizer(spec: dict) -> dict:
    dev, b = spec["device"], spec["frames"]
    if spec["network"] == "paper":
        from moro.model.summary import official_shape_hierarchy
        from moro.tokenizer import MeshVQVAE, MeshVQVAEConfig

        tok, note = MeshVQVAE(MeshVQVAEConfig.paper(), official_shape_hierarchy()), "paper tokenizer, random weights"
    else:
        model, note = build_network("tiny", "cpu", spec.get("checkpoint"), backbone=False)
        tok = model.tokenizer
        del model
    tok = tok.to(dev).eval()
    _reset_cuda_peak(dev)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, tok.config.codebook_size, (b, tok.num_tokens), generator=g).to(dev)
    with _autocast(spec):
        t_dec, verts = timed(lambda: tok.decode_codes(ids), dev, repeats=2, warmup=1)
        t_enc, _ = timed(lambda: tok.encode(verts.float()), dev, repeats=2, warmup=1)
    return {"encode_fps": b / t_enc, "decode_fps": b / t_dec, "vertices": tok.num_vertices, "tokens": tok.num_tokens,
            "note": note, **peak_memory(dev)}


@torch.no_grad()
def _measure_decode(spec: dict) -> dict:
    from moro.inference.decoding import DecodingConfig, decode_clip

    dev, t, K = spec["device"], spec["frames"], spec["iterations"]
    passes = spec.get("passes") or K
    model, note = build_network(spec["network"], dev, spec.get("checkpoint"), backbone=False)
    img = _random_features(model, t, dev)
    with _autocast(spec):
        if spec.get("warmup"):  # first-call costs (allocator, kernels) on a short clip
            decode_clip(model, _random_features(model, min(t, 8), dev), DecodingConfig(1))
        _reset_cuda_peak(dev)
        secs, _ = timed(lambda: decode_clip(model, img, DecodingConfig(passes)), dev)
    mem = peak_memory(dev)
    secs_k = secs * K / passes
    meta = meta_copy(model)
    flops = count_flops(lambda: decode_clip(meta, _random_features_meta(meta, t), DecodingConfig(K)))
    return {"fps": t / secs_k, "seconds": secs_k, "timed_passes": passes, "flops": flops,
            "achieved_flops_per_s": flops / secs_k, "network_info": describe_network(model), "note": note, **mem}


def _random_features_meta(model, t: int):
    from moro.model.moro import ImageFeatures

    p, d = describe_network(model)["patches"], model.config.transformer.width
    with torch.device("meta"):
        return ImageFeatures(torch.empty(1, t, p, d), torch.empty(1, t, 6), torch.empty(1, t, 3))


def synthetic_frames(count: int, width: int, height: int, start: int = 0):
    """Yield (H, W, 3) uint8 frames: smooth moving colour patterns (stand-ins for decoded video)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    for i in range(start, start + count):
        yield np.stack([(127 + 100 * np.sin(0.02 * x + 0.03 * y * (c + 1) + 0.1 * i + c)) for c in range(3)], -1).astype(np.uint8)


@torch.no_grad()
def run_pipeline(model, body, frames: int, work: Path, device: str, iterations: int, backbone: bool = True,
                 batch: int = 16, passes: int | None = None) -> dict[str, float]:
    """Frames -> crops -> backbone tokens -> windowed decoding -> fit (or meshes); seconds per stage.

    Frame synthesis (the stand-in for video decoding) is not timed. With ``passes < iterations``
    the decoding runs that many passes and its time is scaled by ``iterations / passes``.
    """
    passes = passes or iterations
    from moro.inference.crops import backbone_batch, bbox_info, camera_intrinsics, crop_frame, crop_geometry
    from moro.inference.decoding import DecodingConfig
    from moro.inference.loading import backbone_of
    from moro.inference.postprocess import camera_meshes, fit_sequence_chunks
    from moro.inference.store import FrameStore
    from moro.inference.windows import WindowConfig, decode_windows

    W, H = FRAME_SIZE
    K = camera_intrinsics(W, H)
    boxes = np.tile([W / 2, H / 2, 0.6 * H / 200 * 1.2], (frames, 1))
    stages = {"crops": 0.0, "backbone": 0.0}
    bb = backbone_of(model, inference=True) if backbone else None
    enc_cfg = describe_network(model)
    if backbone:
        size, width = crop_geometry(bb)
        writer = FrameStore.create(work, "tokens", (bb.num_patches, bb.dim), np.float16)
        crops: list[np.ndarray] = []

        def flush() -> None:
            t0 = time.perf_counter()
            x = backbone_batch(np.stack(crops), width=width).to(device)
            writer.append(bb(x).float().cpu().numpy())
            sync(device)
            stages["backbone"] += time.perf_counter() - t0
            crops.clear()

        for i, rgb in enumerate(synthetic_frames(frames, W, H)):
            t0 = time.perf_counter()
            crops.append(crop_frame(rgb, boxes[i], size))
            stages["crops"] += time.perf_counter() - t0
            if len(crops) == batch:
                flush()
        if crops:
            flush()
    else:
        d_bb = model.image_encoder.config.backbone_dim
        writer = FrameStore.create(work, "tokens", (enc_cfg["patches"], d_bb), np.float16)
        g = np.random.default_rng(0)
        for a in range(0, frames, 256):
            writer.append(g.standard_normal((min(256, frames - a), enc_cfg["patches"], d_bb)).astype(np.float16))
    tokens = writer.close()
    info = bbox_info(K, boxes)
    sync(device)
    t0 = time.perf_counter()
    decoded = decode_windows(model, tokens, info, work / "dec", WindowConfig(), DecodingConfig(passes))
    sync(device)
    stages["encode+decode"] = (time.perf_counter() - t0) * iterations / passes
    t0 = time.perf_counter()
    if body is not None:
        fit_sequence_chunks(model, body, decoded, work / "fit")
        stages["fit"] = time.perf_counter() - t0
    else:
        for a in range(0, frames, 256):
            camera_meshes(model, decoded["ids"], decoded["traj"], np.arange(a, min(frames, a + 256)))
        sync(device)
        stages["meshes"] = time.perf_counter() - t0
    return stages


def _measure_pipeline(spec: dict) -> dict:
    from moro.inference.loading import resolve_body

    dev, n, K = spec["device"], spec["frames"], spec["iterations"]
    model, note = build_network(spec["network"], dev, spec.get("checkpoint"), backbone=spec["backbone"])
    body = resolve_body(model) if spec["network"] != "paper" else None
    with tempfile.TemporaryDirectory(prefix="moro-bench-") as tmp, _autocast(spec):
        if spec.get("warmup"):
            run_pipeline(model, body, min(n, 8), Path(tmp) / "warmup", dev, K, spec["backbone"], passes=1)
        _reset_cuda_peak(dev)
        stages = run_pipeline(model, body, n, Path(tmp) / "run", dev, K, spec["backbone"], passes=spec.get("passes"))
    total = sum(stages.values())
    return {"fps": n / total, "seconds": total, "timed_passes": spec.get("passes") or K, "stages_ms_per_frame": {k: 1000 * v / n for k, v in stages.items()},
            "fit": body is not None, "network_info": describe_network(model), "note": note, **peak_memory(dev)}


@torch.no_grad()
def _measure_scaling(spec: dict) -> dict:
    from moro.inference.decoding import DecodingConfig
    from moro.inference.store import FrameStore
    from moro.inference.windows import WindowConfig, decode_windows

    dev, n, K = spec["device"], spec["frames"], spec["iterations"]
    model, note = build_network(spec["network"], dev, spec.get("checkpoint"), backbone=False)
    p, d_bb = describe_network(model)["patches"], model.image_encoder.config.backbone_dim
    with tempfile.TemporaryDirectory(prefix="moro-bench-") as tmp:
        writer = FrameStore.create(tmp, "tokens", (p, d_bb), np.float16)
        g = np.random.default_rng(0)
        for a in range(0, n, 512):
            writer.append(g.standard_normal((min(512, n - a), p, d_bb)).astype(np.float16))
        tokens = writer.close()
        info = np.tile(np.array([[0.0, 0.0, 0.5]], np.float32), (n, 1))
        _reset_cuda_peak(dev)
        with _autocast(spec):
            secs, _ = timed(lambda: decode_windows(model, tokens, info, Path(tmp) / "dec", WindowConfig(),
                                                   DecodingConfig(K)), dev)
    return {"seconds": secs, "fps": n / secs, "network_info": describe_network(model), "note": note, **peak_memory(dev)}


MEASUREMENTS: dict[str, Callable[[dict], dict]] = {
    "matmul": _measure_matmul, "tokenizer": _measure_tokenizer, "decode": _measure_decode,
    "pipeline": _measure_pipeline, "scaling": _measure_scaling,
}


def measure(spec: dict) -> dict:
    """Run one measurement in this process (the child's entry point); ``{**spec, **result}``."""
    if spec["kind"] not in MEASUREMENTS:
        raise ValueError(f"unknown measurement kind {spec['kind']!r}; known: {sorted(MEASUREMENTS)}")
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    return {**spec, **MEASUREMENTS[spec["kind"]](spec)}


# ------------------------------------------------------------------ the run (parent side)
def run_speed(cfg: SpeedConfig, report: Callable[[dict], None] | None = None,
              runner: Callable[[dict], dict] | None = None) -> dict:
    """Run every planned measurement (each in a fresh child), then derive ratios and the scaling fit.

    Args:
        report: called with each result as it arrives (the CLI prints a line).
        runner: ``spec -> result`` (default: :func:`moro.bench.measure.run_child` with ``cfg.threads``).
    Returns:
        ``{"config", "results": [...], "derived": {...}}``.
    """
    runner = runner or (lambda s: run_child(s, cfg.threads))
    results = []
    for spec in plan_speed(cfg):
        r = runner(spec)
        results.append(r)
        if report is not None:
            report(r)
    peaks = [r["flops_per_s"] for r in results if r["kind"] == "matmul"]
    for r in results:
        if r["kind"] == "decode" and peaks:
            r["peak_fraction"] = r["achieved_flops_per_s"] / max(peaks)
    return {"config": cfg.__dict__, "results": results, "derived": derive(results)}


def derive(results: list[dict]) -> dict:
    """Headline figures: tiny pipeline fps, paper decode fps, scaling fit and memory ratio."""
    out: dict = {}
    tiny = [r for r in results if r["kind"] == "pipeline" and r["network"] == "tiny"] if results else []
    if tiny:
        out["tiny_fps"] = tiny[0]["fps"]
    paper = sorted((r for r in results if r["kind"] == "decode" and r["network"] == "paper"),
                   key=lambda r: abs(r["frames"] - 60))
    if paper:
        out["paper_decode_fps"], out["paper_decode_window"] = paper[0]["fps"], paper[0]["frames"]
    sc = sorted((r for r in results if r["kind"] == "scaling"), key=lambda r: r["frames"])
    if len(sc) >= 2:
        lengths = [r["frames"] for r in sc]
        fit = linear_fit(lengths, [r["seconds"] for r in sc])
        out["scaling"] = {"network": sc[0]["network"],
                          "iterations": sc[0]["iterations"], "lengths": lengths, "time_fit": fit,
                          "peak_rss_mb": [r["peak_rss_mb"] for r in sc]}
        key = "peak_cuda_mb" if "peak_cuda_mb" in sc[0] else "peak_rss_mb"
        mem = {r["frames"]: r[key] for r in sc}
        if 600 in mem and 18000 in mem:
            out["peak_mem_ratio_18000_vs_600"] = memory_ratio(mem, 18000, 600)
            out["peak_mem_kind"] = key
    return out


def summary_line(derived: dict) -> str:
    """The last line of ``moro bench speed``."""
    f = lambda k: f"{derived[k]:.3g}" if k in derived else "nan"  # noqa: E731
    ratio = f"{derived['peak_mem_ratio_18000_vs_600']:.3f}" if "peak_mem_ratio_18000_vs_600" in derived else "nan"
    return f"tiny_fps={f('tiny_fps')} paper_decode_fps={f('paper_decode_fps')} peak_mem_ratio_18000_vs_600={ratio}"
