"""moro.geometry.trajectory: absolute / canonical trajectories, first-frame canonicalisation,
statistics and noise."""

import math

import pytest
import torch

from moro.geometry import (
    TrajectoryStats,
    apply_rigid,
    canonical_to_trajectory,
    canonicalize_first_frame,
    canonicalize_first_frame_points,
    geodesic_distance,
    pack_trajectory,
    perturb_trajectory,
    random_rotmat,
    rotmat_to_rot6d,
    roty,
    trajectory_to_canonical,
    unpack_trajectory,
)

BATCH_SHAPES = [(), (4,), (2, 3)]
F64 = torch.float64
T = 7


def _random_traj(shape, gen, n=T):
    return random_rotmat((*shape, n), generator=gen, dtype=F64), torch.randn(*shape, n, 3, generator=gen, dtype=F64)


@pytest.mark.parametrize("shape", BATCH_SHAPES)
def test_pack_unpack_round_trip(shape, gen):
    R, t = _random_traj(shape, gen)
    traj = pack_trajectory(R, t)
    assert traj.shape == (*shape, T, 9)
    R2, t2 = unpack_trajectory(traj)
    torch.testing.assert_close(R2, R, atol=1e-12, rtol=0)
    torch.testing.assert_close(t2, t, atol=0, rtol=0)


def test_canonical_of_constant_velocity_straight_walk():
    # Body turned to face world +X (roty(+90 deg) maps body +Z to world +X), pelvis 0.9 m high,
    # walking 0.05 m per frame along world +X: in its own frame it steps 0.05 m forward (+Z).
    n = 5
    R = roty(torch.full((n,), math.pi / 2, dtype=F64))
    t = torch.zeros(n, 3, dtype=F64)
    t[:, 0] = 0.05 * torch.arange(n, dtype=F64)
    t[:, 1] = 0.9
    expected = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.05], dtype=F64).expand(n, 9)
    torch.testing.assert_close(trajectory_to_canonical(R, t), expected, atol=1e-12, rtol=0)


def test_canonical_of_turning_in_place_and_last_frame_copy():
    w = 0.1  # rad per frame about the vertical axis
    n = 6
    R = roty(w * torch.arange(n, dtype=F64))
    t = torch.zeros(n, 3, dtype=F64)
    cano = trajectory_to_canonical(R, t)
    torch.testing.assert_close(cano[:, :6], rotmat_to_rot6d(roty(w, dtype=F64)).expand(n, 6), atol=1e-12, rtol=0)
    torch.testing.assert_close(cano[:, 6:], torch.zeros(n, 3, dtype=F64))
    # padding: the last frame copies the previous one, for arbitrary motion too
    R, t = _random_traj((), torch.Generator().manual_seed(0))
    cano = trajectory_to_canonical(R, t)
    torch.testing.assert_close(cano[-1], cano[-2], atol=0, rtol=0)


def test_single_frame_is_identity_and_zero():
    R, t = _random_traj((2,), torch.Generator().manual_seed(0), n=1)
    cano = trajectory_to_canonical(R, t)
    assert cano.shape == (2, 1, 9)
    assert cano.tolist() == [[[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]]] * 2
    R2, t2 = canonical_to_trajectory(cano, R[:, 0], t[:, 0])
    torch.testing.assert_close(R2, R, atol=0, rtol=0)
    torch.testing.assert_close(t2, t, atol=0, rtol=0)


@pytest.mark.parametrize("shape", BATCH_SHAPES)
def test_canonical_round_trip(shape, gen):
    R, t = _random_traj(shape, gen)
    cano = trajectory_to_canonical(R, t)
    assert cano.shape == (*shape, T, 9)
    R2, t2 = canonical_to_trajectory(cano, R[..., 0, :, :], t[..., 0, :])
    torch.testing.assert_close(R2, R, atol=1e-9, rtol=0)
    torch.testing.assert_close(t2, t, atol=1e-9, rtol=0)


