"""Training data from the synthetic occlusion world: a one-time crop + token cache, then batches per step.

**Cache** (:func:`prepare_synth_cache`, run automatically by ``moro train`` on first use): per
sequence of a ``moro synth`` split, every frame is cropped once around its ground-truth box
enlarged by ``context`` (default 1.25) at ``crop`` px (default 160; the tiny backbone sees 128-px
crops, so augmented crops are resampled at about the cache's own resolution), and the local mesh
``body(body_pose, betas)`` is tokenized by the frozen tokenizer (and its mirror image, for flips,
on every ``flip_every``-th frame). Files: ``<cache>/<seq>.crops.npy`` (t, S, S, 3) uint8 and
``<seq>.npz`` (labels below), written atomically; ``manifest.json`` is written last, so an
interrupted preparation resumes where it stopped.

**Batches** are a pure function of ``(seed, stage, rank, step)`` (a resumed run sees exactly the
batches of an uninterrupted one; ranks see different data):

* :meth:`SynthTrainData.motion_batch` — token ids, body parameters and world trajectories of
  ``t``-frame windows (``t = 1`` for single frames);
* :meth:`SynthTrainData.image_batch` — augmented crops (box from the detector-like or jittered
  ground-truth box, partial-body crop modes, in-plane rotation, horizontal flip, photometric
  jitter) with labels transformed exactly (rotation = camera roll about the optical axis, flip =
  mirror ``x -> -x`` of the camera frame with the left/right vertex permutation);
* :meth:`SynthTrainData.video_batch` — clips of crops around the detector-like boxes, with one
  partial-body crop mode per clip on 20-100 % of its frames (probability per clip).

Units: metres, radians, pixels (OpenCV conventions, ``docs/conventions.md``). Boxes ``(cx, cy, s)``
with side ``200 s`` px. Shape letters: b batch, t frames, n tokens, v vertices, S crop side.
"""

from __future__ import annotations

import json
import logging
import re
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from moro.paths import atomic_write

log = logging.getLogger(__name__)

__all__ = ["CACHE_VERSION", "CROP_MODES", "paint_occluder", "CacheSource", "prepare_cache", "prepare_synth_cache", "prepare_prepared_cache",
           "SynthTrainData", "parse_sources", "mirror_permutation", "TrainDataError"]

CACHE_VERSION = 1
MANIFEST = "manifest.json"

# Partial-body crop modes (TokenHMR style): JOINTS22 indices whose projections define the box.
CROP_MODES: dict[str, tuple[int, ...]] = {
    "hips": (0, 1, 2, 3),
    "shoulders": (12, 13, 14, 16, 17),
    "head": (12, 15),
    "torso": (0, 1, 2, 3, 6, 9, 12, 13, 14, 16, 17),
    "left_arm": (16, 18, 20),
    "right_arm": (17, 19, 21),
    "left_leg": (1, 4, 7, 10),
    "right_leg": (2, 5, 8, 11),
    "legs": (1, 2, 4, 5, 7, 8, 10, 11),
    "upper_body": (0, 3, 6, 9, 12, 15, 16, 17, 18, 19, 20, 21),
}
_STAGE_CODES = {"pose_pretrain": 1, "motion_pretrain": 2, "image_pretrain": 3, "video_train": 4, "val": 9}
_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255.0
_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255.0


class TrainDataError(ValueError):
    """Training data that cannot be used (message: the folder or file and the fix)."""


def mirror_permutation(rest_vertices: np.ndarray, tol: float = 1e-3) -> np.ndarray:
    """Left/right vertex correspondence of a symmetric mesh: (v, 3) rest vertices (body frame, left = +x) -> (v,) int.

    ``perm[i]`` is the vertex at ``x -> -x`` of vertex ``i``; raises if the mesh is not symmetric to ``tol`` metres.
    """
    from scipy.spatial import cKDTree

    d, perm = cKDTree(rest_vertices).query(rest_vertices * np.array([-1.0, 1.0, 1.0]))
    if d.max() > tol or not np.array_equal(perm[perm], np.arange(len(perm))):
        raise TrainDataError(f"the body mesh is not left/right symmetric (max mirror error {d.max() * 1000:.2f} mm); "
                             "disable flips (flip_prob=0)")
    return perm.astype(np.int64)


