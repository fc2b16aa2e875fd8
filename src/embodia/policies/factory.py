"""Build policies by name; their modules are imported lazily by naming convention (:mod:`embodia.policies.registry`).

Nothing is imported until a policy is asked for, so ``import embodia.policies`` stays cheap. The lookup
(:func:`get_policy_class`, :func:`available_policies`, :func:`policy_module`) lives in the registry, which the
base class uses too; it is re-exported here.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from embodia.policies.base import Policy, PolicyConfig
from embodia.policies.registry import (
    OTHER_MODULES,
    PLANNED_POLICIES,
    available_policies,
    get_policy_class,
    module_exists,
    policy_module,
    registered_policies,
)

__all__ = [
    "OTHER_MODULES",
    "PLANNED_POLICIES",
    "available_policies",
    "data_placeholders",
    "get_policy_class",
    "inner_config",
    "make_policy",
    "policy_class_for",
    "policy_config",
    "policy_module",
]

WINDOW_FIELDS = frozenset({"obs_dim", "action_dim", "n_obs_steps", "horizon", "n_action_steps"})
"""Config fields a wrapping policy (an agent) decides for the policy inside it."""


def inner_config(inner: PolicyConfig, owner: str, **window: Any) -> PolicyConfig:
    """The config of a policy wrapped by another (an agent's inner policy), with the window fields it decides.

    Args:
        inner: The inner policy's config (its :data:`WINDOW_FIELDS` at their defaults or at ``window``'s values).
        owner: What decides the window fields (``"agent config"``), for the message.
        **window: A value for every one of :data:`WINDOW_FIELDS`.

    Raises:
        ValueError: ``inner`` sets a window field to another value than its default or the owner's (named).
    """
    template = policy_config(policy_class_for(inner).name)
    for name in sorted(WINDOW_FIELDS):
        value = getattr(inner, name)
        if value not in (getattr(template, name), window[name]):
            raise ValueError(f"the inner policy's {name} ({value!r}) comes from the {owner}; set it there")
    return dataclasses.replace(inner, **window)


def policy_config(name: str, **fields: Any) -> PolicyConfig:
    """The config of policy ``name`` with ``fields`` set, for training on data that decides its data fields.

    The fields the data decides (``config_class.data_fields``: ``obs_dim``, ``action_dim``, ...) and that have no
    default are set to 1 until :func:`embodia.training.entry.train` replaces them with the data's.

    Raises:
        ValueError: Unknown policy, unknown fields (named) or invalid values.
    """
    config_class = get_policy_class(name).config_class
    return config_class.from_dict({**data_placeholders(config_class), **fields})


def data_placeholders(config_class: type[PolicyConfig]) -> dict[str, Any]:
    """Values (1) for the data fields of ``config_class`` that have no default, until the data sets them."""
    return {
        f.name: 1
        for f in dataclasses.fields(config_class)
        if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        and f.name in config_class.data_fields
    }  # fmt: skip


def policy_class_for(config: PolicyConfig) -> type[Policy]:
    """The registered policy built from ``config`` (the one whose ``config_class`` is ``type(config)``).

    Raises:
        ValueError: No registered policy takes a config of this class.
    """
    config_class = type(config)
    modeling = config_class.__module__.replace(".configuration_", ".modeling_")
    if module_exists(modeling):
        importlib.import_module(modeling)  # defines (registers) the policy
    for cls in registered_policies().values():
        if cls.config_class is config_class:
            return cls
    raise ValueError(f"no registered policy takes a {config_class.__name__}")


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
