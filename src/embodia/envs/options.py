"""Typed constructor options of embodia's envs, and the ``gymnasium.make`` kwargs they stand for.

Each env class names its options dataclass in ``OPTIONS`` (declared with the env, e.g.
:class:`embodia.envs.nav.urban_nav.UrbanNavOptions`); the options class names its family in ``FAMILY`` (the
command line's ``env:FAMILY`` subcommand, e.g. ``env:urban-nav``). An options instance means:

* a top-level field left at None: not given (the registered id's value, else the constructor's default);
* a nested config (``CityConfig``, ``DetourConfig``, ...), which is always present and defaults to the config's
  own defaults: its fields that differ from those defaults are given, merged over the registered id's nested
  value (``embodia/DetourReach-Sided-v0``'s ``config={"start_gap": 0.01}`` stays unless ``start_gap`` is set to
  something other than the default 0.0). A nested field set to its default is not passed, so it cannot reset a
  registered nested value to the default; the Python API (a kwargs dict) can.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym

from embodia.envs import ENV_IDS
from embodia.envs.views import env_class

__all__ = ["env_options_type", "option_families", "options_kwargs"]


def env_options_type(env_id: str) -> type | None:
    """The options dataclass of ``env_id``'s env class (its ``OPTIONS``), or None for a foreign or unknown env."""
    return getattr(env_class(env_id), "OPTIONS", None)


def option_families() -> dict[str, type]:
    """Every options dataclass of the registered embodia envs, by family name (``FAMILY``), in ``ENV_IDS`` order."""
    families: dict[str, type] = {}
    for env_id in ENV_IDS:
        options = env_options_type(env_id)
        if options is not None:
            families.setdefault(options.FAMILY, options)
    return families


def options_kwargs(env_id: str, options: Any) -> dict[str, Any]:
    """The ``gymnasium.make(env_id, **kwargs)`` kwargs that ``options`` gives (see the module docstring).

    Args:
        env_id: A registered env id whose class has ``OPTIONS``.
        options: An instance of that ``OPTIONS`` dataclass.

    Returns:
        The given top-level fields; a nested config as a dict of its changed fields over the registered value.

    Raises:
        ValueError: ``options`` is not ``env_id``'s options type (one line naming both families).
    """
    expected = env_options_type(env_id)
    if expected is None or type(options) is not expected:
        got = getattr(options, "FAMILY", type(options).__name__)
        if expected is None:
            raise ValueError(f"{env_id} is not one of embodia's envs and takes no typed options (got env:{got})")
        raise ValueError(f"{env_id} takes env:{expected.FAMILY} options, not env:{got}")
    registered = gym.spec(env_id).kwargs
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        if dataclasses.is_dataclass(value):
            defaults = dataclasses.asdict(type(value)())
            changed = {k: v for k, v in dataclasses.asdict(value).items() if v != defaults[k]}
            if changed:
                base = registered.get(f.name) or {}
                base = dataclasses.asdict(base) if dataclasses.is_dataclass(base) else dict(base)
                kwargs[f.name] = {**base, **changed}
        elif value is not None:
            kwargs[f.name] = value
    return kwargs
