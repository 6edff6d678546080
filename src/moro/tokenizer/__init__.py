"""Mesh tokenizer (Mesh-VQ-VAE): pooling hierarchy, spatially varying mesh convolution, EMA quantizer.

Public API::

    build_hierarchy(faces, num_vertices, HierarchySpec(...))  -> MeshHierarchy   (generated, cached)
    load_official_hierarchy(folder) / save_official_hierarchy(h, folder)         (authors' _pool*.npy)
    MeshLayer, mesh_conv, mesh_pool, neighbour_mix                               (layers)
    VectorQuantizerEMA                                                           (codebook)
    MeshVQVAE(MeshVQVAEConfig.paper() | .anny() | .tiny(), hierarchy)  or  MeshVQVAE.from_mesh(config, faces, v)
    TOKENIZER_PRESETS / tokenizer_preset(name)                                   (paper | anny | tiny: mesh + config)
    save_tokenizer / load_tokenizer(path, faces=..., num_vertices=...)          (trained tokenizer files)
    load_official_tokenizer_state(model, state_dict)                             (the authors' 34 tensors)

Imports only torch / numpy / scipy and moro.paths; never moro.model or moro.body.
"""

from moro.tokenizer.hierarchy import (
    DEFAULT_LEVEL_RATIOS,
    SMPLX_BODY_LEVEL_SIZES,
    HierarchySpec,
    build_hierarchy,
    default_cache_dir,
)
from moro.tokenizer.layers import MeshLayer, mesh_conv, mesh_pool, neighbour_mix, pool_weights
from moro.tokenizer.neighbours import MeshHierarchy, NeighbourList, load_official_hierarchy, save_official_hierarchy
from moro.tokenizer.quantizer import QuantizerOutput, VectorQuantizerEMA
from moro.tokenizer.vqvae import PRESETS, MeshVQVAE, MeshVQVAEConfig, MeshVQVAEOutput
from moro.tokenizer.checkpoint import HierarchyMismatchError, TokenizerCheckpointError, load_tokenizer, save_tokenizer
from moro.tokenizer.official import OfficialStateError, load_official_tokenizer_state
from moro.tokenizer.presets import TOKENIZER_PRESETS, TokenizerPreset, tokenizer_preset

__all__ = [
    "DEFAULT_LEVEL_RATIOS",
    "SMPLX_BODY_LEVEL_SIZES",
    "HierarchySpec",
    "build_hierarchy",
    "default_cache_dir",
    "MeshHierarchy",
    "NeighbourList",
    "load_official_hierarchy",
    "save_official_hierarchy",
    "MeshLayer",
    "neighbour_mix",
    "mesh_conv",
    "mesh_pool",
    "pool_weights",
    "QuantizerOutput",
    "VectorQuantizerEMA",
    "PRESETS",
    "MeshVQVAE",
    "MeshVQVAEConfig",
    "MeshVQVAEOutput",
    "TOKENIZER_PRESETS",
    "TokenizerPreset",
    "tokenizer_preset",
    "save_tokenizer",
    "load_tokenizer",
    "TokenizerCheckpointError",
    "HierarchyMismatchError",
    "load_official_tokenizer_state",
    "OfficialStateError",
]
