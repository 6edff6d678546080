"""Heading carry: the body's facing direction through the frames where the image cannot show it.

Where most of the body is hidden (behind an occluder, out of the crop), one frame's image does not
say which way the body faces, and the tiny model's temporal window (+-16 frames) is shorter than
most occlusions (runs of 1-3 s). The heading is smooth in time, though, and the frames' own image
features say how much of the body they show. So, after decoding:

1. **Visibility head** (:class:`VisibilityHead`): a linear (ridge) regression of the share of the
   22 joints hidden in a frame on that frame's backbone tokens, mean- and max-pooled over the
   patches (:func:`pooled_features`, 2 x d features). Fitted on a synthetic training split by
   :func:`fit_visibility_head` (``moro train visibility``), stored in the checkpoint (``visibility_head``
   entry), tied to the backbone weights it was fitted on.
2. **Trusted frames**: those whose predicted hidden share is below ``tau``; weight 1, others 0.
3. **Heading** (:func:`carry_heading`): the facing yaw of every frame becomes the weighted circular
   mean of the trusted frames' yaws under a Gaussian of ``sigma`` frames (:func:`carried_yaw`);
   where no trusted frame is within reach of the Gaussian, the yaw is interpolated linearly (the
   shorter way round) between the nearest trusted frames, and held beyond the first / last. The
   root rotation turns about the camera's vertical axis by the difference; nothing else changes
   (pose tokens, root translation). No trusted frame at all: the trajectory is left as decoded.

Yaw: the angle about the camera's y axis (OpenCV: y down) of the root's left-right axis (the local
x axis of the tokenizer's mesh, along the hips), ``atan2(a_x, a_z)`` of ``a = R e_x``; a frame whose
hip axis is nearly vertical (|horizontal part| < 0.3, e.g. lying on one side) has no usable yaw:
it is neither trusted nor turned. ``tau`` and ``sigma`` are picked on a validation split by the
error of the occluded joints (:func:`fit_visibility_head`). Angles in radians, trajectories
``[6D (first two rows of R), t (m)]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["HEAD_KEY", "VisibilityHead", "pooled_features", "ridge_fit", "root_yaw", "rot_y", "turn_about_vertical",
           "carried_yaw", "carry_heading", "heading_delta", "trusted_weights", "MIN_HORIZONTAL"]

HEAD_KEY = "visibility_head"  # checkpoint entry
MIN_HORIZONTAL = 0.3  # |horizontal part| of the hip axis below which a frame's yaw is undefined


def pooled_features(tokens: np.ndarray) -> np.ndarray:
    """(t, p, d) backbone tokens -> (t, 2 d) float32 ``[mean over patches, max over patches]``."""
    x = np.asarray(tokens, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"tokens must be (t, patches, dim), got shape {x.shape}")
    return np.concatenate([x.mean(1), x.max(1)], axis=1)


def ridge_fit(x: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Ridge regression of y (n,) on standardised x (n, f), L2 weight ``lam`` on the weights (not the bias).

    Returns ``(mean (f,), scale (f,), weight (f,), bias)``: ``y ~ ((x - mean) / scale) @ weight + bias``.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.shape != (len(x),) or len(x) < 2:
        raise ValueError(f"ridge_fit needs x (n, f) and y (n,) with n >= 2, got {x.shape} and {y.shape}")
    mu, sd = x.mean(0), x.std(0) + 1e-6
    a = np.c_[(x - mu) / sd, np.ones(len(x))]
    reg = lam * np.eye(a.shape[1])
    reg[-1, -1] = 0.0
    w = np.linalg.solve(a.T @ a + reg, a.T @ y)
    return mu, sd, w[:-1], float(w[-1])


@dataclass
class VisibilityHead:
    """Per-frame hidden share from backbone tokens, and the heading-carry settings fitted with it."""

    mean: np.ndarray  # (2 d,) feature means
    scale: np.ndarray  # (2 d,) feature standard deviations
    weight: np.ndarray  # (2 d,)
    bias: float
    tau: float  # frames predicted >= tau hidden are not trusted for the heading
    sigma: float  # frames: Gaussian width of the heading average over trusted frames
    backbone: str  # moro.inference.store.tensor_digest of the backbone weights it was fitted on
    record: dict = field(default_factory=dict)  # how it was fitted (data, lam, scores)

    def __post_init__(self) -> None:
        self.mean, self.scale, self.weight = (np.asarray(a, np.float32) for a in (self.mean, self.scale, self.weight))
        if not (self.mean.shape == self.scale.shape == self.weight.shape and self.mean.ndim == 1):
            raise ValueError(f"visibility head: mean, scale and weight must be equal (f,) vectors, got "
                             f"{self.mean.shape}, {self.scale.shape}, {self.weight.shape}")
        if not 0.0 < self.tau <= 1.0 or not self.sigma > 0.0:
            raise ValueError(f"visibility head: need 0 < tau <= 1 and sigma > 0, got tau={self.tau}, sigma={self.sigma}")

    @property
    def features(self) -> int:
        return len(self.weight)

    def hidden_share(self, tokens: np.ndarray) -> np.ndarray:
        """(t, p, d) backbone tokens -> (t,) float32 predicted share of the 22 joints hidden (not clipped)."""
        x = pooled_features(tokens)
        if x.shape[1] != self.features:
            raise ValueError(f"visibility head expects {self.features // 2}-dim tokens, got {x.shape[1] // 2}-dim ones")
        return ((x - self.mean) / self.scale) @ self.weight + np.float32(self.bias)

    def to_entry(self) -> dict:
        """The checkpoint entry (tensors and plain values; loads with ``torch.load(weights_only=True)``)."""
        return {"mean": torch.from_numpy(self.mean), "scale": torch.from_numpy(self.scale),
                "weight": torch.from_numpy(self.weight), "bias": float(self.bias), "tau": float(self.tau),
                "sigma": float(self.sigma), "backbone": self.backbone, "record": dict(self.record)}

    @classmethod
    def from_entry(cls, entry: dict, where: str = "checkpoint") -> "VisibilityHead":
        need = ("mean", "scale", "weight", "bias", "tau", "sigma", "backbone")
        missing = [k for k in need if k not in entry]
        if missing:
            raise ValueError(f"{where}: the {HEAD_KEY!r} entry lacks {missing}; refit it with `moro train visibility`")
        arr = {k: np.asarray(entry[k].numpy() if isinstance(entry[k], torch.Tensor) else entry[k], np.float32)
               for k in ("mean", "scale", "weight")}
        return cls(**arr, bias=float(entry["bias"]), tau=float(entry["tau"]), sigma=float(entry["sigma"]),
                   backbone=str(entry["backbone"]), record=dict(entry.get("record") or {}))


# ------------------------------------------------------------------ geometry
def _rotmats(traj: np.ndarray) -> np.ndarray:
    from moro.geometry import rot6d_to_rotmat

    return rot6d_to_rotmat(torch.from_numpy(np.ascontiguousarray(traj[:, :6], dtype=np.float64))).numpy()


def root_yaw(traj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Facing yaw of trajectories (t, 9): ``(yaw (t,) radians, defined (t,) bool)`` (module docstring)."""
    a = _rotmats(traj)[:, :, 0]  # R e_x: the hip axis in the camera frame
    return np.arctan2(a[:, 0], a[:, 2]), np.hypot(a[:, 0], a[:, 2]) >= MIN_HORIZONTAL


