"""On-disk per-frame arrays and the cache of intermediate results, so memory never grows with video length.

**FrameStore**: one array of shape ``(t, *frame_shape)`` kept on disk as ``<name>.bin`` (raw
C-order bytes, appended frame block by frame block) plus ``<name>.json`` (dtype, frame shape,
frame count), the JSON written last and atomically: a store without it is incomplete and never
read. Slices are read with ``np.fromfile`` at an offset (ordinary file reads: the page cache
holds the data, not the process, unlike ``np.memmap`` whose touched pages count as resident
memory), so reading or writing any number of frames costs the memory of one slice.

**Cache entries**: ``<cache root>/infer/<kind>-<key>/`` folders (cache root: ``$MORO_CACHE_DIR``,
see :mod:`moro.paths`) holding stores and small ``.npz`` files, written in a temporary folder and
renamed into place with ``complete.json`` inside (:class:`CacheEntry`).
Keys are short SHA-256 digests of everything the result depends on (:func:`digest`), e.g. the
video's content digest and the detector settings for boxes, or the boxes and backbone weights for
backbone features, so a re-run with other decoding settings reuses them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from moro.paths import atomic_write, cache_dir

__all__ = ["FrameStore", "FrameStoreWriter", "digest", "file_digest", "tensor_digest", "CacheEntry"]

CHUNK_BYTES = 1 << 20  # file hashing block


def digest(*parts) -> str:
    """16-hex SHA-256 of the JSON form of ``parts`` (sorted keys; numbers, strings, lists, dicts)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK_BYTES):
            h.update(block)
    return h.hexdigest()


def tensor_digest(state: dict) -> str:
    """16-hex digest of a state dict's names, shapes, dtypes and values (e.g. backbone weights)."""
    h = hashlib.sha256()
    for name in sorted(state):
        v = state[name].detach().cpu().contiguous()
        h.update(f"{name}:{tuple(v.shape)}:{v.dtype}".encode())
        h.update((v.float() if v.dtype == torch.bfloat16 else v).numpy().tobytes())
    return h.hexdigest()[:16]


class FrameStoreWriter:
    """Append frames to a new store; :meth:`close` publishes it (see the module docstring)."""

    def __init__(self, folder: Path, name: str, frame_shape: tuple[int, ...], dtype) -> None:
        self.folder, self.name = Path(folder), name
        self.frame_shape, self.dtype = tuple(int(s) for s in frame_shape), np.dtype(dtype)
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{name}.json").unlink(missing_ok=True)
        self._file = open(self.folder / f"{name}.bin", "wb")
        self.count = 0

    def append(self, frames: np.ndarray) -> None:
        """Append (k, *frame_shape) frames (cast to the store's dtype)."""
        a = np.ascontiguousarray(frames, dtype=self.dtype)
        if a.shape[1:] != self.frame_shape:
            raise ValueError(f"store {self.name}: frames must be (k, {self.frame_shape}), got {a.shape}")
        self._file.write(a.tobytes())
        self.count += len(a)

    def close(self) -> "FrameStore":
        self._file.close()
        meta = {"dtype": self.dtype.str, "frame_shape": list(self.frame_shape), "count": self.count}
        with atomic_write(self.folder / f"{self.name}.json") as tmp:
            tmp.write_text(json.dumps(meta))
        return FrameStore(self.folder, self.name)

    def __enter__(self) -> "FrameStoreWriter":
        return self

    def __exit__(self, exc_type, *rest) -> None:
        if exc_type is None:
            self.close()
        else:
            self._file.close()


class FrameStore:
    """A complete on-disk (t, *frame_shape) array; ``store[a:b]`` reads frames a..b-1 into memory."""

    def __init__(self, folder: str | os.PathLike, name: str) -> None:
        self.folder, self.name = Path(folder), name
        meta_path = self.folder / f"{name}.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"frame store {self.folder / name} is incomplete or missing")
        meta = json.loads(meta_path.read_text())
        self.dtype = np.dtype(meta["dtype"])
        self.frame_shape = tuple(meta["frame_shape"])
        self.count = int(meta["count"])
        self.path = self.folder / f"{name}.bin"
        self._frame_bytes = int(np.prod(self.frame_shape, dtype=np.int64)) * self.dtype.itemsize
        if self.path.stat().st_size != self.count * self._frame_bytes:
            raise FileNotFoundError(f"frame store {self.path} has the wrong size: it was not written completely")

    @staticmethod
    def create(folder: str | os.PathLike, name: str, frame_shape: tuple[int, ...], dtype) -> FrameStoreWriter:
        return FrameStoreWriter(Path(folder), name, frame_shape, dtype)

    @staticmethod
    def exists(folder: str | os.PathLike, name: str) -> bool:
        return (Path(folder) / f"{name}.json").is_file()

    def __len__(self) -> int:
        return self.count

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.count, *self.frame_shape)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start .. stop - 1`` as a new (stop - start, *frame_shape) array."""
        start, stop = max(0, int(start)), min(self.count, int(stop))
        n = max(0, stop - start)
        with open(self.path, "rb") as f:
            a = np.fromfile(f, dtype=self.dtype, count=n * self._frame_bytes // self.dtype.itemsize,
                            offset=start * self._frame_bytes)
        return a.reshape(n, *self.frame_shape)

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, slice) and key.step in (None, 1):
            start, stop, _ = key.indices(self.count)
            return self.read(start, stop)
        if isinstance(key, (int, np.integer)):
            i = int(key) + (self.count if key < 0 else 0)
            if not 0 <= i < self.count:
                raise IndexError(f"frame {key} outside a store of {self.count} frames")
            return self.read(i, i + 1)[0]
        raise TypeError("FrameStore supports store[i] and store[a:b] only")

    def chunks(self, size: int):
        """Yield ``(start, frames)`` blocks of at most ``size`` frames, in order."""
        for start in range(0, self.count, size):
            yield start, self.read(start, start + size)


class CacheEntry:
    """A keyed cache folder ``<root>/<kind>-<key>/``, published atomically.

    Usage::

        entry = CacheEntry(root, "features", key)
        if not entry.complete:
            folder = entry.begin()         # a private temporary folder beside the entry
            ... write files into folder ...
            entry.finish({"frames": t})    # complete.json, then the folder is renamed into place
        ... read from entry.path ...

    Two processes filling the same entry do not disturb each other: each writes its own
    temporary folder and the first to finish publishes it (the other's copy is discarded).
    """

    def __init__(self, root: str | os.PathLike | None, kind: str, key: str) -> None:
        base = Path(root) if root is not None else cache_dir("infer")
        self.path = base / f"{kind}-{key}"
        self.kind, self.key = kind, key
        self.work: Path | None = None

    @property
    def complete(self) -> bool:
        return (self.path / "complete.json").is_file()

    @property
    def info(self) -> dict:
        return json.loads((self.path / "complete.json").read_text())

    def begin(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.tmp-", dir=self.path.parent))
        return self.work

    def finish(self, info: dict | None = None) -> None:
        if self.work is None:
            raise RuntimeError("CacheEntry.finish() without begin()")
        (self.work / "complete.json").write_text(json.dumps({"kind": self.kind, "key": self.key, **(info or {})}, indent=1))
        if self.complete:  # another process published it first
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            shutil.rmtree(self.path, ignore_errors=True)  # an incomplete leftover
            os.replace(self.work, self.path)
        self.work = None

    def abort(self) -> None:
        if self.work is not None:
            shutil.rmtree(self.work, ignore_errors=True)
            self.work = None
