"""Input boxes of the image-based protocols: GT boxes (supplement D), RICH truncation, visibility.

Boxes are HMR squares ``(cx, cy, s)`` in pixels with side ``200 s`` (``moro.geometry.camera``);
a crop for a network is then ``moro.geometry.camera.crop_affine(box, size)``.

- :func:`gt_boxes` - supplement D's GT-box protocol: the box enclosing all projected
  ground-truth joints, enlarged by 1.2. An option of every image-based protocol.
- :func:`truncate_boxes` - the RICH truncation variant of ``shared/metrics.md``: frames whose
  index in the sequence satisfies ``idx % 200 >= 100`` get a box moved up by ``50 s`` px and
  halved in scale, i.e. the upper half of the original box (upper body only).
- :func:`joints_in_boxes` - per-(frame, joint) visibility = projected joint inside the box;
  moro's definition of the visible / occluded split for the truncation variant (RICH has no mask).
"""

from __future__ import annotations

import numpy as np
import torch

from moro.geometry.camera import bbox_from_points, project_points

__all__ = ["gt_boxes", "truncate_boxes", "joints_in_boxes", "TRUNC_PERIOD", "TRUNC_START"]

TRUNC_PERIOD = 200  # frames per truncation cycle
TRUNC_START = 100  # frames idx % period >= this are truncated


def _project(joints_cam: np.ndarray, K: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(np.asarray(joints_cam, dtype=np.float64))
    k = torch.as_tensor(np.asarray(K, dtype=np.float64))
    return project_points(x, k)  # (F, J, 2) px, (F, J) valid


def gt_boxes(joints_cam: np.ndarray, K: np.ndarray, scale: float = 1.2) -> np.ndarray:
    """Supplement D: the square box enclosing all projected GT joints, enlarged by ``scale``.

    Args:
        joints_cam: (F, J, 3) ground-truth joints in the camera frame, metres.
        K: (F, 3, 3) intrinsics, pixels.
        scale: enlargement (1.2 in the paper).
    Returns:
        (F, 3) boxes ``(cx, cy, s)``, pixels, side ``200 s``.
    Raises:
        ValueError if a frame has no joint in front of the camera.
    """
    uv, valid = _project(joints_cam, K)
    return bbox_from_points(uv, scale=scale, valid=valid).numpy()


def truncate_boxes(boxes: np.ndarray, period: int = TRUNC_PERIOD, start: int = TRUNC_START) -> np.ndarray:
    """RICH truncation variant: boxes of frames with ``idx % period >= start`` -> upper-body boxes.

    Args:
        boxes: (F, 3) boxes ``(cx, cy, s)`` px; ``idx`` is the frame's position in the sequence (0-based).
    Returns:
        (F, 3) boxes; truncated frames have ``(cx, cy - 50 s, s / 2)``.
    """
    out = np.array(boxes, dtype=np.float64, copy=True)
    cut = (np.arange(out.shape[0]) % period) >= start
    out[cut, 1] -= 50.0 * out[cut, 2]
    out[cut, 2] *= 0.5
    return out


def joints_in_boxes(joints_cam: np.ndarray, K: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(F, J) bool: joint in front of the camera and its projection inside the frame's box.

    Args:
        joints_cam: (F, J, 3) camera-frame joints, metres.
        K: (F, 3, 3) intrinsics.
        boxes: (F, 3) boxes ``(cx, cy, s)`` px.
    """
    uv, valid = _project(joints_cam, K)
    b = torch.as_tensor(np.asarray(boxes, dtype=np.float64))
    half = 100.0 * b[:, None, 2]
    inside = ((uv[..., 0] - b[:, None, 0]).abs() <= half) & ((uv[..., 1] - b[:, None, 1]).abs() <= half)
    return (inside & valid).numpy()
