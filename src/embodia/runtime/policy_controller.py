"""A trained policy as a rollout controller, so ``RolloutWorker`` and the Ray pool can record its episodes.

A controller is what :class:`~embodia.runtime.rollout.RolloutWorker` drives episodes with (``reset(seed)``,
``act(obs)``, ``info()``; the scripted experts are controllers too). :class:`PolicyController` feeds a policy the
observation windows it was trained on (:class:`~embodia.runtime.policy_eval.ObsWindow`) and executes its action
chunks in closed loop (``Policy.select_action``). ``functools.partial(policy_controller, path)`` is a picklable
controller factory for Ray actors: each actor loads the checkpoint itself.
"""

from __future__ import annotations

import os
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from embodia.policies.base import Policy
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
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy.eval()
        self.window = ObsWindow.for_policy(policy)
        self._started = False
        self._plan_ms: list[float] = []
        self._nfe: list[float] = []
        self._energy: list[float] = []
        self._act_ms: list[float] = []

    def reset(self, seed: int | None = None) -> None:
        """Start an episode (seeds torch with ``seed`` when given)."""
        if seed is not None:
            torch.manual_seed(seed)
        self.policy.reset()
        self._started = False
        self._plan_ms, self._nfe, self._energy, self._act_ms = [], [], [], []

    def act(self, obs: Any) -> np.ndarray:
        """The next action ``(Da,)`` float32 for observation ``obs`` (the env's observation, Dict or Box)."""
        act_start = time.perf_counter()
        if self._started:
            self.window.push(obs)
        else:
            self.window.reset(obs)
            self._started = True
        replans = len(self.policy._action_queue) == 0
        start = time.perf_counter()
        with torch.no_grad():
            action = self.policy.select_action(self.window.batch())[0].cpu().numpy().astype(np.float32)  # (Da,)
        if replans:
            self._plan_ms.append(1e3 * (time.perf_counter() - start))
            last_nfe = getattr(self.policy, "last_nfe", None)
            self._nfe.append(float(last_nfe.float().mean()) if isinstance(last_nfe, torch.Tensor) else 1.0)
            last_energy = getattr(self.policy, "last_energy", None)  # energy-based policies: final chunk energy
            if isinstance(last_energy, torch.Tensor):
                self._energy.append(float(last_energy.float().mean()))
        self._act_ms.append(1e3 * (time.perf_counter() - act_start))
        return action

    def info(self) -> dict[str, Any]:
        """Per-episode figures of the controller.

        Returns:
            Policy name, re-plans, mean/max plan latency (ms), mean latency per action (ms, over all ``act`` calls:
            re-plans amortised; absent when ``act`` was never called), network evaluations per plan and, for
            energy-based policies (a ``last_energy`` attribute), ``energies``: the final energy of every chunk
            in order (an uncertainty signal: higher where the model is less sure) and their mean and max.
        """
        latency = {"act_ms_mean": float(np.mean(self._act_ms))} if self._act_ms else {}  # absent: never acted
        return {
            "policy": self.policy.name,
            **latency,
            "plans": len(self._plan_ms),
            "plan_ms_mean": float(np.mean(self._plan_ms)) if self._plan_ms else 0.0,
            "plan_ms_max": float(np.max(self._plan_ms)) if self._plan_ms else 0.0,
            "nfe_mean": float(np.mean(self._nfe)) if self._nfe else 0.0,
            **(
                {
                    "energies": list(self._energy),
                    "energy_mean": float(np.mean(self._energy)),
                    "energy_max": float(np.max(self._energy)),
                }
                if self._energy
                else {}
            ),
        }


def policy_controller(checkpoint: str | os.PathLike, env: gym.Env | None = None) -> Any:
    """Load a policy checkpoint (``Policy.load``) as a controller for ``env``.

    A plain policy becomes a :class:`PolicyController`. A policy that runs its own controller (an agent,
    ``embodia.agents``: it defines ``rollout_controller(env)``) builds it; an agent trained to act from a later task
    phase runs under the hand-over protocol, the env's scripted expert driving the earlier phases, which needs
    ``env``.

    Raises:
        CheckpointError: Missing, corrupt or foreign checkpoint.
        ValueError: A hand-over agent without ``env``.
    """
    torch.set_num_threads(1)
    policy = Policy.load(checkpoint)
    build = getattr(policy, "rollout_controller", None)
    if build is None:
        return PolicyController(policy)
    try:
        return build(env)
    except ValueError as exc:
        raise ValueError(f"{checkpoint}: {exc}") from None
