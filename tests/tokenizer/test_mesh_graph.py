"""Vertex graph helpers: edge sets, connectivity, hop neighbourhoods, farthest-point sampling."""

import numpy as np
import pytest
from scipy.sparse.csgraph import shortest_path
from tok_meshes import grid, icosphere

from moro.tokenizer.mesh_graph import (
    adjacency_from_edges,
    check_connected,
    edges_from_faces,
    farthest_point_sampling,
    hop_neighbourhoods,
    topology_hash,
)


def test_edges_ignore_face_order_and_orientation():
    v, f = icosphere(2)
    rng = np.random.default_rng(0)
    shuffled = f[rng.permutation(len(f))][:, [0, 2, 1]]
    e1, e2 = edges_from_faces(f, len(v)), edges_from_faces(shuffled, len(v))
    assert np.array_equal(e1, e2)
    assert len(e1) == 3 * len(f) // 2  # closed triangle mesh: E = 3F/2
    assert topology_hash(e1, len(v)) == topology_hash(e2, len(v))
    assert topology_hash(e1, len(v)) != topology_hash(e1, len(v) + 1)


@pytest.mark.parametrize(
    "faces, match",
    [
        (np.zeros((0, 3), dtype=np.int64), "non-empty"),
        (np.zeros((4, 4), dtype=np.int64), "triangles"),
        (np.zeros((4, 3), dtype=np.float32), "integer"),
        (np.array([[0, 1, 99]]), "num_vertices"),
    ],
)
def test_bad_faces_name_the_fix(faces, match):
    with pytest.raises(ValueError, match=match):
        edges_from_faces(faces, 10)


def test_two_components_are_rejected():
    v, f = icosphere(1)
    faces = np.concatenate([f, f + len(v)])
    adj = adjacency_from_edges(edges_from_faces(faces, 2 * len(v)), 2 * len(v))
    with pytest.raises(ValueError, match="2 connected components.*eyeballs"):
        check_connected(adj)


def test_hop_neighbourhoods_match_bfs():
    v, f = grid(7, 5)
    adj = adjacency_from_edges(edges_from_faces(f, len(v)), len(v))
    hops = shortest_path(adj, unweighted=True, directed=False)
    sources = np.array([0, 17, 34])
    rows, cols, dists = hop_neighbourhoods(adj, sources, radius=2)
    for r, s in enumerate(sources):
        sel = rows == r
        expect = np.flatnonzero(hops[s] <= 2)
        assert sorted(cols[sel].tolist()) == expect.tolist()
        assert np.array_equal(dists[sel], hops[s, cols[sel]].astype(int))
        assert cols[sel][0] == s and dists[sel][0] == 0  # the source itself first
        assert np.all(np.diff(dists[sel]) >= 0)  # then by distance


def test_farthest_point_sampling_covering_radius():
    v, f = icosphere(3)
    adj = adjacency_from_edges(edges_from_faces(f, len(v)), len(v))
    kept, radius = farthest_point_sampling(adj, 100)
    assert len(np.unique(kept)) == 100 and np.all(np.diff(kept) > 0)
    nearest = shortest_path(adj, unweighted=True, directed=False, indices=kept).min(axis=0)
    assert nearest.max() == radius
    again, _ = farthest_point_sampling(adj, 100)
    assert np.array_equal(kept, again)
    with pytest.raises(ValueError, match="cannot sample"):
        farthest_point_sampling(adj, len(v) + 1)
