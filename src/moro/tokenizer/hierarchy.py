"""Generate the pooling hierarchy of the Mesh-VQ-VAE from any connected triangle mesh, and cache it.

Algorithm (topology only; vertex positions are never used, so any pose gives the same result):

1. Level 0 is the mesh's vertex graph (one node per vertex, one edge per mesh edge).
2. At level i, the conv neighbourhood of every vertex is the set of vertices within
   `conv_radius` hops, ordered by (hop distance, index): the vertex itself comes first.
3. The vertices kept for level i+1 are chosen by farthest-point sampling on hop distance
   (start: vertex 0; ties: smallest index), then sorted by index. Let R be the covering radius
   (every vertex lies within R hops of a kept vertex). Each kept vertex pools the vertices
   within `pool_radius` hops (default max(R, 2), so every vertex feeds a kept vertex);
   unpooling uses the transpose of that map (each vertex reads the kept vertices near it).
4. The level i+1 graph joins two kept vertices when their hop-Voronoi cells in level i touch
   (cell = nearest kept vertex, ties to the smaller index). It is connected whenever level i is.

This mirrors the MeshConvolution sampler of Zhou et al. 2020 (hop-radius pooling, transposed
unpooling, same file layout) but hits exact level sizes. Results are deterministic and cached
under `<cache dir>/hierarchy/<key>.npz`, key = hash of (vertex count, edge set, spec, version);
the cache dir is `$MORO_CACHE_DIR`, else the platform user cache dir for "moro".
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from moro.paths import atomic_write, cache_dir
from moro.tokenizer.mesh_graph import (
    adjacency_from_edges,
    check_connected,
    edges_from_faces,
    farthest_point_sampling,
    hop_neighbourhoods,
    topology_hash,
)
from moro.tokenizer.neighbours import MeshHierarchy, NeighbourList

__all__ = [
    "SMPLX_BODY_LEVEL_SIZES",
    "DEFAULT_LEVEL_RATIOS",
    "HierarchySpec",
    "build_hierarchy",
    "default_cache_dir",
]

log = logging.getLogger(__name__)

ALGORITHM_VERSION = 1  # bump whenever the generated lists change, so stale cache entries are not reused
SMPLX_BODY_LEVEL_SIZES = (9383, 2618, 546, 87)  # paper: SMPL-X body without eyeballs -> 87 tokens
# The same ratios for any mesh: ~27.9 %, ~20.9 %, ~15.9 % (exact on SMPL-X, 13348 -> 3724 -> 777 -> 124 on Anny).
DEFAULT_LEVEL_RATIOS = tuple(b / a for a, b in zip(SMPLX_BODY_LEVEL_SIZES[:-1], SMPLX_BODY_LEVEL_SIZES[1:]))


@dataclass(frozen=True)
class HierarchySpec:
    """How to build a hierarchy; part of the cache key and of the tokenizer config.

    Attributes:
        levels: one entry per pooling step: an int = vertex count of the next level, or a float in
            (0, 1) = that fraction of the previous level (rounded). Default: the paper's SMPL-X ratios.
        conv_radius: hop radius of the conv neighbourhoods at every level (2 gives ~19 neighbours
            on a regular triangle mesh, like the authors' 24-34 slot lists).
        pool_radius: hop radius of the pooling neighbourhoods; None = max(2, covering radius of the
            level's sampling): 2 hops like the authors' files, more where needed to reach every vertex.
    """

    levels: tuple[int | float, ...] = DEFAULT_LEVEL_RATIOS
    conv_radius: int = 2
    pool_radius: int | None = None

    def __post_init__(self) -> None:
        levels = []
        for x in self.levels:
            ok_int = isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)) and x >= 1
            ok_ratio = isinstance(x, (float, np.floating)) and 0.0 < x < 1.0
            if not (ok_int or ok_ratio):
                raise ValueError(
                    f"level entry {x!r} is neither a vertex count (int >= 1) nor a ratio (float in (0, 1)); "
                    "write e.g. levels=(2618, 546, 87) or levels=(0.28, 0.21, 0.16)"
                )
            levels.append(int(x) if ok_int else float(x))
        if not levels:
            raise ValueError("levels is empty; give at least one pooling step, e.g. levels=(0.28,)")
        object.__setattr__(self, "levels", tuple(levels))
        if self.conv_radius < 1:
            raise ValueError(f"conv_radius must be >= 1 hop, got {self.conv_radius}")
        if self.pool_radius is not None and self.pool_radius < 1:
            raise ValueError(f"pool_radius must be >= 1 hop or None (automatic), got {self.pool_radius}")

    def level_sizes(self, num_vertices: int) -> tuple[int, ...]:
        """(v_0, ..., v_L) for a mesh of v_0 = num_vertices vertices; strictly decreasing."""
        sizes = [int(num_vertices)]
        for x in self.levels:
            n = x if isinstance(x, int) else max(1, int(round(sizes[-1] * x)))
            if n >= sizes[-1]:
                raise ValueError(
                    f"level sizes must decrease, but {sizes[-1]} -> {n} (spec {self.levels}, mesh of {num_vertices} vertices); "
                    "use smaller counts or ratios below 1"
                )
            sizes.append(n)
        return tuple(sizes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["levels"] = list(self.levels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "HierarchySpec":
        return cls(levels=tuple(d["levels"]), conv_radius=int(d["conv_radius"]), pool_radius=d.get("pool_radius"))


def default_cache_dir() -> Path:
    """moro's cache root (``$MORO_CACHE_DIR`` or the user cache dir; see :mod:`moro.paths`)."""
    return cache_dir()


def build_hierarchy(
    faces: np.ndarray,
    num_vertices: int,
    spec: HierarchySpec | None = None,
    *,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> MeshHierarchy:
    """Pooling hierarchy of a connected triangle mesh (module docstring), from cache when possible.

    Args:
        faces: (f, 3) integer vertex indices.
        num_vertices: v_0, vertex count of the mesh (vertices no face uses are an error).
        spec: level sizes and radii; default `HierarchySpec()` (paper ratios).
        cache: read and write the on-disk cache.
        cache_dir: overrides `default_cache_dir()`.

    Returns:
        MeshHierarchy with level sizes `spec.level_sizes(num_vertices)`.
    """
    spec = spec or HierarchySpec()
    edges = edges_from_faces(faces, num_vertices)
    sizes = spec.level_sizes(num_vertices)
    key = _cache_key(topology_hash(edges, num_vertices), spec)
    path = Path(cache_dir or default_cache_dir()) / "hierarchy" / f"{key}.npz"
    if cache and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                h = MeshHierarchy.from_arrays(dict(data), source=f"generated:{key}")
            if h.level_sizes == sizes:
                return h
            log.warning("cached hierarchy %s has sizes %s, expected %s; rebuilding", path, h.level_sizes, sizes)
        except (OSError, ValueError) as err:
            log.warning("unreadable cached hierarchy %s (%s); rebuilding", path, err)
    adjacency = adjacency_from_edges(edges, num_vertices)
    check_connected(adjacency)
    h = _generate(adjacency, sizes, spec, source=f"generated:{key}")
    if cache:
        _atomic_save_npz(path, h.to_arrays())
        log.info("cached pooling hierarchy %s -> %s", sizes, path)
    return h


def _cache_key(topo: str, spec: HierarchySpec) -> str:
    payload = json.dumps({"topology": topo, "spec": spec.to_dict(), "version": ALGORITHM_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _atomic_save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically (:func:`moro.paths.atomic_write`): readers never see half a file."""
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def _generate(adjacency: sp.csr_matrix, sizes: tuple[int, ...], spec: HierarchySpec, source: str) -> MeshHierarchy:
    pool: list[NeighbourList] = []
    unpool: list[NeighbourList] = []
    adj = adjacency
    for i, n in enumerate(sizes):
        conv = NeighbourList.from_triplets(*hop_neighbourhoods(adj, np.arange(n), spec.conv_radius), n, n)
        pool.append(conv)
        unpool.append(conv.transpose())
        if i + 1 == len(sizes):
            break
        kept, cover = farthest_point_sampling(adj, sizes[i + 1])
        radius = max(cover, 2) if spec.pool_radius is None else spec.pool_radius
        if radius < cover:
            raise ValueError(
                f"pool_radius={radius} leaves level-{i} vertices outside every pooling neighbourhood "
                f"(covering radius {cover} for {n} -> {sizes[i + 1]}); use pool_radius=None or >= {cover}"
            )
        rows, cols, dists = hop_neighbourhoods(adj, kept, radius)
        down = NeighbourList.from_triplets(rows, cols, dists, len(kept), n)
        pool.append(down)
        unpool.append(down.transpose())
        adj = _coarse_graph(adj, rows, cols, dists, len(kept))
        check_connected(adj, what=f"level-{i + 1} graph")
    return MeshHierarchy(tuple(pool), tuple(unpool), source)


def _coarse_graph(adj: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray, dists: np.ndarray, k: int) -> sp.csr_matrix:
    """Adjacency of kept vertices whose hop-Voronoi cells touch (rows index kept vertices, cols level-i vertices)."""
    n = adj.shape[0]
    order = np.lexsort((rows, dists, cols))  # per vertex: nearest kept vertex first, ties to smaller index
    c_sorted = cols[order]
    first = np.concatenate([[True], c_sorted[1:] != c_sorted[:-1]])
    cell = np.empty(n, dtype=np.int64)
    cell[c_sorted[first]] = rows[order][first]
    a = adj.tocoo()
    cu, cv = cell[a.row], cell[a.col]
    keep = cu != cv
    return adjacency_from_edges(np.stack([cu[keep], cv[keep]], axis=1), k)
