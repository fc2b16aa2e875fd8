"""Checking actions at the env boundary: one rule for every embodia env and the foreign-env adapter."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces


def check_action(action: Any, space: spaces.Box, meaning: str = "") -> np.ndarray:
    """Validates an action against a ``Box`` space and clips it to the bounds (out-of-range values are clipped).

    Args:
        action: the action as given (array-like).
        space: the env's action space.
        meaning: names of the components for the error message, e.g. ``"[vx, vy]"``.

    Returns:
        The clipped action, float64, with ``space.shape``.

    Raises:
        ValueError: non-numeric, wrong shape, NaN or inf.
    """
    raw = np.asarray(action)
    shape = tuple(space.shape)
    if raw.dtype.kind not in "biuf":
        raise ValueError(f"action must be numeric with shape {shape}, got dtype {raw.dtype} ({type(action).__name__})")
    act = raw.astype(np.float64)
    if act.shape != shape:
        raise ValueError(f"action must have shape {shape} {meaning}".rstrip() + f", got {act.shape}")
    if not np.isfinite(act).all():
        raise ValueError(f"action must be finite, got {act.tolist()}")
    return np.clip(act, space.low, space.high)
