"""Long-term memory (LTM) of Mem4Nav: every written memory token, searchable by nearest key (MEM4NAV.md §5).

Entries live in separate namespaces, ``"leaf"`` (octree leaves) and ``"node"`` (topology-graph nodes). An entry is
an integer id (a leaf's Morton key or a node's id), a search key of width ``key_dim`` (computed by the memory facade
with its learned query projection; this module is numpy + faiss only) and a memory token of width ``token_dim``.
Writing an id that is already stored replaces its key, token and last-write step, so an id is stored at most once.

Storage and index, per namespace:

* Columnar numpy rows (ids, keys, tokens, last-write step, alive flag), append-only between rebuilds, and a sorted-id
  index (``searchsorted``) from ids to rows. Writes are vectorised over the batch.
* A faiss inner-product index over the rows' keys whose labels are the row numbers (faiss's sequential ids: rows are
  only appended between rebuilds, and a rebuild re-adds the compacted rows in order, so label == row always holds).
  Below ``exact_below`` entries it is an exact ``IndexFlatIP``; at or above, ``IndexHNSWFlat``. With ``normalize``
  keys and queries are L2-normalised, so scores are cosine similarities.
* Replacement and eviction never edit the index: the old row is marked dead (stale) and a replacement gets a new
  row. Searches over-fetch and drop dead rows, so they never return a stale entry; if too few live rows remain
  among the fetched ones the search is repeated with a larger ``k``, and as a last resort answered exactly with
  numpy, so a search returns ``min(m, entries)`` hits. When dead rows exceed ``stale_fraction`` of the rows, the
  namespace is compacted and its index rebuilt from the live rows (for HNSW this is a full rebuild: about 6-11 s per
  1e5 keys of width 64 on one core, amortised over at least ``stale_fraction`` x rows writes).
* Index kind: a flat namespace becomes HNSW (rebuild) as soon as it holds ``exact_below`` entries; an HNSW namespace
  returns to flat only at a compaction that finds it below ``exact_below // 2`` entries (hysteresis, so a namespace
  hovering at the threshold does not rebuild back and forth), or at ``reset``.
* Capacity: at most ``max_entries`` per namespace. A write that would exceed it first evicts the oldest entries
  (smallest last-write step, then earliest write) in one batch of ``ceil(evict_fraction * max_entries)`` (or more
  if the write needs more room). Evictions are counted in ``stats()["evicted"]``; a write never fails for lack of
  room. If one batch alone holds more than ``max_entries`` new ids, only its last ``max_entries`` are kept and the
  dropped ones are counted as evicted.

faiss runs with one OpenMP thread (``faiss.omp_set_num_threads(1)``, set when an index is created): on a small
machine multi-threaded single queries are 20-50x slower (FACTS.md §7). That setting is process-wide.

Memory: about ``4 * (key_dim + token_dim) + 17`` bytes per stored row plus the index (flat: ``4 * key_dim`` bytes
per row; HNSW adds about ``8 * hnsw_m`` bytes of graph per row). With the default ``token_dim = 768`` a full
namespace of ``max_entries = 1e6`` holds over 3 GB of tokens.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import faiss
import numpy as np

from embodia.validation import is_int, is_real

__all__ = ["NAMESPACES", "LTMConfig", "LTMHits", "LongTermMemory"]

NAMESPACES: tuple[str, ...] = ("leaf", "node")
"""Key namespaces of the long-term memory: octree leaves and topology-graph nodes."""

_MIN_ROWS = 256  # smallest row capacity allocated for a namespace
_OVERFETCH = 8  # extra candidates fetched per query when a namespace holds dead rows
_COMPACT_CHUNK = 65_536  # rows moved at a time when a namespace is compacted


@dataclass
class LTMConfig:
    """Configuration of the long-term memory."""

    key_dim: int = 64
    """Width of the search keys and queries (the output width of the facade's learned query projection)."""
    token_dim: int = 768
    """Width `2d` of the stored memory tokens."""
    exact_below: int = 10_000
    """A namespace with fewer entries uses an exact flat inner-product index, one with at least this many an HNSW
    index; switching rebuilds the index (back to flat only below `exact_below // 2`)."""
    hnsw_m: int = 32
    """HNSW graph degree `M` (the paper uses 64)."""
    hnsw_ef_search: int = 64
    """HNSW search beam `efSearch` (the paper uses 200). M = 32 / efSearch = 64 gave recall@10 0.997 on 10k
    clustered keys (FACTS.md §7) and recall@3 >= 0.997 on 20k clustered 64-d keys at 20-30 µs per query."""
    hnsw_ef_construction: int = 80
    """HNSW build beam `efConstruction` (faiss's default is 40; 80 raised recall@3 from 0.997 to 1.0 on 20k
    clustered 64-d keys for 1.5-2x the build time)."""
    max_entries: int = 1_000_000
    """Most entries one namespace holds; a write into a full namespace evicts its oldest entries first."""
    evict_fraction: float = 0.1
    """Share of `max_entries` evicted at once when a namespace is full, in (0, 1]."""
    stale_fraction: float = 0.25
    """Share of a namespace's rows that may be dead (replaced or evicted) before it is compacted and its index
    rebuilt, in (0, 1)."""
    top_m: int = 3
    """Default number of hits a search returns per query (`m`)."""
    normalize: bool = True
    """L2-normalise keys and queries, so that inner-product scores are cosine similarities (a zero vector stays
    zero and scores 0 against everything)."""

    def __post_init__(self) -> None:
        """Validate the fields.

        Raises:
            ValueError: If a field is out of range.
        """
        for name, low in (
            ("key_dim", 1),
            ("token_dim", 1),
            ("exact_below", 0),
            ("hnsw_m", 2),
            ("hnsw_ef_search", 1),
            ("hnsw_ef_construction", 1),
            ("max_entries", 1),
            ("top_m", 1),
        ):
            value = getattr(self, name)
            if not is_int(value) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not is_real(self.evict_fraction) or not 0.0 < self.evict_fraction <= 1.0:
            raise ValueError(f"evict_fraction must be a number in (0, 1], got {self.evict_fraction!r}")
        if not is_real(self.stale_fraction) or not 0.0 < self.stale_fraction < 1.0:
            raise ValueError(f"stale_fraction must be a number in (0, 1), got {self.stale_fraction!r}")
        if not isinstance(self.normalize, bool):
            raise ValueError(f"normalize must be a bool, got {self.normalize!r}")


@dataclass
class LTMHits:
    """Result of `LongTermMemory.search`, best first along the last hit axis.

    A query with fewer than `m` stored entries in the searched namespaces gets padding after its hits: namespace
    `""`, id `-1`, score `-inf` and an all-zero token.

    Attributes:
        namespaces: Namespace of each hit, shape `(Q, m)`, str.
        ids: Ids of the hits, shape `(Q, m)`, int64.
        scores: Inner products of query and key (cosine similarities with `normalize`), shape `(Q, m)`, float32,
            non-increasing along each row.
        tokens: Stored tokens of the hits, shape `(Q, m, token_dim)`, float32.
    """

    namespaces: np.ndarray
    ids: np.ndarray
    scores: np.ndarray
    tokens: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        """Mask of real (not padding) hits, shape `(Q, m)`, bool."""
        return self.ids >= 0

    def __len__(self) -> int:
        return int(self.ids.shape[0])


class _Namespace:
    """Rows, sorted-id index and faiss index of one namespace."""

    def __init__(self, config: LTMConfig) -> None:
        self.config = config
        self.evicted = 0
        self.rebuilds = 0
        self._allocate(0)
        self.kind = "hnsw" if config.exact_below == 0 else "flat"
        self.index = self._make_index(self.kind)

    # ----------------------------------------------------------------------------------------------- storage
    def _allocate(self, capacity: int) -> None:
        cfg = self.config
        self.ids = np.empty(capacity, np.int64)  # (R,)
        self.keys = np.empty((capacity, cfg.key_dim), np.float32)  # (R, key_dim)
        self.tokens = np.empty((capacity, cfg.token_dim), np.float32)  # (R, token_dim)
        self.steps = np.empty(capacity, np.int64)  # (R,) last write step
        self.alive = np.zeros(capacity, bool)  # (R,)
        self.n_rows = 0
        self.n_alive = 0
        self.sorted_ids = np.empty(0, np.int64)  # (N,) ids of the live rows, ascending
        self.sorted_rows = np.empty(0, np.int64)  # (N,) their rows

    def _reserve(self, extra: int) -> None:
        """Grow the row arrays (doubling) so that `extra` more rows fit."""
        needed = self.n_rows + extra
        if needed <= self.ids.shape[0]:
            return
        capacity = max(needed, 2 * self.ids.shape[0], _MIN_ROWS)
        n = self.n_rows
        for name in ("ids", "keys", "tokens", "steps", "alive"):
            old = getattr(self, name)
            new = (
                np.zeros((capacity, *old.shape[1:]), old.dtype)
                if name == "alive"
                else np.empty_like(old, shape=(capacity, *old.shape[1:]))
            )
            new[:n] = old[:n]
            setattr(self, name, new)

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """Rows of `ids` (n,), -1 where an id is not stored."""
        pos = np.searchsorted(self.sorted_ids, ids)  # (n,)
        if self.sorted_ids.size == 0:
            return np.full(ids.shape, -1, np.int64)
        pos_c = np.minimum(pos, self.sorted_ids.size - 1)
        found = self.sorted_ids[pos_c] == ids
        return np.where(found, self.sorted_rows[pos_c], -1)

    def _kill(self, rows: np.ndarray) -> None:
        self.alive[rows] = False
        self.n_alive -= rows.size

    def _oldest(self, n: int) -> np.ndarray:
        """The `n` live rows with the smallest last-write step, earliest row first among equal steps (O(rows))."""
        live = np.flatnonzero(self.alive[: self.n_rows])  # (N,), ascending rows
        if n >= live.size:
            return live
        steps = self.steps[live]
        threshold = np.partition(steps, n - 1)[n - 1]
        below = steps < threshold
        equal = np.flatnonzero(steps == threshold)[: n - int(below.sum())]
        return np.concatenate([live[below], live[equal]])

    # ------------------------------------------------------------------------------------------------- write
    def write(self, ids: np.ndarray, keys: np.ndarray, tokens: np.ndarray, step: int) -> None:
        """Store a batch of unique ids (n,), keys (n, key_dim) and tokens (n, token_dim)."""
        cfg = self.config
        rows = self.lookup(ids)  # (n,) old rows of replaced entries, -1 for new ids
        found = rows >= 0
        killed = bool(found.any())
        if killed:  # a replaced entry's old row dies; the entry gets a new row below (the index is append-only)
            self._kill(rows[found])
        if ids.size > cfg.max_entries:  # one batch larger than the namespace: keep its last max_entries
            self.evicted += ids.size - cfg.max_entries
            ids, keys, tokens = ids[-cfg.max_entries :], keys[-cfg.max_entries :], tokens[-cfg.max_entries :]
        excess = self.n_alive + ids.size - cfg.max_entries
        if excess > 0:
            n_evict = min(self.n_alive, max(excess, math.ceil(cfg.evict_fraction * cfg.max_entries)))
            self._kill(self._oldest(n_evict))
            self.evicted += n_evict
            killed = True
        if killed:  # drop dead rows from the sorted-id index
            keep = self.alive[self.sorted_rows]
            self.sorted_ids, self.sorted_rows = self.sorted_ids[keep], self.sorted_rows[keep]
        self._append(ids, keys, tokens, step)
        if self.kind == "flat" and self.n_alive >= cfg.exact_below:
            self._rebuild("hnsw")
        elif self.n_rows - self.n_alive > cfg.stale_fraction * self.n_rows:
            hnsw = self.n_alive >= (cfg.exact_below // 2 if self.kind == "hnsw" else cfg.exact_below)
            self._rebuild("hnsw" if hnsw else "flat")

    def _append(self, ids: np.ndarray, keys: np.ndarray, tokens: np.ndarray, step: int | np.ndarray) -> None:
        """Append rows for ids (a,) not stored yet, add their keys to the index and to the sorted-id index."""
        a = ids.size
        self._reserve(a)
        new_rows = np.arange(self.n_rows, self.n_rows + a, dtype=np.int64)  # (a,)
        self.ids[new_rows] = ids
        self.keys[new_rows] = keys
        self.tokens[new_rows] = tokens
        self.steps[new_rows] = step
        self.alive[new_rows] = True
        self.n_rows += a
        self.n_alive += a
        self.index.add(self.keys[new_rows])  # faiss labels continue at the old ntotal == first new row
        order = np.argsort(ids, kind="stable")
        pos = np.searchsorted(self.sorted_ids, ids[order])
        self.sorted_ids = np.insert(self.sorted_ids, pos, ids[order])
        self.sorted_rows = np.insert(self.sorted_rows, pos, new_rows[order])

    def load(self, ids: np.ndarray, keys: np.ndarray, tokens: np.ndarray, steps: np.ndarray) -> None:
        """Replace the contents by unique ids (n,) with keys, tokens and last-write steps (n,), rows in that order."""
        self._allocate(0)
        self.index = self._make_index("flat")  # filled again by the rebuild below
        self._append(ids, keys, tokens, steps)
        self._rebuild("hnsw" if self.n_alive >= self.config.exact_below else "flat")
        self.rebuilds = 0

    def _make_index(self, kind: str) -> faiss.Index:
        cfg = self.config
        faiss.omp_set_num_threads(1)  # one thread per process: multi-threaded single queries are 20-50x slower
        if kind == "flat":
            return faiss.IndexFlatIP(cfg.key_dim)
        index = faiss.IndexHNSWFlat(cfg.key_dim, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = cfg.hnsw_ef_construction
        index.hnsw.efSearch = cfg.hnsw_ef_search
        return index

    def _rebuild(self, kind: str) -> None:
        """Compact the rows to the live ones (keeping their order) and build a fresh index of `kind` over them."""
        live = np.flatnonzero(self.alive[: self.n_rows])  # (N,) ascending, so live[j] >= j
        if live.size < self.n_rows:
            # In place, in chunks (no full-size temporary): chunk [s, e) reads rows live[s:e] >= s and writes rows
            # [s, e), and no later chunk reads a row below e, so nothing is overwritten before it is read.
            for start in range(0, live.size, _COMPACT_CHUNK):
                src = live[start : start + _COMPACT_CHUNK]
                dst = slice(start, start + src.size)
                for array in (self.ids, self.keys, self.tokens, self.steps):
                    array[dst] = array[src]
            remap = np.full(self.n_rows, -1, np.int64)
            remap[live] = np.arange(live.size)
            self.sorted_rows = remap[self.sorted_rows]
            self.alive[: live.size] = True
            self.alive[live.size : self.n_rows] = False
            self.n_rows = self.n_alive = live.size
        self.kind = kind
        self.index = self._make_index(kind)
        if self.n_rows:
            self.index.add(self.keys[: self.n_rows])
        self.rebuilds += 1

    # ------------------------------------------------------------------------------------------------ search
    def search(self, queries: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-`m` live rows for queries (Q, key_dim): rows (Q, m) int64 (-1 pad), scores (Q, m) float32 (-inf pad)."""
        n_queries = queries.shape[0]
        rows = np.full((n_queries, m), -1, np.int64)
        scores = np.full((n_queries, m), -np.inf, np.float32)
        if self.n_alive == 0 or n_queries == 0:
            return rows, scores
        need = min(m, self.n_alive)
        dead = self.n_rows - self.n_alive
        k1 = min(self.n_rows, m if dead == 0 else 2 * m + _OVERFETCH)
        # Flat: m + dead candidates always hold m live ones. HNSW: a wider beam, then exact numpy if still short.
        k2 = min(self.n_rows, m + dead if self.kind == "flat" else 16 * k1)
        todo = np.arange(n_queries)
        for k in (k1, k2) if k2 > k1 else (k1,):
            dists, labels = self._index_search(queries[todo], k)  # (q, k) each, best first
            r, s = self._first_live(dists, labels, m)
            rows[todo], scores[todo] = r, s
            todo = todo[(r >= 0).sum(axis=1) < need]
            if todo.size == 0:
                return rows, scores
        live = np.flatnonzero(self.alive[: self.n_rows])  # exact fallback over the live rows
        sims = queries[todo] @ self.keys[live].T  # (q, N)
        top = (
            np.argpartition(-sims, need - 1, axis=1)[:, :need]
            if need < live.size
            else np.tile(np.arange(live.size), (todo.size, 1))
        )
        top_sims = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_sims, axis=1, kind="stable")
        rows[todo, :need] = live[np.take_along_axis(top, order, axis=1)]
        scores[todo, :need] = np.take_along_axis(top_sims, order, axis=1)
        return rows, scores

    def _index_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Search the faiss index; HNSW gets a beam of at least `2k` (fewer, worse hits come back when k > efSearch)."""
        if self.kind == "hnsw" and 2 * k > self.config.hnsw_ef_search:
            params = faiss.SearchParametersHNSW()
            params.efSearch = 2 * k
            return self.index.search(queries, k, params=params)
        return self.index.search(queries, k)

    def _first_live(self, dists: np.ndarray, labels: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        """The first `m` live candidates of each row of faiss results (q, k), padded to (q, m)."""
        if labels.shape[1] < m:
            pad = m - labels.shape[1]
            labels = np.pad(labels, ((0, 0), (0, pad)), constant_values=-1)
            dists = np.pad(dists, ((0, 0), (0, pad)), constant_values=-np.inf)
        live = labels >= 0  # (q, k)
        live[live] = self.alive[labels[live]]
        if live[:, :m].all():  # the usual case: the first m candidates are all live
            return labels[:, :m], dists[:, :m]
        order = np.argsort(~live, axis=1, kind="stable")[:, :m]  # live candidates first, rank order kept
        taken = np.take_along_axis(live, order, axis=1)  # (q, m)
        rows = np.where(taken, np.take_along_axis(labels, order, axis=1), -1)
        scores = np.where(taken, np.take_along_axis(dists, order, axis=1), -np.inf).astype(np.float32)
        return rows, scores

    def nbytes(self) -> int:
        """Bytes of the used rows, the sorted-id index and the faiss index."""
        row = 8 + 4 * self.config.key_dim + 4 * self.config.token_dim + 8 + 1  # id, key, token, step, alive
        total = self.n_rows * row + self.sorted_ids.nbytes + self.sorted_rows.nbytes
        total += self.index.ntotal * self.config.key_dim * 4  # stored vectors (flat and HNSW alike)
        if self.kind == "hnsw":
            hnsw = self.index.hnsw
            total += hnsw.neighbors.size() * 4 + hnsw.offsets.size() * 8 + hnsw.levels.size() * 4
        return int(total)


class LongTermMemory:
    """Long-term memory: namespaced (id, key, token) entries with nearest-key search.

    Args:
        config: Settings; `LTMConfig()` by default.

    Example:
        >>> ltm = LongTermMemory(LTMConfig(key_dim=4, token_dim=2))
        >>> ltm.write("leaf", np.array([7]), np.ones((1, 4), np.float32), np.zeros((1, 2), np.float32), step=0)
        >>> ltm.search(np.ones(4, np.float32), m=2).ids
        array([[ 7, -1]])
    """

    def __init__(self, config: LTMConfig | None = None) -> None:
        self.config = LTMConfig() if config is None else config
        self.reset()

    def reset(self) -> None:
        """Forget every entry and zero the counters."""
        self._spaces = {name: _Namespace(self.config) for name in NAMESPACES}
        self._writes = 0
        self._queries = 0

    # ------------------------------------------------------------------------------------------------- write
    def write(self, namespace: str, ids: np.ndarray, keys: np.ndarray, tokens: np.ndarray, step: int) -> None:
        """Store a batch of entries; an id already in `namespace` has its key, token and step replaced.

        Within one batch a repeated id keeps its last occurrence. A full namespace evicts its oldest entries first
        (see the module docstring); the write itself never fails for lack of room.

        Args:
            namespace: `"leaf"` or `"node"`.
            ids: Entry ids, shape `(n,)`, integers in `[0, 2**63)` (3-D Morton keys of 21 bits per axis fit).
            keys: Search keys, shape `(n, key_dim)`, finite; stored L2-normalised with `normalize`.
            tokens: Memory tokens, shape `(n, token_dim)`, finite; stored as float32.
            step: Step of the write (orders eviction: smallest last-write step goes first).

        Raises:
            ValueError: On an unknown namespace, wrong shapes or widths, non-integer or negative ids, non-finite
                keys or tokens, or a non-integer step.
        """
        space = self._space(namespace)
        ids = self._check_ids(ids)
        n = ids.shape[0]
        keys = self._check_matrix("keys", keys, n, self.config.key_dim)
        tokens = self._check_matrix("tokens", tokens, n, self.config.token_dim)
        if not is_int(step):
            raise ValueError(f"step must be an integer, got {step!r}")
        self._writes += n
        if n == 0:
            return
        if self.config.normalize:
            keys = _normalize(keys)
        _, last = np.unique(ids[::-1], return_index=True)  # last occurrence of each id wins
        if last.size < n:
            keep = np.sort(n - 1 - last)
            ids, keys, tokens = ids[keep], keys[keep], tokens[keep]
        space.write(ids, keys, tokens, int(step))

    # ------------------------------------------------------------------------------------------------ search
    def search(self, query: np.ndarray, m: int | None = None, namespaces: str | Sequence[str] = NAMESPACES) -> LTMHits:
        """Top-`m` entries by inner product with the query, over the given namespaces merged by score.

        Args:
            query: Query key(s), shape `(key_dim,)` or `(Q, key_dim)`, finite; a single query gives `Q = 1`.
            m: Hits per query; `config.top_m` by default.
            namespaces: One namespace or several; ties in score go to the namespace listed first.

        Returns:
            Hits of shape `(Q, m)` (see `LTMHits`; fewer than `m` entries in total are padded with id -1 and score
            -inf).

        Raises:
            ValueError: On a query of the wrong shape or width, a non-finite query, `m < 1`, or an unknown or empty
                namespace list.
        """
        cfg = self.config
        m = cfg.top_m if m is None else m
        if not is_int(m) or m < 1:
            raise ValueError(f"m must be an integer >= 1, got {m!r}")
        names = (namespaces,) if isinstance(namespaces, str) else tuple(namespaces)
        if not names:
            raise ValueError("namespaces must name at least one namespace")
        spaces = [self._space(name) for name in names]
        queries = np.asarray(query, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None]
        if queries.ndim != 2 or queries.shape[1] != cfg.key_dim:
            raise ValueError(f"query must have shape ({cfg.key_dim},) or (Q, {cfg.key_dim}), got {queries.shape}")
        if not np.isfinite(queries).all():
            raise ValueError("query must be finite (found NaN or inf)")
        queries = _normalize(queries) if cfg.normalize else np.ascontiguousarray(queries)
        self._queries += queries.shape[0]

        n_queries = queries.shape[0]
        active = [s for s, space in enumerate(spaces) if space.n_alive]  # empty namespaces only pad
        if len(active) == 1:
            best_rows, best_scores = spaces[active[0]].search(queries, m)  # (Q, m) each
            which = np.full((n_queries, m), active[0])  # (Q, m) index into `spaces`
        elif active:
            rows, scores = zip(*(spaces[s].search(queries, m) for s in active), strict=True)
            all_rows = np.concatenate(rows, axis=1)  # (Q, A*m)
            all_scores = np.concatenate(scores, axis=1)  # (Q, A*m)
            order = np.argsort(-all_scores, axis=1, kind="stable")[:, :m]  # (Q, m) best first, -inf padding last
            best_rows = np.take_along_axis(all_rows, order, axis=1)
            best_scores = np.take_along_axis(all_scores, order, axis=1)
            which = np.asarray(active)[order // m]
        else:
            best_rows = np.full((n_queries, m), -1, np.int64)
            best_scores = np.full((n_queries, m), -np.inf, np.float32)
            which = np.zeros((n_queries, m), np.int64)
        valid = best_rows >= 0
        out_ids = np.full(best_rows.shape, -1, np.int64)
        out_tokens = np.zeros((*best_rows.shape, cfg.token_dim), np.float32)  # (Q, m, token_dim)
        for s in active:
            sel = valid & (which == s)
            out_ids[sel] = spaces[s].ids[best_rows[sel]]
            out_tokens[sel] = spaces[s].tokens[best_rows[sel]]
        out_names = np.where(valid, np.asarray(names)[which], "")
        return LTMHits(namespaces=out_names, ids=out_ids, scores=best_scores, tokens=out_tokens)

    # -------------------------------------------------------------------------------------------- inspection
    def __len__(self) -> int:
        return sum(space.n_alive for space in self._spaces.values())

    def size(self, namespace: str) -> int:
        """Number of entries stored in `namespace`."""
        return self._space(namespace).n_alive

    def stats(self) -> dict[str, object]:
        """Counters for logging.

        Returns:
            ``entries``, ``evicted``, ``index_kind`` (``"flat"`` or ``"hnsw"``), ``rebuilds`` and ``dead_rows``,
            each a dict by namespace; ``bytes`` (rows in use plus indexes, all namespaces), ``writes`` (entries
            written, repeats included) and ``queries`` (query vectors searched), all since the last `reset`.
        """
        spaces = self._spaces
        return {
            "entries": {name: s.n_alive for name, s in spaces.items()},
            "evicted": {name: s.evicted for name, s in spaces.items()},
            "index_kind": {name: s.kind for name, s in spaces.items()},
            "rebuilds": {name: s.rebuilds for name, s in spaces.items()},
            "dead_rows": {name: s.n_rows - s.n_alive for name, s in spaces.items()},
            "bytes": sum(s.nbytes() for s in spaces.values()),
            "writes": self._writes,
            "queries": self._queries,
        }

    def snapshot(self) -> dict[str, np.ndarray]:
        """Copy of the stored entries, for episode files, in write order (oldest row first).

        Returns:
            For each namespace ``ns``: ``"{ns}/ids"`` `(N,)` int64, ``"{ns}/keys"`` `(N, key_dim)` float32 (as
            stored, i.e. normalised with `normalize`), ``"{ns}/tokens"`` `(N, token_dim)` float32 and
            ``"{ns}/steps"`` `(N,)` int64 (last write step).
        """
        out: dict[str, np.ndarray] = {}
        for name, space in self._spaces.items():
            live = np.flatnonzero(space.alive[: space.n_rows])
            out[f"{name}/ids"] = space.ids[live]
            out[f"{name}/keys"] = space.keys[live]
            out[f"{name}/tokens"] = space.tokens[live]
            out[f"{name}/steps"] = space.steps[live]
        return out

    def restore(self, snapshot: Mapping[str, np.ndarray]) -> None:
        """Replace the contents by those of a `snapshot` (counters are reset; namespaces it lacks stay empty).

        Raises:
            ValueError: On arrays of the wrong shape, repeated ids, or more than `max_entries` in a namespace.
        """
        self.reset()
        cfg = self.config
        for name, space in self._spaces.items():
            if f"{name}/ids" not in snapshot:
                continue
            ids = self._check_ids(snapshot[f"{name}/ids"])
            n = ids.shape[0]
            keys = self._check_matrix("keys", snapshot[f"{name}/keys"], n, cfg.key_dim)
            tokens = self._check_matrix("tokens", snapshot[f"{name}/tokens"], n, cfg.token_dim)
            steps = np.asarray(snapshot[f"{name}/steps"])
            if steps.shape != (n,) or steps.dtype.kind not in "iu":
                raise ValueError(f"{name}/steps must be integers of shape ({n},), got {steps.dtype} {steps.shape}")
            if np.unique(ids).size < n:
                raise ValueError(f"{name}/ids must be unique")
            if n > cfg.max_entries:
                raise ValueError(f"{name} holds {n} entries, more than max_entries={cfg.max_entries}")
            space.load(ids, _normalize(keys) if cfg.normalize else keys, tokens, steps.astype(np.int64))

    # ------------------------------------------------------------------------------------------------ checks
    def _space(self, namespace: str) -> _Namespace:
        if not isinstance(namespace, str) or namespace not in self._spaces:
            raise ValueError(f"unknown namespace {namespace!r}, expected one of {NAMESPACES}")
        return self._spaces[namespace]

    @staticmethod
    def _check_ids(ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids)
        if ids.ndim != 1:
            raise ValueError(f"ids must have shape (n,), got {ids.shape}")
        if ids.size == 0:
            return ids.astype(np.int64)
        if ids.dtype.kind not in "iu":
            raise ValueError(f"ids must be integers, got dtype {ids.dtype}")
        if ids.dtype.kind == "u" and int(ids.max()) >= 2**63:
            raise ValueError(f"ids must be < 2**63, got {int(ids.max())}")
        ids = ids.astype(np.int64)
        if int(ids.min()) < 0:
            raise ValueError(f"ids must be >= 0, got {int(ids.min())}")
        return ids

    @staticmethod
    def _check_matrix(name: str, values: np.ndarray, n: int, width: int) -> np.ndarray:
        values = np.asarray(values, dtype=np.float32)
        if values.shape != (n, width):
            raise ValueError(f"{name} must have shape (n, {width}) with n = {n} ids, got {values.shape}")
        if not np.isfinite(values).all():
            raise ValueError(f"{name} must be finite (found NaN or inf)")
        return values


def _normalize(x: np.ndarray) -> np.ndarray:
    """Rows of x (n, d) scaled to unit L2 norm (float32, C-contiguous); zero rows stay zero."""
    norms = np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)  # (n, 1)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-30), dtype=np.float32)