def test_default_start_rebuilds_the_first_frame_canonicalised_trajectory(gen):
    R, t = _random_traj((3,), gen)
    R2, t2 = canonical_to_trajectory(trajectory_to_canonical(R, t))  # R0 = I, t0 = 0
    Rc, tc = canonicalize_first_frame(R, t)
    torch.testing.assert_close(R2, Rc, atol=1e-9, rtol=0)
    torch.testing.assert_close(t2, tc, atol=1e-9, rtol=0)
    torch.testing.assert_close(Rc[:, 0], torch.eye(3, dtype=F64).expand(3, 3, 3), atol=1e-12, rtol=0)
    torch.testing.assert_close(tc[:, 0], torch.zeros(3, 3, dtype=F64), atol=0, rtol=0)


def test_canonical_and_first_frame_are_invariant_to_world_rigid_motion(gen):
    R, t = _random_traj((2,), gen)
    A = random_rotmat((2,), generator=gen, dtype=F64)
    b = torch.randn(2, 3, generator=gen, dtype=F64)
    R_moved = A[:, None] @ R
    t_moved = apply_rigid(A, b, t)  # t: (2, T, 3) treated as point sets
    torch.testing.assert_close(trajectory_to_canonical(R_moved, t_moved), trajectory_to_canonical(R, t))
    for a, c in zip(canonicalize_first_frame(R_moved, t_moved), canonicalize_first_frame(R, t)):
        torch.testing.assert_close(a, c)


def test_first_frame_points_match_rebuilt_mesh(gen):
    R, t = _random_traj((2,), gen)
    v_local = torch.randn(2, T, 10, 3, generator=gen, dtype=F64)
    v_global = v_local @ R.transpose(-1, -2) + t[..., None, :]  # V_local @ R^T + t
    Rc, tc = canonicalize_first_frame(R, t)
    expected = v_local @ Rc.transpose(-1, -2) + tc[..., None, :]
    torch.testing.assert_close(canonicalize_first_frame_points(R, t, v_global), expected)


def test_batched_equals_one_by_one(gen):
    R, t = _random_traj((2, 3), gen)
    cano = trajectory_to_canonical(R, t)
    Rb, tb = canonical_to_trajectory(cano, R[..., 0, :, :], t[..., 0, :])
    for i in range(2):
        for j in range(3):
            one = trajectory_to_canonical(R[i, j], t[i, j])
            torch.testing.assert_close(cano[i, j], one, atol=0, rtol=0)
            Ro, to = canonical_to_trajectory(one, R[i, j, 0], t[i, j, 0])
            torch.testing.assert_close(Rb[i, j], Ro, atol=1e-14, rtol=0)
            torch.testing.assert_close(tb[i, j], to, atol=1e-14, rtol=0)


def test_gradcheck_canonical_maps(gen):
    R, t = _random_traj((), gen, n=4)
    t.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda tt: trajectory_to_canonical(R, tt), (t,))
    cano = trajectory_to_canonical(R, t.detach()).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda c: canonical_to_trajectory(c)[1], (cano,))


def test_stats_from_canonical_normalize_round_trip_and_state_dict(gen):
    R, t = _random_traj((20,), gen, n=10)
    cano = trajectory_to_canonical(R, t)
    stats = TrajectoryStats.from_canonical(cano)
    flat = cano.reshape(-1, 9)
    torch.testing.assert_close(stats.mean, flat.mean(0))
    torch.testing.assert_close(stats.std, flat.std(0, correction=0))
    z = stats.normalize(cano)
    torch.testing.assert_close(z.reshape(-1, 9).mean(0), torch.zeros(9, dtype=F64), atol=1e-12, rtol=0)
    torch.testing.assert_close(z.reshape(-1, 9).std(0, correction=0), torch.ones(9, dtype=F64))
    torch.testing.assert_close(stats.denormalize(z), cano, atol=1e-12, rtol=0)
    # normalising float32 data with float64 stats keeps the data's dtype
    assert stats.normalize(cano.float()).dtype == torch.float32
    loaded = TrajectoryStats.from_state_dict(stats.state_dict())
    torch.testing.assert_close(loaded.mean, stats.mean, atol=0, rtol=0)
    torch.testing.assert_close(loaded.std, stats.std, atol=0, rtol=0)
    # constant channels get the floor std instead of a zero division
    const = TrajectoryStats.from_canonical(torch.zeros(5, 9), min_std=1e-3)
    torch.testing.assert_close(const.std, torch.full((9,), 1e-3))


