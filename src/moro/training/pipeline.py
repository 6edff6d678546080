"""``moro train all``: every stage in order on the synthetic world, each from its parent's output.

    tokenizer -> pose_pretrain -> motion_pretrain -> image_pretrain -> video_train

Data: ``--data`` names a ``moro synth`` split (or a prepared cache); without it a split is
generated once under ``<moro cache>/synth/`` (tiny: 256 sequences x 160 frames at 640 x 360;
under a short ``--max-minutes`` budget a proportionally smaller one). The split is turned into a
crop + token cache for the stages' tokenizer (:mod:`moro.training.synth_data`).

``--max-minutes`` bounds the whole run: each step of the chain gets a share of what is left
(:data:`BUDGET_SHARES`) and stops at its deadline with a complete, loadable (truncated)
checkpoint, so the chain always completes. ``--tokenizer CKPT`` reuses a trained tokenizer
instead of training one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from moro.paths import cache_dir
from moro.training.engine import MODEL_FILE, RunConfig, StageResult, train_stage
from moro.training.recipes import STAGES

log = logging.getLogger(__name__)

__all__ = ["BUDGET_SHARES", "DATA_PRESETS", "ensure_synth_split", "prepare_data", "train_all", "AllResult"]

# share of the remaining budget each step of `train all` may use (the last step takes the rest)
BUDGET_SHARES = {"data": 0.15, "tokenizer": 0.15, "pose_pretrain": 0.12, "motion_pretrain": 0.25,
                 "image_pretrain": 0.45, "video_train": 1.0}
# synthetic training split per preset: (sequences, frames, width, height)
DATA_PRESETS = {"tiny": (256, 160, 640, 360), "paper": (1000, 300, 960, 540)}
TOKENIZER_SECONDS_PER_STEP = 0.45  # tiny tokenizer on 2 CPU cores (models/README.md): sizes a budgeted run


def ensure_synth_split(path: Path, sequences: int, frames: int, width: int, height: int, split: str = "train",
                       workers: int = 1, progress: Callable[[str], None] | None = None) -> Path:
    """Generate (or finish) a synthetic split at ``path`` (idempotent: complete sequences are kept)."""
    from moro.synth.splits import SPLITS, plan_split
    from moro.synth.writer import write_split

    if (path / "split.json").is_file():
        return path
    tasks = plan_split(split, sequences, frames, SPLITS[split].seed, width=width, height=height)
    write_split(path, tasks, workers=workers, seed=SPLITS[split].seed,
                progress=(lambda r: progress(r.name)) if progress else None)
    return path


def _file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _prepare_one(data: Path, tokenizer_path, body, progress, max_sequences, split: str) -> Path:
    from moro.tokenizer import load_tokenizer
    from moro.training.synth_data import MANIFEST, TrainDataError, prepare_prepared_cache, prepare_synth_cache

    manifest = data / MANIFEST
    if manifest.is_file() and "settings" in json.loads(manifest.read_text()):
        return data  # already a training cache
    if not data.is_dir():
        raise TrainDataError(f"--data {data} does not exist; generate a split with `moro synth --split train --out {data}`")
    prepared = manifest.is_file() and json.loads(manifest.read_text()).get("format") == "moro-prepared"
    if not prepared and not (data / "split.json").is_file() and not any(data.glob("*/meta.json")):
        raise TrainDataError(f"--data {data} is neither a `moro synth` split, a `moro prepare` output nor a training "
                             "cache; real datasets are prepared with `moro prepare` (docs/datasets.md)")
    key = hashlib.sha256(f"{data.resolve()}|{split}|{_file_digest(tokenizer_path)}".encode()).hexdigest()[:16]
    tok = load_tokenizer(tokenizer_path, faces=body.faces, num_vertices=body.num_vertices)
    out = cache_dir("train-cache", f"{data.name}-{key}")
    if prepared:
        return prepare_prepared_cache(data, out, tok, body, split=split, progress=progress, max_sequences=max_sequences)
    return prepare_synth_cache(data, out, tok, body, progress=progress, max_sequences=max_sequences)


def prepare_data(data, tokenizer_path: str | Path, body, progress: Callable[[str], None] | None = None,
                 max_sequences: int | None = None, split: str = "train"):
    """Training caches for ``data`` and this tokenizer.

    Args:
        data: one source or a list; each a path or ``PATH:WEIGHT``: a ``moro synth`` split, a
            ``moro prepare`` output (its ``split`` sequences) or an existing training cache.
        max_sequences: only the first N sequences of each source.
    Returns:
        the cache folder (one source of weight 1), else a list of ``(cache folder, weight)``.
    """
    from moro.training.synth_data import parse_sources

    sources = parse_sources(data)
    caches = [(_prepare_one(Path(p), tokenizer_path, body, progress, max_sequences, split), w) for p, w in sources]
    if len(caches) == 1 and caches[0][1] == 1.0:
        return caches[0][0]
    return caches


def _as_config(cache):
    """A prepare_data result as RunConfig.data (a path string, or a list of [path, weight])."""
    return str(cache) if isinstance(cache, (str, Path)) else [[str(p), w] for p, w in cache]


class AllResult(list):
    """StageResults of a `train all` run, in order."""


def _deadline_share(name: str, t_end: float | None) -> float | None:
    if t_end is None:
        return None
    return max(5.0, (t_end - time.monotonic()) * BUDGET_SHARES[name])


def train_all(cfg: RunConfig, data: str | None = None, val: str | None = None, tokenizer: str | None = None,
              max_minutes: float | None = None, say: Callable[[str], None] = print,
              data_sequences: int | None = None) -> AllResult:
    """Run every stage in order (module docstring); returns the stage results."""
    from moro.tokenizer.presets import tokenizer_preset
    from moro.training.tokenizer import build_tokenizer, load_preset_body, train_config, train_tokenizer

    t_end = None if max_minutes is None else time.monotonic() + 60.0 * max_minutes
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    preset = tokenizer_preset(cfg.preset)
    body = load_preset_body(preset)
    results = AllResult()

    # data
    if data is None:
        n, f, w, h = DATA_PRESETS[cfg.preset]
        if max_minutes is not None and max_minutes < 60:
            n, f = max(4, int(2 * max_minutes)), 64
        data = str(cache_dir("synth", f"train-{n}x{f}-{w}x{h}"))
        say(f"data: synthetic split {data} ({n} sequences x {f} frames)")
        ensure_synth_split(Path(data), n, f, w, h, workers=max(1, cfg.workers))

    # tokenizer
    if tokenizer is None:
        tcfg = train_config(cfg.preset, seed=cfg.seed)
        share = _deadline_share("tokenizer", t_end)
        if share is not None:
            tcfg = replace(tcfg, steps=max(10, min(tcfg.steps, int(share / TOKENIZER_SECONDS_PER_STEP))),
                           checkpoint_every=max(10, min(tcfg.checkpoint_every, tcfg.steps)))
        say(f"stage tokenizer: {tcfg.steps} steps")
        from moro.training.checkpoint import provenance
        from moro.training.mesh_source import LocalMeshSource

        tok_model = build_tokenizer(preset, body, seed=tcfg.seed)
        r = train_tokenizer(tok_model, LocalMeshSource(body, seed=tcfg.seed), tcfg, out / "tokenizer",
                            resume=cfg.resume and (out / "tokenizer" / "last.ckpt").is_file(),
                            body_info={"model": preset.body_model, "topology": preset.topology}, meta=provenance())
        tokenizer = str(r.tokenizer_path)
        results.append(StageResult("tokenizer", r.step, tcfg.steps, r.seconds,
                                   float(r.history[-1]["loss"]) if r.history else float("nan"), r.tokenizer_path, False))
    elif not Path(tokenizer).is_file():
        raise FileNotFoundError(f"--tokenizer {tokenizer}: no such file (train one with `moro train tokenizer`)")

    say(f"data: preparing the crop + token cache of {data} (first run only)")
    cache = prepare_data(data, tokenizer, body, max_sequences=data_sequences)
    val_cache = prepare_data(val, tokenizer, body, split="val") if val else None
    init = tokenizer
    for stage in STAGES:
        share = _deadline_share(stage, t_end)
        scfg = replace(cfg, data=_as_config(cache), val_data=_as_config(val_cache) if val_cache else None, init=init,
                       max_seconds=share,
                       resume=cfg.resume and (out / stage / "last.ckpt").is_file())
        say(f"stage {stage}: from {init}" + (f", budget {share:.0f} s" if share else ""))
        r = train_stage(stage, scfg, body)
        results.append(r)
        init = str(out / stage / MODEL_FILE)
    (out / "train_all.json").write_text(json.dumps(
        [{"stage": r.stage, "steps_done": r.steps_done, "steps_planned": r.steps_planned, "seconds": r.seconds,
          "final_loss": r.final_loss, "truncated": r.truncated, "model": str(r.model_path)} for r in results], indent=1))
    return results
