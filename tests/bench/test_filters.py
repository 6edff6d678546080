"""Smoothing baselines: golden values, shapes, the grid search."""

import math

import numpy as np
import pytest

from moro.bench.filters import gaussian_smooth, grid_search, one_euro


def test_gaussian_of_an_impulse_is_the_normalised_kernel():
    x = np.zeros(9)
    x[4] = 1.0
    y = gaussian_smooth(x, 1.0)
    s = 1 + 2 * sum(math.exp(-i * i / 2) for i in (1, 2, 3))  # radius ceil(3 sigma) = 3
    np.testing.assert_allclose(y[4], 1 / s)
    np.testing.assert_allclose(y[[3, 5]], math.exp(-0.5) / s)
    np.testing.assert_allclose(y[[0, 8]], 0.0)  # beyond the radius
    assert y.sum() == pytest.approx(1.0)


def test_gaussian_edges_repeat_the_end_frames_and_keep_constants():
    x = np.zeros(5)
    x[0] = 1.0
    s = 2.50594987  # sum of exp(-i^2/2), |i| <= 3
    # frame 0 sees x[0] at offsets -3..0 (padding repeats it): 1 + e^-1/2 + e^-2 + e^-4.5 of the kernel
    np.testing.assert_allclose(gaussian_smooth(x, 1.0)[0], (1 + math.exp(-0.5) + math.exp(-2) + math.exp(-4.5)) / s, rtol=1e-6)
    c = np.full((7, 22, 3), 0.7)
    np.testing.assert_allclose(gaussian_smooth(c, 3.0), c)
    np.testing.assert_array_equal(gaussian_smooth(c, 0.0), c)


def test_one_euro_golden_values():
    a = 1 / (1 + 30 / (2 * math.pi))  # alpha at 1 Hz, 30 fps
    y = one_euro(np.array([0.0, 1.0, 1.0]), 30.0, min_cutoff=1.0, beta=0.0)
    np.testing.assert_allclose(y, [0.0, a, a + (1 - a) * a])
    fc = 1 + a * 30  # beta 1: the cutoff rises with the filtered speed a * (1 - 0) / T
    y1 = one_euro(np.array([0.0, 1.0]), 30.0, min_cutoff=1.0, beta=1.0)[1]
    np.testing.assert_allclose(y1, 1 / (1 + 30 / (2 * math.pi * fc)))


def test_one_euro_is_causal_and_per_coordinate():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 4, 3))
    y = one_euro(x, 30.0, 1.0, 0.5)
    np.testing.assert_allclose(one_euro(x[:10], 30.0, 1.0, 0.5), y[:10])  # the future does not matter
    np.testing.assert_allclose(one_euro(x[:, 1:2, 2:], 30.0, 1.0, 0.5), y[:, 1:2, 2:])
    with pytest.raises(ValueError):
        one_euro(x, 30.0, min_cutoff=0.0)


def test_grid_search_finds_the_minimum():
    best, err, tried = grid_search(lambda a, b: (a - 2) ** 2 + (b + 1) ** 2, {"a": (0, 1, 2, 3), "b": (-1, 0)}, lambda v: v)
    assert best == {"a": 2, "b": -1} and err == 0 and len(tried) == 8
