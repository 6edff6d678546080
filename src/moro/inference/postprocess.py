"""After decoding: tokens -> smoother -> tokenizer decoder -> camera-frame mesh -> parametric fit.

Per frame (supplement B; official checkpoint layout, section 4, "Mesh"):

1. the decoded ids go through ``token_emb`` (continuous code vectors), the temporal smoother and
   the tokenizer decoder, giving the local mesh ``V_local`` (v, 3), metres;
2. it is placed in the camera frame with the refined trajectory: ``V_cam = V_local R^T + t``;
3. the body model is fitted to ``V_cam`` with **one shape for the whole sequence** (smplfitter):
   the shape comes from :func:`moro.body.fitting.fit_sequence` on up to ``shape_frames`` frames
   spread evenly over the video, then every chunk of ``chunk`` frames is fitted with that shape
   fixed (``BodyFitter.fit_with_known_shape``), so memory stays bounded for any length. Joints
   that move no vertex of the mesh (:func:`unskinned_joints`, e.g. SMPL-X's eyes on the body mesh)
   are set to the identity.

The smoother is applied to the stitched id sequence, chunk by chunk with just enough context
(its receptive field, :func:`smoother_margin`) that the result equals smoothing the whole
sequence at once. The tokenizer's mesh must be the body model's mesh (checked when the model is
loaded, :mod:`moro.inference.loading`).

Per-joint confidence: a (22, n) matrix (:func:`token_joint_weights`) spreads each token's
confidence over the vertices its slot moves in the decoder (measured once by perturbing each
slot's code vector) and regresses the 22 joints from those vertex confidences.

Stores written (t frames, j rig joints, v vertices; metres; camera frame = OpenCV):

==================== =============== ==========================================================
name                 frame shape     meaning
==================== =============== ==========================================================
``body_pose``        (j-1, 3, 3)     parent-relative joint rotations (moro / SMPL convention)
``root_rot_cam``     (3, 3)          root orientation, camera frame
``root_trans_cam``   (3,)            root joint position, camera frame
``joints22_cam``     (22, 3)         scoring joints (``JOINTS22`` order) of the fitted mesh
``feet_cam``         (4, 3)          foot vertices (L heel, L toe, R heel, R toe) of the fitted mesh
``joint_confidence`` (22,) float16   per-joint confidence in [0, 1]
``fit_error``        ()              mean distance network mesh <-> fitted mesh, metres
``vertices_cam``     (v, 3)          fitted mesh (only with ``save_vertices``)
==================== =============== ==========================================================
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from moro.body.fitting import fit_sequence, to_smplfitter
from moro.geometry import rot6d_to_rotmat
from moro.inference.loading import cached_per_weights, weights_key
from moro.inference.store import FrameStore

log = logging.getLogger(__name__)

__all__ = ["FitConfig", "smoother_margin", "camera_meshes", "token_joint_weights", "body_fitter", "unskinned_joints",
           "estimate_shape", "fit_sequence_chunks"]


@dataclass
class FitConfig:
    """Parametric fitting of long sequences."""

    chunk: int = 256  # frames per fit call (bounds memory)
    shape_frames: int = 32  # frames, spread over the video, that determine the shared shape (16..64 fit alike)
    num_iter: int = 3  # smplfitter iterations (1-4)
    beta_regularizer: float = 1.0  # L2 weight on the shape coefficients

    def __post_init__(self) -> None:
        if self.chunk < 1 or self.shape_frames < 1 or not 1 <= self.num_iter <= 10:
            raise ValueError(f"fit needs chunk >= 1, shape_frames >= 1, 1 <= num_iter <= 10; got {self}")

    def to_dict(self) -> dict:
        return asdict(self)


def smoother_margin(model) -> int:
    """Frames of context on each side that the token smoother sees: layers x (kernel // 2)."""
    cfg = model.config.smoother
    return cfg.num_layers * (cfg.kernel_size // 2)


@torch.no_grad()
def _smoothed_latents(model, ids: FrameStore, frames: np.ndarray) -> torch.Tensor:
    """Smoothed code vectors (len(frames), n, dc) of sorted, contiguous-or-not frames."""
    m = smoother_margin(model)
    device = model.token_emb.weight.device
    a, b = max(0, int(frames.min()) - m), min(len(ids), int(frames.max()) + m + 1)
    x = model.token_emb(torch.from_numpy(ids.read(a, b).astype(np.int64)).to(device))  # (c, n, dc)
    return model.smoother(x[None])[0][torch.as_tensor(frames - a, device=device)]


@torch.no_grad()
def camera_meshes(model, ids: FrameStore, traj: FrameStore, frames: np.ndarray) -> torch.Tensor:
    """Network meshes in the camera frame: ``V_local R^T + t`` for the given frames.

    Args:
        model: MoRo (its token_emb, smoother and tokenizer are used).
        ids, traj: stores of :func:`moro.inference.windows.decode_windows`.
        frames: (c,) frame indices (sorted; nearby frames share one smoother call).
    Returns:
        (c, v, 3) float32 tensor, metres, on the model's device.
    """
    frames = np.asarray(frames, np.int64)
    parts = np.split(frames, np.flatnonzero(np.diff(frames) > 2 * smoother_margin(model) + 1) + 1)
    # the smoother runs per run of nearby frames; the mesh decoder once on all of them (spread-out
    # frames, as in estimate_shape, would otherwise cost one small decoder call each)
    latents = torch.cat([_smoothed_latents(model, ids, part) for part in parts])
    local = model.tokenizer.decode_latents(latents)  # (c, v, 3)
    tr = torch.from_numpy(np.stack([traj[int(f)] for f in frames])).to(local)
    R = rot6d_to_rotmat(tr[:, :6])
    return local @ R.transpose(-1, -2) + tr[:, None, 6:]


@torch.no_grad()
def token_joint_weights(model, joint_regressor: torch.Tensor) -> torch.Tensor:
    """(j, n) matrix: joint confidence = matrix @ token confidence (rows sum to 1).

    Each slot's code vector is moved by one codebook standard deviation from the codebook mean;
    the decoded displacement per vertex, normalised over slots, says which slots shape a vertex.
    A function of the weights alone (n + 1 mesh decodings), so it is computed once per set of
    weights and regressor and reused by later videos.
    """
    key = weights_key(model.tokenizer, model.token_emb, joint_regressor)
    return cached_per_weights(_JOINT_WEIGHTS, model, key, lambda: _token_joint_weights(model, joint_regressor)).clone()


_JOINT_WEIGHTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _token_joint_weights(model, joint_regressor: torch.Tensor) -> torch.Tensor:
    tok = model.tokenizer
    cb = model.token_emb.codebook.float()
    n = model.config.tokens.num_tokens
    z0 = cb.mean(0).expand(n, -1)
    base = tok.decode_latents(z0[None])  # (1, v, 3)
    z = z0.expand(n, n, -1).clone()
    z[torch.arange(n), torch.arange(n)] += cb.std(0).clamp_min(1e-3)
    infl = (tok.decode_latents(z) - base).norm(dim=-1)  # (n, v)
    per_vertex = infl / infl.sum(0, keepdim=True).clamp_min(1e-12)
    w = joint_regressor.to(per_vertex).clamp_min(0) @ per_vertex.T  # (j, n)
    return w / w.sum(1, keepdim=True).clamp_min(1e-12)


def body_fitter(body):
    """The ``smplfitter.pt.BodyFitter`` of ``body``, built once per set of its weights (~0.15 s on 2 CPU
    cores) and reused by later videos and by both fits of a video (shape, then every frame)."""
    from smplfitter.pt import BodyFitter

    return cached_per_weights(_FITTERS, body, weights_key(body), lambda: BodyFitter(to_smplfitter(body)))


_FITTERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def unskinned_joints(body) -> torch.Tensor:
    """(j,) bool: joints (never the root) whose whole subtree skins no vertex of ``body``'s mesh.

    No vertex depends on their rotations, so a fit leaves them arbitrary (e.g. SMPL-X's eye joints
    on the eyeball-free body mesh of the authors' tokenizer); :func:`fit_sequence_chunks` sets them
    to the identity so that the exported parameters are the rest pose there.
    """
    influence = body.weights.abs().sum(0).double().clone()  # (j,)
    parents = list(body.parents)
    for j in sorted(range(1, len(parents)), key=lambda k: -_depth(parents, k)):  # leaves first
        influence[parents[j]] += influence[j]
    free = influence <= 0
    free[0] = False
    return free


def _depth(parents: list[int], j: int) -> int:
    d = 0
    while parents[j] >= 0:
        j, d = parents[j], d + 1
    return d


def estimate_shape(model, body, ids: FrameStore, traj: FrameStore, config: FitConfig | None = None) -> torch.Tensor:
    """The shared shape (s,) from :func:`moro.body.fitting.fit_sequence` on evenly spread frames."""
    cfg = config or FitConfig()
    t = len(ids)
    frames = np.unique(np.linspace(0, t - 1, min(t, cfg.shape_frames)).round().astype(np.int64))
    verts = camera_meshes(model, ids, traj, frames)
    fit = fit_sequence(body, verts.to(body.v_template.device), num_iter=cfg.num_iter,
                       beta_regularizer=cfg.beta_regularizer, fitter=body_fitter(body))
    return fit.betas.detach()


@torch.no_grad()
def fit_sequence_chunks(
    model,
    body,
    decoded: dict[str, FrameStore],
    out_dir: str | Path,
    config: FitConfig | None = None,
    save_vertices: bool = False,
    progress: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, dict[str, FrameStore]]:
    """Meshes and parametric fit of every frame, chunk by chunk (module docstring).

    Args:
        model: MoRo; body: the matching :class:`~moro.body.BodyModel`.
        decoded: the stores of :func:`moro.inference.windows.decode_windows`.
        out_dir: folder for the stores of the module docstring.
        config: :class:`FitConfig`; save_vertices: also store the fitted meshes.
        progress: called with the number of frames done after each chunk.
    Returns:
        ``(betas (s,), {name: FrameStore})``.
    """
    cfg = config or FitConfig()
    ids, traj, conf = decoded["ids"], decoded["traj"], decoded["confidence"]
    t, j = len(ids), body.num_joints
    betas = estimate_shape(model, body, ids, traj, cfg)
    log.info("shared shape from %d frames; fitting %d frames in chunks of %d", min(t, cfg.shape_frames), t, cfg.chunk)
    fitter = body_fitter(body)
    joint_w = token_joint_weights(model, body.joints22_regressor)  # (22, n)
    free = unskinned_joints(body).to(body.v_template.device)
    specs = {"body_pose": ((j - 1, 3, 3), np.float32), "root_rot_cam": ((3, 3), np.float32),
             "root_trans_cam": ((3,), np.float32), "joints22_cam": ((22, 3), np.float32),
             "feet_cam": ((4, 3), np.float32), "joint_confidence": ((22,), np.float16), "fit_error": ((), np.float32)}
    if save_vertices:
        specs["vertices_cam"] = ((body.num_vertices, 3), np.float32)
    writers = {k: FrameStore.create(out_dir, k, s, d) for k, (s, d) in specs.items()}
    for a in range(0, t, cfg.chunk):
        frames = np.arange(a, min(t, a + cfg.chunk))
        target = camera_meshes(model, ids, traj, frames).to(body.v_template.device)  # (c, v, 3)
        res = fitter.fit_with_known_shape(betas[None].expand(len(frames), -1).float(), target.float(),
                                          num_iter=cfg.num_iter, requested_keys=["relative_orientations", "trans"])
        rel = res["relative_orientations"].float()
        rel[:, free] = torch.eye(3, dtype=rel.dtype, device=rel.device)
        root_trans = body.smpl_transl_to_root_trans(res["trans"].float(), betas.float())
        posed = body(rel[:, 1:], betas.float(), rel[:, 0], root_trans).vertices
        c = torch.from_numpy(conf.read(frames[0], frames[-1] + 1).astype(np.float32)).to(joint_w)
        rows = {"body_pose": rel[:, 1:], "root_rot_cam": rel[:, 0], "root_trans_cam": root_trans,
                "joints22_cam": body.joints22(posed), "feet_cam": body.foot_points(posed),
                "joint_confidence": c @ joint_w.T, "fit_error": (posed - target).norm(dim=-1).mean(-1)}
        if save_vertices:
            rows["vertices_cam"] = posed
        for k, v in rows.items():
            writers[k].append(v.detach().cpu().numpy())
        if progress is not None:
            progress(len(frames))
    return betas, {k: w.close() for k, w in writers.items()}
