"""Table-top pushing: ``embodia/PushBlock-v0`` (a square block to a goal pose) and ``embodia/PushT-v0`` (a T).

Action ``Box(-1, 1, (2,))``: the pusher's velocity in the table plane, times ``TableConfig.max_speed`` (0.25
m/s); velocity actuators track it. Out-of-range values are clipped; NaN, inf or a wrong shape raise
``ValueError``. Control runs at 10 Hz (50 physics steps of 2 ms).

Observation ``Dict``: ``state`` ``(10,)`` float32 = pusher ``x, y``; block ``x, y, sin θ, cos θ``; goal ``x, y,
sin θ, cos θ`` (metres, table frame); with ``rgb=True`` also ``rgb``, a ``(64, 64, 3)`` uint8 top-camera image.

PushBlock succeeds when the block is within 2 cm and 10° of the goal (orientation modulo the square's 90°
symmetry) for 5 consecutive steps. PushT succeeds when the block covers >= 95 % of the goal T's area (Push-T's
measure). Reward = ``reward_progress`` (decrease of the task error) + ``reward_success`` (+1 on success); the
terms are in ``info``. At episode end ``info["metrics"]`` holds success, final position and orientation error,
coverage, max coverage, pusher and block path lengths.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import mujoco
import numpy as np
from gymnasium import spaces
from gymnasium.utils import EzPickle

from embodia.envs.configs import as_config
from embodia.envs.manip.scene import BLOCK_BODY, GOAL_BODY, PUSHER_GEOM, TOP_CAMERA, TableConfig, build_push_spec
from embodia.envs.manip.shapes import BlockShape, box_shape, coverage, tee_shape
from embodia.envs.mujoco_base import MjSpecEnv, SimulationUnstableError, check_max_steps


def _wrap(angle: float, period: float = 2 * np.pi) -> float:
    return float((angle + period / 2) % period - period / 2)


@dataclass
class PushOptions:
    """The pushing tasks' options (PushBlock-v0, PushT-v0); a field left at None: the env id's value.

    ``table`` defaults to ``TableConfig``'s defaults; only its fields set to something else are passed (see
    :mod:`embodia.envs.options`).
    """

    FAMILY: ClassVar[str] = "push"

    table: TableConfig = field(default_factory=TableConfig)
    """The table's physical parameters."""
    rgb: bool | None = None
    """Add a top-camera rgb image to the observation (default False)."""
    rgb_size: int | None = None
    """Side of that image, pixels (default 64)."""
    random_goal: bool | None = None
    """Sample the goal pose per episode (default: the task's, True for PushBlock, False for PushT)."""
    max_steps: int | None = None
    """Episode step limit (default 300)."""


