"""The modular backbone: a non-learned UrbanNav agent that plans on the Mem4Nav memory's topology graph.

Every step the agent perceives (:mod:`embodia.agents.perception`) and writes the step into a
:class:`~embodia.memory.mem4nav.Mem4NavMemory`: points and classes into the octree, a fixed descriptor of the view
(:func:`ray_descriptor`) and the position into the topology graph, landmark detections into the STM. When it acts,
the goal is the instruction's last landmark (:func:`~embodia.agents.tokenizer.require_goal_landmark`); the street
planner (:mod:`embodia.agents.planner`, shared with the learned agent) locates it in memory, picks its street
anchor and plans a graph path there; pure pursuit follows the path and then the anchor, and the agent stops within
``stop_distance`` of it.

Ablations (:mod:`embodia.agents.ablation`): without the graph the agent pursues the anchor directly (it may bump
into buildings) and, knowing no streets, takes as a mid-block anchor the point abeam of the landmark on its
current heading line. Without memory (``"none"``) it only reacts to the current view: a goal detection beside the
street it is on, and the junction it is driving through. With no target known it explores: on a "go back"
instruction it first turns around, then follows the freest corridor ahead, turning towards open space at junction
ends and dead ends.

Nothing is learned; every distance default fits the default city (8 m streets, 3 m sidewalks, landmarks 5.5 m from
a street's centre line).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from embodia.agents.ablation import check_memory_mode, memory_config
from embodia.agents.perception import Percept, RayGeometry, RayPerception
from embodia.agents.planner import PlannerConfig, StreetPlanner, wrap_angle
from embodia.agents.tokenizer import require_goal_landmark
from embodia.envs.nav.city import NUM_LANDMARK_CLASSES
from embodia.policies.plan_stats import PlanStats

__all__ = ["ModularAgent", "ModularAgentConfig", "modular_controller", "modular_factory", "ray_descriptor"]

_NUM_CLASSES = NUM_LANDMARK_CLASSES + 1  # semantic ids 0 (none) .. 16
_SEMANTIC_WEIGHT = 4.0  # scale of the class histogram against the depth profile in the descriptor
_BIAS_FEATURE = 0.1  # a constant feature keeps the descriptor nonzero for an all-open view
_TURNED_DEG = 20.0  # the turn-around after "go back" ends within this of the opposite heading
_STOP = np.array([0.0, 0.0, 1.0], dtype=np.float32)


@dataclass
class ModularAgentConfig(PlannerConfig):
    """Settings of :class:`ModularAgent` (distances in metres, angles in degrees).

    The planner's distances (:class:`~embodia.agents.planner.PlannerConfig`) plus memory and control.
    """

    memory: str = "full"
    """Memory ablation mode, one of :data:`embodia.agents.ablation.MEMORY_MODES`."""
    embed_dim: int = 64
    """Width of the observation descriptor written to the memory (``Mem4NavConfig.embed_dim``)."""
    descriptor_seed: int = 0
    """Seed of the descriptor's fixed random projection."""
    node_delta: float = 0.3
    """Embedding gate of the topology graph (``TopologyConfig.delta``, L2 between unit descriptors): a new node
    needs a view this different from every node's. Street views look alike; a larger gate assigns new places to
    distant look-alike nodes, whose edges then cut through buildings (0.7 lost 5 of 30 handovers, 0.3 none)."""
    yaw_gain: float = 2.5
    """Yaw-rate action per radian of heading error."""
    turn_in_place_deg: float = 70.0
    """Heading error beyond which the agent turns without driving."""
    cruise_speed: float = 1.0
    """Forward speed action on a straight path, in (0, 1]."""
    min_speed: float = 0.2
    """Forward speed action at the anchor (before the heading slow-down), in (0, cruise_speed]."""
    approach_distance: float = 4.0
    """Distance to the anchor over which the agent slows from ``cruise_speed`` to ``min_speed``."""
    stop_distance: float = 1.0
    """The agent stops within this distance of the goal's estimated street anchor (the env's success radius is
    3 m; anchor estimates are typically within 1 m)."""
    explore_window_deg: float = 60.0
    """When exploring, the freest corridor is sought within this angle of the heading first."""
    open_corridor: float = 12.0
    """When exploring, a corridor ahead shorter than this is blocked (the end of a junction or a dead end)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_memory_mode(self.memory)
        for name in ("embed_dim", "descriptor_seed"):
            value, low = getattr(self, name), 1 if name == "embed_dim" else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"ModularAgentConfig.{name} must be an integer >= {low}, got {value!r}")
        positive = (
            "yaw_gain", "turn_in_place_deg", "cruise_speed", "min_speed", "approach_distance", "stop_distance",
            "explore_window_deg", "open_corridor",
        )  # fmt: skip
        for name in (*positive, "node_delta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"ModularAgentConfig.{name} must be a finite number, got {value!r}")
            if name in positive and value <= 0:
                raise ValueError(f"ModularAgentConfig.{name} must be > 0, got {value!r}")
        if not 0.0 <= self.node_delta <= 2.0:
            raise ValueError(f"ModularAgentConfig.node_delta must be in [0, 2] (unit vectors), got {self.node_delta!r}")
        if self.cruise_speed > 1.0:
            raise ValueError(f"ModularAgentConfig.cruise_speed must be <= 1 (an action), got {self.cruise_speed!r}")
        if self.min_speed > self.cruise_speed:
            raise ValueError(f"ModularAgentConfig.min_speed must be <= cruise_speed, got {self.min_speed!r}")
        for name in ("turn_in_place_deg", "explore_window_deg"):
            if getattr(self, name) > 180.0:
                raise ValueError(f"ModularAgentConfig.{name} must be <= 180, got {getattr(self, name)!r}")


# ---------------------------------------------------------------------- the observation descriptor
@functools.lru_cache(maxsize=8)
def _projection(dim: int, features: int, seed: int) -> np.ndarray:
    """The fixed ``(dim, features)`` Gaussian projection of :func:`ray_descriptor` (read-only, cached)."""
    matrix = np.random.default_rng(seed).standard_normal((dim, features)) / math.sqrt(features)
    matrix.flags.writeable = False
    return matrix


def _check_images(obs: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``depth`` (float64) and ``semantic`` (int64) of an observation, both ``(E, A)``, or ValueError."""
    if not isinstance(obs, Mapping):
        raise ValueError(f"an observation must be a dict, got {type(obs).__name__}")
    for key in ("depth", "semantic"):
        if key not in obs:
            raise ValueError(f"the observation has no {key!r} (keys: {sorted(obs)})")
    depth = np.asarray(obs["depth"], dtype=np.float64)
    semantic = np.asarray(obs["semantic"])
    if depth.ndim != 2 or semantic.shape != depth.shape or 0 in depth.shape:
        raise ValueError(f"depth and semantic must have one shape (E, A), got {depth.shape} and {semantic.shape}")
    if not np.isfinite(depth).all() or (depth < 0).any():
        raise ValueError("depth must be finite and >= 0")
    if semantic.dtype.kind not in "iu":
        raise ValueError(f"semantic must hold integer class ids, got dtype {semantic.dtype}")
    return depth, semantic.astype(np.int64)