def rot_y(angle: np.ndarray) -> np.ndarray:
    """(t,) radians -> (t, 3, 3) rotations about the camera's y axis (a yaw of :func:`root_yaw` grows by the angle)."""
    c, s = np.cos(angle), np.sin(angle)
    r = np.zeros((len(angle), 3, 3))
    r[:, 0, 0], r[:, 0, 2], r[:, 1, 1], r[:, 2, 0], r[:, 2, 2] = c, s, 1.0, -s, c
    return r


def turn_about_vertical(traj: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Trajectories (t, 9) whose root rotation is turned by ``angle`` (t,) radians about the camera's y axis
    (``R <- R_y(angle) R``; a yaw of :func:`root_yaw` grows by ``angle``); translation unchanged."""
    traj = np.asarray(traj)
    r = rot_y(np.broadcast_to(angle, (len(traj),))) @ _rotmats(traj)
    out = np.array(traj, dtype=np.float64, copy=True)
    out[:, :6] = r[:, :2].reshape(len(traj), 6)  # 6D = first two rows of R
    return out.astype(np.asarray(traj).dtype)


def carried_yaw(yaw: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray | None:
    """Weighted circular Gaussian mean of ``yaw`` (t,) radians with frame weights (t,) >= 0 (module docstring).

    Frames with less than 1e-3 of Gaussian-weighted trust take the yaw interpolated (the shorter way
    round) between the nearest such-covered frames, held beyond the ends. Returns (t,) radians in
    (-pi, pi], or None when no frame has weight.
    """
    yaw, w = np.asarray(yaw, np.float64), np.clip(np.asarray(weight, np.float64), 0.0, None)
    if yaw.shape != w.shape or yaw.ndim != 1:
        raise ValueError(f"yaw and weight must be equal (t,) arrays, got {yaw.shape} and {w.shape}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0 frames, got {sigma}")
    if not (w > 0).any():
        return None
    half = int(math.ceil(4 * sigma))
    g = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    num_c, num_s, den = (_centred_conv(x, g) for x in (w * np.cos(yaw), w * np.sin(yaw), w))
    out = np.arctan2(num_s, num_c)
    covered = (den >= 1e-3) & (np.hypot(num_c, num_s) > 1e-9)
    if not covered.all():
        idx = np.flatnonzero(covered)
        out[~covered] = np.interp(np.flatnonzero(~covered), idx, np.unwrap(out[idx]))
        out = np.angle(np.exp(1j * out))
    return out


def _centred_conv(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """(t,) convolution of x with an odd-length symmetric kernel g, aligned on x (any t, also t < len(g))."""
    full = np.convolve(x, g, "full")
    start = (len(g) - 1) // 2
    return full[start : start + len(x)]


def heading_delta(yaw: np.ndarray, defined: np.ndarray, target: np.ndarray | None) -> np.ndarray:
    """(t,) radians that turn ``yaw`` onto ``target`` the short way round (0 where the yaw is undefined or no
    target exists): the angle :func:`turn_about_vertical` is given."""
    if target is None:
        return np.zeros(len(yaw))
    return np.where(defined, np.angle(np.exp(1j * (target - yaw))), 0.0)


def trusted_weights(hidden_share: np.ndarray, defined: np.ndarray, tau: float) -> np.ndarray:
    """(t,) float weights: 1 where the predicted hidden share is below ``tau`` and the yaw is defined."""
    return ((np.asarray(hidden_share) < tau) & np.asarray(defined, bool)).astype(np.float64)


def carry_heading(traj: np.ndarray, hidden_share: np.ndarray, tau: float, sigma: float) -> np.ndarray:
    """Trajectories (t, 9) with the heading carried from the trusted frames (module docstring).

    Args:
        traj: (t, 9) decoded camera trajectory ``[6D, t (m)]``.
        hidden_share: (t,) predicted share of joints hidden per frame (:meth:`VisibilityHead.hidden_share`).
        tau: trust threshold on ``hidden_share``. sigma: Gaussian width, frames.
    Returns:
        (t, 9) of ``traj``'s dtype; ``traj`` unchanged where no frame is trusted or a yaw is undefined.
    """
    traj = np.asarray(traj)
    if traj.ndim != 2 or traj.shape[1] != 9 or len(hidden_share) != len(traj):
        raise ValueError(f"carry_heading needs traj (t, 9) and hidden_share (t,), got {traj.shape} and "
                         f"{np.shape(hidden_share)}")
    if len(traj) == 0:
        return traj.copy()
    yaw, defined = root_yaw(traj)
    target = carried_yaw(yaw, trusted_weights(hidden_share, defined, tau), sigma)
    if target is None:
        return traj.copy()
    return turn_about_vertical(traj, heading_delta(yaw, defined, target))


# ------------------------------------------------------------------ on the decoded stores
def head_of(model) -> VisibilityHead | None:
    """The model's visibility head (attached by :func:`moro.inference.loading.load_model`), or None."""
    return getattr(model, "visibility_head", None)


def hidden_shares(head: VisibilityHead, tokens, chunk: int = 1024) -> np.ndarray:
    """(t,) float32 predicted hidden share of every frame of a (t, p, d) token :class:`FrameStore`, read in chunks."""
    return np.concatenate([head.hidden_share(x) for _, x in tokens.chunks(chunk)]) if len(tokens) else np.zeros(0, np.float32)


def finish_decoding(model, tokens, stores: dict, out_dir, carry: bool) -> dict:
    """Add the ``hidden_share`` store to decoded ``stores`` and, if ``carry`` and the model has a visibility
    head, rewrite ``traj`` with the heading carried (:func:`carry_heading`).

    Args:
        model: the MoRo that decoded (its ``visibility_head`` may be None).
        tokens: (t, p, d) backbone-token FrameStore of the decoded frames.
        stores: ``{name: FrameStore}`` from the decoding (``traj`` among them), in ``out_dir``.
        carry: False for decoding without temporal context (the per-frame baseline).
    Returns:
        ``stores`` with ``hidden_share`` ((), float32: NaN without a head) and possibly a new ``traj``.
    """
    from moro.inference.store import FrameStore

    head, t = head_of(model), len(tokens)
    share = hidden_shares(head, tokens) if head is not None else np.full(t, np.nan, np.float32)
    with FrameStore.create(out_dir, "hidden_share", (), np.float32) as w:
        w.append(share)
    stores = dict(stores, hidden_share=FrameStore(out_dir, "hidden_share"))
    if carry and head is not None and t:
        traj = stores["traj"].read(0, t)
        new = carry_heading(traj, share, head.tau, head.sigma)
        with FrameStore.create(out_dir, "traj", (9,), traj.dtype) as w:
            w.append(new)
        stores["traj"] = FrameStore(out_dir, "traj")
    return stores
