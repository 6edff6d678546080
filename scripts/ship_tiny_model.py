"""Copy a `moro train all --preset tiny` run's final model into the package with its record.

    .venv/bin/python scripts/ship_tiny_model.py RUN_DIR [--checkpoint FILE] [--bench accuracy.json]
        [--command "..."] [--head-command "..."] [--head-data "..."]

Writes ``src/moro/assets/moro_tiny.ckpt`` (the video_train model, or ``--checkpoint``: that model with a
visibility head from ``moro train visibility``) and ``src/moro/assets/moro_tiny.json``: the training
command, git revision, data (split folder, seeds, frames), per-stage steps / wall time / final and
validation losses, the visibility head's settings and fit record (from the checkpoint, with the
commands given), and the benchmark metrics given with ``--bench`` (``RESULTS/results/accuracy.json``
of ``moro bench accuracy``), so the shipped file always says where it came from. A run that
continued an earlier model holds only its own stages: the others are copied from the record being
replaced (``"from": "previous record"``).
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
    ap.add_argument("--checkpoint", default=None, help="file to ship (default RUN/video_train/model.ckpt)")
    ap.add_argument("--head-command", default=None, help="the `moro train visibility` command of its head")
    ap.add_argument("--head-data", default=None, help="the commands that made the head's data splits")
    args = ap.parse_args()
    run = Path(args.run)
    final = Path(args.checkpoint) if args.checkpoint else run / "video_train" / "model.ckpt"
    previous_path = ASSETS / "moro_tiny.json"
    previous = json.loads(previous_path.read_text()) if previous_path.is_file() else {}
    stages = []
    for stage in ("pose_pretrain", "motion_pretrain", "image_pretrain", "video_train"):
        if not (run / stage / "model.ckpt").is_file():
            old = [s for s in previous.get("stages", []) if s.get("stage") == stage]
            if not old:
                raise SystemExit(f"{run / stage / 'model.ckpt'} is missing and {previous_path} has no {stage} record")
            stages += [{**s, "from": "previous record"} for s in old]
            continue
        rec = torch.load(run / stage / "model.ckpt", map_location="cpu", weights_only=True, mmap=True)["training"]
        stages.append({k: rec.get(k) for k in ("stage", "steps_done", "steps_planned", "truncated", "seconds",
                                               "final_loss", "val", "git_revision", "command", "seed")})
    payload = torch.load(final, map_location="cpu", weights_only=False, mmap=True)
    record = payload["training"]
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
        "bench": bench_record(Path(args.bench)) if args.bench else None,
    }
    if previous and any(s.get("from") for s in stages):  # a continued run: keep the lineage of the weights it started from
        out["continued_from"] = {k: previous.get(k) for k in ("command", "git_revision", "data", "stages", "continued_from")
                                 if previous.get(k) is not None}
    if "visibility_head" in payload:
        h = payload["visibility_head"]
        out["visibility_head"] = {
            "what": "heading carry (moro.inference.heading): ridge head for the share of hidden joints on pooled "
                    "backbone tokens; tau and sigma picked on val by the occluded-joint error",
            "data_command": args.head_data, "command": args.head_command, "tau": float(h["tau"]),
            "sigma_frames": float(h["sigma"]), "backbone_digest": h["backbone"], "record": h.get("record")}
    ASSETS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(final, ASSETS / "moro_tiny.ckpt")
    (ASSETS / "moro_tiny.json").write_text(json.dumps(out, indent=1) + "\n")
    size = (ASSETS / "moro_tiny.ckpt").stat().st_size / 1e6
    print(f"shipped {ASSETS / 'moro_tiny.ckpt'} ({size:.1f} MB), record {ASSETS / 'moro_tiny.json'}")


def bench_record(path: Path) -> dict:
    """The shipped record's ``bench``: the headline ratios and the main rows of ``moro bench accuracy``'s
    ``accuracy.json`` (or a JSON already in that trimmed form)."""
    res = json.loads(path.read_text())
    if "halves" not in res:
        return res
    keep = ("pa_mpjpe", "mpjpe", "mpjpe_occ", "gmpjpe", "g_accel_error", "jitter", "foot_sliding")
    rows = {half: {row: {k: v for k, v in vals.items() if k in keep} for row, vals in h["rows"].items()
                   if row in ("moro", "per-frame", "mean pose", "moro averaged pose")} for half, h in res["halves"].items()}
    return {"command": res.get("command") or f"moro bench accuracy (results: {path})", "ratios": res["ratios"], "rows": rows}


if __name__ == "__main__":
    main()
