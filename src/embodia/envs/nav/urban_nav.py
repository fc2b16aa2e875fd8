"""UrbanNav: instruction-following navigation in a generated MuJoCo city.

``embodia/UrbanNav-v0``: follow a landmark-anchored instruction to a goal and stop there.
``embodia/UrbanNav-Return-v0``: follow an outbound instruction; on arrival the instruction changes to "go back
to the <landmark> you passed", a landmark out of view from there (a task that needs memory). The return's
reference route retraces the way out (as short as any route back: a sub-path of a shortest route).

Action ``Box(-1, 1, (3,))``: forward speed (times ``RobotConfig.max_speed``, reverse allowed), yaw rate (times
``max_yaw_rate``), stop (> 0 ends the episode as the agent's decision). Out-of-range values are clipped; NaN,
inf or a wrong shape raise ``ValueError``.

Observation ``Dict``: ``depth`` ``(E, A)`` float32 ranges in metres from ``mujoco.mj_multiRay`` (``max_range``
where nothing is hit), ``semantic`` ``(E, A)`` int16 landmark class per ray (0 = none), ``pose`` ``(3,)`` float32
odometry ``x, y, yaw`` (optionally noisy), ``instruction`` (text), and with ``rgb=True`` an egocentric
``(64, 64, 3)`` uint8 camera image.

Reward = ``reward_progress`` (0.1 per metre of street-graph distance gained towards the goal) +
``reward_success`` (+10 for stopping within ``success_radius`` of the final goal) + ``reward_collision`` (-1 at the
start of each collision). The terms are in ``info`` and sum to the reward. When an episode ends, ``info["metrics"]``
holds TC (success), SPD, nDTW, SED, SPL, path length and collisions (``MEM4NAV.md`` §7 definitions).
"""

from __future__ import annotations

import math
import string
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

import mujoco
import numpy as np
from gymnasium import spaces
from gymnasium.utils import EzPickle

from embodia.envs.configs import as_config
from embodia.envs.mujoco_base import MjSpecEnv, SimulationUnstableError, check_max_steps
from embodia.envs.nav import metrics as nav_metrics
from embodia.envs.nav.city import NUM_LANDMARK_CLASSES, CityConfig, CityLayout, Landmark, generate_city
from embodia.envs.nav.scene import (
    CHASE_CAMERA,
    EGO_CAMERA,
    ROBOT_BODY,
    ROBOT_GEOM,
    SENSOR_SITE,
    RobotConfig,
    build_city_spec,
)
from embodia.envs.nav.tasks import NavTask, sample_follow_task, sample_return_task
from embodia.envs.nav.views import city_map, landmark_colours
from embodia.envs.views import TopDownMap

INSTRUCTION_CHARSET = string.ascii_letters + string.digits + " ,.;:'-!?"
INSTRUCTION_MAX_LENGTH = 512
POSE_BOUND = 1.0e4
"""Odometry x and y stay within +-POSE_BOUND metres (cities are at most a few hundred metres across)."""


