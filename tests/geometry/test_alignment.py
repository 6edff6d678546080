"""moro.geometry.alignment: Procrustes / Umeyama / rotation Procrustes against naive references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moro.geometry.alignment import procrustes_similarity, rotation_procrustes, umeyama
from moro.geometry.rigid import apply_similarity


def _random_rotation(gen: torch.Generator, *batch: int, dtype=torch.float64) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(*batch, 3, 3, generator=gen, dtype=dtype))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[..., None, :]
    det = torch.linalg.det(q)
    q[..., :, 2] *= det[..., None]  # proper rotation
    return q


def _naive_procrustes(X: np.ndarray, Y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """metrics.md's formula for one (N, 3) problem, column form, numpy SVD."""
    X1, X2 = X.T, Y.T  # (3, N)
    mu1, mu2 = X1.mean(1, keepdims=True), X2.mean(1, keepdims=True)
    X1, X2 = X1 - mu1, X2 - mu2
    K = X1 @ X2.T
    U, _, Vt = np.linalg.svd(K)
    V = Vt.T
    Z = np.eye(3)
    Z[2, 2] = np.sign(np.linalg.det(V @ U.T))
    R = V @ Z @ U.T
    s = np.trace(R @ K) / np.sum(X1**2)
    t = mu2 - s * R @ mu1
    return s, R, t[:, 0]


@pytest.mark.parametrize("batch", [(), (1,), (2,), (3,), (7,), (2, 3)])
def test_procrustes_matches_naive_reference_for_every_batch_size(batch):
    gen = torch.Generator().manual_seed(len(batch) * 10 + sum(batch))
    X = torch.randn(*batch, 22, 3, generator=gen, dtype=torch.float64)
    Y = torch.randn(*batch, 22, 3, generator=gen, dtype=torch.float64)
    s, R, t = procrustes_similarity(X, Y)
    assert s.shape == batch and R.shape == (*batch, 3, 3) and t.shape == (*batch, 3)
    Xf, Yf = X.reshape(-1, 22, 3).numpy(), Y.reshape(-1, 22, 3).numpy()
    for i, (sf, Rf, tf) in enumerate(zip(s.reshape(-1), R.reshape(-1, 3, 3), t.reshape(-1, 3))):
        s_ref, R_ref, t_ref = _naive_procrustes(Xf[i], Yf[i])
        np.testing.assert_allclose(sf.item(), s_ref, atol=1e-10)
        np.testing.assert_allclose(Rf.numpy(), R_ref, atol=1e-10)
        np.testing.assert_allclose(tf.numpy(), t_ref, atol=1e-10)


@pytest.mark.parametrize("n_points", [3, 22])
def test_procrustes_recovers_a_known_similarity(n_points):
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(5, n_points, 3, generator=gen, dtype=torch.float64)
    R_true = _random_rotation(gen, 5)
    s_true = torch.rand(5, generator=gen, dtype=torch.float64) + 0.5
    t_true = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    Y = apply_similarity(s_true, R_true, t_true, X)
    s, R, t = procrustes_similarity(X, Y)
    torch.testing.assert_close(s, s_true)
    torch.testing.assert_close(R, R_true)
    torch.testing.assert_close(t, t_true)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(5, dtype=torch.float64))


def test_procrustes_never_returns_a_reflection():
    X = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=torch.float64)
    Y = X * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)  # mirrored
    _, R, _ = procrustes_similarity(X, Y)
    assert torch.linalg.det(R).item() == pytest.approx(1.0)


def test_procrustes_degenerate_source_collapses_to_target_centroid():
    X = torch.ones(4, 3, dtype=torch.float64)
    Y = torch.randn(4, 3, dtype=torch.float64)
    s, R, t = procrustes_similarity(X, Y)
    assert s.item() == 0.0
    torch.testing.assert_close(t, Y.mean(0))


def test_procrustes_float32_and_gradients():
    gen = torch.Generator().manual_seed(3)
    X = torch.randn(2, 10, 3, generator=gen, requires_grad=True)
    Y = torch.randn(2, 10, 3, generator=gen)
    s, R, t = procrustes_similarity(X, Y)
    assert s.dtype == torch.float32
    (apply_similarity(s, R, t, X) - Y).square().sum().backward()
    assert X.grad is not None and torch.isfinite(X.grad).all()


