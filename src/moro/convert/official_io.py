"""Reading the authors' files safely: Lightning checkpoints, ``amass_cum_traj.pkl``, connection matrices.

Checkpoints (:func:`load_torch_file`) are opened with ``torch.load(weights_only=True, mmap=True)``:
no code from the file runs, and tensors stay on disk until read (memory-mapped), so a converter
that handles them one by one never holds a second copy of the weights. Lightning checkpoints may
also hold pickled non-tensor objects (callback or hyper-parameter state). Those are not needed;
rather than giving up or unpickling them for real, their classes are replaced by inert
placeholders (:class:`PickledObject`: they record their arguments and run nothing), listed in
``LoadedFile.placeholders``. Only ``trust_pickle=True`` unpickles the file for real
(``weights_only=False``), for trusted copies whose format even that cannot read.

``amass_cum_traj.pkl`` (:func:`read_trajectory_stats`) is a plain pickle of ``{"Mean": ndarray,
"Std": ndarray}``; it is read with an unpickler that accepts numpy arrays and nothing else.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from moro.convert.official_layout import CONNECTION_SHA256_PREFIXES
from moro.geometry import TrajectoryStats
from moro.model.checkpoint import FORMAT

__all__ = [
    "OfficialConversionError",
    "TrajectoryStatsNotFoundError",
    "PickledObject",
    "LoadedFile",
    "load_torch_file",
    "release_state_dict",
    "read_trajectory_stats",
    "connection_file_notes",
]

log = logging.getLogger(__name__)


class OfficialConversionError(ValueError):
    """The authors' files cannot be converted as given; the message names the key or file and the fix."""


class TrajectoryStatsNotFoundError(FileNotFoundError):
    """``amass_cum_traj.pkl`` is missing; the message says where the authors' training writes it."""


class PickledObject:
    """Inert stand-in for a pickled non-tensor object of a checkpoint (its class is never imported).

    Attributes:
        args, kwargs: what the pickle passed to the constructor.
        state: what it passed to ``__setstate__`` (None if nothing).
    """

    pickled_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> "PickledObject":
        obj = object.__new__(cls)
        obj.args, obj.kwargs, obj.state = args, kwargs, None
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Arguments were already recorded by ``__new__``; nothing runs."""

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __call__(self, *args: Any, **kwargs: Any) -> "PickledObject":  # a pickled function applied to args
        return type(self)(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<not unpickled: {self.pickled_name}>"


def _placeholder(name: str) -> type:
    return type(name.rsplit(".", 1)[-1], (PickledObject,), {"pickled_name": name})


@dataclass
class LoadedFile:
    """A torch file as read by :func:`load_torch_file`."""

    obj: Any  # whatever the file holds (tensors memory-mapped when ``mmap``)
    mmap: bool  # tensors are memory-mapped (zip format); False: read into memory
    placeholders: list[str] = field(default_factory=list)  # pickled classes replaced by PickledObject
    trusted: bool = False  # unpickled with weights_only=False


def load_torch_file(path: str | os.PathLike, trust_pickle: bool = False, what: str = "checkpoint") -> LoadedFile:
    """Open a ``torch.save`` file without running code from it (see the module docstring).

    Args:
        path: the file.
        trust_pickle: unpickle it for real (only for trusted copies).
        what: how to call the file in messages.
    Raises:
        FileNotFoundError: no such file.
        OfficialConversionError: the file cannot be read without ``trust_pickle``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    mmap = zipfile.is_zipfile(path)  # torch's zip format; the legacy format cannot be memory-mapped
    if not mmap:
        log.warning("%s is in torch's legacy (non-zip) format: it is read into memory whole", path)
    if trust_pickle:
        return LoadedFile(torch.load(path, map_location="cpu", mmap=mmap, weights_only=False), mmap, trusted=True)
    try:
        return LoadedFile(torch.load(path, map_location="cpu", mmap=mmap, weights_only=True), mmap)
    except pickle.UnpicklingError as err:
        first_error = err
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path) if mmap else []
        if names:
            with torch.serialization.safe_globals([(_placeholder(n), n) for n in names]):
                obj = torch.load(path, map_location="cpu", mmap=mmap, weights_only=True)
            log.info("%s: read %d pickled class(es) as inert placeholders: %s", path, len(names), ", ".join(names))
            return LoadedFile(obj, mmap, placeholders=list(names))
    except Exception as err:  # noqa: BLE001 - any failure of the fallback: report the original error
        log.debug("placeholder load of %s failed: %s", path, err)
    raise OfficialConversionError(
        f"{path} cannot be read as tensors only (torch.load weights_only=True): {str(first_error).splitlines()[0]}. "
        f"If this {what} comes from a source you trust, add --trust-pickle (unpickles it with weights_only=False)"
    ) from first_error


