"""Fixtures for the metric tests: synthetic 22-joint motions and random rigid transforms.

Random rotations come from scipy (an implementation independent of moro's geometry).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation


def _rotations(n: int | None, seed: int) -> np.ndarray:
    return Rotation.random(n, random_state=seed).as_matrix()


def _motion(frames: int, seed: int = 0, joints: int = 22) -> torch.Tensor:
    """(F, J, 3) float64: a rigid random skeleton turning slowly and walking a random path (metres)."""
    rng = np.random.default_rng(seed)
    skeleton = rng.normal(scale=0.3, size=(joints, 3))
    rotvec = np.cumsum(rng.normal(scale=0.05, size=(frames, 3)), axis=0)
    R = Rotation.from_rotvec(rotvec).as_matrix()  # (F, 3, 3)
    root = np.cumsum(rng.normal(scale=0.02, size=(frames, 3)), axis=0) + np.array([0.0, 0.9, 3.0])
    wobble = rng.normal(scale=0.01, size=(frames, joints, 3))  # non-rigid part
    return torch.from_numpy(np.einsum("fij,nj->fni", R, skeleton) + root[:, None] + wobble)


@pytest.fixture
def make_motion():
    """Factory: ``make_motion(frames, seed=0, joints=22) -> (F, J, 3)`` float64 tensor."""
    return _motion


@pytest.fixture
def random_rotations():
    """Factory: ``random_rotations(n, seed) -> (n, 3, 3)`` (or (3, 3) for n=None) numpy rotations."""
    return _rotations
