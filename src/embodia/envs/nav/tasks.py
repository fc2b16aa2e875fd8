"""Navigation tasks over a city: routes on the street graph and landmark-anchored instructions.

A task has one or more phases. Each phase has an instruction, a goal on the street graph (beside a landmark)
and the shortest reference route to it. ``UrbanNav-v0`` tasks have one phase ("go ... stop at the blue kiosk").
``UrbanNav-Return-v0`` tasks have two: an outbound route, then "go back to the red tower you passed", where the
tower is not in view from the end of the outbound route, so the agent must remember where it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from embodia.envs.nav.city import CityLayout, Landmark
from embodia.envs.nav.street_graph import EdgePoint, StreetGraph, StreetRoute

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


@dataclass(frozen=True)
class NavPhase:
    """One leg of a task.

    Attributes:
        instruction: what the agent is told during this phase.
        goal: the street point to reach.
        goal_landmark: index of the landmark that marks the goal.
        route: the shortest reference route from the phase's start to ``goal``.
    """

    instruction: str
    goal: EdgePoint
    goal_landmark: int
    route: StreetRoute


@dataclass(frozen=True)
class NavTask:
    """A navigation task: start pose and phases (the episode succeeds by stopping at the last phase's goal)."""

    start_position: np.ndarray
    start_yaw: float
    phases: tuple[NavPhase, ...]

    @property
    def reference_path(self) -> np.ndarray:
        """``(M, 2)`` concatenated reference polyline of all phases."""
        parts = [self.phases[0].route.points] + [p.route.points[1:] for p in self.phases[1:]]
        return np.concatenate(parts, axis=0)

    @property
    def reference_nodes(self) -> list[int]:
        """Intersections along the reference route, consecutive duplicates removed."""
        nodes: list[int] = []
        for phase in self.phases:
            for n in phase.route.nodes:
                if not nodes or nodes[-1] != n:
                    nodes.append(n)
        return nodes

    @property
    def shortest_length(self) -> float:
        """Total street length of the reference route, metres."""
        return float(sum(p.route.length for p in self.phases))


def _count_words(n: int) -> str:
    word = NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else str(n)
    return f"{word} intersection" + ("s" if n != 1 else "")


def _turn(d_in: np.ndarray, d_out: np.ndarray) -> str:
    cross = d_in[0] * d_out[1] - d_in[1] * d_out[0]
    if cross > 0.5:
        return "left"
    if cross < -0.5:
        return "right"
    return "straight" if d_in @ d_out > 0 else "around"


def _side(position: np.ndarray, heading: np.ndarray, landmark: np.ndarray) -> str:
    rel = landmark - position
    return "left" if heading[0] * rel[1] - heading[1] * rel[0] > 0 else "right"


def describe_route(
    city: CityLayout,
    route: StreetRoute,
    goal: Landmark,
    rng: np.random.Generator,
    final_verb: str = "stop at",
) -> str:
    """Writes a landmark-anchored instruction for ``route`` ending at ``goal``.

    Example: ``"Go straight through two intersections, then turn left at the red tower, and stop at the blue
    kiosk on your right."``

    Args:
        city: the layout (for the landmarks at each intersection).
        route: the route; its first point is the agent's start, facing the second point.
        goal: the landmark the route ends beside.
        rng: picks among landmarks when an intersection has several.
        final_verb: ``"stop at"`` or, for an intermediate goal, ``"go to"``.
    """
    points = route.points
    headings = np.diff(points, axis=0)
    headings = headings / np.linalg.norm(headings, axis=1, keepdims=True)
    clauses: list[str] = []
    straight = 0
    # Interior points of the polyline are the intersections after the start.
    first_is_node = bool(route.nodes) and np.allclose(points[0], city.graph.positions[route.nodes[0]])
    interior_nodes = route.nodes[1:] if first_is_node else route.nodes
    for k, node in enumerate(interior_nodes[: len(points) - 2]):
        turn = _turn(headings[k], headings[k + 1])
        if turn == "straight":
            straight += 1
            continue
        lead = f"go straight through {_count_words(straight)}, then " if straight else ""
        corners = city.corner_landmarks(node)
        if corners:
            landmark = corners[int(rng.integers(len(corners)))]
            clauses.append(f"{lead}turn {turn} at the {landmark.name}")
        else:
            clauses.append(f"{lead}turn {turn} at the next intersection")
        straight = 0
    side = _side(points[-2], headings[-1], goal.position)
    lead = f"go straight through {_count_words(straight)} and " if straight else ""
    if not clauses and not straight:
        lead = "go straight and "
    clauses.append(f"{lead}{final_verb} the {goal.name} on your {side}")
    text = ", ".join(clauses[:-1]) + (", and " if len(clauses) > 1 else "") + clauses[-1] + "."
    return text[0].upper() + text[1:]


def _goal_candidates(city: CityLayout) -> list[Landmark]:
    return [lm for lm in city.landmarks if lm.edge is not None]


def sample_follow_task(
    city: CityLayout,
    rng: np.random.Generator,
    *,
    min_length: float | None = None,
    max_length: float | None = None,
    final_verb: str = "stop at",
) -> NavTask:
    """Samples a start intersection, heading and a mid-block goal landmark, and describes the route.

    Args:
        city: the layout.
        rng: randomness.
        min_length: shortest allowed route, metres (default 1.5 blocks).
        max_length: longest allowed route, metres (default 6 blocks).
        final_verb: wording of the last clause.

    Raises:
        RuntimeError: the city has no route in the allowed length range.
    """
    pitch = city.config.pitch
    min_length = 1.5 * pitch if min_length is None else min_length
    max_length = 6.0 * pitch if max_length is None else max_length
    goals = _goal_candidates(city)
    if not goals:
        raise RuntimeError("the city has no mid-block landmark to use as a goal")
    graph = city.graph
    for _ in range(200):
        goal = goals[int(rng.integers(len(goals)))]
        start_node = int(rng.integers(graph.num_nodes))
        start = graph.at_node(start_node)
        route = graph.route(start, goal.anchor, rng)
        if not (min_length <= route.length <= max_length) or len(route.points) < 2:
            continue
        heading = route.points[1] - route.points[0]
        yaw = float(np.arctan2(heading[1], heading[0]))
        phase = NavPhase(describe_route(city, route, goal, rng, final_verb), goal.anchor, goal.index, route)
        return NavTask(route.points[0].copy(), yaw, (phase,))
    raise RuntimeError(f"no route between {min_length:.0f} m and {max_length:.0f} m found in this city")


def _passed_landmarks(city: CityLayout, route: StreetRoute) -> list[tuple[Landmark, float]]:
    """Landmarks beside ``route`` with the route distance at which they are passed."""
    graph = city.graph
    passed: list[tuple[Landmark, float]] = []
    travelled = 0.0
    cumulative = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(route.points, axis=0), axis=1))])
    for k in range(len(route.points) - 1):
        a, b = route.points[k], route.points[k + 1]
        travelled = cumulative[k]
        node_a, dist_a = graph.nearest_node(a)
        if dist_a < 1e-6:
            passed.extend((lm, travelled) for lm in city.corner_landmarks(node_a))
        mid = (a + b) / 2
        ep, _ = graph.project(mid)
        for lm in city.midblock_landmarks(ep.edge):
            s = float(np.dot(graph.point(lm.anchor) - a, (b - a) / np.linalg.norm(b - a)))
            if 0.0 <= s <= np.linalg.norm(b - a) - 1e-6:
                passed.append((lm, travelled + s))
    return passed


