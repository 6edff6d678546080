"""The ``moro-prepared`` format written by ``moro prepare`` and its reader (:class:`PreparedDataset`).

Every real dataset is prepared once into the same layout, so training reads AMASS, BEDLAM,
EgoBody, RICH and the image datasets through one reader returning :class:`~moro.data.schema.Clip`
/ :class:`~moro.data.schema.Sample`::

    <out>/
      manifest.json            format, version, dataset, source root, settings, counts (sequences,
                               frames, clips per split; skipped items with their reasons), clip index
      trajectory_stats.json    AMASS only: canonical-trajectory mean / std (9,) of the train split
      seqs/<name>.npz          one file per sequence (``name`` may contain "/"), keys below

``seqs/<name>.npz`` (t frames; float32 unless said; metres, radians, pixels; world Y up):

===================== ============= ======================================================
key                   shape         meaning
===================== ============= ======================================================
format, version       ()            ``"moro-prepared"``, :data:`FORMAT_VERSION`
dataset, sequence     ()            str
split                 ()            str ("train", "val", "test", "" = unsplit)
fps                   ()            float64
image_size            (2,)          int64 (width, height)
K, T_w2c              (3,3), (4,4)  float64 static camera; or (t,3,3), (t,4,4) per frame (image datasets)
frame_ids             (t,)          int64 frame index in the source sequence
body_model            ()            str, e.g. "smplx/female"
body_pose             (t, j-1, 3)   axis-angle, parent-relative
betas                 (s,)          shape
root_orient_world     (t, 3)        axis-angle; ``root_orient_cam`` likewise
root_trans_world      (t, 3)        root joint position; ``root_trans_cam`` likewise
joints_*, coco_*, ... as the schema  every non-None label field of the schema (:mod:`.schema`)
image_files           (t,)          str paths relative to the manifest's ``source_root`` (optional)
image_rot90           ()            int64 clockwise quarter turns applied on reading (BEDLAM closeup)
image_size_frames     (t, 2)        int64 per-row image size (image datasets; samples use it)
betas_frames          (t, s)        per-row shape (image datasets: one person per row; samples use it)
===================== ============= ======================================================

Image datasets (``moro prepare images``) add per-row ``fit_error`` (SMPL -> SMPL-X, metres); 4D-Humans
shards also ``trans_estimated`` (1: the translation is a weak-perspective estimate, the shards have
none), ``has_betas``, ``keypoints_2d`` (t, 44, 3), ``keypoints_3d`` (t, 44, 4), ``sample_key``,
``person_index``, ``smpl_pose`` (t, 72), ``smpl_betas`` (t, 10) as stored in the shard; their
``image_files`` are ``<shard>.tar/<key>.jpg`` (:func:`read_image` reads inside the tar).

Files are written atomically (``moro.paths.atomic_write``): a file that exists is complete, which
is what makes ``moro prepare`` resumable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from moro.geometry.rotations import rotmat_to_rotvec, rotvec_to_rotmat
from moro.paths import atomic_write

from .formats import DatasetFormatError, as_str
from .schema import _LABEL_SHAPES, BodyParams, Clip, Sample

__all__ = ["FORMAT", "FORMAT_VERSION", "MANIFEST", "save_prepared", "PreparedSequence", "PreparedDataset", "read_image"]

FORMAT = "moro-prepared"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SEQS = "seqs"


def _rotvec(R: np.ndarray) -> np.ndarray:
    return rotmat_to_rotvec(torch.from_numpy(np.asarray(R, dtype=np.float64))).numpy().astype(np.float32)


def _rotmat(v: np.ndarray) -> np.ndarray:
    return rotvec_to_rotmat(torch.from_numpy(np.asarray(v, dtype=np.float64))).numpy().astype(np.float32)


def save_prepared(path: str | os.PathLike, clip: Clip, *, split: str = "", image_files=None, image_rot90: int = 0,
                  K_frames: np.ndarray | None = None, T_w2c_frames: np.ndarray | None = None,
                  dist_coeffs: np.ndarray | None = None, extra: dict | None = None) -> None:
    """Write one sequence (a whole :class:`Clip`) atomically in the table's layout.

    ``K_frames`` (t, 3, 3) / ``T_w2c_frames`` (t, 4, 4) replace the static camera for image
    datasets (one camera per frame); ``image_files`` (t,) are relative paths; ``dist_coeffs`` (n,)
    OpenCV distortion of the images (undistorted on reading); ``extra`` more arrays to store.
    """
    out: dict[str, np.ndarray] = {
        "format": np.array(FORMAT), "version": np.array(FORMAT_VERSION), "dataset": np.array(clip.dataset),
        "sequence": np.array(clip.sequence), "split": np.array(split), "fps": np.array(float(clip.fps)),
        "image_size": np.asarray(clip.image_size, dtype=np.int64), "frame_ids": np.asarray(clip.frame_ids, dtype=np.int64),
        "K": np.asarray(clip.K if K_frames is None else K_frames, dtype=np.float64),
        "T_w2c": np.asarray(clip.T_w2c if T_w2c_frames is None else T_w2c_frames, dtype=np.float64),
        "image_rot90": np.array(int(image_rot90)),
    }
    for name in _LABEL_SHAPES:
        a = getattr(clip, name)
        if a is not None:
            out[name] = np.asarray(a)
    if clip.body is not None:
        b = clip.body
        t = b.body_pose.shape[0]
        out.update(body_model=np.array(b.model), body_pose=_rotvec(b.body_pose.reshape(-1, 3, 3)).reshape(t, -1, 3),
                   betas=np.asarray(b.betas, np.float32), root_orient_world=_rotvec(b.root_rot_world),
                   root_trans_world=np.asarray(b.root_trans_world, np.float32), root_orient_cam=_rotvec(b.root_rot_cam),
                   root_trans_cam=np.asarray(b.root_trans_cam, np.float32))
    if dist_coeffs is not None:
        out["dist_coeffs"] = np.asarray(dist_coeffs, dtype=np.float64)
    out.update(extra or {})
    if image_files is not None:
        out["image_files"] = np.asarray([str(p) for p in image_files])
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **out)


def read_image(path: str | os.PathLike, rot90: int = 0, K: np.ndarray | None = None, dist: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file (or ``<shard>.tar/<member>``, an image inside a tar shard),
    turned ``rot90`` quarter turns clockwise, and undistorted with intrinsics ``K`` (3, 3) and OpenCV coefficients ``dist`` (n,) when given."""
    from PIL import Image

    path = Path(path)
    shard = next((q for q in path.parents if q.suffix == ".tar" and q.is_file()), None) if not path.is_file() else None
    if not path.is_file() and shard is None:
        raise DatasetFormatError(f"image {path} not found; the prepared data refers to the source root in {MANIFEST} - "
                                 f"keep the raw dataset there or rerun `moro prepare`")
    if shard is not None:  # "<shard>.tar/<member>": an image inside a webdataset shard
        import io
        import tarfile

        member = path.relative_to(shard).as_posix()
        with tarfile.open(shard) as tar:
            try:
                data = tar.extractfile(member).read()
            except (KeyError, AttributeError) as e:
                raise DatasetFormatError(f"{shard}: no image member {member!r}; the shard changed since `moro prepare`") from e
        with Image.open(io.BytesIO(data)) as im:
            img = np.asarray(im.convert("RGB"))
    else:
        with Image.open(path) as im:
            img = np.asarray(im.convert("RGB"))
    if dist is not None and np.any(dist):
        import cv2

        img = cv2.undistort(img, np.asarray(K, np.float64), np.asarray(dist, np.float64))
    return np.ascontiguousarray(np.rot90(img, -rot90)) if rot90 % 4 else img


