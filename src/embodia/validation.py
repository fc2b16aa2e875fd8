"""Config-value checks shared by the policy, backbone and trainer configs (one-line ``ValueError``s naming the field).

Torch-free, so light modules (``embodia.training.config``, which the command line imports) can use them.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["check_bool", "check_int", "check_number"]


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
