"""moro.geometry.rotations: 6D row layout, conversions, nearest rotation, angles."""

import math

import pytest
import torch

from moro.geometry import (
    geodesic_distance,
    orthonormalize,
    quat_xyzw_to_rotmat,
    random_rotmat,
    rot6d_to_rotmat,
    rotation_angle,
    rotmat_to_quat_xyzw,
    rotmat_to_rot6d,
    rotmat_to_rotvec,
    rotvec_to_rotmat,
    rotx,
    roty,
    rotz,
)

BATCH_SHAPES = [(), (4,), (2, 3)]
F64 = torch.float64


def _is_rotation(R, tol=1e-10):
    eye = torch.eye(3, dtype=R.dtype).expand(R.shape)
    return torch.allclose(R @ R.transpose(-1, -2), eye, atol=tol) and torch.allclose(
        torch.linalg.det(R), torch.ones(R.shape[:-2], dtype=R.dtype), atol=tol
    )


def test_rot6d_is_first_two_rows_of_handwritten_matrix():
    # A rotation written out by hand: rotation of 90 degrees about +Z then 90 about +X.
    R = torch.tensor([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]], dtype=F64)
    assert _is_rotation(R)
    assert rotmat_to_rot6d(R).tolist() == [0.0, -1.0, 0.0, 0.0, 0.0, -1.0]
    torch.testing.assert_close(rot6d_to_rotmat(rotmat_to_rot6d(R)), R, atol=0, rtol=0)


def test_rot6d_decoding_is_gram_schmidt_on_rows():
    # Unnormalised, non-orthogonal input: b1 = a1/|a1|, b2 = part of a2 orthogonal to b1, rows.
    d6 = torch.tensor([2.0, 0.0, 0.0, 1.0, 3.0, 0.0], dtype=F64)
    torch.testing.assert_close(rot6d_to_rotmat(d6), torch.eye(3, dtype=F64))
    d6 = torch.tensor([0.0, 0.0, 5.0, 1.0, 0.0, 1.0], dtype=F64)  # b1 = +z, b2 = +x, b3 = z x x = +y
    expected = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=F64)
    torch.testing.assert_close(rot6d_to_rotmat(d6), expected)


@pytest.mark.parametrize("shape", BATCH_SHAPES)
def test_rot6d_round_trip_and_validity(shape, gen):
    R = random_rotmat(shape, generator=gen, dtype=F64)
    torch.testing.assert_close(rot6d_to_rotmat(rotmat_to_rot6d(R)), R, atol=1e-12, rtol=0)
    d6 = torch.randn(*shape, 6, generator=gen, dtype=F64)
    Rd = rot6d_to_rotmat(d6)
    assert Rd.shape == (*shape, 3, 3) and _is_rotation(Rd)
    # first row is the normalised first 3-vector
    torch.testing.assert_close(Rd[..., 0, :], d6[..., :3] / d6[..., :3].norm(dim=-1, keepdim=True))


def test_rot6d_batched_equals_one_by_one(gen):
    d6 = torch.randn(2, 3, 6, generator=gen, dtype=F64)
    batched = rot6d_to_rotmat(d6)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(batched[i, j], rot6d_to_rotmat(d6[i, j]), atol=0, rtol=0)


