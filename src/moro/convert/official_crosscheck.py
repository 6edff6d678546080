"""Optional inputs of ``moro convert official`` that are only checked: ``tokenizer.ckpt`` and ``vit_pose_hmr2.pth``.

Both hold weights that ``last.ckpt`` already contains (layout section 1): the tokenizer under
``vqvae.*`` (frozen during MoRo training, so normally identical) and the ViT under
``backbone.model.*`` (finetuned in stages 3-4, so expected to differ from HMR2.0's file). The
authors' test and demo load ``last.ckpt`` last and strictly, so its copies are the ones in use;
the converter keeps them too. These checks catch wrong or damaged files and report how far the
copies are apart. Tensors are compared one at a time (memory-mapped files).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from moro.convert.official_io import OfficialConversionError, load_torch_file
from moro.convert.official_layout import VIT, VQ, KeyRule

__all__ = ["check_tokenizer_file", "check_backbone_file"]

_TOKENIZER_PREFIX = "mesh_vqvae."


def _state_of(obj, path) -> Mapping[str, torch.Tensor]:
    sd = obj.get("state_dict", obj) if isinstance(obj, Mapping) else obj
    if not isinstance(sd, Mapping):
        raise OfficialConversionError(f"{path} holds a {type(sd).__name__}, not a state dict")
    return sd


def _listing(names: list[str], limit: int = 10) -> str:
    more = f" ... (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _compare(file_sd: Mapping, names: dict[str, str], state: Mapping, path, what: str) -> tuple[float, float, str]:
    """Check names / shapes of ``file_sd`` against ``names`` (file name -> release name).

    Returns:
        (max |diff|, relative RMS difference, key of the max).
    """
    missing = [f for f in names if f not in file_sd]
    extra = [k for k in file_sd if k not in names]
    bad = [f"{f}: file {list(file_sd[f].shape)}, last.ckpt {list(state[r].shape)}"
           for f, r in names.items() if f in file_sd and tuple(file_sd[f].shape) != tuple(state[r].shape)]
    if missing or extra or bad:
        parts = [f"{path} is not {what} that fits last.ckpt"]
        parts += [f"missing {len(missing)}: {_listing(missing)}"] if missing else []
        parts += [f"unexpected {len(extra)}: {_listing(extra)}"] if extra else []
        parts += [f"mis-shaped {len(bad)}: {_listing(bad)}"] if bad else []
        raise OfficialConversionError("; ".join(parts))
    worst, worst_key, sq_diff, sq_ref = 0.0, "", 0.0, 0.0
    for f, r in names.items():
        a, b = file_sd[f], state[r]
        if a.device.type == "meta" or b.device.type == "meta" or not b.is_floating_point():
            continue
        d = a.double() - b.double()
        m = float(d.abs().max()) if d.numel() else 0.0
        if m > worst:
            worst, worst_key = m, f
        sq_diff += float(d.square().sum())
        sq_ref += float(b.double().square().sum())
    return worst, (sq_diff / max(sq_ref, 1e-30)) ** 0.5, worst_key


def check_tokenizer_file(path: str | os.PathLike, state: Mapping, rules: list[KeyRule],
                         trust_pickle: bool = False) -> str:
    """Check ``tokenizer.ckpt`` (34 keys under ``mesh_vqvae.``) against ``last.ckpt``'s ``vqvae.*``; return a note."""
    loaded = load_torch_file(path, trust_pickle, what="tokenizer checkpoint")
    sd = _state_of(loaded.obj, path)
    file_sd = {k: v for k, v in sd.items() if k.startswith(_TOKENIZER_PREFIX)}  # other groups (bm*) are ignored
    if not file_sd:
        raise OfficialConversionError(
            f"{path} holds no '{_TOKENIZER_PREFIX}*' keys (first keys: {sorted(sd)[:4]}): not the authors' tokenizer.ckpt")
    names = {_TOKENIZER_PREFIX + r.official[len(VQ):]: r.official for r in rules if r.group == "tokenizer"}
    worst, rel, key = _compare(file_sd, names, state, path, "the authors' tokenizer checkpoint")
    if worst == 0.0:
        return f"tokenizer.ckpt: {len(names)} keys, identical to last.ckpt's vqvae.*"
    return (f"tokenizer.ckpt differs from last.ckpt's vqvae.* (max |diff| {worst:.3g} in {key}, "
            f"relative RMS {rel:.3g}); the authors' test and demo use last.ckpt's copy, and so does this conversion")


def check_backbone_file(path: str | os.PathLike, state: Mapping, rules: list[KeyRule],
                        trust_pickle: bool = False) -> str:
    """Check HMR2.0's ``vit_pose_hmr2.pth`` (389 keys, no prefix) against ``last.ckpt``'s ``backbone.model.*``."""
    loaded = load_torch_file(path, trust_pickle, what="backbone weights")
    sd = _state_of(loaded.obj, path)
    if "pos_embed" not in sd:  # HMR2 training checkpoints / a MoRo last.ckpt keep it under a prefix
        for prefix in (VIT, "backbone."):
            sub = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
            if "pos_embed" in sub:
                sd = sub
                break
    names = {r.official[len(VIT):]: r.official for r in rules if r.group == "backbone"}
    worst, rel, _ = _compare(sd, names, state, path, "HMR2.0's ViT weights (vit_pose_hmr2.pth)")
    return (f"vit_pose_hmr2.pth: {len(names)} keys fit; last.ckpt's finetuned ViT differs from it by a relative RMS "
            f"of {rel:.3g} (expected: stages 3-4 finetuned it); the converted model uses last.ckpt's copy")
