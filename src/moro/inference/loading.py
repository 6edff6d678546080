"""Load a MoRo checkpoint for video inference and the body model whose mesh it predicts.

**Checkpoint** (:func:`resolve_checkpoint`): ``--checkpoint PATH``, else ``$MORO_CHECKPOINT``,
else ``<moro data dir>/checkpoints/moro-tiny.pt`` (``$MORO_DATA_DIR``, see :mod:`moro.paths`), else
the tiny model shipped inside the package (``moro/assets/moro_tiny.ckpt``, trained on the
synthetic world only; see its record ``moro/assets/moro_tiny.json``). Any MoRo checkpoint with an image encoder and a backbone works
(:mod:`moro.model.checkpoint`); its configuration travels inside it.

**Body model** (:func:`resolve_body`): the tokenizer inside the checkpoint decodes meshes of one
body model's topology, and the parametric fit needs exactly that model. It is, in order: the
checkpoint's own record (a ``body`` entry ``{"model", "topology"}`` if the trainer wrote one),
the user's ``--body-model/--topology``, or the tokenizer preset with the checkpoint's vertex
count (:data:`moro.tokenizer.presets.TOKENIZER_PRESETS`: 615 -> Anny ``notoes_collapse5pc``,
13348 -> Anny ``anny-noeyes-notongue``, 9383 -> SMPL-X body). A vertex count that fits no body
model, or a user choice that contradicts the checkpoint, raises
:class:`~moro.inference.errors.BodyModelMismatchError`.
"""

from __future__ import annotations

import logging
import os
import weakref
from pathlib import Path

import torch

from moro.inference.errors import BodyModelMismatchError, InferenceError, ModelNotForVideoError
from moro.paths import asset_path, data_dir

log = logging.getLogger(__name__)

__all__ = ["CHECKPOINT_ENV", "SHIPPED_CHECKPOINT", "resolve_checkpoint", "load_model", "resolve_body", "body_record",
           "visibility_head_of"]

CHECKPOINT_ENV = "MORO_CHECKPOINT"
SHIPPED_CHECKPOINT = ("checkpoints", "moro-tiny.pt")
PACKAGED_CHECKPOINT = "moro_tiny.ckpt"  # under moro/assets/


