"""Semantic topology graph of Mem4Nav: landmark/intersection nodes joined by traversal edges (MEM4NAV.md §2).

Each observation `(v_t, p_t)` either creates a node or updates an existing one:

* Node creation needs BOTH gates: the L2-normalised embedding `v̂_t = v_t / ||v_t||` is far from every node,
  `min_u ||v̂_t - φ(u)||_2 > delta`, AND the agent is far from every node, `min_u ||p_t - p(u)||_2 > spatial_gate`.
* Otherwise an existing node is updated: the spatially nearest node when some node lies within `spatial_gate`
  (the agent is physically there), else (the embedding gate blocked creation) the node nearest in descriptor space.
* A node's `descriptor` is the running mean of the unit embeddings assigned to it, stored as that mean (not
  renormalised, so its norm is <= 1 and the mean stays exact); `φ(u) = descriptor / ||descriptor||` is what the
  embedding gate compares against. Its `position` is the running mean of the agent positions assigned to it.
* When the current node changes from `u` to `w`, the edge `(u, w)` gets the traversal weight
  `alpha·||p(u) - p(w)||_2 + beta·c_instr`, with the node positions after this observation's update and
  `c_instr = 1 - instruction_similarity` when a similarity is given, else `config.c_instr`. Re-traversing an
  edge (either direction) averages the weights of all its traversals. Staying at a node adds no self-loop.

Node ids are 0, 1, 2, ... in creation order; numpy arrays of descriptors and positions, kept in sync with the
networkx graph, make each observation one vectorised O(N·d) pass.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import networkx as nx
import numpy as np

from embodia.validation import check_vector, is_int, is_real

__all__ = ["SemanticTopologyGraph", "TopologyConfig"]


@dataclass
class TopologyConfig:
    """Configuration of the semantic topology graph."""

    delta: float = 0.7
    """Embedding gate `δ`: a new node needs `min_u ||v̂_t - φ(u)||_2 > delta` (unit vectors, so in [0, 2])."""
    spatial_gate: float = 5.0
    """Spatial gate, metres: a new node also needs the agent farther than this from every node."""
    alpha: float = 1.0
    """Edge-weight factor of the distance between the two nodes' positions."""
    beta: float = 0.5
    """Edge-weight factor of the instruction-landmark cost `c_instr`."""
    c_instr: float = 0.1
    """Instruction-landmark cost used when `observe` gets no similarity (with one, `c_instr = 1 - similarity`)."""
    embedding_dim: int = 384
    """Width `d` of the observation embeddings."""

    def __post_init__(self) -> None:
        """Validate the fields.

        Raises:
            ValueError: If a field is out of range.
        """
        for name in ("delta", "spatial_gate", "alpha", "beta", "c_instr"):
            value = getattr(self, name)
            if not is_real(value) or not math.isfinite(value) or value < 0.0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not is_int(self.embedding_dim) or self.embedding_dim < 1:
            raise ValueError(f"embedding_dim must be an integer >= 1, got {self.embedding_dim!r}")


