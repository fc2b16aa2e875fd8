"""Short-term memory (STM) of Mem4Nav: a small, fixed-capacity cache of recent observations.

Each entry holds a key, an object/class id, the observation's position relative to the current topology-graph node
(`p_rel = p_t - p_node`), its embedding `v`, its last access step `τ` and its access count `freq` (MEM4NAV.md §4).

* Eviction (FLRU): when a new key arrives and the memory is full, the entry with the lowest
  `score = λ·freq - (1 - λ)·(t_now - τ)` is evicted; ties go to the entry inserted first. `λ = 0` is LRU (with
  strictly increasing steps), `λ = 1` is LFU with oldest-insertion tie-breaking.
* Retrieval: entries whose relative position lies within `ε` (inclusive) of the query's relative position, ranked by
  cosine similarity with the query embedding (ties: lower slot first), top `k`. Each hit counts as an access.

Storage is preallocated numpy arrays with `capacity` rows, so the memory footprint is fixed; a key-to-slot dict
gives O(1) lookup and eviction is one vectorised O(K) pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from embodia.validation import as_int64, check_step, check_vector, is_int, is_real

__all__ = ["STMConfig", "STMHits", "ShortTermMemory"]


@dataclass
class STMConfig:
    """Configuration of the short-term memory."""

    capacity: int = 128
    """Maximum number of entries `K`."""
    embedding_dim: int = 384
    """Width `d` of the observation embeddings."""
    lam: float = 0.5
    """FLRU weight `λ` in `[0, 1]`: 0 is LRU, 1 is LFU."""
    radius: float = 3.0
    """Default retrieval radius `ε` in relative coordinates, metres."""
    top_k: int = 3
    """Default number of entries a retrieval returns at most."""

    def __post_init__(self) -> None:
        """Validate the fields.

        Raises:
            ValueError: If a field is out of range.
        """
        if not is_int(self.capacity) or self.capacity < 1:
            raise ValueError(f"capacity must be an integer >= 1, got {self.capacity!r}")
        if not is_int(self.embedding_dim) or self.embedding_dim < 1:
            raise ValueError(f"embedding_dim must be an integer >= 1, got {self.embedding_dim!r}")
        if not is_real(self.lam) or not 0.0 <= self.lam <= 1.0:
            raise ValueError(f"lam must be a number in [0, 1], got {self.lam!r}")
        if not is_real(self.radius) or not math.isfinite(self.radius) or self.radius <= 0.0:
            raise ValueError(f"radius must be a finite number > 0, got {self.radius!r}")
        if not is_int(self.top_k) or self.top_k < 1:
            raise ValueError(f"top_k must be an integer >= 1, got {self.top_k!r}")


@dataclass
class STMHits:
    """Result of `ShortTermMemory.retrieve`, best match first; every array has `h` rows (`h = 0` for no hit).

    Attributes:
        slots: Slots of the hits, shape `(h,)`, int64.
        keys: Keys of the hits, shape `(h,)`, int64.
        class_ids: Class ids of the hits, shape `(h,)`, int64.
        rel_positions: Stored relative positions, shape `(h, 3)`, float64.
        embeddings: Stored embeddings, shape `(h, d)`, float32.
        similarities: Cosine similarity with the query embedding, shape `(h,)`, float64, non-increasing.
    """

    slots: np.ndarray
    keys: np.ndarray
    class_ids: np.ndarray
    rel_positions: np.ndarray
    embeddings: np.ndarray
    similarities: np.ndarray

    def __len__(self) -> int:
        return int(self.slots.shape[0])


class ShortTermMemory:
    """Fixed-capacity short-term memory with FLRU eviction and radius-gated cosine retrieval.

    Args:
        config: The configuration; None for the defaults.
    """

    def __init__(self, config: STMConfig | None = None) -> None:
        self.config = config if config is not None else STMConfig()
        k, d = self.config.capacity, self.config.embedding_dim
        self._keys = np.zeros(k, dtype=np.int64)
        self._class_ids = np.zeros(k, dtype=np.int64)
        self._rel_pos = np.zeros((k, 3), dtype=np.float64)
        self._anchor = np.zeros((k, 3), dtype=np.float64)  # the graph node's position each entry is relative to
        self._emb = np.zeros((k, d), dtype=np.float32)
        self._emb_norm = np.zeros(k, dtype=np.float64)
        self._freq = np.zeros(k, dtype=np.int64)
        self._last = np.zeros(k, dtype=np.int64)
        self._inserted = np.zeros(k, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        """Remove every entry and zero the statistics (the arrays stay allocated)."""
        self._slot_of: dict[int, int] = {}
        self._size = 0
        self._insert_counter = 0
        self._evictions = 0
        self._hits = 0
        self._queries = 0
        for arr in (self._keys, self._class_ids, self._rel_pos, self._anchor, self._emb, self._emb_norm):
            arr.fill(0)
        for arr in (self._freq, self._last, self._inserted):
            arr.fill(0)

    def __len__(self) -> int:
        return self._size

    def __contains__(self, key: object) -> bool:
        return is_int(key) and int(key) in self._slot_of

    def write(
        self,
        key: int,
        class_id: int,
        position: np.ndarray,
        anchor: np.ndarray,
        embedding: np.ndarray,
        step: int,
    ) -> int:
        """Store an observation, relative to the current graph node.

        An existing key is updated in place: class id, relative position and embedding are replaced, its access
        count grows by one and its last access becomes `step`; nothing is evicted. A new key gets access count 1;
        when the memory is full, the entry with the lowest FLRU score at `t_now = step` is evicted first (ties: the
        entry inserted first) and its slot reused.

        Args:
            key: Entry key (e.g. an octree leaf key or an object id), an integer in int64 range.
            class_id: Object/semantic class id, an integer.
            position: Observation position `p_t` in the world frame, shape `(3,)`, metres.
            anchor: Position of the current topology-graph node `p_node`, shape `(3,)`, metres.
            embedding: Observation embedding `v`, shape `(d,)`, finite and nonzero.
            step: Current time step `t_now`, an integer >= 0.

        Returns:
            The slot the entry occupies, in `[0, capacity)`.

        Raises:
            ValueError: On a non-integer key/class id/step, a negative step, a position, anchor or embedding of the
                wrong shape or with NaN/inf values, or an embedding that is all zero or overflows float32.
        """
        key = as_int64(key, "key")
        class_id = as_int64(class_id, "class_id")
        step = check_step(step)
        pos = check_vector(position, 3, "position")
        anc = check_vector(anchor, 3, "anchor")
        with np.errstate(over="ignore"):
            rel = pos - anc
        if not np.isfinite(rel).all():
            raise ValueError("position - anchor overflows float64")
        with np.errstate(over="ignore"):
            emb = check_vector(embedding, self.config.embedding_dim, "embedding").astype(np.float32)
        if not np.isfinite(emb).all():
            raise ValueError("embedding overflows float32")
        norm = float(np.linalg.norm(emb.astype(np.float64)))
        if norm == 0.0:
            raise ValueError("embedding must have a nonzero norm (in float32)")

        slot = self._slot_of.get(key)
        if slot is not None:
            self._freq[slot] += 1
        else:
            if self._size < self.config.capacity:
                slot = self._size
                self._size += 1
            else:
                slot = self._victim(step)
                del self._slot_of[int(self._keys[slot])]
                self._evictions += 1
            self._slot_of[key] = slot
            self._keys[slot] = key
            self._freq[slot] = 1
            self._inserted[slot] = self._insert_counter
            self._insert_counter += 1
        self._class_ids[slot] = class_id
        self._rel_pos[slot] = rel
        self._anchor[slot] = anc
        self._emb[slot] = emb
        self._emb_norm[slot] = norm
        self._last[slot] = step
        return slot

    def _victim(self, step: int) -> int:
        """Slot to evict: lowest FLRU score, ties to the oldest insertion (memory must be full)."""
        lam = self.config.lam
        n = self._size
        score = lam * self._freq[:n] - (1.0 - lam) * (step - self._last[:n]).astype(np.float64)
        tied = np.flatnonzero(score == score.min())
        return int(tied[np.argmin(self._inserted[tied])])

    def scores(self, step: int) -> np.ndarray:
        """FLRU scores of the stored entries at `t_now = step`.

        Args:
            step: Current time step, an integer >= 0.

        Returns:
            `λ·freq - (1 - λ)·(step - τ)` per slot, shape `(n,)`, float64 (slot order).
        """
        step = check_step(step)
        lam = self.config.lam
        n = self._size
        return lam * self._freq[:n] - (1.0 - lam) * (step - self._last[:n]).astype(np.float64)

    def retrieve(
        self,
        query_rel: np.ndarray,
        query_embedding: np.ndarray,
        step: int,
        radius: float | None = None,
        k: int | None = None,
        query_anchor: np.ndarray | None = None,
    ) -> STMHits:
        """Return the entries near a relative position, ranked by cosine similarity.

        Candidates are the entries with `||p_rel - query_rel||_2 <= radius`; they are ranked by cosine similarity with
        `query_embedding` (descending; ties: lower slot first) and the first `k` are returned. Each returned entry is
        accessed: its count grows by one and its last access becomes `step`.

        With `query_anchor` (the node the query is relative to), entries written relative to other nodes are first
        re-expressed relative to it (`p_rel + anchor_entry - query_anchor`): once the agent has moved on to another
        graph node, relative positions still compare like with like. The hits' `rel_positions` are then relative to
        `query_anchor` too.

        Args:
            query_rel: Query position relative to the current graph node, shape `(3,)`, metres.
            query_embedding: Query embedding, shape `(d,)`, finite and nonzero.
            step: Current time step, an integer >= 0.
            radius: Retrieval radius `ε`, metres; None for `config.radius`.
            k: Maximum number of hits; None for `config.top_k`.
            query_anchor: Position of the node `query_rel` is relative to, shape `(3,)`; None compares stored
                relative positions as they are (all entries relative to the same node).

        Returns:
            The hits, best first (empty arrays when none).

        Raises:
            ValueError: On a query of the wrong shape, NaN/inf values, an all-zero query embedding, a bad step, a
                radius that is not finite and > 0, or a `k` that is not an integer >= 1.
        """
        q_pos = check_vector(query_rel, 3, "query_rel")
        q_emb = check_vector(query_embedding, self.config.embedding_dim, "query_embedding")
        step = check_step(step)
        radius = self.config.radius if radius is None else radius
        if not is_real(radius) or not math.isfinite(radius) or radius <= 0.0:
            raise ValueError(f"radius must be a finite number > 0, got {radius!r}")
        k = self.config.top_k if k is None else k
        if not is_int(k) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        q_scale = float(np.abs(q_emb).max())
        if q_scale == 0.0:
            raise ValueError("query_embedding must have a nonzero norm")
        q_emb = q_emb / q_scale  # cosine is scale-free; pre-scaling keeps the norm finite for huge finite values
        q_norm = float(np.linalg.norm(q_emb))

        q_anchor = None if query_anchor is None else check_vector(query_anchor, 3, "query_anchor")
        self._queries += 1
        n = self._size
        rel = self._rel_pos[:n] if q_anchor is None else self._rel_pos[:n] + self._anchor[:n] - q_anchor  # (n, 3)
        dist = np.linalg.norm(rel - q_pos, axis=1)
        cand = np.flatnonzero(dist <= radius)
        if cand.size == 0:
            return self._hits_for(cand, np.zeros(0, dtype=np.float64))
        sims = (self._emb[cand].astype(np.float64) @ q_emb) / (self._emb_norm[cand] * q_norm)
        order = np.lexsort((cand, -sims))[: int(k)]
        slots = cand[order]
        self._freq[slots] += 1
        self._last[slots] = step
        self._hits += 1
        hits = self._hits_for(slots, sims[order])
        if q_anchor is not None:
            hits.rel_positions = rel[slots].copy()
        return hits

    def _hits_for(self, slots: np.ndarray, sims: np.ndarray) -> STMHits:
        """Copy the rows of `slots` into an `STMHits`."""
        slots = slots.astype(np.int64)
        return STMHits(
            slots=slots,
            keys=self._keys[slots].copy(),
            class_ids=self._class_ids[slots].copy(),
            rel_positions=self._rel_pos[slots].copy(),
            embeddings=self._emb[slots].copy(),
            similarities=np.asarray(sims, dtype=np.float64),
        )

    def keys(self) -> np.ndarray:
        """Stored keys in slot order.

        Returns:
            Shape `(n,)`, int64.
        """
        return self._keys[: self._size].copy()

    def slot_of(self, key: int) -> int | None:
        """Slot of `key`, or None when it is not stored.

        Args:
            key: Entry key.

        Returns:
            The slot, or None.
        """
        return self._slot_of.get(as_int64(key, "key"))

    def snapshot(self) -> dict[str, np.ndarray]:
        """Copy of the stored entries, in slot order (`n = len(self)`).

        Returns:
            `{"keys": (n,) int64, "class_ids": (n,) int64, "rel_positions": (n, 3) float64, "embeddings": (n, d)
            float32, "freq": (n,) int64, "last_access": (n,) int64, "inserted": (n,) int64}`; `inserted` is the
            insertion sequence number (smaller is older).
        """
        n = self._size
        return {
            "keys": self._keys[:n].copy(),
            "class_ids": self._class_ids[:n].copy(),
            "rel_positions": self._rel_pos[:n].copy(),
            "anchors": self._anchor[:n].copy(),
            "embeddings": self._emb[:n].copy(),
            "freq": self._freq[:n].copy(),
            "last_access": self._last[:n].copy(),
            "inserted": self._inserted[:n].copy(),
        }

    def stats(self) -> dict[str, int]:
        """Usage counters since the last reset.

        Returns:
            `{"entries", "capacity", "evictions", "hits", "queries", "bytes"}`: `hits` counts the retrievals that
            returned at least one entry (so `hits / queries` is the STM hit rate); `bytes` is the size of the
            preallocated arrays.
        """
        arrays = (
            self._keys,
            self._class_ids,
            self._rel_pos,
            self._anchor,
            self._emb,
            self._emb_norm,
            self._freq,
            self._last,
            self._inserted,
        )
        return {
            "entries": self._size,
            "capacity": self.config.capacity,
            "evictions": self._evictions,
            "hits": self._hits,
            "queries": self._queries,
            "bytes": int(sum(a.nbytes for a in arrays)),
        }
