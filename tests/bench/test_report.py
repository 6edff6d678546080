"""moro.bench.report: the occlusion-event curves and occlusion bins on per-frame errors with known answers."""

import numpy as np

from moro.bench.report import occlusion_bins, occlusion_events


def _seq(occ: np.ndarray, err: np.ndarray) -> dict:
    return {"occ_ratio": occ.tolist(), "moro": err.tolist()}


def test_occlusion_events_align_gradual_onsets():
    t = 200
    occ = np.zeros(t)
    occ[50:58] = np.linspace(0.05, 0.35, 8)  # an occluder moving in over 8 frames, through 0.4 at frame 58
    occ[58:90] = 0.8
    occ[150:] = 0.9  # rises through 0.4 at frame 150 after calm frames 130..139; 150 + 40 <= 200 frames
    err = np.arange(t, dtype=float)  # error = frame index: the curve tells which frames were averaged
    ev = occlusion_events({"a": _seq(occ, err)}, ["moro"], before=20, after=40, low=0.1, high=0.4, calm=10)
    assert ev["events"] == 2
    assert ev["offsets"][0] == -20 and len(ev["offsets"]) == 60
    np.testing.assert_allclose(ev["moro"], (np.arange(38, 98) + np.arange(130, 190)) / 2)  # onsets 58 and 150


def test_no_event_without_a_calm_stretch_or_room_after():
    occ = np.full(120, 0.3)
    occ[60:] = 0.9  # rises through 0.4, but 0.3 before: never calm
    assert occlusion_events({"a": _seq(occ, np.zeros(120))}, ["moro"])["events"] == 0
    occ = np.zeros(120)
    occ[100:] = 0.9  # calm before, but only 20 frames after the onset
    assert occlusion_events({"a": _seq(occ, np.zeros(120))}, ["moro"])["events"] == 0


def test_occlusion_bins_average_each_bin():
    occ, err = np.array([0.0, 0.05, 0.5, 0.95]), np.array([10.0, 20.0, 30.0, 40.0])
    b = occlusion_bins({"a": _seq(occ, err), "b": _seq(np.array([0.6]), np.array([50.0]))}, ["moro"])
    assert b["frames"] == [1, 1, 0, 2, 1]  # bins [0, .05) [.05, .25) [.25, .5) [.5, .75) [.75, 1]
    np.testing.assert_allclose(b["moro"], [10.0, 20.0, np.nan, 40.0, 40.0])
