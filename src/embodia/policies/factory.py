"""Build policies by name; their modules are imported lazily by naming convention (:mod:`embodia.policies.registry`).

Nothing is imported until a policy is asked for, so ``import embodia.policies`` stays cheap. The lookup
(:func:`get_policy_class`, :func:`available_policies`, :func:`policy_module`) lives in the registry, which the
base class uses too; it is re-exported here.
"""

from __future__ import annotations

import json
from typing import Any

from embodia.policies.base import Policy, PolicyConfig
from embodia.policies.registry import (
    OTHER_MODULES,
    PLANNED_POLICIES,
    available_policies,
    get_policy_class,
    policy_module,
)

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
