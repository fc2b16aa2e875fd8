"""Non-learned controllers by name (``embodia eval --agent NAME``), so the runtime never imports an agent module.

:data:`CONTROLLERS` maps a name to the ``"module:function"`` of its entry, imported on first use (a module path
in a string is no import, so the layering holds: agents sit above envs, below runtime). An entry takes the
controller's options as keyword arguments, checks them at once (before any env or Ray actor is made) and returns
``(factory, label)``: ``factory(env)`` builds the controller (picklable, e.g. ``functools.partial`` of a
module-level function, so Ray actors build their own) and ``label`` names it in reports.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from embodia.runtime.controller import ControllerFactory

__all__ = ["CONTROLLERS", "controller_factory"]

CONTROLLERS: dict[str, str] = {
    "expert": "embodia.envs.experts:expert_factory",
    "modular": "embodia.agents.modular:modular_factory",
}
"""Controller name -> ``"module:function"`` of its registry entry."""


def controller_factory(name: str, **options: Any) -> tuple[ControllerFactory, str]:
    """The factory and label of controller ``name`` with ``options`` (see the module docstring).

    Args:
        name: A key of :data:`CONTROLLERS`.
        **options: The entry's options, e.g. ``memory="none", act_from_phase=0`` for ``"modular"``.

    Returns:
        ``(factory, label)``: ``factory(env)`` builds the controller; ``label`` names it.

    Raises:
        ValueError: An unknown name (the known ones listed), an option the entry does not take (named as a flag,
            with the controllers that take it) or a value the entry rejects.
    """
    if name not in CONTROLLERS:
        raise ValueError(f"unknown controller {name!r}; known controllers: {', '.join(sorted(CONTROLLERS))}")
    entry = _entry(name)
    takes = _options(name)
    unknown = [k for k in options if k not in takes]
    if unknown:
        hints = [
            f"{_flags(_options(other))} go{'es' if len(_options(other)) == 1 else ''} with --agent {other}"
            for other in sorted(CONTROLLERS)
            if other != name and set(unknown) & set(_options(other))
        ]
        raise ValueError(
            f"--agent {name} takes {_flags(takes) or 'no options'}, not {_flags(unknown)}"
            + "".join(f"; {hint}" for hint in hints)
        )
    return entry(**options)


def _entry(name: str) -> Callable[..., tuple[ControllerFactory, str]]:
    """The registry entry of ``name`` (its module imported now)."""
    module_name, function_name = CONTROLLERS[name].split(":")
    return getattr(importlib.import_module(module_name), function_name)


def _options(name: str) -> list[str]:
    """The keyword options the entry of ``name`` takes."""
    return list(inspect.signature(_entry(name)).parameters)


def _flags(options: list[str]) -> str:
    """Options as command-line flags: ``["memory", "act_from_phase"]`` -> ``"--memory and --act-from-phase"``."""
    return " and ".join(f"--{option.replace('_', '-')}" for option in options)
