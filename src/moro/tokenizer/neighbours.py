"""Neighbour lists and the pooling hierarchy they form, in memory and in the authors' file format.

A `MeshHierarchy` with L pooling steps holds 2L+1 `pool` and 2L+1 `unpool` neighbour lists,
indexed exactly like the authors' `_pool{k}.npy` / `_unpool{k}.npy` files (Zhou et al. 2020):

    pool[2i]      level i -> level i     encoder conv neighbourhood (first entry = the vertex itself)
    pool[2i+1]    level i -> level i+1   pooling: for each kept vertex, its neighbours in level i
    unpool[2i]    level i -> level i     decoder conv neighbourhood (transpose of pool[2i])
    unpool[2i+1]  level i+1 -> level i   unpooling: for each level-i vertex, the kept vertices near it

On disk each list is an int32 array with one row per output vertex,
`[count, id_1, dist_1, ..., id_m, dist_m]`, unused slots padded with id = number of input vertices
and dist = -1; dist is a hop count. Shape letters: u output vertices, m neighbour slots.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

__all__ = ["NeighbourList", "MeshHierarchy", "load_official_hierarchy", "save_official_hierarchy"]


@dataclass(frozen=True, eq=False)
class NeighbourList:
    """For each of u output vertices, up to m neighbours among `num_in` input vertices.

    Attributes:
        ids: (u, m) int64 neighbour indices in [0, num_in]; unused slots hold num_in (padding),
            always after the used ones.
        dists: (u, m) int64 hop distances; -1 exactly on padding slots.
        num_in: number of input vertices (= the padding id).
    """

    ids: np.ndarray
    dists: np.ndarray
    num_in: int

    def __post_init__(self) -> None:
        ids, dists = np.asarray(self.ids, dtype=np.int64), np.asarray(self.dists, dtype=np.int64)
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "dists", dists)
        if ids.ndim != 2 or ids.shape != dists.shape or ids.shape[1] == 0:
            raise ValueError(f"neighbour ids {ids.shape} and dists {dists.shape} must be equal (u, m) arrays with m >= 1")
        if ids.min() < 0 or ids.max() > self.num_in:
            raise ValueError(
                f"neighbour ids must lie in [0, {self.num_in}] (padding = {self.num_in}), got [{ids.min()}, {ids.max()}]; "
                "check that the list is paired with the right input level"
            )
        pad = ids == self.num_in
        if not np.array_equal(pad, dists < 0):
            raise ValueError("padding slots (id = num_in) must have dist -1 and only they; the file is corrupt")
        if np.any(pad[:, :-1] & ~pad[:, 1:]):
            raise ValueError("padding slots must follow the used slots in every row; the file is corrupt")
        if np.any(pad[:, 0]):
            raise ValueError(f"rows {np.flatnonzero(pad[:, 0])[:5].tolist()} have no neighbour; every output vertex needs one")

    @property
    def num_out(self) -> int:
        return self.ids.shape[0]

    @property
    def max_neighbours(self) -> int:
        return self.ids.shape[1]

    @property
    def mask(self) -> np.ndarray:
        """(u, m) bool, True on used slots."""
        return self.ids != self.num_in

    @property
    def counts(self) -> np.ndarray:
        """(u,) int64 number of used slots per row."""
        return self.mask.sum(axis=1)

    @classmethod
    def from_triplets(cls, rows: np.ndarray, cols: np.ndarray, dists: np.ndarray, num_out: int, num_in: int) -> "NeighbourList":
        """Pack (row, neighbour, dist) triplets, already in the wanted per-row order, into padded arrays."""
        rows = np.asarray(rows, dtype=np.int64)
        counts = np.bincount(rows, minlength=num_out)
        m = max(int(counts.max()), 1)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        slot = np.arange(len(rows)) - starts[rows]
        ids = np.full((num_out, m), num_in, dtype=np.int64)
        ds = np.full((num_out, m), -1, dtype=np.int64)
        ids[rows, slot] = cols
        ds[rows, slot] = dists
        return cls(ids, ds, int(num_in))

    def transpose(self) -> "NeighbourList":
        """Reverse list: for each input vertex, the output vertices listing it (ascending), same dists."""
        rows, slots = np.nonzero(self.mask)
        cols = self.ids[rows, slots]
        order = np.lexsort((rows, cols))  # by input vertex, then output vertex
        return NeighbourList.from_triplets(
            cols[order], rows[order], self.dists[rows, slots][order], self.num_in, self.num_out
        )

    def to_rows(self) -> np.ndarray:
        """(u, 1 + 2m) int32 rows `[count, id_1, dist_1, ...]` of the authors' format."""
        inter = np.stack([self.ids, self.dists], axis=-1).reshape(self.num_out, -1)
        return np.concatenate([self.counts[:, None], inter], axis=1).astype(np.int32)

    @classmethod
    def from_rows(cls, rows: np.ndarray, num_in: int) -> "NeighbourList":
        """Inverse of `to_rows`; checks that the stored counts match the padding."""
        rows = np.asarray(rows)
        if rows.ndim != 2 or rows.shape[1] < 3 or rows.shape[1] % 2 != 1:
            raise ValueError(f"neighbour rows must have shape (u, 1 + 2m), got {rows.shape}")
        pairs = rows[:, 1:].reshape(rows.shape[0], -1, 2).astype(np.int64)
        out = cls(pairs[..., 0], pairs[..., 1], int(num_in))
        if not np.array_equal(out.counts, rows[:, 0]):
            raise ValueError("the count column disagrees with the padded slots; the file is corrupt")
        return out

    def equals(self, other: "NeighbourList") -> bool:
        return (
            self.num_in == other.num_in
            and np.array_equal(self.ids, other.ids)
            and np.array_equal(self.dists, other.dists)
        )


