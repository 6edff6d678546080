"""moro.geometry.camera: projection, focal heuristic, boxes, CLIFF, crops."""

import math

import pytest
import torch

from moro.geometry import (
    bbox_from_points,
    bbox_to_corners,
    cliff_bbox_info,
    cliff_to_full_translation,
    corners_to_bbox,
    crop_affine,
    crop_intrinsics,
    crop_to_image,
    default_intrinsics,
    estimate_focal,
    full_translation_to_cliff,
    image_to_crop,
    intrinsics,
    project_points,
    unproject_points,
)

BATCH_SHAPES = [(), (4,), (2, 3)]
F64 = torch.float64


def _random_K(shape, gen):
    f = 800 + 400 * torch.rand(shape, generator=gen, dtype=F64)
    c = 300 + 50 * torch.rand(*shape, 2, generator=gen, dtype=F64)
    return intrinsics(f, 1.1 * f, c[..., 0], c[..., 1])


def _random_bbox(shape, gen):
    c = 200 + 400 * torch.rand(*shape, 2, generator=gen, dtype=F64)
    s = 0.5 + 2 * torch.rand(*shape, 1, generator=gen, dtype=F64)
    return torch.cat((c, s), dim=-1)


def _random_points_cam(shape, n, gen):
    xy = torch.randn(*shape, n, 2, generator=gen, dtype=F64)
    z = 2 + 3 * torch.rand(*shape, n, 1, generator=gen, dtype=F64)
    return torch.cat((xy, z), dim=-1)


def test_intrinsics_and_projection_golden():
    K = intrinsics(1000.0, 900.0, 320.0, 240.0, dtype=F64)
    assert K.tolist() == [[1000.0, 0.0, 320.0], [0.0, 900.0, 240.0], [0.0, 0.0, 1.0]]
    x = torch.tensor([[0.1, -0.2, 2.0], [0.0, 0.0, 5.0]], dtype=F64)
    uv, valid = project_points(x, K)
    torch.testing.assert_close(uv, torch.tensor([[370.0, 150.0], [320.0, 240.0]], dtype=F64))
    assert valid.tolist() == [True, True]


def test_points_behind_camera_are_flagged_and_finite():
    K = intrinsics(1000.0, 1000.0, 0.0, 0.0, dtype=F64)
    x = torch.tensor([[0.1, 0.1, 1.0], [0.1, 0.1, 0.0], [0.1, 0.1, -1.0]], dtype=F64, requires_grad=True)
    uv, valid = project_points(x, K)
    assert valid.tolist() == [True, False, False]
    uv.sum().backward()
    assert torch.isfinite(uv).all() and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("shape", BATCH_SHAPES)
def test_project_unproject_round_trip_with_skew(shape, gen):
    K = _random_K(shape, gen)
    K[..., 0, 1] = 3.0  # skew
    x = _random_points_cam(shape, 6, gen)
    uv, valid = project_points(x, K)
    assert uv.shape == (*shape, 6, 2) and valid.all()
    torch.testing.assert_close(unproject_points(uv, x[..., 2], K), x, atol=1e-12, rtol=0)


def test_project_batched_equals_one_by_one_and_gradcheck(gen):
    K = _random_K((2, 3), gen)
    x = _random_points_cam((2, 3), 5, gen)
    uv, _ = project_points(x, K)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(uv[i, j], project_points(x[i, j], K[i, j])[0], atol=1e-12, rtol=0)
    x1 = x[0, 0].clone().requires_grad_(True)
    K1 = K[0, 0].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: project_points(a, b)[0], (x1, K1))


def test_estimate_focal_and_default_intrinsics():
    assert estimate_focal(1920, 1080) == pytest.approx(math.hypot(1920, 1080))
    f = estimate_focal(torch.tensor([640, 3]), torch.tensor([480, 4]))
    torch.testing.assert_close(f, torch.tensor([800.0, 5.0]))
    K = default_intrinsics(640, 480, dtype=F64)
    assert K.tolist() == [[800.0, 0.0, 319.5], [0.0, 800.0, 239.5], [0.0, 0.0, 1.0]]
    with pytest.raises(ValueError, match="positive"):
        estimate_focal(0, 480)
    with pytest.raises(ValueError, match="strictly positive"):
        intrinsics(-1.0, 1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="never broadcasts"):
        intrinsics(torch.ones(3), torch.ones(4), 0.0, 0.0)


