"""The street planner shared by the modular and the learned UrbanNav agents: where the goal is, and how to get there.

Every step the planner watches the range image for junctions (:class:`JunctionTracker`): where the readings to
both sides (and ahead) open up, the cross street's centre line lies midway between the building corners that bound
the opening. When asked for a plan it:

1. finds the goal landmark in memory (``Mem4NavMemory.locate``: STM detections and octree leaves of the class,
   clustered into objects); among the objects beside the streets the agent has driven ("the landmark you passed",
   not a look-alike seen from afar) the one with the most support wins, and the planner keeps to that object for
   the rest of the instruction;
2. picks its street anchor, where "at the landmark" is: for a corner landmark (one near a junction centre) the
   junction, for a mid-block one the nearest point of the streets driven (the graph's edges, routed through the
   junctions);
3. plans a Dijkstra path on the topology graph to the node nearest the anchor; the waypoints are the path's nodes
   (through the junctions they pass) and then the anchor. :meth:`StreetPlanner.lookahead_point` is the point
   ``lookahead`` metres along them.

Without a graph the anchor is taken on the current heading line (no streets are known) and the waypoints are the
anchor alone. Without memory the goal is only what is in view, beside the street ahead or behind, and only the
junction being driven through is known. Nothing is learned; every distance default fits the default city (8 m
streets, 3 m sidewalks, landmarks 5.5 m from a street's centre line).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from embodia.agents.perception import Percept, RayGeometry
from embodia.memory.mem4nav import Mem4NavMemory, closest_on_segments

__all__ = ["JunctionTracker", "Plan", "PlannerConfig", "StreetPlanner", "unit", "wrap_angle"]

_SIDE_DEG = 11.0  # half-width of the ray windows to the sides and ahead
_STEADY_DEG = 2.0  # junction sightings need the heading to change less than this per step


def wrap_angle(angle: float) -> float:
    """``angle`` wrapped to ``[-pi, pi)``."""
    return float((angle + math.pi) % (2 * math.pi) - math.pi)


def unit(yaw: float) -> np.ndarray:
    """``(2,)`` unit heading vector."""
    return np.array([math.cos(yaw), math.sin(yaw)])


@dataclass
class PlannerConfig:
    """Distances (metres) of :class:`StreetPlanner`; every default fits the default city."""

    lookahead: float = 3.0
    """Distance of the look-ahead point along the planned path."""
    landmark_offset: float = 5.0
    """Without streets to project on, a landmark far off the heading line is approached to this distance short of
    it."""
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

    def __post_init__(self) -> None:
        for name in (f.name for f in PLANNER_FIELDS):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{type(self).__name__}.{name} must be a finite number, got {value!r}")
            if value <= 0:
                raise ValueError(f"{type(self).__name__}.{name} must be > 0, got {value!r}")


PLANNER_FIELDS = tuple(PlannerConfig.__dataclass_fields__.values())
"""The fields of :class:`PlannerConfig` (a config that extends it is a planner config too)."""


@dataclass
class Plan:
    """What :meth:`StreetPlanner.plan` decided for one step.

    Attributes:
        target: ``(2,)`` estimated goal landmark position, or None when it is not known.
        anchor: ``(2,)`` street point that counts as "at" the landmark, or None.
        waypoints: ``(K, 2)`` points to follow to the anchor (the last is the anchor); ``(0, 2)`` when unknown.
        path: Topology-graph node ids of the plan (empty without a graph).
    """

    target: np.ndarray | None = None
    anchor: np.ndarray | None = None
    waypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    path: list[int] = field(default_factory=list)

    @property
    def found(self) -> bool:
        """Whether the goal is known (a target and an anchor)."""
        return self.anchor is not None


class JunctionTracker:
    """Junction centres from the range image, one per stretch driven with both sides open.

    Args:
        config: The planner's distances (``open_range``, ``junction_half_width``, ``junction_merge``).
        geometry: The sensor's ray fan.
        remember: Keep junctions after their stretch ends (an agent with memory); otherwise only the junction
            being driven through is known.
    """

    def __init__(self, config: PlannerConfig, geometry: RayGeometry, remember: bool) -> None:
        self.config, self.geometry, self.remember = config, geometry, remember
        g = geometry.sensor
        self._elevations = np.radians(np.linspace(g.min_elevation_deg, g.max_elevation_deg, g.elevations))
        # Rows that look just above the horizon: over the perimeter wall and the ground, into the buildings.
        rows = np.flatnonzero((self._elevations >= math.radians(2.0)) & (self._elevations <= math.radians(15.0)))
        self.rows = rows if rows.size else np.array([int(np.argmin(np.abs(self._elevations - math.radians(5.0))))])
        self.azimuths = np.arange(g.azimuths) * (2 * math.pi / g.azimuths)  # (A,) robot frame, 0 = ahead
        self.half = max(1, round(math.radians(_SIDE_DEG) / (2 * math.pi / g.azimuths)))
        window = np.arange(-self.half, self.half + 1)
        self._left = (round(g.azimuths / 4) + window) % g.azimuths
        self._right = (round(3 * g.azimuths / 4) + window) % g.azimuths
        self._ahead = window % g.azimuths
        self.reset()

    def reset(self) -> None:
        """Forgets every junction."""
        self._steps = 0
        self._junctions: list[np.ndarray] = []  # per junction: [x, y, weight]
        self._last_yaw: float | None = None
        self._open_run: list[np.ndarray] = []  # positions of the current stretch with both sides open
        self._open_sightings: list[np.ndarray] = []  # its estimates of the junction centre
        self._run_from_start = False  # whether that stretch began at the episode's first observation

    def __len__(self) -> int:
        """Junctions remembered (the one being driven through not counted)."""
        return len(self._junctions)

    def observe(self, depth: np.ndarray, semantic: np.ndarray, position: np.ndarray, yaw: float) -> None:
        """Notes one step (``depth``/``semantic`` ``(E, A)``, ``position`` ``(2,)``, ``yaw`` radians).

        Steps that turn are skipped (turning on the spot at the city's edge can look open on three sides).
        """
        turning = self._last_yaw is not None and abs(wrap_angle(yaw - self._last_yaw)) > math.radians(_STEADY_DEG)
        self._last_yaw = yaw
        first = self._steps == 0
        self._steps += 1
        if turning:
            return
        if self._in_junction(depth):
            if not self._open_run:
                self._run_from_start = first
            self._open_run.append(position.copy())
            offset = self._cross_street_offset(depth, semantic)
            if offset is not None:
                self._open_sightings.append(position + offset * unit(yaw))
            return
        if self._open_run:
            if self.remember:
                self._add(self._run_centre(), max(len(self._open_sightings), 1))
            self._open_run, self._open_sightings = [], []

    def centres(self) -> np.ndarray:
        """``(J, 2)`` remembered junction centres, and the one being driven through unless it is one of them."""
        centres = [j[:2] for j in self._junctions]
        if self._open_run:
            current = self._run_centre()
            if not any(np.linalg.norm(c - current) < self.config.junction_merge for c in centres):
                centres.append(current)
        return np.array(centres, dtype=np.float64).reshape(-1, 2)

    def _in_junction(self, depth: np.ndarray) -> bool:
        """Whether the range readings to both sides (around +-90 degrees) and ahead are open.

        Open ahead tells a junction from turning on the spot mid-block, where the sides look along the street.
        """
        rows = depth[self.rows]
        limit = self.config.open_range
        return bool(min(rows[:, cols].min() for cols in (self._left, self._right, self._ahead)) > limit)

    def _cross_street_offset(self, depth: np.ndarray, semantic: np.ndarray) -> float | None:
        """Distance ahead (negative: behind) of the cross street's centre line, from the building corners.

        On each side the opening around +-90 degrees is bounded, ahead and behind, by the first rays that hit
        something less than ``open_range`` to the side: the buildings beside the cross street, near their corners.
        Two corners on a side put the centre line midway, one puts it ``junction_half_width`` past the corner. A
        landmark on the sidewalk hides the corner behind it: such a corner is not used.

        Returns:
            The offset in metres, or None when no corner is in view.
        """
        g, cfg = self.geometry.sensor, self.config
        row = int(self.rows[0])
        ranges = depth[row] * math.cos(self._elevations[row])  # (A,) horizontal ranges
        along = ranges * np.cos(self.azimuths)  # (A,) hit coordinates ahead of the agent
        closed = (depth[row] < g.max_range) & (np.abs(ranges * np.sin(self.azimuths)) <= cfg.open_range)
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

    def _add(self, centre: np.ndarray, weight: int) -> None:
        """Averages a stretch's centre into a remembered junction within ``junction_merge``, or adds a junction."""
        for junction in self._junctions:
            if np.linalg.norm(junction[:2] - centre) < self.config.junction_merge:
                junction[2] += weight
                junction[:2] += (centre - junction[:2]) * weight / junction[2]
                return
        self._junctions.append(np.array([centre[0], centre[1], float(weight)]))


class StreetPlanner:
    """Locates the goal landmark in memory and plans a street path to it (see the module docstring).

    Usage: ``reset()`` per episode; ``observe(depth, semantic, position, yaw)`` every step; ``new_instruction()``
    when the instruction changes; ``plan(goal_class, percept)`` when deciding.

    Args:
        config: Distances (any config extending :class:`PlannerConfig`).
        geometry: The sensor's ray fan.
        memory: The agent's memory (None: only what is in view).

    Attributes:
        junctions: The junction tracker.
        first_plan: The first graph path planned under the current instruction.
    """

    def __init__(self, config: PlannerConfig, geometry: RayGeometry, memory: Mem4NavMemory | None) -> None:
        self.config, self.memory = config, memory
        self.junctions = JunctionTracker(config, geometry, remember=memory is not None)
        self.reset()

    def reset(self) -> None:
        """Forgets the episode: junctions, the chosen object, the first plan and the source counts."""
        self.junctions.reset()
        self.new_instruction()
        self.reset_counts()

    def new_instruction(self) -> None:
        """Forgets the chosen object and the first plan (a new instruction names a new goal)."""
        self._target: np.ndarray | None = None
        self.first_plan: list[int] = []

    def reset_counts(self) -> None:
        """Zeroes :meth:`source_rates`' counters."""
        self._plans, self._found, self._from_stm, self._from_leaves = 0, 0, 0, 0

    def source_rates(self) -> dict[str, float]:
        """Which memory parts located the goal, over the plans made since :meth:`reset_counts`.

        Returns:
            ``goal_found_rate`` (plans with a located goal), ``locate_stm_rate`` and ``locate_leaf_rate`` (plans
            whose chosen object had STM detections / octree-leaf points of the class behind it); empty before the
            first plan.
        """
        if not self._plans:
            return {}
        return {
            "goal_found_rate": self._found / self._plans,
            "locate_stm_rate": self._from_stm / self._plans,
            "locate_leaf_rate": self._from_leaves / self._plans,
        }

    def observe(self, depth: np.ndarray, semantic: np.ndarray, position: np.ndarray, yaw: float) -> None:
        """Notes one step for junction tracking (``depth``/``semantic`` ``(E, A)``, ``position`` ``(2,)``)."""
        self.junctions.observe(depth, semantic, position, yaw)

    def plan(self, goal: int | None, percept: Percept) -> Plan:
        """The goal's position, its street anchor and the waypoints to it, from where ``percept`` was taken.

        Args:
            goal: The goal landmark class, or None (no goal named: nothing is known).
            percept: The current step's percept (its position, heading and, without memory, its detections).
        """
        position, yaw = percept.position[:2], percept.yaw
        self._target = None if goal is None else self._locate(goal, percept)
        self._plans += 1
        if self._target is None:
            return Plan()
        self._found += 1
        anchor = self._street_anchor(self._target, position, yaw)
        path, waypoints = self._waypoints(anchor)
        if path and not self.first_plan:
            self.first_plan = list(path)
        return Plan(self._target.copy(), anchor, waypoints, path)

    def streets(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The streets the agent has driven as segments ``(starts (S, 2), ends (S, 2))``, or None without a graph.

        The topology graph's edges, routed through the junction centres they pass (:meth:`_via_junctions`), and a
        segment from each junction centre to its nearest node (a junction at the end of the route, such as the
        start, lies beyond the last node).
        """
        edges = None if self.memory is None else self.memory.driven_streets()
        if edges is None:
            return None
        starts, ends = edges
        nodes = np.unique(np.concatenate([starts, ends]), axis=0)
        junctions = self.junctions.centres()
        legs = [self._via_junctions(u, v, junctions) for u, v in zip(starts, ends, strict=True)]
        legs += [np.stack([j, nodes[np.argmin(np.linalg.norm(nodes - j, axis=1))]]) for j in junctions]
        return np.concatenate([leg[:-1] for leg in legs]), np.concatenate([leg[1:] for leg in legs])

    def lookahead_point(self, position: np.ndarray, waypoints: np.ndarray) -> np.ndarray:
        """The point ``lookahead`` metres along ``waypoints`` (``(K, 2)``) past their point closest to ``position``."""
        if len(waypoints) == 1:
            return waypoints[0]
        closest, dist = closest_on_segments(position, waypoints[:-1], waypoints[1:])
        k = int(np.flatnonzero(dist <= dist.min() + 0.5)[-1])  # the last segment about as close as the closest
        point, remaining = closest[k], self.config.lookahead
        for end in waypoints[k + 1 :]:
            step = float(np.linalg.norm(end - point))
            if step >= remaining:
                return point + (end - point) * (remaining / step)
            remaining -= step
            point = end
        return waypoints[-1]

    # ------------------------------------------------------------------ the steps of a plan
    def _locate(self, goal: int, percept: Percept) -> np.ndarray | None:
        """``(2,)`` position of the goal landmark (see the module docstring), or None when it is unknown."""
        cfg = self.config
        if self.memory is None:  # only what is in view, and only beside the street ahead or behind
            seen = percept.detection_classes == goal
            if not seen.any():
                return None
            target = percept.detection_positions[seen][0, :2].copy()
            rel, heading = target - percept.position[:2], unit(percept.yaw)
            return target if abs(heading[0] * rel[1] - heading[1] * rel[0]) <= cfg.pass_distance else None
        streets = self.streets()
        candidates = self.memory.locate(
            goal, streets=streets, cluster_radius=cfg.cluster_radius, pass_distance=cfg.pass_distance
        )
        if not candidates:
            return None
        chosen = None
        if self._target is not None:  # keep to the object chosen (objects seen later may gather more support)
            dist = np.linalg.norm(np.array([c.position[:2] for c in candidates]) - self._target, axis=1)
            if dist.min() <= 2 * cfg.cluster_radius:
                chosen = candidates[int(np.argmin(dist))]
        if chosen is None:
            passed = [c for c in candidates if c.passed] if streets is not None else []
            chosen = (passed or candidates)[0]
        self._from_stm += chosen.stm_support > 0
        self._from_leaves += chosen.leaf_support > 0
        return chosen.position[:2].copy()

    def _street_anchor(self, target: np.ndarray, position: np.ndarray, yaw: float) -> np.ndarray:
        """``(2,)`` estimated street point that counts as "at" the landmark at ``target`` (``(2,)``)."""
        cfg = self.config
        junctions = self.junctions.centres()
        if len(junctions):
            dist = np.linalg.norm(junctions - target, axis=1)
            if dist.min() <= cfg.corner_radius:
                return junctions[int(np.argmin(dist))].copy()
        streets = self.streets()
        if streets is not None:
            closest, dist = closest_on_segments(target, *streets)
            return closest[int(np.argmin(dist))]
        heading = unit(yaw)
        abeam = position + float((target - position) @ heading) * heading
        if np.linalg.norm(target - abeam) <= cfg.pass_distance:
            return abeam
        away = position - target
        return target + away / max(float(np.linalg.norm(away)), 1e-9) * cfg.landmark_offset

    def _waypoints(self, anchor: np.ndarray) -> tuple[list[int], np.ndarray]:
        """The graph path to ``anchor`` and the ``(K, 2)`` points to follow.

        The points are the path's nodes (through junctions), then the anchor; the anchor alone without a graph.
        """
        path = [] if self.memory is None else self.memory.plan_path(anchor)
        if not path:
            return [], anchor[None].copy()
        nodes = self.memory.node_positions(path)  # (P, 2)
        junctions = self.junctions.centres()
        legs = [self._via_junctions(a, b, junctions)[:-1] for a, b in itertools.pairwise(nodes)]
        return path, np.concatenate([*legs, nodes[-1:], anchor[None]])

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
