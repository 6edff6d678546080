"""The synthetic benchmark protocol (``moro eval --protocol synth``): ground truth from ``moro synth`` labels.

``--gt`` is a split folder written by ``moro synth`` (normally ``OUT/bench``, whose sequences are
``occ/s00000``, ..., ``clean/s00000``, ...), or one half of it (``OUT/bench/occ``), or a single
sequence folder. Every complete sequence is scored, all of its frames; a manifest
(``split.json``) listing a missing sequence is an error (:mod:`moro.data.synth`).

Per sequence the :class:`GroundTruthSequence` holds, straight from ``labels.npz``:
``joints_cam`` / ``joints_world`` (Anny's 22 SMPL-order joints), ``visibility`` (the rendered
depth-test labels: the vis/occ split of MPJPE), ``T_w2c`` and ``K`` (the static camera repeated
per frame), ``feet_world`` with ``foot_vertex_ids`` (foot sliding), ``vertices_cam`` with topology
``anny-<topology>:<V>`` when the split was written with ``--save-vertices`` (PVE), and the
input ``boxes``: the detector-like boxes, or with ``use_gt_boxes`` the GT boxes (projected 22
joints, x1.2; supplement D). Accel is the plain (non WHAM-style) definition.

:func:`write_gt_predictions` writes the ground truth as a prediction folder
(:mod:`moro.metrics.predictions.format`): scoring it gives zeros everywhere, and jitter / sliding
equal to the ground truth's own reference row - the protocol's self-test.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from moro.data.synth import SynthDataset, SynthFormatError, SynthSequence
from moro.metrics.predictions.format import PredictionSequence, prediction_path, write_prediction

from .protocol import Protocol
from .sequence import GroundTruthError, GroundTruthSequence

__all__ = ["SynthBenchmark", "synth_ground_truth", "write_gt_predictions"]


def _topology(seq: SynthSequence) -> str:
    b = seq.meta["body"]
    return f"{b['model']}-{b['topology']}:{int(b['num_vertices'])}"


def synth_ground_truth(seq: SynthSequence, use_gt_boxes: bool = False) -> GroundTruthSequence:
    """One synthetic sequence as a validated :class:`GroundTruthSequence` (every frame scored)."""
    try:
        lab = seq.labels
    except SynthFormatError as e:
        raise GroundTruthError(f"synth sequence {seq.name!r}: {e}") from e
    f = seq.num_frames
    verts = lab.get("vertices_cam")
    gt = GroundTruthSequence(
        name=seq.name, frame_ids=lab["frame_ids"], fps=float(lab["fps"]), joints_cam=lab["joints_cam"],
        joints_world=lab["joints_world"], T_w2c=np.broadcast_to(lab["T_w2c"], (f, 4, 4)).copy(),
        K=np.broadcast_to(lab["K"], (f, 3, 3)).copy(), image_size=(int(lab["image_size"][0]), int(lab["image_size"][1])),
        visibility=lab["visibility"], vertices_cam=verts, topology=_topology(seq) if verts is not None else None,
        feet_world=lab["feet_world"], foot_vertex_ids=lab["foot_vertex_ids"],
        boxes=lab["box_gt"] if use_gt_boxes else lab["box_det"],
        joint_source=f"{_topology(seq)} joints22 regressor (synthetic ground truth)",
        meta={"subset": seq.meta.get("subset", ""), "folder": str(seq.folder), "seed": seq.meta.get("seed")},
    )
    return gt.validate()


class SynthBenchmark(Protocol):
    """The synthetic benchmark protocol over a ``moro synth`` folder.

    Args:
        root: split folder, half (``occ`` / ``clean``) or sequence folder.
        use_gt_boxes: input boxes from the projected GT joints (supplement D) instead of the
            detector-like boxes.
        verify: check every file's sha256 against its ``meta.json``.
    """

    name = "synth"

    def __init__(self, root: str | os.PathLike, use_gt_boxes: bool = False, verify: bool = False):
        super().__init__()
        self.root = Path(root)
        try:
            self.dataset = SynthDataset(self.root, strict=True, verify=verify)
        except (SynthFormatError, FileNotFoundError) as e:
            raise GroundTruthError(f"--gt {self.root}: {e}") from e
        self.use_gt_boxes = use_gt_boxes
        if not any(_has_vertices(folder) for _, folder in self.dataset.entries):
            self.notes.append("PVE: the split was written without --save-vertices (no ground-truth vertices)")

    def options(self) -> dict:
        return {**super().options(), "gt_boxes": self.use_gt_boxes, "root": str(self.root)}

    def sequences(self) -> Iterator[GroundTruthSequence]:
        for k in range(len(self.dataset)):
            yield synth_ground_truth(self.dataset[k], self.use_gt_boxes)


def _has_vertices(folder: Path) -> bool:
    """Whether a sequence folder's meta.json says the mesh was saved."""
    try:
        return bool(json.loads((folder / "meta.json").read_text())["settings"]["save_vertices"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def write_gt_predictions(gt_root: str | os.PathLike, pred_dir: str | os.PathLike, method: str = "ground-truth") -> list[Path]:
    """Write the ground truth of ``gt_root`` as method ``method`` under ``pred_dir``.

    Files: ``pred_dir/<method>/<sequence>.npz`` with ``joints_cam``, ``feet_cam`` and, when the
    split has them, ``vertices_cam``; ``joints_world`` and the body-model parameters
    (``param_root_rot_cam`` etc., rotation matrices) ride along for reference.
    Returns the written paths.
    """
    protocol = SynthBenchmark(gt_root)
    paths = []
    for k in range(len(protocol.dataset)):
        seq = protocol.dataset[k]
        lab = seq.labels
        verts = lab.get("vertices_cam")
        pred = PredictionSequence(
            sequence=seq.name, frame_ids=lab["frame_ids"], fps=float(lab["fps"]), joints_cam=lab["joints_cam"],
            vertices_cam=verts, topology=_topology(seq) if verts is not None else None, feet_cam=lab["feet_cam"],
            joints_world=lab["joints_world"],
            params={"root_rot_cam": lab["root_rot_cam"].reshape(seq.num_frames, -1),
                    "root_trans_cam": lab["root_trans_cam"], "betas": lab["betas"]},
            body_model=seq.meta["body"]["model"], method=method, source=f"moro synth ground truth {seq.folder}",
            scoring="ground-truth joints22",
        )
        paths.append(write_prediction(prediction_path(Path(pred_dir) / method, seq.name), pred))
    return paths