def test_bbox_from_points_golden_with_mask():
    uv = torch.tensor([[10.0, 20.0], [50.0, 30.0], [30.0, 100.0], [float("nan"), 5000.0]], dtype=F64)
    valid = torch.tensor([True, True, True, False])
    bbox = bbox_from_points(uv, valid=valid)
    torch.testing.assert_close(bbox, torch.tensor([30.0, 60.0, 80 * 1.2 / 200], dtype=F64))
    torch.testing.assert_close(bbox_from_points(uv[:3], scale=1.0), torch.tensor([30.0, 60.0, 0.4], dtype=F64))
    with pytest.raises(ValueError, match="no valid point"):
        bbox_from_points(uv[None], valid=torch.zeros(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="non-finite"):
        bbox_from_points(uv)


@pytest.mark.parametrize("shape", BATCH_SHAPES)
def test_bbox_from_points_batched_equals_one_by_one(shape, gen):
    uv = 500 * torch.rand(*shape, 8, 2, generator=gen, dtype=F64)
    valid = torch.rand(*shape, 8, generator=gen) > 0.3
    valid[..., 0] = True
    bbox = bbox_from_points(uv, valid=valid)
    assert bbox.shape == (*shape, 3)
    flat_uv, flat_valid, flat_bbox = uv.reshape(-1, 8, 2), valid.reshape(-1, 8), bbox.reshape(-1, 3)
    for k in range(flat_uv.shape[0]):
        torch.testing.assert_close(flat_bbox[k], bbox_from_points(flat_uv[k][flat_valid[k]]), atol=0, rtol=0)


def test_corners_round_trip_and_golden(gen):
    bbox = torch.tensor([100.0, 50.0, 0.5], dtype=F64)
    assert bbox_to_corners(bbox).tolist() == [50.0, 0.0, 150.0, 100.0]
    torch.testing.assert_close(corners_to_bbox(torch.tensor([0.0, 0.0, 40.0, 100.0])), torch.tensor([20.0, 50.0, 0.5]))
    b = _random_bbox((2, 3), gen)
    torch.testing.assert_close(corners_to_bbox(bbox_to_corners(b)), b, atol=1e-12, rtol=0)


def test_cliff_bbox_info_golden():
    K = intrinsics(1000.0, 1000.0, 320.0, 240.0, dtype=F64)
    bbox = torch.tensor([420.0, 140.0, 1.5], dtype=F64)
    torch.testing.assert_close(cliff_bbox_info(bbox, K), torch.tensor([0.1, -0.1, 0.3], dtype=F64))


@pytest.mark.parametrize("shape", BATCH_SHAPES)
def test_cliff_translation_round_trips(shape, gen):
    info = cliff_bbox_info(_random_bbox(shape, gen), _random_K(shape, gen))
    log_s = torch.randn(shape, generator=gen, dtype=F64)
    txy = 0.3 * torch.randn(*shape, 2, generator=gen, dtype=F64)
    t = cliff_to_full_translation(log_s, txy, info)
    assert t.shape == (*shape, 3) and (t[..., 2] > 0).all()
    log_s2, txy2 = full_translation_to_cliff(t, info)
    torch.testing.assert_close(log_s2, log_s, atol=1e-9, rtol=0)
    torch.testing.assert_close(txy2, txy, atol=1e-9, rtol=0)
    t_full = torch.cat((txy, 3 + torch.rand(*shape, 1, generator=gen, dtype=F64)), dim=-1)
    torch.testing.assert_close(cliff_to_full_translation(*full_translation_to_cliff(t_full, info), info), t_full)


def test_cliff_translation_reproduces_weak_perspective_crop_projection(gen):
    # Points at the root's depth (z offset 0) project under the full-image perspective camera
    # exactly where the crop's weak-perspective camera puts them: crop normalised coordinate
    # s * (X + t), crop extent [-1, 1] = the box's 200 s px.
    size = 256
    K = _random_K((3,), gen)
    bbox = _random_bbox((3,), gen)
    log_s = torch.randn(3, generator=gen, dtype=F64) * 0.2
    txy = 0.2 * torch.randn(3, 2, generator=gen, dtype=F64)
    X = torch.cat((0.5 * torch.randn(3, 5, 2, generator=gen, dtype=F64), torch.zeros(3, 5, 1, dtype=F64)), -1)
    t = cliff_to_full_translation(log_s, txy, cliff_bbox_info(bbox, K))
    K_same_f = K.clone()
    K_same_f[..., 1, 1] = K[..., 0, 0]  # CLIFF assumes fx = fy
    uv, _ = project_points(X + t[:, None], K_same_f)
    xn = torch.exp(log_s)[:, None, None] * (X[..., :2] + txy[:, None])  # (3, 5, 2) in [-1, 1] crop units
    uv_crop = xn * size / 2 + (size - 1) / 2
    torch.testing.assert_close(crop_to_image(uv_crop, bbox, size), uv, atol=1e-5, rtol=0)


def test_crop_affine_golden():
    bbox = torch.tensor([300.0, 200.0, 1.0], dtype=F64)  # 200 px square
    A = crop_affine(bbox, 256)
    a = 256 / 200
    torch.testing.assert_close(A, torch.tensor([[a, 0, 127.5 - 300 * a], [0, a, 127.5 - 200 * a]], dtype=F64))
    corners = torch.tensor([[200.0, 100.0], [300.0, 200.0], [400.0, 300.0]], dtype=F64)
    expected = torch.tensor([[-0.5, -0.5], [127.5, 127.5], [255.5, 255.5]], dtype=F64)
    torch.testing.assert_close(image_to_crop(corners, bbox, 256), expected)


@pytest.mark.parametrize("shape", BATCH_SHAPES)
def test_crop_maps_agree(shape, gen):
    size = 256
    bbox = _random_bbox(shape, gen)
    K = _random_K(shape, gen)
    K[..., 0, 1] = 2.0
    x = _random_points_cam(shape, 9, gen)
    uv, _ = project_points(x, K)
    uv_crop = image_to_crop(uv, bbox, size)
    assert uv_crop.shape == (*shape, 9, 2)
    # crop <-> image round trip
    torch.testing.assert_close(crop_to_image(uv_crop, bbox, size), uv, atol=1e-9, rtol=0)
    # the 2x3 affine applied to homogeneous pixels is the same map
    uvh = torch.cat((uv, torch.ones(*shape, 9, 1, dtype=F64)), dim=-1)
    torch.testing.assert_close(uvh @ crop_affine(bbox, size).transpose(-1, -2), uv_crop, atol=1e-9, rtol=0)
    # projecting with the crop intrinsics lands on the same crop pixels
    K_crop = crop_intrinsics(K, bbox, size)
    torch.testing.assert_close(project_points(x, K_crop)[0], uv_crop, atol=1e-9, rtol=0)
    torch.testing.assert_close(K_crop[..., 2, :], K[..., 2, :], atol=0, rtol=0)


def test_camera_input_errors():
    K = torch.eye(3)
    with pytest.raises(ValueError, match=r"x_cam must have shape \(\.\.\., \*, 3\)"):
        project_points(torch.zeros(5, 2), K)
    with pytest.raises(ValueError, match="never broadcasts"):
        project_points(torch.ones(4, 5, 3), K)
    with pytest.raises(ValueError, match="strictly positive"):
        crop_affine(torch.tensor([1.0, 1.0, 0.0]), 256)
    with pytest.raises(ValueError, match="positive int"):
        image_to_crop(torch.zeros(3, 2), torch.tensor([1.0, 1.0, 1.0]), 256.0)
    with pytest.raises(ValueError, match="never broadcasts"):
        image_to_crop(torch.zeros(2, 3, 2), torch.tensor([1.0, 1.0, 1.0]), 256)
    with pytest.raises(ValueError, match="non-finite"):
        crop_to_image(torch.zeros(3, 2), torch.tensor([float("nan"), 1.0, 1.0]), 256)
    with pytest.raises(ValueError, match=r"log_s must have shape \(\.\.\.\) = \(3,\)"):
        cliff_to_full_translation(torch.zeros(3, 1), torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="never broadcasts"):
        cliff_to_full_translation(torch.zeros(2), torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="never broadcasts"):
        cliff_bbox_info(torch.zeros(4, 3), K)
