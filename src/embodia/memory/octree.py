"""Sparse octree: the Mem4Nav spatial index (design: MEM4NAV.md §1).

Space is a cube of side ``extent = leaf_size * 2**depth`` with minimum corner ``origin``. A point ``p``
falls in the leaf cell ``c = floor((p - origin) / leaf_size)`` (clipped to ``[0, 2**depth - 1]`` per axis)
whose key is the 3-D Morton code of ``c``: the bits of ``c_x``, ``c_y``, ``c_z`` interleaved with ``x`` in
bit 0, ``y`` in bit 1 and ``z`` in bit 2, 21 bits per axis in a ``uint64``. Coarser octree levels come for
free: the key of the level-``l`` ancestor is ``key >> (3 * l)``.

Only visited leaves exist. They are stored column-wise (one row per leaf, arrays grown by doubling) and
indexed by a sorted key array, so looking up ``K`` keys is one vectorised ``np.searchsorted`` (``O(K log L)``
for ``L`` leaves) and inserting a batch of ``N`` points is a handful of vectorised passes (``np.unique`` of
the batch keys, ``np.bincount`` for the per-leaf sums, one ``np.insert`` merge of the new keys into the
sorted index): no Python loop per point or per leaf. Neighbour and radius queries enumerate candidate cells
and look their keys up; they never scan all leaves (the radius query scans the leaves only when that is
cheaper than enumerating its bounding box, see :meth:`SparseOctree.radius_query`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np

from embodia.validation import is_int

__all__ = ["MORTON_BITS", "OctreeConfig", "SparseOctree", "morton_decode", "morton_encode", "parent_key"]

MORTON_BITS = 21
"""Bits per axis in a Morton key (3 * 21 = 63 bits of a uint64)."""
_RECENT_MIN = 8192  # the recent part of the key index merges into the main part past max(this, main / 4)

_MORTON_MAX = 1 << MORTON_BITS  # cells per axis are < 2**21
_U64 = np.uint64


def _spread_bits(v: np.ndarray) -> np.ndarray:
    """Spreads the low 21 bits of each uint64 so bit ``i`` moves to bit ``3 i`` (in place on a copy)."""
    v = v & _U64(0x1FFFFF)
    v = (v | (v << _U64(32))) & _U64(0x1F00000000FFFF)
    v = (v | (v << _U64(16))) & _U64(0x1F0000FF0000FF)
    v = (v | (v << _U64(8))) & _U64(0x100F00F00F00F00F)
    v = (v | (v << _U64(4))) & _U64(0x10C30C30C30C30C3)
    v = (v | (v << _U64(2))) & _U64(0x1249249249249249)
    return v


def _compact_bits(v: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_spread_bits`: gathers bits ``0, 3, 6, ...`` of each uint64 into its low 21 bits."""
    v = v & _U64(0x1249249249249249)
    v = (v ^ (v >> _U64(2))) & _U64(0x10C30C30C30C30C3)
    v = (v ^ (v >> _U64(4))) & _U64(0x100F00F00F00F00F)
    v = (v ^ (v >> _U64(8))) & _U64(0x1F0000FF0000FF)
    v = (v ^ (v >> _U64(16))) & _U64(0x1F00000000FFFF)
    v = (v ^ (v >> _U64(32))) & _U64(0x1FFFFF)
    return v


def _encode_unchecked(cells: np.ndarray) -> np.ndarray:
    """Morton codes of (N, 3) cells already known to be integers in ``[0, 2**21)``; returns (N,) uint64."""
    c = cells.astype(_U64, copy=False)
    return _spread_bits(c[:, 0]) | (_spread_bits(c[:, 1]) << _U64(1)) | (_spread_bits(c[:, 2]) << _U64(2))


def _decode_unchecked(codes: np.ndarray) -> np.ndarray:
    """(N,) uint64 codes -> (N, 3) int64 cells, without validation."""
    out = np.empty((codes.shape[0], 3), dtype=np.int64)
    for axis in range(3):  # three vectorised passes, not a per-element loop
        out[:, axis] = _compact_bits(codes >> _U64(axis))
    return out