def ray_descriptor(obs: Mapping[str, Any], dim: int = 64, seed: int = 0) -> np.ndarray:
    """A fixed (not learned), deterministic embedding of a range/semantic observation.

    The features are the centred log-range image, its columns rolled by the heading in ``obs["pose"]`` (when
    present) so that columns are world-frame azimuths and a place looks alike from any heading; the share of rays
    on each landmark class; and a small constant. A seeded Gaussian projection maps them to ``dim`` values.

    Args:
        obs: Observation with ``depth`` ``(E, A)`` ranges and ``semantic`` ``(E, A)`` class ids (optionally
            ``pose`` ``(3,)`` ``x, y, yaw``).
        dim: Width of the descriptor.
        seed: Seed of the projection.

    Returns:
        ``(dim,)`` float32, unit L2 norm.

    Raises:
        ValueError: Missing keys, mismatched or non-2-D images, non-finite or negative ranges, a bad pose, or a
            ``dim``/``seed`` that is not an integer >= 1 / >= 0.
    """
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim < 1:
        raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    depth, semantic = _check_images(obs)
    azimuths = depth.shape[1]
    profile = np.log1p(depth)  # (E, A)
    profile -= profile.mean()
    if "pose" in obs:
        pose = np.asarray(obs["pose"], dtype=np.float64).reshape(-1)
        if pose.shape != (3,) or not np.isfinite(pose).all():
            raise ValueError(f"pose must be 3 finite numbers (x, y, yaw), got {pose}")
        shift = round(float(pose[2]) / (2 * math.pi) * azimuths) % azimuths
        profile = np.roll(profile, shift, axis=1)  # column j now looks along world azimuth j * 2 pi / A
    hist = np.bincount(np.clip(semantic.reshape(-1), 0, _NUM_CLASSES - 1), minlength=_NUM_CLASSES)[1:]  # (16,)
    features = np.concatenate(
        [profile.reshape(-1) / math.sqrt(profile.size), _SEMANTIC_WEIGHT * hist / semantic.size, [_BIAS_FEATURE]]
    )  # (E*A + 17,)
    v = _projection(int(dim), features.size, int(seed)) @ features  # (dim,)
    return (v / np.linalg.norm(v)).astype(np.float32)


