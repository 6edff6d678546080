"""Pinhole cameras, person boxes, CLIFF bbox information and HMR-style square crops.

Frames and units (``docs/conventions.md``): camera frame = OpenCV (x right, y down, z forward),
points in metres, image coordinates in pixels, ``u = fx x / z + cx``. K's last row is (0, 0, 1).

**Pixel-centre convention**: OpenCV's. Pixel (i, j) (column i, row j) has its *centre* at
(u, v) = (i, j); an image of width W spans u in [-0.5, W - 0.5]. The exact image centre is
((W - 1) / 2, (H - 1) / 2). A crop of ``size`` pixels follows the same rule, so its centre is
((size - 1) / 2, (size - 1) / 2). With this convention the 2x3 matrix of :func:`crop_affine` can
be given directly to ``cv2.warpAffine(img, M, (size, size))``, and :func:`image_to_crop`,
:func:`crop_to_image` and :func:`crop_intrinsics` agree exactly (same affine map).

**Boxes** are ``(cx, cy, s)`` in pixels, HMR convention: a square of side ``200 s`` pixels
centred on (cx, cy) (its extent is ``[cx - 100 s, cx + 100 s]``). MoRo builds them with
``s = 1.2 max(w, h) / 200`` (official checkpoint layout, section 4, "Input crop").

**CLIFF** (official checkpoint layout, section 4, "Bbox token input" and "CLIFF step"):
bbox info ``[(cx - K02) / f, (cy - K12) / f, 200 s / f]`` with ``f = K00``; a weak-perspective
camera ``(log s, tx, ty)`` on the crop becomes the full-image translation
``t = (tx + 2 bx / (b s + 1e-9), ty + 2 by / (b s + 1e-9), 2 / (b s + 1e-9))`` with
``(bx, by, b)`` the bbox info, i.e. ``t_z = 2 f / (s * 200 s_box)`` in metres.

Functions on the data side (boxes, crops, intrinsics) check values (finite, positive sizes);
the projection and CLIFF maps only check shapes because they run inside the network.
"""

from __future__ import annotations

import math

import torch

from ._checks import check_finite, check_positive, check_same_batch, check_same_dtype, check_shape

__all__ = [
    "intrinsics",
    "default_intrinsics",
    "estimate_focal",
    "project_points",
    "unproject_points",
    "bbox_from_points",
    "bbox_to_corners",
    "corners_to_bbox",
    "cliff_bbox_info",
    "cliff_to_full_translation",
    "full_translation_to_cliff",
    "crop_affine",
    "image_to_crop",
    "crop_to_image",
    "crop_intrinsics",
]

# Offset in CLIFF's translation formula, kept bit-for-bit as in the official code.
_CLIFF_EPS = 1e-9


def intrinsics(fx, fy, cx, cy, dtype: torch.dtype | None = None, device=None) -> torch.Tensor:
    """Pinhole intrinsic matrix ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``.

    Args:
        fx, fy: focal lengths in pixels, Python numbers or (...) tensors (> 0).
        cx, cy: principal point in pixels (OpenCV pixel-centre convention), numbers or (...).
            All tensor arguments must share one shape; Python numbers fill that shape.
        dtype, device: used when no argument is a tensor (default dtype: torch's default).
    Returns:
        (..., 3, 3) intrinsics.
    """
    args = {"fx": fx, "fy": fy, "cx": cx, "cy": cy}
    tensors = {k: v for k, v in args.items() if isinstance(v, torch.Tensor)}
    if tensors:
        check_same_batch(**{k: v.shape for k, v in tensors.items()})
        check_same_dtype(**tensors)
        ref = next(iter(tensors.values()))
        if not ref.is_floating_point():
            raise TypeError(f"intrinsics need floating-point tensors, got {ref.dtype}")
        vals = {k: v if isinstance(v, torch.Tensor) else torch.full_like(ref, float(v)) for k, v in args.items()}
    else:
        dtype = dtype or torch.get_default_dtype()
        vals = {k: torch.tensor(float(v), dtype=dtype, device=device) for k, v in args.items()}
    for k, v in vals.items():
        (check_positive if k in ("fx", "fy") else check_finite)(k, v)
    zero, one = torch.zeros_like(vals["fx"]), torch.ones_like(vals["fx"])
    rows = ((vals["fx"], zero, vals["cx"]), (zero, vals["fy"], vals["cy"]), (zero, zero, one))
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def estimate_focal(width, height):
    """Default focal length when the camera is unknown: the image diagonal ``sqrt(w^2 + h^2)`` px.

    The same heuristic as WHAM and GVHMR (about 53 degrees diagonal field of view).

    Args:
        width, height: image size in pixels, Python numbers or (...) tensors of one shape.
    Returns:
        focal length in pixels (a float for numbers, a (...) tensor for tensors).
    """
    if isinstance(width, torch.Tensor) or isinstance(height, torch.Tensor):
        w, h = torch.as_tensor(width), torch.as_tensor(height)
        check_same_batch(width=w.shape, height=h.shape)
        w, h = w.to(torch.promote_types(w.dtype, torch.get_default_dtype())), h.to(w.dtype)
        check_positive("width", w)
        check_positive("height", h)
        return torch.sqrt(w * w + h * h)
    if not (width > 0 and height > 0 and math.isfinite(width) and math.isfinite(height)):
        raise ValueError(f"image size must be positive and finite, got width={width}, height={height}")
    return math.sqrt(float(width) ** 2 + float(height) ** 2)


