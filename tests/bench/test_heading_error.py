"""benchmarks/heading_error.py: the rotation and facing-yaw diagnostics on skeletons with known answers."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location(
    "heading_error", Path(__file__).resolve().parents[2] / "benchmarks" / "heading_error.py")
heading = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(heading)


def _yaw(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])


@pytest.fixture
def skeleton():
    rng = np.random.default_rng(0)
    j = rng.normal(size=(22, 3))
    j[heading.PELVIS[0]], j[heading.PELVIS[1]] = [-0.1, 0.0, 0.0], [0.1, 0.0, 0.0]
    j[0], j[heading.NECK] = [0.0, 0.0, 0.0], [0.0, -0.5, 0.0]  # camera y points down
    return j - j[list(heading.PELVIS)].mean(0)


def test_kabsch_recovers_a_known_rotation(skeleton):
    r = _yaw(50.0) @ np.array([[1.0, 0, 0], [0, np.cos(0.3), -np.sin(0.3)], [0, np.sin(0.3), np.cos(0.3)]])
    np.testing.assert_allclose(heading.kabsch(skeleton, skeleton @ r.T), r, atol=1e-10)


def test_facing_yaw_turns_with_the_body(skeleton):
    y0 = heading.facing_yaw(skeleton)
    for deg in (-120.0, 35.0, 90.0):
        turned = heading.facing_yaw(skeleton @ _yaw(deg).T)
        assert (turned - y0 - deg + 180) % 360 - 180 == pytest.approx(0.0, abs=1e-9)


def test_circular_std_wraps_around():
    assert heading.circular_std(np.array([179.0, -179.0])) == pytest.approx(1.0, abs=1e-3)
    assert heading.circular_std(np.array([10.0, 10.0, 10.0])) == pytest.approx(0.0, abs=1e-3)
