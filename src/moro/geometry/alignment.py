"""Closed-form alignment of point sets and rotation sequences (Procrustes, Umeyama).

Three solvers, each exactly as defined in ``shared/metrics.md`` so that metrics computed with
them are comparable with the published numbers:

- :func:`procrustes_similarity` - the per-frame similarity Procrustes behind PA-MPJPE
  (SPIN / WHAM formula, written with explicit axes so every batch size is handled alike;
  the peers' batched version guesses the layout from ``shape[0]`` and mis-handles batches of
  2 or 3 frames).
- :func:`umeyama` - rigid or similarity Umeyama ``s R X + t ~ Y`` (GVHMR / SLAHMR ``align_pcl``),
  with optional per-point weights.
- :func:`rotation_procrustes` - the constant rotation ``A`` best mapping one rotation sequence
  onto another, ``Ra_t ~ A Rb_t`` (supplement C: world -> camera alignment of baselines).

Conventions: points are row-stacked, ``X (..., N, 3)``; a transform ``(s, R, t)`` maps
``x -> s R x + t`` (column vectors), i.e. ``X @ R^T * s + t`` on a row stack. Any leading batch
shape ``...`` works (including a batch of 1, 2 or 3); inputs are never broadcast against each
other. Units: whatever the points are in (metres in moro); scale is unitless.
Pure torch (imports nothing of moro outside moro.geometry). No value checks (no device sync); callers that
score user data check finiteness first (``moro.metrics``).
"""

from __future__ import annotations

import torch

__all__ = ["procrustes_similarity", "umeyama", "rotation_procrustes"]

# The variance of a point set below which it counts as a single point (scale -> 0, not NaN).
_TINY = 1e-30


def _check_points(name: str, x: object) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}; wrap it with torch.as_tensor")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}; convert it with .double()")
    if x.dim() < 2 or x.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (..., N, 3), got {tuple(x.shape)}")
    if x.shape[-2] < 1:
        raise ValueError(f"{name} must hold at least one point (N >= 1), got shape {tuple(x.shape)}")
    return x


def _check_pair(X: torch.Tensor, Y: torch.Tensor, names: tuple[str, str] = ("X", "Y")) -> None:
    _check_points(names[0], X)
    _check_points(names[1], Y)
    if X.shape != Y.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have identical shapes (..., N, 3) with corresponding points, "
            f"got {tuple(X.shape)} and {tuple(Y.shape)}; alignment never broadcasts - expand explicitly"
        )
    if X.dtype != Y.dtype or X.device != Y.device:
        raise ValueError(
            f"{names[0]} and {names[1]} must share dtype and device, got {X.dtype} on {X.device} and "
            f"{Y.dtype} on {Y.device}; convert one with .to(other)"
        )


def _diag_last(d: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 3, 3) diagonal matrices."""
    return torch.diag_embed(d)


def procrustes_similarity(X: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Similarity ``(s, R, t)`` minimising ``sum_n ||s R x_n + t - y_n||^2`` (PA-MPJPE's Procrustes).

    The formula of ``metrics.md`` in column form: ``X1 = X - mu1``, ``X2 = Y - mu2`` (3 x N),
    ``K = X1 X2^T``, ``U S V^T = svd(K)``, ``Z = diag(1, 1, sign det(V U^T))``, ``R = V Z U^T``,
    ``s = tr(R K) / ||X1||_F^2``, ``t = mu2 - s R mu1``. Every leading index is an independent
    problem, so a batch of F frames gives F per-frame alignments for any F >= 1.

    Args:
        X: (..., N, 3) source points (e.g. predicted joints of each frame).
        Y: (..., N, 3) target points in correspondence with ``X`` (e.g. ground truth).
    Returns:
        s: (...) scales. If all points of ``X`` coincide, ``s = 0`` and ``t = mu2``.
        R: (..., 3, 3) proper rotations (det +1).
        t: (..., 3) translations, in the units of ``Y``.
    """
    _check_pair(X, Y)
    mu1 = X.mean(dim=-2, keepdim=True)  # (..., 1, 3)
    mu2 = Y.mean(dim=-2, keepdim=True)
    X1 = X - mu1  # (..., N, 3): rows are the columns of the formula's X1
    X2 = Y - mu2
    K = X1.transpose(-1, -2) @ X2  # (..., 3, 3) = X1 X2^T of the column form
    U, _, Vh = torch.linalg.svd(K)
    V = Vh.transpose(-1, -2)
    Ut = U.transpose(-1, -2)
    det = torch.linalg.det(V @ Ut)  # (...), +-1
    z = torch.ones(det.shape + (3,), dtype=X.dtype, device=X.device)
    z[..., 2] = torch.where(det < 0, -1.0, 1.0).to(X.dtype)
    R = V @ _diag_last(z) @ Ut  # (..., 3, 3)
    trace_RK = (R * K.transpose(-1, -2)).sum(dim=(-1, -2))  # tr(R K)
    var1 = X1.square().sum(dim=(-1, -2))  # ||X1||_F^2
    s = trace_RK / var1.clamp_min(_TINY)
    t = mu2[..., 0, :] - s[..., None] * (R @ mu1[..., 0, :, None])[..., 0]
    return s, R, t


