"""The street graph of a city: intersections as nodes, street segments as weighted edges.

Positions on the streets are ``EdgePoint``s (an edge and a fraction along it). Street-graph distances between
any two such points come from an all-pairs shortest-path table over intersections, so a distance query during
a step costs a handful of float operations (the progress reward and SPD use it).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import networkx as nx
import numpy as np


@dataclass(frozen=True)
class EdgePoint:
    """A point on a street: ``t`` in [0, 1] along edge ``edge`` from its first to its second node."""

    edge: int
    t: float


@dataclass(frozen=True)
class StreetRoute:
    """A shortest route between two street points.

    Attributes:
        points: ``(M, 2)`` polyline from the start point through the intersections to the end point.
        nodes: intersections passed, in order.
        length: street-graph length of the route in metres.
    """

    points: np.ndarray
    nodes: tuple[int, ...]
    length: float


class StreetGraph:
    """An undirected street network embedded in the plane.

    Args:
        positions: ``(N, 2)`` intersection coordinates in metres.
        edges: ``(E, 2)`` int pairs of node indices, one per street segment.
    """

    def __init__(self, positions: np.ndarray, edges: np.ndarray) -> None:
        self.positions = np.asarray(positions, dtype=np.float64)
        self.edges = np.asarray(edges, dtype=np.int64)
        if self.positions.ndim != 2 or self.positions.shape[1] != 2:
            raise ValueError(f"positions must be (N, 2), got {self.positions.shape}")
        if self.edges.ndim != 2 or self.edges.shape[1] != 2 or len(self.edges) == 0:
            raise ValueError(f"edges must be a non-empty (E, 2) array, got {self.edges.shape}")
        self._start = self.positions[self.edges[:, 0]]  # (E, 2)
        self._delta = self.positions[self.edges[:, 1]] - self._start  # (E, 2)
        self.lengths = np.linalg.norm(self._delta, axis=1)  # (E,)
        if (self.lengths <= 0).any():
            raise ValueError("edges must join distinct positions")
        self._len2 = self.lengths**2
        self.graph = nx.Graph()
        for i, p in enumerate(self.positions):
            self.graph.add_node(i, pos=(float(p[0]), float(p[1])))
        for e, (u, v) in enumerate(self.edges):
            self.graph.add_edge(int(u), int(v), weight=float(self.lengths[e]), edge=e)
        if not nx.is_connected(self.graph):
            raise ValueError("the street graph must be connected")
        self.node_distances = nx.floyd_warshall_numpy(self.graph, weight="weight")  # (N, N)
        for array in (self.positions, self.edges, self.lengths, self.node_distances, self._start, self._delta):
            array.flags.writeable = False  # graphs are shared between envs (see ``grid``)
        self._edge_of = {(int(u), int(v)): e for e, (u, v) in enumerate(self.edges)}
        self._edge_of.update({(int(v), int(u)): e for e, (u, v) in enumerate(self.edges)})

    @classmethod
    def grid(cls, nodes_x: int, nodes_y: int, pitch: float) -> StreetGraph:
        """A Manhattan grid of ``nodes_x * nodes_y`` intersections ``pitch`` metres apart.

        Node ``i * nodes_y + j`` sits at ``(i * pitch, j * pitch)``. Grids are cached and shared: a graph is
        read-only, and its all-pairs distances cost most of a large city's reset.
        """
        return _grid(int(nodes_x), int(nodes_y), float(pitch))

    @classmethod
    def _build_grid(cls, nodes_x: int, nodes_y: int, pitch: float) -> StreetGraph:
        ii, jj = np.meshgrid(np.arange(nodes_x), np.arange(nodes_y), indexing="ij")
        positions = np.stack([ii.ravel(), jj.ravel()], axis=1).astype(np.float64) * pitch
        edges = []
        for i in range(nodes_x):
            for j in range(nodes_y):
                k = i * nodes_y + j
                if i + 1 < nodes_x:
                    edges.append((k, k + nodes_y))
                if j + 1 < nodes_y:
                    edges.append((k, k + 1))
        return cls(positions, np.array(edges))

    @property
    def num_nodes(self) -> int:
        """Number of intersections."""
        return len(self.positions)

    def edge_between(self, u: int, v: int) -> int:
        """Index of the edge joining nodes ``u`` and ``v`` (KeyError if none)."""
        return self._edge_of[(u, v)]

    def point(self, ep: EdgePoint) -> np.ndarray:
        """Coordinates ``(2,)`` of a street point."""
        return self._start[ep.edge] + ep.t * self._delta[ep.edge]

    def at_node(self, node: int) -> EdgePoint:
        """The street point at intersection ``node`` (on its first incident edge)."""
        e = next(iter(self.graph.edges(node, data="edge")))[2]
        return EdgePoint(e, 0.0 if int(self.edges[e, 0]) == node else 1.0)

    def project(self, p: np.ndarray) -> tuple[EdgePoint, float]:
        """Nearest street point to ``p`` ``(2,)`` and its Euclidean distance from ``p``."""
        t = np.clip(((p - self._start) * self._delta).sum(axis=1) / self._len2, 0.0, 1.0)  # (E,)
        nearest = self._start + t[:, None] * self._delta  # (E, 2)
        d2 = ((nearest - p) ** 2).sum(axis=1)  # (E,)
        e = int(np.argmin(d2))
        return EdgePoint(e, float(t[e])), float(np.sqrt(d2[e]))

    def nearest_node(self, p: np.ndarray) -> tuple[int, float]:
        """Nearest intersection to ``p`` and its distance."""
        d = np.linalg.norm(self.positions - p, axis=1)
        k = int(np.argmin(d))
        return k, float(d[k])

    def _node_at(self, ep: EdgePoint) -> int | None:
        """The intersection a street point sits exactly on, if any."""
        if ep.t == 0.0:
            return int(self.edges[ep.edge, 0])
        if ep.t == 1.0:
            return int(self.edges[ep.edge, 1])
        return None

    def _endpoint_costs(self, ep: EdgePoint) -> tuple[tuple[int, float], tuple[int, float]]:
        u, v = (int(x) for x in self.edges[ep.edge])
        length = float(self.lengths[ep.edge])
        return (u, ep.t * length), (v, (1.0 - ep.t) * length)

    def distance(self, a: EdgePoint, b: EdgePoint) -> float:
        """Street-graph distance in metres between two street points."""
        best = np.inf
        if a.edge == b.edge:
            best = abs(a.t - b.t) * float(self.lengths[a.edge])
        for x, cost_a in self._endpoint_costs(a):
            for y, cost_b in self._endpoint_costs(b):
                best = min(best, cost_a + self.node_distances[x, y] + cost_b)
        return float(best)

    def distance_from(self, p: np.ndarray, b: EdgePoint) -> float:
        """Street-graph distance from the street point nearest to ``p`` to ``b``."""
        return self.distance(self.project(p)[0], b)

    def node_path(self, source: int, target: int, rng: np.random.Generator | None = None) -> list[int]:
        """A shortest node path; with ``rng``, ties between equally short paths are broken at random."""
        path = [source]
        node = source
        while node != target:
            remaining = self.node_distances[node, target]
            options = [
                int(n)
                for n in sorted(self.graph.neighbors(node))
                if np.isclose(self.graph[node][n]["weight"] + self.node_distances[n, target], remaining)
            ]
            node = options[int(rng.integers(len(options)))] if rng is not None else options[0]
            path.append(node)
        return path

    def route(self, a: EdgePoint, b: EdgePoint, rng: np.random.Generator | None = None) -> StreetRoute:
        """A shortest route between two street points (ties broken at random with ``rng``)."""
        pa, pb = self.point(a), self.point(b)
        if a.edge == b.edge:
            direct = abs(a.t - b.t) * float(self.lengths[a.edge])
        else:
            direct = np.inf
        candidates = []
        for x, cost_a in self._endpoint_costs(a):
            for y, cost_b in self._endpoint_costs(b):
                candidates.append((cost_a + float(self.node_distances[x, y]) + cost_b, x, y))
        best = min(c[0] for c in candidates)
        if direct <= best + 1e-9:
            return StreetRoute(np.stack([pa, pb]), (), float(direct))
        ties = [c for c in candidates if np.isclose(c[0], best)]
        length, x, y = ties[int(rng.integers(len(ties)))] if rng is not None else ties[0]
        nodes = self.node_path(x, y, rng)
        # A route that starts or ends exactly on an intersection passes it: list it even when the tie-break
        # went through the edge's other end (same geometry, so the same polyline below).
        start_node, end_node = self._node_at(a), self._node_at(b)
        if start_node is not None and nodes[0] != start_node:
            nodes.insert(0, start_node)
        if end_node is not None and nodes[-1] != end_node:
            nodes.append(end_node)
        points = [pa, *(self.positions[n] for n in nodes), pb]
        deduped = [points[0]]
        for q in points[1:]:
            if np.linalg.norm(q - deduped[-1]) > 1e-9:
                deduped.append(q)
        if len(deduped) == 1:
            deduped.append(deduped[0])
        return StreetRoute(np.stack(deduped), tuple(nodes), float(length))


@functools.lru_cache(maxsize=16)
def _grid(nodes_x: int, nodes_y: int, pitch: float) -> StreetGraph:
    return StreetGraph._build_grid(nodes_x, nodes_y, pitch)
