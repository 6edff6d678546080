"""Crops and their intrinsics agree: a 3D point's blob lands where the crop camera projects it."""

import math

import numpy as np
import pytest

from moro.inference.crops import backbone_batch, bbox_info, camera_intrinsics, crop_frame, input_intrinsics
from moro.inference.errors import InvalidFocalError


def _blob(h, w, u, v, sigma):
    y, x = np.mgrid[0:h, 0:w]
    g = np.exp(-((x - u) ** 2 + (y - v) ** 2) / (2 * sigma**2))
    return (255 * g / g.max()).astype(np.float32)


def _centroid(img):
    y, x = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
    m = img.astype(np.float64)
    m = np.where(m > 0.2 * m.max(), m, 0)
    return np.array([(x * m).sum(), (y * m).sum()]) / m.sum()


@pytest.mark.parametrize("side,shift,x", [(128, (0, 0), 0.21), (300, (20, -15), 0.21), (700, (0, 0), 0.21),
                                          (400, (-100, 0), -0.45)])
def test_crop_intrinsics_match_the_pixels(side, shift, x):
    W, H = 640, 480
    K = camera_intrinsics(W, H, 500.0)
    X = np.array([x, -0.13, 3.0])  # camera frame, metres
    u, v = (K @ X)[:2] / X[2]
    box = np.array([u + shift[0], v + shift[1], side / 200.0])
    sigma = max(2.0, side / 256 * 2.5)
    img = np.repeat(_blob(H, W, u, v, sigma)[..., None], 3, -1).astype(np.uint8)
    crop = crop_frame(img, box)
    assert crop.shape == (256, 256, 3) and crop.dtype == np.uint8
    Kin = input_intrinsics(K, box[None])[0]
    expect = (Kin @ X)[:2] / X[2]
    got = _centroid(crop[:, 32:224, 0])  # the backbone input: 32 columns cut per side
    assert np.abs(got - expect).max() < 0.35, (got, expect)
    if box[0] - 100 * box[2] < 0:  # the box reaches past the left image edge: zero padding there
        left = int(math.floor((0 - (box[0] - 100 * box[2])) * 256 / side)) - 1
        assert left > 0 and crop[:, :left].max() == 0


def test_backbone_batch_and_bbox_info():
    crops = np.full((2, 256, 256, 3), 255, np.uint8)
    x = backbone_batch(crops)
    assert x.shape == (2, 3, 256, 192)
    assert np.allclose(x[0, :, 0, 0].numpy(), (1 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]),
                       atol=1e-6)
    K = camera_intrinsics(640, 480, 800.0)
    boxes = np.array([[400.0, 200.0, 1.5], [319.5, 239.5, 2.0]])
    info = bbox_info(K, boxes)
    assert np.allclose(info, [[(400 - 319.5) / 800, (200 - 239.5) / 800, 300 / 800], [0, 0, 400 / 800]], atol=1e-7)


def test_focal():
    K = camera_intrinsics(640, 480)
    assert K[0, 0] == K[1, 1] == pytest.approx(800.0) and (K[0, 2], K[1, 2]) == (319.5, 239.5)
    for bad in (0, -5.0, float("nan"), float("inf"), True):
        with pytest.raises(InvalidFocalError, match="focal"):
            camera_intrinsics(640, 480, bad)
