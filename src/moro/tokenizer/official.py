"""Load the authors' Mesh-VQ-VAE weights (34 tensors) into a :class:`~moro.tokenizer.MeshVQVAE`.

The authors' tokenizer state (official-checkpoint-layout.md, section 3.2) comes with one of two
prefixes: ``mesh_vqvae.`` in ``ckpt/tokenizer/tokenizer.ckpt`` and ``vqvae.`` inside the full
MoRo ``last.ckpt``. Below the prefix the names map one to one onto ours:

    fully_conv_ae.weights{l} | bias{l} | w_weights{l}   ->  layers.{l}.weights | bias | w_weights
    fully_conv_ae.p_neighbors{l}                        ->  layers.{l}.p_neighbors
    vq_vae._embedding.weight                            ->  quantizer.codebook      (k, d)
    vq_vae._ema_w                                       ->  quantizer.ema_sum       (k, d)
    vq_vae._ema_cluster_size                            ->  quantizer.ema_count     (k,)
    vq_vae.code_count                                   ->  (none: steps_unused is reset to 0)

The learned per-vertex, per-slot tensors (``w_weights``, ``p_neighbors``) only mean something
with the authors' own neighbour lists and slot order, so the model must be built on
``load_official_hierarchy(<smplx_ConnectionMatrices>)``; shapes are checked, slot order cannot
be. Keys of the full checkpoint outside the tokenizer (``bm_neutral.*``, ``backbone.*``, ...) are
ignored. Everything else raises :class:`OfficialStateError` naming the offending keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn

__all__ = ["OFFICIAL_PREFIXES", "OfficialStateError", "official_key_map", "load_official_tokenizer_state"]

OFFICIAL_PREFIXES = ("mesh_vqvae.", "vqvae.")  # tokenizer.ckpt, last.ckpt
_QUANTIZER_KEYS = {
    "vq_vae._embedding.weight": "quantizer.codebook",
    "vq_vae._ema_w": "quantizer.ema_sum",
    "vq_vae._ema_cluster_size": "quantizer.ema_count",
    "vq_vae.code_count": None,  # usage counter of the authors' training; no counterpart
}
_LAYER_KEY = re.compile(r"^layers\.(\d+)\.(weights|bias|w_weights|p_neighbors)$")


class OfficialStateError(ValueError):
    """The authors' tokenizer state does not fit the model; the message lists the keys and the fix."""


def official_key_map(model: nn.Module) -> dict[str, str | None]:
    """Official key (without prefix) -> our state-dict key (None = read and dropped), for this model.

    Args:
        model: a MeshVQVAE; the map covers exactly its layers, so its length is the number of
            keys the authors' state must have (34 for the paper preset).
    """
    out: dict[str, str | None] = {}
    for name in model.state_dict():
        m = _LAYER_KEY.match(name)
        if m:
            out[f"fully_conv_ae.{m.group(2)}{m.group(1)}"] = name
        elif name == "layers" or name.startswith("layers."):
            raise OfficialStateError(f"parameter {name} has no counterpart in the authors' layout (mixed residual layer?)")
    out.update(_QUANTIZER_KEYS)
    return out


def _strip_prefix(state_dict: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    if "state_dict" in state_dict and isinstance(state_dict["state_dict"], Mapping):
        state_dict = state_dict["state_dict"]  # a whole Lightning checkpoint was passed
    found = {p: {k[len(p):]: v for k, v in state_dict.items() if k.startswith(p)} for p in OFFICIAL_PREFIXES}
    used = [p for p, d in found.items() if d]
    if len(used) != 1:
        what = "none" if not used else "both"
        sample = sorted(state_dict)[:4]
        raise OfficialStateError(
            f"expected the tokenizer keys under exactly one of the prefixes {OFFICIAL_PREFIXES}, found {what} "
            f"(first keys: {sample}); pass the 'state_dict' of tokenizer.ckpt (mesh_vqvae.*) or of last.ckpt (vqvae.*)"
        )
    return found[used[0]], used[0]


def load_official_tokenizer_state(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> list[str]:
    """Copy the authors' tokenizer tensors into ``model`` (in place, all or nothing).

    Args:
        model: a MeshVQVAE, e.g. ``MeshVQVAE(MeshVQVAEConfig.paper(), load_official_hierarchy(folder))``.
        state_dict: the authors' keys with prefix ``mesh_vqvae.`` or ``vqvae.`` (a Lightning
            checkpoint dict with a ``"state_dict"`` entry is accepted too); other top-level groups
            of ``last.ckpt`` are ignored. Tensors of any float dtype; they are cast to the model's.

    Returns:
        The official keys (with prefix) that were read, sorted.

    Raises:
        OfficialStateError: missing keys, unexpected tokenizer keys or shape mismatches, all
            listed at once with the expected shapes. Nothing is copied in that case.
    """
    tensors, prefix = _strip_prefix(state_dict)
    key_map = official_key_map(model)
    ours = model.state_dict()
    missing = sorted(k for k in key_map if k not in tensors)
    extra = sorted(k for k in tensors if k not in key_map)
    shapes = []
    for k, target in key_map.items():
        if target is None or k not in tensors:
            continue
        got = tuple(tensors[k].shape)
        want = tuple(ours[target].shape)
        if got != want:
            shapes.append(f"{prefix}{k}: file {list(got)}, model {list(want)}")
    if missing or extra or shapes:
        lines = []
        if missing:
            lines.append(f"missing {len(missing)}: " + ", ".join(prefix + k for k in missing))
        if extra:
            lines.append(f"unexpected {len(extra)}: " + ", ".join(prefix + k for k in extra))
        if shapes:
            lines.append(f"shape mismatch {len(shapes)}: " + "; ".join(shapes))
        raise OfficialStateError(
            "the authors' tokenizer state does not fit this model:\n  " + "\n  ".join(lines) + "\n"
            "Build the model as MeshVQVAE(MeshVQVAEConfig.paper(), load_official_hierarchy(<smplx_ConnectionMatrices>)) "
            "and pass the unmodified state dict of tokenizer.ckpt or last.ckpt."
        )
    with torch.no_grad():
        for k, target in key_map.items():
            if target is not None:
                ours[target].copy_(tensors[k].to(ours[target].dtype))
        model.quantizer.steps_unused.zero_()  # a trained codebook: no code is due for a restart
    return sorted(prefix + k for k in key_map)