def umeyama(
    X: torch.Tensor,
    Y: torch.Tensor,
    with_scale: bool,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Umeyama alignment ``s R X + t ~ Y`` (rigid when ``with_scale=False``).

    As ``metrics.md``: ``mx, my`` means; ``C = Y0^T X0 / N`` (row stacks, 3 x 3);
    ``U D Vh = svd(C)``; ``S = I`` with ``S[2,2] = -1`` if ``det(U) det(Vh) < 0``; ``R = U S Vh``;
    ``s = tr(D S) / (sum ||X0||^2 / N)``, or 1 when rigid; ``t = my - s R mx``.
    With ``weights`` every ``1/N`` becomes ``w_n / sum(w)`` (weighted means, weighted cross-
    covariance and variance); ``weights=None`` is exactly the unweighted formula.

    Args:
        X: (..., N, 3) source points (e.g. predicted joints of all frames, flattened).
        Y: (..., N, 3) target points in correspondence with ``X``.
        with_scale: fit a scale (similarity) or fix ``s = 1`` (rigid).
        weights: optional (..., N) non-negative per-point weights, positive sum per problem.
    Returns:
        s: (...) scales (ones when rigid; 0 if all weighted points of ``X`` coincide).
        R: (..., 3, 3) proper rotations.
        t: (..., 3) translations, in the units of ``Y``.
    """
    _check_pair(X, Y)
    if weights is None:
        w = torch.full(X.shape[:-1], 1.0 / X.shape[-2], dtype=X.dtype, device=X.device)
    else:
        if not isinstance(weights, torch.Tensor) or weights.shape != X.shape[:-1]:
            got = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
            raise ValueError(f"weights must be a tensor of shape {tuple(X.shape[:-1])} (one per point), got {got}")
        w = weights.to(X.dtype)
        if bool((w < 0).any()) or not bool((w.sum(-1) > 0).all()):
            raise ValueError("weights must be non-negative with a positive sum for every problem")
        w = w / w.sum(dim=-1, keepdim=True)
    mx = (w[..., None] * X).sum(dim=-2)  # (..., 3)
    my = (w[..., None] * Y).sum(dim=-2)
    X0 = X - mx[..., None, :]
    Y0 = Y - my[..., None, :]
    C = (w[..., None] * Y0).transpose(-1, -2) @ X0  # (..., 3, 3)
    U, D, Vh = torch.linalg.svd(C)
    sgn = torch.ones(D.shape, dtype=X.dtype, device=X.device)  # diagonal of S
    flip = torch.linalg.det(U) * torch.linalg.det(Vh) < 0
    sgn[..., 2] = torch.where(flip, -1.0, 1.0).to(X.dtype)
    R = U @ _diag_last(sgn) @ Vh
    if with_scale:
        var = (w * X0.square().sum(dim=-1)).sum(dim=-1)  # (...)
        s = (D * sgn).sum(dim=-1) / var.clamp_min(_TINY)
    else:
        s = torch.ones(D.shape[:-1], dtype=X.dtype, device=X.device)
    t = my - s[..., None] * (R @ mx[..., None])[..., 0]
    return s, R, t


def rotation_procrustes(Ra: torch.Tensor, Rb: torch.Tensor) -> torch.Tensor:
    """The constant rotation ``A`` maximising ``sum_t tr(Ra_t^T A Rb_t)``, i.e. ``Ra_t ~ A Rb_t``.

    ``sum_t tr(Ra_t^T A Rb_t) = <A, M>_F`` with ``M = sum_t Ra_t Rb_t^T``; the maximiser over
    SO(3) is ``A = U diag(1, 1, sign det(U Vh)) Vh`` with ``U S Vh = svd(M)`` (orthogonal
    Procrustes). Supplement C uses it with ``Ra = R_cam`` and ``Rb = R_world`` to obtain the
    world -> camera rotation of a baseline's world-frame output.

    Args:
        Ra: (..., T, 3, 3) rotation matrices (e.g. per-frame orientations in the camera frame).
        Rb: (..., T, 3, 3) rotation matrices (e.g. the same frames' orientations in the world).
    Returns:
        A: (..., 3, 3) proper rotation (maps Rb's frame into Ra's: ``A Rb_t ~ Ra_t``).
    """
    for name, R in (("Ra", Ra), ("Rb", Rb)):
        if not isinstance(R, torch.Tensor) or not R.is_floating_point():
            raise TypeError(f"{name} must be a floating-point torch.Tensor")
        if R.dim() < 3 or R.shape[-2:] != (3, 3) or R.shape[-3] < 1:
            raise ValueError(f"{name} must have shape (..., T, 3, 3) with T >= 1, got {tuple(R.shape)}")
    if Ra.shape != Rb.shape:
        raise ValueError(
            f"Ra and Rb must have identical shapes (..., T, 3, 3), got {tuple(Ra.shape)} and {tuple(Rb.shape)}; "
            f"both sequences must cover the same frames"
        )
    if Ra.dtype != Rb.dtype or Ra.device != Rb.device:
        raise ValueError(
            f"Ra and Rb must share dtype and device, got {Ra.dtype}/{Ra.device} and {Rb.dtype}/{Rb.device}"
        )
    M = (Ra @ Rb.transpose(-1, -2)).sum(dim=-3)  # (..., 3, 3)
    U, _, Vh = torch.linalg.svd(M)
    d = torch.ones(M.shape[:-1], dtype=M.dtype, device=M.device)  # (..., 3)
    d[..., 2] = torch.where(torch.linalg.det(U @ Vh) < 0, -1.0, 1.0).to(M.dtype)
    return U @ _diag_last(d) @ Vh

