"""Dataset readers returning one schema (:mod:`.schema`): the synthetic world now, real datasets later.

- :mod:`.schema` :class:`Sample` (one frame) and :class:`Clip` (t consecutive frames): fields, shapes, units
- :mod:`.video`  frame storage (H.264 mp4 through PyAV, or PNG frames): writer and streaming reader
- :mod:`.synth`  the ``moro-synth`` on-disk format (documented there) and its reader
- real datasets (layouts in each module; ``docs/datasets.md``): :mod:`.amass`, :mod:`.bedlam`,
  :mod:`.egobody`, :mod:`.rich`, :mod:`.images`; shared pieces in :mod:`.formats`; the
  ``moro-prepared`` format written by ``moro prepare`` and its reader in :mod:`.prepared`
"""

from .schema import BodyParams, Clip, Sample, SchemaError
from .synth import (
    FORMAT,
    FORMAT_VERSION,
    CorruptFileError,
    ForeignFolderError,
    IncompleteSequenceError,
    SynthDataset,
    SynthFormatError,
    SynthSequence,
    find_sequences,
    read_meta,
)
from .video import FrameWriter, VideoError, read_frames

__all__ = [
    "BodyParams", "Clip", "Sample", "SchemaError", "FORMAT", "FORMAT_VERSION", "CorruptFileError", "ForeignFolderError",
    "IncompleteSequenceError", "SynthDataset", "SynthFormatError", "SynthSequence", "find_sequences", "read_meta",
    "FrameWriter", "VideoError", "read_frames",
]
