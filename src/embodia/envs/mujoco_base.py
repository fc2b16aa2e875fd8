"""A Gymnasium base class for MuJoCo environments whose scene is built procedurally with ``mujoco.MjSpec``.

Gymnasium's ``MujocoEnv`` loads one XML file at construction. embodia's worlds are generated per seed, so this
base compiles a scene from XML text (``spec.to_xml()``) whenever the subclass asks for a new one and keeps that
exact XML: an episode file stores it, and replays compile the identical model from it. Subclasses implement the
template methods ``_step_physics`` and ``_get_obs`` (as in Gymnasium's ``MujocoEnv``) and call
``_load_scene_xml`` from ``reset`` when the scene changes.

Rendering is offscreen (``mujoco.Renderer``), with MuJoCo's shadow map and multisampling switched off in the
scene (``<quality shadowsize="0" offsamples="0"/>``): on a software GL stack that is the difference between
~25 and ~600 frames/s.
"""

from __future__ import annotations

import atexit
import weakref
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from embodia.envs.actions import check_action

STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION
"""The MuJoCo state recorded per step in episode files: everything needed to continue integration bit-exactly."""


_BADQPOS = int(mujoco.mjtWarning.mjWARN_BADQPOS)
_BADQVEL = int(mujoco.mjtWarning.mjWARN_BADQVEL)
_BADQACC = int(mujoco.mjtWarning.mjWARN_BADQACC)

_LIVE_ENVS: weakref.WeakSet[MjSpecEnv] = weakref.WeakSet()
_EXIT_HOOK_REGISTERED = False


def _close_renderers_at_exit() -> None:
    # GL contexts freed by the garbage collector during interpreter teardown raise EGLError noise; free them
    # first. Registered when the first renderer exists, i.e. after MuJoCo's GL module registered its own
    # teardown, so (atexit being last-in first-out) this runs before the display is terminated.
    for env in list(_LIVE_ENVS):
        env.close_renderers()


MAX_RENDER_SIZE = 640
"""Side of the offscreen framebuffer every embodia scene allocates; renders may not exceed it."""


def check_max_steps(max_steps: Any) -> int:
    """Validates an env's own episode limit (an integer >= 1)."""
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps must be an integer >= 1, got {max_steps!r}")
    return max_steps


class SimulationUnstableError(RuntimeError):
    """Raised inside ``do_simulation`` when MuJoCo reports divergence (NaN/inf or a bad acceleration)."""