def release_state_dict(obj: Any, path: Path) -> tuple[Mapping[str, torch.Tensor], list[str]]:
    """The state dict inside a loaded file, and notes on the container; refuses other kinds of files."""
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
        raise OfficialConversionError(f"{path} is already a moro checkpoint; load it with MoRo.from_checkpoint")
    notes = []
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        version = obj.get("pytorch-lightning_version", "?")
        has_opt = bool(obj.get("optimizer_states"))
        notes.append(f"Lightning checkpoint (version {version}, epoch {obj.get('epoch', '?')}, global step "
                     f"{obj.get('global_step', '?')}), {'with' if has_opt else 'without'} optimizer state (not read)")
        sd = obj["state_dict"]
    elif isinstance(obj, Mapping):
        sd = obj
    else:
        raise OfficialConversionError(f"{path} holds a {type(obj).__name__}, not a checkpoint dict")
    if any(k.startswith("mesh_vqvae.") for k in sd) and not any(k.startswith("mask_transformer.") for k in sd):
        raise OfficialConversionError(
            f"{path} is the authors' tokenizer checkpoint (mesh_vqvae.*), not the MoRo model: pass it with --tokenizer "
            "and the stage-5 last.ckpt with --ckpt")
    if "pos_embed" in sd and "blocks.0.attn.qkv.weight" in sd:
        raise OfficialConversionError(
            f"{path} is HMR2.0's ViT backbone (vit_pose_hmr2.pth), not the MoRo model: pass it with --backbone "
            "and the stage-5 last.ckpt with --ckpt")
    return sd, notes


# --------------------------------------------------------------------------- trajectory statistics
STATS_WRITER = (
    "The authors' AMASS training dataset (class DataloaderAMASS, split 'train') writes it on its first "
    "run, to datasets/mask_transformer/amass_preprocess/amass_cum_traj.pkl: np.mean / np.std over all "
    "training clips and frames (keepdims, shape (1, 1, 9)) of the unnormalised canonical trajectory "
    "[6D of R_t^T R_(t+1) | R_t^T (T_(t+1) - T_t)]. It is in no checkpoint and not in the README's "
    "download list: copy it from a machine that ran the authors' training on AMASS, or ask the "
    "authors for it"
)

_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists and numpy arrays; any other class is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(f"{module}.{name}")
        with warnings.catch_warnings():  # numpy 2 maps numpy.core -> numpy._core with a warning
            warnings.simplefilter("ignore", DeprecationWarning)
            return super().find_class(module, name)


def read_trajectory_stats(path: str | os.PathLike, trust_pickle: bool = False) -> TrajectoryStats:
    """Read the authors' ``amass_cum_traj.pkl``: ``{"Mean": (1, 1, 9), "Std": (1, 1, 9)}`` -> float32 stats.

    float32 or float64 arrays of 9 elements in any shape ((1, 1, 9), (9,), ...) are accepted.

    Raises:
        TrajectoryStatsNotFoundError: no such file (the message says where it comes from).
        OfficialConversionError: wrong content (keys, sizes, non-finite values, std <= 0).
    """
    path = Path(path)
    if not path.is_file():
        raise TrajectoryStatsNotFoundError(f"trajectory statistics file not found: {path}. {STATS_WRITER}.")
    try:
        with open(path, "rb") as fh:
            data = pickle.load(fh) if trust_pickle else _ArrayUnpickler(fh).load()
    except pickle.UnpicklingError as err:
        raise OfficialConversionError(
            f"{path}: not a plain pickle of numpy arrays (it needs {err}); if the file is trusted, add --trust-pickle"
        ) from err
    except (EOFError, ValueError, TypeError) as err:
        raise OfficialConversionError(f"{path}: not a readable pickle ({type(err).__name__}: {err})") from err
    if not isinstance(data, Mapping) or not {"Mean", "Std"} <= set(data):
        found = sorted(map(str, data)) if isinstance(data, Mapping) else type(data).__name__
        raise OfficialConversionError(
            f"{path}: expected a dict with keys 'Mean' and 'Std' (shape (1, 1, 9)), found {found}")
    out = {}
    for key in ("Mean", "Std"):
        value = data[key]
        arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        if arr.dtype.kind not in "fiu" or arr.size != 9:
            raise OfficialConversionError(
                f"{path}: '{key}' must hold 9 numbers (shape (1, 1, 9)), found dtype {arr.dtype}, shape {arr.shape}")
        out[key] = torch.from_numpy(arr.astype(np.float32).reshape(9))
    try:
        return TrajectoryStats(mean=out["Mean"], std=out["Std"])
    except ValueError as err:
        raise OfficialConversionError(f"{path}: 'Mean' / 'Std' are not usable statistics: {err}") from err


# --------------------------------------------------------------------------- connection matrices
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def connection_file_notes(folder: str | os.PathLike, used: list[str]) -> tuple[dict[str, str], list[str]]:
    """sha256 of the connection files in ``folder`` and notes on those that differ from the fork's copy.

    Args:
        folder: the ``smplx_ConnectionMatrices`` folder.
        used: file names the tokenizer reads (e.g. ``_pool0.npy`` .. ``_pool6.npy``, ``_unpool0.npy`` ..).
    Returns:
        ({file: sha256}, notes). Shapes are checked elsewhere; a different hash with fitting shapes
        means other neighbour lists or slot orders, which the weights cannot reveal.
    """
    folder = Path(folder)
    hashes = {name: _sha256(folder / name) for name in used if (folder / name).is_file()}
    known = CONNECTION_SHA256_PREFIXES
    differ = [n for n, h in hashes.items() if n in known and not h.startswith(known[n])]
    notes = []
    if differ:
        notes.append(
            f"WARNING: {len(differ)} connection file(s) differ from the copy the layout was read from "
            f"({', '.join(differ)}): shapes fit the weights, but if their neighbour lists or slot order differ "
            "the tokenizer's learned per-vertex weights are meaningless. Use the authors' smplx_ConnectionMatrices"
        )
    return hashes, notes