class PreparedSequence:
    """One ``seqs/<name>.npz`` (loaded on open).

    Args:
        path: the npz file.
        source_root: folder the ``image_files`` are relative to (images are decoded only on request).
    """

    def __init__(self, path: str | os.PathLike, source_root: str | os.PathLike | None = None):
        self.path = Path(path)
        try:
            with np.load(self.path, allow_pickle=False) as z:
                self.data = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError) as e:
            raise DatasetFormatError(f"{self.path}: unreadable prepared sequence ({e}); delete it and rerun `moro prepare`") from e
        if as_str(self.data.get("format", "")) != FORMAT or int(self.data.get("version", -1)) != FORMAT_VERSION:
            raise DatasetFormatError(f"{self.path}: not a {FORMAT} v{FORMAT_VERSION} file; rerun `moro prepare` with this moro")
        d = self.data
        self.name, self.dataset, self.split = as_str(d["sequence"]), as_str(d["dataset"]), as_str(d["split"])
        self.fps = float(d["fps"])
        self.image_size = tuple(int(x) for x in d["image_size"])
        self.num_frames = int(d["frame_ids"].shape[0])
        self.per_frame_camera = d["K"].ndim == 3
        self.source_root = None if source_root is None else Path(source_root)

    def __len__(self) -> int:
        return self.num_frames

    def __repr__(self) -> str:
        return f"PreparedSequence({self.dataset}:{self.name!r}, {self.num_frames} frames)"

    def _fields(self, fr) -> dict:
        d = self.data
        body = None
        one = isinstance(fr, (int, np.integer))
        if "body_model" in d:
            betas = d["betas_frames"][fr] if one and "betas_frames" in d else d["betas"]  # image datasets: one person per row
            body = BodyParams(model=as_str(d["body_model"]), body_pose=_rotmat(d["body_pose"][fr]), betas=betas,
                              root_rot_world=_rotmat(d["root_orient_world"][fr]), root_trans_world=d["root_trans_world"][fr],
                              root_rot_cam=_rotmat(d["root_orient_cam"][fr]), root_trans_cam=d["root_trans_cam"][fr])
        labels = {k: (d[k][fr] if k in d else None) for k in _LABEL_SHAPES}
        K, T = d["K"], d["T_w2c"]
        if self.per_frame_camera:
            K, T = K[fr], T[fr]
        size = tuple(int(x) for x in d["image_size_frames"][fr]) if one and "image_size_frames" in d else self.image_size
        return dict(dataset=self.dataset, sequence=self.name, fps=self.fps, image_size=size, K=K, T_w2c=T,
                    body=body, **labels)

    def _images(self, idx: np.ndarray) -> np.ndarray:
        if "image_files" not in self.data or self.source_root is None:
            raise DatasetFormatError(f"{self.path}: no image files recorded (or no source root); images cannot be decoded")
        rot, dist = int(self.data["image_rot90"]), self.data.get("dist_coeffs")
        K = self.data["K"]
        return np.stack([read_image(self.source_root / str(self.data["image_files"][i]), rot, K[i] if K.ndim == 3 else K, dist)
                         for i in idx])

    def _check(self, start: int, length: int) -> None:
        if not (0 <= start and length >= 1 and start + length <= self.num_frames):
            raise IndexError(f"{self.name}: frames {start}..{start + length - 1} outside 0..{self.num_frames - 1}")

    def sample(self, i: int, image: bool = False) -> Sample:
        """Frame ``i`` as a :class:`Sample` (decoding its image when ``image``)."""
        self._check(i, 1)
        img = self._images(np.array([i]))[0] if image else None
        f = self._fields(i)
        if img is not None:
            f["image_size"] = (img.shape[1], img.shape[0])
        files = self.data.get("image_files")
        return Sample(**f, frame_id=int(self.data["frame_ids"][i]), image=img,
                      image_file=None if files is None else str(files[i])).validate()

    def clip(self, start: int, length: int, images: bool = False) -> Clip:
        """Frames ``start .. start + length - 1`` as a :class:`Clip` (static-camera sequences only)."""
        self._check(start, length)
        if self.per_frame_camera:
            raise ValueError(f"{self.path}: an image dataset (one camera per frame); use sample(i), not clip()")
        sl = slice(start, start + length)
        imgs = self._images(np.arange(start, start + length)) if images else None
        files = self.data.get("image_files")
        return Clip(**self._fields(sl), frame_ids=self.data["frame_ids"][sl], images=imgs,
                    image_files=None if files is None else files[sl]).validate()


