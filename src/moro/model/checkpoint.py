"""Saving and loading :class:`~moro.model.moro.MoRo` with its configuration (a checkpoint needs nothing else).

File layout (``torch.save`` of a dict, readable with ``torch.load(weights_only=True)``)::

    format       "moro-model"
    version      1
    config       MoRoConfig.to_dict()
    state_dict   every persistent tensor (tokenizer and image encoder included)
    tokenizer    {"config": MeshVQVAEConfig.to_dict(), "hierarchy": {"pool0": int32 rows, ...}}
    image_encoder  None, or {"class": "moro.x:Cls", "config_class": "moro.x:Cfg", "config": dict}
    backbone     whether a backbone was attached (rebuilt from the image encoder's config:
                 ``moro.model.image_encoder.build_image_backbone``; weights from state_dict)

The joint regressor is body-model data (possibly licence-gated) and is not saved.
Image encoders are rebuilt only from classes inside the ``moro`` package; anything else must be
passed in. Writes go through :func:`moro.paths.atomic_write`.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import torch
from torch import nn

from moro.model.config import MoRoConfig
from moro.paths import atomic_write

__all__ = ["FORMAT", "VERSION", "save_moro", "load_moro", "CheckpointError"]

FORMAT, VERSION = "moro-model", 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded as asked; the message says what to change."""


def _qualname(obj: Any) -> str:
    return f"{type(obj).__module__}:{type(obj).__qualname__}"


def _import(path: str) -> Any:
    module, _, name = path.partition(":")
    if not (module == "moro" or module.startswith("moro.")):
        raise CheckpointError(f"refusing to import {path!r} named in a checkpoint: only moro classes are rebuilt")
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _image_encoder_spec(encoder: nn.Module | None) -> dict | None:
    if encoder is None:
        return None
    cfg = getattr(encoder, "config", None)
    if cfg is None or not hasattr(cfg, "to_dict"):
        return {"class": _qualname(encoder), "config_class": None, "config": None}
    return {"class": _qualname(encoder), "config_class": _qualname(cfg), "config": cfg.to_dict()}


def save_moro(model: nn.Module, path: str | os.PathLike, extra: dict | None = None) -> None:
    """Write ``model`` (a MoRo) to ``path`` atomically.

    ``extra``: further plain entries (e.g. ``body`` = ``{"model", "topology"}`` and ``training`` =
    stage, parent, steps, provenance), stored next to the weights and ignored by :func:`load_moro`.
    """
    tok = model.tokenizer
    hierarchy = {k: torch.from_numpy(v.astype("int32")) for k, v in tok.hierarchy.to_arrays().items()}
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "tokenizer": {"config": tok.config.to_dict(), "hierarchy": hierarchy},
        "image_encoder": _image_encoder_spec(model.image_encoder),
        "backbone": model.backbone is not None,
    }
    for key, value in (extra or {}).items():
        if key in payload:
            raise ValueError(f"extra entry {key!r} would overwrite a checkpoint field")
        payload[key] = value
    with atomic_write(path) as tmp:
        torch.save(payload, tmp)


def _build_tokenizer(spec: dict) -> nn.Module:
    from moro.tokenizer import MeshHierarchy, MeshVQVAE, MeshVQVAEConfig

    arrays = {k: v.cpu().numpy() for k, v in spec["hierarchy"].items()}
    return MeshVQVAE(MeshVQVAEConfig.from_dict(spec["config"]), MeshHierarchy.from_arrays(arrays, source="checkpoint"))


def _build_image_encoder(spec: dict) -> nn.Module:
    if spec.get("config_class") is None:
        raise CheckpointError(
            f"the checkpoint's image encoder ({spec['class']}) carries no config to rebuild it from; "
            "pass image_encoder= to from_checkpoint"
        )
    cls, cfg_cls = _import(spec["class"]), _import(spec["config_class"])
    cfg = cfg_cls.from_dict(spec["config"]) if hasattr(cfg_cls, "from_dict") else cfg_cls(**spec["config"])
    return cls(cfg)


def load_moro(
    cls: type,
    path: str | os.PathLike,
    *,
    image_encoder: nn.Module | None = None,
    backbone: nn.Module | None = None,
    tokenizer: nn.Module | None = None,
    joint_regressor: torch.Tensor | None = None,
    preset: str | None = None,
    map_location: str | torch.device = "cpu",
) -> nn.Module:
    """Rebuild a MoRo saved by :func:`save_moro` and load its weights strictly.

    Args:
        cls: the MoRo class.
        path: checkpoint file.
        image_encoder, backbone, tokenizer: modules to use instead of rebuilding them from the checkpoint
            (their weights are still overwritten by the checkpoint's).
        joint_regressor: (j, v), not stored in checkpoints.
        preset: if given, the checkpoint's ``config.name`` must equal it.
        map_location: where tensors go.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"MoRo checkpoint not found: {path}")
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a moro model checkpoint (format {payload.get('format') if isinstance(payload, dict) else '?'}); "
            "authors' Lightning checkpoints need the converter"
        )
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} has format version {payload['version']} > {VERSION}; update moro")
    config = MoRoConfig.from_dict(payload["config"])
    if preset is not None and config.name != preset:
        raise CheckpointError(
            f"{path} holds a '{config.name}' model, not '{preset}'; use preset '{config.name}' or another checkpoint"
        )
    if tokenizer is None:
        tokenizer = _build_tokenizer(payload["tokenizer"])
    spec = payload.get("image_encoder")
    if image_encoder is None and spec is not None:
        image_encoder = _build_image_encoder(spec)
    if backbone is None and payload.get("backbone"):
        if not hasattr(getattr(image_encoder, "config", None), "backbone"):
            raise CheckpointError(f"{path} holds backbone weights but no backbone config to rebuild it; pass backbone=")
        from moro.model.image_encoder import build_image_backbone

        backbone = build_image_backbone(image_encoder.config)
    model = cls(config, tokenizer, image_encoder, joint_regressor, backbone=backbone)
    missing, unexpected = model.load_state_dict(payload["state_dict"], strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not fit the rebuilt model: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}; "
            "pass the image_encoder / backbone / tokenizer the checkpoint was saved with"
        )
    return model.to(map_location)
