"""Pooling hierarchy: level sizes, coverage, symmetry, determinism, cache and official-format round trips."""

import logging

import numpy as np
import pytest
from scipy.sparse.csgraph import shortest_path
from tok_meshes import grid, icosphere

from moro.tokenizer import hierarchy as hierarchy_module
from moro.tokenizer.hierarchy import DEFAULT_LEVEL_RATIOS, HierarchySpec, build_hierarchy, default_cache_dir
from moro.tokenizer.mesh_graph import adjacency_from_edges, edges_from_faces
from moro.tokenizer.neighbours import MeshHierarchy, NeighbourList, load_official_hierarchy, save_official_hierarchy


@pytest.fixture(scope="module")
def sphere_h():
    v, f = icosphere(3)
    return build_hierarchy(f, len(v), cache=False)


def test_default_ratios_reproduce_the_paper_and_anny_sizes():
    spec = HierarchySpec()
    assert spec.level_sizes(9383) == (9383, 2618, 546, 87)
    assert spec.level_sizes(13348) == (13348, 3724, 777, 124)
    assert [round(r, 3) for r in DEFAULT_LEVEL_RATIOS] == [0.279, 0.209, 0.159]


def test_level_sizes_follow_the_spec(sphere_h):
    assert sphere_h.level_sizes == (642, 179, 37, 6)
    assert sphere_h.num_levels == 3 and sphere_h.num_tokens == 6
    v, f = grid(20, 20)
    h = build_hierarchy(f, len(v), HierarchySpec(levels=(150, 0.3, 12)), cache=False)
    assert h.level_sizes == (400, 150, 45, 12)


@pytest.mark.parametrize("levels, match", [((1.5,), "ratio"), ((True,), "ratio"), ((0,), "vertex count"), ((), "empty")])
def test_bad_level_entries(levels, match):
    with pytest.raises(ValueError, match=match):
        HierarchySpec(levels=levels)


def test_increasing_levels_are_rejected():
    with pytest.raises(ValueError, match="must decrease"):
        HierarchySpec(levels=(100, 200)).level_sizes(642)


def test_structure_self_first_and_transposes(sphere_h):
    h = sphere_h
    for i, n in enumerate(h.level_sizes):
        conv = h.pool[2 * i]
        assert np.array_equal(conv.ids[:, 0], np.arange(n)) and np.all(conv.dists[:, 0] == 0)
    for k in range(len(h.pool)):
        pairs = {(p, int(q)) for p, row in enumerate(h.pool[k].ids) for q in row[h.pool[k].mask[p]]}
        t = h.unpool[k]
        back = {(int(p), q) for q, row in enumerate(t.ids) for p in row[t.mask[q]]}
        assert pairs == back, f"unpool[{k}] is not the transpose of pool[{k}]"
    for i in range(h.num_levels):
        kept = h.kept(i)
        assert np.all(np.diff(kept) > 0) and kept[-1] < h.level_sizes[i]


def test_coverage_every_vertex_near_a_kept_vertex(sphere_h):
    v, f = icosphere(3)
    h = sphere_h
    adj = adjacency_from_edges(edges_from_faces(f, len(v)), len(v))
    nearest = shortest_path(adj, unweighted=True, directed=False, indices=h.kept(0)).min(axis=0)
    assert nearest.max() <= 2
    for i in range(h.num_levels):
        up = h.unpool[2 * i + 1]
        assert np.all(up.counts >= 1)  # every vertex reads at least one kept vertex back
        assert up.dists.max() <= 3  # ... within a bounded number of hops
        assert np.array_equal(np.unique(h.pool[2 * i + 1].ids[h.pool[2 * i + 1].mask]), np.arange(h.level_sizes[i]))


def test_symmetric_meshes_give_the_expected_counts(sphere_h):
    # Icosphere: 12 valence-5 vertices have 1 + 5 + 10 = 16 vertices within 2 hops, all others <= 19.
    counts = sphere_h.pool[0].counts
    assert (counts == 16).sum() == 12 and counts.max() == 19 and counts.min() == 16
    # Grid: every vertex at least 2 rows/columns from the border has the regular 1 + 6 + 12 = 19.
    v, f = grid(12, 10)
    h = build_hierarchy(f, len(v), cache=False)
    interior = np.zeros((10, 12), bool)
    interior[2:-2, 2:-2] = True
    assert np.all(h.pool[0].counts[interior.ravel()] == 19)
    # Kept vertices spread evenly: pooling neighbourhoods are all of similar size.
    sizes = sphere_h.pool[1].counts
    assert sizes.min() >= 16 and sizes.max() <= 19


def test_deterministic_and_independent_of_face_order():
    v, f = icosphere(3)
    a = build_hierarchy(f, len(v), cache=False)
    b = build_hierarchy(f[np.random.default_rng(1).permutation(len(f))][:, [1, 2, 0]], len(v), cache=False)
    assert a.equals(b) and a.digest == b.digest


