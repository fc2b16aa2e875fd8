"""The controller protocol: what :func:`~embodia.runtime.episode.run_episode` drives an episode with.

A controller is built from the env by a factory (``ControllerFactory``: picklable for Ray actors, e.g.
``functools.partial(policy_controller, path)``, ``make_expert`` or a registry entry of
:mod:`embodia.runtime.controller_registry`). The scripted experts, :class:`~embodia.runtime.policy_controller.
PolicyController` and the agents of :mod:`embodia.agents` are all controllers. A controller with a memory says so
by being a :class:`MemoryController` (it defines ``memory_snapshot``), and its episode files hold the snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

__all__ = ["Controller", "ControllerFactory", "MemoryController", "memory_snapshot"]


@runtime_checkable
class Controller(Protocol):
    """Drives one env, episode after episode."""

    def reset(self, seed: int | None = None) -> None:
        """Start an episode; called after ``env.reset(seed=seed)`` with the same seed (None: unseeded)."""

    def act(self, obs: Any) -> np.ndarray:
        """The action ``(Da,)`` for the env's observation ``obs`` (a Box array or a Dict of arrays)."""

    def info(self) -> dict[str, Any]:
        """JSON-serialisable figures of the current episode (recorded as the episode file's ``extra``)."""


@runtime_checkable
class MemoryController(Controller, Protocol):
    """A controller with a memory whose contents the episode files record."""

    def memory_snapshot(self) -> dict[str, np.ndarray] | None:
        """What the memory holds now (``Mem4NavMemory.view_snapshot`` layout); None when it has none."""


ControllerFactory = Callable[[gym.Env], Controller]
"""Builds a controller for an env (picklable when it goes to Ray actors)."""


def memory_snapshot(controller: Controller) -> dict[str, np.ndarray] | None:
    """The controller's memory snapshot; None for a controller without memory (not a :class:`MemoryController`)."""
    return controller.memory_snapshot() if isinstance(controller, MemoryController) else None
