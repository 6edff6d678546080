"""Per-frame network input: HMR crops, their intrinsics, CLIFF bbox info and backbone batches.

For a frame with HMR box ``(cx, cy, s)`` (official checkpoint layout, section 4, "Input crop"):

1. the square of ``200 s`` px around (cx, cy), zero-padded outside the image, is resampled to
   ``CROP_SIZE`` = 256 x 256 (:func:`crop_frame`). The map is the exact affine map of
   :func:`moro.geometry.crop_affine` (OpenCV pixel centres), sampled bilinearly; when the box is
   more than :data:`PREFILTER_FROM` times larger than the crop, the frame is first shrunk by an
   area filter (anti-aliasing, like PIL's bilinear resize of the official code) and the same
   affine map is applied in the shrunk frame's pixels, so the geometry is unchanged;
2. the backbone sees the crop minus 32 columns on each side, 256 x 192 (H x W), RGB,
   ImageNet-normalised (:func:`backbone_batch`);
3. its intrinsics: :func:`moro.geometry.crop_intrinsics` for the 256 crop, then the principal
   point shifted 32 px left for the 192-wide input (:func:`input_intrinsics`);
4. the bbox token input ``[(cx - K02) / f, (cy - K12) / f, 200 s / f]``
   (:func:`moro.geometry.cliff_bbox_info`).

Focal length: the user's (``--focal``, pixels) or :func:`moro.geometry.estimate_focal` (the image
diagonal, ~53 degrees diagonal field of view); the principal point is the image centre
``((W - 1) / 2, (H - 1) / 2)``; the camera is static.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from moro.geometry import cliff_bbox_info, crop_affine, crop_intrinsics, estimate_focal, intrinsics
from moro.inference.errors import InvalidFocalError
from moro.model.backbones import CROP_SIZE, INPUT_SIZE, crop_to_backbone_input, normalize_imagenet

__all__ = ["PREFILTER_FROM", "camera_intrinsics", "crop_frame", "crop_geometry", "input_intrinsics", "bbox_info",
           "backbone_batch"]

PREFILTER_FROM = 1.5  # box side / crop side above which the frame is area-filtered first


def camera_intrinsics(width: int, height: int, focal: float | None = None) -> np.ndarray:
    """(3, 3) float64 intrinsics: ``focal`` px (default: the image diagonal) at the image centre.

    Raises InvalidFocalError for a focal that is not a finite number > 0.
    """
    if focal is None:
        focal = estimate_focal(width, height)
    elif isinstance(focal, bool) or not isinstance(focal, numbers.Real) or not math.isfinite(focal) or focal <= 0:
        raise InvalidFocalError(f"focal length must be a finite number of pixels > 0, got {focal!r}; omit --focal to "
                                "use the default (the image diagonal)")
    return intrinsics(float(focal), float(focal), (width - 1) / 2.0, (height - 1) / 2.0, dtype=torch.float64).numpy()


def crop_frame(rgb: np.ndarray, box: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """HMR crop of one frame.

    Args:
        rgb: (H, W, 3) uint8 frame.
        box: (3,) ``[cx, cy, s]`` pixels.
        size: crop side in pixels.
    Returns:
        (size, size, 3) uint8, zero outside the image.
    """
    import cv2

    box = np.asarray(box, np.float64)
    factor = 200.0 * box[2] / size
    if factor > PREFILTER_FROM:
        f = int(math.floor(factor))  # integer shrink: pixel p of the small image covers [f p, f p + f)
        h, w = max(1, rgb.shape[0] // f), max(1, rgb.shape[1] // f)
        cut = rgb[: h * f, : w * f]  # whole f x f blocks, so the shrink factor is exactly f
        small = cv2.resize(cut, (w, h), interpolation=cv2.INTER_AREA)
        # full-image u -> small-image u' = (u + 0.5) / f - 0.5
        box_small = np.array([(box[0] + 0.5) / f - 0.5, (box[1] + 0.5) / f - 0.5, box[2] / f])
        rgb = small
        box = box_small
    M = crop_affine(torch.from_numpy(box), size).numpy()
    return cv2.warpAffine(rgb, M, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def input_intrinsics(K: np.ndarray, boxes: np.ndarray, size: int = CROP_SIZE, width: int = INPUT_SIZE[1]) -> np.ndarray:
    """Intrinsics of the backbone input (the crop minus ``(size - width) / 2`` columns per side).

    Args:
        K: (3, 3) or (t, 3, 3) full-image intrinsics.
        boxes: (t, 3) HMR boxes.
    Returns:
        (t, 3, 3) float64: projecting with them equals projecting with K and mapping into the input.
    """
    boxes = torch.as_tensor(np.asarray(boxes, np.float64))
    K = torch.as_tensor(np.asarray(K, np.float64)).expand(len(boxes), 3, 3)
    Kc = crop_intrinsics(K, boxes, size).clone()
    Kc[:, 0, 2] -= (size - width) / 2
    return Kc.numpy()


def bbox_info(K: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(t, 3) float32 CLIFF bbox info of HMR boxes (t, 3) under intrinsics K (3, 3)."""
    boxes = torch.as_tensor(np.asarray(boxes, np.float64))
    K = torch.as_tensor(np.asarray(K, np.float64)).expand(len(boxes), 3, 3)
    return cliff_bbox_info(boxes, K).float().numpy()


def backbone_batch(crops: np.ndarray, dtype: torch.dtype = torch.float32, width: int = INPUT_SIZE[1]) -> torch.Tensor:
    """(b, S, S, 3) uint8 square crops -> (b, 3, S, width) ImageNet-normalised backbone input.

    The backbone sees the crop minus ``(S - width) / 2`` columns per side (256 -> 256 x 192 for the
    ViT; a backbone with ``input_size`` (H, W) takes crops of side H and width W, see :func:`crop_geometry`).
    """
    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2)
    return normalize_imagenet(crop_to_backbone_input(x, width), dtype=dtype).contiguous()


def crop_geometry(backbone) -> tuple[int, int]:
    """``(crop side S, input width W)`` for a backbone with ``input_size = (H, W)``: square HMR crops of
    side ``S = H`` (256 for the paper's ViT, 128 for the tiny preset), of which the centre W columns are used."""
    h, w = (int(v) for v in getattr(backbone, "input_size", INPUT_SIZE))
    if w > h:
        raise ValueError(f"backbone input_size {(h, w)}: width must not exceed height (square crops are cut to width)")
    return h, w