def test_rot6d_to_rotmat_gradcheck(gen):
    d6 = torch.randn(3, 6, generator=gen, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(rot6d_to_rotmat, (d6,))


def test_axis_rotations_golden():
    ex, ey, ez = torch.eye(3, dtype=F64)
    q = math.pi / 2
    torch.testing.assert_close(rotz(q, dtype=F64) @ ex, ey)
    torch.testing.assert_close(rotx(q, dtype=F64) @ ey, ez)
    torch.testing.assert_close(roty(q, dtype=F64) @ ez, ex)
    angles = torch.tensor([[0.3, -1.2]], dtype=F64)
    for fn, axis in ((rotx, ex), (roty, ey), (rotz, ez)):
        assert fn(angles).shape == (1, 2, 3, 3)
        torch.testing.assert_close(fn(angles), rotvec_to_rotmat(angles[..., None] * axis))


@pytest.mark.parametrize("shape", BATCH_SHAPES)
def test_rotvec_round_trip(shape, gen):
    axis = torch.nn.functional.normalize(torch.randn(*shape, 3, generator=gen, dtype=F64), dim=-1)
    angle = torch.rand(*shape, 1, generator=gen, dtype=F64) * 3.0  # (0, 3) rad, away from pi
    v = axis * angle
    R = rotvec_to_rotmat(v)
    assert _is_rotation(R)
    torch.testing.assert_close(rotmat_to_rotvec(R), v, atol=1e-9, rtol=0)
    torch.testing.assert_close(rotation_angle(R), angle[..., 0], atol=1e-9, rtol=0)


def test_quaternion_scalar_last_golden_and_round_trip(gen):
    th = 0.7
    q = torch.tensor([0.0, 0.0, math.sin(th / 2), math.cos(th / 2)], dtype=F64)
    torch.testing.assert_close(quat_xyzw_to_rotmat(q), rotz(th, dtype=F64))
    R = random_rotmat((5,), generator=gen, dtype=F64)
    q = rotmat_to_quat_xyzw(R)
    torch.testing.assert_close(q.norm(dim=-1), torch.ones(5, dtype=F64))
    torch.testing.assert_close(quat_xyzw_to_rotmat(q), R, atol=1e-12, rtol=0)
    torch.testing.assert_close(quat_xyzw_to_rotmat(-3.0 * q), R, atol=1e-12, rtol=0)  # sign and norm free


def test_orthonormalize_recovers_rotation_from_stretched_and_reflected(gen):
    R = random_rotmat((6,), generator=gen, dtype=F64)
    stretch = torch.diag_embed(torch.rand(6, 3, generator=gen, dtype=F64) + 0.5)
    torch.testing.assert_close(orthonormalize(R @ stretch), R, atol=1e-9, rtol=0)
    torch.testing.assert_close(orthonormalize(R), R, atol=1e-12, rtol=0)
    M = torch.randn(2, 3, 3, 3, generator=gen, dtype=F64)
    assert _is_rotation(orthonormalize(M))
    reflection = torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=F64))
    assert torch.linalg.det(orthonormalize(reflection)) > 0
    assert orthonormalize(torch.zeros(0, 3, 3)).shape == (0, 3, 3)


def test_random_rotmat_shape_validity_reproducibility():
    a = random_rotmat((2, 3), generator=torch.Generator().manual_seed(7), dtype=F64)
    b = random_rotmat((2, 3), generator=torch.Generator().manual_seed(7), dtype=F64)
    assert a.shape == (2, 3, 3, 3) and _is_rotation(a)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert random_rotmat().shape == (3, 3) and random_rotmat(5).shape == (5, 3, 3)


def test_rotation_angle_accurate_near_zero_and_pi():
    angles = torch.tensor([0.0, 1e-9, 1e-4, 1.0, math.pi - 1e-7, math.pi], dtype=F64)
    torch.testing.assert_close(rotation_angle(rotx(angles)), angles, atol=1e-12, rtol=1e-9)


def test_geodesic_distance_golden(gen):
    R = random_rotmat((4,), generator=gen, dtype=F64)
    th = torch.tensor([0.1, 0.5, 2.0, 3.0], dtype=F64)
    torch.testing.assert_close(geodesic_distance(R, R @ roty(th)), th, atol=1e-12, rtol=0)
    torch.testing.assert_close(geodesic_distance(R, roty(th) @ R), th, atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    ("fn", "arg", "match"),
    [
        (rot6d_to_rotmat, torch.zeros(4, 5), r"\(\.\.\., 6\)"),
        (rotmat_to_rot6d, torch.zeros(3, 4), r"\(\.\.\., 3, 3\)"),
        (rotvec_to_rotmat, torch.zeros(4), r"\(\.\.\., 3\)"),
        (rotmat_to_rotvec, torch.zeros(3), r"\(\.\.\., 3, 3\)"),
        (quat_xyzw_to_rotmat, torch.zeros(3), r"\(\.\.\., 4\)"),
        (orthonormalize, torch.zeros(2, 2), r"\(\.\.\., 3, 3\)"),
    ],
)
def test_wrong_shapes_raise_value_error(fn, arg, match):
    with pytest.raises(ValueError, match=match):
        fn(arg)


def test_wrong_types_and_broadcasting_raise():
    with pytest.raises(TypeError, match="floating-point"):
        rot6d_to_rotmat(torch.zeros(6, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        rotmat_to_rot6d([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    with pytest.raises(ValueError, match="never broadcasts"):
        geodesic_distance(torch.eye(3), torch.eye(3).expand(4, 3, 3))
