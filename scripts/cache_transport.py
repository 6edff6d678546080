"""Pack a training cache small enough to travel (to a lent GPU machine), and unpack it there.

A training cache (moro.training.synth_data) holds per sequence ``<seq>.npz`` (labels, tokens) and
``<seq>.crops.npy`` ((t, S, S, 3) uint8, 12 MB for 160 frames at S = 160). ``pack`` keeps the first
N sequences, compresses the labels (savez_compressed; the per-joint rotation matrices ``body_pose``
as float16, at most 5e-4 off) and re-encodes the crops as H.264 video (PyAV's libx264, CRF 23,
4:4:4: ~51 kB per 160-frame sequence, mean absolute error 2.3 grey levels of 255; ``--codec mp4v``
writes OpenCV's MPEG-4 instead: ~180 kB, error ~3); ``unpack`` (OpenCV only, which reads both)
rebuilds a cache folder that ``moro train STAGE --data`` accepts as it is. All 256 sequences of the
synthetic train split pack into ~31 MiB. The manifest records that the crops and ``body_pose``
went through this lossy round trip.

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


HALF = ("body_pose",)  # label arrays stored as float16 in transit (rotation matrices, |x| <= 1)


def _write_h264(path: Path, crops: np.ndarray, crf: int) -> None:
    import av  # PyAV wheels carry libx264; only the packing machine needs it

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width = s.height = crops.shape[1]
        s.pix_fmt = "yuv444p"
        s.options = {"crf": str(crf), "preset": "medium"}
        for f in crops:
            for pkt in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def _write_mp4v(path: Path, crops: np.ndarray) -> None:
    s = crops.shape[1]
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (s, s))
    for f in crops:
        w.write(np.ascontiguousarray(f[..., ::-1]))
    w.release()


def pack(cache: Path, out: Path, sequences: int | None, codec: str = "h264", crf: int = 23) -> None:
    man = json.loads((cache / MANIFEST).read_text())
    names = man["sequences"][:sequences] if sequences else man["sequences"]
    out.mkdir(parents=True, exist_ok=True)
    for n in names:
        stem = n.replace("/", "__")
        with np.load(cache / f"{stem}.npz") as d:
            arrays = {k: (v.astype(np.float16) if k in HALF else v) for k, v in d.items()}
        np.savez_compressed(out / f"{stem}.npz", **arrays)
        crops = np.load(cache / f"{stem}.crops.npy", mmap_mode="r")
        if codec == "h264":
            _write_h264(out / f"{stem}.mp4", crops, crf)
        else:
            _write_mp4v(out / f"{stem}.mp4", crops)
    man = dict(man, sequences=names)
    man["settings"] = dict(man["settings"], sequences=len(names))
    crops_how = f"h264 crf {crf} yuv444p (lossy)" if codec == "h264" else "mp4v (lossy)"
    man["transport"] = {"from": str(cache), "crops": crops_how, "float16": list(HALF), "sequences": len(names)}
    (out / MANIFEST).write_text(json.dumps(man, indent=1))
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"packed {len(names)} sequences into {out}: {size / 2**20:.1f} MiB")


def _unpack_one(packed: Path, out: Path, stem: str) -> None:
    with np.load(packed / f"{stem}.npz") as d:
        arrays = {k: (v.astype(np.float32) if v.dtype == np.float16 else v) for k, v in d.items()}
    cap = cv2.VideoCapture(str(packed / f"{stem}.mp4"))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f[..., ::-1])
    t = len(arrays["ids"])
    if len(frames) != t:
        raise RuntimeError(f"{packed / stem}.mp4: decoded {len(frames)} frames, labels have {t} "
                           "(this OpenCV build may lack the codec; pack again with --codec mp4v)")
    np.savez(out / f"{stem}.npz", **arrays)
    np.save(out / f"{stem}.crops.npy", np.stack(frames))


def unpack(packed: Path, out: Path, workers: int = 1) -> None:
    from concurrent.futures import ThreadPoolExecutor

    man = json.loads((packed / MANIFEST).read_text())
    out.mkdir(parents=True, exist_ok=True)
    stems = [n.replace("/", "__") for n in man["sequences"]]
    try:
        with ThreadPoolExecutor(max(1, workers)) as pool:  # OpenCV and numpy I/O release the GIL
            list(pool.map(lambda s: _unpack_one(packed, out, s), stems))
    except RuntimeError as e:
        sys.exit(str(e))
    (out / MANIFEST).write_text(json.dumps(man, indent=1))
    print(f"unpacked {len(stems)} sequences into {out}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack")
    a.add_argument("cache", type=Path)
    a.add_argument("out", type=Path)
    a.add_argument("--sequences", type=int, default=None)
    a.add_argument("--codec", choices=("h264", "mp4v"), default="h264")
    a.add_argument("--crf", type=int, default=23, help="H.264 quality (lower: larger, closer)")
    b = sub.add_parser("unpack")
    b.add_argument("packed", type=Path)
    b.add_argument("out", type=Path)
    b.add_argument("--workers", type=int, default=1, help="threads decoding sequences in parallel")
    args = p.parse_args()
    if args.cmd == "pack":
        pack(args.cache, args.out, args.sequences, args.codec, args.crf)
    else:
        unpack(args.packed, args.out, args.workers)


if __name__ == "__main__":
    main()
