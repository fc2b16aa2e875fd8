"""Navigation metrics for instruction following and goal reaching.

Standard definitions from the vision-and-language navigation (VLN) literature:

* **Path length** – the sum of Euclidean segment lengths of a polyline.
* **DTW** – classic dynamic time warping (Berndt & Clifford, 1994) between two point
  sequences with Euclidean point cost: the sum of point costs along the cheapest monotone
  warping path that aligns both starts and both ends, using steps ``(1, 0)``, ``(0, 1)`` and
  ``(1, 1)``.
* **nDTW** – normalised dynamic time warping (Ilharco et al., 2019, "General Evaluation for
  Instruction Conditioned Navigation using Dynamic Time Warping"):
  ``nDTW(R, Q) = exp(-DTW(R, Q) / (|R| * d_th))`` where ``R`` is the reference path, ``Q`` the
  query (agent) path, ``|R|`` the number of reference points and ``d_th`` the success threshold
  distance (3 m in the paper). Here both paths are first resampled at equal arc-length spacing
  (1 m by default) so that the score does not depend on how densely positions were logged;
  ``|R|`` counts the reference points after resampling.
* **Edit distance** – Levenshtein distance (unit cost insert / delete / substitute).
* **SED** – success weighted by edit distance (Chen et al., 2019, Touchdown; also used in
  Map2Seq, Schumann & Riezler, 2021): ``SED = S * (1 - lev(P, R) / max(|P|, |R|))`` over the
  sequences of graph nodes of the agent path ``P`` and the reference ``R``.
* **SPL** – success weighted by (normalised inverse) path length (Anderson et al., 2018, "On
  Evaluation of Embodied Navigation Agents"): ``SPL = S * l / max(p, l)`` with ``l`` the
  shortest-path length from start to goal and ``p`` the length of the path the agent took.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

__all__ = [
    "dtw_distance",
    "edit_distance",
    "ndtw",
    "path_length",
    "resample_path",
    "sed",
    "spl",
]


def _as_points(points: np.ndarray, name: str = "points", allow_empty: bool = False) -> np.ndarray:
    """Validate a polyline and return it as a float64 array.

    Args:
        points: Array-like of shape `(N, D)`.
        name: Name used in error messages.
        allow_empty: Whether `N == 0` is acceptable.

    Returns:
        Float64 array of shape `(N, D)`.

    Raises:
        ValueError: If the array is not 2-D with `D >= 1`, is empty (unless allowed), is not
            numeric, or holds NaN / inf.
    """
    try:
        arr = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array of shape (N, D): {exc}") from None
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ValueError(f"{name} must have shape (N, D) with D >= 1, got {arr.shape}")
    if arr.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} is empty; need at least one point")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _check_number(value: float, name: str, *, allow_zero: bool) -> float:
    """Return `value` as a float, raising if it is not finite and > 0 (or >= 0 with `allow_zero`).

    Args:
        value: The number to check.
        name: Name used in error messages.
        allow_zero: Accept 0.

    Returns:
        `value` as a Python float.

    Raises:
        ValueError: If `value` is not a finite number in the allowed range.
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v < 0.0 or (v == 0.0 and not allow_zero):
        raise ValueError(f"{name} must be finite and {'>=' if allow_zero else '>'} 0, got {value!r}")
    return v


def _as_success(success: bool) -> bool:
    """Validate a success flag.

    Args:
        success: A bool (Python or numpy) or the integer 0 or 1.

    Returns:
        The flag as a Python bool.

    Raises:
        ValueError: If `success` is not a bool or 0 / 1.
    """
    if isinstance(success, bool | np.bool_):
        return bool(success)
    if isinstance(success, int | np.integer) and success in (0, 1):
        return bool(success)
    raise ValueError(f"success must be a bool (or 0/1), got {success!r}")