def _route_tail(route: StreetRoute, length: float, spacing: float = 0.5) -> list[tuple[np.ndarray, float]]:
    """Points (and headings) on the last ``length`` metres of ``route``, every ``spacing`` metres."""
    points = route.points
    seg = np.diff(points, axis=0)
    seg_len = np.linalg.norm(seg, axis=1)
    cumulative = np.concatenate([[0.0], np.cumsum(seg_len)])
    total = cumulative[-1]
    samples = []
    for s in np.arange(max(total - length, 0.0), total + 1e-9, spacing)[::-1]:
        k = int(np.clip(np.searchsorted(cumulative, s, side="right") - 1, 0, len(seg) - 1))
        if seg_len[k] == 0:
            continue
        point = points[k] + (s - cumulative[k]) / seg_len[k] * seg[k]
        samples.append((point, float(np.arctan2(seg[k][1], seg[k][0]))))
    return samples


def _retrace(graph: StreetGraph, route: StreetRoute, point: np.ndarray) -> StreetRoute:
    """The way back along ``route`` from its end to ``point`` (a point on it): the reversed tail of the route.

    A sub-path of a shortest route is a shortest route between its ends, so the way back is as short as any, and
    it is the one an agent that remembers its way out knows; a fresh shortest route would break the grid's ties
    at random and often cut through streets never driven (7 of 40 return tasks did).
    """
    points = route.points
    seg = np.diff(points, axis=0)  # (M-1, 2)
    seg_len = np.linalg.norm(seg, axis=1)
    t = np.clip(((point - points[:-1]) * seg).sum(axis=1) / np.maximum(seg_len**2, 1e-12), 0.0, 1.0)
    k = int(np.argmin(np.linalg.norm(points[:-1] + t[:, None] * seg - point, axis=1)))
    tail = np.concatenate([point[None], points[k + 1 :]])[::-1]  # route end -> point
    keep = np.concatenate([[True], np.linalg.norm(np.diff(tail, axis=0), axis=1) > 1e-9])
    tail = tail[keep]
    if len(tail) == 1:
        tail = np.concatenate([tail, tail])
    nodes = tuple(n for n in route.nodes[::-1] if np.linalg.norm(tail - graph.positions[n], axis=1).min() < 1e-6)
    return StreetRoute(np.ascontiguousarray(tail), nodes, float(np.linalg.norm(np.diff(tail, axis=0), axis=1).sum()))


