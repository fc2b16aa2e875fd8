"""95% confidence intervals for per-episode evaluation summaries.

* Rates (metrics named as rates by the caller, e.g. success; by default any column whose values
  are all 0 or 1) use the Wilson score interval (Wilson, 1927)
  with `z = 1.959964`, which stays inside `[0, 1]` and behaves well for small `n` and for
  rates near 0 or 1.
* Other (continuous) metrics use the Student-t interval `mean ± t_{0.975, n-1} * s / sqrt(n)`
  with `s` the sample standard deviation (`ddof=1`). The t quantile comes from a table of
  exact values for 1..30 degrees of freedom and, above 30, from the Cornish-Fisher expansion
  of the t quantile about the normal quantile (Abramowitz & Stegun 26.7.5, terms to
  `1 / df**4`), whose error there is below `1e-5`.

Outputs hold plain Python floats and ints, so they are JSON-serialisable.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from numbers import Real

import numpy as np

__all__ = ["Z_975", "mean_ci95", "summarise_metrics", "t_quantile_975", "wilson_interval"]

Z_975 = 1.959964
"""Standard-normal 0.975 quantile."""

# Student-t 0.975 quantiles for df = 1..30 (index df - 1).
_T_975 = (
    12.706205,
    4.302653,
    3.182446,
    2.776445,
    2.570582,
    2.446912,
    2.364624,
    2.306004,
    2.262157,
    2.228139,
    2.200985,
    2.178813,
    2.160369,
    2.144787,
    2.131450,
    2.119905,
    2.109816,
    2.100922,
    2.093024,
    2.085963,
    2.079614,
    2.073873,
    2.068658,
    2.063899,
    2.059539,
    2.055529,
    2.051831,
    2.048407,
    2.045230,
    2.042272,
)


def t_quantile_975(df: int) -> float:
    """Student-t 0.975 quantile (two-sided 95%) for `df` degrees of freedom.

    Exact table values for `df <= 30`; the Cornish-Fisher expansion (Abramowitz & Stegun
    26.7.5) for larger `df`, accurate there to better than `1e-5`.

    Args:
        df: Degrees of freedom, an integer >= 1.

    Returns:
        The quantile `t` with `P(T <= t) = 0.975`.

    Raises:
        ValueError: If `df` is not an integer >= 1.
    """
    if isinstance(df, bool) or not isinstance(df, int | np.integer) or df < 1:
        raise ValueError(f"df must be an integer >= 1, got {df!r}")
    df = int(df)
    if df <= len(_T_975):
        return _T_975[df - 1]
    z = Z_975
    g1 = (z**3 + z) / 4.0
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96.0
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384.0
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160.0
    return float(z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4)


def wilson_interval(successes: int, n: int, z: float = Z_975) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    Args:
        successes: Number of successes `k`, `0 <= k <= n`.
        n: Number of trials, >= 1.
        z: Standard-normal quantile (1.959964 for 95%).

    Returns:
        `(lo, hi)` with `0 <= lo <= k / n <= hi <= 1`.

    Raises:
        ValueError: If `n < 1` or `k` is outside `[0, n]`.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n={n}], got {successes}")
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1.0 - p) / n + z2 / (4 * n * n))
    # At k = 0 (k = n) the lower (upper) bound is exactly 0 (1); avoid rounding just inside.
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return lo, hi


def mean_ci95(values: Sequence[float] | np.ndarray, rate: bool | None = None) -> dict:
    """Mean with a 95% confidence interval.

    A rate gets the Wilson score interval, anything else the Student-t interval. A single
    continuous value gives `[mean, mean]`.

    Args:
        values: The samples, shape `(n,)`, `n >= 1`; bools count as 0 / 1.
        rate: Whether the values are a rate (each 0 or 1). None: decide from the data (all 0 or 1).

    Returns:
        `{"mean": float, "ci95": [lo, hi], "n": int}` with plain Python numbers.

    Raises:
        ValueError: If `values` is empty, not 1-D, not numeric, or holds NaN (the message
            says how many) or inf, or if `rate` is True and a value is not 0 or 1.
    """
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"values must be numeric: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {arr.shape}")
    n = int(arr.size)
    if n == 0:
        raise ValueError("values is empty")
    n_nan = int(np.isnan(arr).sum())
    if n_nan:
        raise ValueError(f"values contains {n_nan} NaN of {n}")
    if np.isinf(arr).any():
        raise ValueError(f"values contains {int(np.isinf(arr).sum())} inf of {n}")
    mean = float(arr.mean())
    binary = bool(np.all((arr == 0.0) | (arr == 1.0)))
    if rate and not binary:
        raise ValueError("a rate must hold only 0 and 1 values")
    if binary if rate is None else rate:
        lo, hi = wilson_interval(int(arr.sum()), n)
    elif n == 1:
        lo = hi = mean
    else:
        half = t_quantile_975(n - 1) * float(arr.std(ddof=1)) / math.sqrt(n)
        lo, hi = mean - half, mean + half
    return {"mean": mean, "ci95": [float(lo), float(hi)], "n": n}


def _finite_number(value: object) -> float | None:
    """Return `value` as a float if it is a finite real number (bools as 0 / 1), else None.

    Args:
        value: Any object.

    Returns:
        The float, or None for non-numeric or non-finite values.
    """
    if isinstance(value, bool | np.bool_):
        return float(value)
    if isinstance(value, Real | np.integer | np.floating):
        v = float(value)
        return v if math.isfinite(v) else None
    return None


def summarise_metrics(
    per_episode: Sequence[Mapping[str, float]], rate_keys: Collection[str] | None = None
) -> dict[str, dict]:
    """Summarise per-episode metrics with 95% confidence intervals.

    For each key in the union of the episodes' keys (sorted), `mean_ci95` over the episodes
    whose value for that key is a finite number (bools count as 0 / 1). Non-numeric and
    non-finite values are skipped; a key with no usable value in any episode is left out.

    Args:
        per_episode: One mapping of metric name to value per episode, length `E`.
        rate_keys: Names of the metrics that are rates (Wilson interval); every other metric gets
            a t-interval. None: decide per column from the data.

    Returns:
        `{key: {"mean": float, "ci95": [lo, hi], "n": int}}`, keys sorted; `{}` for no
        episodes.

    Raises:
        ValueError: If an episode is not a mapping.
    """
    columns: dict[str, list[float]] = {}
    for i, episode in enumerate(per_episode):
        if not isinstance(episode, Mapping):
            raise ValueError(f"episode {i} is not a mapping: {type(episode).__name__}")
        for key, value in episode.items():
            column = columns.setdefault(key, [])
            number = _finite_number(value)
            if number is not None:
                column.append(number)

    def is_rate(key: str) -> bool | None:
        return None if rate_keys is None else key in rate_keys

    return {key: mean_ci95(columns[key], is_rate(key)) for key in sorted(columns) if columns[key]}
