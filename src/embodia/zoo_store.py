"""The zoo's shipped checkpoints: ``zoo:NAME`` → a verified file inside the package.

``records/NAME.json`` (beside this module) describes every shipped entry: its checkpoint file under
``checkpoints/``, the file's SHA-256 and size, the digest of the demonstrations it was trained on, the training
summary and the figures ``embodia eval`` measured on the recorded held-out seeds. ``bench/zoo_build.py`` writes
them (one file per entry, so entries can be built in parallel); the recipes that produce each entry are
:mod:`embodia.zoo.recipes`.

This module only reads files (standard library only) and sits at the bottom of the house, beside ``atomic`` and
``ray_setup``: :meth:`embodia.policies.base.Policy.load` and the command line call :func:`resolve_checkpoint` for
any path that starts with ``zoo:``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = [
    "ZOO_PREFIX", "ZooError", "file_sha256", "is_zoo_path", "record_path", "records", "resolve_checkpoint", "zoo_dir",
    "zoo_name",
]  # fmt: skip

ZOO_PREFIX = "zoo:"
ZOO_DIR = Path(__file__).parent / "zoo"
"""The zoo package's directory: ``checkpoints/`` and ``records/``."""
RECORDS_DIR = "records"


class ZooError(ValueError):
    """An unknown ``zoo:`` name, or a shipped checkpoint whose digest does not match its record."""


def zoo_dir() -> Path:
    """The zoo's directory: this package's, or ``$EMBODIA_ZOO_DIR`` (tests and ``bench/zoo_build.py --zoo-dir``)."""
    override = os.environ.get("EMBODIA_ZOO_DIR")
    return Path(override) if override else ZOO_DIR


def record_path(name: str) -> Path:
    """Path of entry ``name``'s record, ``records/NAME.json``."""
    return zoo_dir() / RECORDS_DIR / f"{name}.json"


def records() -> dict[str, dict[str, Any]]:
    """Every shipped entry's record, by name (empty when nothing is shipped yet).

    Raises:
        ZooError: A record that is not valid JSON or lacks the checkpoint's file and digest.
    """
    out = {}
    for path in sorted((zoo_dir() / RECORDS_DIR).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ZooError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(record, dict) or not {"file", "sha256"} <= set(record):
            raise ZooError(f"{path}: not a zoo record (expected 'file' and 'sha256')")
        out[path.stem] = record
    return out


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(functools.partial(fh.read, 1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_zoo_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a zoo entry (``zoo:NAME``)."""
    return str(path).startswith(ZOO_PREFIX)


def zoo_name(path: str | os.PathLike) -> str | None:
    """``NAME`` of a ``zoo:NAME`` path; None for any other path."""
    return str(path)[len(ZOO_PREFIX) :] if is_zoo_path(path) else None


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The file behind ``path``: ``zoo:NAME`` → the shipped checkpoint (digest verified); any other path as is.

    Raises:
        ZooError: An unknown name (the message lists the known ones), a record without its file, or a file whose
            SHA-256 differs from the record (a damaged or replaced checkpoint is refused, not loaded).
    """
    name = zoo_name(path)
    if name is None:
        return Path(path)
    entries = records()
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none shipped"
        raise ZooError(f"unknown zoo entry {name!r}; known: {known}")
    record = entries[name]
    file = zoo_dir() / record["file"]
    if not file.is_file():
        raise ZooError(f"zoo entry {name!r}: its checkpoint {file} is missing")
    actual = file_sha256(file)
    if actual != record["sha256"]:
        raise ZooError(
            f"zoo entry {name!r}: {file} has SHA-256 {actual[:12]}…, its record says {record['sha256'][:12]}… "
            "(damaged or replaced; reinstall embodia or retrain it with `embodia zoo train`)"
        )
    return file
