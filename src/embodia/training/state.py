"""Training checkpoints: everything needed to continue a run exactly, in a file ``torch.load(weights_only=True)`` reads.

Layout (plain types and tensors only; written atomically)::

    {"format_version": 1, "kind": "embodia-train-state",
     "policy": Policy.checkpoint_payload() of the trained weights,
     "ema": EMA.state_dict() or None,
     "optimizer": optimizer.state_dict(),
     "progress": {"step": int, "samples": int, "elapsed_s": float},
     "rng": {"torch": ByteTensor, "numpy": bit-generator state dict},
     "train_config": TrainConfig.to_dict(),
     "data": {"dir": str, "episodes": int, "samples": int, "obs_keys": [...], "digest": str}}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from embodia.atomic import atomic_write
from embodia.policies.base import CheckpointError

__all__ = ["TRAIN_STATE_KIND", "TRAIN_STATE_VERSION", "load_train_state", "save_train_state"]

TRAIN_STATE_VERSION = 1
"""Version of the training-checkpoint layout."""
TRAIN_STATE_KIND = "embodia-train-state"
"""Value of the ``kind`` key that marks a training checkpoint (a policy checkpoint has none)."""
_KEYS = ("policy", "ema", "optimizer", "progress", "rng", "train_config", "data")


def save_train_state(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write a training checkpoint ``state`` (the layout above, without the two header keys) atomically."""
    missing = [k for k in _KEYS if k not in state]
    if missing:
        raise ValueError(f"training state lacks {missing}")
    path = Path(path)
    with atomic_write(path) as tmp:
        torch.save({"format_version": TRAIN_STATE_VERSION, "kind": TRAIN_STATE_KIND, **state}, tmp)
    return path


def load_train_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a training checkpoint written by :func:`save_train_state` (on the CPU).

    Raises:
        CheckpointError: Missing file, unreadable or truncated file, a policy checkpoint or another file instead
            of a training checkpoint, another layout version, or missing entries.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such file" if not path.exists() else "not a regular file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = " ".join(str(exc).split())[:200]
        raise CheckpointError(path, f"corrupt or unreadable checkpoint ({type(exc).__name__}: {reason})") from None
    if not isinstance(ckpt, dict) or ckpt.get("kind") != TRAIN_STATE_KIND:
        what = "a policy checkpoint" if isinstance(ckpt, dict) and "state_dict" in ckpt else "another kind of file"
        raise CheckpointError(path, f"holds {what}, not a training checkpoint (kind {TRAIN_STATE_KIND!r})")
    if ckpt.get("format_version") != TRAIN_STATE_VERSION:
        raise CheckpointError(
            path,
            f"training checkpoint version {ckpt.get('format_version')!r}, this embodia reads {TRAIN_STATE_VERSION}",
        )
    missing = [k for k in _KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(path, f"training checkpoint lacks {missing}")
    progress = ckpt["progress"]
    if not isinstance(progress, dict) or not isinstance(progress.get("step"), int) or progress["step"] < 0:
        raise CheckpointError(path, f"training checkpoint has a bad progress entry: {progress!r}")
    return ckpt
