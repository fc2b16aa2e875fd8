"""Scripted demonstrators, looked up by environment id.

An expert has ``reset()``, ``act(obs) -> action`` and ``info() -> dict`` (metadata recorded with each episode,
e.g. which mode a multimodal expert chose). Experts are privileged: they may read ``env.unwrapped``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol

import gymnasium as gym
import numpy as np


class Expert(Protocol):
    """What the collector needs from a demonstrator."""

    def reset(self, seed: int | None = None) -> None:
        """Called after every ``env.reset`` with the episode's seed (for experts that draw, e.g. a mode)."""

    def act(self, obs: Any) -> np.ndarray:
        """Next action for observation ``obs``."""

    def info(self) -> dict[str, Any]:
        """JSON-serialisable metadata of the current episode."""


EXPERTS: dict[str, str] = {
    "embodia/UrbanNav-v0": "embodia.envs.nav.expert:UrbanNavExpert",
    "embodia/UrbanNav-Return-v0": "embodia.envs.nav.expert:UrbanNavExpert",
    "embodia/PushBlock-v0": "embodia.envs.manip.expert:PushExpert",
    "embodia/PushT-v0": "embodia.envs.manip.expert:PushExpert",
    "embodia/DetourReach-v0": "embodia.envs.detour.expert:DetourExpert",
    "embodia/DetourReach-Sided-v0": "embodia.envs.detour.expert:DetourExpert",
    "Pusher-v5": "embodia.envs.foreign.pusher_expert:PusherExpert",
}
"""Environment id -> ``"module:Class"`` of its expert (imported on first use)."""


SIDES = ("left", "right")
"""The two modes of the bimodal experts (which way around an obstacle)."""


def paired_side(seed: int | None) -> str:
    """The side a bimodal expert takes in the episode with ``seed``, block-randomised over seed pairs.

    Each episode is left or right with probability 1/2, and every pair ``(2k, 2k+1)`` holds one of each, so a
    collection over consecutive seeds is balanced. No seed: a fresh random draw.
    """
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31))
    flip = int(np.random.default_rng(seed // 2).integers(2))
    return SIDES[(seed + flip) % 2]


def make_expert(env: gym.Env) -> Expert:
    """Builds the expert registered for ``env.spec.id``.

    Raises:
        ValueError: no expert is registered for the environment.
    """
    env_id = env.spec.id if env.spec is not None else None
    if env_id not in EXPERTS:
        known = ", ".join(sorted(EXPERTS))
        raise ValueError(f"no scripted expert for environment {env_id!r}; experts exist for: {known}")
    module_name, class_name = EXPERTS[env_id].split(":")
    return getattr(importlib.import_module(module_name), class_name)(env)


def expert_factory() -> tuple[Callable[[gym.Env], Expert], str]:
    """The controller registry's ``"expert"`` entry: ``(make_expert, "scripted expert")`` (it takes no options)."""
    return make_expert, "scripted expert"