def sample_return_task(
    city: CityLayout,
    rng: np.random.Generator,
    is_visible: Callable[[np.ndarray, float, Landmark], bool],
    *,
    view_radius: float = 3.0,
    min_return_length: float | None = None,
) -> NavTask:
    """Samples an outbound route and a return goal: a landmark passed on the way out, out of view at its end.

    Args:
        city: the layout.
        rng: randomness.
        is_visible: ``is_visible(position, yaw, landmark)`` says whether the landmark can be seen from a pose
            (the environment answers with ray casts in the compiled scene).
        view_radius: the landmark must be out of view from every point of the last ``view_radius`` (+0.5) metres
            of the outbound route, where the instruction may switch (the phase switches within the success
            radius of the outbound goal).
        min_return_length: the return goal lies at least this far back along the route (default one block).

    Raises:
        RuntimeError: no such task could be found in this city.
    """
    min_return_length = city.config.pitch if min_return_length is None else min_return_length
    for _ in range(200):
        outbound = sample_follow_task(city, rng, min_length=2.0 * city.config.pitch, final_verb="go to")
        first = outbound.phases[0]
        waypoint_landmark = city.landmarks[first.goal_landmark]
        passed = _passed_landmarks(city, first.route)
        counts: dict[int, int] = {}
        for lm, _ in passed:
            counts[lm.class_id] = counts.get(lm.class_id, 0) + 1
        end = first.route.length
        tail = _route_tail(first.route, view_radius + 0.5)
        candidates = [
            lm
            for lm, at in passed
            if counts[lm.class_id] == 1
            and lm.class_id != waypoint_landmark.class_id
            and end - at >= min_return_length
            and not any(is_visible(point, yaw, lm) for point, yaw in tail)
        ]
        if not candidates:
            continue
        target = candidates[int(rng.integers(len(candidates)))]
        shortest = city.graph.route(first.goal, target.anchor, rng)
        back = _retrace(city.graph, first.route, city.graph.point(target.anchor))
        if back.length < min_return_length or not np.isclose(back.length, shortest.length):
            continue
        instruction = f"Now go back to the {target.name} you passed, and stop there."
        second = NavPhase(instruction, target.anchor, target.index, back)
        return NavTask(outbound.start_position, outbound.start_yaw, (first, second))
    raise RuntimeError("no return task found in this city (too few landmarks?)")
