"""Videos of any length: overlapping windows, decoded one at a time and stitched per frame.

**Plan** (:func:`plan_windows`, design.md "Inference"; paper: 500 frames, overlap 120, drop 60):
window ``i`` covers frames ``[i * (size - overlap), ... + size)``; the last window is moved back
to end on the last frame (so every window but a short video's only one has ``size`` frames).
At each inner seam the earlier window drops its last ``overlap - drop`` frames and the later
one its first ``drop`` frames (more if the last window was moved back); the kept ranges tile
``[0, t)`` exactly once, in order. A video of at most ``size`` frames is one window.

**Frames alone** (``size = 1``, which needs ``overlap = drop = 0``): every frame is its own
window, without temporal context - the per-frame baseline of ``moro demo`` / ``moro bench``.
Such windows are independent, so they are decoded as a batch of one-frame clips
(``encoder_chunk`` frames per batch, :func:`decode_frames_alone`); the result is that of
decoding the windows one by one (float rounding aside), with one network call per batch and
pass instead of one per frame and pass.

**Decoding** (:func:`decode_windows`): per window, the cached backbone tokens of its frames are
read from disk, the image encoder runs once (in chunks of frames), :func:`~moro.inference.decoding.decode_clip`
runs the K passes, and the kept frames are appended to per-frame stores on disk
(:class:`~moro.inference.store.FrameStore`). Memory is that of one window, whatever the length.

Stores written (t frames, n token slots):

================ ============ =====================================================================
name             frame shape  meaning
================ ============ =====================================================================
``ids``          (n,) int16   decoded code ids
``confidence``   (n,) float16 softmax probability of each code when it was fixed
``traj``         (9,) float32 refined camera trajectory ``[6D, t (m)]`` (``V_local R^T + t``)
``coarse_traj``  (9,) float32 the image encoder's coarse trajectory (per frame)
``contact``      (4,) float32 foot-contact logits (L ankle, L foot, R ankle, R foot), > 0 = contact
``hidden_share`` () float32   the visibility head's predicted share of joints hidden (NaN: no head)
================ ============ =====================================================================

**Heading carry** (:mod:`moro.inference.heading`): after the windows are stitched, a checkpoint
with a visibility head has the facing direction of its frames carried from the frames it trusts
(``DecodingConfig.heading_carry``, on by default); ``traj`` holds the result. Frames decoded alone
never get it (no temporal context).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch

from moro.inference.decoding import DecodingConfig, decode_clip
from moro.inference.heading import finish_decoding
from moro.inference.store import FrameStore
from moro.model.moro import ImageFeatures

log = logging.getLogger(__name__)

__all__ = ["WindowConfig", "Window", "plan_windows", "encode_window", "decode_windows", "decode_frames_alone",
           "DECODED_STORES"]

DECODED_STORES = ("ids", "confidence", "traj", "coarse_traj", "contact", "hidden_share")


@dataclass
class WindowConfig:
    """Window layout (paper values); frames at 30 fps."""

    size: int = 500  # frames per window fed to the network at once
    overlap: int = 120  # frames shared by consecutive windows
    drop: int = 60  # frames the later window drops at a seam (the earlier drops overlap - drop)
    encoder_chunk: int = 64  # frames per image-encoder call (bounds activation memory)

    def __post_init__(self) -> None:
        if self.size < 1 or not 0 <= self.overlap < self.size or not 0 <= self.drop <= self.overlap:
            raise ValueError(f"windows need size >= 1, 0 <= overlap < size and 0 <= drop <= overlap; got size={self.size}, "
                             f"overlap={self.overlap}, drop={self.drop}")
        if self.encoder_chunk < 1:
            raise ValueError(f"encoder_chunk must be >= 1, got {self.encoder_chunk}")

    def to_dict(self) -> dict:
        return asdict(self)


class Window(NamedTuple):
    start: int  # first frame fed to the network
    stop: int  # one past the last frame fed
    keep_start: int  # first frame taken from this window's output
    keep_stop: int  # one past the last frame taken


def plan_windows(num_frames: int, config: WindowConfig | None = None) -> list[Window]:
    """Windows and kept ranges for a video of ``num_frames`` frames (module docstring)."""
    cfg = config or WindowConfig()
    if num_frames < 1:
        raise ValueError(f"need at least one frame, got {num_frames}")
    if num_frames <= cfg.size:
        return [Window(0, num_frames, 0, num_frames)]
    stride = cfg.size - cfg.overlap
    starts = [0]
    while starts[-1] + cfg.size < num_frames:
        starts.append(starts[-1] + stride)
    starts[-1] = num_frames - cfg.size  # the last window ends on the last frame
    windows, keep = [], 0
    for i, s in enumerate(starts):
        stop = s + cfg.size
        keep_stop = num_frames if i == len(starts) - 1 else stop - (cfg.overlap - cfg.drop)
        windows.append(Window(s, stop, keep, keep_stop))
        keep = keep_stop
    return windows


def _image_encoder(model):
    """The module mapping (patch tokens, bbox info) -> image features (an ImageBranch's inner encoder)."""
    enc = model.image_encoder
    return getattr(enc, "encoder", enc)


@torch.no_grad()
def encode_window(model, tokens: np.ndarray, bbox_info: np.ndarray, chunk: int = 64) -> ImageFeatures:
    """Image features of one window, computed once.

    Args:
        model: MoRo with an image encoder.
        tokens: (t, p, d_bb) backbone tokens (any float dtype; computed in float32).
        bbox_info: (t, 3) CLIFF bbox info.
        chunk: frames per encoder call.
    Returns:
        :class:`~moro.model.ImageFeatures` with a batch axis of 1.
    """
    enc = _image_encoder(model)
    device = next(model.parameters()).device
    parts = []
    for a in range(0, len(tokens), chunk):
        x = torch.from_numpy(np.asarray(tokens[a : a + chunk], np.float32)).to(device)[None]
        info = torch.from_numpy(np.asarray(bbox_info[a : a + chunk], np.float32)).to(device)[None]
        parts.append(ImageFeatures.from_encoder_output(enc(x, info)))
    cat = lambda name: torch.cat([getattr(p, name) for p in parts], dim=1)  # noqa: E731
    return ImageFeatures(patch_features=cat("patch_features"), coarse_rot6d=cat("coarse_rot6d"),
                         coarse_transl=cat("coarse_transl"))


def decode_windows(
    model,
    tokens: FrameStore,
    bbox_info: np.ndarray,
    out_dir: str | Path,
    windows: WindowConfig | None = None,
    decoding: DecodingConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, FrameStore]:
    """Decode every window and stitch the per-frame results into stores (module docstring).

    Args:
        model: MoRo in eval mode, with an image encoder.
        tokens: (t, p, d_bb) backbone tokens on disk.
        bbox_info: (t, 3) CLIFF bbox info.
        out_dir: folder for the stores.
        windows, decoding: configs.
        progress: called with the number of frames kept after each window.
    Returns:
        ``{name: FrameStore}`` for :data:`DECODED_STORES`.
    """
    wcfg, dcfg = windows or WindowConfig(), decoding or DecodingConfig()
    if wcfg.size == 1:
        return decode_frames_alone(model, tokens, bbox_info, out_dir, dcfg, wcfg.encoder_chunk, progress)
    t = len(tokens)
    if len(bbox_info) != t:
        raise ValueError(f"bbox_info has {len(bbox_info)} frames but the token store {t}")
    writers = _writers(model, out_dir)
    plan = plan_windows(t, wcfg)
    log.info("decoding %d frames in %d window(s) of up to %d frames, %d iterations", t, len(plan), wcfg.size, dcfg.iterations)
    for w in plan:
        image = encode_window(model, tokens.read(w.start, w.stop), bbox_info[w.start : w.stop], wcfg.encoder_chunk)
        res = decode_clip(model, image, dcfg)
        a, b = w.keep_start - w.start, w.keep_stop - w.start
        contact = res.contact_logits if res.contact_logits is not None else torch.zeros(1, w.stop - w.start, 4)
        rows = {"ids": res.ids, "confidence": res.confidence, "traj": res.traj, "coarse_traj": image.coarse_traj,
                "contact": contact}
        _append(writers, {k: v[0, a:b] for k, v in rows.items()})
        del image, res, rows
        if progress is not None:
            progress(w.keep_stop - w.keep_start)
    stores = {k: w.close() for k, w in writers.items()}
    return finish_decoding(model, tokens, stores, out_dir, carry=dcfg.heading_carry)


@torch.no_grad()
def decode_frames_alone(
    model,
    tokens: FrameStore,
    bbox_info: np.ndarray,
    out_dir: str | Path,
    decoding: DecodingConfig | None = None,
    batch: int = 64,
    progress: Callable[[int], None] | None = None,
) -> dict[str, FrameStore]:
    """Decode every frame as its own one-frame clip (no temporal context), ``batch`` frames at a time.

    Equals :func:`decode_windows` with ``WindowConfig(size=1, overlap=0, drop=0)`` (the frames
    of a batch are b = ``batch`` independent clips of t = 1 frame), but runs the network once per
    batch and pass instead of once per frame and pass. Arguments and stores as :func:`decode_windows`.
    """
    dcfg = decoding or DecodingConfig()
    t = len(tokens)
    if len(bbox_info) != t:
        raise ValueError(f"bbox_info has {len(bbox_info)} frames but the token store {t}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    writers = _writers(model, out_dir)
    log.info("decoding %d frames alone (no temporal context) in batches of %d, %d iterations", t, batch, dcfg.iterations)
    for a in range(0, t, batch):
        b = min(t, a + batch)
        image = encode_window(model, tokens.read(a, b), bbox_info[a:b], batch)  # (1, c, ...)
        clips = ImageFeatures(**{k: None if v is None else v.transpose(0, 1)  # (c, 1, ...): c one-frame clips
                                 for k, v in vars(image).items()})
        res = decode_clip(model, clips, dcfg)
        contact = res.contact_logits if res.contact_logits is not None else torch.zeros(b - a, 1, 4)
        rows = {"ids": res.ids, "confidence": res.confidence, "traj": res.traj, "coarse_traj": clips.coarse_traj,
                "contact": contact}
        _append(writers, {k: v[:, 0] for k, v in rows.items()})
        if progress is not None:
            progress(b - a)
    return finish_decoding(model, tokens, {k: w.close() for k, w in writers.items()}, out_dir, carry=False)


def _writers(model, out_dir: str | Path) -> dict:
    """Writers of :data:`DECODED_STORES` (module docstring table)."""
    n = model.config.tokens.num_tokens
    shapes = {"ids": ((n,), np.int16), "confidence": ((n,), np.float16), "traj": ((9,), np.float32),
              "coarse_traj": ((9,), np.float32), "contact": ((4,), np.float32)}
    if model.config.tokens.num_codes > np.iinfo(np.int16).max:
        shapes["ids"] = ((n,), np.int32)
    return {k: FrameStore.create(out_dir, k, s, d) for k, (s, d) in shapes.items()}


def _append(writers: dict, rows: dict[str, torch.Tensor]) -> None:
    """Append per-frame rows (c, ...) to the stores."""
    for k, v in rows.items():
        writers[k].append(v.float().cpu().numpy() if k != "ids" else v.cpu().numpy())
