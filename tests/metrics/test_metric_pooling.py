"""moro.metrics.pooling: frame-weighted, NaN-aware pooling by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from moro.metrics import MetricPool, pool_frames


def test_metric_pooling_is_frame_weighted_not_sequence_weighted():
    pooled = pool_frames([torch.tensor([1.0, 2.0, 3.0]), np.array([10.0])])
    assert pooled.mean == pytest.approx(4.0)  # (1 + 2 + 3 + 10) / 4, not (2 + 10) / 2
    assert (pooled.count, pooled.n_undefined) == (4, 0)


def test_metric_pooling_skips_nan_entries():
    pooled = pool_frames([torch.tensor([1.0, math.nan, 3.0]), torch.tensor([math.nan, math.nan])])
    assert pooled.mean == pytest.approx(2.0)
    assert (pooled.count, pooled.n_undefined) == (2, 3)


def test_metric_pooling_all_nan_warns():
    with pytest.warns(RuntimeWarning, match="no defined entry"):
        pooled = pool_frames(torch.full((4,), math.nan))
    assert math.isnan(pooled.mean) and pooled.count == 0


def test_metric_pool_accumulates_several_metrics():
    pool = MetricPool()
    pool.add("mpjpe", torch.tensor([10.0, 20.0]))
    pool.add("rte", torch.tensor([math.nan, math.nan]))
    pool.add("mpjpe", torch.tensor([30.0]))
    pool.add("rte", torch.tensor([1.0, 2.0, 6.0]))
    assert pool.names() == ["mpjpe", "rte"]
    assert pool.means() == pytest.approx({"mpjpe": 20.0, "rte": 3.0})
    assert pool.result("rte").n_undefined == 2
    with pytest.raises(KeyError, match="pve"):
        pool.result("pve")


def test_metric_pooling_rejects_bad_values():
    with pytest.raises(ValueError, match="inf"):
        pool_frames(torch.tensor([1.0, math.inf]))
    with pytest.raises(ValueError, match="scalar"):
        pool_frames(torch.tensor(3.0))
    with pytest.raises(ValueError, match="layout"):
        pool_frames([torch.zeros(3), torch.zeros(3, 22)])
    with pytest.raises(ValueError, match="empty"):
        pool_frames([])