# ---------------------------------------------------------------------- the agent
class ModularAgent:
    """Plans on the Mem4Nav memory (:class:`~embodia.agents.planner.StreetPlanner`), follows the plan by pure pursuit.

    Usage: ``reset()`` at the start of an episode; ``observe(obs)`` for steps someone else drives (the memory is
    written, nothing decided); ``act(obs)`` for the agent's own steps.

    Args:
        config: Agent settings; None for the defaults.
        geometry: The sensor's ray fan (``RayGeometry.from_env(env)``); None for the default fan.
    """

    def __init__(self, config: ModularAgentConfig | None = None, geometry: RayGeometry | None = None) -> None:
        from embodia.memory.mem4nav import Mem4NavMemory  # torch loads with the memory only
        from embodia.memory.topology import TopologyConfig

        self.config = cfg = config or ModularAgentConfig()
        self.geometry = g = geometry or RayGeometry()
        self.perception = RayPerception(g)
        mem_cfg = memory_config(cfg.memory, embed_dim=cfg.embed_dim, topology=TopologyConfig(delta=cfg.node_delta))
        self.memory = None if mem_cfg is None else Mem4NavMemory(mem_cfg)
        self.planner = StreetPlanner(cfg, g, self.memory)
        tracker = self.planner.junctions
        self._rows, self._half = tracker.rows, tracker.half  # the exploring beam looks through the same rows
        self._bearings = np.array([wrap_angle(a) for a in tracker.azimuths])  # (A,) robot frame in [-pi, pi)
        self.stats = PlanStats()
        self.reset()

    # ------------------------------------------------------------------ episode state
    def reset(self, seed: int | None = None) -> None:
        """Forgets the episode: memory contents, junctions, instruction and plan.

        Args:
            seed: Unused (the agent is deterministic); accepted so that the agent is a rollout controller.
        """
        self.stats.reset()
        if self.memory is not None:
            self.memory.reset()
        self.planner.reset()
        self._instruction: str | None = None
        self._turn_to: float | None = None  # heading to turn to before exploring (after "go back")
        self.target: np.ndarray | None = None
        self.anchor: np.ndarray | None = None
        self.plan: list[int] = []

    @property
    def first_plan(self) -> list[int]:
        """The first graph path planned under the current instruction (node ids)."""
        return self.planner.first_plan

    def memory_snapshot(self) -> dict[str, np.ndarray] | None:
        """What the memory holds now, for the episode file; None without memory.

        Returns:
            ``Mem4NavMemory.view_snapshot()`` plus ``graph.plan``: the node ids of the first path planned under the
            last instruction.
        """
        if self.memory is None:
            return None
        return {**self.memory.view_snapshot(), "graph.plan": np.asarray(self.first_plan, dtype=np.int64)}

    def info(self) -> dict[str, Any]:
        """Metadata recorded with each episode: agent, memory mode, mean latency per action (ms), memory figures."""
        out: dict[str, Any] = {"agent": "modular", "memory": self.config.memory}
        out.update(self.stats.act_figures())  # absent when the agent never acted
        out.update({f"memory/{k}": v for k, v in self.memory_stats().items()})
        return out

    def memory_stats(self) -> dict[str, float]:
        """Memory figures of the episode.

        Returns:
            ``Mem4NavMemory.stats()`` (nothing without memory), ``junctions`` (the junctions remembered) and which
            memory parts located the goal (``StreetPlanner.source_rates``).
        """
        stats = {} if self.memory is None else self.memory.stats()
        stats["junctions"] = float(len(self.planner.junctions))
        stats.update(self.planner.source_rates())
        return stats

    # ------------------------------------------------------------------ perception and memory
    def observe(self, obs: Mapping[str, Any]) -> Percept:
        """Perceives one observation and writes it into memory, without deciding anything.

        Args:
            obs: UrbanNav observation: ``depth`` and ``semantic`` ``(E, A)``, ``pose`` ``(3,)`` (an
                ``instruction`` is not needed).

        Returns:
            The step's :class:`~embodia.agents.perception.Percept`.

        Raises:
            ValueError: A malformed observation (missing keys, wrong shapes, non-finite values).
        """
        depth, semantic = _check_images(obs)
        percept = self.perception(obs)
        if self.memory is not None:
            self.memory.update(
                ray_descriptor(obs, self.config.embed_dim, self.config.descriptor_seed),
                percept.position,
                percept.points,
                percept.point_classes,
                detections=(percept.detection_classes, percept.detection_positions),
            )
        self.planner.observe(depth, semantic, percept.position[:2], percept.yaw)
        return percept

    # ------------------------------------------------------------------ deciding
    def act(self, obs: Mapping[str, Any]) -> np.ndarray:
        """Observes (see :meth:`observe`) and decides the next action.

        After the call, ``target`` holds the goal landmark's estimated position ``(2,)``, ``anchor`` the street
        point the agent heads for and stops at ``(2,)`` (both None while exploring) and ``plan`` the graph path.

        Args:
            obs: UrbanNav observation with ``depth``, ``semantic``, ``pose`` and ``instruction``.

        Returns:
            ``(3,)`` float32 action in ``[-1, 1]``: forward speed, yaw rate, stop (1 to stop, else -1).

        Raises:
            ValueError: A malformed observation (see :meth:`observe`) or a missing or non-text instruction.
        """
        with self.stats.acting():
            return self._decide(obs)

    def _decide(self, obs: Mapping[str, Any]) -> np.ndarray:
        instruction = obs.get("instruction") if isinstance(obs, Mapping) else None
        if not isinstance(instruction, str):
            raise ValueError(f"the observation needs an 'instruction' string, got {type(instruction).__name__}")
        percept = self.observe(obs)
        position, yaw = percept.position[:2], percept.yaw
        if instruction != self._instruction:
            self._instruction = instruction
            self.planner.new_instruction()
            self._turn_to = wrap_angle(yaw + math.pi) if " back " in f" {instruction.lower()} " else None
        plan = self.planner.plan(require_goal_landmark(instruction), percept)
        self.target, self.anchor, self.plan = plan.target, plan.anchor, plan.path
        if not plan.found:
            return self._explore(np.asarray(obs["depth"], dtype=np.float64), yaw)
        self._turn_to = None
        distance = float(np.linalg.norm(plan.anchor - position))
        if distance <= self.config.stop_distance:
            return _STOP.copy()
        return self._pursue(position, yaw, plan.waypoints, distance)

    # ------------------------------------------------------------------ control
    def _pursue(self, position: np.ndarray, yaw: float, waypoints: np.ndarray, distance: float) -> np.ndarray:
        """Pure pursuit of the look-ahead point on ``waypoints`` (``distance``: to the anchor, for slowing down)."""
        cfg = self.config
        point = self.planner.lookahead_point(position, waypoints)
        error = wrap_angle(math.atan2(point[1] - position[1], point[0] - position[0]) - yaw)
        return self._drive(error, min(1.0, max(distance / cfg.approach_distance, cfg.min_speed / cfg.cruise_speed)))

    def _drive(self, error: float, speed_scale: float = 1.0) -> np.ndarray:
        """Action turning towards a heading ``error`` (radians) away, driving slower the larger it is."""
        cfg = self.config
        turn_limit = math.radians(cfg.turn_in_place_deg)
        yaw_rate = float(np.clip(cfg.yaw_gain * error, -1.0, 1.0))
        speed = 0.0 if abs(error) >= turn_limit else cfg.cruise_speed * (1.0 - abs(error) / turn_limit) * speed_scale
        return np.array([speed, yaw_rate, -1.0], dtype=np.float32)

    def _explore(self, depth: np.ndarray, yaw: float) -> np.ndarray:
        """Reactive street following: turn around after "go back", then drive down the freest corridor."""
        cfg = self.config
        if self._turn_to is not None:
            error = wrap_angle(self._turn_to - yaw)
            if abs(error) > math.radians(_TURNED_DEG):
                return self._drive(error)
            self._turn_to = None
        free = depth[self._rows].min(axis=0)  # (A,)
        corridor = np.min([np.roll(free, s) for s in range(-self._half, self._half + 1)], axis=0)  # a robot-wide beam
        ahead = np.abs(self._bearings) <= math.radians(cfg.explore_window_deg)
        if corridor[ahead].max() < cfg.open_corridor:
            ahead[:] = True  # blocked ahead: turn towards the most open direction
        score = np.where(ahead, corridor - 0.5 * np.abs(self._bearings), -np.inf)  # among equals, the smaller turn
        return self._drive(float(self._bearings[int(np.argmax(score))]))