def _as_keys(keys: Any, name: str = "keys") -> np.ndarray:
    """Validates keys (a non-negative integer scalar or 1-D array-like) and returns them as (K,) uint64."""
    k = np.asarray(keys)
    if k.ndim == 0:
        k = k.reshape(1)
    if k.ndim != 1:
        raise ValueError(f"{name} must be a scalar or a 1-D array, got shape {k.shape}")
    if k.size == 0:
        return np.empty(0, dtype=_U64)
    if k.dtype.kind == "u":
        return k.astype(_U64, copy=False)
    if k.dtype.kind == "i":
        if (k < 0).any():
            raise ValueError(f"{name} must be non-negative")
        return k.astype(_U64)
    if k.dtype == object and all(isinstance(x, Integral) and not isinstance(x, bool) and x >= 0 for x in k):
        return k.astype(_U64)
    raise ValueError(f"{name} must be non-negative integers, got dtype {k.dtype}")


def morton_encode(cells: np.ndarray) -> np.ndarray:
    """3-D Morton codes of integer cells (bit interleave: ``x`` in bit 0, ``y`` in bit 1, ``z`` in bit 2).

    Args:
        cells: (N, 3) integer cell coordinates, each in ``[0, 2**21)``.

    Returns:
        (N,) uint64 codes; distinct cells give distinct codes, and sorting codes orders cells along the
        Z-order curve.

    Raises:
        ValueError: If ``cells`` is not an (N, 3) integer array or a coordinate is outside ``[0, 2**21)``.
    """
    c = np.asarray(cells)
    if c.ndim != 2 or c.shape[1] != 3:
        raise ValueError(f"cells must have shape (N, 3), got {c.shape}")
    if c.size and c.dtype.kind not in "iu":
        raise ValueError(f"cells must be integers, got dtype {c.dtype}")
    if c.size and ((c < 0).any() or (c >= _MORTON_MAX).any()):
        raise ValueError(f"cells must lie in [0, 2**{MORTON_BITS})")
    return _encode_unchecked(c)


def morton_decode(codes: np.ndarray) -> np.ndarray:
    """Cells of 3-D Morton codes; the inverse of :func:`morton_encode`.

    Args:
        codes: (N,) non-negative integer codes below ``2**63``.

    Returns:
        (N, 3) int64 cell coordinates.

    Raises:
        ValueError: If a code is negative, not an integer, or has bit 63 set.
    """
    k = _as_keys(codes, "codes")
    if k.size and (k >> _U64(3 * MORTON_BITS)).any():
        raise ValueError(f"codes must be below 2**{3 * MORTON_BITS}")
    return _decode_unchecked(k)


def parent_key(codes: np.ndarray, levels: int = 1) -> np.ndarray:
    """Keys of the ancestors ``levels`` octree levels up: ``codes >> (3 * levels)``.

    Args:
        codes: (N,) non-negative integer Morton codes.
        levels: How many levels to go up, in ``[0, 21]`` (0 returns the codes unchanged).

    Returns:
        (N,) uint64 parent keys.

    Raises:
        ValueError: If ``levels`` is not an integer in ``[0, 21]``.
    """
    if isinstance(levels, bool) or not isinstance(levels, Integral) or not 0 <= levels <= MORTON_BITS:
        raise ValueError(f"levels must be an integer in [0, {MORTON_BITS}], got {levels!r}")
    return _as_keys(codes, "codes") >> _U64(3 * int(levels))


