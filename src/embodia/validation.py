"""Input checks shared by every layer: one-line ``ValueError``s naming the field or argument.

Config fields (``check_int``, ``check_number``, ``check_bool``: the policy, backbone, trainer and agent configs)
and array inputs of the memory (``as_int64``, ``check_step``, ``check_vector``, ``is_int``, ``is_real``).
Torch-free, so light modules (``embodia.training.config``, which the command line imports) can use them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["as_int64", "check_bool", "check_int", "check_number", "check_step", "check_vector", "is_int", "is_real"]


def check_int(name: str, value: Any, low: int) -> None:
    """Raise ``ValueError`` unless ``value`` is an ``int`` (not a bool) ``>= low``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def check_number(name: str, value: Any, *, low: float = 0.0, strict: bool = True, high: float = math.inf) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite int or float (not a bool) above ``low`` and ``<= high``.

    Args:
        name: The field, for the message.
        value: The value to check.
        low: Lower bound.
        strict: ``value > low`` when True, ``value >= low`` when False.
        high: Upper bound (inclusive; ``inf`` = none).
    """
    number = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    below = number and (value <= low if strict else value < low)
    if not number or below or value > high:
        bound = f"{'>' if strict else '>='} {low}" + (f" and <= {high}" if math.isfinite(high) else "")
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")


def check_bool(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is a bool."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool, got {value!r}")


def is_int(value: object) -> bool:
    """Whether ``value`` is an integer (bools excluded)."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def is_real(value: object) -> bool:
    """Whether ``value`` is a real number (bools excluded)."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_)


def as_int64(value: object, name: str) -> int:
    """Returns ``value`` as an int in int64 range, or raises ValueError."""
    if not is_int(value):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"{name} must fit in int64, got {value}")
    return value


def check_step(step: object) -> int:
    """Returns ``step`` as an int >= 0, or raises ValueError."""
    step = as_int64(step, "step")
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
