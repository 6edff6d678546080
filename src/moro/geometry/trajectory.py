"""MoRo's root-trajectory representation: absolute 9D, canonical (relative) 9D, statistics.

A motion's root trajectory is, per frame t, a rotation ``R_t`` (body -> world or body -> camera)
and a translation ``t_t`` in metres (the pelvis position), so that
``V_global = V_local @ R_t^T + t_t``.

* **Absolute** 9D (:func:`pack_trajectory`): ``[6D(R_t), t_t]`` (6D = first two rows of R).
* **Canonical** 9D (:func:`trajectory_to_canonical`, design.md "Representation", official
  checkpoint section 4): ``[6D(R_t^T R_{t+1}), R_t^T (t_{t+1} - t_t)]``, i.e. the motion from
  frame t to t+1 written in frame t's body frame. The last frame copies the previous one.
  It is invariant to any rigid change of the world frame. :func:`canonical_to_trajectory`
  rebuilds absolute poses by accumulation from a first pose (default identity, origin).
* **Normalised** canonical: z-scored per channel with :class:`TrajectoryStats`, whose values
  are computed from data and stored with the model (never literals in code).
* Supplement A.2 (:func:`canonicalize_first_frame`): express a sequence in the frame of its
  first pose.

Shapes: ``t`` (frames) is the axis just before the per-frame axes; any leading ``...`` works.
Shapes are checked (``ValueError``); values only in :class:`TrajectoryStats` (data side).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._checks import check_finite, check_positive, check_same_batch, check_same_dtype, check_shape
from .rotations import rot6d_to_rotmat, rotmat_to_rot6d, rotvec_to_rotmat

__all__ = [
    "pack_trajectory",
    "unpack_trajectory",
    "trajectory_to_canonical",
    "canonical_to_trajectory",
    "canonicalize_first_frame",
    "canonicalize_first_frame_points",
    "TrajectoryStats",
    "perturb_trajectory",
]


def _check_traj(R: torch.Tensor, t: torch.Tensor) -> torch.Size:
    """Check R (..., T, 3, 3), t (..., T, 3) with T >= 1; return (..., T)."""
    bR = check_shape("R", R, (None, 3, 3))
    bt = check_shape("t", t, (None, 3))
    check_same_dtype(R=R, t=t)
    b = check_same_batch(R=(*bR, R.shape[-3]), t=(*bt, t.shape[-2]))
    if R.shape[-3] == 0:
        raise ValueError(f"trajectory needs at least one frame, got R of shape {tuple(R.shape)}")
    return b


def pack_trajectory(R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Absolute trajectory as 9D per frame: ``[6D(R_t), t_t]``.

    Args:
        R: (..., t, 3, 3) root rotations.
        t: (..., t, 3) root translations, metres.
    Returns:
        (..., t, 9).
    """
    _check_traj(R, t)
    return torch.cat((rotmat_to_rot6d(R), t), dim=-1)


def unpack_trajectory(traj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`pack_trajectory` (the 6D part is Gram-Schmidt decoded).

    Args:
        traj: (..., t, 9) ``[6D, translation (m)]``.
    Returns:
        ``(R (..., t, 3, 3), t (..., t, 3))``.
    """
    check_shape("traj", traj, (None, 9))
    return rot6d_to_rotmat(traj[..., :6]), traj[..., 6:]


def trajectory_to_canonical(R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Canonical (frame-to-frame, body-relative) trajectory.

    Frame k (k < T-1) holds ``[6D(R_k^T R_{k+1}), R_k^T (t_{k+1} - t_k)]``; frame T-1 copies frame
    T-2. For a single frame (T = 1) there is no motion: the output is the identity rotation
    ``[1,0,0,0,1,0]`` and zero translation. Invariant to ``R_t -> A R_t, t_t -> A t_t + b``.

    Args:
        R: (..., t, 3, 3) root rotations, t >= 1.
        t: (..., t, 3) root translations, metres.
    Returns:
        (..., t, 9) canonical trajectory (unnormalised; metres for the last 3 channels).
    """
    _check_traj(R, t)
    n = R.shape[-3]
    if n == 1:
        eye6 = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0], dtype=R.dtype, device=R.device)
        return torch.cat((eye6.expand(*t.shape[:-1], 6), torch.zeros_like(t)), dim=-1)
    R_prev_T = R[..., :-1, :, :].transpose(-1, -2)  # (..., t-1, 3, 3)
    dR = R_prev_T @ R[..., 1:, :, :]
    dt = (R_prev_T @ (t[..., 1:, :] - t[..., :-1, :]).unsqueeze(-1)).squeeze(-1)
    cano = torch.cat((rotmat_to_rot6d(dR), dt), dim=-1)  # (..., t-1, 9)
    return torch.cat((cano, cano[..., -1:, :]), dim=-2)