@dataclass
class OctreeConfig:
    """Geometry and payload of a :class:`SparseOctree`."""

    leaf_size: float = 1.0
    """Side of a leaf cell in metres (> 0). The design suggests 0.5-2 m in a per-episode local frame."""

    depth: int = 16
    """Leaves per axis are ``2**depth`` (0 <= depth <= 21); the cube's side is ``leaf_size * 2**depth``."""

    origin: tuple[float, float, float] | None = None
    """Minimum corner of the cube in world coordinates; ``None`` centres the cube on the first inserted point
    (a per-episode local frame, re-chosen after :meth:`SparseOctree.reset`)."""

    num_classes: int = 17
    """Length of each leaf's semantic class histogram (>= 1); class 0 means "no class"."""

    embedding_dim: int = 0
    """Width of the per-leaf "last embedding" (>= 0); 0 stores none."""

    def __post_init__(self) -> None:
        if isinstance(self.leaf_size, bool) or not isinstance(self.leaf_size, Real):
            raise ValueError(f"leaf_size must be a positive finite number, got {self.leaf_size!r}")
        if not (math.isfinite(self.leaf_size) and self.leaf_size > 0):
            raise ValueError(f"leaf_size must be a positive finite number, got {self.leaf_size!r}")
        self.leaf_size = float(self.leaf_size)
        if not is_int(self.depth) or not 0 <= self.depth <= MORTON_BITS:
            raise ValueError(f"depth must be an integer in [0, {MORTON_BITS}], got {self.depth!r}")
        self.depth = int(self.depth)
        if self.origin is not None:
            try:
                origin = tuple(float(v) for v in self.origin)
            except (TypeError, ValueError):
                raise ValueError(f"origin must be None or 3 finite numbers, got {self.origin!r}") from None
            if len(origin) != 3 or not all(math.isfinite(v) for v in origin):
                raise ValueError(f"origin must be None or 3 finite numbers, got {self.origin!r}")
            self.origin = origin  # type: ignore[assignment]
        if not is_int(self.num_classes) or self.num_classes < 1:
            raise ValueError(f"num_classes must be an integer >= 1, got {self.num_classes!r}")
        self.num_classes = int(self.num_classes)
        if not is_int(self.embedding_dim) or self.embedding_dim < 0:
            raise ValueError(f"embedding_dim must be an integer >= 0, got {self.embedding_dim!r}")
        self.embedding_dim = int(self.embedding_dim)

    @property
    def cells_per_axis(self) -> int:
        """Leaves per axis, ``2**depth``."""
        return 1 << self.depth

    @property
    def extent(self) -> float:
        """Side of the cube in metres, ``leaf_size * 2**depth``."""
        return self.leaf_size * self.cells_per_axis


