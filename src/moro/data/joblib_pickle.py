"""Read files written by ``joblib.dump`` (uncompressed) without joblib, allowing data types only.

WHAM saves its results with ``joblib.dump(results, "wham_output.pkl")``. joblib writes a pickle
stream in which every numpy array is replaced by a ``joblib.numpy_pickle.NumpyArrayWrapper``
object (dtype, shape, order), immediately followed in the file by an optional alignment padding
(one byte giving its length, then that many bytes) and the raw array bytes. This reader handles
that layout (and plain pickles), and only resolves an allow-list of data classes - dicts, lists,
numbers, numpy arrays and dtypes - so loading a file never runs code. Compressed joblib files
(``compress=...``) are not supported: decompress them with joblib first.
"""

from __future__ import annotations

import _compat_pickle
import os
import pickle
from typing import Any, BinaryIO

import numpy as np

__all__ = ["load_joblib_pickle", "UnsafePickleError"]

_ALLOWED = {
    ("builtins", n) for n in ("dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "str", "bytes", "bool", "bytearray")
} | {
    ("collections", "defaultdict"), ("collections", "OrderedDict"), ("copyreg", "_reconstructor"), ("_codecs", "encode"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
}


# gzip, bz2, xz, zstd, lzma stream starts (zlib is checked separately): joblib's compressors.
_COMPRESSED_MAGICS = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd", b"\x5d\x00\x00", b"ZF")


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references a class outside the data allow-list."""


class _ArrayWrapper:
    """Stands in for ``joblib.numpy_pickle.NumpyArrayWrapper`` (its pickled state is kept as is)."""

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


def _read_exact(fh: BinaryIO, n: int) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise pickle.UnpicklingError(f"truncated joblib file: expected {n} bytes of array data, got {len(data)}")
    return data


def _read_array(w: _ArrayWrapper, fh: BinaryIO) -> np.ndarray:
    dtype = np.dtype(w.dtype)
    if dtype.hasobject:
        return _Unpickler(fh).load()  # object arrays are pickled inline (still allow-listed)
    if getattr(w, "numpy_array_alignment_bytes", None) is not None:
        pad = int.from_bytes(_read_exact(fh, 1), "little")
        _read_exact(fh, pad)
    shape = tuple(int(s) for s in w.shape)
    count = int(np.prod(shape)) if shape else 1
    arr = np.frombuffer(_read_exact(fh, count * dtype.itemsize), dtype=dtype).copy()
    arr = arr.reshape(shape[::-1]).T if w.order == "F" else arr.reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=False) if not dtype.isnative else arr


class _Unpickler(pickle._Unpickler):  # the pure-Python unpickler lets BUILD be extended
    def __init__(self, fh: BinaryIO):
        super().__init__(fh)
        self._fh = fh

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("joblib.numpy_pickle", "NumpyArrayWrapper"):
            return _ArrayWrapper
        if self.proto < 3 and (module, name) in _compat_pickle.NAME_MAPPING:  # Python 2 names (protocol <= 2)
            module, name = _compat_pickle.NAME_MAPPING[module, name]
        elif self.proto < 3:
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"refusing to load {module}.{name}: only plain data (dicts, lists, numbers, numpy arrays) is read "
            f"from result files; re-save the file with numpy arrays only"
        )

    def load_build(self) -> None:
        pickle._Unpickler.load_build(self)
        if isinstance(self.stack[-1], _ArrayWrapper):
            self.stack.append(_read_array(self.stack.pop(), self._fh))

    dispatch = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.BUILD[0]] = load_build


def load_joblib_pickle(path: str | os.PathLike) -> Any:
    """Load an uncompressed ``joblib.dump`` file (or a plain pickle) of plain data.

    Returns the stored object (dicts / lists / numpy arrays). Raises :class:`UnsafePickleError`
    when the file references any other class, ``pickle.UnpicklingError`` on a corrupt or
    compressed file.
    """
    with open(path, "rb") as fh:
        head = fh.read(6)
        if any(head.startswith(m) for m in _COMPRESSED_MAGICS) or (head[:1] == b"\x78" and head[1:2] in (b"\x01", b"\x5e", b"\x9c", b"\xda")):
            raise pickle.UnpicklingError(
                f"{path}: looks compressed (joblib compress=...); load it with joblib and re-save without compression"
            )
        fh.seek(0)
        return _Unpickler(fh).load()
