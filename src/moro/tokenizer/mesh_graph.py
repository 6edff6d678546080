"""Vertex graphs of triangle meshes: adjacency, topology hash, hop neighbourhoods, sampling.

Everything here depends on the mesh *topology* only (vertex count + undirected edge set), never
on vertex positions: a body mesh in any pose gives the same graph. Distances are hop counts
(number of edges on a shortest path), computed by breadth-first search on sparse matrices.

Shape letters: v vertices, u sources (output vertices), m neighbour slots.
"""

from __future__ import annotations

import hashlib

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

__all__ = [
    "edges_from_faces",
    "adjacency_from_edges",
    "check_connected",
    "topology_hash",
    "hop_neighbourhoods",
    "farthest_point_sampling",
]


def edges_from_faces(faces: np.ndarray, num_vertices: int) -> np.ndarray:
    """Undirected edge set of a triangle mesh.

    Args:
        faces: (f, 3) integer vertex indices in [0, num_vertices).
        num_vertices: v, number of mesh vertices.

    Returns:
        (e, 2) int64 array of unique edges (i, j) with i < j, sorted lexicographically;
        independent of face order and face orientation.
    """
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.shape[0] == 0:
        raise ValueError(
            f"faces must be a non-empty (f, 3) integer array of triangles, got shape {faces.shape}; "
            "quads must be split into two triangles first"
        )
    if not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(f"faces must hold integer vertex indices, got dtype {faces.dtype}; cast with faces.astype(np.int64)")
    if int(num_vertices) < 3:
        raise ValueError(f"num_vertices must be at least 3, got {num_vertices}")
    faces = faces.astype(np.int64)
    if faces.min() < 0 or faces.max() >= num_vertices:
        raise ValueError(
            f"faces index vertices in [{faces.min()}, {faces.max()}] but the mesh has {num_vertices} vertices; "
            "pass num_vertices=len(vertices) and faces that index into it"
        )
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]], axis=0)
    e = np.sort(e, axis=1)
    e = e[e[:, 0] != e[:, 1]]  # degenerate triangles contribute no self-loops
    return np.unique(e, axis=0)


def adjacency_from_edges(edges: np.ndarray, num_vertices: int) -> sp.csr_matrix:
    """Symmetric 0/1 adjacency matrix (v, v), CSR, int8, without self-loops, sorted indices."""
    e = np.asarray(edges, dtype=np.int64)
    rows = np.concatenate([e[:, 0], e[:, 1]])
    cols = np.concatenate([e[:, 1], e[:, 0]])
    a = sp.csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(num_vertices, num_vertices))
    a.sum_duplicates()
    a.data[:] = 1
    a.sort_indices()
    return a


def check_connected(adjacency: sp.csr_matrix, what: str = "mesh") -> None:
    """Raise a ValueError naming the fix when the graph has more than one connected component."""
    n, labels = connected_components(adjacency, directed=False)
    if n > 1:
        sizes = np.bincount(labels)
        raise ValueError(
            f"the {what} has {n} connected components (sizes {sorted(sizes.tolist(), reverse=True)[:8]}); "
            "the pooling hierarchy needs one connected surface: keep only the main component "
            "(e.g. for SMPL-X drop the eyeballs: vertices 0..9382 and faces whose indices are all < 9383), "
            "and drop vertices that no face references"
        )


def topology_hash(edges: np.ndarray, num_vertices: int) -> str:
    """Hex SHA-256 of (vertex count, sorted undirected edge set): the identity of a topology."""
    h = hashlib.sha256()
    h.update(f"moro-topology-v1:{int(num_vertices)}:".encode())
    h.update(np.ascontiguousarray(edges, dtype="<i8").tobytes())
    return h.hexdigest()


def hop_neighbourhoods(
    adjacency: sp.csr_matrix, sources: np.ndarray, radius: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All vertices within `radius` hops of each source, as sorted COO triplets.

    Args:
        adjacency: (v, v) symmetric 0/1 CSR matrix.
        sources: (u,) vertex indices.
        radius: maximum hop distance, >= 0.

    Returns:
        rows, cols, dists: int64 arrays of equal length: row index into `sources`, neighbour vertex,
        hop distance; sorted by (row, dist, col), so each row starts with the source itself (dist 0).
    """
    sources = np.asarray(sources, dtype=np.int64)
    u, v = len(sources), adjacency.shape[0]
    frontier = sp.csr_matrix((np.ones(u, dtype=np.float32), (np.arange(u), sources)), shape=(u, v))
    reached = frontier.copy()
    adj = adjacency.astype(np.float32)
    parts = [(frontier.tocoo(), 0)]
    for d in range(1, int(radius) + 1):
        nxt = frontier @ adj
        nxt.data[:] = 1.0
        nxt = nxt - nxt.multiply(reached)
        nxt.eliminate_zeros()
        if nxt.nnz == 0:
            break
        parts.append((nxt.tocoo(), d))
        reached = reached + nxt
        frontier = nxt
    rows = np.concatenate([c.row for c, _ in parts]).astype(np.int64)
    cols = np.concatenate([c.col for c, _ in parts]).astype(np.int64)
    dists = np.concatenate([np.full(c.nnz, d, dtype=np.int64) for c, d in parts])
    order = np.lexsort((cols, dists, rows))
    return rows[order], cols[order], dists[order]


def farthest_point_sampling(adjacency: sp.csr_matrix, count: int, start: int = 0) -> tuple[np.ndarray, int]:
    """Deterministic farthest-point sampling by hop distance.

    Starts at `start`; each next sample is the vertex with the largest hop distance to the samples
    chosen so far, ties broken by the smallest vertex index.

    Args:
        adjacency: (v, v) symmetric 0/1 CSR matrix of a connected graph.
        count: number of samples k, 1 <= k <= v.
        start: first sample.

    Returns:
        samples (k,) int64 vertex indices sorted ascending, and the covering radius (the largest
        hop distance from any vertex to its nearest sample).
    """
    v = adjacency.shape[0]
    if not 1 <= count <= v:
        raise ValueError(f"cannot sample {count} of {v} vertices; choose a count in [1, {v}]")
    indptr, indices = adjacency.indptr.astype(np.int64), adjacency.indices.astype(np.int64)
    mind = np.full(v, np.iinfo(np.int64).max, dtype=np.int64)
    chosen = np.empty(count, dtype=np.int64)
    c = int(start)
    for i in range(count):
        chosen[i] = c
        # Pruned BFS: a vertex whose distance does not improve cannot improve the ones behind it.
        mind[c], frontier, d = 0, np.array([c]), 0
        while len(frontier):
            d += 1
            nb = np.unique(_ring(indptr, indices, frontier))
            frontier = nb[mind[nb] > d]
            mind[frontier] = d
        c = int(np.argmax(mind))
    return np.sort(chosen), int(mind.max())


def _ring(indptr: np.ndarray, indices: np.ndarray, frontier: np.ndarray) -> np.ndarray:
    """Concatenated CSR neighbour lists of the `frontier` vertices (with repeats)."""
    starts, ends = indptr[frontier], indptr[frontier + 1]
    lens = ends - starts
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
    return indices[offsets + np.arange(lens.sum())]
