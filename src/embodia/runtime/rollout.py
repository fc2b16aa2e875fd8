"""Run episodes of one environment with a controller and record them as episode files.

``RolloutWorker`` is a plain class (one env, one controller) so the same code runs in-process or inside a Ray
actor; its episode loop is :func:`~embodia.runtime.episode.run_episode`. Episode ``i`` of a collection uses seed
``seed + i``, so a collection is reproducible and can be split across workers without changing any episode.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from embodia.data.episodes import EpisodeRecorder, write_episode
from embodia.envs.contract import EmbodiaEnv, embodia_env
from embodia.envs.experts import make_expert
from embodia.envs.foreign.adapter import adapt
from embodia.envs.mujoco_base import MjSpecEnv
from embodia.runtime.controller import ControllerFactory, memory_snapshot
from embodia.runtime.episode import run_episode
from embodia.validation import check_number


@dataclass(frozen=True)
class EpisodeSpec:
    """Which episode to run: its index in the collection and its seed."""

    index: int
    seed: int


@dataclass
class EpisodeResult:
    """Outcome of one episode: where it was written and its metrics."""

    index: int
    seed: int
    num_steps: int
    metrics: dict[str, float]
    path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def episode_filename(index: int) -> str:
    """File name of episode ``index`` in a collection directory."""
    return f"episode_{index:06d}.h5"


def make_env(env_id: str, env_kwargs: Mapping[str, Any] | None = None) -> gym.Env:
    """``gymnasium.make(env_id, **env_kwargs)``; a foreign env gets embodia's contract through ``adapt``.

    embodia's own envs come as made; any other env (e.g. ``Pusher-v5``) is wrapped by
    :func:`~embodia.envs.foreign.adapter.adapt` (action checks, ``mj_state``, episode metrics with ``success``), so
    collection and evaluation see the same env. An unknown keyword argument is reported as a ``ValueError``.
    """
    kwargs = dict(env_kwargs or {})
    try:
        env = gym.make(env_id, **kwargs)
    except TypeError as err:  # an unknown or misspelt keyword argument
        raise ValueError(f"cannot make {env_id} with {kwargs}: {err}") from None
    return env if isinstance(env.unwrapped, MjSpecEnv) else adapt(env)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


class _Recording:
    """An :class:`~embodia.runtime.episode.EpisodeObserver` that records the episode and the env's MuJoCo states."""

    def __init__(self, env: EmbodiaEnv, record_infos: tuple[str, ...]) -> None:
        self.env = env
        self.recorder = EpisodeRecorder(record_infos=record_infos)
        self.instruction = ""

    def _state(self) -> np.ndarray | None:
        return self.env.get_mj_state() if self.env.is_mujoco else None

    def start(self, obs: Any) -> None:
        self.recorder.start(obs, self._state())
        self.instruction = obs.get("instruction", "") if isinstance(obs, dict) else ""

    def step(self, label: np.ndarray, obs: Any, reward: float, terminated: bool, truncated: bool, info: dict) -> None:
        self.recorder.add(label, obs, reward, terminated, truncated, info, self._state())


class RolloutWorker:
    """Runs episodes of ``env_id`` with a controller and writes one episode file each.

    Args:
        env_id: a registered Gymnasium id.
        env_kwargs: keyword arguments for ``gymnasium.make``.
        controller_fn: builds the controller from the env; default: the env's scripted expert.
        action_noise: > 0: noise injection while collecting demonstrations (DART, Laskey et al. 2017). The env
            executes ``clip(a + action_noise·(high − low)/2·ε)``, ε ~ N(0, I) drawn from the episode's seed, while
            the episode file records the controller's own action ``a`` as the label; the states and observations
            are those the perturbed actions led to. A policy cloned from such episodes has seen the expert recover
            from its own kind of errors. Needs a bounded ``Box`` action space.
        labeller_fn: Builds a labeller from the env (e.g. ``make_expert``): DAgger relabelling (Ross et al. 2011).
            The env executes the controller's action while the episode file records the labeller's action for the
            same state as the label; each episode's ``extra`` names the labeller's class (``labelled_by``). None: the
            controller's own actions are the labels.
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict[str, Any] | None = None,
        controller_fn: ControllerFactory | None = None,
        action_noise: float = 0.0,
        labeller_fn: ControllerFactory | None = None,
    ) -> None:
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})
        check_number("--action-noise", action_noise, strict=False)
        self.action_noise = float(action_noise)
        self.env = make_env(env_id, self.env_kwargs)
        space = self.env.action_space
        if self.action_noise > 0 and not (
            isinstance(space, gym.spaces.Box) and bool(np.all(np.isfinite(space.low) & np.isfinite(space.high)))
        ):
            self.env.close()
            raise ValueError(f"--action-noise needs a bounded Box action space; {env_id} has {space}")
        self.controller = (controller_fn or make_expert)(self.env)
        self.labeller = None if labeller_fn is None else labeller_fn(self.env)
        self._contract = embodia_env(self.env)
        self._record_infos = tuple(dict.fromkeys((*self._contract.REWARD_TERMS, *self._contract.RECORD_INFOS)))

    def run_episode(self, spec: EpisodeSpec, out_dir: str | os.PathLike | None = None) -> EpisodeResult:
        """Runs one episode; writes ``out_dir/episode_<index>.h5`` when ``out_dir`` is given."""
        recording = _Recording(self._contract, self._record_infos)
        run = run_episode(
            self.env, self.controller, spec.seed, action_noise=self.action_noise, labeller=self.labeller,
            observer=recording,
        )  # fmt: skip
        extra = _json_safe({**self.controller.info(), "sim_unstable": bool(run.info.get("sim_unstable", False))})
        if self.action_noise > 0:
            extra["action_noise"] = self.action_noise
        if self.labeller is not None:
            extra["labelled_by"] = type(self.labeller).__name__
        episode = recording.recorder.finish(
            env_id=self.env_id,
            seed=spec.seed,
            instruction=recording.instruction,
            scene_xml=self._contract.scene_xml,
            env_kwargs=_json_safe(self._contract.env_kwargs()),
            metrics=run.metrics,
            extra=extra,
            memory=memory_snapshot(self.controller),  # agents with memory: what it held at the end
        )
        path = None
        if out_dir is not None:
            path = str(write_episode(Path(out_dir) / episode_filename(spec.index), episode))
        return EpisodeResult(spec.index, spec.seed, episode.num_steps, run.metrics, path, extra)

    def run(self, specs: Iterable[EpisodeSpec], out_dir: str | os.PathLike | None = None) -> list[EpisodeResult]:
        """Runs several episodes in order."""
        return [self.run_episode(spec, out_dir) for spec in specs]

    def close(self) -> None:
        """Closes the environment."""
        self.env.close()