def test_cache_round_trip(tmp_path, monkeypatch):
    v, f = icosphere(2)
    spec = HierarchySpec(levels=(0.4, 0.375, 0.4))
    built = build_hierarchy(f, len(v), spec, cache_dir=tmp_path)
    files = list((tmp_path / "hierarchy").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"  # no temporary files left behind

    def fail(*args, **kwargs):
        raise AssertionError("regenerated instead of reading the cache")

    monkeypatch.setattr(hierarchy_module, "_generate", fail)
    cached = build_hierarchy(f, len(v), spec, cache_dir=tmp_path)
    assert cached.equals(built) and cached.digest == built.digest
    monkeypatch.undo()
    other = build_hierarchy(f, len(v), HierarchySpec(levels=(0.5, 0.5, 0.5)), cache_dir=tmp_path)
    assert other.level_sizes == (162, 81, 40, 20) and len(list((tmp_path / "hierarchy").iterdir())) == 2


def test_corrupt_cache_is_rebuilt(tmp_path, caplog):
    v, f = icosphere(2)
    built = build_hierarchy(f, len(v), cache_dir=tmp_path)
    (path,) = (tmp_path / "hierarchy").iterdir()
    path.write_bytes(b"not an npz")
    with caplog.at_level(logging.WARNING):
        again = build_hierarchy(f, len(v), cache_dir=tmp_path)
    assert again.equals(built) and "rebuilding" in caplog.text


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MORO_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    v, f = icosphere(1)
    build_hierarchy(f, len(v), HierarchySpec(levels=(20, 8, 3)))
    assert len(list((tmp_path / "c" / "hierarchy").glob("*.npz"))) == 1


def test_official_format_round_trip(tmp_path, sphere_h):
    save_official_hierarchy(sphere_h, tmp_path)
    rows = np.load(tmp_path / "_pool1.npy")
    assert rows.dtype == np.int32 and rows.shape == (179, 1 + 2 * sphere_h.pool[1].max_neighbours)
    assert np.array_equal(rows[:, 0], sphere_h.pool[1].counts)
    pad = rows[:, 1::2] == 642  # padding id = number of input vertices, dist -1
    assert pad.any() and np.all(rows[:, 2::2][pad] == -1)
    loaded = load_official_hierarchy(tmp_path)
    assert loaded.equals(sphere_h) and loaded.digest == sphere_h.digest
    assert loaded.source.startswith("official:")


def test_official_loader_ignores_an_incomplete_last_level(tmp_path):
    # The authors ship _pool7/_unpool7 (87 -> 13) without a conv list after it: 3 usable steps.
    v, f = icosphere(3)
    h4 = build_hierarchy(f, len(v), HierarchySpec(levels=(0.3, 0.3, 0.3, 0.3)), cache=False)
    save_official_hierarchy(h4, tmp_path)
    (tmp_path / "_pool8.npy").unlink()
    (tmp_path / "_unpool8.npy").unlink()
    loaded = load_official_hierarchy(tmp_path)
    assert loaded.num_levels == 3 and loaded.level_sizes == h4.level_sizes[:4]
    assert load_official_hierarchy(tmp_path, num_levels=1).level_sizes == h4.level_sizes[:2]


def test_official_loader_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_official_hierarchy(tmp_path / "missing")
    with pytest.raises(ValueError, match="_pool0.npy"):
        load_official_hierarchy(tmp_path)


def test_neighbour_list_validation():
    ids = np.array([[0, 1, 3], [1, 3, 3]])
    nl = NeighbourList(ids, np.array([[0, 1, -1], [0, -1, -1]]), num_in=3)
    assert nl.counts.tolist() == [2, 1]
    assert NeighbourList.from_rows(nl.to_rows(), 3).equals(nl)
    with pytest.raises(ValueError, match="dist -1"):
        NeighbourList(ids, np.array([[0, 1, 1], [0, -1, -1]]), num_in=3)
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        NeighbourList(ids + 5, np.array([[0, 1, -1], [0, -1, -1]]), num_in=3)
    with pytest.raises(ValueError, match="count column"):
        rows = nl.to_rows()
        rows[0, 0] = 3
        NeighbourList.from_rows(rows, 3)


def test_mismatched_lists_are_rejected(sphere_h):
    pool = list(sphere_h.pool)
    pool[2] = sphere_h.pool[0]  # a 642-vertex conv list where level 1 has 179 vertices
    with pytest.raises(ValueError, match="different hierarchies"):
        MeshHierarchy(tuple(pool), sphere_h.unpool)


def test_multi_component_mesh_and_small_pool_radius_are_rejected():
    v, f = icosphere(1)
    with pytest.raises(ValueError, match="connected components"):
        build_hierarchy(np.concatenate([f, f + len(v)]), 2 * len(v), cache=False)
    v, f = icosphere(3)
    with pytest.raises(ValueError, match="pool_radius=1 leaves"):
        build_hierarchy(f, len(v), HierarchySpec(levels=(0.05, 0.5, 0.5), pool_radius=1), cache=False)
