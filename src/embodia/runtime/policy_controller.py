"""A trained policy as a rollout controller, so ``RolloutWorker`` and the Ray pool can record its episodes.

A controller (:class:`~embodia.runtime.controller.Controller`: ``reset(seed)``, ``act(obs)``, ``info()``; the
scripted experts are controllers too) is what :func:`~embodia.runtime.episode.run_episode` drives episodes with.
:class:`PolicyController` feeds a policy the
observation windows it was trained on (:class:`~embodia.runtime.policy_eval.ObsWindow`) and executes its action
chunks in closed loop (``Policy.select_action``). ``functools.partial(policy_controller, path)`` is a picklable
controller factory for Ray actors: each actor loads the checkpoint itself.
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from embodia.policies.base import Policy
from embodia.policies.plan_stats import PlanStats
from embodia.runtime.controller import Controller
from embodia.runtime.obs_window import ObsWindow

__all__ = ["PolicyController", "policy_controller"]


class PolicyController:
    """Closed-loop control with a policy (eval mode, no gradients, one re-plan every ``n_action_steps``).

    Each episode seeds torch's global RNG with the episode seed, so stochastic policies (diffusion, EBT) give the
    same episode for the same seed in any process and in any order.

    Args:
        policy: A policy with a fitted normaliser.

    Attributes:
        policy: The policy.
        stats: The episode's latency and planning figures.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy.eval()
        self.window = ObsWindow.for_policy(policy)
        self.stats = PlanStats()
        self._started = False

    def reset(self, seed: int | None = None) -> None:
        """Start an episode (seeds torch with ``seed`` when given)."""
        if seed is not None:
            torch.manual_seed(seed)
        self.policy.reset()
        self._started = False
        self.stats.reset()

    def act(self, obs: Any) -> np.ndarray:
        """The next action ``(Da,)`` float32 for observation ``obs`` (the env's observation, Dict or Box)."""
        with self.stats.acting():
            if self._started:
                self.window.push(obs)
            else:
                self.window.reset(obs)
                self._started = True
            return self.stats.select(self.policy, self.window.batch())  # (Da,)

    def info(self) -> dict[str, Any]:
        """Per-episode figures of the controller.

        Returns:
            Policy name, mean latency per action (ms, over all ``act`` calls: re-plans amortised; absent when
            ``act`` was never called) and the plans (:meth:`PlanStats.plan_figures
            <embodia.policies.plan_stats.PlanStats.plan_figures>`: re-plans, mean/max plan latency (ms), network
            evaluations per plan and, for energy-based policies, every chunk's final energy and their mean and max).
        """
        return {"policy": self.policy.name, **self.stats.act_figures(), **self.stats.plan_figures()}


def policy_controller(checkpoint: str | os.PathLike, env: gym.Env | None = None) -> Controller:
    """Load a policy checkpoint (``Policy.load``) as a controller for ``env``.

    A plain policy becomes a :class:`PolicyController`. A policy that runs its own controller (an agent,
    ``embodia.agents``: its ``Policy.rollout_controller(env)`` returns one) builds it; an agent trained to act from a
    later task phase runs under the hand-over protocol, the env's scripted expert driving the earlier phases, which
    needs ``env``.

    Raises:
        CheckpointError: Missing, corrupt or foreign checkpoint.
        ValueError: A hand-over agent without ``env``.
    """
    torch.set_num_threads(1)
    policy = Policy.load(checkpoint)
    try:
        controller = policy.rollout_controller(env)
    except ValueError as exc:
        raise ValueError(f"{checkpoint}: {exc}") from None
    return PolicyController(policy) if controller is None else controller