def modular_controller(memory: str, act_from_phase: int, env: gym.Env) -> Any:
    """A rollout controller for ``env``: a :class:`ModularAgent` with ``memory``, under the hand-over protocol.

    Picklable as ``functools.partial(modular_controller, memory, act_from_phase)`` (a Ray actor builds its own).

    Args:
        memory: Memory mode (``embodia.agents.ablation.MEMORY_MODES``).
        act_from_phase: 0: the agent drives the whole episode; k >= 1: the env's scripted expert drives the phases
            before k while the agent watches (:class:`~embodia.agents.handover.HandoverController`).
        env: The UrbanNav environment.
    """
    from embodia.agents.handover import HandoverController
    from embodia.envs.experts import make_expert

    agent = ModularAgent(ModularAgentConfig(memory=memory), RayGeometry.from_env(env))
    if act_from_phase == 0:
        return agent
    return HandoverController(env, make_expert(env), agent, act_from_phase)


def modular_factory(memory: str = "full", act_from_phase: int = 1) -> tuple[Any, str]:
    """The controller registry's ``"modular"`` entry: a picklable factory of :func:`modular_controller` and its label.

    Args:
        memory: Memory mode (``embodia.agents.ablation.MEMORY_MODES``).
        act_from_phase: 0: the agent drives the whole episode; k >= 1: the env's expert drives the phases before k.

    Returns:
        ``(factory, label)``: ``factory(env)`` builds the controller (``functools.partial``, picklable for Ray
        actors); ``label`` names it in reports, e.g. ``"modular agent (memory full, acting from phase 1)"``.

    Raises:
        ValueError: An unknown memory mode or a negative ``act_from_phase`` (checked here, before any env is made).
    """
    memory = check_memory_mode(memory)
    if isinstance(act_from_phase, bool) or not isinstance(act_from_phase, int) or act_from_phase < 0:
        raise ValueError(f"--act-from-phase must be an integer >= 0, got {act_from_phase!r}")
    label = f"modular agent (memory {memory}, acting from phase {act_from_phase})"
    return functools.partial(modular_controller, memory, act_from_phase), label
