"""Training policies on episode files: the trainer, its config, EMA, schedule, checkpoints and ``embodia train``.

``embodia.training.config`` is light (no torch), so the command line can import it; the rest loads on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["TrainConfig", "TrainResult", "Trainer", "TrainingDivergedError"]

_WHERE = {
    "TrainConfig": "embodia.training.config",
    "TrainResult": "embodia.training.trainer",
    "Trainer": "embodia.training.trainer",
    "TrainingDivergedError": "embodia.training.trainer",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'embodia.training' has no attribute {name!r}")
