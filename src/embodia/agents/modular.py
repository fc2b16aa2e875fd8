"""The modular backbone: a non-learned UrbanNav agent that plans on the Mem4Nav memory's topology graph.

Every step the agent perceives (:mod:`embodia.agents.perception`) and writes the step into a
:class:`~embodia.memory.mem4nav.Mem4NavMemory`: points and classes into the octree, a fixed descriptor of the view
(:func:`ray_descriptor`) and the position into the topology graph, landmark detections into the STM. It also notes
junction centres: where the range readings to both sides (and ahead) open up, the cross street's centre line lies
midway between the building corners that bound the opening. When it acts it decides:

1. The goal is the instruction's last landmark (:func:`~embodia.agents.tokenizer.goal_landmark_class`).
2. Its position comes from memory: octree leaves whose class histogram holds the goal class and STM entries of
   that class, grouped into one cluster per object; among the objects beside the streets the agent has driven
   ("the landmark you passed", not a look-alike seen from afar), the one with the most support wins; the agent
   then keeps to that object for the rest of the instruction.
3. Its street anchor, where "at the landmark" is: for a corner landmark (one near a junction centre) the junction,
   for a mid-block one the nearest point of the streets driven (the graph's edges, routed through the junctions).
4. A Dijkstra path on the topology graph from the current node to the node nearest the anchor gives waypoints along
   streets the agent has driven; pure pursuit follows them and then the anchor, and the agent stops within
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
import itertools
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from embodia.agents.ablation import check_memory_mode, memory_config
from embodia.agents.perception import Percept, RayGeometry, RayPerception
from embodia.agents.tokenizer import goal_landmark_class
from embodia.envs.nav.city import NUM_LANDMARK_CLASSES

__all__ = ["ModularAgent", "ModularAgentConfig", "ray_descriptor"]

_NUM_CLASSES = NUM_LANDMARK_CLASSES + 1  # semantic ids 0 (none) .. 16
_SEMANTIC_WEIGHT = 4.0  # scale of the class histogram against the depth profile in the descriptor
_BIAS_FEATURE = 0.1  # a constant feature keeps the descriptor nonzero for an all-open view
_SIDE_DEG = 11.0  # half-width of the ray windows to the sides and ahead
_STEADY_DEG = 2.0  # junction sightings need the heading to change less than this per step
_TURNED_DEG = 20.0  # the turn-around after "go back" ends within this of the opposite heading
_STOP = np.array([0.0, 0.0, 1.0], dtype=np.float32)


@dataclass
class ModularAgentConfig:
    """Settings of :class:`ModularAgent` (distances in metres, angles in degrees)."""

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
    lookahead: float = 3.0
    """Pure-pursuit look-ahead distance along the planned path."""
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
    landmark_offset: float = 5.0
    """Without streets to project on, a landmark far off the heading line is pursued to this distance short of it."""
    open_range: float = 10.0
    """A range reading longer than this (or a hit farther than this to the side) is open space. Buildings stand
    7 m from a street's centre line, so both sides open means a cross street: a junction."""
    corner_radius: float = 8.2
    """A landmark within this distance of a junction centre is a corner landmark, anchored at the junction (corner
    landmarks were measured at most 7.8 m from their junction's estimate, mid-block ones at least 8.45 m)."""
    junction_half_width: float = 7.0
    """Distance along the street from a junction's centre to the building corners around it (street half-width
    plus sidewalk), used when only one corner of the cross street is in view."""
    junction_merge: float = 6.0
    """Junction estimates closer than this to a remembered junction centre are averaged into it."""
    cluster_radius: float = 3.0
    """Remembered points of the goal class within this distance of a cluster's first point are one object."""
    pass_distance: float = 9.0
    """An object farther than this from the streets driven (or, without a graph, from the heading line) was not
    passed, only seen from afar (landmarks stand 5.5 m from a street, 7.8 m from a junction's centre)."""
    explore_window_deg: float = 60.0
    """When exploring, the freest corridor is sought within this angle of the heading first."""
    open_corridor: float = 12.0
    """When exploring, a corridor ahead shorter than this is blocked (the end of a junction or a dead end)."""

    def __post_init__(self) -> None:
        check_memory_mode(self.memory)
        for name in ("embed_dim", "descriptor_seed"):
            value, low = getattr(self, name), 1 if name == "embed_dim" else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"ModularAgentConfig.{name} must be an integer >= {low}, got {value!r}")
        positive = (
            "lookahead", "yaw_gain", "turn_in_place_deg", "cruise_speed", "min_speed", "approach_distance",
            "stop_distance", "landmark_offset", "open_range", "corner_radius", "junction_half_width",
            "junction_merge", "cluster_radius", "pass_distance", "explore_window_deg", "open_corridor",
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


# ---------------------------------------------------------------------- geometry helpers
def _wrap(angle: float) -> float:
    """``angle`` wrapped to ``[-pi, pi)``."""
    return float((angle + math.pi) % (2 * math.pi) - math.pi)


def _unit(yaw: float) -> np.ndarray:
    """``(2,)`` unit heading vector."""
    return np.array([math.cos(yaw), math.sin(yaw)])


def _closest_on_segments(point: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The closest point to ``point`` on each segment ``starts[i] -> ends[i]`` (``(S, 2)`` each), and its distance.

    Returns:
        ``(S, 2)`` closest points and ``(S,)`` distances.
    """
    seg = ends - starts
    length2 = np.einsum("ij,ij->i", seg, seg)
    t = np.einsum("ij,ij->i", point - starts, seg) / np.maximum(length2, 1e-12)
    closest = starts + np.clip(t, 0.0, 1.0)[:, None] * seg
    return closest, np.linalg.norm(closest - point, axis=1)


# ---------------------------------------------------------------------- the agent
class ModularAgent:
    """Plans on the Mem4Nav topology graph and follows the plan with pure pursuit (see the module docstring).

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
        # Rows that look just above the horizon: over the perimeter wall and the ground, into the buildings.
        self._elevations = np.radians(np.linspace(g.min_elevation_deg, g.max_elevation_deg, g.elevations))
        rows = np.flatnonzero((self._elevations >= math.radians(2.0)) & (self._elevations <= math.radians(15.0)))
        self._rows = rows if rows.size else np.array([int(np.argmin(np.abs(self._elevations - math.radians(5.0))))])
        self._azimuths = np.arange(g.azimuths) * (2 * math.pi / g.azimuths)  # (A,) robot frame, 0 = ahead
        self._bearings = np.array([_wrap(a) for a in self._azimuths])  # (A,) in [-pi, pi)
        half = max(1, round(math.radians(_SIDE_DEG) / (2 * math.pi / g.azimuths)))
        self._half = half  # half-width of the side/ahead windows and of the exploring beam, in columns
        window = np.arange(-half, half + 1)
        self._left = (round(g.azimuths / 4) + window) % g.azimuths
        self._right = (round(3 * g.azimuths / 4) + window) % g.azimuths
        self._ahead = window % g.azimuths
        self.reset()

    # ------------------------------------------------------------------ episode state
    def reset(self, seed: int | None = None) -> None:
        """Forgets the episode: memory contents, junctions, instruction and plan.

        Args:
            seed: Unused (the agent is deterministic); accepted so that the agent is a rollout controller.
        """
        self._act_ms: list[float] = []
        if self.memory is not None:
            self.memory.reset()
        self._steps = 0
        self._junctions: list[np.ndarray] = []  # per junction: [x, y, weight]
        self._last_yaw: float | None = None
        self._open_run: list[np.ndarray] = []  # positions of the current stretch with both sides open
        self._open_sightings: list[np.ndarray] = []  # its estimates of the junction centre
        self._run_from_start = False  # whether that stretch began at the episode's first observation
        self._instruction: str | None = None
        self._turn_to: float | None = None  # heading to turn to before exploring (after "go back")
        self.target: np.ndarray | None = None
        self.anchor: np.ndarray | None = None
        self.plan: list[int] = []
        self.first_plan: list[int] = []  # the first graph path planned under the current instruction

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
        if self._act_ms:  # absent when the agent never acted
            out["act_ms_mean"] = float(np.mean(self._act_ms))
        out.update({f"memory/{k}": v for k, v in self.memory_stats().items()})
        return out

    def memory_stats(self) -> dict[str, float]:
        """``Mem4NavMemory.stats()`` (nothing without memory) plus ``junctions``, the junctions remembered."""
        stats = {} if self.memory is None else self.memory.stats()
        stats["junctions"] = float(len(self._junctions))
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
        self._track_junctions(depth, semantic, percept.position[:2], percept.yaw)
        self._steps += 1
        return percept

    def _in_junction(self, depth: np.ndarray) -> bool:
        """Whether the range readings to both sides (around +-90 degrees) and ahead are open.

        Open ahead tells a junction from turning on the spot mid-block, where the sides look along the street.
        """
        rows = depth[self._rows]
        limit = self.config.open_range
        return bool(min(rows[:, cols].min() for cols in (self._left, self._right, self._ahead)) > limit)

    def _track_junctions(self, depth: np.ndarray, semantic: np.ndarray, position: np.ndarray, yaw: float) -> None:
        """Notes junction centres, one per stretch driven with both sides open (see :meth:`_run_centre`).

        Steps that turn are skipped (turning on the spot at the city's edge can look open on three sides). Without
        memory only the junction being driven through is known: a stretch is forgotten when it ends.
        """
        turning = self._last_yaw is not None and abs(_wrap(yaw - self._last_yaw)) > math.radians(_STEADY_DEG)
        self._last_yaw = yaw
        if turning:
            return
        if self._in_junction(depth):
            if not self._open_run:
                self._run_from_start = self._steps == 0
            self._open_run.append(position.copy())
            offset = self._cross_street_offset(depth, semantic)
            if offset is not None:
                self._open_sightings.append(position + offset * _unit(yaw))
            return
        if self._open_run:
            if self.memory is not None:
                self._add_junction(self._run_centre(), max(len(self._open_sightings), 1))
            self._open_run, self._open_sightings = [], []

    def _cross_street_offset(self, depth: np.ndarray, semantic: np.ndarray) -> float | None:
        """Distance ahead (negative: behind) of the cross street's centre line, from the building corners.

        On each side the opening around +-90 degrees is bounded, ahead and behind, by the first rays that hit
        something less than ``open_range`` to the side: the buildings beside the cross street, near their corners.
        Two corners on a side put the centre line midway, one puts it ``junction_half_width`` past the corner. A
        landmark on the sidewalk hides the corner behind it: such a corner is not used.

        Returns:
            The offset in metres, or None when no corner is in view.
        """
        g, cfg = self.geometry, self.config
        row = int(self._rows[0])
        ranges = depth[row] * math.cos(self._elevations[row])  # (A,) horizontal ranges
        along = ranges * np.cos(self._azimuths)  # (A,) hit coordinates ahead of the agent
        closed = (depth[row] < g.max_range) & (np.abs(ranges * np.sin(self._azimuths)) <= cfg.open_range)
        a = g.azimuths
        offsets = []
        for side, ahead in ((round(a / 4), -1), (round(3 * a / 4), 1)):  # on the left, ahead is a lower column
            corners: dict[bool, float] = {}
            for direction in (ahead, -ahead):
                for step in range(1, a // 4):
                    col = (side + direction * step) % a
                    if closed[col]:
                        if semantic[row, col] == 0:
                            corners[direction == ahead] = float(along[col])
                        break
            if len(corners) == 2:
                offsets.append((corners[True] + corners[False]) / 2)
            elif True in corners:
                offsets.append(corners[True] - cfg.junction_half_width)
            elif False in corners:
                offsets.append(corners[False] + cfg.junction_half_width)
        return float(np.mean(offsets)) if offsets else None

    def _run_centre(self) -> np.ndarray:
        """``(2,)`` centre of the current open stretch.

        The median of its sightings of the cross street's centre line (robust to stray readings); with no building
        corner in view, the median of its positions, or, for a stretch open since the episode's first step (it has
        no entry), its first position.
        """
        if self._open_sightings:
            return np.median(self._open_sightings, axis=0)
        if self._run_from_start:
            return self._open_run[0].copy()
        return np.median(self._open_run, axis=0)

    def _add_junction(self, centre: np.ndarray, weight: int) -> None:
        """Averages a stretch's centre into a remembered junction within ``junction_merge``, or adds a junction."""
        for junction in self._junctions:
            if np.linalg.norm(junction[:2] - centre) < self.config.junction_merge:
                junction[2] += weight
                junction[:2] += (centre - junction[:2]) * weight / junction[2]
                return
        self._junctions.append(np.array([centre[0], centre[1], float(weight)]))

    def _junction_centres(self) -> np.ndarray:
        """``(J, 2)`` remembered junction centres, and the one being driven through unless it is one of them."""
        centres = [j[:2] for j in self._junctions]
        if self._open_run:
            current = self._run_centre()
            if not any(np.linalg.norm(c - current) < self.config.junction_merge for c in centres):
                centres.append(current)
        return np.array(centres, dtype=np.float64).reshape(-1, 2)

    def _streets(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The streets the agent has driven as segments ``(starts (S, 2), ends (S, 2))``, or None without a graph.

        The topology graph's edges, routed through the junction centres they pass (:meth:`_via_junctions`), and a
        segment from each junction centre to its nearest node (a junction at the end of the route, such as the
        start, lies beyond the last node).
        """
        mem = self.memory
        if mem is None or not mem.config.use_graph or not mem.graph.graph.number_of_edges():
            return None
        snap = mem.graph.snapshot()
        nodes = snap["positions"][:, :2].astype(np.float64)
        junctions = self._junction_centres()
        legs = [self._via_junctions(nodes[u], nodes[v], junctions) for u, v in snap["edges"]]
        legs += [np.stack([j, nodes[np.argmin(np.linalg.norm(nodes - j, axis=1))]]) for j in junctions]
        return np.concatenate([leg[:-1] for leg in legs]), np.concatenate([leg[1:] for leg in legs])

    def _via_junctions(self, start: np.ndarray, end: np.ndarray, junctions: np.ndarray) -> np.ndarray:
        """``(K, 2)`` polyline from ``start`` to ``end`` through the junction centres it passes near.

        Graph nodes lie metres apart: the edge from the last node of one street to the first of the next cuts the
        corner (through the buildings). Junction centres within ``junction_half_width`` of the straight line, and
        off it, are inserted in order.
        """
        seg = end - start
        length2 = float(seg @ seg)
        if not len(junctions) or length2 == 0.0:
            return np.stack([start, end])
        t = (junctions - start) @ seg / length2  # (J,)
        off = np.linalg.norm(junctions - (start + np.clip(t, 0.0, 1.0)[:, None] * seg), axis=1)
        inside = (t > 0.0) & (t < 1.0) & (off > 0.5) & (off <= self.config.junction_half_width)
        return np.concatenate([start[None], junctions[inside][np.argsort(t[inside])], end[None]])

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
        start = time.perf_counter()
        action = self._decide(obs)
        self._act_ms.append(1e3 * (time.perf_counter() - start))
        return action

    def _decide(self, obs: Mapping[str, Any]) -> np.ndarray:
        instruction = obs.get("instruction") if isinstance(obs, Mapping) else None
        if not isinstance(instruction, str):
            raise ValueError(f"the observation needs an 'instruction' string, got {type(instruction).__name__}")
        percept = self.observe(obs)
        position, yaw = percept.position[:2], percept.yaw
        if instruction != self._instruction:
            self._instruction = instruction
            self.first_plan = []
            self._turn_to = _wrap(yaw + math.pi) if " back " in f" {instruction.lower()} " else None
            self.target = None
        goal = goal_landmark_class(instruction)
        self.target = None if goal is None else self._locate(goal, percept)
        self.plan = []
        if self.target is None:
            self.anchor = None
            return self._explore(np.asarray(obs["depth"], dtype=np.float64), yaw)
        self._turn_to = None
        self.anchor = self._street_anchor(self.target, position, yaw)
        distance = float(np.linalg.norm(self.anchor - position))
        if distance <= self.config.stop_distance:
            return _STOP.copy()
        return self._pursue(position, yaw, self._waypoints(self.anchor), distance)

    def _locate(self, goal: int, percept: Percept) -> np.ndarray | None:
        """``(2,)`` position of the goal landmark (see the module docstring), or None when it is unknown."""
        mem, cfg = self.memory, self.config
        if mem is None:  # only what is in view, and only beside the street ahead or behind
            seen = percept.detection_classes == goal
            if not seen.any():
                return None
            target = percept.detection_positions[seen][0, :2].copy()
            rel, heading = target - percept.position[:2], _unit(percept.yaw)
            return target if abs(heading[0] * rel[1] - heading[1] * rel[0]) <= cfg.pass_distance else None
        points, weights = [], []
        if mem.config.use_octree and len(mem.octree):
            keys = mem.octree.keys()
            counts = mem.octree.histograms(keys)[:, goal]
            hit = counts > 0
            if hit.any():
                points.append(mem.octree.centroids(keys[hit])[:, :2])
                weights.append(counts[hit].astype(np.float64))
        if mem.config.use_stm and len(mem.stm):
            snap = mem.stm.snapshot()
            hit = snap["class_ids"] == goal
            if hit.any():
                points.append((snap["rel_positions"][hit] + snap["anchors"][hit])[:, :2])
                weights.append(snap["freq"][hit].astype(np.float64))
        if not points:
            return None
        clusters = self._clusters(np.concatenate(points), np.concatenate(weights))
        if self.target is not None:  # keep to the object chosen (objects seen later may gather more support)
            centres = np.array([c[0] for c in clusters])
            dist = np.linalg.norm(centres - self.target, axis=1)
            if dist.min() <= 2 * cfg.cluster_radius:
                return centres[int(np.argmin(dist))]
        streets = self._streets()
        if streets is not None:
            passed = [c for c in clusters if _closest_on_segments(c[0], *streets)[1].min() <= cfg.pass_distance]
            clusters = passed or clusters
        return max(clusters, key=lambda c: c[1])[0]

    def _clusters(self, points: np.ndarray, weights: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Greedy clustering of ``(N, 2)`` weighted points, heaviest first.

        Returns:
            ``(weighted centre (2,), total weight)`` per cluster.
        """
        seeds: list[np.ndarray] = []
        members: list[list[int]] = []
        for i in np.argsort(-weights, kind="stable"):
            for seed, rows in zip(seeds, members, strict=True):
                if np.linalg.norm(points[i] - seed) <= self.config.cluster_radius:
                    rows.append(int(i))
                    break
            else:
                seeds.append(points[i])
                members.append([int(i)])
        return [(np.average(points[r], axis=0, weights=weights[r]), float(weights[r].sum())) for r in members]

    def _street_anchor(self, target: np.ndarray, position: np.ndarray, yaw: float) -> np.ndarray:
        """``(2,)`` estimated street point that counts as "at" the landmark at ``target`` (``(2,)``)."""
        cfg = self.config
        junctions = self._junction_centres()
        if len(junctions):
            dist = np.linalg.norm(junctions - target, axis=1)
            if dist.min() <= cfg.corner_radius:
                return junctions[int(np.argmin(dist))].copy()
        streets = self._streets()
        if streets is not None:
            closest, dist = _closest_on_segments(target, *streets)
            return closest[int(np.argmin(dist))]
        heading = _unit(yaw)
        abeam = position + float((target - position) @ heading) * heading
        if np.linalg.norm(target - abeam) <= cfg.pass_distance:
            return abeam
        away = position - target
        return target + away / max(float(np.linalg.norm(away)), 1e-9) * cfg.landmark_offset

    def _waypoints(self, anchor: np.ndarray) -> np.ndarray:
        """``(K, 2)`` points to follow to ``anchor``: the graph path's nodes (through junctions), then the anchor."""
        mem = self.memory
        if mem is None or not mem.config.use_graph or mem.graph.current is None:
            return anchor[None].copy()
        graph = mem.graph
        path = graph.shortest_path(graph.current, graph.nearest_node(np.array([anchor[0], anchor[1], 0.0])))
        if not path:
            return anchor[None].copy()
        self.plan = path
        if not self.first_plan:
            self.first_plan = list(path)
        nodes = np.array([graph.node_position(n)[:2] for n in path])  # (P, 2)
        junctions = self._junction_centres()
        legs = [self._via_junctions(a, b, junctions)[:-1] for a, b in itertools.pairwise(nodes)]
        return np.concatenate([*legs, nodes[-1:], anchor[None]])

    # ------------------------------------------------------------------ control
    def _pursue(self, position: np.ndarray, yaw: float, waypoints: np.ndarray, distance: float) -> np.ndarray:
        """Pure pursuit of the look-ahead point on ``waypoints`` (``distance``: to the anchor, for slowing down)."""
        cfg = self.config
        point = self._lookahead_point(position, waypoints)
        error = _wrap(math.atan2(point[1] - position[1], point[0] - position[0]) - yaw)
        return self._drive(error, min(1.0, max(distance / cfg.approach_distance, cfg.min_speed / cfg.cruise_speed)))

    def _lookahead_point(self, position: np.ndarray, waypoints: np.ndarray) -> np.ndarray:
        """The point ``lookahead`` metres along ``waypoints`` (``(K, 2)``) past their point closest to the agent."""
        if len(waypoints) == 1:
            return waypoints[0]
        closest, dist = _closest_on_segments(position, waypoints[:-1], waypoints[1:])
        k = int(np.flatnonzero(dist <= dist.min() + 0.5)[-1])  # the last segment about as close as the closest
        point, remaining = closest[k], self.config.lookahead
        for end in waypoints[k + 1 :]:
            step = float(np.linalg.norm(end - point))
            if step >= remaining:
                return point + (end - point) * (remaining / step)
            remaining -= step
            point = end
        return waypoints[-1]

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
            error = _wrap(self._turn_to - yaw)
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