def resolve_checkpoint(path: str | os.PathLike | None) -> Path:
    """The checkpoint to use (module docstring); FileNotFoundError naming what was tried."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"MoRo checkpoint not found: {p}")
        return p
    tried = []
    if os.environ.get(CHECKPOINT_ENV):
        p = Path(os.environ[CHECKPOINT_ENV])
        if p.is_file():
            return p
        tried.append(f"${CHECKPOINT_ENV}={p}")
    for p in (data_dir(*SHIPPED_CHECKPOINT), asset_path(PACKAGED_CHECKPOINT)):
        if p.is_file():
            return p
        tried.append(str(p))
    raise FileNotFoundError(f"no MoRo checkpoint given and none found ({', '.join(tried)}); pass --checkpoint CKPT "
                            f"(a model saved by moro training) or set ${CHECKPOINT_ENV}")


def _refuse_authors_checkpoint(path: str | os.PathLike) -> None:
    """Raise :class:`ModelNotForVideoError` if ``path`` is one of the authors' unconverted files.

    Their Lightning ``last.ckpt`` (any training stage), ``tokenizer.ckpt`` and HMR2.0's
    ``vit_pose_hmr2.pth`` are recognised by their key names (read memory-mapped, no code run);
    anything else is left to :func:`moro.model.checkpoint.load_moro`.
    """
    from moro.convert.official_io import OfficialConversionError, load_torch_file, release_state_dict
    from moro.convert.official_layout import GROUPS, official_key_table
    from moro.model.checkpoint import FORMAT as MORO_FORMAT

    try:
        obj = load_torch_file(path, what="MoRo checkpoint").obj
    except (OfficialConversionError, OSError, RuntimeError):
        return  # not a readable torch file: load_moro says what it is
    if not isinstance(obj, dict) or obj.get("format") == MORO_FORMAT:
        return
    convert = ("convert it once with `moro convert official --ckpt last.ckpt --connection-matrices "
               "smplx_ConnectionMatrices --traj-stats amass_cum_traj.pkl --out moro_paper.ckpt` and pass "
               "--checkpoint moro_paper.ckpt (README: \"Using the authors' weights\")")
    try:
        state, _ = release_state_dict(obj, Path(path))
    except OfficialConversionError as e:  # their tokenizer or backbone file
        raise ModelNotForVideoError(f"{e}. It is not a moro checkpoint either: {convert}") from None
    group_of = {r.official: r.group for r in official_key_table()}
    groups = {group_of[k] for k in state if k in group_of}
    if len(groups) < 2:
        return
    from moro.convert.official_layout import guess_stage

    stage = guess_stage(groups)
    lacks = [GROUPS[g] for g in GROUPS if g not in groups and g != "body"]
    if lacks:
        what = f"a checkpoint of the authors' training stage {stage}" if stage else "a partial authors' checkpoint"
        raise ModelNotForVideoError(
            f"{path} is {what}, not a moro checkpoint: it lacks {', '.join(lacks)}, so it cannot run on video. "
            "Only the authors' released stage-5 (video_train) last.ckpt holds the whole model; " + convert)
    raise ModelNotForVideoError(f"{path} is the authors' MoRo checkpoint (Lightning, unconverted): {convert}")


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """A MoRo from ``path`` in eval mode on ``device``, checked to have an image encoder and backbone.

    Raises:
        ModelNotForVideoError: a motion-only model, no backbone, or one of the authors' unconverted
            files (their ``last.ckpt`` of any training stage, ``tokenizer.ckpt``, ``vit_pose_hmr2.pth``:
            the message names the stage and the convert command).
    """
    from moro.model import MoRo

    _refuse_authors_checkpoint(path)
    model = MoRo.from_checkpoint(path, map_location=device).eval()
    enc = model.image_encoder
    if enc is None:
        raise ModelNotForVideoError(f"{path} holds a motion-only MoRo (no image encoder): it cannot read video; "
                                    "use a checkpoint from image pretraining or video fine-tuning")
    if model.backbone is None and getattr(enc, "backbone", None) is None:
        raise ModelNotForVideoError(f"{path} has no image backbone, so it cannot turn frames into features; "
                                    "save the model with its backbone attached")
    model.visibility_head = visibility_head_of(path, model)
    return model


def visibility_head_of(path: str | os.PathLike, model):
    """The checkpoint's visibility head (:mod:`moro.inference.heading`) if it has one, else None.

    A head fitted on other backbone weights than the checkpoint's is not used (logged): its
    predictions would be meaningless; refit it with ``moro train visibility``.
    """
    from moro.inference.heading import HEAD_KEY, VisibilityHead
    from moro.inference.store import tensor_digest

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - old-style files cannot be memory-mapped; the entry is optional
        return None
    entry = payload.get(HEAD_KEY) if isinstance(payload, dict) else None
    if entry is None:
        return None
    head = VisibilityHead.from_entry(entry, where=str(path))
    digest = tensor_digest(backbone_of(model).state_dict())
    if head.backbone != digest:
        log.warning("%s: its visibility head was fitted on other backbone weights (%s, the checkpoint's are %s); "
                    "no heading carry. Refit it: moro train visibility --checkpoint %s ...", path, head.backbone,
                    digest, path)
        return None
    return head


def backbone_of(model, inference: bool = False):
    """The image backbone of a MoRo (attached directly, or inside an ``ImageBranch``).

    ``inference=True`` gives its :meth:`~moro.model.backbones.base.Backbone.for_inference` form
    (eval mode, no gradients, layers folded where the backbone can), built once per set of weights:
    the copy is rebuilt when any backbone parameter changed in place since.
    """
    bb = model.backbone if model.backbone is not None else model.image_encoder.backbone
    if not inference:
        return bb
    return cached_per_weights(_INFERENCE_BACKBONES, bb, weights_key(bb), bb.for_inference)


_INFERENCE_BACKBONES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def cached_per_weights(store: "weakref.WeakKeyDictionary", owner, key: tuple, build):
    """``store[owner]``'s value if it was built under ``key`` (a :func:`weights_key`), else ``build()``,
    stored under ``key``: a result of an object's weights, recomputed only when they change."""
    cached = store.get(owner)
    if cached is None or cached[0] != key:
        cached = (key, build())
        store[owner] = cached
    return cached[1]


def weights_key(*parts) -> tuple:
    """Identity of the current values of modules' parameters / buffers and of plain tensors: changes
    when any of them is replaced or modified in place (a cache key for results computed from them)."""
    tensors = []
    for part in parts:
        tensors += [part] if isinstance(part, torch.Tensor) else [*part.parameters(), *part.buffers()]
    return tuple((t.data_ptr(), t._version, tuple(t.shape)) for t in tensors)