def test_stats_reject_bad_values():
    with pytest.raises(ValueError, match=r"shape \(9,\)"):
        TrajectoryStats(mean=torch.zeros(1, 1, 9), std=torch.ones(9))
    with pytest.raises(ValueError, match="strictly positive"):
        TrajectoryStats(mean=torch.zeros(9), std=torch.zeros(9))
    with pytest.raises(ValueError, match="non-finite"):
        TrajectoryStats(mean=torch.full((9,), float("nan")), std=torch.ones(9))
    with pytest.raises(KeyError, match="std"):
        TrajectoryStats.from_state_dict({"mean": torch.zeros(9)})
    bad = torch.zeros(4, 9)
    bad[1, 3] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        TrajectoryStats.from_canonical(bad)
    with pytest.raises(ValueError, match=r"\(\.\.\., 9\)"):
        TrajectoryStats(mean=torch.zeros(9), std=torch.ones(9)).normalize(torch.zeros(4, 6))


def test_perturb_trajectory_statistics_and_reproducibility():
    n = 20000
    R = random_rotmat((n,), generator=torch.Generator().manual_seed(1), dtype=F64)
    t = torch.zeros(n, 3, dtype=F64)
    sr, st = 0.05, 0.02
    R1, t1 = perturb_trajectory(R, t, sr, st, generator=torch.Generator().manual_seed(5))
    R2, t2 = perturb_trajectory(R, t, sr, st, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(R1, R2, atol=0, rtol=0)
    # angle^2 of 3D isotropic Gaussian axis-angle noise has mean 3 sigma^2
    ang2 = geodesic_distance(R, R1).pow(2).mean()
    assert abs(ang2.item() / (3 * sr**2) - 1) < 0.05
    assert abs(t1.std().item() / st - 1) < 0.03
    # zero noise leaves the trajectory unchanged
    R0, t0 = perturb_trajectory(R[:5], t[:5], 0.0, 0.0)
    torch.testing.assert_close(R0, R[:5], atol=1e-15, rtol=0)
    with pytest.raises(ValueError, match=">= 0"):
        perturb_trajectory(R, t, -0.1, 0.0)


def test_trajectory_shape_errors():
    R = torch.eye(3).expand(5, 3, 3)
    with pytest.raises(ValueError, match="never broadcasts"):
        trajectory_to_canonical(R, torch.zeros(6, 3))
    with pytest.raises(ValueError, match="at least one frame"):
        trajectory_to_canonical(torch.zeros(0, 3, 3), torch.zeros(0, 3))
    with pytest.raises(ValueError, match=r"R must have shape \(\.\.\., \*, 3, 3\)"):
        trajectory_to_canonical(torch.eye(3)[0], torch.zeros(3))
    with pytest.raises(ValueError, match=r"cano must have shape \(\.\.\., \*, 9\)"):
        canonical_to_trajectory(torch.zeros(5, 6))
    with pytest.raises(ValueError, match="never broadcasts"):
        canonical_to_trajectory(torch.zeros(2, 5, 9), R0=torch.eye(3))
    with pytest.raises(ValueError, match="never broadcasts"):
        canonicalize_first_frame_points(R, torch.zeros(5, 3), torch.zeros(4, 10, 3))
