"""Training policies on episode files: :func:`train` (the one entry point), the trainer, its config, checkpoints.

``embodia.training.config`` is light (no torch); the rest (EMA, schedule, Ray Train) loads on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["RunOptions", "TrainConfig", "TrainResult", "TrainSummary", "Trainer", "TrainingDivergedError", "train"]

_WHERE = {
    "RunOptions": "embodia.training.run",
    "TrainConfig": "embodia.training.config",
    "TrainSummary": "embodia.training.summary",
    "train": "embodia.training.entry",
    "TrainResult": "embodia.training.trainer",
    "Trainer": "embodia.training.trainer",
    "TrainingDivergedError": "embodia.training.trainer",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'embodia.training' has no attribute {name!r}")
