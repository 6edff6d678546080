"""benchmarks/visibility_probe.py: the ridge probe and the ROC AUC."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location(
    "visibility_probe", Path(__file__).resolve().parents[2] / "benchmarks" / "visibility_probe.py")
probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probe)


def test_roc_auc_matches_the_pairwise_definition_with_ties():
    """AUC = P(score of a positive > score of a negative) + 0.5 P(equal), counted over all pairs."""
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, 40).astype(float)  # many ties
    y = rng.random(40) < 0.4
    pos, neg = s[y], s[~y]
    want = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg))
    assert probe.roc_auc(s, y) == pytest.approx(want, abs=1e-12)
    assert probe.roc_auc(np.arange(6.0), np.arange(6) >= 3) == 1.0
    with pytest.raises(ValueError):
        probe.roc_auc(np.arange(3.0), np.zeros(3, bool))


def test_ridge_recovers_a_linear_map_and_shrinks_with_weight():
    """Without regularisation the fit reproduces y = x w + b exactly (any feature scale: it standardises);
    a huge weight leaves only the unpenalised bias, i.e. the mean of y."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 5)) * np.array([1.0, 10.0, 0.1, 3.0, 100.0])
    y = x @ np.array([0.5, -0.02, 3.0, 0.1, 0.001]) + 0.7
    fit = probe.ridge(x, y, 0.0)
    np.testing.assert_allclose(probe.ridge_predict(fit, x), y, atol=1e-9)
    flat = probe.ridge_predict(probe.ridge(x, y, 1e12), x)
    np.testing.assert_allclose(flat, y.mean(), atol=1e-6)


def test_cross_fitted_picks_each_folds_tau_on_the_other_fold():
    """Four sequences (folds: 0, 2 | 1, 3). tau a is best on fold 1 and b on fold 0, so fold 0 is scored
    with a and fold 1 with b; the mean is over every error of the scored arrays (frame weighted)."""
    errs = {
        "a": [np.array([5.0, 5.0]), np.array([1.0]), np.array([7.0]), np.array([1.0])],
        "b": [np.array([2.0, 2.0]), np.array([4.0]), np.array([2.0]), np.array([6.0])],
    }
    want = (5.0 + 5.0 + 7.0 + 4.0 + 6.0) / 5
    assert probe.cross_fitted(errs, ("a", "b")) == pytest.approx(want)
