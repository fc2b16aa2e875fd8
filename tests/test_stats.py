"""Tests for embodia.stats (confidence intervals for evaluation summaries)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embodia.stats import Z_975, mean_ci95, summarise_metrics, t_quantile_975, wilson_interval


def t_cdf(t: float, df: int, n_grid: int = 20001) -> float:
    """Student-t CDF by Simpson integration of the density on [0, t] (independent check)."""
    x = np.linspace(0.0, t, n_grid)
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    pdf = np.exp(log_c - (df + 1) / 2 * np.log1p(x * x / df))
    h = x[1] - x[0]
    simpson = h / 3 * (pdf[0] + pdf[-1] + 4 * pdf[1:-1:2].sum() + 2 * pdf[2:-1:2].sum())
    return 0.5 + float(simpson)


# ---------------------------------------------------------------------------------------------
# t quantile


@pytest.mark.parametrize("df", [*range(1, 36), 40, 50, 60, 100, 200, 1000])
def test_t_quantile_matches_integrated_cdf(df):
    # P(T <= t) must be 0.975; table values are exact to 6 decimals, Cornish-Fisher above 30.
    assert t_cdf(t_quantile_975(df), df) == pytest.approx(0.975, abs=1e-6)


def test_t_quantile_known_values():
    assert t_quantile_975(1) == pytest.approx(12.706, abs=1e-3)
    assert t_quantile_975(3) == pytest.approx(3.182, abs=1e-3)
    assert t_quantile_975(30) == pytest.approx(2.042, abs=1e-3)
    assert t_quantile_975(120) == pytest.approx(1.980, abs=1e-3)
    assert t_quantile_975(10**9) == pytest.approx(Z_975, abs=1e-6)


def test_t_quantile_monotone_across_table_boundary():
    values = [t_quantile_975(df) for df in range(1, 200)]
    assert all(a > b for a, b in itertools.pairwise(values))
    assert values[-1] > Z_975


@pytest.mark.parametrize("df", [0, -1, 2.5, True, "3"])
def test_t_quantile_rejects_bad_df(df):
    with pytest.raises(ValueError, match="df"):
        t_quantile_975(df)


# ---------------------------------------------------------------------------------------------
# Wilson interval


def test_wilson_8_of_10():
    # p = 0.8, z^2 = 3.8415, z^2/n = 0.38415:
    # centre = (0.8 + 0.19207) / 1.38415 = 0.71674
    # half   = (1.959964 / 1.38415) * sqrt(0.8*0.2/10 + 3.8415/400) = 1.41600 * 0.16001 = 0.22658
    # -> [0.4902, 0.9433]
    out = mean_ci95([1] * 8 + [0] * 2)
    assert out["mean"] == pytest.approx(0.8)
    assert out["n"] == 10
    lo, hi = out["ci95"]
    assert lo == pytest.approx(0.4902, abs=1e-4)
    assert hi == pytest.approx(0.9433, abs=1e-4)


def test_wilson_extremes():
    # k = 0: lo = 0, hi = z^2 / (n + z^2) = 3.84146 / 13.84146 = 0.27753 for n = 10.
    z2 = Z_975**2
    assert mean_ci95([0] * 10)["ci95"] == pytest.approx([0.0, z2 / (10 + z2)])
    assert mean_ci95([1] * 10)["ci95"] == pytest.approx([10 / (10 + z2), 1.0])
    # A single success, n = 1: lo = 1 / (1 + z^2) = 0.20655, hi = 1.
    assert mean_ci95([True])["ci95"] == pytest.approx([1 / (1 + z2), 1.0])


def test_bools_are_a_rate():
    out = mean_ci95([True, True, False, True])
    assert out["mean"] == 0.75
    assert out["ci95"] == pytest.approx(list(wilson_interval(3, 4)))


def test_wilson_rejects_bad_counts():
    with pytest.raises(ValueError, match="n must"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(5, 4)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 500), data=st.data())
def test_wilson_contains_estimate_within_unit_interval(n, data):
    k = data.draw(st.integers(0, n))
    lo, hi = wilson_interval(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0
    assert hi - lo > 0.0


# ---------------------------------------------------------------------------------------------
# t interval


def test_t_interval_1_to_4():
    # mean = 2.5; s^2 = (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3, s = 1.29099;
    # se = s / 2 = 0.645497; half = t_{0.975,3} * se = 3.182446 * 0.645497 = 2.054268
    # -> [0.445732, 4.554268]
    out = mean_ci95([1.0, 2.0, 3.0, 4.0])
    assert out["mean"] == 2.5
    assert out["n"] == 4
    assert out["ci95"] == pytest.approx([0.445732, 4.554268], abs=1e-5)


def test_single_continuous_value_and_constant_values():
    assert mean_ci95([0.5]) == {"mean": 0.5, "ci95": [0.5, 0.5], "n": 1}
    assert mean_ci95(np.array([2.0, 2.0, 2.0])) == {"mean": 2.0, "ci95": [2.0, 2.0], "n": 3}


def test_t_interval_coverage_monte_carlo():
    # With n = 5 normal samples the t interval covers the true mean 95% of the time; 4000
    # trials give a standard error of 0.0034, so [0.935, 0.965] fails only if the quantile is
    # wrong (the normal value 1.96 instead of t_{0.975,4} = 2.776 would cover only ~88%).
    rng = np.random.default_rng(0)
    hits = 0
    for sample in rng.normal(3.0, 2.0, size=(4000, 5)):
        lo, hi = mean_ci95(sample)["ci95"]
        hits += lo <= 3.0 <= hi
    assert 0.935 <= hits / 4000 <= 0.965


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=30))
def test_t_interval_symmetric_and_contains_mean(values):
    out = mean_ci95(values)
    lo, hi = out["ci95"]
    assert lo <= out["mean"] <= hi
    if not all(v in (0.0, 1.0) for v in values):
        assert out["mean"] - lo == pytest.approx(hi - out["mean"], rel=1e-9, abs=1e-6)


def test_output_is_plain_json():
    for values in ([1, 0, 1], np.array([0.2, 0.4, 0.9], dtype=np.float32), [np.float64(3.0)]):
        out = mean_ci95(values)
        assert type(out["mean"]) is float
        assert type(out["n"]) is int
        assert all(type(v) is float for v in out["ci95"])
        assert json.loads(json.dumps(out)) == out


# ---------------------------------------------------------------------------------------------
# errors


def test_rejects_empty():
    with pytest.raises(ValueError, match="empty"):
        mean_ci95([])


def test_nan_message_counts_nans():
    with pytest.raises(ValueError, match="2 NaN"):
        mean_ci95([1.0, float("nan"), 2.0, float("nan")])


@pytest.mark.parametrize("bad", [[1.0, math.inf], [[1.0, 2.0]], 3.0, ["a", "b"]])
def test_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        mean_ci95(bad)


# ---------------------------------------------------------------------------------------------
# summarise_metrics


def test_summarise_metrics():
    episodes = [
        {"success": True, "spl": 0.5, "ndtw": 0.9, "scene": "a"},
        {"success": False, "spl": 0.0, "ndtw": float("nan"), "scene": "b"},
        {"success": True, "spl": 1.0, "extra": None},
        {"success": np.bool_(True), "spl": np.float32(0.25), "ndtw": 0.7},
    ]
    out = summarise_metrics(episodes)
    # "scene" (strings) and "extra" (None) have no numeric values and are left out.
    assert list(out) == ["ndtw", "spl", "success"]
    # success: 3 of 4 -> Wilson interval.
    assert out["success"] == {"mean": 0.75, "ci95": list(wilson_interval(3, 4)), "n": 4}
    # spl: [0.5, 0.0, 1.0, 0.25] -> mean 0.4375 (t interval, df = 3).
    assert out["spl"]["n"] == 4
    assert out["spl"]["mean"] == pytest.approx(0.4375)
    assert out["spl"]["ci95"] == pytest.approx(mean_ci95([0.5, 0.0, 1.0, 0.25])["ci95"])
    # ndtw: the NaN episode and the episode without the key are skipped -> [0.9, 0.7].
    assert out["ndtw"]["n"] == 2
    assert out["ndtw"]["mean"] == pytest.approx(0.8)
    json.dumps(out)


def test_summarise_metrics_edge_cases():
    assert summarise_metrics([]) == {}
    assert summarise_metrics([{"x": "text"}]) == {}
    with pytest.raises(ValueError, match="episode 1"):
        summarise_metrics([{"x": 1.0}, [("x", 1.0)]])