def _scale_offset(box: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Image -> crop map ``p = a u + o`` of boxes (..., 3) (moro.geometry.crop_affine, OpenCV pixel centres)."""
    a = size / (200.0 * box[..., 2])
    o = (size - 1) / 2.0 - a[..., None] * box[..., :2]
    return a, o


MIN_BOX_SCALE = 0.05  # boxes smaller than 10 px (a detector that found nothing) fall back to the ground-truth box


def _det_box(lab: dict, i: int) -> np.ndarray:
    """The detector-like box of frame i, or its ground-truth box when the detector box is empty / degenerate."""
    box = np.asarray(lab["box_det"][i], np.float64)
    if not np.isfinite(box).all() or box[2] < MIN_BOX_SCALE:
        box = np.asarray(lab["box_gt"][i], np.float64)
    return box


def _K(lab: dict, i: int) -> np.ndarray:
    """(3, 3) intrinsics of frame i: static cameras store one K, image collections one per frame."""
    K = np.asarray(lab["K"])
    return K[i] if K.ndim == 3 else K


def _tokenize(tokenizer, vertices: torch.Tensor, chunk: int = 256) -> np.ndarray:
    out = []
    with torch.no_grad():
        for i in range(0, len(vertices), chunk):
            out.append(tokenizer.encode(vertices[i:i + chunk])[0].to(torch.int16).numpy())
    return np.concatenate(out) if out else np.zeros((0, tokenizer.num_tokens), np.int16)


LABEL_KEYS = ("K", "image_size", "body_pose", "betas", "root_rot_cam", "root_trans_cam", "root_rot_world",
              "root_trans_world", "kp2d", "visibility", "box_gt", "box_det")


@dataclass
class CacheSource:
    """One sequence to cache: its labels (:data:`LABEL_KEYS`, numpy) and a frame iterator (None: motion only)."""

    name: str
    labels: dict
    frames: Callable[[], object] | None  # () -> iterator of (H, W, 3) uint8 frames


def _synth_sources(split_dir: Path, max_sequences: int | None) -> tuple[list[CacheSource], str]:
    from moro.data.synth import SynthDataset

    if not split_dir.is_dir():
        raise TrainDataError(f"training data folder {split_dir} does not exist; generate it with "
                             f"`moro synth --split train --out {split_dir}` or pass --data with an existing split")
    ds = list(SynthDataset(split_dir))[:max_sequences]
    if not ds:
        raise TrainDataError(f"{split_dir} holds no complete synthetic sequence; run `moro synth` into it first")
    return [CacheSource(q.name, _LazyLabels(q), (lambda q=q: q.frames(0, len(q)))) for q in ds], "synth"


class _LazyLabels(dict):
    """Labels of a synthetic sequence, read on first access (listing a split stays cheap)."""

    def __init__(self, seq) -> None:
        super().__init__()
        self.seq = seq

    def __missing__(self, key):
        self.update({k: v for k, v in self.seq.labels.items()})
        return dict.__getitem__(self, key)


def _prepared_sources(root: Path, split: str, max_sequences: int | None, body) -> tuple[list[CacheSource], str]:
    """Sequences of a ``moro prepare`` output (static-camera sequences; motion-only ones without images)."""
    from moro.data.prepared import PreparedDataset

    ds = PreparedDataset(root)
    names = (ds.split(split) or ds.names)[:max_sequences]
    out = []
    for name in names:
        seq = ds[name]
        model = str(seq.data["body_model"]) if "body_model" in seq.data else ""
        want = str(getattr(body, "name", ""))
        if not model:
            raise TrainDataError(f"{root}: {name} has no body parameters; it cannot supervise training")
        if re.split(r"[/:]", want)[0] != re.split(r"[/:]", model)[0]:
            raise TrainDataError(f"{root}: {name} holds {model} bodies but the tokenizer's body model is {want}; "
                                 "train the preset whose tokenizer fits this body model (paper: SMPL-X)")
        if seq.per_frame_camera:  # an image collection: single frames, one camera each; never used as clips
            out.append(_image_collection_source(seq, name, body))
            continue
        clip = seq.clip(0, len(seq))
        b = clip.body
        t = clip.num_frames
        lab = {"K": clip.K, "image_size": np.asarray(clip.image_size), "body_pose": b.body_pose, "betas": b.betas,
               "root_rot_cam": b.root_rot_cam, "root_trans_cam": b.root_trans_cam, "root_rot_world": b.root_rot_world,
               "root_trans_world": b.root_trans_world, "kp2d": clip.kp2d,
               "visibility": clip.visibility if clip.visibility is not None else np.ones((t, 22), bool),
               "box_gt": clip.box_gt, "box_det": clip.box_det if clip.box_det is not None else clip.box_gt}
        has_images = "image_files" in seq.data and seq.source_root is not None
        frames = (lambda seq=seq: iter(seq.clip(0, len(seq), images=True).images)) if has_images else None
        out.append(CacheSource(name, lab, frames))
    if not out:
        raise TrainDataError(f"{root}: no sequence in split {split!r}")
    return out, f"prepared:{ds.dataset}"


def _image_collection_source(seq, name: str, body) -> CacheSource:
    """A prepared image dataset (one camera per frame) as a non-temporal cache source (image stages, t = 1)."""
    samples = [seq.sample(i) for i in range(len(seq))]
    if any(sm.body is None for sm in samples):
        raise TrainDataError(f"{seq.path}: frames without body parameters cannot supervise training")
    st = lambda f: np.stack([f(sm) for sm in samples])  # noqa: E731
    lab = {"K": st(lambda sm: np.asarray(sm.K)), "image_size": np.asarray(samples[0].image_size),
           "body_pose": st(lambda sm: sm.body.body_pose), "betas": np.asarray(samples[0].body.betas),
           "betas_frames": st(lambda sm: np.asarray(sm.body.betas)),
           "root_rot_cam": st(lambda sm: sm.body.root_rot_cam), "root_trans_cam": st(lambda sm: sm.body.root_trans_cam),
           "root_rot_world": st(lambda sm: sm.body.root_rot_world),
           "root_trans_world": st(lambda sm: sm.body.root_trans_world), "kp2d": st(lambda sm: sm.kp2d),
           "visibility": st(lambda sm: sm.visibility if sm.visibility is not None else np.ones(22, bool)),
           "box_gt": st(lambda sm: sm.box_gt),
           "box_det": st(lambda sm: sm.box_det if sm.box_det is not None else sm.box_gt), "temporal": np.array(False)}
    frames = (lambda: (seq.sample(i, image=True).image for i in range(len(seq)))) if "image_files" in seq.data else None
    return CacheSource(name, lab, frames)


def prepare_synth_cache(split_dir, cache_dir, tokenizer, body, **kw) -> Path:
    """Build (or finish) the training cache of a ``moro synth`` split: :func:`prepare_cache` on its sequences."""
    split_dir = Path(split_dir)
    sources, kind = _synth_sources(split_dir, kw.pop("max_sequences", None))
    return prepare_cache(sources, cache_dir, tokenizer, body, origin=str(split_dir.resolve()), kind=kind, **kw)


def prepare_prepared_cache(root, cache_dir, tokenizer, body, split: str = "train", **kw) -> Path:
    """Build (or finish) the training cache of a ``moro prepare`` output (real datasets)."""
    root = Path(root)
    sources, kind = _prepared_sources(root, split, kw.pop("max_sequences", None), body)
    return prepare_cache(sources, cache_dir, tokenizer, body, origin=f"{root.resolve()}#{split}", kind=kind, **kw)


def prepare_cache(
    sources: list[CacheSource],
    cache_dir: str | os.PathLike,
    tokenizer,
    body,
    *,
    origin: str,
    kind: str,
    crop: int = 160,
    context: float = 1.25,
    flip_every: int = 2,
    progress: Callable[[str], None] | None = None,
    reverse: bool = False,
) -> Path:
    """Build (or finish) a training cache (module docstring) from any labelled sequences.

    Args:
        sources: the sequences (:class:`CacheSource`); those without frames are cached for the motion stages only.
        cache_dir: output folder (created); reused when its manifest matches.
        tokenizer: the frozen tokenizer (:class:`~moro.tokenizer.MeshVQVAE`) for ``body``'s mesh.
        body: the body model of the labels (its local mesh is what the tokenizer encodes).
        origin, kind: where the data comes from (recorded; part of the cache identity).
        crop: cache crop side, px. context: cache box side / ground-truth box side.
        flip_every: tokenize the mirrored mesh on frames ``i % flip_every == 0`` (0 = never).
        progress: called with each sequence name when it is done.
        reverse: visit the sequences last to first (a second process can then share the work).
    Returns:
        ``cache_dir`` as a Path.
    """
    from moro.inference.crops import crop_frame

    cache_dir = Path(cache_dir)
    settings = {"version": CACHE_VERSION, "crop": crop, "context": context, "flip_every": flip_every,
                "tokenizer": getattr(tokenizer.hierarchy, "digest", ""), "tokenizer_codebook":
                float(tokenizer.codebook.double().sum()), "split": origin, "kind": kind, "sequences": len(sources)}
    names = [s.name for s in sources]
    cache_dir.mkdir(parents=True, exist_ok=True)
    manifest = cache_dir / MANIFEST
    if manifest.is_file():
        old = json.loads(manifest.read_text())
        if old.get("settings") == settings and old.get("sequences") == names:
            return cache_dir
    perm = None
    if flip_every:
        try:
            perm = mirror_permutation(body(body.identity_pose(), body.zero_betas()).vertices.numpy())
        except TrainDataError as e:
            log.warning("no mirrored tokens: %s", e)
    frames_total = 0
    for src in (sources[::-1] if reverse else sources):
        stem = cache_dir / src.name.replace("/", "__")
        labels_path, crops_path = stem.with_suffix(".npz"), Path(str(stem) + ".crops.npy")
        if labels_path.is_file() and (crops_path.is_file() or src.frames is None):
            frames_total += len(np.load(labels_path)["ids"])
            if progress is not None:
                progress(src.name)
            continue
        lab = src.labels
        t = len(lab["body_pose"])
        box = np.asarray(lab["box_gt"], np.float64).copy()
        box[:, 2] *= context
        if src.frames is not None:
            crops = np.empty((t, crop, crop, 3), np.uint8)
            for i, rgb in enumerate(src.frames()):
                crops[i] = crop_frame(rgb, box[i], crop)
            with atomic_write(crops_path) as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, crops)
        betas = lab["betas_frames"] if "betas_frames" in lab else lab["betas"]  # (t, s) for image collections
        with torch.no_grad():
            verts = body(torch.as_tensor(np.asarray(lab["body_pose"]), dtype=torch.float32),
                         torch.as_tensor(np.asarray(betas), dtype=torch.float32)).vertices  # (t, v, 3) local
        ids = _tokenize(tokenizer, verts)
        ids_flip = np.full_like(ids, -1)
        if perm is not None:
            sel = np.arange(0, t, flip_every)
            ids_flip[sel] = _tokenize(tokenizer, verts[sel][:, perm] * torch.tensor([-1.0, 1.0, 1.0]))
        arrays = {k: np.asarray(lab[k]) for k in LABEL_KEYS + ("betas_frames", "temporal") if k in lab}
        with atomic_write(labels_path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, cache_box=box, ids=ids, ids_flip=ids_flip, has_images=np.array(src.frames is not None),
                         **arrays)
        frames_total += t
        if progress is not None:
            progress(src.name)
    with atomic_write(manifest, "w") as tmp:
        Path(tmp).write_text(json.dumps({"settings": settings, "sequences": names, "frames": frames_total}, indent=1))
    return cache_dir


@dataclass
class _Seq:
    name: str
    crops: np.ndarray | None  # (t, S, S, 3) uint8, memory-mapped; None for motion-only sequences
    lab: dict  # label arrays
    source: int = 0  # index of its data source in the mixture

    @property
    def frames(self) -> int:
        return len(self.lab["ids"])


def parse_sources(data) -> list[tuple[str, float]]:
    """``--data`` values -> ``[(path, weight), ...]``: a path, ``PATH:WEIGHT`` strings, or (path, weight) pairs."""
    if isinstance(data, (str, os.PathLike)):
        data = [data]
    out = []
    for d in data:
        if isinstance(d, (tuple, list)):
            out.append((str(d[0]), float(d[1])))
            continue
        d = str(d)
        head, sep, tail = d.rpartition(":")
        try:
            w = float(tail) if sep and head else None
        except ValueError:
            w = None
        out.append((head, w) if w is not None else (d, 1.0))
    for path, w in out:
        if not w >= 0:
            raise TrainDataError(f"--data {path}: weight {w} must be >= 0")
    if not out or sum(w for _, w in out) <= 0:
        raise TrainDataError("--data: give at least one source with a positive weight")
    return out


class SynthTrainData:
    """Batches for every stage from one or several prepared caches, mixed by weight (module docstring).

    Args:
        cache_dir: a folder written by :func:`prepare_cache`, or a list of ``(folder, weight)``:
            every batch item picks a source with probability proportional to its weight (among the
            sources that can serve the stage: image and video stages need frames), then a window
            uniformly within that source.
        input_size: (H, W) backbone input; crops are cut at side H and the centre W columns kept.
        seed: data seed (with stage, rank and step it fixes every batch).
        rank, world_size: this process among the data-parallel ones.
    """

    def __init__(self, cache_dir, input_size: tuple[int, int] = (128, 96), seed: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        sources = parse_sources(cache_dir)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.seqs: list[_Seq] = []
        self.weights = [w for _, w in sources]
        infos = []
        for k, (path, _) in enumerate(sources):
            path = Path(path)
            manifest = path / MANIFEST
            if not manifest.is_file():
                raise TrainDataError(f"{path} is not a prepared training cache (no {MANIFEST}); it is built by "
                                     "prepare_cache (moro train does it on first use)")
            info = json.loads(manifest.read_text())
            infos.append(info)
            for name in info["sequences"]:
                stem = path / name.replace("/", "__")
                with np.load(stem.with_suffix(".npz")) as z:
                    lab = {k2: z[k2] for k2 in z.files}
                crops_path = Path(str(stem) + ".crops.npy")
                crops = np.load(crops_path, mmap_mode="r") if crops_path.is_file() else None
                self.seqs.append(_Seq(name, crops, lab, k))
        first = infos[0]["settings"]
        if any((i["settings"]["crop"], i["settings"]["context"]) != (first["crop"], first["context"]) for i in infos):
            raise TrainDataError("--data caches were built with different crop settings; rebuild them alike")
        self.crop, self.context = int(first["crop"]), float(first["context"])
        self.settings = first if len(infos) == 1 else {"sources": [{"settings": i["settings"], "weight": w}
                                                                   for i, w in zip(infos, self.weights)]}
        self.num_frames = sum(s.frames for s in self.seqs)

    # ------------------------------------------------------------------ sampling
    def rng(self, stage: str, step: int) -> np.random.Generator:
        """The generator of one (stage, rank, step) batch."""
        return np.random.default_rng([self.seed, _STAGE_CODES.get(stage, 0), self.rank, int(step)])

    def _windows(self, rng: np.random.Generator, b: int, t: int, images: bool = False) -> list[tuple[_Seq, int]]:
        ok = [s for s in self.seqs if s.frames >= t and (s.crops is not None or not images)
              and (t == 1 or bool(s.lab.get("temporal", True)))]
        if not ok:
            what = " with frames" if images else ""
            raise TrainDataError(f"no sequence{what} has {t} frames; lower the clip length, generate longer sequences"
                                 + (" or add a source with images (motion-only data serves the motion stages)" if images else ""))
        src = np.array([s.source for s in ok])
        per_source = {k: sum(s.frames - t + 1 for s in ok if s.source == k) for k in set(src.tolist())}
        w = np.array([(s.frames - t + 1) * self.weights[s.source] / per_source[s.source] for s in ok], np.float64)
        if w.sum() <= 0:
            raise TrainDataError("every --data source that can serve this stage has weight 0")
        picks = rng.choice(len(ok), size=b, p=w / w.sum())
        return [(ok[i], int(rng.integers(0, ok[i].frames - t + 1))) for i in picks]

    @staticmethod
    def _body(items: list[tuple[_Seq, int]], t: int, frame: str) -> dict[str, torch.Tensor]:
        def stack(key):
            return torch.from_numpy(np.stack([s.lab[key][i:i + t] for s, i in items]).astype(np.float32))

        return {
            "ids": torch.from_numpy(np.stack([s.lab["ids"][i:i + t] for s, i in items]).astype(np.int64)),
            "body_pose": stack("body_pose"),
            "betas": torch.from_numpy(np.stack([s.lab["betas_frames"][i] if "betas_frames" in s.lab else s.lab["betas"]
                                                for s, i in items]).astype(np.float32)),
            "root_rot": stack(f"root_rot_{frame}"),
            "root_trans": stack(f"root_trans_{frame}"),
        }

    def motion_batch(self, stage: str, step: int, b: int, t: int) -> dict[str, torch.Tensor]:
        """``t``-frame windows of ground-truth motion (world frame).

        Returns: ids (b, t, n) int64; body_pose (b, t, j-1, 3, 3); betas (b, s); root_rot (b, t, 3, 3);
        root_trans (b, t, 3) m (root joint, world).
        """
        rng = self.rng(stage, step)
        return self._body(self._windows(rng, b, t), t, "world")

    # ------------------------------------------------------------------ images
    def _crop_from_cache(self, seq: _Seq, i: int, box: np.ndarray, theta: float, flip: bool,
                         photometric: np.ndarray | None) -> np.ndarray:
        """Backbone input (3, H, W) float32 (ImageNet-normalised) of frame i for an image-space box (3,)
        (original image), rotated by ``theta`` (rad) about the box centre and optionally mirrored."""
        import cv2

        H, W = self.input_size
        size = H
        cache_box = seq.lab["cache_box"][i]
        a_c, o_c = _scale_offset(cache_box, self.crop)
        a_f = size / (200.0 * box[2])
        c_f = (size - 1) / 2.0
        c, s = math.cos(-theta), math.sin(-theta)
        R = np.array([[c, -s], [s, c]])
        A = (a_c / a_f) * R
        off = a_c * box[:2] + o_c - A @ np.array([c_f, c_f])
        M = np.concatenate([A, off[:, None]], axis=1)
        img = cv2.warpAffine(np.asarray(seq.crops[i]), M, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        cut = (size - W) // 2
        img = img[:, cut:size - cut]
        if flip:
            img = img[:, ::-1]
        x = img.astype(np.float32)
        if photometric is not None:
            bright, contrast, sat, noise = photometric
            gray = x.mean(-1, keepdims=True)
            x = gray + (x - gray) * sat
            x = (x - x.mean()) * contrast + x.mean()
            x = x * bright + noise
            x = np.clip(x, 0, 255)
        x = (x - _MEAN) / _STD
        return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)

    @staticmethod
    def _part_box(kp2d: np.ndarray, mode: str, full: np.ndarray) -> np.ndarray:
        pts = kp2d[list(CROP_MODES[mode])]
        lo, hi = pts.min(0), pts.max(0)
        side = max(float((hi - lo).max()) * 1.2, 0.3 * 200.0 * float(full[2]))
        centre = (lo + hi) / 2.0
        return np.array([centre[0], centre[1], side / 200.0])

    def marginal_ce(self) -> float:
        """Nats: the pose cross-entropy of a predictor that ignores its input and gives every token position
        the code frequencies of that position over all cached frames (the entropy of those frequencies,
        averaged over the n positions; frames of every source, unweighted). A decoder whose pose
        cross-entropy is not below this has learnt nothing about the pose from its input."""
        ids = np.concatenate([np.asarray(s.lab["ids"]) for s in self.seqs]).astype(np.int64)  # (frames, n)
        if ids.size == 0:
            raise TrainDataError("marginal_ce: the cache holds no frames")
        ent = []
        for col in ids.T:
            p = np.bincount(col).astype(np.float64)
            p = p[p > 0] / len(col)
            ent.append(float(-(p * np.log(p)).sum()))
        return float(np.mean(ent))

    def image_batch(self, stage: str, step: int, b: int, recipe) -> dict[str, torch.Tensor]:
        """Single augmented crops (t = 1).

        Returns: images (b, 1, 3, H, W); bbox (b, 1, 3) the box in the (rotated / mirrored) image;
        K (b, 3, 3); flip (b,) bool; roll (b,) rad; ids (b, 1, n) (of the mirrored mesh when flipped);
        body_pose, betas, root_rot (camera, after roll and mirror), root_trans as in :meth:`motion_batch`.
        """
        rng = self.rng(stage, step)
        items = self._windows(rng, b, 1, images=True)
        images, boxes, flips, rolls = [], [], [], []
        ids = []
        for s, i in items:
            lab = s.lab
            flip = bool(rng.random() < recipe.flip_prob) and lab["ids_flip"][i, 0] >= 0
            theta = float(rng.uniform(-1, 1) * math.radians(recipe.rotation_deg)) if rng.random() < recipe.rotation_prob else 0.0
            if rng.random() < recipe.crop_mode_prob:
                box = self._part_box(lab["kp2d"][i], str(rng.choice(list(CROP_MODES))), lab["box_gt"][i])
            elif rng.random() < 0.5:
                box = _det_box(lab, i)
            else:
                box = lab["box_gt"][i].astype(np.float64) * np.array([1.0, 1.0, rng.uniform(0.95, 1.15)])
                box[:2] += rng.uniform(-0.05, 0.05, 2) * 200.0 * box[2]
            photo = None
            if recipe.photometric:
                photo = np.array([rng.uniform(0.7, 1.3), rng.uniform(0.7, 1.3), rng.uniform(0.6, 1.4), 0.0])
            images.append(self._crop_from_cache(s, i, box, theta, flip, photo))
            K = _K(lab, i)
            pp = K[:2, 2]
            cr, sr = math.cos(theta), math.sin(theta)
            centre = pp + np.array([[cr, -sr], [sr, cr]]) @ (box[:2] - pp)
            if flip:
                centre[0] = 2.0 * pp[0] - centre[0]
            boxes.append([centre[0], centre[1], box[2]])
            flips.append(flip)
            rolls.append(theta)
            ids.append(lab["ids_flip"][i:i + 1] if flip else lab["ids"][i:i + 1])
        out = self._body(items, 1, "cam")
        out["ids"] = torch.from_numpy(np.stack(ids).astype(np.int64))
        out["images"] = torch.from_numpy(np.stack(images))[:, None]
        out["bbox"] = torch.tensor(boxes, dtype=torch.float32)[:, None]
        out["K"] = torch.from_numpy(np.stack([_K(s.lab, i) for s, i in items]).astype(np.float32))
        out["flip"] = torch.tensor(flips)
        out["roll"] = torch.tensor(rolls, dtype=torch.float32)
        return out

    def video_batch(self, stage: str, step: int, b: int, t: int, recipe) -> dict[str, torch.Tensor]:
        """Clips of crops around the detector-like boxes (no flip / rotation); crop modes per clip, and with
        ``recipe.occluder_prob`` a painted occluder (:func:`paint_occluder`) over a span of the clip.

        Returns: images (b, t, 3, H, W); bbox (b, t, 3); K (b, 3, 3); ids (b, t, n); body_pose,
        betas, root_rot, root_trans (camera frame) as in :meth:`motion_batch`; cropped, occluded (b, t) bool.
        """
        rng = self.rng(stage, step)
        items = self._windows(rng, b, t, images=True)
        images = np.empty((b, t, 3, *self.input_size), np.float32)
        boxes = np.empty((b, t, 3), np.float32)
        cropped = np.zeros((b, t), bool)
        occluded = np.zeros((b, t), bool)
        for k, (s, i) in enumerate(items):
            if rng.random() < recipe.crop_mode_prob:
                cropped[k, _span(rng, t, recipe.crop_frames)] = True
                mode = str(rng.choice(list(CROP_MODES)))
            for f in range(t):
                box = _det_box(s.lab, i + f)
                if cropped[k, f]:
                    box = self._part_box(s.lab["kp2d"][i + f], mode, s.lab["box_gt"][i + f])
                images[k, f] = self._crop_from_cache(s, i + f, box, 0.0, False, None)
                boxes[k, f] = box
            if rng.random() < recipe.occluder_prob:
                span = _span(rng, t, recipe.crop_frames)
                paint_occluder(images[k, span], rng, recipe.occluder_size)
                occluded[k, span] = True
        out = self._body(items, t, "cam")
        out["images"] = torch.from_numpy(images)
        out["bbox"] = torch.from_numpy(boxes)
        out["K"] = torch.from_numpy(np.stack([_K(s.lab, i) for s, i in items]).astype(np.float32))
        out["cropped"] = torch.from_numpy(cropped)
        out["occluded"] = torch.from_numpy(occluded)
        return out

    def trajectory_stats(self, t: int, max_clips: int = 2000):
        """Canonical-trajectory mean / std over ``t``-frame windows (world frame), for the motion encoder's normalisation."""
        from moro.geometry import TrajectoryStats, trajectory_to_canonical

        rows = []
        for s in self.seqs:
            for i in range(0, max(1, s.frames - t + 1), max(1, t // 2)):
                R = torch.from_numpy(s.lab["root_rot_world"][i:i + t]).double()
                tr = torch.from_numpy(s.lab["root_trans_world"][i:i + t]).double()
                rows.append(trajectory_to_canonical(R, tr))
                if len(rows) >= max_clips:
                    break
        x = torch.cat(rows).float()
        return TrajectoryStats(mean=x.mean(0), std=x.std(0).clamp_min(1e-3))


def _span(rng: np.random.Generator, t: int, fraction: tuple[float, float]) -> slice:
    """A random run of ``round(U(fraction) t)`` (at least 1) consecutive frames of a t-frame clip."""
    n = max(1, int(round(rng.uniform(*fraction) * t)))
    start = int(rng.integers(0, t - n + 1))
    return slice(start, start + n)


def paint_occluder(images: np.ndarray, rng: np.random.Generator, size: tuple[float, float] = (0.3, 0.6)) -> None:
    """Paint one occluder, in place, over consecutive backbone inputs (a span of a clip).

    The occluder is an axis-aligned rectangle of one random colour with per-pixel noise; its sides are
    ``U(size)`` times the crop's sides and it moves linearly between two random positions over the span
    (a static one when they coincide), so a clip teaches the temporal prior to fill in what a passing
    object hides for a while.

    Args:
        images: (n, 3, H, W) float32 ImageNet-normalised crops, modified in place.
        rng: random generator.
        size: (low, high) side fractions.
    """
    n, _, H, W = images.shape
    h, w = (max(1, int(round(rng.uniform(*size) * side))) for side in (H, W))
    y0, y1 = rng.uniform(-0.25 * h, H - 0.75 * h, 2)
    x0, x1 = rng.uniform(-0.25 * w, W - 0.75 * w, 2)
    colour = rng.uniform(0.0, 255.0, 3).astype(np.float32)
    texture = colour[:, None, None] + rng.normal(0.0, 20.0, (3, h, w)).astype(np.float32)
    patch = (np.clip(texture, 0.0, 255.0) - _MEAN[:, None, None]) / _STD[:, None, None]
    for f in range(n):
        a = f / max(1, n - 1)
        y, x = int(round(y0 + a * (y1 - y0))), int(round(x0 + a * (x1 - x0)))
        ya, yb, xa, xb = max(y, 0), min(y + h, H), max(x, 0), min(x + w, W)
        if ya < yb and xa < xb:
            images[f, :, ya:yb, xa:xb] = patch[:, ya - y:yb - y, xa - x:xb - x]
