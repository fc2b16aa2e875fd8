"""The name -> class registry of policies, and the lookup that imports a policy's module by naming convention.

Defining a :class:`~embodia.policies.base.Policy` subclass registers it here (``Policy.__init_subclass__`` calls
:func:`register`); :meth:`Policy.load <embodia.policies.base.Policy.load>` and
:func:`~embodia.policies.factory.make_policy` look classes up with :func:`get_policy_class`. This module imports
no other policy module, so the base class and the factory both depend on it and not on each other.

Policy ``<name>`` (or a variant ``<name>-<variant>``, e.g. ``"ebt-dsm"``) lives in the module
``embodia.policies.<name>.modeling_<name>``; importing that module defines (and so registers) the policy
class. Agents (``"agent"``: encoder + memory + an inner policy) are policies too and live in
``embodia.agents`` (:data:`OTHER_MODULES`). Nothing is imported until a policy is asked for. An error inside a
policy module is not hidden: it surfaces from whatever imports that module (:func:`available_policies` imports
them all).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from pathlib import Path

__all__ = [
    "OTHER_MODULES",
    "PLANNED_POLICIES",
    "available_policies",
    "get_policy_class",
    "module_exists",
    "policy_module",
    "register",
    "registered_policies",
]

PLANNED_POLICIES: tuple[str, ...] = ("diffusion", "ebt", "ebt-dsm", "mlp")
"""Policy names the project defines (some may not be implemented yet)."""

OTHER_MODULES: dict[str, str] = {"agent": "embodia.agents.model", "navigator": "embodia.agents.navigator"}
"""Policies defined outside ``embodia.policies``: name -> module."""

_REGISTRY: dict[str, type] = {}
"""Name -> ``Policy`` subclass (typed ``type``: this module sits below ``policies.base``, which registers into it)."""


def register(name: str, cls: type) -> None:
    """Record ``cls`` as policy ``name`` (redefining the same class, e.g. on a module reload, is allowed).

    Args:
        name: The policy's id, e.g. ``"mlp"``.
        cls: The Policy subclass.

    Raises:
        TypeError: ``name`` is taken by another class.
    """
    other = _REGISTRY.get(name)
    if other is not None and (other.__module__, other.__qualname__) != (cls.__module__, cls.__qualname__):
        where = f"{cls.__module__}.{cls.__qualname__}"
        raise TypeError(f"policy name {name!r} of {where} is taken by {other.__module__}.{other.__qualname__}")
    _REGISTRY[name] = cls


def registered_policies() -> dict[str, type]:
    """The policies defined so far (imported modules only), by name. See :func:`available_policies`."""
    return dict(_REGISTRY)


def policy_module(name: str) -> str:
    """The module that defines policy ``name``: ``"ebt-dsm"`` -> ``"embodia.policies.ebt.modeling_ebt"``."""
    if name in OTHER_MODULES:
        return OTHER_MODULES[name]
    package = name.split("-", 1)[0]
    return f"embodia.policies.{package}.modeling_{package}"


def get_policy_class(name: str) -> type:
    """The Policy subclass registered as ``name``, importing its module if needed.

    Raises:
        ValueError: ``name`` is planned but its module does not exist yet ("not implemented yet"), or unknown
            (the message lists the available policies).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"policy name must be a non-empty str, got {name!r}")
    if name in _REGISTRY:
        return _REGISTRY[name]
    module = policy_module(name)
    if module_exists(module):
        importlib.import_module(module)
        if name in _REGISTRY:
            return _REGISTRY[name]
    if name in PLANNED_POLICIES:
        raise ValueError(
            f"policy {name!r} is not implemented yet (expected in {module}); available: {available_policies()}"
        )
    raise ValueError(f"unknown policy {name!r}; available: {available_policies()}")


def available_policies() -> list[str]:
    """Sorted names of the policies implemented in ``embodia.policies`` (imports every policy module)."""
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        module = f"embodia.policies.{info.name}.modeling_{info.name}"
        if info.ispkg and module_exists(module):
            importlib.import_module(module)
    for module in OTHER_MODULES.values():
        importlib.import_module(module)
    return sorted(n for n, cls in _REGISTRY.items() if cls.__module__.startswith("embodia."))


def module_exists(module: str) -> bool:
    """Whether ``module`` can be imported (its parent packages exist and it is found), without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False
