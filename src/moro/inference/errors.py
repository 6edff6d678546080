"""Errors of ``moro infer``: one class per kind of bad input, each message saying what to change.

All derive from :class:`InferenceError` (a ``ValueError``), so the CLI prints them as one line
and exits with status 2; none of them ever leaves an output folder that looks complete.
"""

from __future__ import annotations

__all__ = [
    "InferenceError",
    "InputVideoError",
    "EmptyVideoError",
    "NoPersonError",
    "BoxesFileError",
    "BodyModelMismatchError",
    "InvalidFocalError",
    "ModelNotForVideoError",
    "OutputDirError",
]


class InferenceError(ValueError):
    """Base class: input that ``moro infer`` cannot use."""


class InputVideoError(InferenceError):
    """The video file or image folder is missing, unreadable or holds no video stream."""


class EmptyVideoError(InputVideoError):
    """The video opened but no frame could be decoded (or the image folder holds no image)."""


class NoPersonError(InferenceError):
    """No person was detected in any frame (and no boxes file was given)."""


class BoxesFileError(InferenceError):
    """The user's boxes file is malformed (the message names the line or entry)."""


class BodyModelMismatchError(InferenceError):
    """The checkpoint was trained on the mesh of another body model than the one asked for."""


class InvalidFocalError(InferenceError):
    """A focal length that is not a finite number > 0 pixels."""


class ModelNotForVideoError(InferenceError):
    """The checkpoint cannot run on video (no image encoder or backbone)."""


class OutputDirError(InferenceError):
    """``--out`` points at something that is not a moro output folder (it is never overwritten)."""
