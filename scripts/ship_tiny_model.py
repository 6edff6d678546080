"""Copy a `moro train all --preset tiny` run's final model into the package with its record.

    .venv/bin/python scripts/ship_tiny_model.py RUN_DIR [--bench BENCH.json] [--command "..."]

Writes ``src/moro/assets/moro_tiny.ckpt`` (the video_train model) and ``src/moro/assets/moro_tiny.json``:
the training command, git revision, data (split folder, seeds, frames), per-stage steps / wall time /
final and validation losses, and the benchmark metrics given with ``--bench`` (JSON written by
``moro bench accuracy --json``), so the shipped file always says where it came from.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

ASSETS = Path(__file__).resolve().parents[1] / "src" / "moro" / "assets"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="the --out folder of `moro train all`")
    ap.add_argument("--bench", default=None, help="JSON with the benchmark metrics of this model")
    ap.add_argument("--command", default=None, help="the exact training command (default: the one recorded)")
    args = ap.parse_args()
    run = Path(args.run)
    final = run / "video_train" / "model.ckpt"
    stages = []
    for stage in ("pose_pretrain", "motion_pretrain", "image_pretrain", "video_train"):
        rec = torch.load(run / stage / "model.ckpt", map_location="cpu", weights_only=True, mmap=True)["training"]
        stages.append({k: rec.get(k) for k in ("stage", "steps_done", "steps_planned", "truncated", "seconds",
                                               "final_loss", "val", "git_revision", "command", "seed")})
    record = torch.load(final, map_location="cpu", weights_only=True, mmap=True)["training"]
    data = dict(record["data"])
    split_json = Path(str(data.get("split", ""))) / "split.json"
    if split_json.is_file():  # the synthetic split's own manifest: seed, sequences, frames, labels digest
        sj = json.loads(split_json.read_text())
        data["synth_split"] = {k: (len(v) if isinstance(v, list) else v) for k, v in sj.items()
                               if k in ("split", "seed", "sequences", "frames", "image_size", "labels_digest", "moro_version")}
    out = {
        "model": "moro_tiny.ckpt",
        "what": "MoRo tiny preset (3.6 M parameters + 0.7 M tokenizer), Anny notoes_collapse5pc (615 vertices), "
                "trained on the synthetic occlusion world only: for demos and tests, not for real videos",
        "command": args.command or record.get("command"),
        "git_revision": record.get("git_revision"),
        "data": data,
        "tokenizer_file": record.get("tokenizer_file"),
        "stages": stages,
        "wall_minutes": sum(s["seconds"] or 0 for s in stages) / 60.0,
        "bench": json.loads(Path(args.bench).read_text()) if args.bench else None,
    }
    ASSETS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(final, ASSETS / "moro_tiny.ckpt")
    (ASSETS / "moro_tiny.json").write_text(json.dumps(out, indent=1) + "\n")
    size = (ASSETS / "moro_tiny.ckpt").stat().st_size / 1e6
    print(f"shipped {ASSETS / 'moro_tiny.ckpt'} ({size:.1f} MB), record {ASSETS / 'moro_tiny.json'}")


if __name__ == "__main__":
    main()
