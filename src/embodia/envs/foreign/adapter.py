"""A bridge for foreign Gymnasium environments to embodia's rollout, recording, training and evaluation tools.

``adapt(env)`` takes any env with a ``Box`` action space and a ``Box`` or flat ``Dict`` observation and gives it
the contract embodia's own envs keep:

- actions are checked (NaN, inf or a wrong shape raise ``ValueError``) and clipped to the action bounds;
- a MuJoCo-based env (``env.unwrapped.model``/``.data``) exposes ``get_mj_state``/``set_mj_state`` and its scene
  XML, so episodes record ``mj_state`` for exact replays; a diverging simulation (MuJoCo's bad qpos/qvel/qacc
  warnings, or a non-finite observation) ends the episode as truncated with ``info["sim_unstable"] = True``;
- at episode end ``info["metrics"]`` holds the return, the length and, with a task profile, task metrics such
  as ``success`` (profiles for known envs live in ``FOREIGN_TASKS``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from embodia.envs.actions import check_action

MetricsFn = Callable[[gym.Env], dict[str, float]]


@dataclass(frozen=True)
class ForeignTask:
    """What embodia knows about a foreign env: its episode metrics (with ``success``) and reward terms."""

    metrics_fn: MetricsFn | None = None
    reward_terms: tuple[str, ...] = field(default_factory=tuple)


def _pusher_metrics(env: gym.Env) -> dict[str, float]:
    """Pusher-v5: success when the object's centre ends within 5 cm (one object radius) of the goal's centre."""
    u = env.unwrapped
    distance = float(np.linalg.norm(u.get_body_com("object")[:2] - u.get_body_com("goal")[:2]))
    return {"success": float(distance <= 0.05), "object_goal_distance": distance}


FOREIGN_TASKS: dict[str, ForeignTask] = {
    "Pusher-v5": ForeignTask(_pusher_metrics, ("reward_dist", "reward_ctrl", "reward_near")),
}
"""Task profiles of foreign env ids (used by ``adapt`` when the env's spec id matches)."""


def _check_observation_space(space: spaces.Space) -> None:
    if isinstance(space, spaces.Box):
        return
    if isinstance(space, spaces.Dict):
        for key, sub in space.spaces.items():
            if not isinstance(sub, spaces.Box | spaces.Text):
                raise ValueError(f"adapt() supports Box or flat Dict[Box | Text] observations; key {key!r} is {sub}")
        return
    raise ValueError(f"adapt() supports Box or flat Dict observation spaces, got {space}")


class EmbodiaAdapter(gym.Wrapper):
    """Wraps a foreign Gymnasium env in embodia's env contract (see the module docstring).

    Args:
        env: the env (usually from ``gymnasium.make``, with its TimeLimit).
        task: metrics and reward terms; default: ``FOREIGN_TASKS[env.spec.id]`` if present.

    Raises:
        ValueError: the action space is not a ``Box`` or the observation space is not ``Box``/flat ``Dict``.
    """

    RECORD_INFOS: tuple[str, ...] = ()
    """Per-step ``info`` scalars recorded besides the reward terms: none."""

    def __init__(self, env: gym.Env, task: ForeignTask | None = None) -> None:
        if not isinstance(env.action_space, spaces.Box):
            raise ValueError(f"adapt() needs a Box action space, got {env.action_space}")
        _check_observation_space(env.observation_space)
        super().__init__(env)
        env_id = env.spec.id if env.spec is not None else None
        self.task = task or FOREIGN_TASKS.get(env_id, ForeignTask())
        self.REWARD_TERMS = self.task.reward_terms
        unwrapped = env.unwrapped
        self._mujoco = hasattr(unwrapped, "model") and hasattr(unwrapped, "data")
        self._return = 0.0
        self._length = 0
        self._last_obs: Any = None
        self._done = True  # until reset()
        if self._mujoco:
            import mujoco

            self._mj = mujoco
            self._state_spec = mujoco.mjtState.mjSTATE_INTEGRATION

    # ------------------------------------------------------------------ MuJoCo state
    @property
    def is_mujoco(self) -> bool:
        """Whether the wrapped env simulates with MuJoCo (and so records ``mj_state``)."""
        return self._mujoco

    def get_mj_state(self) -> np.ndarray:
        """Full integration state ``(S,)`` float64 of a MuJoCo-based env."""
        if not self._mujoco:
            raise AttributeError(f"{self.env.spec.id if self.env.spec else self.env} is not MuJoCo-based")
        m, d = self.env.unwrapped.model, self.env.unwrapped.data
        state = np.empty(self._mj.mj_stateSize(m, self._state_spec), dtype=np.float64)
        self._mj.mj_getState(m, d, state, self._state_spec)
        return state

    def set_mj_state(self, state: np.ndarray) -> None:
        """Restores a state from ``get_mj_state`` (and runs ``mj_forward``)."""
        m, d = self.env.unwrapped.model, self.env.unwrapped.data
        state = np.asarray(state, dtype=np.float64)
        size = self._mj.mj_stateSize(m, self._state_spec)
        if state.shape != (size,):
            raise ValueError(f"mj_state must have shape ({size},), got {state.shape}")
        self._mj.mj_setState(m, d, state, self._state_spec)
        self._mj.mj_forward(m, d)

    @property
    def scene_xml(self) -> str | None:
        """The MuJoCo model's XML (from Gymnasium's ``MujocoEnv.fullpath``), or None when unknown."""
        path = getattr(self.env.unwrapped, "fullpath", None)
        return Path(path).read_text() if path and Path(path).is_file() else None

    def _divergence_warnings(self) -> int:
        w = self.env.unwrapped.data.warning
        mj = self._mj.mjtWarning
        return sum(int(w[int(k)].number) for k in (mj.mjWARN_BADQPOS, mj.mjWARN_BADQVEL, mj.mjWARN_BADQACC))

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        """Resets the wrapped env and the episode bookkeeping."""
        obs, info = self.env.reset(seed=seed, options=options)
        if not _finite(obs):
            name = self.env.spec.id if self.env.spec else self.env
            raise ValueError(f"{name}: reset returned a non-finite observation")
        self._return, self._length, self._last_obs, self._done = 0.0, 0, obs, False
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        """Checks and clips the action, steps, flags divergence, and adds ``metrics`` at episode end."""
        if self._done:
            raise RuntimeError("the episode has ended; call reset() before step()")
        act = check_action(action, self.action_space).astype(self.action_space.dtype)
        before = self._divergence_warnings() if self._mujoco else 0
        obs, reward, terminated, truncated, info = self.env.step(act)
        info = dict(info)
        unstable = (self._mujoco and self._divergence_warnings() > before) or not _finite(obs)
        info["sim_unstable"] = bool(unstable)
        if unstable:
            obs, reward, terminated, truncated = self._last_obs, 0.0, False, True
        self._last_obs = obs
        self._return += float(reward)
        self._length += 1
        if terminated or truncated:
            info["metrics"] = self.episode_metrics()
            self._done = True
        return obs, float(reward), bool(terminated), bool(truncated), info

    def episode_metrics(self, outcome: bool = False) -> dict[str, float]:
        """``return``, ``length`` and the task profile's metrics for the episode so far.

        Args:
            outcome: The end condition (the contract of embodia's envs); unused: the task profile decides success.
        """
        metrics = {"return": self._return, "length": float(self._length)}
        if self.task.metrics_fn is not None:
            metrics.update(self.task.metrics_fn(self.env))
        return metrics

    def env_kwargs(self) -> dict[str, Any]:
        """The kwargs the env was made with (stored in episode files)."""
        spec = self.env.spec
        return dict(spec.kwargs) if spec is not None else {}


def _finite(obs: Any) -> bool:
    if isinstance(obs, dict):
        return all(_finite(v) for v in obs.values() if not isinstance(v, str))
    return bool(np.isfinite(np.asarray(obs, dtype=np.float64)).all())


def adapt(env: gym.Env, task: ForeignTask | None = None) -> EmbodiaAdapter:
    """Wraps a foreign Gymnasium env for embodia's tools (see ``EmbodiaAdapter``)."""
    return EmbodiaAdapter(env, task)
