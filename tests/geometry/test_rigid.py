"""moro.geometry.rigid: apply / invert / compose rigid and similarity transforms."""

import math

import pytest
import torch

from moro.geometry import (
    apply_rigid,
    apply_similarity,
    compose_rigid,
    invert_rigid,
    make_transform,
    random_rotmat,
    rotz,
    split_transform,
)

BATCH_SHAPES = [(), (4,), (2, 3)]
F64 = torch.float64


def _random_rigid(shape, gen):
    return random_rotmat(shape, generator=gen, dtype=F64), torch.randn(*shape, 3, generator=gen, dtype=F64)


def test_apply_rigid_golden():
    R = rotz(math.pi / 2, dtype=F64)
    t = torch.tensor([1.0, 0.0, 0.0], dtype=F64)
    x = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]], dtype=F64)
    expected = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 2.0]], dtype=F64)
    torch.testing.assert_close(apply_rigid(R, t, x), expected)
    torch.testing.assert_close(apply_similarity(torch.tensor(2.0, dtype=F64), R, t, x), 2 * expected - t)


@pytest.mark.parametrize("shape", BATCH_SHAPES)
def test_apply_rigid_matches_homogeneous_matrix(shape, gen):
    R, t = _random_rigid(shape, gen)
    x = torch.randn(*shape, 5, 3, generator=gen, dtype=F64)
    T = make_transform(R, t)
    assert T.shape == (*shape, 4, 4)
    xh = torch.cat((x, torch.ones(*shape, 5, 1, dtype=F64)), dim=-1)
    expected = (xh @ T.transpose(-1, -2))[..., :3]
    torch.testing.assert_close(apply_rigid(R, t, x), expected, atol=1e-12, rtol=0)
    R2, t2 = split_transform(T)
    torch.testing.assert_close(R2, R, atol=0, rtol=0)
    torch.testing.assert_close(t2, t, atol=0, rtol=0)


@pytest.mark.parametrize("shape", BATCH_SHAPES)
def test_invert_and_compose(shape, gen):
    R1, t1 = _random_rigid(shape, gen)
    R2, t2 = _random_rigid(shape, gen)
    x = torch.randn(*shape, 7, 3, generator=gen, dtype=F64)
    Ri, ti = invert_rigid(R1, t1)
    torch.testing.assert_close(apply_rigid(Ri, ti, apply_rigid(R1, t1, x)), x, atol=1e-12, rtol=0)
    R12, t12 = compose_rigid(R1, t1, R2, t2)  # first 2, then 1
    torch.testing.assert_close(apply_rigid(R12, t12, x), apply_rigid(R1, t1, apply_rigid(R2, t2, x)))
    torch.testing.assert_close(make_transform(R12, t12), make_transform(R1, t1) @ make_transform(R2, t2))
    Rid, tid = compose_rigid(R1, t1, Ri, ti)
    torch.testing.assert_close(Rid, torch.eye(3, dtype=F64).expand_as(Rid), atol=1e-12, rtol=0)
    torch.testing.assert_close(tid, torch.zeros_like(tid), atol=1e-12, rtol=0)


def test_similarity_batched_equals_one_by_one(gen):
    R, t = _random_rigid((4,), gen)
    s = torch.rand(4, generator=gen, dtype=F64) + 0.5
    x = torch.randn(4, 6, 3, generator=gen, dtype=F64)
    batched = apply_similarity(s, R, t, x)
    for i in range(4):
        one = apply_similarity(s[i], R[i], t[i], x[i])
        torch.testing.assert_close(batched[i], one, atol=1e-14, rtol=0)
        # a similarity preserves distance ratios: scales all pairwise distances by s
        torch.testing.assert_close(torch.cdist(one, one), s[i] * torch.cdist(x[i], x[i]))


def test_shape_errors_and_no_broadcasting():
    R, t = torch.eye(3), torch.zeros(3)
    with pytest.raises(ValueError, match="never broadcasts"):
        apply_rigid(R, t, torch.zeros(5, 10, 3))  # one transform, 5 point sets: must expand
    with pytest.raises(ValueError, match="never broadcasts"):
        apply_rigid(R.expand(4, 3, 3), torch.zeros(3, 3), torch.zeros(4, 10, 3))
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., \*, 3\)"):
        apply_rigid(R, t, torch.zeros(10, 2))
    with pytest.raises(ValueError, match=r"t must have shape \(\.\.\., 3\)"):
        make_transform(R, torch.zeros(4))
    with pytest.raises(ValueError, match=r"T must have shape \(\.\.\., 4, 4\)"):
        split_transform(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="dtype"):
        apply_rigid(R, t, torch.zeros(10, 3, dtype=F64))