class PreparedDataset:
    """A folder written by ``moro prepare`` (``manifest.json`` + ``seqs/``).

    ``ds.names`` lists the sequences (sorted), ``ds[name_or_index]`` opens one
    (:class:`PreparedSequence`), ``ds.clip_index(split)`` lists the ``(name, start, length)`` of
    the split's clips, ``ds.clip(k, split)`` reads clip k, ``ds.trajectory_stats()`` returns the
    AMASS canonical-trajectory statistics.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        path = self.root / MANIFEST
        if not path.is_file():
            raise DatasetFormatError(f"{path} not found: {self.root} is not a prepared dataset; create it with "
                                     f"`moro prepare <dataset> --root RAW --out {self.root}`")
        try:
            self.manifest = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise DatasetFormatError(f"{path}: not valid JSON ({e}); rerun `moro prepare`") from e
        if self.manifest.get("format") != FORMAT or self.manifest.get("format_version") != FORMAT_VERSION:
            raise DatasetFormatError(f"{path}: format {self.manifest.get('format')!r} v{self.manifest.get('format_version')}, "
                                     f"expected {FORMAT} v{FORMAT_VERSION}; rerun `moro prepare` with this moro")
        self.dataset = self.manifest.get("dataset")
        self.source_root = self.manifest.get("source_root")
        self.names = sorted(self.manifest.get("sequences", {}))

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[PreparedSequence]:
        for n in self.names:
            yield self[n]

    def __getitem__(self, key: int | str) -> PreparedSequence:
        name = self.names[key] if isinstance(key, int) else key
        if name not in self.manifest.get("sequences", {}):
            raise KeyError(f"no sequence {name!r} in {self.root / MANIFEST}")
        return PreparedSequence(self.root / SEQS / f"{name}.npz", self.source_root)

    def split(self, split: str) -> list[str]:
        """Names of the sequences of ``split``."""
        return [n for n in self.names if self.manifest["sequences"][n].get("split", "") == split]

    def clip_index(self, split: str | None = None) -> list[tuple[str, int, int]]:
        """``(name, start, length)`` of every clip (of ``split``), as recorded by ``moro prepare``."""
        seqs = self.manifest["sequences"]
        return [(n, int(s), int(length)) for n in self.names if split is None or seqs[n].get("split", "") == split
                for s, length in seqs[n].get("clips", [])]

    def clip(self, k: int, split: str | None = None, images: bool = False) -> Clip:
        """Clip ``k`` of :meth:`clip_index`."""
        name, start, length = self.clip_index(split)[k]
        return self[name].clip(start, length, images=images)

    def trajectory_stats(self):
        """:class:`moro.geometry.TrajectoryStats` saved by ``moro prepare amass``."""
        from moro.geometry.trajectory import TrajectoryStats

        path = self.root / "trajectory_stats.json"
        if not path.is_file():
            raise DatasetFormatError(f"{path} not found; it is written by `moro prepare amass` (train split)")
        d = json.loads(path.read_text())
        return TrajectoryStats(mean=torch.tensor(d["mean"], dtype=torch.float32), std=torch.tensor(d["std"], dtype=torch.float32))
