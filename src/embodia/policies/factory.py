"""Build policies by name, importing their modules lazily by naming convention.

Policy ``<name>`` (or a variant ``<name>-<variant>``, e.g. ``"ebt-dsm"``) lives in the module
``embodia.policies.<name>.modeling_<name>``; importing that module defines (and so registers) the policy
class. Agents (``"agent"``: encoder + memory + an inner policy) are policies too and live in
``embodia.agents.model`` (:data:`OTHER_MODULES`). Nothing is imported until a policy is asked for, so
``import embodia.policies`` stays cheap. An error inside a policy module is not hidden: it surfaces from
whatever imports that module (``available_policies`` imports them all).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import pkgutil
from typing import Any

from embodia.policies.base import Policy, PolicyConfig, registered_policies

__all__ = [
    "OTHER_MODULES",
    "PLANNED_POLICIES",
    "available_policies",
    "get_policy_class",
    "inner_policy_kwargs",
    "make_policy",
    "policy_module",
]

WINDOW_FIELDS = frozenset({"obs_dim", "action_dim", "n_obs_steps", "horizon", "n_action_steps"})
"""Config fields a wrapping policy (an agent) decides for the policy inside it."""


def inner_policy_kwargs(text: str, owner: str) -> dict[str, Any]:
    """The config fields of a policy wrapped by another (an agent's inner policy), from their JSON text.

    Args:
        text: A JSON object of config fields (the wrapper's ``policy_kwargs``).
        owner: What decides the window fields instead (``"agent config"``), for the message.

    Raises:
        ValueError: Not a JSON object, or it sets one of :data:`WINDOW_FIELDS`.
    """
    try:
        kwargs = json.loads(text)
    except (TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"policy_kwargs must be a JSON object, got {text!r} ({exc})") from None
    if not isinstance(kwargs, dict):
        raise ValueError(f"policy_kwargs must be a JSON object, got {text!r}")
    reserved = sorted(WINDOW_FIELDS & set(kwargs))
    if reserved:
        raise ValueError(f"policy_kwargs may not set {reserved}: they come from the {owner}")
    return kwargs


PLANNED_POLICIES: tuple[str, ...] = ("diffusion", "ebt", "ebt-dsm", "mlp")
"""Policy names the project defines (some may not be implemented yet)."""


OTHER_MODULES: dict[str, str] = {"agent": "embodia.agents.model", "navigator": "embodia.agents.navigator"}
"""Policies defined outside ``embodia.policies``: name -> module."""


def policy_module(name: str) -> str:
    """The module that defines policy ``name``: ``"ebt-dsm"`` -> ``"embodia.policies.ebt.modeling_ebt"``."""
    if name in OTHER_MODULES:
        return OTHER_MODULES[name]
    package = name.split("-", 1)[0]
    return f"embodia.policies.{package}.modeling_{package}"


def get_policy_class(name: str) -> type[Policy]:
    """The Policy subclass registered as ``name``, importing its module if needed.

    Raises:
        ValueError: ``name`` is planned but its module does not exist yet ("not implemented yet"), or unknown
            (the message lists the available policies).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"policy name must be a non-empty str, got {name!r}")
    registry = registered_policies()
    if name in registry:
        return registry[name]
    module = policy_module(name)
    if _module_exists(module):
        importlib.import_module(module)
        registry = registered_policies()
        if name in registry:
            return registry[name]
    if name in PLANNED_POLICIES:
        raise ValueError(
            f"policy {name!r} is not implemented yet (expected in {module}); available: {available_policies()}"
        )
    raise ValueError(f"unknown policy {name!r}; available: {available_policies()}")


def make_policy(name: str, config: PolicyConfig | None = None, **config_overrides: Any) -> Policy:
    """Build policy ``name`` from ``config`` (default: its config class's defaults) with fields overridden.

    Example: ``make_policy("mlp", obs_dim=5, action_dim=2, hidden_dims=(64, 64))``.

    Raises:
        ValueError: Unknown / unimplemented policy, unknown or missing config fields (named), invalid values,
            or a ``config`` of another policy's class.
    """
    cls = get_policy_class(name)
    config_class = cls.config_class
    if config is None:
        config = config_class.from_dict(config_overrides)
    else:
        if type(config) is not config_class:
            raise ValueError(f"policy {name!r} needs a {config_class.__name__}, got {type(config).__name__}")
        if config_overrides:
            config = config_class.from_dict({**config.to_dict(), **config_overrides})
    return cls(config)


def available_policies() -> list[str]:
    """Sorted names of the policies implemented in ``embodia.policies`` (imports every policy module)."""
    import embodia.policies as package

    for info in pkgutil.iter_modules(package.__path__):
        module = f"embodia.policies.{info.name}.modeling_{info.name}"
        if info.ispkg and _module_exists(module):
            importlib.import_module(module)
    for module in OTHER_MODULES.values():
        importlib.import_module(module)
    return sorted(n for n, cls in registered_policies().items() if cls.__module__.startswith("embodia."))


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False