@dataclass
class SensorConfig:
    """The range/semantic ray sensor, the optional camera and odometry noise."""

    elevations: int = 8
    """Rows of the range image (elevation angles)."""
    azimuths: int = 64
    """Columns of the range image (azimuth angles over 360 degrees, starting straight ahead, counter-clockwise)."""
    min_elevation_deg: float = -10.0
    """Lowest ray elevation, degrees (negative looks down)."""
    max_elevation_deg: float = 25.0
    """Highest ray elevation, degrees."""
    max_range: float = 40.0
    """Ray cutoff, metres; rays that hit nothing read this value."""
    rgb: bool = False
    """Add an egocentric ``rgb`` image to the observation (EGL rendering, shadows off)."""
    rgb_size: int = 64
    """Side of the square rgb image, pixels."""
    pose_noise: float = 0.0
    """Odometry noise: standard deviation per metre travelled (and radian per radian turned)."""

    def __post_init__(self) -> None:
        for name in ("elevations", "azimuths", "rgb_size"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int):
                raise ValueError(f"sensor {name} must be an integer, got {getattr(self, name)!r}")
        for name in ("min_elevation_deg", "max_elevation_deg", "max_range", "pose_noise"):
            if not _finite_number(getattr(self, name)):
                raise ValueError(f"sensor {name} must be a finite number, got {getattr(self, name)!r}")
        if self.elevations < 1 or self.azimuths < 1:
            raise ValueError(f"sensor needs >= 1 elevation and azimuth, got {self.elevations}x{self.azimuths}")
        if not -90 <= self.min_elevation_deg <= self.max_elevation_deg <= 90:
            raise ValueError("sensor elevations must satisfy -90 <= min_elevation_deg <= max_elevation_deg <= 90")
        if self.max_range <= 0:
            raise ValueError(f"max_range must be > 0, got {self.max_range}")
        if self.rgb_size < 8 or self.rgb_size > 640:
            raise ValueError(f"rgb_size must be in [8, 640], got {self.rgb_size}")
        if self.pose_noise < 0:
            raise ValueError(f"pose_noise must be >= 0, got {self.pose_noise}")

    def ray_directions(self) -> np.ndarray:
        """``(E*A, 3)`` unit ray directions in the robot frame, row-major (elevation, azimuth)."""
        elev = np.radians(np.linspace(self.min_elevation_deg, self.max_elevation_deg, self.elevations))
        azim = np.arange(self.azimuths) * (2 * np.pi / self.azimuths)
        ee, aa = np.meshgrid(elev, azim, indexing="ij")
        return np.stack([np.cos(ee) * np.cos(aa), np.cos(ee) * np.sin(aa), np.sin(ee)], axis=-1).reshape(-1, 3)


@dataclass
class UrbanNavOptions:
    """UrbanNav's options (UrbanNav-v0, UrbanNav-Return-v0); a field left at None: the env id's value.

    The nested configs default to their own defaults; only the fields set to something else are passed (see
    :mod:`embodia.envs.options`).
    """

    FAMILY: ClassVar[str] = "urban-nav"

    task: Literal["follow", "return"] | None = None
    """Task kind (default: the env id's, follow for UrbanNav-v0, return for UrbanNav-Return-v0)."""
    city: CityConfig = field(default_factory=CityConfig)
    """The generated city."""
    robot: RobotConfig = field(default_factory=RobotConfig)
    """The robot's body and drive."""
    sensor: SensorConfig = field(default_factory=SensorConfig)
    """The ray sensor, the optional camera and odometry noise."""
    city_seed: int | None = None
    """Fix the city layout to this seed (tasks still vary per episode); default: a new city per reset."""
    success_radius: float | None = None
    """TC radius around the goal, metres (default 3)."""
    max_steps: int | None = None
    """Episode step limit (default: the env id's, 1000 for UrbanNav-v0, 1500 for UrbanNav-Return-v0)."""


def _finite_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _wrap_angle(angle: float) -> float:
    return float((angle + np.pi) % (2 * np.pi) - np.pi)


