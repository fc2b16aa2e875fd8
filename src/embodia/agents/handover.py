"""The hand-over protocol: another controller drives the first task phases while the agent watches, then the agent.

``UrbanNav-Return-v0`` has two phases: an outbound route, then "go back to the <landmark> you passed". To measure
what memory adds on the return, the scripted expert drives the outbound phase while the agent only ``observe``s
(so its memory is written exactly as if it had driven), and the agent acts from phase ``act_from_phase`` on. TC
and SPD (where the episode ends) then measure the agent's return; nDTW and SED score the whole path, the expert's
outbound leg included, so differences between agents in them come from the return leg and are diluted by the
shared outbound part. An agent trained with ``AgentConfig.act_from_phase`` is evaluated this way by
``embodia eval``.
"""

from __future__ import annotations

from typing import Any, Protocol

import gymnasium as gym
import numpy as np

__all__ = ["HandoverController", "Watcher", "handover_controller"]


class Watcher(Protocol):
    """An agent that can watch a step without acting (``MemoryAgent``, ``ModularAgent``, ``NavigatorAgent``)."""

    def reset(self, seed: int | None = None) -> None: ...  # noqa: D102
    def observe(self, obs: Any) -> Any: ...  # noqa: D102
    def act(self, obs: Any) -> np.ndarray: ...  # noqa: D102
    def info(self) -> dict[str, Any]: ...  # noqa: D102
    def memory_snapshot(self) -> dict[str, np.ndarray] | None: ...  # noqa: D102


class HandoverController:
    """Drives with ``driver`` before phase ``act_from_phase``, with ``agent`` from then on (module docstring).

    Args:
        env: The environment (UrbanNav: its unwrapped env counts task phases in ``phase_index``).
        driver: The controller of the early phases (e.g. the scripted expert).
        agent: The agent: it observes every step and acts from ``act_from_phase``.
        act_from_phase: First phase the agent drives (>= 1).
    """

    def __init__(self, env: gym.Env, driver: Any, agent: Watcher, act_from_phase: int) -> None:
        if not hasattr(env.unwrapped, "task_kind"):
            raise ValueError(f"the hand-over needs a phased task (UrbanNav); {type(env.unwrapped).__name__} has none")
        if isinstance(act_from_phase, bool) or not isinstance(act_from_phase, int) or act_from_phase < 1:
            raise ValueError(f"act_from_phase must be an integer >= 1, got {act_from_phase!r}")
        self.env, self.driver, self.agent, self.act_from_phase = env, driver, agent, act_from_phase
        self._handed_over_at: int | None = None
        self._steps = 0

    def reset(self, seed: int | None = None) -> None:
        """Start an episode (both controllers); call after ``env.reset``.

        Raises:
            ValueError: The env's task has no phase ``act_from_phase`` (the driver would drive the whole episode
                and its figures would be reported as the agent's).
        """
        task = getattr(self.env.unwrapped, "task", None)
        phases = 0 if task is None else len(task.phases)
        if phases <= self.act_from_phase:
            name = self.env.spec.id if self.env.spec is not None else type(self.env.unwrapped).__name__
            raise ValueError(
                f"this agent acts from task phase {self.act_from_phase}, but {name} has {phases} phase(s): evaluate "
                f"it on a task with more phases (UrbanNav-Return-v0)"
            )
        self.driver.reset(seed)
        self.agent.reset(seed)
        self._handed_over_at = None
        self._steps = 0

    def act(self, obs: Any) -> np.ndarray:
        """The driver's action (the agent observes) before the hand-over, the agent's after it."""
        self._steps += 1
        if self.env.unwrapped.phase_index < self.act_from_phase:
            self.agent.observe(obs)
            return np.asarray(self.driver.act(obs), dtype=np.float32)
        if self._handed_over_at is None:
            self._handed_over_at = self._steps - 1
        return self.agent.act(obs)

    def memory_snapshot(self) -> dict[str, np.ndarray] | None:
        """The agent's memory snapshot (None if it has none)."""
        return self.agent.memory_snapshot()

    def info(self) -> dict[str, Any]:
        """The agent's figures plus the step of the hand-over (-1: the episode ended before it)."""
        return {**self.agent.info(), "handover_step": -1 if self._handed_over_at is None else self._handed_over_at}


def handover_controller(agent: Watcher, env: gym.Env | None, act_from_phase: int) -> Any:
    """``agent`` as a rollout controller: itself, or under the hand-over protocol from ``act_from_phase`` on.

    With ``act_from_phase >= 1`` the env's scripted expert drives the earlier phases while the agent watches.

    Raises:
        ValueError: A hand-over without ``env``.
    """
    if act_from_phase == 0:
        return agent
    if env is None:
        raise ValueError(f"this agent acts from phase {act_from_phase}; the hand-over needs the env")
    from embodia.envs.experts import make_expert

    return HandoverController(env, make_expert(env), agent, act_from_phase)
