"""Convert the authors' released MoRo weights into a moro checkpoint (``moro convert official``).

Inputs (official-checkpoint-layout.md, section 1):

* ``last.ckpt``: the stage-5 Lightning checkpoint; every tensor of its ``state_dict`` (792 keys)
  is mapped by name through :func:`~moro.convert.official_layout.official_key_table` onto the
  ``paper`` preset. The 14 ``bm_neutral.*`` SMPL-X buffers (licensed) and the tokenizer's
  ``code_count`` are checked and dropped; nothing of the body model is written except a
  fingerprint (:mod:`moro.convert.official_body`).
* the connection matrices (``_pool{k}.npy`` / ``_unpool{k}.npy``): the tokenizer's neighbour
  lists, stored inside the output (the learned per-vertex weights only mean something with them).
* ``amass_cum_traj.pkl``: the canonical-trajectory Mean / Std, stored as the model's
  ``traj_mean`` / ``traj_std``.
* optional ``tokenizer.ckpt`` / ``vit_pose_hmr2.pth``: only checked against ``last.ckpt``
  (:mod:`moro.convert.official_crosscheck`).

The output has the layout of :mod:`moro.model.checkpoint`, so ``MoRo.from_checkpoint(out)``
rebuilds the model, plus a ``"source"`` entry (release file names, stage, notes, connection-file
hashes, the body-model fingerprint) and, for the authors' 9383-vertex tokenizer, a ``"body"`` entry
``{"model": "smplx", "topology": "body", "reference": fingerprint or None}`` that ``moro infer``
reads to load the user's SMPL-X (eyeball-free body mesh) and compare it with the authors'
(:func:`moro.inference.loading.resolve_body`). Filled because the release lacks them: ``traj_mean``,
``traj_std`` (from the pkl) and ``tokenizer.quantizer.steps_unused`` (zeros: a trained codebook).

Nothing is guessed: each official key has one moro name, and its shape must equal that of the
target model (built on the meta device, no memory); any missing, unexpected, mis-shaped or
non-finite key stops the conversion with its name. Streaming: the checkpoint is memory-mapped
and the mapped tensors go straight to ``torch.save``, so peak memory stays near one copy of the
weights (pages of the mapped file), never a second one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from moro.convert.official_body import body_reference, check_smplx_against_reference
from moro.convert.official_crosscheck import check_backbone_file, check_tokenizer_file
from moro.convert.official_io import (OfficialConversionError, connection_file_notes, load_torch_file,
                                      read_trajectory_stats, release_state_dict)
from moro.convert.official_layout import (BODY_SHAPES, GROUPS, KeyRule, OfficialDepths, guess_stage,
                                          official_key_table, tokenizer_layer_file)
from moro.body.smpl_files import SMPLX_BODY_VERTICES
from moro.geometry import TrajectoryStats
from moro.model.checkpoint import FORMAT, VERSION
from moro.model.config import MoRoConfig
from moro.model.image_encoder import ImageEncoder, ImageEncoderConfig, build_image_backbone
from moro.model.moro import MoRo
from moro.paths import atomic_write
from moro.tokenizer import MeshHierarchy, MeshVQVAE, MeshVQVAEConfig, load_official_hierarchy

__all__ = ["OfficialTarget", "ConversionReport", "load_connection_matrices", "map_official_state", "convert_official",
           "OfficialConversionError"]

log = logging.getLogger(__name__)
LAYOUT_COMMIT = "1f18c4f"  # the authors' upstream commit the layout was read from
RELEASE_STAGE = "video_train (stage 5, the released last.ckpt)"
FILLED = ("traj_mean", "traj_std", "tokenizer.quantizer.steps_unused")


@dataclass
class OfficialTarget:
    """The moro model the release is mapped onto; ``paper()`` for the released weights.

    Other targets (smaller widths, same depths) serve tests: the key names depend only on the
    depths, the shapes on the widths.
    """

    config: MoRoConfig = field(default_factory=MoRoConfig.paper)
    image: ImageEncoderConfig = field(default_factory=ImageEncoderConfig.paper)
    tokenizer: MeshVQVAEConfig = field(default_factory=MeshVQVAEConfig.paper)
    body_shapes: dict[str, tuple[int, ...]] | None = field(default_factory=lambda: dict(BODY_SHAPES))  # None: names only
    _skeletons: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.image.backbone != "vit_h16_hmr2":
            raise ValueError(f"the authors' weights need the HMR2 ViT backbone (image.backbone='vit_h16_hmr2'), "
                             f"got {self.image.backbone!r}")

    @classmethod
    def paper(cls) -> "OfficialTarget":
        return cls()

    def skeleton(self, hierarchy: MeshHierarchy) -> MoRo:
        """The target model on the meta device (names, shapes and dtypes only; built once per hierarchy)."""
        if hierarchy.digest not in self._skeletons:
            with torch.device("meta"):
                tokenizer = MeshVQVAE(self.tokenizer, hierarchy)
                self._skeletons[hierarchy.digest] = MoRo(self.config, tokenizer, ImageEncoder(self.image),
                                                         backbone=build_image_backbone(self.image))
        return self._skeletons[hierarchy.digest]

    def key_table(self, hierarchy: MeshHierarchy) -> list[KeyRule]:
        """The authors' keys for this target (:func:`~moro.convert.official_layout.official_key_table`)."""
        return official_key_table(self.depths(self.skeleton(hierarchy)))

    def depths(self, skeleton: MoRo) -> OfficialDepths:
        tr = self.config.transformer
        return OfficialDepths(vit_blocks=len(skeleton.backbone.blocks), image_layers=self.image.num_layers,
                              motion_depth=tr.motion_depth, decoder_depth=tr.decoder_depth,
                              tokenizer_levels=len(self.tokenizer.channels),
                              smoother_layers=self.config.smoother.num_layers)