def _segment_lengths(points: np.ndarray) -> np.ndarray:
    """Euclidean lengths of the segments of a validated polyline, robust to underflow.

    Each difference vector is scaled by its largest absolute component before taking the
    norm, so a segment between distinct points never gets length 0.

    Args:
        points: Vertices, shape `(N, D)`, `N >= 1`, finite.

    Returns:
        Segment lengths, shape `(N - 1,)`.
    """
    diff = np.diff(points, axis=0)
    scale = np.max(np.abs(diff), axis=1, initial=0.0)
    safe = np.where(scale > 0.0, scale, 1.0)
    return scale * np.linalg.norm(diff / safe[:, None], axis=1)


def path_length(points: np.ndarray) -> float:
    """Length of a polyline.

    Args:
        points: Vertices of the polyline, shape `(N, D)`.

    Returns:
        The sum of the Euclidean lengths of the `N - 1` segments; 0.0 when `N <= 1`.

    Raises:
        ValueError: If `points` is not `(N, D)` or holds NaN / inf.
    """
    pts = _as_points(points, allow_empty=True)
    if pts.shape[0] <= 1:
        return 0.0
    return float(_segment_lengths(pts).sum())


def resample_path(points: np.ndarray, spacing: float) -> np.ndarray:
    """Resample a polyline at equal arc-length spacing.

    Samples lie on the polyline at arc lengths `0, spacing, 2 * spacing, ...` and the last
    vertex is always appended, so the final interval may be shorter than `spacing` (a sample
    closer than `1e-9 * spacing` to the end is dropped in favour of the exact end point).
    Repeated consecutive vertices (zero-length segments) are ignored.

    Args:
        points: Vertices of the polyline, shape `(N, D)`, `N >= 1`.
        spacing: Arc-length distance between consecutive samples, > 0.

    Returns:
        Resampled points, shape `(M, D)`, starting exactly at `points[0]` and ending exactly at
        `points[-1]`; `(1, D)` for a single point or a zero-length path.

    Raises:
        ValueError: If `points` is empty, not `(N, D)`, or holds NaN / inf, or if `spacing` is
            not finite and positive.
    """
    pts = _as_points(points)
    step = _check_number(spacing, "spacing", allow_zero=False)
    arc = np.concatenate(([0.0], np.cumsum(_segment_lengths(pts))))
    total = arc[-1]
    if total == 0.0:
        return pts[:1].copy()
    # Drop vertices that add no arc length so that `arc` is strictly increasing for np.interp.
    keep = np.concatenate(([True], np.diff(arc) > 0.0))
    first, last = pts[0], pts[-1]
    pts, arc = pts[keep], arc[keep]
    inner = step * np.arange(1, int(np.ceil(total / step)) + 1, dtype=np.float64)
    targets = np.concatenate(([0.0], inner[inner < total - 1e-9 * step], [total]))
    out = np.stack([np.interp(targets, arc, pts[:, d]) for d in range(pts.shape[1])], axis=1)
    out[0], out[-1] = first, last
    return out


def dtw_distance(query: np.ndarray, reference: np.ndarray) -> float:
    """Dynamic time warping distance between two point sequences.

    Classic DTW with Euclidean point cost: the minimum, over monotone warping paths from
    `(0, 0)` to `(N - 1, M - 1)` with steps `(1, 0)`, `(0, 1)`, `(1, 1)`, of the summed point
    costs along the path. Each row of the accumulated-cost matrix is computed in vectorised
    form via `D[i, j] = C[j] + min_{k <= j}(a[k] - C[k - 1])`, where `C` is the cumulative sum
    of row `i`'s costs (`C[-1] = 0`) and `a[k] = min(D[i - 1, k], D[i - 1, k - 1])`.

    Args:
        query: First sequence, shape `(N, D)`, `N >= 1`.
        reference: Second sequence, shape `(M, D)`, `M >= 1`.

    Returns:
        The DTW distance (>= 0). It is symmetric in its arguments.

    Raises:
        ValueError: If either input is empty, not 2-D, holds NaN / inf, or the point
            dimensions `D` differ.
    """
    q = _as_points(query, "query")
    r = _as_points(reference, "reference")
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"query and reference dimensions differ: {q.shape[1]} vs {r.shape[1]}")
    prev = np.cumsum(np.linalg.norm(r - q[0], axis=1))
    shifted = np.empty_like(prev)
    for i in range(1, q.shape[0]):
        cost = np.linalg.norm(r - q[i], axis=1)
        csum = np.cumsum(cost)
        shifted[0] = np.inf
        shifted[1:] = prev[:-1]
        a = np.minimum(prev, shifted)
        c_before = np.concatenate(([0.0], csum[:-1]))
        prev = csum + np.minimum.accumulate(a - c_before)
    return float(prev[-1])


