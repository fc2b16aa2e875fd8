"""The inner policy of an agent config (``AgentConfig.inner``, ``NavigatorConfig.inner``): a typed policy config.

An agent wraps a policy (EBT-Policy, Diffusion Policy, MLP) whose window fields (``obs_dim``, ``action_dim``,
``n_obs_steps``, ``horizon``, ``n_action_steps``) the agent decides; every other field is the inner config's. On
the command line it is a nested subcommand: ``embodia train policy:agent policy.inner:mlp --policy.inner.hidden-dims
32 32``. :class:`WrapsPolicy` stores it in checkpoints as ``{"policy": name, **fields}`` and reads the layout of
older checkpoints (an inner policy name ``policy`` and a JSON string ``policy_kwargs``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import tyro

from embodia.policies.base import PolicyConfig
from embodia.policies.diffusion.configuration_diffusion import DiffusionConfig
from embodia.policies.ebt.configuration_ebt import EBTConfig, EBTDSMConfig
from embodia.policies.factory import policy_class_for, policy_config
from embodia.policies.mlp.configuration_mlp import MLPConfig

__all__ = ["AnyInner", "WrapsPolicy"]

AnyInner = (
    Annotated[EBTConfig, tyro.conf.subcommand("ebt")]
    | Annotated[EBTDSMConfig, tyro.conf.subcommand("ebt-dsm")]
    | Annotated[DiffusionConfig, tyro.conf.subcommand("diffusion")]
    | Annotated[MLPConfig, tyro.conf.subcommand("mlp")]
)
"""An inner policy config (the command line names each by its policy)."""


class WrapsPolicy:
    """Mixin of a policy config with an inner policy config ``inner``: its name, checks and checkpoint layout."""

    inner: PolicyConfig
    inner_policies: ClassVar[tuple[str, ...]]
    """The policies allowed inside."""
    inner_defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    """Per inner policy, the fields this wrapper sets unless told otherwise (its defaults for them)."""

    @property
    def policy(self) -> str:
        """The inner policy's registry name."""
        return policy_class_for(self.inner).name

    def check_inner(self) -> None:
        """Raise ``ValueError`` unless ``inner`` is a config of one of :attr:`inner_policies`."""
        if not isinstance(self.inner, PolicyConfig):
            raise ValueError(f"inner must be a policy config, got {self.inner!r}")
        if self.policy not in self.inner_policies:
            raise ValueError(f"inner policy must be one of {', '.join(self.inner_policies)}; got {self.policy!r}")

    @classmethod
    def default_inner(cls, name: str) -> PolicyConfig:
        """The inner config of policy ``name`` with this wrapper's defaults (:attr:`inner_defaults`)."""
        return policy_config(name, **cls.inner_defaults.get(name, {}))

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain values, the inner config as ``{"policy": name, **fields}``."""
        out = dataclasses.asdict(self)
        out["inner"] = {"policy": self.policy, **self.inner.to_dict()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        """Build and validate a config from :meth:`to_dict` output, or from a checkpoint of the older layout.

        Raises:
            ValueError: Unknown or missing fields (named), or invalid values.
        """
        data = dict(data)
        if "policy" in data or "policy_kwargs" in data:  # checkpoints before typed inner configs
            name = data.pop("policy", "ebt")
            text = data.pop("policy_kwargs", "{}")
            try:
                fields = json.loads(text)
            except (TypeError, json.JSONDecodeError) as exc:
                raise ValueError(f"policy_kwargs must be a JSON object, got {text!r} ({exc})") from None
            if not isinstance(fields, dict):
                raise ValueError(f"policy_kwargs must be a JSON object, got {text!r}")
            data["inner"] = policy_config(name, **{**cls.inner_defaults.get(name, {}), **fields})
        elif isinstance(data.get("inner"), Mapping):
            fields = dict(data["inner"])
            if "policy" not in fields:
                raise ValueError("inner must name its policy: {'policy': NAME, ...}")
            data["inner"] = policy_config(fields.pop("policy"), **fields)
        return super().from_dict(data)  # type: ignore[misc]
