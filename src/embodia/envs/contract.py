"""What the runtime asks of an env to run and record its episodes, in one place.

Every env made by ``embodia.runtime.rollout.make_env`` keeps embodia's env contract: one of embodia's own envs
(:class:`~embodia.envs.mujoco_base.MjSpecEnv`, reached through Gymnasium's wrappers as ``env.unwrapped``) or a
foreign env wrapped by :func:`~embodia.envs.foreign.adapter.adapt` (the outermost wrapper). :func:`embodia_env`
returns the object that implements the contract (:class:`EmbodiaEnv`), so callers ask it instead of probing
attributes.
"""

from __future__ import annotations

from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from embodia.envs.foreign.adapter import EmbodiaAdapter
from embodia.envs.mujoco_base import MjSpecEnv

__all__ = ["EmbodiaEnv", "embodia_env"]


class EmbodiaEnv(Protocol):
    """The env contract an episode recorder and runner rely on."""

    REWARD_TERMS: tuple[str, ...]
    """Names of the reward terms in ``info``; they sum (in this order) to the reward."""
    RECORD_INFOS: tuple[str, ...]
    """Further per-step ``info`` scalars recorded in episode files."""

    @property
    def is_mujoco(self) -> bool:
        """Whether the env simulates with MuJoCo, so that :meth:`get_mj_state` gives its state."""

    @property
    def scene_xml(self) -> str | None:
        """The current scene's MJCF, or None when unknown."""

    def get_mj_state(self) -> np.ndarray:
        """Full integration state ``(S,)`` float64 (MuJoCo envs only)."""

    def env_kwargs(self) -> dict[str, Any]:
        """The keyword arguments that rebuild the env with ``gymnasium.make``."""

    def episode_metrics(self, outcome: bool) -> dict[str, float]:
        """The episode's metrics so far; ``outcome`` is its end condition (``terminated``)."""


def embodia_env(env: gym.Env) -> EmbodiaEnv:
    """The object of ``env`` that keeps embodia's env contract (the module docstring).

    Raises:
        ValueError: ``env`` is neither one of embodia's envs nor adapted (made without ``make_env``).
    """
    if isinstance(env, EmbodiaAdapter):
        return env
    if isinstance(env.unwrapped, MjSpecEnv):
        return env.unwrapped
    name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
    raise ValueError(f"{name} does not keep embodia's env contract; make it with embodia.runtime.rollout.make_env")