class PushEnv(MjSpecEnv, EzPickle):
    """Base of the pushing tasks (see the module docstring). Subclasses set the shape and the success test.

    Args:
        table: ``TableConfig`` or dict of its fields.
        rgb: add a top-camera ``rgb`` image to the observation.
        rgb_size: side of that image, pixels.
        random_goal: sample the goal pose per episode (otherwise the fixed ``DEFAULT_GOAL``); None: the task's
            default (``RANDOM_GOAL``).
        max_steps: truncation limit (metrics are in ``info`` when it hits).
        render_mode: ``"rgb_array"``, ``"depth_array"`` or None.
        width: ``render()`` width.
        height: ``render()`` height.
    """

    metadata = {"render_modes": ["rgb_array", "depth_array"], "render_fps": 10}
    OPTIONS: ClassVar[type] = PushOptions
    """The typed form of the constructor's kwargs (``embodia collect ... env:push``)."""
    REWARD_TERMS = ("reward_progress", "reward_success")
    RECORD_INFOS = ("position_error", "orientation_error_deg", "coverage", "at_goal")
    """Per-step ``info`` scalars that episode files keep (besides the reward terms)."""
    FRAME_SKIP = 50
    HOLD_STEPS = 1
    DEFAULT_GOAL = np.array([0.0, 0.0, np.pi / 4])
    RANDOM_GOAL = False

    def __init__(
        self,
        table: TableConfig | dict | None = None,
        rgb: bool = False,
        rgb_size: int = 64,
        random_goal: bool | None = None,
        max_steps: int = 300,
        render_mode: str | None = None,
        width: int = 240,
        height: int = 240,
    ) -> None:
        EzPickle.__init__(self, table, rgb, rgb_size, random_goal, max_steps, render_mode, width, height)
        super().__init__(
            frame_skip=self.FRAME_SKIP, render_mode=render_mode, width=width, height=height, camera=TOP_CAMERA
        )
        check_max_steps(max_steps)
        if not 8 <= rgb_size <= 640:
            raise ValueError(f"rgb_size must be in [8, 640], got {rgb_size}")
        self.table = as_config(TableConfig, table, "table")
        self.shape: BlockShape = self.make_shape()
        self.rgb = bool(rgb)
        self.rgb_size = int(rgb_size)
        self.random_goal = self.RANDOM_GOAL if random_goal is None else bool(random_goal)
        self.max_steps = int(max_steps)
        self._coverage_key: tuple[bytes, bytes] | None = None
        self._coverage_value = 0.0

        bound = self.table.half_extent + 0.05
        low = np.array([-bound] * 4 + [-1, -1] + [-bound] * 2 + [-1, -1], dtype=np.float32)
        obs = {"state": spaces.Box(low, -low, dtype=np.float32)}
        if self.rgb:
            obs["rgb"] = spaces.Box(0, 255, shape=(self.rgb_size, self.rgb_size, 3), dtype=np.uint8)
        self.observation_space = spaces.Dict(obs)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)

        self._load_scene_xml(build_push_spec(self.shape, self.table).to_xml())
        m = self.model
        self._block_qpos = m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, "block_x")]
        self._pusher_qpos = m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, "pusher_x")]
        self._goal_mocap = m.body_mocapid[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, GOAL_BODY)]
        self._block_body = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, BLOCK_BODY)
        self._pusher_geom = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, PUSHER_GEOM)
        self.goal = self.DEFAULT_GOAL.copy()
        self._done = True  # until reset()

    # ------------------------------------------------------------------ subclass hooks
    @classmethod
    def make_shape(cls) -> BlockShape:
        """The block's shape."""
        raise NotImplementedError

    def task_error(self) -> float:
        """Scalar error whose decrease is the progress reward."""
        raise NotImplementedError

    def at_goal(self) -> bool:
        """Whether the block is at the goal now (success needs ``HOLD_STEPS`` consecutive steps of it)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ state access
    def block_pose(self) -> np.ndarray:
        """``(3,)`` block ``x, y, theta`` (theta wrapped to [-pi, pi))."""
        x, y, theta = self.data.qpos[self._block_qpos : self._block_qpos + 3]
        return np.array([x, y, _wrap(theta)])

    def pusher_position(self) -> np.ndarray:
        """``(2,)`` pusher ``x, y``."""
        return self.data.qpos[self._pusher_qpos : self._pusher_qpos + 2].copy()

    def position_error(self) -> float:
        """Distance from the block's centre of mass to the goal's, m."""
        return float(np.linalg.norm(self.block_pose()[:2] - self.goal[:2]))

    def orientation_error(self) -> float:
        """Absolute orientation error, radians, modulo the shape's symmetry."""
        return abs(_wrap(self.block_pose()[2] - self.goal[2], self.shape.symmetry))

    def coverage(self) -> float:
        """Fraction of the goal's area covered by the block (cached per block and goal pose)."""
        key = (self.data.qpos[self._block_qpos : self._block_qpos + 3].tobytes(), self.goal.tobytes())
        if key != self._coverage_key:
            self._coverage_key = key
            self._coverage_value = coverage(self.shape, self.block_pose(), self.goal)
        return self._coverage_value

    # ------------------------------------------------------------------ gym API
    def _sample_poses(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = self.np_random
        goal = self.DEFAULT_GOAL.copy()
        if self.random_goal:
            goal = np.array([*rng.uniform(-0.12, 0.12, size=2), rng.uniform(-np.pi, np.pi)])
        limit = self.table.half_extent - self.shape.radius - 0.03
        while True:
            block = np.array([*rng.uniform(-limit, limit, size=2), rng.uniform(-np.pi, np.pi)])
            if 0.08 <= np.linalg.norm(block[:2] - goal[:2]) <= 0.22:
                break
        pusher = self._sample_pusher(block, goal)
        return goal, block, pusher

    def _sample_pusher(self, block: np.ndarray, goal: np.ndarray) -> np.ndarray:
        rng = self.np_random
        limit = self.table.half_extent - self.table.pusher_radius - 0.01
        clearance = self.shape.radius + self.table.pusher_radius + 0.01
        while True:
            pusher = rng.uniform(-limit, limit, size=2)
            if np.linalg.norm(pusher - block[:2]) >= clearance:
                return pusher

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Samples the block, pusher and (optionally) goal poses from ``self.np_random``."""
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        self.goal, block, pusher = self._sample_poses()
        self.data.qpos[self._block_qpos : self._block_qpos + 3] = block
        self.data.qpos[self._pusher_qpos : self._pusher_qpos + 2] = pusher
        self.data.mocap_pos[self._goal_mocap] = [self.goal[0], self.goal[1], self.model.body_pos[self._block_body][2]]
        quat = np.zeros(4)
        mujoco.mju_axisAngle2Quat(quat, np.array([0.0, 0.0, 1.0]), self.goal[2])
        self.data.mocap_quat[self._goal_mocap] = quat
        mujoco.mj_forward(self.model, self.data)
        self.steps = 0
        self._done = False
        self._hold = 0
        self._error = self.task_error()
        self._max_coverage = self.coverage()
        self._pusher_path = 0.0
        self._block_path = 0.0
        self._last_obs = self._get_obs()
        return self._last_obs, self._step_info()

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        """Advances 0.1 s with the pusher velocity ``action`` (see the module docstring)."""
        act = self._begin_step(action, "[vx, vy]")
        pusher_before, block_before = self.pusher_position(), self.block_pose()[:2]
        info: dict[str, Any] = {"sim_unstable": False}
        try:
            self.do_simulation(act * self.table.max_speed)
        except SimulationUnstableError as err:
            return self._end_diverged(err, info)
        self.steps += 1
        self._pusher_path += float(np.linalg.norm(self.pusher_position() - pusher_before))
        self._block_path += float(np.linalg.norm(self.block_pose()[:2] - block_before))
        self._max_coverage = max(self._max_coverage, self.coverage())
        self._hold = self._hold + 1 if self.at_goal() else 0
        success = self._hold >= self.HOLD_STEPS
        error = self.task_error()
        terms = {"reward_progress": self._error - error, "reward_success": 1.0 if success else 0.0}
        self._error = error
        return self._end_step(terms, info, terminated=success, outcome=success)

    # ------------------------------------------------------------------ helpers
    def _step_info(self) -> dict[str, Any]:
        return {
            "position_error": self.position_error(),
            "orientation_error_deg": float(np.degrees(self.orientation_error())),
            "coverage": self.coverage(),
            "at_goal": self.at_goal(),
        }

    def _get_obs(self) -> dict[str, np.ndarray]:
        block = self.block_pose()
        state = np.array(
            [
                *self.pusher_position(),
                block[0], block[1], np.sin(block[2]), np.cos(block[2]),
                self.goal[0], self.goal[1], np.sin(self.goal[2]), np.cos(self.goal[2]),
            ],
            dtype=np.float32,
        )  # fmt: skip
        obs = {"state": state}
        if self.rgb:
            obs["rgb"] = self.render_camera(TOP_CAMERA, self.rgb_size, self.rgb_size)
        return obs

    def episode_metrics(self, success: bool) -> dict[str, float]:
        """Metrics of the episode so far: success, errors, coverage, max coverage, path lengths, steps."""
        return {
            "success": float(success),
            "position_error": self.position_error(),
            "orientation_error_deg": float(np.degrees(self.orientation_error())),
            "coverage": self.coverage(),
            "max_coverage": self._max_coverage,
            "path_length": self._pusher_path,
            "block_path_length": self._block_path,
            "steps": float(self.steps),
        }

    def env_kwargs(self) -> dict[str, Any]:
        """Constructor arguments as JSON-serialisable values (stored in episode files)."""
        return {
            "table": asdict(self.table),
            "rgb": self.rgb,
            "rgb_size": self.rgb_size,
            "random_goal": self.random_goal,
            "max_steps": self.max_steps,
        }


class PushBlockEnv(PushEnv):
    """Push a square block to a goal pose: within 2 cm and 10° for 5 consecutive steps.

    The pusher starts on the goal side of the block, so reaching the block's far side means going around it on
    the left or on the right (the two modes of the scripted expert).
    """

    HOLD_STEPS = 5
    RANDOM_GOAL = True
    POSITION_TOLERANCE = 0.02
    ORIENTATION_TOLERANCE = np.radians(10.0)

    @classmethod
    def make_shape(cls) -> BlockShape:
        """An 8 cm square."""
        return box_shape(0.04, 0.04)

    def task_error(self) -> float:
        """Position error plus orientation error times the radius of gyration (both in metres)."""
        return self.position_error() + np.sqrt(self.shape.gyration2) * self.orientation_error()

    def at_goal(self) -> bool:
        """Within 2 cm and 10 degrees."""
        return (
            self.position_error() <= self.POSITION_TOLERANCE and self.orientation_error() <= self.ORIENTATION_TOLERANCE
        )

    def _sample_pusher(self, block: np.ndarray, goal: np.ndarray) -> np.ndarray:
        # In front of the block (towards the goal), so both ways around it are equally long.
        rng = self.np_random
        towards = goal[:2] - block[:2]
        angle = np.arctan2(towards[1], towards[0]) + rng.uniform(-np.radians(20), np.radians(20))
        distance = self.shape.radius + self.table.pusher_radius + rng.uniform(0.02, 0.05)
        pusher = block[:2] + distance * np.array([np.cos(angle), np.sin(angle)])
        limit = self.table.half_extent - self.table.pusher_radius - 0.005
        return np.clip(pusher, -limit, limit)


class PushTEnv(PushEnv):
    """Push a T-shaped block onto a fixed goal T (Push-T): success at >= 95 % area coverage."""

    HOLD_STEPS = 1
    SUCCESS_COVERAGE = 0.95

    @classmethod
    def make_shape(cls) -> BlockShape:
        """Bar 12 x 3 cm over a 3 x 9 cm stem."""
        return tee_shape()

    def task_error(self) -> float:
        """One minus the coverage."""
        return 1.0 - self.coverage()

    def at_goal(self) -> bool:
        """Coverage >= 0.95."""
        return self.coverage() >= self.SUCCESS_COVERAGE
