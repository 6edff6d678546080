"""Input validation shared by the geometry modules: shape, dtype and finiteness checks.

Every public geometry function validates its inputs with these helpers so that wrong input
fails early with a message naming the expected shape and the fix, instead of a silent
broadcast or an opaque error deep inside torch. Nothing here ever broadcasts.

Shape checks are free (they read ``tensor.shape``). Value checks (:func:`check_finite`)
read the data, which forces a device synchronisation on GPU; they are therefore used only
by data-side functions (cameras, boxes, crops, statistics), not by the per-step conversions
that run inside the network (documented per function).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def check_tensor(name: str, x: object) -> torch.Tensor:
    """Raise ``TypeError`` unless ``x`` is a floating-point tensor; return it."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor, got {type(x).__name__}; "
            f"wrap it with torch.as_tensor(..., dtype=torch.float32)"
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}; convert it with .float()")
    return x


def _fmt_trailing(trailing: Sequence[int | None]) -> str:
    parts = ["..."] + ["*" if d is None else str(d) for d in trailing]
    return "(" + ", ".join(parts) + ")"


def check_shape(name: str, x: object, trailing: Sequence[int | None]) -> torch.Size:
    """Check that ``x`` is a float tensor of shape ``(..., *trailing)``; return the leading shape.

    ``None`` in ``trailing`` accepts any size on that axis (e.g. the number of points ``N``).
    """
    x = check_tensor(name, x)
    k = len(trailing)
    if x.dim() < k or any(d is not None and s != d for s, d in zip(x.shape[x.dim() - k :], trailing)):
        raise ValueError(f"{name} must have shape {_fmt_trailing(trailing)}, got {tuple(x.shape)}")
    return x.shape[: x.dim() - k]


def check_same_batch(**batches: torch.Size | tuple[int, ...]) -> torch.Size:
    """Require identical leading (batch) shapes; never broadcast. Return the common shape.

    Call as ``check_same_batch(R=R.shape[:-2], t=t.shape[:-1])``.
    """
    items = list(batches.items())
    first_name, first = items[0]
    for name, shape in items[1:]:
        if tuple(shape) != tuple(first):
            desc = ", ".join(f"{n} {tuple(s)}" for n, s in items)
            raise ValueError(
                f"leading batch shapes must match exactly (geometry never broadcasts): {desc}; "
                f"expand the smaller one explicitly, e.g. {name}.expand(...)"
            )
    return torch.Size(first)


def check_same_dtype(**tensors: torch.Tensor) -> None:
    """Require one dtype and one device across the given tensors."""
    items = list(tensors.items())
    dtypes = {t.dtype for _, t in items}
    devices = {t.device for _, t in items}
    if len(dtypes) > 1 or len(devices) > 1:
        desc = ", ".join(f"{n}: {t.dtype} on {t.device}" for n, t in items)
        raise ValueError(f"inputs must share one dtype and device, got {desc}; convert with .to(other)")


def check_finite(name: str, x: torch.Tensor) -> None:
    """Raise ``ValueError`` if ``x`` holds NaN or inf (reads the data: device sync on GPU)."""
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        raise ValueError(
            f"{name} contains {int(bad.sum())} non-finite value(s) (NaN or inf) out of {x.numel()}; "
            f"drop or interpolate those entries first"
        )


def check_positive(name: str, x: torch.Tensor) -> None:
    """Raise ``ValueError`` unless every entry of ``x`` is finite and strictly positive."""
    check_finite(name, x)
    bad = x <= 0
    if bool(bad.any()):
        raise ValueError(
            f"{name} must be strictly positive, got {int(bad.sum())} value(s) <= 0 "
            f"(smallest {float(x.min()):.4g})"
        )