def default_intrinsics(width: int, height: int, dtype: torch.dtype | None = None, device=None) -> torch.Tensor:
    """Intrinsics for an unknown camera: ``f = estimate_focal(w, h)``, principal point at the exact
    image centre ``((w - 1) / 2, (h - 1) / 2)`` (OpenCV pixel centres). Returns (3, 3)."""
    f = estimate_focal(width, height)
    return intrinsics(f, f, (width - 1) / 2.0, (height - 1) / 2.0, dtype=dtype, device=device)


def project_points(
    x_cam: torch.Tensor, K: torch.Tensor, min_depth: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pinhole projection of camera-frame points.

    Points with ``z <= min_depth`` (behind or on the camera plane) cannot be projected: they are
    flagged ``valid = False`` and their ``uv`` is computed with z replaced by 1, which keeps values
    and gradients finite but meaningless. Mask them out of any loss.

    Args:
        x_cam: (..., n, 3) points in the OpenCV camera frame, metres.
        K: (..., 3, 3) intrinsics (pixels), same ``...``; last row (0, 0, 1).
        min_depth: smallest depth (metres) counted as valid.
    Returns:
        ``(uv (..., n, 2) pixels, valid (..., n) bool)``.
    """
    bx = check_shape("x_cam", x_cam, (None, 3))
    bK = check_shape("K", K, (3, 3))
    check_same_batch(x_cam=bx, K=bK)
    check_same_dtype(x_cam=x_cam, K=K)
    z = x_cam[..., 2]
    valid = z > min_depth
    z_safe = torch.where(valid, z, torch.ones_like(z))
    xy = x_cam[..., :2] / z_safe.unsqueeze(-1)  # (..., n, 2) normalised image plane
    uv = xy @ K[..., :2, :2].transpose(-1, -2) + K[..., :2, 2].unsqueeze(-2)
    return uv, valid


def unproject_points(uv: torch.Tensor, depth: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Back-project pixels at given depths: ``x = depth * K^-1 [u, v, 1]``.

    Args:
        uv: (..., n, 2) pixel coordinates.
        depth: (..., n) depths z along the optical axis, metres.
        K: (..., 3, 3) upper-triangular intrinsics (skew allowed), same ``...``.
    Returns:
        (..., n, 3) camera-frame points with ``x[..., 2] == depth``.
    """
    bu = check_shape("uv", uv, (None, 2))  # (...)
    check_shape("depth", depth, (None,))
    bK = check_shape("K", K, (3, 3))
    check_same_batch(uv=uv.shape[:-1], depth=depth.shape)
    check_same_batch(uv=bu, K=bK)
    check_same_dtype(uv=uv, depth=depth, K=K)
    fx, fy, skew = K[..., 0, 0, None], K[..., 1, 1, None], K[..., 0, 1, None]
    cx, cy = K[..., 0, 2, None], K[..., 1, 2, None]
    y_n = (uv[..., 1] - cy) / fy
    x_n = (uv[..., 0] - cx - skew * y_n) / fx
    return torch.stack((x_n * depth, y_n * depth, depth), dim=-1)


def bbox_from_points(uv: torch.Tensor, scale: float = 1.2, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Square HMR box around the valid 2D points.

    Centre = middle of the points' bounding rectangle; ``s = max(w, h) * scale / 200``.

    Args:
        uv: (..., n, 2) pixel coordinates (entries where ``valid`` is False may be NaN).
        scale: box enlargement factor (MoRo uses 1.2).
        valid: optional (..., n) bool mask; default all points.
    Returns:
        (..., 3) boxes ``[cx, cy, s]`` (pixels; side 200 s px).
    Raises:
        ValueError: if a box has no valid point or a valid point is not finite.
    """
    check_shape("uv", uv, (None, 2))
    if valid is None:
        valid = torch.ones(uv.shape[:-1], dtype=torch.bool, device=uv.device)
    if not isinstance(valid, torch.Tensor) or valid.dtype != torch.bool:
        raise TypeError("valid must be a bool tensor of shape (..., n)")
    check_same_batch(uv=uv.shape[:-1], valid=valid.shape)
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    check_finite("uv (valid points)", uv[valid])
    n_valid = valid.sum(dim=-1)
    if bool((n_valid == 0).any()):
        raise ValueError(
            f"{int((n_valid == 0).sum())} of {n_valid.numel()} boxes have no valid point; "
            f"drop or interpolate those frames before building boxes"
        )
    m = valid.unsqueeze(-1)
    inf = torch.tensor(float("inf"), dtype=uv.dtype, device=uv.device)
    lo = torch.where(m, uv, inf).amin(dim=-2)  # (..., 2)
    hi = torch.where(m, uv, -inf).amax(dim=-2)
    size = (hi - lo).amax(dim=-1)
    centre = 0.5 * (lo + hi)
    return torch.cat((centre, (size * scale / 200.0).unsqueeze(-1)), dim=-1)


def bbox_to_corners(bbox: torch.Tensor) -> torch.Tensor:
    """``[cx, cy, s]`` (..., 3) -> corners ``[x0, y0, x1, y1]`` (..., 4) of the 200 s square, pixels."""
    check_shape("bbox", bbox, (3,))
    half = 100.0 * bbox[..., 2:]
    return torch.cat((bbox[..., :2] - half, bbox[..., :2] + half), dim=-1)


def corners_to_bbox(corners: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Corners ``[x0, y0, x1, y1]`` (..., 4) -> square box ``[cx, cy, max(w, h) * scale / 200]`` (..., 3).

    Inverts :func:`bbox_to_corners` (with ``scale=1``); non-square rectangles grow to a square.
    """
    check_shape("corners", corners, (4,))
    lo, hi = corners[..., :2], corners[..., 2:]
    size = (hi - lo).amax(dim=-1, keepdim=True)
    return torch.cat((0.5 * (lo + hi), size * scale / 200.0), dim=-1)


def cliff_bbox_info(bbox: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """CLIFF bbox information fed to the image encoder's bbox token.

    Args:
        bbox: (..., 3) ``[cx, cy, s]`` in full-image pixels.
        K: (..., 3, 3) full-image intrinsics; ``f = K[0, 0]`` (fy is not used, as officially).
    Returns:
        (..., 3) ``[(cx - K02) / f, (cy - K12) / f, 200 s / f]`` (unitless).
    """
    bb = check_shape("bbox", bbox, (3,))
    bK = check_shape("K", K, (3, 3))
    check_same_batch(bbox=bb, K=bK)
    check_same_dtype(bbox=bbox, K=K)
    f = K[..., 0, 0, None]
    return torch.cat((bbox[..., :2] - K[..., :2, 2], 200.0 * bbox[..., 2:]), dim=-1) / f


def cliff_to_full_translation(log_s: torch.Tensor, txy: torch.Tensor, bbox_info: torch.Tensor) -> torch.Tensor:
    """Weak-perspective crop camera -> full-image camera translation (CLIFF step).

    Args:
        log_s: (...) log of the weak-perspective scale s.
        txy: (..., 2) weak-perspective translation (metres, in the crop's normalised frame).
        bbox_info: (..., 3) :func:`cliff_bbox_info` output ``(bx, by, b)``.
    Returns:
        (..., 3) translation in the full-image camera frame, metres:
        ``(tx + 2 bx / (b s + 1e-9), ty + 2 by / (b s + 1e-9), 2 / (b s + 1e-9))``.
    """
    bl = check_shape("log_s", log_s, ())
    bt = check_shape("txy", txy, (2,))
    if tuple(bl) == (*bt, 1):
        raise ValueError(f"log_s must have shape (...) = {tuple(bt)}, got {tuple(bl)}; drop the last axis")
    bb = check_shape("bbox_info", bbox_info, (3,))
    check_same_batch(log_s=bl, txy=bt, bbox_info=bb)
    check_same_dtype(log_s=log_s, txy=txy, bbox_info=bbox_info)
    denom = (bbox_info[..., 2] * torch.exp(log_s) + _CLIFF_EPS).unsqueeze(-1)  # (..., 1)
    return torch.cat((txy + 2.0 * bbox_info[..., :2] / denom, 2.0 / denom), dim=-1)


def full_translation_to_cliff(t_cam: torch.Tensor, bbox_info: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact inverse of :func:`cliff_to_full_translation`.

    Args:
        t_cam: (..., 3) full-image camera translation, metres, with ``t_z`` in (0, 2e9).
        bbox_info: (..., 3) :func:`cliff_bbox_info` output.
    Returns:
        ``(log_s (...), txy (..., 2))`` with ``s = (2 / t_z - 1e-9) / b`` and ``txy = t_xy - (bx, by) t_z``.
    """
    bt = check_shape("t_cam", t_cam, (3,))
    bb = check_shape("bbox_info", bbox_info, (3,))
    check_same_batch(t_cam=bt, bbox_info=bb)
    check_same_dtype(t_cam=t_cam, bbox_info=bbox_info)
    tz = t_cam[..., 2]
    log_s = torch.log((2.0 / tz - _CLIFF_EPS) / bbox_info[..., 2])
    return log_s, t_cam[..., :2] - bbox_info[..., :2] * tz.unsqueeze(-1)


def _crop_scale_offset(bbox: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., 1) scale a = size / (200 s) and (..., 2) offset o so that crop = a * image + o."""
    check_shape("bbox", bbox, (3,))
    if not (isinstance(size, int) and size > 0):
        raise ValueError(f"crop size must be a positive int (pixels), got {size!r}")
    check_finite("bbox", bbox)
    check_positive("bbox scale s", bbox[..., 2])
    a = size / (200.0 * bbox[..., 2:])
    return a, 0.5 * (size - 1) - a * bbox[..., :2]


def crop_affine(bbox: torch.Tensor, size: int) -> torch.Tensor:
    """Image -> crop pixel map of the square crop (side 200 s px) resized to ``size`` px.

    The box extent ``[cx - 100 s, cx + 100 s]`` maps onto the crop extent ``[-0.5, size - 0.5]``
    (OpenCV pixel centres), so the box centre lands on ``(size - 1) / 2``.

    Args:
        bbox: (..., 3) ``[cx, cy, s]``, pixels, s > 0.
        size: crop side in pixels (256 for MoRo; the ViT then drops 32 columns per side).
    Returns:
        (..., 2, 3) affine matrices ``[[a, 0, ox], [0, a, oy]]``, usable with ``cv2.warpAffine``.
    """
    a, o = _crop_scale_offset(bbox, size)
    zero = torch.zeros_like(a)
    return torch.stack((torch.cat((a, zero, o[..., :1]), -1), torch.cat((zero, a, o[..., 1:]), -1)), dim=-2)


def image_to_crop(uv: torch.Tensor, bbox: torch.Tensor, size: int) -> torch.Tensor:
    """Full-image pixels (..., n, 2) -> crop pixels (..., n, 2) for boxes (..., 3)."""
    bu = check_shape("uv", uv, (None, 2))
    check_same_batch(uv=bu, bbox=check_shape("bbox", bbox, (3,)))
    check_same_dtype(uv=uv, bbox=bbox)
    a, o = _crop_scale_offset(bbox, size)
    return uv * a.unsqueeze(-2) + o.unsqueeze(-2)


def crop_to_image(uv_crop: torch.Tensor, bbox: torch.Tensor, size: int) -> torch.Tensor:
    """Crop pixels (..., n, 2) -> full-image pixels (..., n, 2); inverse of :func:`image_to_crop`."""
    bu = check_shape("uv_crop", uv_crop, (None, 2))
    check_same_batch(uv_crop=bu, bbox=check_shape("bbox", bbox, (3,)))
    check_same_dtype(uv_crop=uv_crop, bbox=bbox)
    a, o = _crop_scale_offset(bbox, size)
    return (uv_crop - o.unsqueeze(-2)) / a.unsqueeze(-2)


def crop_intrinsics(K: torch.Tensor, bbox: torch.Tensor, size: int) -> torch.Tensor:
    """Intrinsics of the crop camera: projecting with them equals ``image_to_crop(project(K))``.

    ``K_crop = A K`` with ``A = [[a, 0, ox], [0, a, oy], [0, 0, 1]]`` from :func:`crop_affine`.

    Args:
        K: (..., 3, 3) full-image intrinsics.
        bbox: (..., 3) ``[cx, cy, s]``, same ``...``.
        size: crop side in pixels.
    Returns:
        (..., 3, 3) crop intrinsics (focal scaled by ``size / (200 s)``).
    """
    bK = check_shape("K", K, (3, 3))
    check_same_batch(K=bK, bbox=check_shape("bbox", bbox, (3,)))
    check_same_dtype(K=K, bbox=bbox)
    A = crop_affine(bbox, size)  # (..., 2, 3)
    top = A @ K  # rows 0-1 of [A; 0 0 1] @ K
    return torch.cat((top, K[..., 2:, :]), dim=-2)