@dataclass(frozen=True, eq=False)
class MeshHierarchy:
    """Pooling hierarchy of a mesh: L pooling steps, level sizes v_0 > v_1 > ... > v_L.

    Attributes:
        pool, unpool: 2L+1 neighbour lists each, indexed like the authors' files (module docstring).
        source: where it came from ("generated:<cache key>", "official:<folder>", ...), for messages.
    """

    pool: tuple[NeighbourList, ...]
    unpool: tuple[NeighbourList, ...]
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "pool", tuple(self.pool))
        object.__setattr__(self, "unpool", tuple(self.unpool))
        k = len(self.pool)
        if k % 2 != 1 or len(self.unpool) != k:
            raise ValueError(f"need 2L+1 pool and unpool lists, got {k} and {len(self.unpool)}")
        sizes = [self.pool[0].num_in]
        for i in range(k // 2):
            sizes.append(self.pool[2 * i + 1].num_out)
        for i, v in enumerate(sizes):
            expect = {
                f"pool[{2 * i}]": (self.pool[2 * i], v, v),
                f"unpool[{2 * i}]": (self.unpool[2 * i], v, v),
            }
            if i + 1 < len(sizes):
                expect[f"pool[{2 * i + 1}]"] = (self.pool[2 * i + 1], v, sizes[i + 1])
                expect[f"unpool[{2 * i + 1}]"] = (self.unpool[2 * i + 1], sizes[i + 1], v)
            for name, (nl, n_in, n_out) in expect.items():
                if (nl.num_in, nl.num_out) != (n_in, n_out):
                    raise ValueError(
                        f"{name} maps {nl.num_in} -> {nl.num_out} vertices but the level chain {sizes} needs "
                        f"{n_in} -> {n_out}; the files come from different hierarchies"
                    )
        for i in range(k // 2):
            nl = self.pool[2 * i + 1]
            if np.any(nl.dists[:, 0] != 0) or len(np.unique(nl.ids[:, 0])) != nl.num_out:
                raise ValueError(f"pool[{2 * i + 1}] must list each kept vertex itself first (dist 0), once")
        object.__setattr__(self, "_sizes", tuple(sizes))

    @property
    def level_sizes(self) -> tuple[int, ...]:
        """(v_0, ..., v_L): vertex count per level; v_0 = mesh vertices, v_L = tokens."""
        return self._sizes  # type: ignore[attr-defined]

    @property
    def num_levels(self) -> int:
        """L, the number of pooling steps."""
        return len(self.pool) // 2

    @property
    def num_tokens(self) -> int:
        return self.level_sizes[-1]

    def kept(self, i: int) -> np.ndarray:
        """(v_{i+1},) indices into level i of the vertices that survive pooling step i."""
        return self.pool[2 * i + 1].ids[:, 0].copy()

    @cached_property
    def digest(self) -> str:
        """Hex SHA-256 of all neighbour lists: two hierarchies with the same digest are identical."""
        h = hashlib.sha256(b"moro-hierarchy-v1")
        for nl in self.pool + self.unpool:
            rows = np.ascontiguousarray(nl.to_rows(), dtype="<i4")
            h.update(f"{nl.num_in}:{rows.shape}".encode())
            h.update(rows.tobytes())
        return h.hexdigest()

    def equals(self, other: "MeshHierarchy") -> bool:
        return len(self.pool) == len(other.pool) and all(
            a.equals(b) for a, b in zip(self.pool + self.unpool, other.pool + other.unpool)
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat dict `{"pool{k}": rows, "unpool{k}": rows}` in the authors' row format."""
        out = {f"pool{k}": nl.to_rows() for k, nl in enumerate(self.pool)}
        out.update({f"unpool{k}": nl.to_rows() for k, nl in enumerate(self.unpool)})
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], source: str = "", num_levels: int | None = None) -> "MeshHierarchy":
        """Inverse of `to_arrays`; input vertex counts follow from the row counts of the chain.

        Uses the first `num_levels` pooling steps (default: all complete ones, i.e. those whose
        pool/unpool lists and the following level's conv lists exist).
        """
        avail = 0
        while all(f"{n}{2 * avail + j}" in arrays for n in ("pool", "unpool") for j in (1, 2)):
            avail += 1
        if "pool0" not in arrays or "unpool0" not in arrays:
            raise ValueError(f"no pool0/unpool0 lists among {sorted(arrays)[:6]}; not a pooling hierarchy")
        levels = avail if num_levels is None else int(num_levels)
        if not 0 <= levels <= avail:
            raise ValueError(f"asked for {levels} pooling steps but only {avail} complete steps are present")
        sizes = [arrays["pool0"].shape[0]]
        for i in range(levels):
            sizes.append(arrays[f"pool{2 * i + 1}"].shape[0])
        pool, unpool = [], []
        for k in range(2 * levels + 1):
            i = k // 2
            pool.append(NeighbourList.from_rows(arrays[f"pool{k}"], sizes[i]))
            unpool.append(NeighbourList.from_rows(arrays[f"unpool{k}"], sizes[i + 1] if k % 2 else sizes[i]))
        return cls(tuple(pool), tuple(unpool), source)


def load_official_hierarchy(folder: str | os.PathLike, num_levels: int | None = None) -> MeshHierarchy:
    """Read the authors' `_pool{k}.npy` / `_unpool{k}.npy` files (e.g. `body_models/smplx_ConnectionMatrices/`).

    Args:
        folder: directory holding the files.
        num_levels: pooling steps to use; default all complete ones. With the authors' SMPL-X
            files that is 3 (9383 -> 2618 -> 546 -> 87; the 13-vertex `_pool7` level has no conv
            list after it and is ignored).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"hierarchy folder {folder} does not exist; point to the folder holding _pool0.npy, _unpool0.npy, ...")
    arrays = {}
    for path in sorted(folder.glob("_*pool*.npy")):
        name = path.stem.lstrip("_")
        if name.startswith(("pool", "unpool")) and name.split("pool")[-1].isdigit():
            arrays[name] = np.load(path, allow_pickle=False)
    if "pool0" not in arrays:
        raise ValueError(f"{folder} holds no _pool0.npy; point to the authors' ConnectionMatrices folder")
    return MeshHierarchy.from_arrays(arrays, source=f"official:{folder}", num_levels=num_levels)


def save_official_hierarchy(hierarchy: MeshHierarchy, folder: str | os.PathLike) -> None:
    """Write `_pool{k}.npy` / `_unpool{k}.npy` (int32 rows) into `folder`, creating it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in hierarchy.to_arrays().items():
        np.save(folder / f"_{name}.npy", rows)
