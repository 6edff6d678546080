"""Pack a training cache small enough to travel (to a lent GPU machine), and unpack it there.

A training cache (moro.training.synth_data) holds per sequence ``<seq>.npz`` (labels, tokens) and
``<seq>.crops.npy`` ((t, S, S, 3) uint8, 12 MB for 160 frames at S = 160). ``pack`` keeps the first
N sequences, compresses the labels (savez_compressed) and re-encodes the crops as MPEG-4 video
(OpenCV's ``mp4v``: ~180 kB per 160-frame sequence, mean absolute error ~3 grey levels of 255);
``unpack`` rebuilds a cache folder that ``moro train STAGE --data`` accepts as it is. The manifest
records that the crops went through this lossy round trip.

    python scripts/cache_transport.py pack ~/.cache/moro/train-cache/train-<key> packed/ --sequences 80
    python scripts/cache_transport.py unpack packed/ /tmp/cache
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

MANIFEST = "manifest.json"


def pack(cache: Path, out: Path, sequences: int | None) -> None:
    man = json.loads((cache / MANIFEST).read_text())
    names = man["sequences"][:sequences] if sequences else man["sequences"]
    out.mkdir(parents=True, exist_ok=True)
    for n in names:
        stem = n.replace("/", "__")
        with np.load(cache / f"{stem}.npz") as d:
            np.savez_compressed(out / f"{stem}.npz", **dict(d.items()))
        crops = np.load(cache / f"{stem}.crops.npy", mmap_mode="r")
        s = crops.shape[1]
        w = cv2.VideoWriter(str(out / f"{stem}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30, (s, s))
        for f in crops:
            w.write(np.ascontiguousarray(f[..., ::-1]))
        w.release()
    man = dict(man, sequences=names)
    man["settings"] = dict(man["settings"], sequences=len(names))
    man["transport"] = {"from": str(cache), "crops": "mp4v (lossy)", "sequences": len(names)}
    (out / MANIFEST).write_text(json.dumps(man, indent=1))
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"packed {len(names)} sequences into {out}: {size / 2**20:.1f} MiB")


def unpack(packed: Path, out: Path) -> None:
    man = json.loads((packed / MANIFEST).read_text())
    out.mkdir(parents=True, exist_ok=True)
    for n in man["sequences"]:
        stem = n.replace("/", "__")
        (out / f"{stem}.npz").write_bytes((packed / f"{stem}.npz").read_bytes())
        cap = cv2.VideoCapture(str(packed / f"{stem}.mp4"))
        frames = []
        while True:
            ok, f = cap.read()
            if not ok:
                break
            frames.append(f[..., ::-1])
        with np.load(out / f"{stem}.npz") as d:
            t = len(d["ids"])
        if len(frames) != t:
            sys.exit(f"{packed / stem}.mp4: decoded {len(frames)} frames, labels have {t}")
        np.save(out / f"{stem}.crops.npy", np.stack(frames))
    (out / MANIFEST).write_text(json.dumps(man, indent=1))
    print(f"unpacked {len(man['sequences'])} sequences into {out}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack")
    a.add_argument("cache", type=Path)
    a.add_argument("out", type=Path)
    a.add_argument("--sequences", type=int, default=None)
    b = sub.add_parser("unpack")
    b.add_argument("packed", type=Path)
    b.add_argument("out", type=Path)
    args = p.parse_args()
    if args.cmd == "pack":
        pack(args.cache, args.out, args.sequences)
    else:
        unpack(args.packed, args.out)


if __name__ == "__main__":
    main()
