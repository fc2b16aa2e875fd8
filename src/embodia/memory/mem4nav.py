"""``Mem4NavMemory``: the facade agents use to write observations into, and read them back from, spatial memory.

One ``update`` per environment step:

1. the step's 3-D points (with their semantic classes) go into the sparse octree;
2. the observation embedding ``v_t`` and the agent's position update the semantic topology graph;
3. memory tokens are written through the reversible transformer ``R``: one for the current graph node and one
   for each of the octree leaves that received the most points this step (``leaf_writes_per_step``); every
   key keeps its read token, so a key's token accumulates its history (``embodia.memory.tokens``);
4. the written tokens go into the long-term memory (LTM) under keys ``proj([v ; p])`` in two namespaces
   (``"leaf"``, ``"node"``); landmark detections go into the short-term memory (STM) at positions relative to the
   current graph node.

``locate(class_id)`` retrieves by an instruction's landmark class instead of an embedding: STM entries of that
class together with octree leaves whose class histograms hold it (the octree leaves are the LTM's leaf keys),
clustered into candidate objects; each candidate says how much of its support came from each part.
``driven_streets`` and ``plan_path`` expose the topology graph to planners, so no agent reads the parts directly.

``retrieve`` runs the cascade of MEM4NAV.md §6: STM first; if its best cosine similarity reaches ``stm_threshold``
its hits are used, otherwise the LTM's top-m, decoded through ``R⁻¹`` and the heads ``π_v``, ``π_p``. The
result is a fixed-size ``MemoryReadout`` (padded, with a validity mask) that a policy attends over.

Every part can be switched off for ablations (``use_octree``, ``use_graph``, ``use_stm``, ``use_ltm``).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from embodia.memory.ltm import LongTermMemory, LTMConfig
from embodia.memory.octree import MORTON_BITS, OctreeConfig, SparseOctree, morton_encode
from embodia.memory.stm import ShortTermMemory, STMConfig
from embodia.memory.tokens import MemoryTokens, TokenConfig
from embodia.memory.topology import SemanticTopologyGraph, TopologyConfig
from embodia.validation import check_vector

SOURCE_NONE, SOURCE_STM, SOURCE_LTM_LEAF, SOURCE_LTM_NODE = 0, 1, 2, 3
_MAX_COORDINATE = 1e9  # inputs are cast to float32 for R and the LTM
"""Source flags of readout items (0 marks padding)."""


@dataclass
class Mem4NavConfig:
    """The whole memory: one config per part, plus ablation switches and the cascade's settings."""

    embed_dim: int = 128
    """Width d of observation embeddings (tokens are 2d). The paper uses 384; 128 keeps a CPU step under 2 ms."""
    token_depth: int = 2
    """Coupling blocks in R (the paper uses 6; 2 keeps a CPU step under 2 ms, see bench/memory_ops.py)."""
    token_mixer: str = "attention"
    """F in R's coupling blocks: "attention" (over the token and its neighbours) or "mlp"."""
    key_dim: int = 64
    """Width of the learned LTM key/query projection of ``[v ; p]``."""
    stm_threshold: float = 0.7
    """Use STM hits when their best cosine similarity reaches this (tau); otherwise fall back to the LTM."""
    leaf_writes_per_step: int = 4
    """Octree leaves whose tokens are written each step (those that received the most points)."""
    use_octree: bool = True
    """Ablation switch: store points and leaf tokens."""
    use_graph: bool = True
    """Ablation switch: build the topology graph and node tokens."""
    use_stm: bool = True
    """Ablation switch: the short-term memory."""
    use_ltm: bool = True
    """Ablation switch: the long-term memory."""
    octree: OctreeConfig = field(default_factory=OctreeConfig)
    """Sparse octree settings (``embedding_dim`` is set to ``embed_dim``)."""
    topology: TopologyConfig = field(default_factory=TopologyConfig)
    """Topology graph settings (``embedding_dim`` is set to ``embed_dim``)."""
    stm: STMConfig = field(default_factory=STMConfig)
    """Short-term memory settings (``embedding_dim`` is set to ``embed_dim``)."""
    ltm: LTMConfig = field(default_factory=LTMConfig)
    """Long-term memory settings (``key_dim``/``token_dim`` are set from ``key_dim``/``embed_dim``)."""

    def __post_init__(self) -> None:
        for name in ("embed_dim", "token_depth", "key_dim", "leaf_writes_per_step"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Mem4NavConfig.{name} must be an integer >= 1, got {value!r}")
        if not (isinstance(self.stm_threshold, int | float) and -1.0 <= self.stm_threshold <= 1.0):
            raise ValueError(f"stm_threshold must be a cosine similarity in [-1, 1], got {self.stm_threshold!r}")
        if not (self.use_stm or self.use_ltm):
            raise ValueError("at least one of use_stm and use_ltm must be on (nothing could be retrieved)")
        if self.use_ltm and not (self.use_octree or self.use_graph):
            raise ValueError("use_ltm needs use_octree or use_graph: the LTM stores leaf and node tokens")
        self.octree.embedding_dim = self.embed_dim
        self.topology.embedding_dim = self.embed_dim
        self.stm.embedding_dim = self.embed_dim
        self.ltm.key_dim = self.key_dim
        self.ltm.token_dim = 2 * self.embed_dim
        for part in (self.octree, self.topology, self.stm, self.ltm):
            part.__post_init__()

    @property
    def readout_size(self) -> int:
        """Items in a ``MemoryReadout``: the larger of the STM's top-k and the LTM's top-m."""
        return max(self.stm.top_k, self.ltm.top_m)


@dataclass
class MemoryReadout:
    """What ``retrieve`` returns: ``n = Mem4NavConfig.readout_size`` items, padded.

    Attributes:
        tokens: ``(n, 2d)`` float32 raw memory tokens of LTM hits (as written through R; zeros for STM hits and
            padding).
        embeddings: ``(n, d)`` float32 remembered embeddings (STM entries, or LTM tokens decoded by ``π_v``).
        positions: ``(n, 3)`` float32 positions relative to the query position, metres.
        sources: ``(n,)`` int64 flags: 1 STM, 2 LTM leaf, 3 LTM node, 0 padding.
        scores: ``(n,)`` float32 similarities (cosine for the STM, the index's inner product for the LTM).
        valid: ``(n,)`` bool, False for padding.
        steps: ``(n,)`` int64 memory step (``update`` count since ``reset``) of the observation whose embedding
            produced the item: the STM entry's last write, or the write of the LTM token (-1 for padding). An
            agent that trains end to end re-encodes that step's observation (``embodia.agents``).
        prior_tokens: ``(n, d)`` float32 read token ``θ_r`` the LTM token was written with, ``tokens = R([θ_r ;
            v])`` (zeros for STM hits and padding).
        first_writes: ``(n,)`` bool, True for an LTM token that was its key's first write (``θ_r`` was the learned
            ``read_init``).
    """

    tokens: np.ndarray
    embeddings: np.ndarray
    positions: np.ndarray
    sources: np.ndarray
    scores: np.ndarray
    valid: np.ndarray
    steps: np.ndarray
    prior_tokens: np.ndarray
    first_writes: np.ndarray


@dataclass(frozen=True)
class LandmarkCandidate:
    """One remembered object of a landmark class (what ``Mem4NavMemory.locate`` returns).

    Attributes:
        position: ``(3,)`` float64 support-weighted centre of the object's remembered points, world frame, metres.
        support: Evidence behind it: octree points of the class plus STM detection counts.
        stm_support: The STM's share of ``support``.
        leaf_support: The octree leaves' share of ``support``.
        passed: Whether it lies within ``pass_distance`` of a street the agent drove (a landmark it passed, not a
            look-alike seen from afar); False when no street is known.
    """

    position: np.ndarray
    support: float
    stm_support: float
    leaf_support: float
    passed: bool


def closest_on_segments(point: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The closest point to ``point`` (``(2,)``) on each segment ``starts[i] -> ends[i]`` (``(S, 2)`` each).

    Returns:
        ``(S, 2)`` closest points and ``(S,)`` distances.
    """
    seg = ends - starts
    length2 = np.einsum("ij,ij->i", seg, seg)
    t = np.einsum("ij,ij->i", point - starts, seg) / np.maximum(length2, 1e-12)
    closest = starts + np.clip(t, 0.0, 1.0)[:, None] * seg
    return closest, np.linalg.norm(closest - point, axis=1)


def cluster_points(points: np.ndarray, weights: np.ndarray, radius: float) -> list[tuple[np.ndarray, list[int]]]:
    """Greedy clustering of weighted points, heaviest first.

    A point joins the first cluster whose seed (its heaviest point) lies within ``radius``.

    Args:
        points: ``(N, k)`` points.
        weights: ``(N,)`` weights.
        radius: Cluster radius, same unit as ``points``.

    Returns:
        ``(weighted centre (k,), member rows)`` per cluster, in seed order.
    """
    label = np.full(len(points), -1, dtype=np.int64)
    clusters = 0
    for i in np.argsort(-weights, kind="stable"):
        if label[i] >= 0:
            continue
        # Point i seeds a cluster. The points still free are within radius of no earlier seed, so every one within
        # radius of this seed joins it: the same as visiting them in order and taking the first seed in range.
        near = (label < 0) & (np.linalg.norm(points - points[i], axis=1) <= radius)
        label[near] = clusters
        clusters += 1
    members = [np.flatnonzero(label == k) for k in range(clusters)]
    return [(np.average(points[r], axis=0, weights=weights[r]), r.tolist()) for r in members]


class Mem4NavMemory(nn.Module):
    """Mem4Nav memory for one agent (see the module docstring).

    The learned parts (R, its decoders, the LTM key projection) are this module's parameters; the data
    structures are reset per episode.

    Args:
        config: the memory's settings.
    """

    def __init__(self, config: Mem4NavConfig | None = None) -> None:
        super().__init__()
        self.config = config or Mem4NavConfig()
        cfg = self.config
        self.tokens = MemoryTokens(
            TokenConfig(embed_dim=cfg.embed_dim, depth=cfg.token_depth, mixer=cfg.token_mixer, heads=4)
        )
        self.key_projection = nn.Linear(cfg.embed_dim + 3, cfg.key_dim)  # [v ; p] -> LTM key space
        nn.init.normal_(self.key_projection.weight, std=1.0 / math.sqrt(cfg.embed_dim + 3))
        nn.init.zeros_(self.key_projection.bias)
        # A fixed random projection: its keys only feed faiss's nearest-neighbour search, a discrete choice no
        # loss reaches, so it is not trained (a trainable parameter that never gets a gradient would be dead).
        self.key_projection.requires_grad_(False)
        self.octree = SparseOctree(cfg.octree)
        self.graph = SemanticTopologyGraph(cfg.topology)
        self.stm = ShortTermMemory(cfg.stm)
        self.ltm = LongTermMemory(cfg.ltm)
        self.eval()
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forgets everything written (call at the start of each episode); learned parameters are kept."""
        self.octree.reset()
        self.graph.reset()
        self.stm.reset()
        self.ltm.reset()
        self.step = 0
        self._read_tokens: dict[tuple[str, int], torch.Tensor] = {}  # per key: the token for its next write
        self._item_positions: dict[tuple[str, int], np.ndarray] = {}
        self._item_writes: dict[tuple[str, int], tuple[int, torch.Tensor, bool]] = {}  # (step, θ_r, first) per key
        self._stm_steps: dict[int, int] = {}  # per STM key: step of its last write
        self._queries = 0
        self._stm_hits = 0
        self._ltm_hits = 0
        self._position = np.zeros(3)

    # ------------------------------------------------------------------ write
    def update(
        self,
        embedding: np.ndarray,
        pose: np.ndarray,
        points: np.ndarray | None = None,
        point_classes: np.ndarray | None = None,
        detections: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Writes one step's observation.

        Args:
            embedding: ``(d,)`` observation embedding ``v_t``.
            pose: ``(3,)`` agent position ``x, y, z`` (a planar pose ``x, y, yaw`` is not accepted: pass z).
            points: ``(N, 3)`` observed 3-D points in the same frame, or None.
            point_classes: ``(N,)`` semantic class per point (0 = none), or None.
            detections: ``(class_ids (M,), positions (M, 3))`` of detected landmarks for the STM, or None.

        Raises:
            ValueError: wrong widths (naming the expected one) or non-finite values.
        """
        cfg = self.config
        v = check_vector(embedding, cfg.embed_dim, "embedding")
        position = check_vector(pose, 3, "pose")
        # Everything is checked before anything is written: a rejected update leaves the memory unchanged.
        if points is not None:
            points = np.asarray(points, dtype=np.float64)
            if points.ndim != 2 or points.shape[1] != 3:
                raise ValueError(f"points must have shape (N, 3), got {points.shape}")
            if not np.isfinite(points).all():
                raise ValueError("points must be finite")
            if point_classes is not None and np.shape(point_classes) != (len(points),):
                raise ValueError(f"point_classes must have shape ({len(points)},), got {np.shape(point_classes)}")
        for name, array in (("pose", position), ("embedding", v), ("points", points)):
            if array is not None and array.size and np.abs(array).max() > _MAX_COORDINATE:
                raise ValueError(f"{name} values must be below {_MAX_COORDINATE:g} in magnitude (float32 range)")
        if detections is not None:
            det_classes = np.asarray(detections[0])
            det_positions = np.asarray(detections[1], dtype=np.float64).reshape(-1, 3)
            if det_classes.shape != (len(det_positions),) or det_classes.dtype.kind not in "iu":
                raise ValueError(
                    f"detections must be (class_ids (M,) integers, positions (M, 3)), got {det_classes.shape} "
                    f"{det_classes.dtype} and {np.shape(detections[1])}"
                )
            if not np.isfinite(det_positions).all() or (np.abs(det_positions) > _MAX_COORDINATE).any():
                raise ValueError("detection positions must be finite and below 1e9 in magnitude")
        self._position = position
        writes: list[tuple[str, int, np.ndarray]] = []  # (namespace, id, item position)
        if cfg.use_octree and points is not None and len(points):
            touched, counts = self.octree.insert(
                points, point_classes, v.astype(np.float32), step=self.step, return_counts=True
            )
            if len(touched):
                chosen = touched[np.argsort(-counts, kind="stable")[: cfg.leaf_writes_per_step]]
                centres = self.octree.leaf_centres(chosen)
                writes.extend(("leaf", int(k), c) for k, c in zip(chosen, centres, strict=True))
        anchor = position
        if cfg.use_graph:
            node = self.graph.observe(v, position, step=self.step)
            anchor = self.graph.node_position(node)
            writes.append(("node", int(node), np.asarray(anchor, dtype=np.float64)))
        if writes:
            self._write_tokens(v, writes)
        if cfg.use_stm and detections is not None:
            keys = self._detection_keys(det_positions)
            for key, class_id, p in zip(keys, det_classes, det_positions, strict=True):
                self.stm.write(int(key), int(class_id), p, anchor, v.astype(np.float32), self.step)
                self._stm_steps[int(key)] = self.step
        self.step += 1

    def _detection_keys(self, positions: np.ndarray) -> np.ndarray:
        """STM keys: the Morton code of each detection's leaf-sized cell.

        The grid is centred on the origin, so it works with the octree switched off; a re-detected object
        updates its entry instead of adding one.
        """
        half = 2 ** (MORTON_BITS - 1)
        cells = np.floor(positions / self.config.octree.leaf_size).astype(np.int64) + half
        return morton_encode(np.clip(cells, 0, 2 * half - 1)).astype(np.int64)

    def _write_tokens(self, v: np.ndarray, writes: list[tuple[str, int, np.ndarray]]) -> None:
        """Writes a token per item (batched through R) and stores them in the LTM."""
        cfg = self.config
        n = len(writes)
        with self._torch_mode():
            fresh = self.tokens.fresh_read_token(1)[0]  # (d,) for keys written the first time
            read = torch.stack([self._read_tokens.get((ns, i), fresh) for ns, i, _ in writes])  # (n, d)
            embedding = torch.as_tensor(v, dtype=torch.float32).expand(n, -1)  # (n, d)
            written = self.tokens.write(read, embedding)  # (n, 2d)
            next_read = self.tokens.read_token(written)  # (n, d)
            item_positions = np.stack([p for _, _, p in writes]).astype(np.float32)  # (n, 3)
            keys = self.key_projection(torch.cat([embedding, torch.as_tensor(item_positions)], dim=1))  # (n, key_dim)
        new_leaves = []
        for (ns, i, p), token, prior in zip(writes, next_read.detach(), read.detach(), strict=True):
            if ns == "leaf" and (ns, i) not in self._read_tokens:
                new_leaves.append(i)
            self._item_writes[(ns, i)] = (self.step, prior, (ns, i) not in self._read_tokens)
            self._read_tokens[(ns, i)] = token
            self._item_positions[(ns, i)] = p
        if new_leaves:  # the octree leaf's token slot: the leaf's id in the LTM's "leaf" namespace (its key)
            leaf_keys = np.asarray(new_leaves, dtype=np.uint64)
            self.octree.set_token_slots(leaf_keys, leaf_keys.astype(np.int64))
        if cfg.use_ltm:
            written_np = written.detach().numpy().astype(np.float32)
            keys_np = keys.detach().numpy().astype(np.float32)
            for ns in ("leaf", "node"):
                rows = [j for j, (name, _, _) in enumerate(writes) if name == ns]
                if rows:
                    ids = np.array([writes[j][1] for j in rows], dtype=np.int64)
                    self.ltm.write(ns, ids, keys_np[rows], written_np[rows], step=self.step)

    # ------------------------------------------------------------------ read
    def retrieve(self, embedding: np.ndarray, position: np.ndarray | None = None) -> MemoryReadout:
        """The retrieval cascade: STM hits if good enough, else LTM hits decoded through ``R⁻¹``.

        Args:
            embedding: ``(d,)`` query embedding (usually the current ``v_t``).
            position: ``(3,)`` query position; default the last ``update``'s.

        Returns:
            A ``MemoryReadout`` with positions relative to the query position.
        """
        cfg = self.config
        v = check_vector(embedding, cfg.embed_dim, "query embedding")
        position = self._position if position is None else check_vector(position, 3, "query position")
        n = cfg.readout_size
        out = MemoryReadout(
            tokens=np.zeros((n, 2 * cfg.embed_dim), dtype=np.float32),
            embeddings=np.zeros((n, cfg.embed_dim), dtype=np.float32),
            positions=np.zeros((n, 3), dtype=np.float32),
            sources=np.zeros(n, dtype=np.int64),
            scores=np.zeros(n, dtype=np.float32),
            valid=np.zeros(n, dtype=bool),
            steps=np.full(n, -1, dtype=np.int64),
            prior_tokens=np.zeros((n, cfg.embed_dim), dtype=np.float32),
            first_writes=np.zeros(n, dtype=bool),
        )
        self._queries += 1
        if cfg.use_stm and len(self.stm):
            anchor = self._anchor()
            hits = self.stm.retrieve(position - anchor, v.astype(np.float32), self.step, query_anchor=anchor)
            if len(hits) and (hits.similarities[0] >= cfg.stm_threshold or not cfg.use_ltm):
                h = len(hits)
                out.embeddings[:h] = hits.embeddings
                out.positions[:h] = hits.rel_positions + anchor - position
                out.sources[:h] = SOURCE_STM
                out.scores[:h] = hits.similarities
                out.valid[:h] = True
                out.steps[:h] = [self._stm_steps[int(k)] for k in hits.keys]
                self._stm_hits += 1
                return out
        if cfg.use_ltm and len(self.ltm):
            with self._torch_mode():
                query = torch.as_tensor(np.concatenate([v, position]), dtype=torch.float32)[None]  # (1, d + 3)
                key = self.key_projection(query).detach().numpy().astype(np.float32)[0]  # (key_dim,)
            hits = self.ltm.search(key, m=cfg.ltm.top_m)
            ids, scores = np.asarray(hits.ids).reshape(-1), np.asarray(hits.scores).reshape(-1)
            namespaces = np.asarray(hits.namespaces).reshape(-1)
            found = ids >= 0
            if found.any():
                tokens = torch.as_tensor(np.asarray(hits.tokens).reshape(len(ids), -1)[found])  # (h, 2d)
                with self._torch_mode():
                    heads = self.tokens.decode_heads(tokens, heads=("embedding",))
                h = int(found.sum())
                out.tokens[:h] = tokens.numpy()
                out.embeddings[:h] = heads["embedding"].detach().numpy()
                # Positions: where the item was written (exact), not pi_p's estimate, which is trained later.
                stored = [
                    self._item_positions[(str(ns), int(i))] for ns, i in zip(namespaces[found], ids[found], strict=True)
                ]
                out.positions[:h] = np.stack(stored) - position
                writes = [
                    self._item_writes[(str(ns), int(i))] for ns, i in zip(namespaces[found], ids[found], strict=True)
                ]
                out.steps[:h] = [step for step, _, _ in writes]
                out.prior_tokens[:h] = torch.stack([prior for _, prior, _ in writes]).numpy()
                out.first_writes[:h] = [first for _, _, first in writes]
                out.sources[:h] = [SOURCE_LTM_LEAF if ns == "leaf" else SOURCE_LTM_NODE for ns in namespaces[found]]
                out.scores[:h] = scores[found]
                out.valid[:h] = True
                self._ltm_hits += 1
        return out

    def locate(
        self,
        class_id: int,
        *,
        streets: tuple[np.ndarray, np.ndarray] | None = None,
        cluster_radius: float = 3.0,
        pass_distance: float = 9.0,
    ) -> list[LandmarkCandidate]:
        """Where the memory saw objects of a landmark class: retrieval keyed by the class.

        Sources, as the ablation switches allow: STM entries of the class (``use_stm``) and octree leaves whose
        class histogram holds it (``use_octree`` and ``use_ltm``: the leaves are the LTM's leaf keys). Their points
        are pooled and clustered greedily (``cluster_radius`` metres in the ground plane) into candidate objects.

        Args:
            class_id: Landmark class, ``1 <= class_id < num_classes``.
            streets: ``(starts (S, 2), ends (S, 2))`` street segments the agent drove, for ``passed``; default the
                topology graph's edges (:meth:`driven_streets`).
            cluster_radius: Points within this of a cluster's heaviest point are one object, metres.
            pass_distance: A candidate within this of a street is ``passed``, metres.

        Returns:
            Candidates by decreasing support; empty when the class was never seen (or its sources are off).

        Raises:
            ValueError: A class id that is not an integer in range, or non-positive distances.
        """
        classes = self.config.octree.num_classes
        if isinstance(class_id, bool) or not isinstance(class_id, int | np.integer) or not 1 <= class_id < classes:
            raise ValueError(f"class_id must be an integer in [1, {classes - 1}], got {class_id!r}")
        for name, value in (("cluster_radius", cluster_radius), ("pass_distance", pass_distance)):
            if isinstance(value, bool) or not isinstance(value, int | float | np.floating) or not value > 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if streets is not None:
            starts, ends = (np.asarray(part, dtype=np.float64) for part in streets)
            if starts.ndim != 2 or starts.shape[1:] != (2,) or ends.shape != starts.shape:
                raise ValueError(f"streets must be (starts (S, 2), ends (S, 2)), got {starts.shape} and {ends.shape}")
            streets = (starts, ends)
        cfg = self.config
        points, stm_weights, leaf_weights = [], [], []
        if cfg.use_octree and cfg.use_ltm and len(self.octree):
            keys = self.octree.keys()
            counts = self.octree.histograms(keys)[:, class_id]
            hit = counts > 0
            if hit.any():
                points.append(self.octree.centroids(keys[hit]))
                leaf_weights.append(counts[hit].astype(np.float64))
                stm_weights.append(np.zeros(int(hit.sum())))
        if cfg.use_stm and len(self.stm):
            snap = self.stm.snapshot()
            hit = snap["class_ids"] == class_id
            if hit.any():
                points.append(snap["rel_positions"][hit] + snap["anchors"][hit])
                stm_weights.append(snap["freq"][hit].astype(np.float64))
                leaf_weights.append(np.zeros(int(hit.sum())))
        if not points:
            return []
        xyz = np.concatenate(points).astype(np.float64)  # (N, 3)
        stm_w, leaf_w = np.concatenate(stm_weights), np.concatenate(leaf_weights)
        weights = stm_w + leaf_w
        if streets is None:
            streets = self.driven_streets()
        out = []
        for centre, rows in cluster_points(xyz[:, :2], weights, float(cluster_radius)):
            position = np.average(xyz[rows], axis=0, weights=weights[rows])
            position[:2] = centre
            passed = streets is not None and bool(
                len(streets[0]) and closest_on_segments(centre, *streets)[1].min() <= pass_distance
            )
            out.append(
                LandmarkCandidate(
                    position=position,
                    support=float(weights[rows].sum()),
                    stm_support=float(stm_w[rows].sum()),
                    leaf_support=float(leaf_w[rows].sum()),
                    passed=passed,
                )
            )
        return sorted(out, key=lambda c: -c.support)

    def driven_streets(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The topology graph's edges as ground-plane segments ``(starts (E, 2), ends (E, 2))``.

        They are where the agent moved between places. None without a graph or before its first edge.
        """
        if not self.config.use_graph or not self.graph.graph.number_of_edges():
            return None
        snap = self.graph.snapshot()
        nodes = snap["positions"][:, :2].astype(np.float64)
        edges = np.asarray(snap["edges"], dtype=np.int64).reshape(-1, 2)
        return nodes[edges[:, 0]], nodes[edges[:, 1]]

    def node_positions(self, nodes: list[int]) -> np.ndarray:
        """``(P, 2)`` float64 ground-plane positions of topology graph nodes (e.g. a :meth:`plan_path`)."""
        if not nodes:
            return np.zeros((0, 2))
        return np.array([self.graph.node_position(n)[:2] for n in nodes], dtype=np.float64)

    def plan_path(self, goal: np.ndarray) -> list[int]:
        """Dijkstra path on the topology graph from the current node to the node nearest ``goal``.

        Args:
            goal: ``(2,)`` goal position in the ground plane, metres.

        Returns:
            Node ids (their positions: :meth:`node_positions`); empty without a graph, before the first update, or
            when the goal's node cannot be reached.

        Raises:
            ValueError: A goal that is not 2 finite numbers.
        """
        goal = check_vector(goal, 2, "goal")
        graph = self.graph
        if not self.config.use_graph or graph.current is None:
            return []
        return graph.shortest_path(graph.current, graph.nearest_node(np.array([goal[0], goal[1], 0.0])))

    # ------------------------------------------------------------------ learning (an agent trained end to end)
    def freeze_decoders(self) -> None:
        """Stop training the position and descriptor decoders (π_p, π_d) for a user that never decodes them."""
        self.tokens.pi_p.requires_grad_(False)
        self.tokens.pi_d.requires_grad_(False)

    def fresh_read_tokens(self, batch: int) -> torch.Tensor:
        """``(batch, d)`` read tokens of keys never written to (the learned ``read_init``, an expanded view)."""
        return self.tokens.fresh_read_token(batch)

    def written_tokens(self, read_token: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """Written tokens ``θ_w = R([θ_r ; v])`` ``(B, 2d)`` of read tokens ``(B, d)`` and embeddings ``(B, d)``."""
        return self.tokens.write(read_token, embedding)

    def decode_embeddings(self, written: torch.Tensor) -> torch.Tensor:
        """The embeddings ``π_v(R⁻¹(θ_w))`` ``(B, d)`` that written tokens ``(B, 2d)`` hold."""
        return self.tokens.decode_heads(written, heads=("embedding",))["embedding"]

    def cycle_loss(self, embedding: torch.Tensor) -> torch.Tensor:
        """Scalar cycle loss of writing embeddings ``(B, d)`` to fresh keys and decoding them back."""
        return self.tokens.cycle_loss(self.fresh_read_tokens(embedding.shape[0]), embedding)

    def _torch_mode(self) -> contextlib.AbstractContextManager:
        """Autograd on in train mode (end-to-end training), ``inference_mode`` otherwise (faster per step)."""
        return contextlib.nullcontext() if self.training else torch.inference_mode()

    def _anchor(self) -> np.ndarray:
        if self.config.use_graph and self.graph.current is not None:
            return np.asarray(self.graph.node_position(self.graph.current), dtype=np.float64)
        return self._position

    # ------------------------------------------------------------------ inspection
    def snapshot(self) -> dict[str, np.ndarray]:
        """Numpy arrays of the memory's current contents, for episode files and replay views.

        Keys are prefixed by part: ``octree/``, ``graph/``, ``stm/``, ``ltm/``, ``tokens/`` (per key: namespace
        0 leaf / 1 node, id, read token, position).
        """
        parts = {"octree": self.octree.snapshot(), "graph": self.graph.snapshot(), "stm": self.stm.snapshot()}
        parts["ltm"] = self.ltm.snapshot()
        items = list(self._read_tokens)
        d = self.config.embed_dim
        parts["tokens"] = {  # every key's read token (its accumulated state) and where it was written
            "namespaces": np.array([0 if ns == "leaf" else 1 for ns, _ in items], dtype=np.int8).reshape(-1),
            "ids": np.array([i for _, i in items], dtype=np.int64).reshape(-1),
            "read": torch.stack([self._read_tokens[k] for k in items]).numpy() if items else np.zeros((0, d)),
            "positions": np.array([self._item_positions[k] for k in items], dtype=np.float32).reshape(-1, 3),
        }
        return {f"{part}/{key}": np.asarray(value) for part, arrays in parts.items() for key, value in arrays.items()}

    def view_snapshot(self) -> dict[str, np.ndarray]:
        """The parts of :meth:`snapshot` that replays draw, with ``.`` for ``/`` (episode-file keys have no ``/``).

        Keys: ``octree.{keys,centroids,counts,histograms,origin}``, ``graph.{positions,counts,edges,edge_weights,
        edge_traversals}``, ``stm.{class_ids,rel_positions,anchors}``. Embeddings, descriptors, LTM keys and tokens
        are left out (they are most of the bytes and no view draws them).
        """
        wanted = {
            "octree": ("keys", "centroids", "counts", "histograms", "origin"),
            "graph": ("positions", "counts", "edges", "edge_weights", "edge_traversals"),
            "stm": ("class_ids", "rel_positions", "anchors"),
        }
        parts = {"octree": self.octree.snapshot(), "graph": self.graph.snapshot(), "stm": self.stm.snapshot()}
        return {f"{part}.{key}": np.asarray(parts[part][key]) for part, keys in wanted.items() for key in keys}

    def stats(self) -> dict[str, float]:
        """Counts, hit rates (``memory/stm_hit_rate``, ``memory/ltm_hit_rate`` in logs) and bytes used."""
        octree, graph, stm, ltm = self.octree.stats(), self.graph.stats(), self.stm.stats(), self.ltm.stats()
        queries = max(self._queries, 1)
        token_bytes = sum(t.numel() * t.element_size() for t in self._read_tokens.values())
        return {
            "leaves": float(octree["leaves"]),
            "points_clipped": float(octree["points_clipped"]),
            "nodes": float(graph["nodes"]),
            "edges": float(graph["edges"]),
            "stm_entries": float(stm["entries"]),
            "ltm_entries": float(sum(ltm["entries"].values())),
            "queries": float(self._queries),
            "stm_hit_rate": self._stm_hits / queries,
            "ltm_hit_rate": self._ltm_hits / queries,
            "bytes": float(octree["bytes"] + graph["bytes"] + stm["bytes"] + ltm["bytes"] + token_bytes),
        }