@dataclass
class ConversionReport:
    """What a conversion read, wrote, dropped and noticed."""

    stage: str  # training stage of the source (only the released stage 5 converts)
    keys_in: int  # tensors in the source state dict
    keys_out: int  # tensors written
    dropped: list[str]  # source keys read, checked and not written
    filled: list[str]  # written keys the release does not have
    cast: list[str] = field(default_factory=list)  # source keys converted to float32
    notes: list[str] = field(default_factory=list)
    weights_bytes: int = 0  # bytes of the written weights
    out: str | None = None

    def lines(self) -> list[str]:
        gib = self.weights_bytes / 2**30
        size = f"{gib:.2f} GiB" if gib >= 1 else f"{gib * 1024:.1f} MiB"
        out = [f"source: {self.stage}, {self.keys_in} tensors",
               f"written: {self.keys_out} tensors ({size})"
               + (f" -> {self.out}" if self.out else ""),
               f"dropped: {len(self.dropped)} ({', '.join(sorted({k.split('.')[0] + '.*' for k in self.dropped}))})",
               f"filled: {', '.join(self.filled)}"]
        if self.cast:
            out.append(f"cast to float32: {len(self.cast)} tensors")
        return out + [f"note: {n}" for n in self.notes]


def _listing(names: list[str], limit: int = 10) -> str:
    more = f" ... (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def load_connection_matrices(folder: str | os.PathLike, target: OfficialTarget) -> tuple[MeshHierarchy, list[str]]:
    """Read the ``_pool{k}.npy`` / ``_unpool{k}.npy`` files the target tokenizer needs.

    Returns:
        (hierarchy, names of the files read).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"connection matrices folder not found: {folder}; it is body_models/smplx_ConnectionMatrices of the "
            "authors' release (_pool0.npy .. _pool7.npy, _unpool0.npy .. _unpool7.npy)")
    levels = len(target.tokenizer.channels)
    used = [f"_{kind}{k}.npy" for kind in ("pool", "unpool") for k in range(2 * levels + 1)]
    missing = [n for n in used if not (folder / n).is_file()]
    if missing:
        raise OfficialConversionError(
            f"{folder} lacks {', '.join(missing)}: the tokenizer's {levels} pooling steps need _pool0.._pool{2 * levels} "
            f"and _unpool0.._unpool{2 * levels}; point --connection-matrices at the authors' smplx_ConnectionMatrices")
    try:
        hierarchy = load_official_hierarchy(folder, num_levels=levels)
    except ValueError as err:
        raise OfficialConversionError(
            f"the connection matrices in {folder} are not one pooling hierarchy: {err}") from err
    want = target.tokenizer.num_vertices
    if want is not None and hierarchy.level_sizes[0] != want:
        raise OfficialConversionError(
            f"the connection matrices in {folder} are for a mesh of {hierarchy.level_sizes[0]} vertices, but the "
            f"tokenizer works on {want} (the SMPL-X body without eyeballs); use the authors' smplx_ConnectionMatrices")
    return hierarchy, used


def _key_error(source: str, rules: list[KeyRule], present: set[str], missing: list[str], extra: list[str]) -> str:
    group_of = {r.official: r.group for r in rules}
    groups_present = {r.group for r in rules if r.official in present}
    absent = [g for g in GROUPS if g not in groups_present and g != "body"]
    parts = [f"{source} is not the authors' stage-5 MoRo state dict "
             f"({len(present)} keys; the release has {len(rules)})"]
    if absent:
        stage = guess_stage(groups_present)
        counts = {g: sum(r.group == g for r in rules) for g in GROUPS}
        what = (f"it looks like a checkpoint of training stage {stage}" if stage
                else "its key groups match no training stage")
        parts.append(f"{what}: it lacks {', '.join(f'{GROUPS[g]} ({counts[g]} keys)' for g in absent)}. Only the "
                     "stage-5 video_train checkpoint (MIMO-vit-release/video_train/checkpoints/last.ckpt) holds the "
                     "whole model; stages 1-4 are not released and cannot run video inference")
    partial = [k for k in missing if group_of[k] not in absent]
    if partial:
        parts.append(f"missing {len(partial)}: {_listing(partial)}")
    if extra:
        parts.append(f"unexpected {len(extra)}: {_listing(extra)}")
        wrapped = [k.split(".", 1)[-1] in group_of for k in extra]
        if all(wrapped):
            parts.append(f"the unexpected keys carry an extra leading prefix ('{extra[0].split('.', 1)[0]}.'); "
                         "save the state dict without it")
    return "; ".join(parts)


def _shape_error(source: str, bad: list[tuple[str, tuple, tuple]], hierarchy: MeshHierarchy, levels: int) -> str:
    folder = hierarchy.source.removeprefix("official:")
    lines = []
    for key, got, want in bad:
        line = f"{key}: checkpoint {list(got)}, expected {list(want)}"
        name = key.rsplit(".", 1)[-1]
        if key.startswith("vqvae.fully_conv_ae.") and name.startswith(("w_weights", "p_neighbors")):
            layer = int(name.removeprefix("w_weights").removeprefix("p_neighbors"))
            line += f" (from {tokenizer_layer_file(layer, levels)}: {want[0]} rows, {want[1]} neighbour slots)"
        lines.append(line)
    if all(k.startswith("vqvae.fully_conv_ae.") and ("w_weights" in k or "p_neighbors" in k) for k, _, _ in bad):
        head = (f"the connection matrices in {folder} do not match the tokenizer weights of {source}; use the "
                "smplx_ConnectionMatrices the weights were trained with (the authors' body_models folder)")
    elif all(k.startswith("bm_neutral.") for k, _, _ in bad):
        head = (f"the body-model buffers of {source} are not the SMPL-X layout the tokenizer was trained on "
                "(SMPL-X, 10475 vertices, of which the first 9383 are tokenized): another body model or version")
    else:
        head = f"{source} has tensors of other shapes than the target model (another configuration?)"
    return f"{head}. Mis-shaped {len(bad)}: " + "; ".join(lines[:10]) + (" ..." if len(lines) > 10 else "")


def map_official_state(
    state: Mapping[str, torch.Tensor],
    target: OfficialTarget,
    hierarchy: MeshHierarchy,
    traj_stats: TrajectoryStats,
    source: str = "the checkpoint",
) -> tuple[dict[str, torch.Tensor], ConversionReport]:
    """Check the authors' state dict and rename it to moro's (no copies except dtype casts).

    Args:
        state: official name -> tensor (CPU, memory-mapped or meta; meta skips the value checks).
        target: the model to map onto (:meth:`OfficialTarget.paper`).
        hierarchy: the connection matrices (:func:`load_connection_matrices`).
        traj_stats: the canonical-trajectory statistics.
        source: how to name the state in messages.
    Returns:
        (moro state dict for ``target``, report).
    Raises:
        OfficialConversionError: non-tensor entries, missing / unexpected / mis-shaped / non-float /
            non-finite keys, each named (for a key subset, with the training stage it looks like).
    """
    skeleton = target.skeleton(hierarchy)
    rules = target.key_table(hierarchy)
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise OfficialConversionError(f"{source}: entries that are not tensors: {_listing(sorted(not_tensors))}")
    present = set(state)
    names = {r.official for r in rules}
    body_absent = not any(r.official in present for r in rules if r.group == "body")
    missing = [r.official for r in rules if r.official not in present and not (r.group == "body" and body_absent)]
    extra = sorted(present - names)
    if missing or extra:
        raise OfficialConversionError(_key_error(source, rules, present, missing, extra))

    ours = skeleton.state_dict()
    num_codes = target.config.tokens.num_codes
    bad, not_float = [], []
    for r in rules:
        if r.official not in present:
            continue
        if r.ours is not None:
            want = tuple(ours[r.ours].shape)
        elif r.group == "body":
            want = None if target.body_shapes is None else target.body_shapes[r.official.removeprefix("bm_neutral.bm.")]
        else:  # vqvae.vq_vae.code_count
            want = (num_codes,)
        got = tuple(state[r.official].shape)
        if want is not None and got != want:
            bad.append((r.official, got, want))
        if r.ours is not None and not state[r.official].is_floating_point():
            not_float.append(f"{r.official} ({state[r.official].dtype})")
    if bad:
        raise OfficialConversionError(_shape_error(source, bad, hierarchy, len(target.tokenizer.channels)))
    if not_float:
        raise OfficialConversionError(f"{source}: weights must be floating point: {_listing(not_float)}")

    out: dict[str, torch.Tensor] = {}
    cast, nonfinite = [], []
    for r in rules:
        if r.ours is None:
            continue
        t, dtype = state[r.official], ours[r.ours].dtype
        if t.dtype != dtype:
            t = t.to(dtype)
            cast.append(r.official)
        if t.device.type != "meta":
            t = t.contiguous()
            if not bool(torch.isfinite(t).all()):
                nonfinite.append(r.official)
        out[r.ours] = t
    if nonfinite:
        raise OfficialConversionError(f"{source}: NaN or inf values in {_listing(nonfinite)}; the file is damaged")
    out["traj_mean"] = traj_stats.mean.to(ours["traj_mean"].dtype).clone()
    out["traj_std"] = traj_stats.std.to(ours["traj_std"].dtype).clone()
    unused = ours["tokenizer.quantizer.steps_unused"]
    out["tokenizer.quantizer.steps_unused"] = torch.zeros(unused.shape, dtype=unused.dtype)  # trained: none dead
    if set(out) != set(ours):  # pragma: no cover - the key table and the model disagree: a bug
        raise RuntimeError(f"internal: table vs model keys differ: {sorted(set(out) ^ set(ours))[:10]}")
    out = {k: out[k] for k in ours}  # the model's order

    groups = {r.group for r in rules if r.official in present}
    report = ConversionReport(
        stage=guess_stage(groups) or RELEASE_STAGE, keys_in=len(present), keys_out=len(out),
        dropped=sorted(r.official for r in rules if r.ours is None and r.official in present), filled=list(FILLED),
        cast=cast, weights_bytes=sum(t.numel() * t.element_size() for t in out.values()),
    )
    if any(t.device.type == "meta" for t in out.values()):
        report.notes.append("the source holds tensors without data (meta device): a shapes-only file, for tests")
    if body_absent:
        report.notes.append("the checkpoint holds no bm_neutral.* body-model buffers (stripped before): nothing to drop")
    if cast:
        report.notes.append(f"{len(cast)} tensors were not float32 and were cast (first: {cast[0]})")
    emb, codebook = out["token_emb.weight"], out["tokenizer.quantizer.codebook"]
    if emb.device.type != "meta":
        diff = float((emb[:num_codes] - codebook).abs().max())
        if diff > 0:
            report.notes.append(f"token_emb rows 0..{num_codes - 1} differ from the tokenizer codebook (max |diff| "
                                f"{diff:.3g}); kept as released: predicted ids are decoded through token_emb")
        if bool(emb[num_codes].any()):
            report.notes.append(f"the [MASK] row {num_codes} of token_emb is not zero; kept as released")
    return out, report


def convert_official(
    ckpt: str | os.PathLike,
    connection_matrices: str | os.PathLike,
    traj_stats: str | os.PathLike,
    out: str | os.PathLike,
    *,
    tokenizer: str | os.PathLike | None = None,
    backbone: str | os.PathLike | None = None,
    smplx: str | os.PathLike | None = None,
    trust_pickle: bool = False,
    target: OfficialTarget | None = None,
) -> ConversionReport:
    """Convert the authors' release into a moro checkpoint at ``out`` (see the module docstring).

    Args:
        ckpt: the stage-5 ``last.ckpt``.
        connection_matrices: folder of ``_pool{k}.npy`` / ``_unpool{k}.npy``.
        traj_stats: ``amass_cum_traj.pkl``.
        out: output file (written atomically).
        tokenizer, backbone: optional ``tokenizer.ckpt`` / ``vit_pose_hmr2.pth``, checked against ``ckpt``.
        smplx: optional SMPL-X file, checked against the authors' body model (same topology and version).
        trust_pickle: unpickle the inputs for real (trusted copies only).
        target: the model to map onto (default: the paper preset).
    Returns:
        :class:`ConversionReport`.
    """
    target = target or OfficialTarget.paper()
    ckpt, out = Path(ckpt), Path(out)
    if out.exists() and ckpt.exists() and out.resolve() == ckpt.resolve():
        raise OfficialConversionError(f"--out {out} would overwrite the input checkpoint; choose another file")
    stats = read_trajectory_stats(traj_stats, trust_pickle)  # cheap inputs first: fail before the big file
    hierarchy, used_files = load_connection_matrices(connection_matrices, target)
    loaded = load_torch_file(ckpt, trust_pickle, what="MoRo checkpoint")
    state, notes = release_state_dict(loaded.obj, ckpt)
    if loaded.placeholders:
        notes.append(f"{len(loaded.placeholders)} pickled non-tensor class(es) were read as inert placeholders, "
                     f"not run: {', '.join(loaded.placeholders)}")
    if not loaded.mmap:
        notes.append("legacy (non-zip) file: read into memory whole, not memory-mapped")
    mapped, report = map_official_state(state, target, hierarchy, stats, source=str(ckpt))
    report.notes = notes + report.notes
    hashes, hash_notes = connection_file_notes(connection_matrices, used_files)
    report.notes += hash_notes
    rules = target.key_table(hierarchy)
    if tokenizer is not None:
        report.notes.append(check_tokenizer_file(tokenizer, state, rules, trust_pickle))
    if backbone is not None:
        report.notes.append(check_backbone_file(backbone, state, rules, trust_pickle))
    body_ref = body_reference(state)
    if smplx is not None:
        if body_ref is None:
            raise OfficialConversionError(
                f"--smplx needs the bm_neutral.* buffers of {ckpt} to compare with, and it has none")
        check_smplx_against_reference(smplx, body_ref)
        report.notes.append(f"{smplx}: the same SMPL-X as the authors' (topology, template, shape bases)")
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": target.config.to_dict(),
        "state_dict": mapped,
        "tokenizer": {"config": target.tokenizer.to_dict(),
                      "hierarchy": {k: torch.from_numpy(v.astype("int32")) for k, v in hierarchy.to_arrays().items()}},
        "image_encoder": {"class": f"{ImageEncoder.__module__}:{ImageEncoder.__qualname__}",
                          "config_class": f"{ImageEncoderConfig.__module__}:{ImageEncoderConfig.__qualname__}",
                          "config": target.image.to_dict()},
        "backbone": True,
        **({"body": {"model": "smplx", "topology": "body", "reference": body_ref}}
           if hierarchy.level_sizes[0] == SMPLX_BODY_VERTICES else {}),
        "source": {"kind": "official", "layout_commit": LAYOUT_COMMIT, "checkpoint": ckpt.name, "stage": report.stage,
                   "connection_matrices_sha256": hashes, "traj_stats_file": Path(traj_stats).name,
                   "body_reference": body_ref, "notes": list(report.notes)},
    }
    with atomic_write(out) as tmp:
        torch.save(payload, tmp)
    report.out = str(out)
    log.info("converted %s -> %s (%d tensors)", ckpt, out, report.keys_out)
    return report

