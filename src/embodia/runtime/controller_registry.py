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
        ValueError: An unknown name (the known ones listed), an option the entry does not take (the ones it takes
            listed) or a value it rejects.
    """
    if name not in CONTROLLERS:
        raise ValueError(f"unknown controller {name!r}; known controllers: {', '.join(sorted(CONTROLLERS))}")
    module_name, function_name = CONTROLLERS[name].split(":")
    entry = getattr(importlib.import_module(module_name), function_name)
    takes = list(inspect.signature(entry).parameters)
    unknown = sorted(set(options) - set(takes))
    if unknown:
        accepted = ", ".join(takes) if takes else "none"
        raise ValueError(f"controller {name!r} takes no option {', '.join(unknown)} (its options: {accepted})")
    return entry(**options)