def body_record(path: str | os.PathLike) -> dict | None:
    """The checkpoint's optional ``body`` entry, read without loading the weights into memory."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - old-style files cannot be memory-mapped; the entry is optional
        return None
    body = payload.get("body") if isinstance(payload, dict) else None
    return body if isinstance(body, dict) else None


def _preset_for(num_vertices: int) -> tuple[str, str] | None:
    from moro.tokenizer.presets import TOKENIZER_PRESETS

    for p in TOKENIZER_PRESETS.values():
        if p.num_vertices == num_vertices:
            return p.body_model, p.topology
    return None


def resolve_body(
    model,
    record: dict | None = None,
    body_model: str | None = None,
    topology: str | None = None,
    smplx_path: str | None = None,
):
    """The body model matching the checkpoint's tokenizer mesh (module docstring).

    Args:
        model: the loaded MoRo.
        record: the checkpoint's ``body`` entry, if any.
        body_model, topology: the user's choice (None = from the checkpoint).
        smplx_path: SMPL-X / SMPL model file or folder (for those body models).
    Returns:
        a :class:`~moro.body.BodyModel` whose vertex count equals the tokenizer's.
    """
    from moro.body.registry import load_body_model

    v = model.tokenizer.num_vertices
    guess = (record["model"], record.get("topology")) if record and "model" in record else _preset_for(v)
    if body_model is not None:
        if guess is not None and body_model != guess[0]:
            raise BodyModelMismatchError(
                f"the checkpoint predicts {guess[0]} meshes ({v} vertices) but --body-model {body_model} was asked; "
                f"drop --body-model, or use a checkpoint trained for {body_model}")
        guess = (body_model, topology if topology is not None else (guess[1] if guess else None))
    elif topology is not None and guess is not None:
        guess = (guess[0], topology)
    if guess is None:
        raise BodyModelMismatchError(
            f"the checkpoint's tokenizer decodes meshes of {v} vertices, which is no known body model's mesh "
            "(Anny notoes_collapse5pc 615, Anny anny-noeyes-notongue 13348, SMPL-X body 9383); it was trained for "
            "another body model: pass --body-model/--topology naming it, or use a checkpoint for one of these")
    try:
        body = load_body_model(guess[0], guess[1], smplx_path)
    except (ValueError, FileNotFoundError) as e:
        raise InferenceError(f"cannot load the body model {guess[0]}/{guess[1]} this checkpoint needs: {e}") from e
    if body.num_vertices != v:
        raise BodyModelMismatchError(
            f"the checkpoint decodes meshes of {v} vertices but the body model {body.name} has {body.num_vertices}; "
            "it was trained for another body model or topology: choose the matching --body-model/--topology")
    if record and record.get("reference") and guess[0] == "smplx":
        _check_against_reference(body, record["reference"])
    if not str(model.tokenizer.hierarchy.source).startswith("official:"):  # the authors' files: theirs, by design
        _warn_if_other_hierarchy(model, body)
    return body


def _check_against_reference(body, reference: dict) -> None:
    """Compare the user's SMPL-X file with the fingerprint of the SMPL-X the checkpoint was trained with.

    Written by ``moro convert official`` (:mod:`moro.convert.official_body`). Another mesh topology
    raises :class:`BodyModelMismatchError` (the network's vertices would not be this model's);
    another template or shape-basis version only warns: the mesh is still fitted exactly as well,
    but the exported betas then describe shapes in the user's model, not the authors'.
    """
    from moro.convert.official_body import BodyModelMismatchError as ReferenceMismatch
    from moro.convert.official_body import check_smplx_against_reference

    source = body.meta.get("source")
    if not source or not Path(source).is_file():
        log.warning("cannot compare %s with the SMPL-X the checkpoint was trained with: its file is gone", body.name)
        return
    try:
        check_smplx_against_reference(source, reference)
    except ReferenceMismatch as e:
        if e.kind in ("topology", "bases"):
            raise BodyModelMismatchError(f"{e} (this checkpoint was converted from the authors' release)") from None
        log.warning("%s", e)


def _warn_if_other_hierarchy(model, body) -> None:
    from moro.tokenizer import build_hierarchy

    try:
        digest = build_hierarchy(body.faces.cpu().numpy(), body.num_vertices, model.tokenizer.config.hierarchy).digest
    except Exception as e:  # noqa: BLE001 - only a diagnostic
        log.debug("hierarchy check skipped: %s", e)
        return
    if digest != model.tokenizer.hierarchy.digest:
        log.warning("the checkpoint's pooling hierarchy differs from the one generated for %s (e.g. the authors' "
                    "files, or another generator version); the vertex count matches, continuing", body.name)
