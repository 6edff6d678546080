"""Bad input to the metrics raises ValueError naming the fix; numpy input equals torch input."""

from __future__ import annotations

import math

import pytest
import torch

from moro.metrics import gmpjpe, jitter, mpjpe, pa_mpjpe, rte, wa_mpjpe


def test_metric_numpy_and_float32_inputs_match_float64_torch(make_motion):
    gt = make_motion(8, seed=1)
    pred = make_motion(8, seed=2)
    expected = pa_mpjpe(pred, gt)
    assert expected.dtype == torch.float64
    torch.testing.assert_close(pa_mpjpe(pred.numpy(), gt.numpy()), expected)
    torch.testing.assert_close(pa_mpjpe(pred.float(), gt.float()), expected, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("metric", [mpjpe, pa_mpjpe, gmpjpe, wa_mpjpe, rte])
def test_metric_frame_count_mismatch_is_an_error_not_a_truncation(metric, make_motion):
    gt = make_motion(10)
    with pytest.raises(ValueError, match="9 frames but gt has 10"):
        metric(gt[:9], gt)


def test_metric_joint_count_and_shape_errors(make_motion):
    gt = make_motion(10)
    with pytest.raises(ValueError, match="same joint set"):
        mpjpe(gt[:, :21], gt)
    with pytest.raises(ValueError, match=r"one sequence at a time"):
        gmpjpe(gt[None], gt[None])
    with pytest.raises(ValueError, match=r"\(F, J, 3\)"):
        gmpjpe(gt[..., :2], gt[..., :2])


def test_metric_nan_input_names_the_frame(make_motion):
    gt = make_motion(10)
    pred = gt.clone()
    pred[4, 3, 1] = math.nan
    with pytest.raises(ValueError, match="pred contains NaN or inf in 1 frame.*frame 4"):
        gmpjpe(pred, gt)
    with pytest.raises(ValueError, match="frame 4"):
        jitter(pred)


def test_metric_bad_fps_and_hips(make_motion):
    gt = make_motion(10)
    with pytest.raises(ValueError, match="fps"):
        jitter(gt, fps=0)
    with pytest.raises(ValueError, match="hip_joints"):
        mpjpe(gt[:, :2], gt[:, :2])  # only 2 joints: hip 2 does not exist