class UrbanNavEnv(MjSpecEnv, EzPickle):
    """Instruction-following navigation in a MuJoCo city (see the module docstring).

    Args:
        task: ``"follow"`` (UrbanNav-v0) or ``"return"`` (UrbanNav-Return-v0).
        city: ``CityConfig`` or dict of its fields (default 4x4 blocks).
        robot: ``RobotConfig`` or dict.
        sensor: ``SensorConfig`` or dict.
        city_seed: fix the city layout to this seed (tasks still vary per episode); None: a new city per reset.
        success_radius: TC radius around the goal, metres.
        max_steps: the episode is truncated after this many steps, with its metrics in ``info`` (an outer
            ``TimeLimit`` from ``gym.make(..., max_episode_steps=N)`` cuts without them: then call
            ``episode_metrics``).
        render_mode: ``"rgb_array"``, ``"depth_array"`` or None.
        width: ``render()`` width.
        height: ``render()`` height.
        camera: ``render()`` camera: ``"chase"``, ``"top"`` or ``"ego"``.
    """

    metadata = {"render_modes": ["rgb_array", "depth_array"], "render_fps": 10}
    OPTIONS: ClassVar[type] = UrbanNavOptions
    """The typed form of the constructor's kwargs (``embodia collect ... env:urban-nav``)."""
    REWARD_TERMS = ("reward_progress", "reward_success", "reward_collision")
    RECORD_INFOS = ("phase", "distance_to_goal", "collision")
    HEADLINE_METRICS = (("tc", "TC"), ("spd", "SPD (m)"), ("ndtw", "nDTW"))
    """Per-step ``info`` scalars that episode files keep (besides the reward terms)."""
    PROGRESS_WEIGHT = 0.1
    SUCCESS_BONUS = 10.0
    COLLISION_PENALTY = -1.0
    FRAME_SKIP = 10
    CITY_ATTEMPTS = 20

    def __init__(
        self,
        task: str = "follow",
        city: CityConfig | dict | None = None,
        robot: RobotConfig | dict | None = None,
        sensor: SensorConfig | dict | None = None,
        city_seed: int | None = None,
        success_radius: float = 3.0,
        max_steps: int = 1000,
        render_mode: str | None = None,
        width: int = 320,
        height: int = 240,
        camera: str = CHASE_CAMERA,
    ) -> None:
        EzPickle.__init__(
            self, task, city, robot, sensor, city_seed, success_radius, max_steps,
            render_mode, width, height, camera,
        )  # fmt: skip
        super().__init__(frame_skip=self.FRAME_SKIP, render_mode=render_mode, width=width, height=height, camera=camera)
        if task not in ("follow", "return"):
            raise ValueError(f"task must be 'follow' or 'return', got {task!r}")
        if not _finite_number(success_radius) or success_radius <= 0:
            raise ValueError(f"success_radius must be a finite number > 0, got {success_radius!r}")
        if city_seed is not None and (isinstance(city_seed, bool) or not isinstance(city_seed, int) or city_seed < 0):
            raise ValueError(f"city_seed must be a non-negative integer or None, got {city_seed!r}")
        check_max_steps(max_steps)
        self.task_kind = task
        self.city_config: CityConfig = as_config(CityConfig, city, "city")
        self.robot_config: RobotConfig = as_config(RobotConfig, robot, "robot")
        self.sensor_config: SensorConfig = as_config(SensorConfig, sensor, "sensor")
        self.city_seed = city_seed
        self.success_radius = float(success_radius)
        self.max_steps = int(max_steps)

        s = self.sensor_config
        self.action_space = spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
        obs_spaces: dict[str, spaces.Space] = {
            "depth": spaces.Box(0.0, s.max_range, shape=(s.elevations, s.azimuths), dtype=np.float32),
            "semantic": spaces.Box(0, NUM_LANDMARK_CLASSES, shape=(s.elevations, s.azimuths), dtype=np.int16),
            "pose": spaces.Box(
                np.array([-POSE_BOUND, -POSE_BOUND, -np.pi], dtype=np.float32),
                np.array([POSE_BOUND, POSE_BOUND, np.pi], dtype=np.float32),
                dtype=np.float32,
            ),
            "instruction": spaces.Text(INSTRUCTION_MAX_LENGTH, min_length=1, charset=INSTRUCTION_CHARSET),
        }
        if s.rgb:
            obs_spaces["rgb"] = spaces.Box(0, 255, shape=(s.rgb_size, s.rgb_size, 3), dtype=np.uint8)
        self.observation_space = spaces.Dict(obs_spaces)

        self._ray_dirs = s.ray_directions()  # (E*A, 3) robot frame
        self._ray_geomid = np.zeros(len(self._ray_dirs), dtype=np.int32)
        self._ray_dist = np.zeros(len(self._ray_dirs), dtype=np.float64)
        self._ray_group = np.array([1, 0, 0, 0, 0, 0], dtype=np.uint8)

        self.city: CityLayout | None = None
        self.task: NavTask | None = None
        self._fixed_city: tuple[CityLayout, str] | None = None

    # ------------------------------------------------------------------ scene and task
    def _build_city(self, rng: np.random.Generator) -> tuple[CityLayout, str]:
        layout = generate_city(self.city_config, rng)
        xml = build_city_spec(layout, self.robot_config, max_render_size=640).to_xml()
        return layout, xml

    def _bind_model(self) -> None:
        m = self.model
        self._robot_body = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, ROBOT_BODY)
        self._robot_geom = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, ROBOT_GEOM)
        self._sensor_site = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, SENSOR_SITE)
        # geom id -> semantic class, shifted by one so that "no hit" (-1) maps to 0.
        self._class_lut = np.zeros(m.ngeom + 1, dtype=np.int16)
        self._landmark_geom = np.zeros(len(self.city.landmarks), dtype=np.int64)
        for lm in self.city.landmarks:
            gid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"landmark_{lm.index}")
            self._class_lut[gid + 1] = lm.class_id
            self._landmark_geom[lm.index] = gid

    def landmark_visible(self, position: np.ndarray, yaw: float, landmark: Landmark) -> bool:
        """Whether ``landmark`` is seen from the sensor at ``position`` (x, y) with heading ``yaw``.

        Seen means: a ray of the sensor's own fan hits it, or one of three direct rays (to its bottom, middle
        and top) reaches it unobstructed, within ``max_range`` (the direct rays stand in for the camera).
        """
        m, d = self.model, self.data
        origin = np.array([position[0], position[1], self.robot_config.sensor_height])
        gid = int(self._landmark_geom[landmark.index])
        geomid = np.zeros(1, dtype=np.int32)
        size, gtype = m.geom_size[gid], int(m.geom_type[gid])
        half_height = {
            int(mujoco.mjtGeom.mjGEOM_BOX): size[2],
            int(mujoco.mjtGeom.mjGEOM_CYLINDER): size[1],
            int(mujoco.mjtGeom.mjGEOM_CAPSULE): size[1] + size[0],
        }.get(gtype, size[0])
        for dz in (-0.8 * half_height, 0.0, 0.8 * half_height):
            vec = d.geom_xpos[gid] + np.array([0.0, 0.0, dz]) - origin
            dist = mujoco.mj_ray(m, d, origin, vec / np.linalg.norm(vec), self._ray_group, 1, self._robot_body, geomid)
            if int(geomid[0]) == gid and 0 <= dist <= self.sensor_config.max_range:
                return True
        c, s = np.cos(yaw), np.sin(yaw)
        vec = self._ray_dirs @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]).T
        fan_geoms = np.zeros(len(vec), dtype=np.int32)
        fan_dist = np.zeros(len(vec))
        mujoco.mj_multiRay(
            m, d, origin, vec.ravel(), self._ray_group, 1, self._robot_body, fan_geoms, fan_dist, None, len(vec),
            self.sensor_config.max_range,
        )  # fmt: skip
        return bool((fan_geoms == gid).any())

    def _new_task(self) -> NavTask:
        if self.task_kind == "follow":
            return sample_follow_task(self.city, self.np_random)
        return sample_return_task(self.city, self.np_random, self.landmark_visible, view_radius=self.success_radius)

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Starts an episode: a new city (unless ``city_seed`` is set) and a new task, from ``self.np_random``."""
        super().reset(seed=seed)
        for attempt in range(self.CITY_ATTEMPTS):
            if self.city_seed is not None:
                if self._fixed_city is None:
                    self._fixed_city = self._build_city(np.random.default_rng(self.city_seed))
                self.city, xml = self._fixed_city
            else:
                self.city, xml = self._build_city(self.np_random)
            self._load_scene_xml(xml)
            self._bind_model()
            mujoco.mj_forward(self.model, self.data)
            try:
                self.task = self._new_task()
                break
            except RuntimeError as err:  # this city has no suitable route: draw another one
                if self.city_seed is not None or attempt == self.CITY_ATTEMPTS - 1:
                    where = f"city_seed={self.city_seed}" if self.city_seed is not None else "these city settings"
                    raise ValueError(f"no {self.task_kind} task can be sampled with {where}: {err}") from None
        self.data.qpos[:3] = [self.task.start_position[0], self.task.start_position[1], self.task.start_yaw]
        self.data.qvel[:] = 0.0
        mujoco.mj_forward(self.model, self.data)

        self.phase_index = 0
        self.steps = 0
        self.collisions = 0
        self._colliding = False
        self._done = False
        self._odometry = np.array([*self.task.start_position, self.task.start_yaw], dtype=np.float64)
        self._last_true_pose = self.true_pose()
        self._trajectory = [self.data.qpos[:2].copy()]
        self._visited_nodes: list[int] = []
        self._note_node()
        self._remaining = self._remaining_distance()
        self._last_obs = self._get_obs()
        info = {"phase": 0, "distance_to_goal": self._remaining, "instruction": self.instruction}
        return self._last_obs, info

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        """Advances one control step (0.1 s). See the module docstring for the action, reward and info."""
        if self.task is None:
            raise RuntimeError("call reset() before step()")
        act = self._begin_step(action, "[speed, yaw_rate, stop]")
        rc = self.robot_config
        speed, yaw_rate = float(act[0]) * rc.max_speed, float(act[1]) * rc.max_yaw_rate
        yaw = float(self.data.qpos[2])
        ctrl = np.array([speed * np.cos(yaw), speed * np.sin(yaw), yaw_rate])
        info: dict[str, Any] = {"sim_unstable": False}
        try:
            self.do_simulation(ctrl)
        except SimulationUnstableError as err:
            info["phase"] = self.phase_index
            return self._end_diverged(err, info)
        self.steps += 1
        self._update_odometry()
        position = self.data.qpos[:2].copy()
        self._trajectory.append(position)
        self._note_node()

        colliding = self._in_collision()
        new_collision = colliding and not self._colliding
        self._colliding = colliding
        self.collisions += int(new_collision)

        # Return task: reaching the outbound goal switches to the next phase (and its instruction).
        if self.phase_index < len(self.task.phases) - 1 and self._goal_distance() <= self.success_radius:
            self.phase_index += 1
        remaining = self._remaining_distance()
        stopped = bool(act[2] > 0)
        success = stopped and self._at_final_goal()
        terms = {
            "reward_progress": self.PROGRESS_WEIGHT * (self._remaining - remaining),
            "reward_success": self.SUCCESS_BONUS if success else 0.0,
            "reward_collision": self.COLLISION_PENALTY if new_collision else 0.0,
        }
        self._remaining = remaining
        return self._end_step(terms, info, terminated=stopped, outcome=stopped)

    def _step_info(self) -> dict[str, Any]:
        return {"phase": self.phase_index, "distance_to_goal": self._remaining, "collision": self._colliding}

    # ------------------------------------------------------------------ views (embodia.envs.views)
    @classmethod
    def class_colours(cls) -> np.ndarray:
        """``(16, 3)`` RGB in [0, 1] of the landmark classes ``1..16`` (the viewers' palette)."""
        return landmark_colours()

    def top_down_map(self) -> TopDownMap:
        """The map of this episode's city and route (after ``reset``), for ``embodia.replay``.

        Raises:
            RuntimeError: Before the first ``reset``.
        """
        if self.city is None or self.task is None:
            raise RuntimeError("top_down_map() needs a reset() first (the city comes from the seed)")
        return city_map(self.city, self.task)

    # ------------------------------------------------------------------ helpers
    @property
    def instruction(self) -> str:
        """The current phase's instruction."""
        return self.task.phases[self.phase_index].instruction

    def true_pose(self) -> np.ndarray:
        """Noise-free ``(x, y, yaw)`` of the robot, yaw wrapped to [-pi, pi)."""
        x, y, yaw = self.data.qpos[:3]
        return np.array([x, y, _wrap_angle(yaw)])

    def goal_position(self, phase: int | None = None) -> np.ndarray:
        """Coordinates ``(2,)`` of a phase's goal (default: the current phase)."""
        phase = self.phase_index if phase is None else phase
        return self.city.graph.point(self.task.phases[phase].goal)

    def _goal_distance(self) -> float:
        return float(np.linalg.norm(self.data.qpos[:2] - self.goal_position()))

    def _at_final_goal(self) -> bool:
        return self.phase_index == len(self.task.phases) - 1 and self._goal_distance() <= self.success_radius

    def _remaining_distance(self) -> float:
        """Street distance to the current goal plus the reference length of the phases after it."""
        here = self.city.graph.distance_from(self.data.qpos[:2], self.task.phases[self.phase_index].goal)
        later = sum(p.route.length for p in self.task.phases[self.phase_index + 1 :])
        return float(here + later)

    def _note_node(self) -> None:
        node, dist = self.city.graph.nearest_node(self.data.qpos[:2])
        if dist <= self.city_config.street_width / 2 and (not self._visited_nodes or self._visited_nodes[-1] != node):
            self._visited_nodes.append(node)

    def _in_collision(self) -> bool:
        ncon = self.data.ncon
        if ncon == 0:
            return False
        geoms = self.data.contact.geom[:ncon]  # (ncon, 2)
        return bool((geoms == self._robot_geom).any())

    def _update_odometry(self) -> None:
        pose = self.true_pose()
        noise = self.sensor_config.pose_noise
        if noise > 0:
            delta = pose - self._last_true_pose
            delta[2] = _wrap_angle(delta[2])
            c, s = np.cos(self._last_true_pose[2]), np.sin(self._last_true_pose[2])
            forward = c * delta[0] + s * delta[1]
            lateral = -s * delta[0] + c * delta[1]
            dist = np.hypot(forward, lateral)
            forward += self.np_random.normal(0.0, noise * dist + 1e-12)
            lateral += self.np_random.normal(0.0, noise * dist + 1e-12)
            dyaw = delta[2] + self.np_random.normal(0.0, noise * abs(delta[2]) + 1e-12)
            oc, os_ = np.cos(self._odometry[2]), np.sin(self._odometry[2])
            self._odometry[0] += oc * forward - os_ * lateral
            self._odometry[1] += os_ * forward + oc * lateral
            self._odometry[2] = _wrap_angle(self._odometry[2] + dyaw)
        else:
            self._odometry = pose.copy()
        self._last_true_pose = pose

    def _get_obs(self) -> dict[str, Any]:
        s = self.sensor_config
        yaw = float(self.data.qpos[2])
        c, si = np.cos(yaw), np.sin(yaw)
        rot = np.array([[c, -si, 0.0], [si, c, 0.0], [0.0, 0.0, 1.0]])
        vec = self._ray_dirs @ rot.T  # (E*A, 3) world-frame directions
        origin = self.data.site_xpos[self._sensor_site].copy()
        mujoco.mj_multiRay(
            self.model, self.data, origin, vec.ravel(), self._ray_group, 1, self._robot_body,
            self._ray_geomid, self._ray_dist, None, len(vec), s.max_range,
        )  # fmt: skip
        hit = self._ray_geomid >= 0
        depth = np.where(hit, np.minimum(self._ray_dist, s.max_range), s.max_range).astype(np.float32)
        semantic = self._class_lut[self._ray_geomid + 1]
        obs: dict[str, Any] = {
            "depth": depth.reshape(s.elevations, s.azimuths),
            "semantic": semantic.reshape(s.elevations, s.azimuths),
            "pose": np.clip(self._odometry, -POSE_BOUND, POSE_BOUND).astype(np.float32),
            "instruction": self.instruction,
        }
        if s.rgb:
            obs["rgb"] = self.render_camera(EGO_CAMERA, s.rgb_size, s.rgb_size)
        return obs

    def episode_metrics(self, stopped: bool) -> dict[str, float]:
        """Navigation metrics of the episode so far, as if it ended now (``stopped``: the agent chose to stop).

        Keys: ``success``/``tc`` (stopped within ``success_radius`` of the final goal), ``spd`` (street-graph
        distance from the final position to the goal), ``ndtw``, ``sed``, ``spl``, ``path_length``,
        ``shortest_length``, ``distance_to_goal`` (Euclidean), ``collisions``, ``steps``, ``phases_done``.
        """
        trajectory = np.asarray(self._trajectory)  # (T+1, 2)
        final_goal = self.task.phases[-1].goal
        success = bool(stopped and self._at_final_goal())
        length = nav_metrics.path_length(trajectory)
        return {
            "success": float(success),
            "tc": float(success),
            "spd": self.city.graph.distance_from(trajectory[-1], final_goal),
            "ndtw": nav_metrics.ndtw(trajectory, self.task.reference_path, threshold=self.success_radius),
            "sed": nav_metrics.sed(success, self._visited_nodes, self.task.reference_nodes),
            "spl": nav_metrics.spl(success, self.task.shortest_length, length),
            "path_length": length,
            "shortest_length": self.task.shortest_length,
            "distance_to_goal": float(np.linalg.norm(trajectory[-1] - self.city.graph.point(final_goal))),
            "collisions": float(self.collisions),
            "steps": float(self.steps),
            "phases_done": float(self.phase_index + int(success)),
        }

    def env_kwargs(self) -> dict[str, Any]:
        """Constructor arguments as JSON-serialisable values (stored in episode files)."""
        return {
            "task": self.task_kind,
            "city": asdict(self.city_config),
            "robot": asdict(self.robot_config),
            "sensor": asdict(self.sensor_config),
            "city_seed": self.city_seed,
            "success_radius": self.success_radius,
            "max_steps": self.max_steps,
        }
