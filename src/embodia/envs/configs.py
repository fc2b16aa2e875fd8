"""Turning a constructor argument into a config dataclass (``gym.make`` kwargs arrive as dicts from JSON)."""

from __future__ import annotations

from typing import TypeVar

ConfigT = TypeVar("ConfigT")


def as_config(cls: type[ConfigT], value: ConfigT | dict | None, name: str) -> ConfigT:
    """``cls()`` for None, ``value`` itself if it is a ``cls``, ``cls(**value)`` for a dict.

    Raises:
        ValueError: unknown fields (``bad <name> config: ...``), invalid values (from the dataclass's checks) or
            another type.
    """
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, dict):
        try:
            return cls(**value)
        except TypeError as err:
            raise ValueError(f"bad {name} config: {err}") from None
    raise ValueError(f"{name} must be a {cls.__name__}, a dict or None, got {type(value).__name__}")


__all__ = ["as_config"]