class MjSpecEnv(gym.Env):
    """Base for embodia's MuJoCo environments: compiled-from-XML model, frame skip, state I/O, rendering.

    Args:
        frame_skip: physics steps (``model.opt.timestep`` each) per environment step.
        render_mode: ``"rgb_array"``, ``"depth_array"`` or None.
        width: render width in pixels.
        height: render height in pixels.
        camera: name of the camera ``render()`` looks through.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array", "depth_array"], "render_fps": 10}
    REWARD_TERMS: tuple[str, ...] = ()
    """Names of the reward terms in ``info``; they sum (in this order) to the reward."""
    RECORD_INFOS: tuple[str, ...] = ()
    """Further per-step ``info`` scalars that episode files record (after the reward terms)."""
    is_mujoco: bool = True
    """Episodes record ``mj_state`` (:meth:`get_mj_state`) for exact replays."""
    HEADLINE_METRICS: tuple[tuple[str, str], ...] = (("success", "success"),)
    """The episode metrics a report leads with, as ``(key, column title)``."""

    def __init__(
        self,
        *,
        frame_skip: int,
        render_mode: str | None = None,
        width: int = 320,
        height: int = 240,
        camera: str | None = None,
    ) -> None:
        if frame_skip < 1:
            raise ValueError(f"frame_skip must be >= 1, got {frame_skip}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        if width < 1 or height < 1:
            raise ValueError(f"render size must be positive, got {width}x{height}")
        if max(width, height) > MAX_RENDER_SIZE:
            raise ValueError(f"render size is limited to {MAX_RENDER_SIZE}x{MAX_RENDER_SIZE}, got {width}x{height}")
        self.frame_skip = frame_skip
        self.render_mode = render_mode
        self.width = width
        self.height = height
        self.camera = camera
        self.model: mujoco.MjModel | None = None
        self.data: mujoco.MjData | None = None
        self.scene_xml: str | None = None
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self._state_size = 0
        _LIVE_ENVS.add(self)

    # ------------------------------------------------------------------ scene
    def _load_scene_xml(self, xml: str) -> None:
        """Compile ``xml`` into the active model; drops renderers bound to the previous model."""
        if xml == self.scene_xml and self.model is not None:
            mujoco.mj_resetData(self.model, self.data)
            return
        self.close_renderers()
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.data = mujoco.MjData(self.model)
        self.scene_xml = xml
        self._state_size = mujoco.mj_stateSize(self.model, STATE_SPEC)

    @property
    def dt(self) -> float:
        """Seconds of simulated time per environment step."""
        return float(self.model.opt.timestep) * self.frame_skip

    # ------------------------------------------------------------------ state
    def get_mj_state(self) -> np.ndarray:
        """Returns the full integration state, shape ``(S,)`` float64."""
        state = np.empty(self._state_size, dtype=np.float64)
        mujoco.mj_getState(self.model, self.data, state, STATE_SPEC)
        return state

    def set_mj_state(self, state: np.ndarray) -> None:
        """Restores a state from ``get_mj_state`` and recomputes derived quantities (``mj_forward``)."""
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (self._state_size,):
            raise ValueError(f"mj_state must have shape ({self._state_size},), got {state.shape}")
        mujoco.mj_setState(self.model, self.data, state, STATE_SPEC)
        mujoco.mj_forward(self.model, self.data)

    def do_simulation(self, ctrl: np.ndarray) -> None:
        """Applies ``ctrl`` (shape ``(nu,)``) and advances ``frame_skip`` physics steps.

        Raises:
            SimulationUnstableError: MuJoCo flagged a bad acceleration or the state became non-finite.
        """
        warnings_before = self._divergence_warnings()
        self.data.ctrl[:] = ctrl
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
        # MuJoCo resets the data itself on a bad qpos/qvel/qacc and only counts a warning: check the counters.
        diverged = self._divergence_warnings() > warnings_before
        if diverged or not (np.isfinite(self.data.qpos).all() and np.isfinite(self.data.qvel).all()):
            raise SimulationUnstableError(f"simulation diverged at t={self.data.time:.3f}s")

    def _divergence_warnings(self) -> int:
        w = self.data.warning
        return int(w[_BADQPOS].number) + int(w[_BADQVEL].number) + int(w[_BADQACC].number)

    # ------------------------------------------------------------------ the end of a step (template)
    def _get_obs(self) -> Any:
        """The observation of the current state."""
        raise NotImplementedError

    def _step_info(self) -> dict[str, Any]:
        """Per-step scalars added to ``info``."""
        raise NotImplementedError

    def episode_metrics(self, outcome: bool) -> dict[str, float]:
        """End-of-episode metrics; ``outcome`` is the env's end condition (success, or the agent's stop)."""
        raise NotImplementedError

    def env_kwargs(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this env with ``gymnasium.make`` (stored in episode files)."""
        raise NotImplementedError

    def _begin_step(self, action: Any, meaning: str) -> np.ndarray:
        """The common head of ``step``: refuse a step after the episode's end, then check and clip ``action``.

        Raises:
            RuntimeError: The episode has ended (call ``reset()``).
            ValueError: A malformed action (see :func:`embodia.envs.actions.check_action`).
        """
        if self._done:
            raise RuntimeError("the episode has ended; call reset() before step()")
        return check_action(action, self.action_space, meaning)

    def _end_step(
        self, terms: dict[str, float], info: dict[str, Any], terminated: bool, outcome: bool
    ) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """The common tail of ``step``.

        The reward is the sum of ``terms`` (in ``REWARD_TERMS`` order), the episode is truncated at
        ``self.max_steps``, and at its end ``info["metrics"]`` holds ``episode_metrics(outcome)`` and further
        steps are refused.
        """
        reward = sum(terms[k] for k in self.REWARD_TERMS)
        truncated = not terminated and self.steps >= self.max_steps
        obs = self._get_obs()
        self._last_obs = obs
        info.update(terms)
        info.update(self._step_info())
        if terminated or truncated:
            info["metrics"] = self.episode_metrics(outcome)
            self._done = True
        return obs, float(reward), terminated, truncated, info

    def _end_diverged(
        self, err: SimulationUnstableError, info: dict[str, Any]
    ) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Ends the episode after a divergence, never a crash.

        Returns the last good observation, zero reward, truncated, with ``info["sim_unstable"]`` and the metrics.
        """
        self.steps += 1
        info.update(dict.fromkeys(self.REWARD_TERMS, 0.0), sim_unstable=True, error=str(err))
        info["metrics"] = self.episode_metrics(False)
        self._done = True
        return self._last_obs, 0.0, False, True, info

    # ------------------------------------------------------------------ rendering
    def _renderer(self, width: int, height: int) -> mujoco.Renderer:
        global _EXIT_HOOK_REGISTERED
        key = (width, height)
        if key not in self._renderers:
            self._renderers[key] = mujoco.Renderer(self.model, height=height, width=width)
            if not _EXIT_HOOK_REGISTERED:
                atexit.register(_close_renderers_at_exit)
                _EXIT_HOOK_REGISTERED = True
        return self._renderers[key]

    def render_camera(self, camera: str | int, width: int, height: int, depth: bool = False) -> np.ndarray:
        """Renders the current state through ``camera``.

        Returns:
            ``(height, width, 3)`` uint8 RGB, or ``(height, width)`` float32 depth in metres if ``depth``.
        """
        renderer = self._renderer(width, height)
        if depth:
            renderer.enable_depth_rendering()
        else:
            renderer.disable_depth_rendering()
        renderer.update_scene(self.data, camera=camera)
        return renderer.render()

    def render(self) -> np.ndarray | None:
        """Renders according to ``render_mode`` through the env's ``camera``."""
        if self.render_mode is None:
            gym.logger.warn("render() called with render_mode=None; pass render_mode='rgb_array' to gym.make")
            return None
        camera = self.camera if self.camera is not None else -1
        return self.render_camera(camera, self.width, self.height, depth=self.render_mode == "depth_array")

    def close_renderers(self) -> None:
        """Frees the GL contexts of all renderers (they are bound to one model)."""
        for renderer in self._renderers.values():
            try:
                renderer.close()
            except Exception:
                pass
        self._renderers.clear()

    def close(self) -> None:
        """Releases rendering resources."""
        self.close_renderers()
        super().close()
