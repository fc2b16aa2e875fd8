"""Atomic file writes: a temp file in the same directory, fsync, ``os.replace``, then fsync of the directory.

A reader sees either the old file or the complete new one, never a half-written file; a failed write leaves no
temp file behind. Temp files are hidden (``.<name>.<random>.tmp``) so directory listings skip them.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temp path to write to; on a clean exit it is fsynced and moved onto ``path``.

    Args:
        path: destination (its parent directories are created).

    Yields:
        The temp file's path, in the same directory as ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}{TMP_SUFFIX}")
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Persists a rename in ``directory`` (best effort; not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Writes ``payload`` as indented JSON via a temp file and ``os.replace``."""
    path = Path(path)
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path