def ndtw(
    query: np.ndarray,
    reference: np.ndarray,
    threshold: float = 3.0,
    spacing: float | None = 1.0,
) -> float:
    """Normalised dynamic time warping (Ilharco et al., 2019).

    `nDTW = exp(-DTW(R, Q) / (|R| * threshold))`, with `|R|` the number of reference points
    after optional resampling.

    Args:
        query: Agent path, shape `(N, D)`, `N >= 1`.
        reference: Reference path, shape `(M, D)`, `M >= 1`.
        threshold: Success distance `d_th` (same units as the points), > 0.
        spacing: If not None, both paths are first resampled with `resample_path` at this
            arc-length spacing; if None the points are used as given.

    Returns:
        The score in `(0, 1]`; 1.0 iff the (resampled) paths coincide point for point up to
        warping.

    Raises:
        ValueError: On invalid paths (see `dtw_distance`), a non-positive or non-finite
            `threshold`, or a non-positive or non-finite `spacing`.
    """
    d_th = _check_number(threshold, "threshold", allow_zero=False)
    q = _as_points(query, "query")
    r = _as_points(reference, "reference")
    if spacing is not None:
        q = resample_path(q, spacing)
        r = resample_path(r, spacing)
    dist = dtw_distance(q, r)
    return float(np.exp(-dist / (r.shape[0] * d_th)))


def edit_distance(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Levenshtein distance between two sequences.

    Args:
        a: First sequence, length `N` (e.g. a list of graph node ids, or a string).
        b: Second sequence, length `M`.

    Returns:
        The minimum number of unit-cost insertions, deletions and substitutions turning `a`
        into `b`.
    """
    a, b = list(a), list(b)
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        cur = [i]
        for j, y in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def sed(success: bool, path_nodes: Sequence[Hashable], reference_nodes: Sequence[Hashable]) -> float:
    """Success weighted by edit distance (Touchdown / Map2Seq).

    `SED = success * (1 - lev(P, R) / max(|P|, |R|, 1))`.

    Args:
        success: Whether the episode succeeded (bool, or 0 / 1).
        path_nodes: Graph nodes visited by the agent, length `N`.
        reference_nodes: Graph nodes of the reference path, length `M`.

    Returns:
        The score in `[0, 1]`; 0.0 when not successful.

    Raises:
        ValueError: If `success` is not a bool (or 0 / 1).
    """
    ok = _as_success(success)
    if not ok:
        return 0.0
    denom = max(len(path_nodes), len(reference_nodes), 1)
    return float(1.0 - edit_distance(path_nodes, reference_nodes) / denom)


def spl(success: bool, shortest_length: float, path_length: float) -> float:
    """Success weighted by path length (Anderson et al., 2018).

    `SPL = success * l / max(p, l)`; when both `l` and `p` are 0 it is `float(success)`.

    Args:
        success: Whether the episode succeeded (bool, or 0 / 1).
        shortest_length: Shortest-path length `l` from start to goal, >= 0.
        path_length: Length `p` of the path the agent took, >= 0.

    Returns:
        The score in `[0, 1]`.

    Raises:
        ValueError: If `success` is not a bool (or 0 / 1) or either length is negative, NaN
            or inf.
    """
    ok = _as_success(success)
    shortest = _check_number(shortest_length, "shortest_length", allow_zero=True)
    taken = _check_number(path_length, "path_length", allow_zero=True)
    if not ok:
        return 0.0
    longest = max(taken, shortest)
    if longest == 0.0:
        return 1.0
    return float(shortest / longest)
