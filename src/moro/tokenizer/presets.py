"""Named tokenizer presets: which body mesh, which architecture.

==========  =======================================  ==========================  =================
preset      body mesh (vertices)                     levels (tokens)             needs
==========  =======================================  ==========================  =================
``paper``   SMPL-X body without eyeballs (9383)      2618 -> 546 -> 87           the user's SMPL-X
``anny``    Anny ``anny-noeyes-notongue`` (13348)    3724 -> 777 -> 124          nothing licensed
``tiny``    Anny ``notoes_collapse5pc`` (615)        246 -> 96                   nothing; 2 CPU cores
==========  =======================================  ==========================  =================

``paper`` and ``anny`` share the authors' architecture (widths 32/64/128, 9 basis kernels,
512 codes x 9, paper ratios); ``tiny`` is ours (:meth:`MeshVQVAEConfig.tiny` documents how its
levels were chosen). A preset only names the mesh; loading the body model is the caller's job
(this package never imports :mod:`moro.body`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from moro.tokenizer.vqvae import MeshVQVAEConfig

__all__ = ["TokenizerPreset", "TOKENIZER_PRESETS", "tokenizer_preset"]


@dataclass(frozen=True)
class TokenizerPreset:
    name: str
    body_model: str  # "anny" | "smplx": registry name of the body model
    topology: str  # Anny topology, or "body" = SMPL-X without eyeballs
    num_vertices: int  # v of that mesh
    make_config: Callable[[], MeshVQVAEConfig]  # architecture
    note: str  # one line for `moro tokenizer summary`

    def config(self) -> MeshVQVAEConfig:
        return self.make_config()


TOKENIZER_PRESETS: dict[str, TokenizerPreset] = {
    "paper": TokenizerPreset(
        "paper", "smplx", "body", 9383, MeshVQVAEConfig.paper,
        "the authors' tokenizer on the SMPL-X body mesh (needs SMPLX_NEUTRAL.npz, see `moro body check --model smplx`)",
    ),
    "anny": TokenizerPreset(
        "anny", "anny", "anny-noeyes-notongue", 13348, MeshVQVAEConfig.anny,
        "the authors' architecture on Anny without eyes and tongue (no licensed file needed)",
    ),
    "tiny": TokenizerPreset(
        "tiny", "anny", "notoes_collapse5pc", 615, MeshVQVAEConfig.tiny,
        "small widths on the 615-vertex Anny mesh, trainable on 2 CPU cores",
    ),
}


def tokenizer_preset(name: str) -> TokenizerPreset:
    """The preset called ``name``; the error lists the valid names."""
    try:
        return TOKENIZER_PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown tokenizer preset {name!r}; choose one of {sorted(TOKENIZER_PRESETS)}") from None