def canonical_to_trajectory(
    cano: torch.Tensor, R0: torch.Tensor | None = None, t0: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rebuild absolute poses from a canonical trajectory by accumulation from the first frame.

    ``R_{k+1} = R_k dR_k``, ``t_{k+1} = t_k + R_k dt_k`` with ``(dR_k, dt_k)`` decoded from frame k of
    ``cano``; the last canonical frame (the padding copy) is not used.

    Args:
        cano: (..., t, 9) canonical trajectory (unnormalised), t >= 1.
        R0: (..., 3, 3) first rotation; default identity.
        t0: (..., 3) first translation, metres; default zero.
    Returns:
        ``(R (..., t, 3, 3), t (..., t, 3))`` with ``R[..., 0] = R0``, ``t[..., 0] = t0``.
    """
    b = check_shape("cano", cano, (None, 9))
    n = cano.shape[-2]
    if n == 0:
        raise ValueError(f"cano needs at least one frame, got shape {tuple(cano.shape)}")
    if R0 is None:
        R0 = torch.eye(3, dtype=cano.dtype, device=cano.device).expand(*b, 3, 3)
    if t0 is None:
        t0 = torch.zeros(*b, 3, dtype=cano.dtype, device=cano.device)
    bR = check_shape("R0", R0, (3, 3))
    bt = check_shape("t0", t0, (3,))
    check_same_batch(cano=b, R0=bR, t0=bt)
    check_same_dtype(cano=cano, R0=R0, t0=t0)
    dR = rot6d_to_rotmat(cano[..., :-1, :6])  # (..., t-1, 3, 3)
    dt = cano[..., :-1, 6:]  # (..., t-1, 3)
    Rs, ts = [R0], [t0]
    for k in range(n - 1):
        ts.append(ts[-1] + (Rs[-1] @ dt[..., k, :].unsqueeze(-1)).squeeze(-1))
        Rs.append(Rs[-1] @ dR[..., k, :, :])
    return torch.stack(Rs, dim=-3), torch.stack(ts, dim=-2)


def canonicalize_first_frame(R: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Express a trajectory in its first frame's pose (supplement A.2).

    Returns ``(R_0^T R_k, R_0^T (t_k - t_0))``: the first frame becomes (I, 0). Equivalent to applying
    the inverse rigid transform of frame 0 to the whole sequence (and to its meshes, see
    :func:`canonicalize_first_frame_points`).

    Args:
        R: (..., t, 3, 3) root rotations.
        t: (..., t, 3) root translations, metres.
    Returns:
        ``(R_c (..., t, 3, 3), t_c (..., t, 3))``.
    """
    _check_traj(R, t)
    R0_T = R[..., :1, :, :].transpose(-1, -2)  # (..., 1, 3, 3), broadcast over frames (same batch)
    return R0_T @ R, (R0_T @ (t - t[..., :1, :]).unsqueeze(-1)).squeeze(-1)


def canonicalize_first_frame_points(R: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply the first-frame canonicalisation of ``(R, t)`` to per-frame world points.

    ``x_c = R_0^T (x - t_0)``. For a global mesh ``V = V_local @ R_k^T + t_k`` this equals the mesh
    rebuilt from :func:`canonicalize_first_frame`'s output.

    Args:
        R: (..., t, 3, 3) root rotations.
        t: (..., t, 3) root translations, metres.
        x: (..., t, n, 3) points (vertices, joints) per frame, same ``...`` and t.
    Returns:
        (..., t, n, 3) canonicalised points.
    """
    b = _check_traj(R, t)
    bx = check_shape("x", x, (None, 3))
    check_same_batch(R=b, x=bx)
    check_same_dtype(R=R, x=x)
    R0 = R[..., :1, :, :]  # (..., 1, 3, 3)
    return (x - t[..., :1, :].unsqueeze(-2)) @ R0  # row-vector form of R0^T (x - t0)


@dataclass
class TrajectoryStats:
    """Per-channel statistics that z-normalise canonical trajectories.

    Computed from a training set (:meth:`from_canonical`) and saved with the model
    (:meth:`state_dict`); the official checkpoint ships its own as ``amass_cum_traj.pkl``
    (shape (1, 1, 9): reshape to (9,) before :meth:`from_state_dict`).
    """

    mean: torch.Tensor  # (9,) channel means: 6D of the relative rotation, then metres per frame
    std: torch.Tensor  # (9,) channel standard deviations, strictly positive, same units

    def __post_init__(self) -> None:
        for name in ("mean", "std"):
            v = getattr(self, name)
            if not isinstance(v, torch.Tensor) or v.shape != (9,) or not v.is_floating_point():
                got = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
                raise ValueError(f"TrajectoryStats.{name} must be a float tensor of shape (9,), got {got}")
        check_finite("TrajectoryStats.mean", self.mean)
        check_positive("TrajectoryStats.std", self.std)

    @classmethod
    def from_canonical(cls, cano: torch.Tensor, min_std: float = 1e-6) -> TrajectoryStats:
        """Statistics over all samples of canonical trajectories.

        Args:
            cano: (..., 9) unnormalised canonical frames; every leading axis is pooled. Drop the
                padded last frame of each clip first (``cano[..., :-1, :]``) if it should not count.
            min_std: floor on the std so constant channels cannot divide by zero.
        Returns:
            Population mean and std (computed in float64, returned in ``cano.dtype``).
        """
        check_shape("cano", cano, (9,))
        flat = cano.reshape(-1, 9).to(torch.float64)
        if flat.shape[0] < 2:
            raise ValueError(f"need at least 2 canonical frames to compute statistics, got {flat.shape[0]}")
        check_finite("cano", flat)
        std = flat.std(dim=0, correction=0).clamp_min(min_std)
        return cls(mean=flat.mean(dim=0).to(cano.dtype), std=std.to(cano.dtype))

    def normalize(self, cano: torch.Tensor) -> torch.Tensor:
        """(..., 9) canonical trajectory -> (..., 9) z-scores ``(cano - mean) / std``."""
        check_shape("cano", cano, (9,))
        return (cano - self.mean.to(cano)) / self.std.to(cano)

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        """(..., 9) z-scores -> (..., 9) canonical trajectory ``z * std + mean``."""
        check_shape("z", z, (9,))
        return z * self.std.to(z) + self.mean.to(z)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """``{"mean": (9,), "std": (9,)}`` copies, for saving inside a checkpoint."""
        return {"mean": self.mean.detach().clone(), "std": self.std.detach().clone()}

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> TrajectoryStats:
        """Rebuild from :meth:`state_dict` output; raises if a key is missing or mis-shaped."""
        missing = [k for k in ("mean", "std") if k not in state]
        if missing:
            raise KeyError(f"trajectory statistics lack key(s) {missing}; expected {{'mean': (9,), 'std': (9,)}}")
        return cls(mean=state["mean"].clone(), std=state["std"].clone())


def perturb_trajectory(
    R: torch.Tensor,
    t: torch.Tensor,
    rot_std_rad: float,
    trans_std_m: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Independent Gaussian noise on every frame's orientation and translation.

    ``R' = Exp(w) R`` with axis-angle noise ``w ~ N(0, rot_std_rad^2 I_3)`` and
    ``t' = t + e``, ``e ~ N(0, trans_std_m^2 I_3)``, independently per frame. (Left or right
    multiplication give the same distribution, since isotropic noise is rotation invariant.)
    Used by motion pretraining to simulate noisy camera trajectories.

    Args:
        R: (..., 3, 3) rotations (typically (..., t, 3, 3)).
        t: (..., 3) translations, metres, same ``...``.
        rot_std_rad: per-axis std of the rotation-vector noise, radians (>= 0).
        trans_std_m: per-axis std of the translation noise, metres (>= 0).
        generator: optional ``torch.Generator`` on R's device.
    Returns:
        ``(R' (..., 3, 3), t' (..., 3))``.
    """
    bR = check_shape("R", R, (3, 3))
    bt = check_shape("t", t, (3,))
    check_same_batch(R=bR, t=bt)
    check_same_dtype(R=R, t=t)
    if not (rot_std_rad >= 0 and trans_std_m >= 0):
        raise ValueError(f"noise stds must be >= 0, got rot_std_rad={rot_std_rad}, trans_std_m={trans_std_m}")
    w = torch.randn(t.shape, generator=generator, dtype=t.dtype, device=t.device) * rot_std_rad
    e = torch.randn(t.shape, generator=generator, dtype=t.dtype, device=t.device) * trans_std_m
    return rotvec_to_rotmat(w) @ R, t + e
