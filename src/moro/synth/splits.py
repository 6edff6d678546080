"""The splits of the synthetic world (``train``, ``val``, ``bench``) and their per-sequence plans.

Every sequence is fully determined by a :class:`SequenceTask`: its name, its seed and the
settings of its subset. The seed of sequence ``i`` is derived from ``(split seed, split,
subset, i)`` with :class:`numpy.random.SeedSequence`, so a sequence does not depend on how many
sequences are asked, on the number of workers or on the order they run in: a resumed or
extended split is the same data, and ``bench`` is a fixed benchmark (same labels on every run
of the same moro version, see :mod:`moro.synth.writer`).

=========== ============= ========= ===========================================================
split       default seed  default   sequences
=========== ============= ========= ===========================================================
``train``   0             1000x300  ``s00000``...: 70 % with occluders (target 10-50 % of the
                                    joint-frames hidden), 30 % re-framed to truncate the person
``val``     1             50x300    as ``train``
``bench``   2026          40x300    ``occ/s00000``... (the first ceil(N/2)): occluders hiding
                                    35-55 % of the joint-frames (truncation included, half of
                                    them re-framed); ``clean/s00000``... (floor(N/2)): none
=========== ============= ========= ===========================================================

Measured on the default bench (moro 0.1.0, EGL): 40.5 % of the joint-frames of ``bench/occ``
occluded, 2.4 % of ``bench/clean`` (long walks that leave every one of the 12 camera draws of
:mod:`moro.synth.sequence`); ground-truth foot sliding 0.73 mm/frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["SPLITS", "SubsetSpec", "SplitSpec", "SequenceTask", "plan_split", "sequence_seeds"]


@dataclass(frozen=True)
class SubsetSpec:
    """How the sequences of one subset are staged."""

    name: str  # "" (sequences directly in the split folder) or a sub-folder ("occ", "clean")
    occluded_prob: float  # chance that a sequence gets occluders
    level: tuple[float, float]  # target fraction of joint-frames hidden (occluders + truncation), drawn uniformly
    truncation_prob: float  # chance that the camera is re-aimed so the person leaves the frame in stretches
    share: float = 1.0  # fraction of the split's sequences (the last subset takes the rest)


@dataclass(frozen=True)
class SplitSpec:
    name: str
    code: int  # enters every sequence seed, so equal seeds still give different splits
    seed: int  # default seed
    sequences: int  # default number of sequences
    frames: int  # default frames per sequence
    subsets: tuple[SubsetSpec, ...]


_MIXED = SubsetSpec("", occluded_prob=0.7, level=(0.1, 0.5), truncation_prob=0.3)
SPLITS: dict[str, SplitSpec] = {
    "train": SplitSpec("train", 1, 0, 1000, 300, (_MIXED,)),
    "val": SplitSpec("val", 2, 1, 50, 300, (_MIXED,)),
    "bench": SplitSpec("bench", 3, 2026, 40, 300, (
        SubsetSpec("occ", occluded_prob=1.0, level=(0.35, 0.55), truncation_prob=0.5, share=0.5),
        SubsetSpec("clean", occluded_prob=0.0, level=(0.0, 0.0), truncation_prob=0.0, share=0.5),
    )),
}


@dataclass(frozen=True)
class SequenceTask:
    """Everything needed to generate (or recognise) one sequence."""

    split: str
    subset: str
    index: int  # position in the subset
    seed: int  # the sequence seed (motion and every other random draw derive from it)
    frames: int
    width: int
    height: int
    occluded_prob: float
    level: tuple[float, float]
    truncation_prob: float
    fps: float = 30.0
    save_vertices: bool = False
    png: bool = False
    topology: str = "notoes_collapse5pc"
    backend: str | None = None  # render backend (None: $MORO_RENDER_BACKEND or auto)

    @property
    def name(self) -> str:
        """Sequence name inside the split: ``s00012`` or ``occ/s00012``."""
        return f"{self.subset}/s{self.index:05d}" if self.subset else f"s{self.index:05d}"

    def settings(self) -> dict:
        """What the data depends on (recorded in meta.json; a resumed run must match it)."""
        d = asdict(self)
        d.pop("backend")
        d["level"] = list(d["level"])
        return d


def sequence_seeds(split_seed: int, split_code: int, subset_code: int, index: int) -> np.random.SeedSequence:
    """The :class:`numpy.random.SeedSequence` of one sequence."""
    return np.random.SeedSequence([int(split_seed), split_code, subset_code, int(index)])


def _positive(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def plan_split(
    split: str,
    sequences: int | None = None,
    frames: int | None = None,
    seed: int | None = None,
    width: int = 960,
    height: int = 540,
    save_vertices: bool = False,
    png: bool = False,
    topology: str = "notoes_collapse5pc",
    backend: str | None = None,
) -> list[SequenceTask]:
    """The tasks of a split (defaults from :data:`SPLITS`), in name order.

    Raises:
        ValueError: unknown split, non-positive sizes, a negative seed, or an odd image size
            for H.264 video (``png=False``).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {sorted(SPLITS)}")
    spec = SPLITS[split]
    n = _positive("sequences", spec.sequences if sequences is None else sequences)
    t = _positive("frames", spec.frames if frames is None else frames)
    w, h = _positive("width", width), _positive("height", height)
    seed = spec.seed if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not png and (w % 2 or h % 2):
        raise ValueError(f"H.264 video needs an even width and height, got {w}x{h}; choose an even size or pass --png")
    counts, left = [], n
    for k, sub in enumerate(spec.subsets):
        c = left if k == len(spec.subsets) - 1 else min(left, int(np.ceil(n * sub.share)))
        counts.append(c)
        left -= c
    tasks = []
    for code, (sub, count) in enumerate(zip(spec.subsets, counts)):
        for i in range(count):
            s = int(sequence_seeds(seed, spec.code, code, i).generate_state(1)[0] & 0x7FFFFFFF)
            tasks.append(SequenceTask(split, sub.name, i, s, t, w, h, sub.occluded_prob, sub.level, sub.truncation_prob,
                                      save_vertices=save_vertices, png=png, topology=topology, backend=backend))
    return tasks