class SemanticTopologyGraph:
    """Online semantic topology graph with two-gate node creation and averaged traversal edges.

    Attributes:
        config: The configuration.
        graph: The networkx graph. Node attributes: `descriptor` ((d,) float64 running mean of unit embeddings),
            `position` ((3,) float64 running mean), `count` (observations assigned), `created_step`, `last_step`.
            Edge attributes: `weight` (mean traversal weight), `traversals` (count).

    Args:
        config: The configuration; None for the defaults.
    """

    def __init__(self, config: TopologyConfig | None = None) -> None:
        self.config = config if config is not None else TopologyConfig()
        self.reset()

    def reset(self) -> None:
        """Remove every node and edge and zero the counters."""
        cap = 16
        self.graph = nx.Graph()
        self._desc = np.zeros((cap, self.config.embedding_dim), dtype=np.float64)
        self._phi = np.zeros((cap, self.config.embedding_dim), dtype=np.float64)
        self._pos = np.zeros((cap, 3), dtype=np.float64)
        self._count = np.zeros(cap, dtype=np.int64)
        self._n = 0
        self._current: int | None = None
        self._observations = 0
        self._traversals = 0

    @property
    def current(self) -> int | None:
        """Id of the node the last observation was assigned to; None before the first observation."""
        return self._current

    def __len__(self) -> int:
        return self._n

    def observe(
        self,
        embedding: np.ndarray,
        position: np.ndarray,
        step: int,
        instruction_similarity: float | None = None,
    ) -> int:
        """Assign an observation to a node (new or existing) and record the traversal from the previous node.

        Args:
            embedding: Observation embedding `v_t`, shape `(d,)`, finite and nonzero (it is L2-normalised here).
            position: Agent position `p_t`, shape `(3,)`, metres.
            step: Time step, an integer >= 0 (stored as `created_step` / `last_step`).
            instruction_similarity: Similarity in `[-1, 1]` between the instruction and the new node's landmark;
                the edge cost is then `1 - similarity`. None: use `config.c_instr`.

        Returns:
            The id of the current node (the one created or updated).

        Raises:
            ValueError: On an embedding or position of the wrong shape, NaN/inf values, an all-zero embedding, a
                step that is not an integer >= 0, or a similarity that is not a finite number in `[-1, 1]`.
        """
        emb = check_vector(embedding, self.config.embedding_dim, "embedding")
        pos = check_vector(position, 3, "position")
        if not is_int(step) or step < 0:
            raise ValueError(f"step must be an integer >= 0, got {step!r}")
        step = int(step)
        sim = instruction_similarity
        if sim is not None and (not is_real(sim) or not math.isfinite(sim) or not -1.0 <= sim <= 1.0):
            raise ValueError(f"instruction_similarity must be a finite number in [-1, 1], got {sim!r}")
        scale = float(np.abs(emb).max())
        if scale == 0.0:
            raise ValueError("embedding must have a nonzero norm")
        unit = emb / scale  # pre-scaling keeps the norm finite for huge finite values
        unit /= np.linalg.norm(unit)

        node = self._match(unit, pos)
        if node is None:
            node = self._add_node(unit, pos, step)
        else:
            self._update_node(node, unit, pos, step)
        prev = self._current
        if prev is not None and prev != node:
            c = self.config.c_instr if sim is None else 1.0 - float(sim)
            self._traverse(prev, node, c)
        self._current = node
        self._observations += 1
        return node

    def _match(self, unit: np.ndarray, pos: np.ndarray) -> int | None:
        """Existing node to update, or None when both gates call for a new node."""
        n = self._n
        if n == 0:
            return None
        space = np.linalg.norm(self._pos[:n] - pos, axis=1)
        nearest_space = int(np.argmin(space))
        if space[nearest_space] <= self.config.spatial_gate:
            return nearest_space
        emb_dist = np.linalg.norm(self._phi[:n] - unit, axis=1)
        nearest_emb = int(np.argmin(emb_dist))
        if emb_dist[nearest_emb] <= self.config.delta:
            return nearest_emb
        return None

    def _add_node(self, unit: np.ndarray, pos: np.ndarray, step: int) -> int:
        """Create a node from one observation and return its id."""
        node = self._n
        if node == self._pos.shape[0]:
            grow = 2 * node
            self._desc = _grow(self._desc, grow)
            self._phi = _grow(self._phi, grow)
            self._pos = _grow(self._pos, grow)
            self._count = _grow(self._count, grow)
        self._desc[node] = unit
        self._phi[node] = unit
        self._pos[node] = pos
        self._count[node] = 1
        self._n += 1
        self.graph.add_node(
            node,
            descriptor=self._desc[node].copy(),
            position=self._pos[node].copy(),
            count=1,
            created_step=step,
            last_step=step,
        )
        return node

    def _update_node(self, node: int, unit: np.ndarray, pos: np.ndarray, step: int) -> None:
        """Fold one observation into a node's running means."""
        c = int(self._count[node]) + 1
        self._desc[node] += (unit - self._desc[node]) / c
        self._pos[node] += (pos - self._pos[node]) / c
        self._count[node] = c
        d_norm = float(np.linalg.norm(self._desc[node]))
        # A mean of opposite unit vectors can vanish; keep the previous direction then.
        if d_norm > 1e-12:
            self._phi[node] = self._desc[node] / d_norm
        attrs = self.graph.nodes[node]
        attrs["descriptor"] = self._desc[node].copy()
        attrs["position"] = self._pos[node].copy()
        attrs["count"] = c
        attrs["last_step"] = step

    def _traverse(self, u: int, v: int, c_instr: float) -> None:
        """Record one traversal of edge `(u, v)`, averaging its weight over traversals."""
        w = self.config.alpha * float(np.linalg.norm(self._pos[u] - self._pos[v])) + self.config.beta * c_instr
        if self.graph.has_edge(u, v):
            data = self.graph.edges[u, v]
            t = data["traversals"] + 1
            data["weight"] += (w - data["weight"]) / t
            data["traversals"] = t
        else:
            self.graph.add_edge(u, v, weight=w, traversals=1)
        self._traversals += 1

    def nearest_node(self, position: np.ndarray) -> int | None:
        """Node whose position is nearest to `position` (ties: lowest id).

        Args:
            position: Query position, shape `(3,)`, metres.

        Returns:
            The node id, or None when the graph is empty.

        Raises:
            ValueError: On a position of the wrong shape or with NaN/inf values.
        """
        pos = check_vector(position, 3, "position")
        if self._n == 0:
            return None
        return int(np.argmin(np.linalg.norm(self._pos[: self._n] - pos, axis=1)))

    def node_position(self, node: int) -> np.ndarray:
        """Running-mean position of a node.

        Args:
            node: Node id.

        Returns:
            Shape `(3,)`, float64 (a copy).

        Raises:
            ValueError: If the node does not exist.
        """
        self._check_node(node, "node")
        return self._pos[int(node)].copy()

    def shortest_path(self, source: int, target: int) -> list[int]:
        """Minimum-weight path between two nodes (Dijkstra on `weight`).

        Args:
            source: Start node id.
            target: End node id.

        Returns:
            Node ids from `source` to `target` inclusive (`[source]` when equal); `[]` when unreachable.

        Raises:
            ValueError: If either node does not exist.
        """
        self._check_node(source, "source")
        self._check_node(target, "target")
        try:
            path = nx.dijkstra_path(self.graph, int(source), int(target), weight="weight")
        except nx.NetworkXNoPath:
            return []
        return [int(u) for u in path]

    def path_length(self, path: list[int]) -> float:
        """Sum of the edge weights along a path.

        Args:
            path: Node ids; consecutive ids must be joined by an edge.

        Returns:
            The total weight; 0.0 for a path of fewer than two nodes.

        Raises:
            ValueError: If a node does not exist or two consecutive nodes are not joined by an edge.
        """
        nodes = list(path)
        for u in nodes:
            self._check_node(u, "path node")
        total = 0.0
        for u, v in itertools.pairwise(nodes):
            if not self.graph.has_edge(int(u), int(v)):
                raise ValueError(f"no edge between nodes {int(u)} and {int(v)}")
            total += float(self.graph.edges[int(u), int(v)]["weight"])
        return total

    def _check_node(self, node: object, name: str) -> None:
        """Raise ValueError unless `node` is an existing node id."""
        if not is_int(node) or not 0 <= int(node) < self._n:
            raise ValueError(f"{name} {node!r} is not a node of the graph ({self._n} nodes)")

    def snapshot(self) -> dict[str, np.ndarray]:
        """The graph as arrays (`N` nodes in id order, `E` edges sorted, each as `(u, v)` with `u < v`).

        Returns:
            `{"node_ids": (N,) int64, "positions": (N, 3) float32, "descriptors": (N, d) float32 (running means,
            not renormalised), "counts": (N,) int64, "edges": (E, 2) int64, "edge_weights": (E,) float32,
            "edge_traversals": (E,) int64}`.
        """
        n = self._n
        edges = sorted((min(u, v), max(u, v), d["weight"], d["traversals"]) for u, v, d in self.graph.edges(data=True))
        return {
            "node_ids": np.arange(n, dtype=np.int64),
            "positions": self._pos[:n].astype(np.float32),
            "descriptors": self._desc[:n].astype(np.float32),
            "counts": self._count[:n].copy(),
            "edges": np.array([(u, v) for u, v, _, _ in edges], dtype=np.int64).reshape(-1, 2),
            "edge_weights": np.array([w for _, _, w, _ in edges], dtype=np.float32),
            "edge_traversals": np.array([t for _, _, _, t in edges], dtype=np.int64),
        }

    def stats(self) -> dict[str, int]:
        """Counters since the last reset.

        Returns:
            `{"nodes", "edges", "observations", "traversals", "bytes"}`: `traversals` counts node changes;
            `bytes` is the size of the synchronised numpy arrays.
        """
        return {
            "nodes": self._n,
            "edges": self.graph.number_of_edges(),
            "observations": self._observations,
            "traversals": self._traversals,
            "bytes": int(self._desc.nbytes + self._phi.nbytes + self._pos.nbytes + self._count.nbytes),
        }


def _grow(arr: np.ndarray, rows: int) -> np.ndarray:
    """Copy of `arr` with `rows` rows (zero-padded)."""
    out = np.zeros((rows, *arr.shape[1:]), dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out
