"""Reader of the synthetic occlusion world's files (written by ``moro synth`` / :mod:`moro.synth.writer`).

On-disk format ``moro-synth``, version :data:`FORMAT_VERSION`::

    <out>/                        e.g. OUT/train, OUT/val, OUT/bench (the --out of `moro synth`)
      split.json                  manifest written when the whole split is done (sequence names, settings)
      <seq>/                      train / val: s00000, s00001, ...
      occ/<seq>/, clean/<seq>/    bench: the occluded half and the clean half
        video.mp4                 H.264 RGB frames (or frames/000000.png ... with --png)
        labels.npz                per-frame labels (table below), plain numpy, no pickles
        meta.json                 format, version, seeds, moro version, motion segments, camera,
                                  occluder summary, file sizes and sha256, then "complete": true

Atomicity: a sequence is written into ``<seq>.tmp-XXXX/`` and renamed to ``<seq>/`` once
``meta.json`` (written last, atomically, ending with ``"complete": true``) is in place. Readers
ignore ``*.tmp-*`` folders and never accept a folder without a complete ``meta.json`` whose
recorded file sizes match the files (:class:`IncompleteSequenceError`, :class:`CorruptFileError`,
:class:`ForeignFolderError`, each naming the wrong file).

``labels.npz`` (t = frames, v = mesh vertices; metres, radians, pixels; camera = OpenCV; world =
Y up, ground y = 0; float32 unless said; joint orders ``JOINTS22`` and ``COCO17``):

======================== =============== =================================================================
key                      shape           meaning
======================== =============== =================================================================
format_version           ()              int, :data:`FORMAT_VERSION`
fps                      ()              float64 frames per second (30)
image_size               (2,)            int64 (width, height) pixels
K                        (3, 3)          float64 intrinsics, pixels (static camera)
T_w2c                    (4, 4)          float64 world -> camera, ``x_cam = R x_world + t``
frame_ids                (t,)            int64 0 .. t-1
body_pose                (t, 35, 3, 3)   Anny parent-relative joint rotations (local pose)
betas, phenotypes        (136,), (6,)    Anny shape coefficients and the 6 phenotype sliders
root_rot_world           (t, 3, 3)       root orientation in the world
root_trans_world         (t, 3)          root joint position in the world
root_rot_cam             (t, 3, 3)       ``R_w2c @ root_rot_world``
root_trans_cam           (t, 3)          ``R_w2c @ root_trans_world + t_w2c``
joints_world, joints_cam (t, 22, 3)      the 22 scoring joints (Anny's SMPL-order regressor)
coco_world, coco_cam     (t, 17, 3)      COCO keypoints
kp2d, coco2d             (t, 22|17, 2)   projections of the camera joints with K (may lie outside)
visibility, in_image     (t, 22)         bool; visible = in the image and not hidden by an occluder
coco_visibility,         (t, 17)         bool, the same for COCO keypoints
coco_in_image
vertex_visibility_packed (t, ceil(v/8))  uint8 per-vertex visibility, ``np.packbits(axis=-1)``
box_gt                   (t, 3)          (cx, cy, s): square around all projected 22 joints, x1.2, side 200 s
box_det                  (t, 3)          detector-like box: visible keypoints, jittered, sometimes too tight
box_det_tight            (t,)            bool, frames whose detector box was made too tight
contacts                 (t, 4)          bool foot contact of L ankle, L foot, R ankle, R foot (< 0.3 m/s)
feet_world, feet_cam     (t, 4, 3)       foot-sliding vertices (L heel, L toe, R heel, R toe)
foot_vertex_ids          (4,)            int64 their vertex ids in the topology
num_vertices             ()              int64 v
motion_label             (t,)            int16 index into motion_types
motion_types             (m,)            str vocabulary of motion types
vertices_cam             (t, v, 3)       optional (``--save-vertices``): the mesh, camera frame
======================== =============== =================================================================

Usage::

    ds = SynthDataset("OUT/bench")                     # every complete sequence, sorted by name
    seq = ds["occ/s00000"]                              # or ds[0]
    s = seq.sample(10, image=True)                      # moro.data.schema.Sample
    c = seq.clip(0, 16)                                 # Clip, frames streamed from the mp4
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .schema import BodyParams, Clip, Sample
from .video import FRAMES_DIR, VIDEO_FILE, read_frames

log = logging.getLogger(__name__)

__all__ = [
    "FORMAT", "FORMAT_VERSION", "META_FILE", "LABELS_FILE", "SPLIT_FILE", "TMP_MARK", "LABEL_KEYS",
    "SynthFormatError", "IncompleteSequenceError", "CorruptFileError", "ForeignFolderError",
    "read_meta", "file_record", "SynthSequence", "SynthDataset", "find_sequences",
]

FORMAT = "moro-synth"
FORMAT_VERSION = 1
META_FILE = "meta.json"
LABELS_FILE = "labels.npz"
SPLIT_FILE = "split.json"
TMP_MARK = ".tmp-"  # <seq>.tmp-XXXX: a sequence being written (or a crashed write)

LABEL_KEYS: dict[str, tuple] = {
    "format_version": (), "fps": (), "image_size": (2,), "K": (3, 3), "T_w2c": (4, 4), "frame_ids": ("t",),
    "body_pose": ("t", None, 3, 3), "betas": (None,), "phenotypes": (6,), "root_rot_world": ("t", 3, 3),
    "root_trans_world": ("t", 3), "root_rot_cam": ("t", 3, 3), "root_trans_cam": ("t", 3),
    "joints_world": ("t", 22, 3), "joints_cam": ("t", 22, 3), "coco_world": ("t", 17, 3), "coco_cam": ("t", 17, 3),
    "kp2d": ("t", 22, 2), "coco2d": ("t", 17, 2), "visibility": ("t", 22), "in_image": ("t", 22),
    "coco_visibility": ("t", 17), "coco_in_image": ("t", 17), "vertex_visibility_packed": ("t", "p"),
    "box_gt": ("t", 3), "box_det": ("t", 3), "box_det_tight": ("t",), "contacts": ("t", 4),
    "feet_world": ("t", 4, 3), "feet_cam": ("t", 4, 3), "foot_vertex_ids": (4,), "num_vertices": (),
    "motion_label": ("t",), "motion_types": (None,),
}
"""Required keys of ``labels.npz`` and their shapes ("t" frames, "p" packed vertex bytes, None any)."""
OPTIONAL_KEYS: dict[str, tuple] = {"vertices_cam": ("t", "v", 3)}


class SynthFormatError(ValueError):
    """A synthetic-world folder or file is not what the format says (message: the file and the fix)."""


class IncompleteSequenceError(SynthFormatError):
    """A sequence (or split) was not completely written: a crash or a run still in progress."""


class CorruptFileError(SynthFormatError):
    """A file of a complete sequence was changed or cut after writing (size / checksum mismatch)."""


class ForeignFolderError(SynthFormatError):
    """The folder is not a moro synthetic sequence or split (or of another format version)."""


def file_record(path: str | os.PathLike, checksum: bool = True) -> dict:
    """``{"bytes": size, "sha256": hex}`` of a file, or of every file in a folder (sorted, summed)."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256()
    size = 0
    for p in files:
        size += p.stat().st_size
        if checksum:
            h.update(p.relative_to(path).as_posix().encode() if path.is_dir() else b"")
            with open(p, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return {"bytes": size, "sha256": h.hexdigest()} if checksum else {"bytes": size}


def _looks_like_sequence(folder: Path) -> bool:
    return any((folder / n).exists() for n in (META_FILE, LABELS_FILE, VIDEO_FILE, FRAMES_DIR))


def read_meta(folder: str | os.PathLike) -> dict:
    """Read and check ``<folder>/meta.json`` of one sequence.

    Raises:
        IncompleteSequenceError: no meta.json next to other sequence files, unreadable JSON, or
            ``"complete"`` not true (a crashed or unfinished write).
        ForeignFolderError: not a sequence folder, or another format / version.
    """
    folder = Path(folder)
    meta_path = folder / META_FILE
    if not folder.is_dir():
        raise FileNotFoundError(f"synthetic sequence folder {folder} not found")
    if TMP_MARK in folder.name:
        raise IncompleteSequenceError(f"{folder}: a sequence still being written (or a crashed write, '{TMP_MARK}' in the "
                                      f"name); rerun `moro synth` with the same arguments to finish it")
    if not meta_path.is_file():
        if _looks_like_sequence(folder):
            raise IncompleteSequenceError(f"{meta_path} missing: the sequence was not completely written; delete {folder} "
                                          f"and rerun `moro synth` with the same arguments")
        raise ForeignFolderError(f"{folder}: no {META_FILE}; not a moro synthetic sequence (expected {META_FILE}, "
                                 f"{LABELS_FILE} and {VIDEO_FILE} written by `moro synth`)")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise IncompleteSequenceError(f"{meta_path}: not valid JSON ({e}); the sequence is damaged - delete {folder} and "
                                      f"rerun `moro synth`") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ForeignFolderError(f"{meta_path}: format {got!r}, not {FORMAT!r}; this folder was not written by `moro synth`")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ForeignFolderError(f"{meta_path}: format_version {meta.get('format_version')!r}, this moro reads "
                                 f"{FORMAT_VERSION}; regenerate the data with this moro's `moro synth`")
    if meta.get("complete") is not True:
        raise IncompleteSequenceError(f"{meta_path}: 'complete' is not true; the sequence was not completely written - "
                                      f"delete {folder} and rerun `moro synth`")
    return meta


def _check_labels(data: dict[str, np.ndarray], path: Path, t: int) -> None:
    missing = [k for k in LABEL_KEYS if k not in data]
    if missing:
        raise SynthFormatError(f"{path}: missing key(s) {missing}; regenerate the sequence with `moro synth`")
    sizes = {"t": t, "p": None, "v": int(data["num_vertices"])}
    sizes["p"] = (sizes["v"] + 7) // 8
    for key, want in {**LABEL_KEYS, **{k: v for k, v in OPTIONAL_KEYS.items() if k in data}}.items():
        shape = data[key].shape
        expect = tuple(sizes.get(w, w) if isinstance(w, str) else w for w in want)
        if len(shape) != len(expect) or any(e is not None and e != s for e, s in zip(expect, shape)):
            raise SynthFormatError(f"{path}: {key} has shape {shape}, expected {expect} (t = {t} frames from meta.json); "
                                   f"the file is damaged or from another generator - regenerate the sequence")
    if int(data["format_version"]) != FORMAT_VERSION:
        raise ForeignFolderError(f"{path}: format_version {int(data['format_version'])}, expected {FORMAT_VERSION}")


class SynthSequence:
    """One complete sequence folder (checked on open; labels loaded on first use).

    Args:
        folder: the sequence folder (``<out>/<seq>``).
        name: its name inside the split (default: the folder name).
        verify: also check the files' sha256 against meta.json (reads every byte).
    """

    def __init__(self, folder: str | os.PathLike, name: str | None = None, verify: bool = False):
        self.folder = Path(folder)
        self.name = name or self.folder.name
        self.meta = read_meta(self.folder)
        for fname, rec in self.meta.get("files", {}).items():
            p = self.folder / fname
            if not p.exists():
                raise IncompleteSequenceError(f"{p} missing although {self.folder / META_FILE} lists it; regenerate the sequence")
            got = file_record(p, checksum=verify)
            if got["bytes"] != rec["bytes"] or (verify and got["sha256"] != rec["sha256"]):
                what = "size" if got["bytes"] != rec["bytes"] else "sha256"
                raise CorruptFileError(f"{p}: {what} differs from {self.folder / META_FILE} (bytes {got['bytes']} vs "
                                       f"{rec['bytes']}); the file was truncated or changed - regenerate the sequence")
        if LABELS_FILE not in self.meta.get("files", {}):
            raise SynthFormatError(f"{self.folder / META_FILE}: lists no {LABELS_FILE}; regenerate the sequence")
        self.num_frames = int(self.meta["num_frames"])
        self.fps = float(self.meta["fps"])
        self.image_size = tuple(int(x) for x in self.meta["image_size"])
        self.video_path = self.folder / self.meta["frames"]
        self._labels: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.num_frames

    def __repr__(self) -> str:
        return f"SynthSequence({self.name!r}, {self.num_frames} frames, {self.image_size[0]}x{self.image_size[1]})"

    @property
    def labels(self) -> dict[str, np.ndarray]:
        """Every array of ``labels.npz`` (checked against the format table)."""
        if self._labels is None:
            path = self.folder / LABELS_FILE
            try:
                with np.load(path, allow_pickle=False) as z:
                    data = {k: np.array(z[k]) for k in z.files}
            except (ValueError, OSError, EOFError) as e:
                raise CorruptFileError(f"{path}: not a readable .npz ({e}); regenerate the sequence") from e
            _check_labels(data, path, self.num_frames)
            self._labels = data
        return self._labels

    def vertex_visibility(self, frames=slice(None)) -> np.ndarray:
        """Per-vertex visibility (t, v) bool of ``frames`` (an int, slice or index array)."""
        lab = self.labels
        packed = lab["vertex_visibility_packed"][frames]
        return np.unpackbits(packed, axis=-1, count=int(lab["num_vertices"])).astype(bool)

    def _fields(self, frames, vertex_visibility: bool) -> dict:
        lab = self.labels
        body = BodyParams(
            model=f"{self.meta['body']['model']}:{self.meta['body']['topology']}", body_pose=lab["body_pose"][frames],
            betas=lab["betas"], root_rot_world=lab["root_rot_world"][frames], root_trans_world=lab["root_trans_world"][frames],
            root_rot_cam=lab["root_rot_cam"][frames], root_trans_cam=lab["root_trans_cam"][frames], phenotypes=lab["phenotypes"],
        )
        per_frame = ("joints_cam", "joints_world", "kp2d", "box_gt", "coco_cam", "coco_world", "coco2d", "visibility",
                     "in_image", "coco_visibility", "coco_in_image", "box_det", "contacts", "feet_world", "feet_cam")
        out = {k: lab[k][frames] for k in per_frame}
        out["vertices_cam"] = lab["vertices_cam"][frames] if "vertices_cam" in lab else None
        out["vertex_visibility"] = self.vertex_visibility(frames) if vertex_visibility else None
        labels = lab["motion_types"][lab["motion_label"][frames]]
        out["motion_label"] = str(labels) if np.ndim(labels) == 0 else labels.astype(str)
        return dict(dataset="synth", sequence=self.name, fps=self.fps, image_size=self.image_size, K=lab["K"],
                    T_w2c=lab["T_w2c"], body=body, **out)

    def _check_range(self, start: int, length: int) -> None:
        if not (0 <= start and length >= 1 and start + length <= self.num_frames):
            raise IndexError(f"{self.name}: frames {start}..{start + length - 1} outside 0..{self.num_frames - 1}")

    def frames(self, start: int = 0, count: int | None = None) -> Iterator[np.ndarray]:
        """Stream decoded (H, W, 3) uint8 RGB frames ``start .. start + count - 1`` (default: to the end)."""
        count = self.num_frames - start if count is None else count
        self._check_range(start, count)
        return read_frames(self.video_path, start, count, self.fps)

    def sample(self, i: int, image: bool = False, vertex_visibility: bool = False) -> Sample:
        """Frame ``i`` as a :class:`~moro.data.schema.Sample` (decoding its image when ``image``)."""
        self._check_range(i, 1)
        img = next(iter(self.frames(i, 1))) if image else None
        return Sample(**self._fields(i, vertex_visibility), frame_id=i, image=img).validate()

    def clip(self, start: int, length: int, images: bool = True, vertex_visibility: bool = False) -> Clip:
        """Frames ``start .. start + length - 1`` as a :class:`~moro.data.schema.Clip`; the images
        are streamed from the video in one pass (decoding from the keyframe before ``start``)."""
        self._check_range(start, length)
        sl = slice(start, start + length)
        imgs = np.stack(list(self.frames(start, length))) if images else None
        return Clip(**self._fields(sl, vertex_visibility), frame_ids=np.arange(start, start + length, dtype=np.int64),
                    images=imgs).validate()

    def clips(self, length: int, stride: int | None = None, images: bool = True) -> Iterator[Clip]:
        """Consecutive clips of ``length`` frames every ``stride`` (default ``length``) frames."""
        stride = stride or length
        for start in range(0, self.num_frames - length + 1, stride):
            yield self.clip(start, length, images=images)


def find_sequences(root: str | os.PathLike, strict: bool = True) -> list[tuple[str, Path]]:
    """Complete sequence folders under ``root`` as sorted ``(name, folder)`` pairs.

    ``root`` is a sequence folder, a split folder (``<out>``) or a bench half (``<out>/occ``);
    sequences are searched two levels deep; ``*.tmp-*`` folders (writes in progress or crashed)
    are skipped. A folder that looks like a sequence but is incomplete or damaged raises
    (``strict``) or is skipped with a warning. When ``root`` holds ``split.json``, it defines the
    split: every sequence it lists must be present, folders it does not list are ignored.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"synthetic data folder {root} not found; create it with `moro synth --out {root}`")
    if (root / META_FILE).exists() or _looks_like_sequence(root):
        read_meta(root)
        return [(root.name, root)]
    found: list[tuple[str, Path]] = []

    def walk(folder: Path, prefix: str, depth: int) -> None:
        for d in sorted(p for p in folder.iterdir() if p.is_dir()):
            if TMP_MARK in d.name:
                log.info("skipping %s: a sequence being written or a crashed write", d)
                continue
            if _looks_like_sequence(d):
                try:
                    read_meta(d)
                except SynthFormatError:
                    if strict:
                        raise
                    log.warning("skipping incomplete or foreign sequence folder %s", d)
                    continue
                found.append((prefix + d.name, d))
            elif depth > 1:
                walk(d, prefix + d.name + "/", depth - 1)

    walk(root, "", 2)
    manifest = root / SPLIT_FILE
    if manifest.is_file():
        try:
            listed = json.loads(manifest.read_text())["sequences"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise SynthFormatError(f"{manifest}: unreadable split manifest ({e}); delete it and rerun `moro synth`") from e
        missing = sorted(set(listed) - {n for n, _ in found})
        if missing and strict:
            raise IncompleteSequenceError(f"{manifest} lists {len(missing)} sequence(s) missing under {root} (first: "
                                          f"{missing[0]!r}); rerun `moro synth` with the same arguments")
        extra = [n for n, _ in found if n not in set(listed)]
        if extra:  # left over from a larger earlier run: the manifest defines the split
            log.info("%s: %d sequence folder(s) not in %s ignored (first: %s)", root, len(extra), SPLIT_FILE, extra[0])
            found = [(n, p) for n, p in found if n in set(listed)]
    if not found:
        raise ForeignFolderError(f"{root}: no moro synthetic sequence folders (<seq>/{META_FILE}) found two levels deep; "
                                 f"pass the --out folder of `moro synth`")
    return sorted(found)


class SynthDataset:
    """Every complete sequence under ``root`` (see :func:`find_sequences`), with frame-level access.

    ``len(ds)`` = sequences; ``ds[k]`` / ``ds["occ/s00000"]`` = :class:`SynthSequence`;
    ``ds.num_samples`` / ``ds.sample(n)`` index all frames of all sequences in order.
    Opened sequences are kept in a small LRU cache (``cache`` sequences).
    """

    def __init__(self, root: str | os.PathLike, strict: bool = True, verify: bool = False, cache: int = 8):
        self.root = Path(root)
        self.entries = find_sequences(self.root, strict=strict)
        self.names = [n for n, _ in self.entries]
        self.verify, self._cache_size = verify, max(1, cache)
        self._cache: OrderedDict[str, SynthSequence] = OrderedDict()
        self._lengths = np.array([int(json.loads((p / META_FILE).read_text())["num_frames"]) for _, p in self.entries])
        self._offsets = np.concatenate([[0], np.cumsum(self._lengths)])

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[SynthSequence]:
        for k in range(len(self)):
            yield self[k]

    def __getitem__(self, key: int | str) -> SynthSequence:
        if isinstance(key, str):
            if key not in self.names:
                raise KeyError(f"no sequence {key!r} under {self.root}; sequences: {self.names[:5]}...")
            key = self.names.index(key)
        name, folder = self.entries[key]
        if name not in self._cache:
            self._cache[name] = SynthSequence(folder, name, verify=self.verify)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(name)
        return self._cache[name]

    @property
    def num_samples(self) -> int:
        return int(self._offsets[-1])

    def sample(self, n: int, image: bool = False) -> Sample:
        """Frame ``n`` of the concatenation of all sequences (in name order)."""
        if not 0 <= n < self.num_samples:
            raise IndexError(f"sample {n} outside 0..{self.num_samples - 1}")
        k = int(np.searchsorted(self._offsets, n, side="right") - 1)
        return self[k].sample(n - int(self._offsets[k]), image=image)
