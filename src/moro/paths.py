"""Where moro keeps generated files, and how it writes them safely.

Cache directory (generated, re-creatable data: built body models, pooling hierarchies):
``$MORO_CACHE_DIR`` if set, else the platform user cache dir for "moro"
(``~/.cache/moro`` on Linux).

User data directory (files the user supplies, e.g. licensed body models):
``$MORO_DATA_DIR`` if set, else the platform user data dir for "moro"
(``~/.local/share/moro`` on Linux).

Every file moro writes goes through :func:`atomic_write`: written to a temporary file in the
same directory, flushed, fsynced and renamed, so a crash never leaves a half-written file
that a later reader would accept.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

import platformdirs

CACHE_ENV = "MORO_CACHE_DIR"
DATA_ENV = "MORO_DATA_DIR"


def cache_dir(*parts: str) -> Path:
    """Return (and create) ``<cache root>/<parts...>``; see the module docstring for the root."""
    root = os.environ.get(CACHE_ENV) or platformdirs.user_cache_dir("moro")
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def asset_path(name: str) -> Path:
    """A file shipped inside the package (``moro/assets/<name>``, e.g. the tiny MoRo checkpoint)."""
    return Path(__file__).resolve().parent / "assets" / name


def data_dir(*parts: str) -> Path:
    """Return ``<user data root>/<parts...>`` (not created); see the module docstring."""
    root = os.environ.get(DATA_ENV) or platformdirs.user_data_dir("moro")
    return Path(root, *parts)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    Usage::

        with atomic_write(out) as tmp:
            np.savez(tmp, ...)      # or save_file(tensors, tmp)

    On an exception the temporary file is removed and ``path`` is left untouched.
    ``mode`` is unused by the rename itself and only kept for readability at call sites.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
