"""A trained tokenizer as one self-describing file: weights + config + hierarchy + provenance.

Layout (``torch.save`` of a dict, read with ``torch.load(weights_only=True)``)::

    format            "moro-tokenizer"
    version           1
    config            MeshVQVAEConfig.to_dict()
    state_dict        float32 weights and codebook buffers
    hierarchy         {"pool0": rows, ..., "unpool{2L}": ...}  (the authors' row format; int16 when all
                      values fit, else int32)
    hierarchy_digest  MeshHierarchy.digest: checked on load against the stored lists and, when
                      the caller passes the body mesh, against the hierarchy generated for it
    body              {"model": "anny", "topology": ..., "num_vertices": v} (what the meshes were)
    preset            preset name or None
    meta              provenance and training summary (command, git revision, steps, seconds, ...)

The ``config`` / ``hierarchy`` pair is the same as the ``tokenizer`` entry of a MoRo checkpoint
(:mod:`moro.model.checkpoint`), so either can rebuild the module.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from moro.paths import atomic_write
from moro.tokenizer.hierarchy import build_hierarchy
from moro.tokenizer.neighbours import MeshHierarchy
from moro.tokenizer.vqvae import MeshVQVAE, MeshVQVAEConfig

__all__ = ["TOKENIZER_FORMAT", "TokenizerCheckpointError", "HierarchyMismatchError", "save_tokenizer", "load_tokenizer"]

TOKENIZER_FORMAT, TOKENIZER_VERSION = "moro-tokenizer", 1


class TokenizerCheckpointError(ValueError):
    """A tokenizer checkpoint that cannot be used as asked; the message says what to change."""


class HierarchyMismatchError(TokenizerCheckpointError):
    """The checkpoint's pooling hierarchy is not the one of the given body mesh (other topology or spec)."""


def save_tokenizer(
    model: MeshVQVAE,
    path: str | os.PathLike,
    *,
    body: dict | None = None,
    preset: str | None = None,
    meta: dict | None = None,
) -> None:
    """Write ``model`` atomically as a float32 tokenizer checkpoint (module docstring).

    Args:
        body: what the vertices are, e.g. ``{"model": "anny", "topology": "notoes_collapse5pc"}``;
            ``num_vertices`` is added.
        meta: plain data (str / int / float / lists / dicts) kept verbatim.
    """
    state = {k: (v.detach().cpu().float() if v.is_floating_point() else v.detach().cpu()) for k, v in model.state_dict().items()}
    arrays = model.hierarchy.to_arrays()
    small = max(int(a.max()) for a in arrays.values()) < np.iinfo(np.int16).max  # halves the file for meshes < 32767 v
    dtype = np.int16 if small else np.int32
    hierarchy = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=dtype)) for k, v in arrays.items()}
    payload = {
        "format": TOKENIZER_FORMAT,
        "version": TOKENIZER_VERSION,
        "config": model.config.to_dict(),
        "state_dict": state,
        "hierarchy": hierarchy,
        "hierarchy_digest": model.hierarchy.digest,
        "body": {**(body or {}), "num_vertices": model.num_vertices},
        "preset": preset,
        "meta": meta or {},
    }
    with atomic_write(path) as tmp:
        torch.save(payload, tmp)


def read_tokenizer_file(path: str | os.PathLike) -> dict:
    """The raw payload of a tokenizer checkpoint, format-checked."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer checkpoint not found: {path}; train one with `moro train tokenizer --preset tiny --out DIR`")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != TOKENIZER_FORMAT:
        got = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        hint = " (a training state: use DIR/tokenizer.ckpt, the exported file)" if got == "moro-train-state" else ""
        raise TokenizerCheckpointError(f"{path} is not a moro tokenizer checkpoint (format {got!r}){hint}")
    if payload.get("version", 0) > TOKENIZER_VERSION:
        raise TokenizerCheckpointError(f"{path} has version {payload['version']} > {TOKENIZER_VERSION}; update moro")
    return payload


def load_tokenizer(
    path: str | os.PathLike,
    *,
    faces: np.ndarray | torch.Tensor | None = None,
    num_vertices: int | None = None,
    map_location: str | torch.device = "cpu",
) -> MeshVQVAE:
    """Rebuild a tokenizer saved by :func:`save_tokenizer` (eval mode), checking it fits the mesh.

    Args:
        path: the checkpoint file.
        faces: (f, 3) faces of the body mesh it will tokenize; if given, its hierarchy is
            generated (or read from cache) with the checkpoint's spec and must have the stored digest.
        num_vertices: vertex count of that mesh; must equal the checkpoint's.

    Raises:
        TokenizerCheckpointError: wrong format, corrupt hierarchy, wrong vertex count.
        HierarchyMismatchError: ``faces`` give another hierarchy than the one trained with.
    """
    payload = read_tokenizer_file(path)
    config = MeshVQVAEConfig.from_dict(payload["config"])
    arrays = {k: v.cpu().numpy().astype(np.int32) for k, v in payload["hierarchy"].items()}
    hierarchy = MeshHierarchy.from_arrays(arrays, source=f"checkpoint:{Path(path).name}")
    stored = payload["hierarchy_digest"]
    if hierarchy.digest != stored:
        raise TokenizerCheckpointError(f"{path}: the stored hierarchy does not match its digest; the file is corrupt")
    v = hierarchy.level_sizes[0]
    if faces is not None and num_vertices is None:
        num_vertices = int(np.asarray(faces).max()) + 1
    if num_vertices is not None and int(num_vertices) != v:
        raise TokenizerCheckpointError(
            f"{path} tokenizes meshes of {v} vertices ({_body_name(payload)}), but the body mesh has {num_vertices}; "
            "use the checkpoint trained for this body topology"
        )
    if faces is not None:
        f = faces.cpu().numpy() if isinstance(faces, torch.Tensor) else np.asarray(faces)
        digest = build_hierarchy(f, v, config.hierarchy).digest
        if digest != stored:
            raise HierarchyMismatchError(
                f"{path} was trained on a pooling hierarchy {stored[:12]}... ({_body_name(payload)}), but this body "
                f"mesh gives {digest[:12]}...: same vertex count, different topology or hierarchy version; "
                "use the checkpoint trained for this body model, or retrain the tokenizer"
            )
    model = MeshVQVAE(config, hierarchy)
    model.load_state_dict(payload["state_dict"])
    return model.to(map_location).eval()


def _body_name(payload: dict) -> str:
    body = payload.get("body") or {}
    name = "/".join(str(body[k]) for k in ("model", "topology") if body.get(k))
    return name or "unknown body"
