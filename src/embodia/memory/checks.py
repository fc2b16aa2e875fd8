"""Input checks shared by the memory's parts (one-line ``ValueError``s naming the argument)."""

from __future__ import annotations

import numpy as np


def is_int(value: object) -> bool:
    """Whether ``value`` is an integer (bools excluded)."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def is_real(value: object) -> bool:
    """Whether ``value`` is a real number (bools excluded)."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_)


def check_int(value: object, name: str) -> int:
    """Returns ``value`` as an int in int64 range, or raises ValueError."""
    if not is_int(value):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"{name} must fit in int64, got {value}")
    return value


def check_step(step: object) -> int:
    """Returns ``step`` as an int >= 0, or raises ValueError."""
    step = check_int(step, "step")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return step


def check_vector(value: object, width: int, name: str) -> np.ndarray:
    """Returns ``value`` as a finite float64 vector of shape ``(width,)``, or raises ValueError."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if arr.shape != (width,):
        raise ValueError(f"{name} must have shape ({width},), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite: it contains NaN or inf")
    return arr
