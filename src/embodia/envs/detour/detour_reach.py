"""``embodia/DetourReach-v0``: a planar point mass reaches a goal behind a disk obstacle, around it left or right.

``embodia/DetourReach-Sided-v0`` is the same task with a unimodal expert (see "Side rule" below).

The smallest task with bimodal demonstrations (see ``shared/design/EBT.md``): the straight way from the start to
the goal is blocked, the two ways around are equally long up to the start and goal offsets, so a policy that
averages the two modes drives into the obstacle.

Scene (``build_detour_spec``): a square arena (``DetourConfig.half_extent``, 0.5 m) inside low walls, a static
cylinder of radius ``obstacle_radius`` (10 cm) at the origin, and the agent, a sphere of radius ``agent_radius``
(2 cm) on x/y slide joints. The start is at ``x = -start_distance`` (-0.35 m) with ``y ~ U(±start_offset)`` (with
``start_gap > 0``: ``|y|`` uniform in ``[start_gap, start_offset]``, either sign with probability 1/2), the goal
at ``x = +start_distance`` with ``y ~ U(±goal_offset)`` (a translucent disk on a mocap body, so its position is part
of the recorded MuJoCo state). Both offsets are smaller than ``obstacle_radius + agent_radius``: the straight line
always hits the obstacle.

Action ``Box(-1, 1, (2,))``: the agent's velocity, times ``max_speed`` (0.25 m/s). The mass is driven by velocity
actuators (as the pushing envs' pusher; 1 kg, ``kv`` = 1000 N s/m, no force limit), so a command is a velocity,
not a force: it is reached within ~2 ms and the mass stops when the command is zero. Each axis is scaled
separately, so a diagonal action moves up to sqrt(2) times faster. Out-of-range values are clipped; NaN, inf,
a wrong shape or a non-numeric dtype raise ``ValueError``. Control runs at 10 Hz (50 physics steps of 2 ms).
Friction is hard (elliptic cones, ``impratio`` 100): driving into the obstacle stops the agent, it does not
slide around the round obstacle (with MuJoCo's default soft friction it would, and a policy that averages the
two modes would reach the goal by sliding).

Observation ``Dict``: ``state`` ``(6,)`` float32 = agent ``x, y``, goal ``x, y``, obstacle centre ``x, y``
(absolute, metres, arena frame; the obstacle's entries are constant but kept so a policy input names every
object); with ``rgb=True`` also ``rgb``, a ``(rgb_size, rgb_size, 3)`` uint8 top-camera image (64 x 64).

Paired starts (``paired_starts=True``, the registered default): ``reset(seed=s)`` draws the start and goal from
``numpy.random.default_rng((s // 2, PAIR_SALT))``, so seeds ``2k`` and ``2k + 1`` share one start and goal; the
expert goes left for one and right for the other (``DetourExpert.reset``), so a collection over consecutive seeds
holds both modes from every start. It is still an ordinary Gymnasium env: equal seeds give equal episodes,
``reset()`` without a seed draws from ``self.np_random``, and ``paired_starts=False`` always draws from it.

Side rule (``side_rule``): which side the expert takes, exposed by ``expert_side()`` and read by
``DetourExpert.reset``. ``"paired"`` (the default, DetourReach-v0): ``expert_side()`` is None and the expert
block-randomises the side over seed pairs (above), so the demonstrations are bimodal from every start.
``"start"`` (DetourReach-Sided-v0): the side is a deterministic function of the start, ``"left"`` (of the
start -> goal axis, the +y side) when the start's y >= 0, else ``"right"``, so the demonstrations are unimodal
given the start and their conditional mean is a valid path. Paired starts would then only repeat each episode,
so ``side_rule="start"`` requires ``paired_starts=False`` (every seed its own start; ``ValueError`` otherwise).
DetourReach-Sided-v0 also sets ``start_gap`` = 1 cm, so no start lies within 1 cm of the axis where the side
flips.

Reward = ``reward_progress`` (decrease of the agent-goal distance) + ``reward_success`` (+1 on success) +
``reward_collision`` (``-collision_penalty`` for each new contact with the obstacle); the terms are in ``info``.
Success: agent within ``goal_radius`` (5 cm) of the goal without having touched the obstacle -> terminated. The
task is to pass the obstacle, so by default (``end_on_collision=True``) the first contact ends the episode as a
failure (terminated, ``success`` 0). With ``end_on_collision=False`` the agent may touch, push against and slide
along the obstacle and still succeed by reaching the goal: a policy that averages the two modes drives into the
obstacle, and in closed loop it usually gets round it after the bump (an MLP trained on the paired demonstrations
reached the goal in 92 % of 50 episodes with a collision in every one), so that variant does not measure
whether a policy chose a side. The agent moves in a straight line within
a step (constant velocity command, free space), so contact is detected on the swept segment of the step: the agent
touches the obstacle when that segment comes within ``obstacle_radius + agent_radius + CONTACT_TOLERANCE`` of its
centre (this also catches a graze between two control steps); a collision is a step that touches after one that
did not.

At episode end ``info["metrics"]`` holds success, collisions (count), final distance, path length, minimum
clearance (closest distance between the agent's and the obstacle's surfaces), steps, and ``side``: +1 if the
agent passed the obstacle on the left of the start -> goal axis, -1 on the right, 0 undecided. It is the sign of
``cross(axis, p* - centre)`` at ``p*``, the point of the trajectory closest to the obstacle centre, and 0 when
that point lies less than ``obstacle_radius / 2`` off the axis through the centre (the agent never got beside the
obstacle, e.g. it drove into it head-on).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

import mujoco
import numpy as np
from gymnasium import spaces
from gymnasium.utils import EzPickle

from embodia.envs.configs import as_config
from embodia.envs.detour.modes import chunk_sides, closest_point_side
from embodia.envs.mujoco_base import MjSpecEnv, SimulationUnstableError, check_max_steps

AGENT_BODY = "agent"
AGENT_GEOM = "agent_geom"
OBSTACLE_GEOM = "obstacle"
GOAL_BODY = "goal"
TOP_CAMERA = "top"
OBSTACLE_HALF_HEIGHT = 0.05
"""Half height of the obstacle cylinder and the walls, m."""
PAIR_SALT = 0x0DE7
"""Second entropy word of the paired-start generator (keeps it apart from other ``default_rng(seed // 2)`` uses)."""
AGENT_MASS = 1.0
"""Mass of the agent, kg."""
VELOCITY_GAIN = 1000.0
"""Velocity actuator gain ``kv``, N/(m/s) (time constant ``AGENT_MASS / kv`` = 1 ms)."""
SIDE_RULES = ("paired", "start")
"""Values of ``DetourReachEnv``'s ``side_rule`` (see the module docstring)."""
CONTACT_TOLERANCE = 1e-3
"""Distance, m, within which the swept agent counts as touching the obstacle (covers the sub-millimetre lag of
the velocity actuators, which bends the path within a step)."""


@dataclass
class DetourConfig:
    """Geometry, speed and reward parameters of the detour arena."""

    half_extent: float = 0.5
    """Half side of the square arena inside the walls, m."""
    obstacle_radius: float = 0.1
    """Radius of the disk obstacle at the arena's centre, m."""
    agent_radius: float = 0.02
    """Radius of the agent (a sphere), m."""
    max_speed: float = 0.25
    """Agent speed per axis at action 1.0, m/s."""
    start_distance: float = 0.35
    """Distance of the start (at -x) and of the goal (at +x) from the obstacle centre along the x axis, m."""
    start_offset: float = 0.04
    """Half range of the start's uniform y offset, m."""
    start_gap: float = 0.0
    """Smallest ``|y|`` of the start's offset, m: ``|y|`` is uniform in ``[start_gap, start_offset]`` with a random
    sign (0: ``y ~ U(±start_offset)``, the same draw as before this field existed). In ``[0, start_offset]``."""
    goal_offset: float = 0.04
    """Half range of the goal's uniform y offset, m."""
    goal_radius: float = 0.05
    """Success radius around the goal, m."""
    collision_penalty: float = 0.5
    """Reward subtracted for each new contact with the obstacle."""

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"DetourConfig.{name} must be a finite number, got {value!r}")
        for name in ("half_extent", "obstacle_radius", "agent_radius", "max_speed", "start_distance", "goal_radius"):
            if not getattr(self, name) > 0:
                raise ValueError(f"DetourConfig.{name} must be > 0, got {getattr(self, name)}")
        for name in ("start_offset", "start_gap", "goal_offset", "collision_penalty"):
            if getattr(self, name) < 0:
                raise ValueError(f"DetourConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.start_gap > self.start_offset:
            raise ValueError(
                f"DetourConfig.start_gap must be <= start_offset = {self.start_offset:g}, got {self.start_gap:g}"
            )
        reach = self.obstacle_radius + self.agent_radius
        if max(self.start_offset, self.goal_offset) >= reach:
            raise ValueError(
                f"start_offset and goal_offset must be < obstacle_radius + agent_radius = {reach:g} m "
                f"(the obstacle must block the straight way), got {self.start_offset:g} and {self.goal_offset:g}"
            )
        if self.start_distance - self.goal_radius <= reach + self.agent_radius:
            raise ValueError(
                f"start_distance - goal_radius must exceed obstacle_radius + 2 agent_radius = "
                f"{reach + self.agent_radius:g} m (start and goal clear of the obstacle), got "
                f"{self.start_distance - self.goal_radius:g}"
            )
        if self.start_distance + self.agent_radius >= self.half_extent:
            raise ValueError(f"start_distance + agent_radius must be < half_extent = {self.half_extent:g} m")
        if self.half_extent - self.obstacle_radius < 2 * self.agent_radius + 0.05:
            raise ValueError(
                "the gap between the obstacle and a wall (half_extent - obstacle_radius) must be >= "
                f"2 agent_radius + 5 cm = {2 * self.agent_radius + 0.05:g} m, got "
                f"{self.half_extent - self.obstacle_radius:g}"
            )


def build_detour_spec(config: DetourConfig, *, max_render_size: int = 640) -> mujoco.MjSpec:
    """Builds the detour arena (agent at the origin's height, goal on a mocap body; poses live in qpos/mocap).

    Args:
        config: geometry and speed.
        max_render_size: offscreen framebuffer side, pixels.
    """
    spec = mujoco.MjSpec()
    spec.modelname = "detour_reach"
    spec.option.timestep = 0.002
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    # Hard friction (elliptic cones, impratio 100): soft MuJoCo friction would let the agent creep around the
    # round obstacle when it pushes into it off-centre, and an averaging policy would succeed by sliding.
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 100.0
    spec.visual.quality.shadowsize = 0
    spec.visual.quality.offsamples = 0
    spec.visual.global_.offwidth = max_render_size
    spec.visual.global_.offheight = max_render_size
    spec.visual.headlight.ambient = [0.5, 0.5, 0.5]
    spec.stat.extent = 2 * config.half_extent
    spec.stat.center = [0.0, 0.0, 0.0]
    world = spec.worldbody
    h, wall = config.half_extent, 0.01
    world.add_light(pos=[0, 0, 2.0], dir=[0, 0, -1], castshadow=False, diffuse=[0.5] * 3)
    world.add_geom(
        name="floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[h + 0.05, h + 0.05, 0.01],
        rgba=[0.82, 0.82, 0.78, 1.0],
        contype=0,
        conaffinity=0,
    )
    for cx, cy, hx, hy in ((0, -h - wall, h + 2 * wall, wall), (0, h + wall, h + 2 * wall, wall),
                           (-h - wall, 0, wall, h), (h + wall, 0, wall, h)):  # fmt: skip
        world.add_geom(
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[hx, hy, OBSTACLE_HALF_HEIGHT],
            pos=[cx, cy, OBSTACLE_HALF_HEIGHT],
            rgba=[0.35, 0.35, 0.4, 1.0],
        )
    world.add_geom(
        name=OBSTACLE_GEOM,
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[config.obstacle_radius, OBSTACLE_HALF_HEIGHT, 0.0],
        pos=[0.0, 0.0, OBSTACLE_HALF_HEIGHT],
        rgba=[0.8, 0.25, 0.2, 1.0],
    )
    fovy = 45.0
    cam_height = (h + 0.03) / np.tan(np.radians(fovy / 2))
    world.add_camera(name=TOP_CAMERA, pos=[0, 0, float(cam_height)], fovy=fovy)

    goal = world.add_body(name=GOAL_BODY, mocap=True, pos=[config.start_distance, 0.0, 0.001])
    goal.add_geom(
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[config.goal_radius, 0.001, 0.0],
        rgba=[0.2, 0.8, 0.3, 0.5],
        contype=0,
        conaffinity=0,
        group=1,
    )

    agent = world.add_body(name=AGENT_BODY, pos=[0.0, 0.0, config.agent_radius])
    for name, axis in (("agent_x", [1, 0, 0]), ("agent_y", [0, 1, 0])):
        agent.add_joint(name=name, type=mujoco.mjtJoint.mjJNT_SLIDE, axis=axis)
    agent.add_geom(
        name=AGENT_GEOM,
        type=mujoco.mjtGeom.mjGEOM_SPHERE,
        size=[config.agent_radius, 0.0, 0.0],
        mass=AGENT_MASS,
        solref=[0.005, 1.0],  # stiffer than the default 0.02 s: ~3 mm penetration when pushing into the obstacle
        rgba=[0.15, 0.3, 0.85, 1.0],
    )
    for joint in ("agent_x", "agent_y"):
        actuator = spec.add_actuator(name=f"vel_{joint}", target=joint, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        # Unlimited force keeps the servo implicit (a clamped force is integrated explicitly and lags): the
        # commanded velocity is reached in ~2 ms, so the path within a control step is straight to < 1 mm.
        actuator.set_to_velocity(kv=VELOCITY_GAIN)
        actuator.ctrlrange = [-config.max_speed, config.max_speed]
        actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
    return spec


def _closest_on_segment(a: np.ndarray, b: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Point of the segment ``a -> b`` closest to ``point`` (all ``(2,)``)."""
    ab = b - a
    denom = float(ab @ ab)
    t = 0.0 if denom == 0.0 else float(np.clip((point - a) @ ab / denom, 0.0, 1.0))
    return a + t * ab


@dataclass
class DetourOptions:
    """DetourReach's options (DetourReach-v0, DetourReach-Sided-v0); a field left at None: the env id's value.

    ``config`` defaults to ``DetourConfig``'s defaults; only its fields set to something else are passed, over the
    env id's (see :mod:`embodia.envs.options`).
    """

    FAMILY: ClassVar[str] = "detour"

    config: DetourConfig = field(default_factory=DetourConfig)
    """Arena geometry, speed and reward parameters."""
    rgb: bool | None = None
    """Add a top-camera rgb image to the observation (default False)."""
    rgb_size: int | None = None
    """Side of that image, pixels (default 64)."""
    paired_starts: bool | None = None
    """Seeds 2k and 2k + 1 share the start and goal (default True; False for DetourReach-Sided-v0)."""
    end_on_collision: bool | None = None
    """The first contact with the obstacle ends the episode as a failure (default True)."""
    side_rule: Literal["paired", "start"] | None = None
    """How the expert's side is chosen (default paired; start for DetourReach-Sided-v0)."""
    max_steps: int | None = None
    """Episode step limit (default 100)."""


class DetourReachEnv(MjSpecEnv, EzPickle):
    """Reach a goal behind a disk obstacle (see the module docstring).

    Args:
        config: ``DetourConfig`` or dict of its fields.
        rgb: add a top-camera ``rgb`` image to the observation.
        rgb_size: side of that image, pixels.
        paired_starts: seeds ``2k`` and ``2k + 1`` share the start and goal (see the module docstring); must be
            False with ``side_rule="start"``.
        end_on_collision: the first contact with the obstacle ends the episode as a failure (module docstring).
        side_rule: ``"paired"`` (the expert's side is block-randomised over seed pairs) or ``"start"`` (it follows
            from the sign of the start's y; needs ``paired_starts=False``); see the module docstring.
        max_steps: truncation limit (metrics are in ``info`` when it hits).
        render_mode: ``"rgb_array"``, ``"depth_array"`` or None.
        width: ``render()`` width.
        height: ``render()`` height.
    """

    metadata = {"render_modes": ["rgb_array", "depth_array"], "render_fps": 10}
    OPTIONS: ClassVar[type] = DetourOptions
    """The typed form of the constructor's kwargs (``embodia collect ... env:detour``)."""
    REWARD_TERMS = ("reward_progress", "reward_success", "reward_collision")
    RECORD_INFOS = ("distance", "in_contact", "collisions")
    """Per-step ``info`` scalars that episode files keep (besides the reward terms)."""
    FRAME_SKIP = 50

    def __init__(
        self,
        config: DetourConfig | dict | None = None,
        rgb: bool = False,
        rgb_size: int = 64,
        paired_starts: bool = True,
        max_steps: int = 100,
        render_mode: str | None = None,
        width: int = 240,
        height: int = 240,
        end_on_collision: bool = True,
        side_rule: str = "paired",
    ) -> None:
        EzPickle.__init__(
            self,
            config,
            rgb,
            rgb_size,
            paired_starts,
            max_steps,
            render_mode,
            width,
            height,
            end_on_collision,
            side_rule,
        )
        if not isinstance(end_on_collision, bool):
            raise ValueError(f"end_on_collision must be a bool, got {end_on_collision!r}")
        if not isinstance(side_rule, str) or side_rule not in SIDE_RULES:
            raise ValueError(f"side_rule must be one of {SIDE_RULES}, got {side_rule!r}")
        if side_rule == "start" and paired_starts is True:
            raise ValueError("side_rule='start' needs paired_starts=False (paired starts would repeat each episode)")
        self.side_rule = side_rule
        self.end_on_collision = end_on_collision
        super().__init__(
            frame_skip=self.FRAME_SKIP, render_mode=render_mode, width=width, height=height, camera=TOP_CAMERA
        )
        check_max_steps(max_steps)
        if isinstance(rgb_size, bool) or not isinstance(rgb_size, int) or not 8 <= rgb_size <= 640:
            raise ValueError(f"rgb_size must be an integer in [8, 640], got {rgb_size!r}")
        if not isinstance(paired_starts, bool):
            raise ValueError(f"paired_starts must be a bool, got {paired_starts!r}")
        self.config = as_config(DetourConfig, config, "detour")
        self.rgb = bool(rgb)
        self.rgb_size = int(rgb_size)
        self.paired_starts = paired_starts
        self.max_steps = int(max_steps)

        bound = self.config.half_extent + 0.05
        obs = {"state": spaces.Box(-bound, bound, shape=(6,), dtype=np.float32)}
        if self.rgb:
            obs["rgb"] = spaces.Box(0, 255, shape=(self.rgb_size, self.rgb_size, 3), dtype=np.uint8)
        self.observation_space = spaces.Dict(obs)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)

        self._load_scene_xml(build_detour_spec(self.config).to_xml())
        m = self.model
        self._agent_qpos = m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, "agent_x")]
        self._goal_mocap = m.body_mocapid[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, GOAL_BODY)]
        self._obstacle = m.geom_pos[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, OBSTACLE_GEOM), :2].copy()
        self._reach = self.config.obstacle_radius + self.config.agent_radius
        self._start: np.ndarray | None = None
        self._done = True  # until reset()

    # ------------------------------------------------------------------ state access
    def agent_position(self) -> np.ndarray:
        """``(2,)`` agent ``x, y``."""
        return self.data.qpos[self._agent_qpos : self._agent_qpos + 2].copy()

    def goal_position(self) -> np.ndarray:
        """``(2,)`` goal ``x, y`` (read from the mocap body, i.e. from the MuJoCo state)."""
        return self.data.mocap_pos[self._goal_mocap, :2].copy()

    def obstacle_position(self) -> np.ndarray:
        """``(2,)`` obstacle centre ``x, y``."""
        return self._obstacle.copy()

    def distance(self) -> float:
        """Agent-goal distance, m."""
        return float(np.linalg.norm(self.agent_position() - self.goal_position()))

    def expert_side(self) -> str | None:
        """The side the expert must take this episode under ``side_rule``, or None when it chooses (``"paired"``).

        Returns:
            ``"left"`` if the start's y >= 0 else ``"right"`` with ``side_rule="start"``; None with ``"paired"``.

        Raises:
            RuntimeError: ``side_rule="start"`` before the first ``reset``.
        """
        if self.side_rule == "paired":
            return None
        if self._start is None:
            raise RuntimeError("expert_side() needs a reset() first (the side follows from the start)")
        return "left" if self._start[1] >= 0.0 else "right"

    # ------------------------------------------------------------------ gym API
    def _sample_start_goal(self, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.config
        if self.paired_starts and seed is not None:
            rng = np.random.default_rng((int(seed) // 2, PAIR_SALT))
        else:
            rng = self.np_random
        if cfg.start_gap == 0.0:  # one draw either way: the goal's draw is the same with and without a gap
            start_y = rng.uniform(-cfg.start_offset, cfg.start_offset)
        else:
            u = rng.uniform(-1.0, 1.0)
            start_y = math.copysign(cfg.start_gap + abs(u) * (cfg.start_offset - cfg.start_gap), u)
        start = np.array([-cfg.start_distance, start_y])
        goal = np.array([cfg.start_distance, rng.uniform(-cfg.goal_offset, cfg.goal_offset)])
        return start, goal

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Places the agent at the start and the goal; both come from ``seed // 2`` with paired starts."""
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        start, goal = self._sample_start_goal(seed)
        self.data.qpos[self._agent_qpos : self._agent_qpos + 2] = start
        self.data.mocap_pos[self._goal_mocap] = [goal[0], goal[1], 0.001]
        mujoco.mj_forward(self.model, self.data)
        self.steps = 0
        self._done = False
        self._start, self._goal = start, goal
        self._distance = self.distance()
        self._touching = False
        self._collisions = 0
        self._path = 0.0
        self._closest = start.copy()
        self._last_obs = self._get_obs()
        return self._last_obs, self._step_info()

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        """Advances 0.1 s with the agent velocity ``action`` (see the module docstring)."""
        act = self._begin_step(action, "[vx, vy]")
        before = self.agent_position()
        info: dict[str, Any] = {"sim_unstable": False}
        try:
            self.do_simulation(act * self.config.max_speed)
        except SimulationUnstableError as err:
            return self._end_diverged(err, info)
        self.steps += 1
        after = self.agent_position()
        self._path += float(np.linalg.norm(after - before))
        swept = _closest_on_segment(before, after, self._obstacle)
        if np.linalg.norm(swept - self._obstacle) < np.linalg.norm(self._closest - self._obstacle):
            self._closest = swept
        touching = bool(np.linalg.norm(swept - self._obstacle) < self._reach + CONTACT_TOLERANCE)
        new_collision = touching and not self._touching
        self._touching = touching
        self._collisions += int(new_collision)

        distance = self.distance()
        failed = self.end_on_collision and self._collisions > 0
        success = distance <= self.config.goal_radius and not failed
        terms = {
            "reward_progress": self._distance - distance,
            "reward_success": 1.0 if success else 0.0,
            "reward_collision": -self.config.collision_penalty if new_collision else 0.0,
        }
        self._distance = distance
        return self._end_step(terms, info, terminated=success or failed, outcome=success)

    # ------------------------------------------------------------------ helpers
    def _step_info(self) -> dict[str, Any]:
        return {"distance": self.distance(), "in_contact": self._touching, "collisions": float(self._collisions)}

    def _get_obs(self) -> dict[str, np.ndarray]:
        state = np.concatenate([self.agent_position(), self.goal_position(), self._obstacle]).astype(np.float32)
        obs = {"state": state}
        if self.rgb:
            obs["rgb"] = self.render_camera(TOP_CAMERA, self.rgb_size, self.rgb_size)
        return obs

    def side(self) -> float:
        """+1 / -1 if the trajectory so far passed the obstacle on the left / right of the start -> goal axis, else 0.

        Decided at the trajectory's point closest to the obstacle centre (:mod:`embodia.envs.detour.modes`).
        """
        radius = self.config.obstacle_radius
        return float(closest_point_side(self._closest[None], self._start, self._goal, self._obstacle, radius)[0])

    def chunk_modes(self, chunks: Any, start_index: int) -> np.ndarray:
        """The side each raw action chunk would pass the obstacle on, driven open loop from the agent's position.

        The :class:`~embodia.envs.mode_rule.ModeRule` of this env: :func:`embodia.envs.detour.modes.chunk_sides`
        with the agent's position as the start (right after ``reset`` it is the episode's start), this episode's
        goal and obstacle, ``max_speed`` and the control period.

        Args:
            chunks: ``(N, Tp, 2)`` raw action chunks (numpy or a tensor).
            start_index: First chunk entry to execute (``To - 1``), ``0 <= start_index < Tp``.

        Returns:
            ``(N,)`` float64 of +1.0 (left) / -1.0 (right) / 0.0 (undecided).
        """
        return chunk_sides(
            self.agent_position(),
            self.goal_position(),
            self.obstacle_position(),
            self.config.obstacle_radius,
            chunks,
            max_speed=self.config.max_speed,
            dt=self.dt,
            start_index=start_index,
        )

    def mode_origin(self) -> dict[str, list[float]]:
        """``{"start": [x, y], "goal": [x, y]}``: the agent's position and the goal that :meth:`chunk_modes` uses."""
        return {"start": self.agent_position().tolist(), "goal": self.goal_position().tolist()}

    def episode_metrics(self, success: bool) -> dict[str, float]:
        """Metrics of the episode so far: success, collisions, final distance, path, clearance, steps, side."""
        return {
            "success": float(success),
            "collisions": float(self._collisions),
            "final_distance": self.distance(),
            "path_length": self._path,
            "min_clearance": float(np.linalg.norm(self._closest - self._obstacle)) - self._reach,
            "steps": float(self.steps),
            "side": self.side(),
        }

    def env_kwargs(self) -> dict[str, Any]:
        """Constructor arguments as JSON-serialisable values (stored in episode files)."""
        return {
            "config": asdict(self.config),
            "rgb": self.rgb,
            "rgb_size": self.rgb_size,
            "paired_starts": self.paired_starts,
            "max_steps": self.max_steps,
            "end_on_collision": self.end_on_collision,
            "side_rule": self.side_rule,
        }
