"""The one episode loop: a controller drives an env from ``reset(seed)`` to the end of the episode.

:func:`run_episode` serves every caller that runs episodes: :class:`~embodia.runtime.rollout.RolloutWorker`
(collection, ``embodia eval``, DAgger rollouts, the demo; it records the episode through an
:class:`EpisodeObserver`) and :func:`~embodia.runtime.policy_eval.evaluate_policy` (metrics only). Options of
the loop: DART action noise (the env executes a perturbed action, the observer sees the controller's) and a
labeller (DAgger: the observer sees the labeller's action for each visited state).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from embodia.envs.contract import embodia_env
from embodia.runtime.controller import Controller

__all__ = ["EpisodeObserver", "EpisodeRun", "action_noise_rng", "run_episode"]


class EpisodeObserver(Protocol):
    """Sees an episode as it runs (e.g. an episode recorder)."""

    def start(self, obs: Any) -> None:
        """The first observation, after the env, the controller and the labeller were reset."""

    def step(self, label: np.ndarray, obs: Any, reward: float, terminated: bool, truncated: bool, info: dict) -> None:
        """One step: the action label ``(Da,)`` float32 and what ``env.step`` returned."""


@dataclass
class EpisodeRun:
    """The outcome of one episode.

    Attributes:
        steps: Env steps taken.
        metrics: The env's episode metrics as floats, with ``return`` (the summed reward) unless the env gives it.
        info: The last step's ``info``.
    """

    steps: int
    metrics: dict[str, float]
    info: dict[str, Any]


def action_noise_rng(seed: int) -> np.random.Generator:
    """The generator of episode ``seed``'s DART noise (its own stream: the env's and expert's draws are untouched)."""
    return np.random.default_rng([seed, 0xDA27])


def run_episode(
    env: gym.Env,
    controller: Controller,
    seed: int,
    *,
    action_noise: float = 0.0,
    labeller: Controller | None = None,
    observer: EpisodeObserver | None = None,
) -> EpisodeRun:
    """Run one episode of ``env`` (made by ``make_env``) with ``controller`` until it terminates or is truncated.

    ``env.reset(seed=seed)``, ``env.action_space.seed(seed)``, then ``controller.reset(seed)`` (and the
    labeller's), then ``controller.act(obs)`` -> ``env.step`` per step.

    Args:
        env: The env.
        controller: Drives the env.
        seed: The episode's seed.
        action_noise: > 0: DART noise injection: the env executes ``clip(a + action_noise·(high − low)/2·ε)``,
            ε ~ N(0, I) from :func:`action_noise_rng` of ``seed``, while the observer sees the controller's action
            ``a`` as the label. Needs a bounded ``Box`` action space.
        labeller: DAgger relabelling: the observer sees the labeller's action for each visited state as the
            label, while the controller's action is executed.
        observer: Sees the first observation and every step (None: metrics only).

    Returns:
        Steps, metrics and the last ``info``. An episode cut by a TimeLimit outside the env (no ``metrics`` in
        its last ``info``) gets the env's ``episode_metrics(terminated)``.
    """
    space = env.action_space
    noise_rng = action_noise_rng(seed)
    half_range = (space.high - space.low) / 2 if action_noise > 0 else None
    obs, info = env.reset(seed=seed)
    space.seed(seed)
    controller.reset(seed)
    if labeller is not None:
        labeller.reset(seed)
    if observer is not None:
        observer.start(obs)
    steps, total_reward = 0, 0.0
    terminated = truncated = False
    while not (terminated or truncated):
        label = None if labeller is None else np.asarray(labeller.act(obs), dtype=np.float32)
        action = np.asarray(controller.act(obs), dtype=np.float32)
        executed = action
        if half_range is not None:  # DART: execute a perturbed action, label the controller's
            noise = action_noise * half_range * noise_rng.standard_normal(action.shape)
            executed = np.clip(action + noise, space.low, space.high).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(executed)
        steps += 1
        total_reward += float(reward)
        if observer is not None:
            observer.step(action if label is None else label, obs, reward, terminated, truncated, info)
    metrics = info.get("metrics")
    if metrics is None:  # cut by a TimeLimit outside the env
        metrics = embodia_env(env).episode_metrics(bool(terminated))
    metrics = {k: float(v) for k, v in metrics.items()}
    metrics.setdefault("return", total_reward)
    return EpisodeRun(steps, metrics, info)