def test_procrustes_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="identical shapes"):
        procrustes_similarity(torch.zeros(2, 5, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"\(\.\.\., N, 3\)"):
        procrustes_similarity(torch.zeros(5, 2), torch.zeros(5, 2))


@pytest.mark.parametrize("with_scale", [True, False])
def test_umeyama_matches_procrustes_without_weights(with_scale):
    gen = torch.Generator().manual_seed(4)
    X = torch.randn(3, 30, 3, generator=gen, dtype=torch.float64)
    Y = torch.randn(3, 30, 3, generator=gen, dtype=torch.float64)
    s, R, t = umeyama(X, Y, with_scale)
    s_p, R_p, _ = procrustes_similarity(X, Y)
    torch.testing.assert_close(R, R_p)  # same optimal rotation
    if with_scale:
        torch.testing.assert_close(s, s_p)
    else:
        torch.testing.assert_close(s, torch.ones(3, dtype=torch.float64))
    expected_t = Y.mean(-2) - s[:, None] * torch.einsum("bij,bj->bi", R, X.mean(-2))
    torch.testing.assert_close(t, expected_t)


def test_umeyama_recovers_rigid_and_similarity_transforms():
    gen = torch.Generator().manual_seed(5)
    X = torch.randn(50, 3, generator=gen, dtype=torch.float64)
    R_true = _random_rotation(gen)
    t_true = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    s, R, t = umeyama(X, X @ R_true.T + t_true, with_scale=False)
    torch.testing.assert_close(R, R_true)
    torch.testing.assert_close(t, t_true)
    s, R, t = umeyama(X, 2.5 * X @ R_true.T + t_true, with_scale=True)
    assert s.item() == pytest.approx(2.5)
    torch.testing.assert_close(R, R_true)


def test_umeyama_weights_equal_duplicating_points():
    gen = torch.Generator().manual_seed(6)
    X = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    Y = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    w = torch.tensor([1.0, 2, 1, 3, 1, 1], dtype=torch.float64)
    reps = w.long()
    expected = umeyama(X.repeat_interleave(reps, 0), Y.repeat_interleave(reps, 0), True)
    got = umeyama(X, Y, True, weights=w)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="weights"):
        umeyama(X, Y, True, weights=torch.ones(5, dtype=torch.float64))


def test_rotation_procrustes_recovers_constant_offset_and_maximises_objective():
    gen = torch.Generator().manual_seed(7)
    Rb = _random_rotation(gen, 40)
    A_true = _random_rotation(gen)
    Ra = A_true @ Rb
    torch.testing.assert_close(rotation_procrustes(Ra, Rb), A_true)
    # with noise, the solution beats random rotations on the objective
    noise = torch.linalg.matrix_exp(_skew(0.2 * torch.randn(40, 3, generator=gen, dtype=torch.float64)))
    Ra_noisy = Ra @ noise
    A = rotation_procrustes(Ra_noisy, Rb)

    def objective(M):  # (..., 3, 3) -> (...) sum_t tr(Ra_t^T M Rb_t)
        return torch.einsum("tji,...jk,tki->...", Ra_noisy, M, Rb)

    assert (objective(_random_rotation(gen, 50)) <= objective(A) + 1e-9).all()
    assert torch.linalg.det(A).item() == pytest.approx(1.0)


def _skew(w: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 3, 3) cross-product matrices."""
    x, y, z = w.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], dim=-1).reshape(*w.shape[:-1], 3, 3)


def test_rotation_procrustes_batched_and_shape_errors():
    gen = torch.Generator().manual_seed(8)
    Rb = _random_rotation(gen, 2, 10)
    A_true = _random_rotation(gen, 2)
    A = rotation_procrustes(A_true[:, None] @ Rb, Rb)
    torch.testing.assert_close(A, A_true)
    with pytest.raises(ValueError, match="identical shapes"):
        rotation_procrustes(Rb, Rb[:, :5])


def test_apply_similarity_never_broadcasts():
    X = torch.zeros(4, 10, 3)
    with pytest.raises(ValueError, match="expand"):
        apply_similarity(torch.ones(()), torch.eye(3), torch.zeros(3), X)
    out = apply_similarity(torch.full((4,), 2.0), torch.eye(3).expand(4, 3, 3), torch.ones(4, 3), X + 1)
    torch.testing.assert_close(out, torch.full((4, 10, 3), 3.0))