class SparseOctree:
    """Sparse octree of visited leaves, keyed by 3-D Morton code, with per-leaf statistics.

    Each leaf (one row of column-wise storage) holds: its key (from which its centre and size follow), the
    number of points inserted into it, the sum of those points (for the centroid), a semantic class histogram
    (``num_classes`` bins), the last embedding written to it (``embedding_dim`` floats, NaN until the first
    one), the step of its last update, and an integer token slot (``-1`` until set) that the memory uses to
    find the leaf's memory token stored elsewhere.

    Every method taking ``keys`` accepts a scalar or a (K,) array of non-negative integer keys; the methods
    that read leaf data raise ``KeyError`` if a key is not a leaf (use :meth:`rows` to test membership).

    Args:
        config: Geometry and payload sizes.
    """

    _INITIAL_CAPACITY = 1024

    def __init__(self, config: OctreeConfig) -> None:
        if not isinstance(config, OctreeConfig):
            raise ValueError(f"config must be an OctreeConfig, got {type(config).__name__}")
        self.config = config
        self.reset()

    # ------------------------------------------------------------------------------------------------
    # storage

    def reset(self) -> None:
        """Removes every leaf and zeroes the counters; an origin of ``None`` is re-chosen on the next insert."""
        cfg = self.config
        self._origin: np.ndarray | None = None if cfg.origin is None else np.asarray(cfg.origin, dtype=np.float64)
        self._size = 0
        self._points_inserted = 0
        self._points_clipped = 0
        # The key index is two sorted arrays: a large main one and a small recent one that new keys go into, merged
        # into the main one when it grows past a fraction of it. Inserting into the small array costs O(recent)
        # instead of O(leaves), so many small batches stay fast (amortised O(1) index work per new leaf).
        self._keys_sorted = np.empty(0, dtype=_U64)
        self._rows_sorted = np.empty(0, dtype=np.int64)
        self._recent_keys = np.empty(0, dtype=_U64)
        self._recent_rows = np.empty(0, dtype=np.int64)
        self._alloc(self._INITIAL_CAPACITY)

    def _alloc(self, capacity: int) -> None:
        """Allocates uninitialised row storage; rows are initialised when their leaf is created."""
        cfg = self.config
        self._key = np.empty(capacity, dtype=_U64)
        self._count = np.empty(capacity, dtype=np.int64)
        self._pos_sum = np.empty((capacity, 3), dtype=np.float64)
        self._hist = np.empty((capacity, cfg.num_classes), dtype=np.int32)
        self._emb = np.empty((capacity, cfg.embedding_dim), dtype=np.float32)
        self._last_step = np.empty(capacity, dtype=np.int64)
        self._token_slot = np.empty(capacity, dtype=np.int64)

    def _columns(self) -> tuple[str, ...]:
        return ("_key", "_count", "_pos_sum", "_hist", "_emb", "_last_step", "_token_slot")

    def _reserve(self, needed: int) -> None:
        """Grows the row storage by doubling until it holds ``needed`` rows."""
        capacity = self._key.shape[0]
        if needed <= capacity:
            return
        while capacity < needed:
            capacity *= 2
        old = {name: getattr(self, name) for name in self._columns()}
        self._alloc(capacity)
        for name, arr in old.items():
            getattr(self, name)[: self._size] = arr[: self._size]

    def __len__(self) -> int:
        """Number of leaves."""
        return self._size

    @property
    def origin(self) -> np.ndarray | None:
        """(3,) float64 minimum corner of the cube, or ``None`` before the first insert when not configured."""
        return None if self._origin is None else self._origin.copy()

    @property
    def extent(self) -> float:
        """Side of the cube in metres."""
        return self.config.extent

    def keys(self) -> np.ndarray:
        """All leaf keys.

        Returns:
            (L,) uint64 keys, sorted ascending.
        """
        self._merge_index()
        return self._keys_sorted.copy()

    # ------------------------------------------------------------------------------------------------
    # insertion

    def _require_origin(self) -> np.ndarray:
        if self._origin is None:
            raise ValueError("the octree has no origin yet: configure one or insert points first")
        return self._origin

    def _point_cells(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Clipped (N, 3) int64 cells of validated (N, 3) float64 points and the (N,) bool mask of clipped ones."""
        origin = self._require_origin()
        top = self.config.cells_per_axis - 1
        f = np.floor((points - origin) / self.config.leaf_size)
        clipped = ((f < 0) | (f > top)).any(axis=1)
        cells = np.clip(f, 0, top).astype(np.int64)
        return cells, clipped

    @staticmethod
    def _check_points(points: Any) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 3:
            raise ValueError(f"points must have shape (N, 3), got {p.shape}")
        if not np.isfinite(p).all():
            raise ValueError("points must be finite (found NaN or inf)")
        return p

    def point_keys(self, points: np.ndarray) -> np.ndarray:
        """Leaf key of each point (points outside the cube go to its boundary cells), without inserting.

        Args:
            points: (N, 3) finite coordinates.

        Returns:
            (N,) uint64 keys (the leaves need not exist).

        Raises:
            ValueError: On a bad shape, non-finite points, or before the origin is known.
        """
        cells, _ = self._point_cells(self._check_points(points))
        return _encode_unchecked(cells)

    def insert(
        self,
        points: np.ndarray,
        classes: np.ndarray | None = None,
        embedding: np.ndarray | None = None,
        step: int = 0,
        return_counts: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Inserts a batch of points, creating the leaves they fall in; vectorised, no per-point loop.

        Points outside the cube are clipped to its boundary cells and counted in ``stats()["points_clipped"]``.
        If the origin is ``None``, the cube is first centred on ``points[0]``.

        Args:
            points: (N, 3) finite world coordinates.
            classes: (N,) integer semantic classes in ``[0, num_classes)``; ``None`` counts every point as
                class 0 ("no class"), so each histogram always sums to the leaf's count.
            embedding: (embedding_dim,) finite vector stored (as float32) as the last embedding of every
                touched leaf; ``None`` leaves the stored embeddings unchanged.
            step: Time step recorded as the touched leaves' last update step.
            return_counts: Also return how many of this batch's points fell in each touched leaf.

        Returns:
            (U,) uint64 keys of the touched leaves, unique and sorted; with ``return_counts`` also (U,) int64
            point counts of this batch.

        Raises:
            ValueError: On a bad shape, NaN/inf in ``points`` or ``embedding``, an embedding of the wrong width,
                classes out of range, or a non-integer step.
        """
        cfg = self.config
        p = self._check_points(points)
        n = p.shape[0]
        if classes is not None:
            cls = np.asarray(classes)
            if cls.shape != (n,):
                raise ValueError(f"classes must have shape ({n},), got {cls.shape}")
            if n and cls.dtype.kind not in "iu":
                raise ValueError(f"classes must be integers, got dtype {cls.dtype}")
            if n and ((cls < 0).any() or (cls >= cfg.num_classes).any()):
                raise ValueError(f"classes must lie in [0, {cfg.num_classes})")
            cls = cls.astype(np.int64, copy=False)
        else:
            cls = None
        emb = None
        if embedding is not None:
            if cfg.embedding_dim == 0:
                raise ValueError("this octree stores no embeddings (embedding_dim=0); pass embedding=None")
            emb = np.asarray(embedding, dtype=np.float64)
            if emb.shape != (cfg.embedding_dim,):
                raise ValueError(f"embedding must have shape ({cfg.embedding_dim},), got {emb.shape}")
            if not np.isfinite(emb).all():
                raise ValueError("embedding must be finite (found NaN or inf)")
        if not is_int(step):
            raise ValueError(f"step must be an integer, got {step!r}")
        if n == 0:
            empty = np.empty(0, dtype=_U64)
            return (empty, np.empty(0, dtype=np.int64)) if return_counts else empty

        if self._origin is None:
            self._origin = p[0] - 0.5 * cfg.extent
        cells, clipped = self._point_cells(p)
        point_keys = _encode_unchecked(cells)
        uniq, inverse = np.unique(point_keys, return_inverse=True)
        u = uniq.shape[0]

        # Per touched leaf: point count, coordinate sums, class histogram.
        cnt = np.bincount(inverse, minlength=u)
        sums = np.stack([np.bincount(inverse, weights=p[:, a], minlength=u) for a in range(3)], axis=1)
        if cls is None:
            hist = None
        else:
            hist = np.bincount(inverse * cfg.num_classes + cls, minlength=u * cfg.num_classes)
            hist = hist.reshape(u, cfg.num_classes)

        # Existing leaves via the sorted index; the rest become new rows, merged into the index.
        rows = self._lookup(uniq)
        new = rows < 0
        m = int(new.sum())
        if m:
            new_keys = uniq[new]
            new_rows = np.arange(self._size, self._size + m, dtype=np.int64)
            self._reserve(self._size + m)
            grown = slice(self._size, self._size + m)
            self._key[grown] = new_keys
            self._count[grown] = 0
            self._pos_sum[grown] = 0.0
            self._hist[grown] = 0
            self._emb[grown] = np.nan
            self._last_step[grown] = -1
            self._token_slot[grown] = -1
            pos = np.searchsorted(self._recent_keys, new_keys)
            self._recent_keys = np.insert(self._recent_keys, pos, new_keys)
            self._recent_rows = np.insert(self._recent_rows, pos, new_rows)
            if self._recent_keys.size > max(_RECENT_MIN, self._keys_sorted.size // 4):
                self._merge_index()
            rows[new] = new_rows
            self._size += m

        self._count[rows] += cnt
        self._pos_sum[rows] += sums
        if hist is None:
            self._hist[rows, 0] += cnt
        else:
            self._hist[rows] += hist
        if emb is not None:
            self._emb[rows] = emb.astype(np.float32)
        self._last_step[rows] = int(step)
        self._points_inserted += n
        self._points_clipped += int(clipped.sum())
        return (uniq, cnt.astype(np.int64)) if return_counts else uniq

    # ------------------------------------------------------------------------------------------------
    # lookup and per-leaf data

    def _merge_index(self) -> None:
        """Merges the recent keys into the main sorted index (no-op when there are none)."""
        if self._recent_keys.size == 0:
            return
        pos = np.searchsorted(self._keys_sorted, self._recent_keys)
        self._keys_sorted = np.insert(self._keys_sorted, pos, self._recent_keys)
        self._rows_sorted = np.insert(self._rows_sorted, pos, self._recent_rows)
        self._recent_keys = np.empty(0, dtype=_U64)
        self._recent_rows = np.empty(0, dtype=np.int64)

    @staticmethod
    def _search(sorted_keys: np.ndarray, sorted_rows: np.ndarray, keys: np.ndarray) -> np.ndarray:
        if sorted_keys.size == 0:
            return np.full(keys.shape[0], -1, dtype=np.int64)
        idx = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
        return np.where(sorted_keys[idx] == keys, sorted_rows[idx], -1)

    def _lookup(self, keys: np.ndarray) -> np.ndarray:
        """(K,) int64 rows of validated (K,) uint64 keys, -1 where absent."""
        if self._size == 0 or keys.size == 0:
            return np.full(keys.shape[0], -1, dtype=np.int64)
        rows = self._search(self._keys_sorted, self._rows_sorted, keys)
        missing = rows < 0
        if missing.any() and self._recent_keys.size:
            rows[missing] = self._search(self._recent_keys, self._recent_rows, keys[missing])
        return rows

    def rows(self, keys: Any) -> np.ndarray:
        """Storage row of each key.

        Args:
            keys: (K,) non-negative integer keys (or a scalar).

        Returns:
            (K,) int64 rows, -1 where the key is not a leaf.
        """
        return self._lookup(_as_keys(keys))

    def _existing_rows(self, keys: Any) -> np.ndarray:
        k = _as_keys(keys)
        rows = self._lookup(k)
        missing = rows < 0
        if missing.any():
            raise KeyError(f"{int(missing.sum())} of {k.size} keys are not leaves (first: {int(k[missing][0])})")
        return rows

    def leaf_centres(self, keys: Any) -> np.ndarray:
        """Centres of the cells of the given keys, computed from the key alone (the leaf need not exist).

        Args:
            keys: (K,) non-negative integer keys below ``2**(3 * depth)``.

        Returns:
            (K, 3) float64 cell centres, ``origin + (cell + 0.5) * leaf_size``.

        Raises:
            ValueError: If a key is outside the octree or the origin is not known yet.
        """
        k = _as_keys(keys)
        if k.size and (k >> _U64(3 * self.config.depth)).any():
            raise ValueError(f"keys must be below 2**{3 * self.config.depth} (depth {self.config.depth})")
        return self._cell_centres(_decode_unchecked(k))

    def _cell_centres(self, cells: np.ndarray) -> np.ndarray:
        return self._require_origin() + (cells + 0.5) * self.config.leaf_size

    def centroids(self, keys: Any) -> np.ndarray:
        """Mean of the points inserted into each leaf.

        Args:
            keys: (K,) leaf keys.

        Returns:
            (K, 3) float64 centroids.
        """
        rows = self._existing_rows(keys)
        return self._pos_sum[rows] / self._count[rows, None]

    def counts(self, keys: Any) -> np.ndarray:
        """Number of points inserted into each leaf.

        Args:
            keys: (K,) leaf keys.

        Returns:
            (K,) int64 counts.
        """
        return self._count[self._existing_rows(keys)]

    def histograms(self, keys: Any) -> np.ndarray:
        """Semantic class histogram of each leaf (row sums equal :meth:`counts`).

        Args:
            keys: (K,) leaf keys.

        Returns:
            (K, num_classes) int32 point counts per class.
        """
        return self._hist[self._existing_rows(keys)]

    def embeddings(self, keys: Any) -> np.ndarray:
        """Last embedding written to each leaf.

        Args:
            keys: (K,) leaf keys.

        Returns:
            (K, embedding_dim) float32, NaN rows for leaves never given an embedding.
        """
        return self._emb[self._existing_rows(keys)]

    def last_steps(self, keys: Any) -> np.ndarray:
        """Step of each leaf's last insertion.

        Args:
            keys: (K,) leaf keys.

        Returns:
            (K,) int64 steps.
        """
        return self._last_step[self._existing_rows(keys)]

    def get_token_slots(self, keys: Any) -> np.ndarray:
        """Memory-token slot of each leaf.

        Args:
            keys: (K,) leaf keys.

        Returns:
            (K,) int64 slots, -1 where none was set.
        """
        return self._token_slot[self._existing_rows(keys)]

    def set_token_slots(self, keys: Any, slots: Any) -> None:
        """Sets the memory-token slot of each leaf.

        Args:
            keys: (K,) leaf keys.
            slots: (K,) integers (or one integer for all keys); -1 means "no token".

        Raises:
            KeyError: If a key is not a leaf.
            ValueError: If ``slots`` are not integers >= -1 or do not broadcast to (K,).
        """
        rows = self._existing_rows(keys)
        s = np.asarray(slots)
        if s.size and s.dtype.kind not in "iu":
            raise ValueError(f"slots must be integers, got dtype {s.dtype}")
        if s.size and (s < -1).any():
            raise ValueError("slots must be >= -1")
        try:
            s = np.broadcast_to(s, rows.shape)
        except ValueError:
            raise ValueError(f"slots of shape {s.shape} do not match {rows.shape[0]} keys") from None
        self._token_slot[rows] = s

    # ------------------------------------------------------------------------------------------------
    # spatial queries

    def neighbours(self, key: int, radius_cells: int = 1) -> np.ndarray:
        """Existing leaves among the ``(2 r + 1)**3 - 1`` cells around a cell (Chebyshev distance <= r).

        Enumerates the cells of the ``(2 r + 1)**3`` block (clipped to the cube) and looks their keys up; cost
        ``O(r**3 log L)``, independent of how many leaves exist elsewhere.

        Args:
            key: Key of the centre cell (which need not be a leaf itself).
            radius_cells: ``r >= 0``, in cells.

        Returns:
            (M,) uint64 keys of existing neighbour leaves, sorted, excluding ``key``.

        Raises:
            ValueError: If ``key`` is not a single key inside the octree or ``radius_cells`` is negative.
        """
        k = _as_keys(key, "key")
        if k.size != 1:
            raise ValueError(f"key must be a single key, got {k.size}")
        if not is_int(radius_cells) or radius_cells < 0:
            raise ValueError(f"radius_cells must be an integer >= 0, got {radius_cells!r}")
        if (k >> _U64(3 * self.config.depth)).any():
            raise ValueError(f"key must be below 2**{3 * self.config.depth} (depth {self.config.depth})")
        r = int(radius_cells)
        centre = _decode_unchecked(k)[0]
        top = self.config.cells_per_axis - 1
        axes = [np.arange(max(c - r, 0), min(c + r, top) + 1, dtype=np.int64) for c in centre.tolist()]
        cells = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)  # clipped to the cube
        cand = _encode_unchecked(cells)
        cand = np.sort(cand[cand != k[0]])
        return cand[self._lookup(cand) >= 0]

    def radius_query(self, point: np.ndarray, radius: float) -> np.ndarray:
        """Existing leaves whose cell centre lies within ``radius`` of ``point`` (``|centre - point| <= radius``).

        Enumerates the cells of the ball's bounding box (clipped to the cube), keeps those whose centre is in
        the ball and looks their keys up: cost ``O((radius / leaf_size)**3 log L)``. When the box has more
        cells than ``max(L, 4096)`` for ``L`` leaves, filtering the ``L`` leaf centres is cheaper and is done
        instead (same result), so the cost is bounded by ``O(min((radius / leaf_size)**3 log L, L))``.

        Args:
            point: (3,) finite query point.
            radius: Finite radius >= 0 in metres.

        Returns:
            (M,) uint64 keys, sorted.

        Raises:
            ValueError: On a bad point or radius.
        """
        q = np.asarray(point, dtype=np.float64)
        if q.shape != (3,) or not np.isfinite(q).all():
            raise ValueError(f"point must be 3 finite numbers, got shape {q.shape}")
        if isinstance(radius, bool) or not isinstance(radius, Real) or not (math.isfinite(radius) and radius >= 0):
            raise ValueError(f"radius must be a finite number >= 0, got {radius!r}")
        if self._size == 0:
            return np.empty(0, dtype=_U64)
        r = float(radius)
        origin = self._require_origin()
        leaf = self.config.leaf_size
        top = self.config.cells_per_axis - 1
        lo = np.floor((q - r - origin) / leaf)
        hi = np.floor((q + r - origin) / leaf)
        if (hi < 0).any() or (lo > top).any():
            return np.empty(0, dtype=_U64)
        lo = np.clip(lo, 0, top).astype(np.int64)
        hi = np.clip(hi, 0, top).astype(np.int64)
        box_cells = int(np.prod(hi - lo + 1))
        if box_cells > max(self._size, 4096):
            self._merge_index()
            keys = self._keys_sorted
            d2 = ((self._cell_centres(_decode_unchecked(keys)) - q) ** 2).sum(axis=1)
            return keys[d2 <= r * r]
        axes = [np.arange(lo[a], hi[a] + 1, dtype=np.int64) for a in range(3)]
        cells = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
        d2 = ((self._cell_centres(cells) - q) ** 2).sum(axis=1)
        cand = np.sort(_encode_unchecked(cells[d2 <= r * r]))
        return cand[self._lookup(cand) >= 0]

    def coarse_keys(self, level: int) -> np.ndarray:
        """Keys of the occupied cells ``level`` levels above the leaves (``key >> 3 * level``).

        Args:
            level: Integer in ``[0, depth]``; 0 gives the leaf keys, ``depth`` the root (key 0).

        Returns:
            (M,) uint64 unique parent keys, sorted.

        Raises:
            ValueError: If ``level`` is out of range.
        """
        if not is_int(level) or not 0 <= level <= self.config.depth:
            raise ValueError(f"level must be an integer in [0, {self.config.depth}], got {level!r}")
        self._merge_index()
        parents = self._keys_sorted >> _U64(3 * int(level))  # still sorted: shifting is monotone
        if parents.size == 0:
            return parents
        keep = np.empty(parents.shape[0], dtype=bool)
        keep[0] = True
        np.not_equal(parents[1:], parents[:-1], out=keep[1:])
        return parents[keep]

    # ------------------------------------------------------------------------------------------------
    # export

    def snapshot(self) -> dict[str, np.ndarray]:
        """Compact copy of the leaves for episode files, in ascending key order.

        Returns:
            ``keys`` (L,) uint64, ``centroids`` (L, 3) float32, ``counts`` (L,) int32, ``histograms``
            (L, num_classes) int32, ``token_slots`` (L,) int64, and ``origin`` (3,) float64 (NaN before the
            origin is known) so that keys can be turned back into cell centres.
        """
        self._merge_index()
        rows = self._rows_sorted
        count = self._count[rows]
        with np.errstate(invalid="ignore", divide="ignore"):
            centroids = self._pos_sum[rows] / count[:, None]
        return {
            "keys": self._keys_sorted.copy(),
            "centroids": centroids.astype(np.float32),
            "counts": count.astype(np.int32),
            "histograms": self._hist[rows].astype(np.int32),
            "token_slots": self._token_slot[rows].copy(),
            "origin": np.full(3, np.nan) if self._origin is None else self._origin.copy(),
        }

    def stats(self) -> dict[str, int]:
        """Size counters.

        Returns:
            ``leaves``, ``points_inserted``, ``points_clipped`` (points outside the cube, moved to its boundary
            cells), and ``bytes`` (allocated bytes of the storage and index arrays).
        """
        nbytes = sum(getattr(self, name).nbytes for name in self._columns())
        index = (self._keys_sorted, self._rows_sorted, self._recent_keys, self._recent_rows)
        nbytes += sum(a.nbytes for a in index)
        return {
            "leaves": self._size,
            "points_inserted": self._points_inserted,
            "points_clipped": self._points_clipped,
            "bytes": int(nbytes),
        }
