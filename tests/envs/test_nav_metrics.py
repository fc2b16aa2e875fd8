"""Tests for embodia.envs.nav.metrics (hand-computed cases plus property tests)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from embodia.envs.nav.metrics import (
    dtw_distance,
    edit_distance,
    ndtw,
    path_length,
    resample_path,
    sed,
    spl,
)


def slow_dtw(query: np.ndarray, reference: np.ndarray) -> float:
    """Textbook O(N*M) DTW with an explicit double loop (reference implementation)."""
    q = np.asarray(query, dtype=float)
    r = np.asarray(reference, dtype=float)
    n, m = len(q), len(r)
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost = float(np.linalg.norm(q[i - 1] - r[j - 1]))
            acc[i, j] = cost + min(acc[i - 1, j], acc[i, j - 1], acc[i - 1, j - 1])
    return float(acc[n, m])


# ---------------------------------------------------------------------------------------------
# path_length


def test_path_length_hand_cases():
    # 3-4-5 triangle leg: (0,0)->(3,4) is 5, then (3,4)->(3,0) is 4: total 9.
    assert path_length(np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 0.0]])) == pytest.approx(9.0)
    # Repeated points add nothing: 1 + 0 + 1 = 2.
    assert path_length(np.array([[0.0], [1.0], [1.0], [2.0]])) == pytest.approx(2.0)


def test_path_length_degenerate():
    assert path_length(np.zeros((1, 2))) == 0.0
    assert path_length(np.zeros((0, 3))) == 0.0


@pytest.mark.parametrize(
    "bad",
    [np.array([1.0, 2.0]), np.zeros((2, 0)), np.array([[0.0, np.nan], [1.0, 1.0]]), [[0.0, np.inf]]],
)
def test_path_length_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        path_length(bad)


# ---------------------------------------------------------------------------------------------
# resample_path


def test_resample_l_shaped_path():
    # L shape: (0,0)->(2,0)->(2,1.5), length 3.5. Spacing 1 gives arc lengths 0, 1, 2, 3 and
    # the end at 3.5: (0,0), (1,0), (2,0) [the corner], (2,1), (2,1.5).
    pts = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 1.5]])
    out = resample_path(pts, 1.0)
    expected = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [2.0, 1.0], [2.0, 1.5]])
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_resample_spacing_not_dividing_corner():
    # Same L, spacing 1.5: arc 0, 1.5, 3.0 (= 1 along the vertical leg), then end at 3.5.
    pts = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 1.5]])
    out = resample_path(pts, 1.5)
    expected = np.array([[0.0, 0.0], [1.5, 0.0], [2.0, 1.0], [2.0, 1.5]])
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_resample_exact_multiple_has_no_duplicate_end():
    # Length exactly 3 with spacing 1: 0, 1, 2, 3 -- the end appears once.
    out = resample_path(np.array([[0.0, 0.0], [3.0, 0.0]]), 1.0)
    np.testing.assert_allclose(out, [[0, 0], [1, 0], [2, 0], [3, 0]], atol=1e-12)
    # Floating-point case: 0.3 / 0.1 is not exactly 3 in binary.
    out = resample_path(np.array([[0.0], [0.3]]), 0.1)
    assert out.shape == (4, 1)
    np.testing.assert_allclose(out[:, 0], [0.0, 0.1, 0.2, 0.3], atol=1e-12)


def test_resample_duplicates_and_degenerate():
    # Repeated vertices are skipped: same as the plain segment (0,0)->(2,0).
    pts = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    np.testing.assert_allclose(resample_path(pts, 0.5), [[0, 0], [0.5, 0], [1, 0], [1.5, 0], [2, 0]])
    assert resample_path(np.array([[1.0, 2.0, 3.0]]), 1.0).shape == (1, 3)
    out = resample_path(np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]), 1.0)
    np.testing.assert_array_equal(out, [[1.0, 2.0]])


def test_resample_spacing_larger_than_path():
    out = resample_path(np.array([[0.0, 0.0], [0.4, 0.3]]), 10.0)
    np.testing.assert_array_equal(out, [[0.0, 0.0], [0.4, 0.3]])


@pytest.mark.parametrize("spacing", [0.0, -1.0, np.nan, np.inf])
def test_resample_rejects_bad_spacing(spacing):
    with pytest.raises(ValueError, match="spacing"):
        resample_path(np.array([[0.0, 0.0], [1.0, 0.0]]), spacing)


def test_resample_rejects_empty():
    with pytest.raises(ValueError, match="empty"):
        resample_path(np.zeros((0, 2)), 1.0)


@settings(max_examples=60, deadline=None)
@given(
    pts=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 8), st.integers(1, 3)),
        elements=st.floats(-10, 10, allow_nan=False, allow_infinity=False),
    ),
    spacing=st.floats(0.05, 5.0),
)
def test_resample_properties(pts, spacing):
    out = resample_path(pts, spacing)
    np.testing.assert_array_equal(out[0], pts[0])
    np.testing.assert_array_equal(out[-1], pts[-1])
    # Resampling only cuts corners, so it never lengthens the path.
    assert path_length(out) <= path_length(pts) + 1e-9
    # All steps but the last are exactly `spacing` of arc, hence at most `spacing` straight-line.
    steps = np.linalg.norm(np.diff(out, axis=0), axis=1)
    assert np.all(steps <= spacing + 1e-9)
    if path_length(pts) > 0:
        expected_m = math.ceil(path_length(pts) / spacing - 1e-9) + 1
        assert abs(out.shape[0] - expected_m) <= 1


# ---------------------------------------------------------------------------------------------
# dtw_distance


def test_dtw_identical_is_zero():
    p = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 1.0]])
    assert dtw_distance(p, p) == 0.0


def test_dtw_shifted_path():
    # Every query point is 1 m above its reference point; the diagonal alignment costs
    # 1 + 1 + 1 = 3 and any other alignment uses an off-diagonal pair costing sqrt(2) > 1.
    ref = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    assert dtw_distance(ref + np.array([0.0, 1.0]), ref) == pytest.approx(3.0)


def test_dtw_warping_absorbs_repeated_point():
    # Query dwells at (1,0): [0, 1, 1, 2] vs reference [0, 1, 2] (1-D).
    # Warping pairs (0,0), (1,1), (2,1), (3,2): cost 0 + 0 + 0 + 0 = 0, while a lock-step
    # (Euclidean) comparison would not even be defined for different lengths.
    q = np.array([[0.0], [1.0], [1.0], [2.0]])
    r = np.array([[0.0], [1.0], [2.0]])
    assert dtw_distance(q, r) == 0.0
    # Move the dwell point to 1.5: the best path pairs (0,0),(1,1),(2,1)|(2,2),(3,2):
    # costs 0 + 0 + 0.5 + 0 = 0.5.
    q2 = np.array([[0.0], [1.0], [1.5], [2.0]])
    assert dtw_distance(q2, r) == pytest.approx(0.5)


def test_dtw_single_points():
    # One query point matched to every reference point: |0-0| + |0-3| + |0-4| = 7 (1-D).
    assert dtw_distance(np.array([[0.0]]), np.array([[0.0], [3.0], [4.0]])) == pytest.approx(7.0)
    assert dtw_distance(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]])) == pytest.approx(5.0)


def test_dtw_rejects_bad_input():
    with pytest.raises(ValueError, match="dimensions"):
        dtw_distance(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="empty"):
        dtw_distance(np.zeros((0, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        dtw_distance(np.array([[np.nan, 0.0]]), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="shape"):
        dtw_distance(np.zeros(3), np.zeros((2, 1)))


_coord = st.floats(-5, 5, allow_nan=False, allow_infinity=False, width=32)


def _paths(dim: int):
    return hnp.arrays(np.float64, st.tuples(st.integers(1, 7), st.just(dim)), elements=_coord)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), dim=st.integers(1, 3))
def test_dtw_matches_slow_reference(data, dim):
    q = data.draw(_paths(dim))
    r = data.draw(_paths(dim))
    assert dtw_distance(q, r) == pytest.approx(slow_dtw(q, r), rel=1e-9, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), dim=st.integers(1, 3))
def test_dtw_symmetric(data, dim):
    q = data.draw(_paths(dim))
    r = data.draw(_paths(dim))
    assert dtw_distance(q, r) == pytest.approx(dtw_distance(r, q), rel=1e-9, abs=1e-9)


# ---------------------------------------------------------------------------------------------
# ndtw


def test_ndtw_identical_is_one():
    p = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]])
    assert ndtw(p, p) == 1.0
    assert ndtw(p, p, spacing=None) == 1.0


def test_ndtw_shifted_path_no_resampling():
    # DTW = 3 (see test_dtw_shifted_path), |R| = 3, threshold 3: exp(-3 / (3 * 3)).
    ref = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    got = ndtw(ref + np.array([0.0, 1.0]), ref, threshold=3.0, spacing=None)
    assert got == pytest.approx(math.exp(-3.0 / 9.0))


def test_ndtw_uses_reference_length():
    # Query is the single point (0,0); reference [0, 1, 2, 3] along x (|R| = 4) with
    # spacing None: DTW = 0 + 1 + 2 + 3 = 6, so nDTW = exp(-6 / (4 * 3)) = exp(-0.5).
    # Swapping the roles normalises by |R| = 1 instead: exp(-6 / 3) = exp(-2).
    q = np.array([[0.0, 0.0]])
    r = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    assert ndtw(q, r, spacing=None) == pytest.approx(math.exp(-0.5))
    assert ndtw(r, q, spacing=None) == pytest.approx(math.exp(-2.0))


def test_ndtw_independent_of_sampling_density():
    # Same geometric path logged sparsely and densely: after 1 m resampling both are
    # [0, 1, 2, 3, 4] along x, so nDTW against the same reference is identical (here 1.0).
    sparse = np.array([[0.0, 0.0], [4.0, 0.0]])
    dense = np.stack([np.linspace(0, 4, 41), np.zeros(41)], axis=1)
    ref = np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0]])
    assert ndtw(sparse, ref) == pytest.approx(1.0)
    assert ndtw(dense, ref) == pytest.approx(1.0)
    # Without resampling the dense log is penalised (its points sit between reference points).
    assert ndtw(dense, ref, spacing=None) < 0.99
    bent = np.array([[0.0, 0.0], [2.0, 1.0], [4.0, 0.0]])
    # The bent path with 99 extra collinear vertices per leg (same geometry, denser log).
    t = np.linspace(0.0, 1.0, 101)[:, None]
    bent_dense = np.concatenate([bent[0] + t * (bent[1] - bent[0]), bent[1] + t[1:] * (bent[2] - bent[1])])
    assert ndtw(bent_dense, ref) == pytest.approx(ndtw(bent, ref), abs=1e-9)


def test_ndtw_with_resampling_hand_case():
    # Reference (0,0)->(2,0) resampled at 1 m: [(0,0), (1,0), (2,0)], |R| = 3. Query is the
    # same line shifted 1 m in y, resampled to [(0,1), (1,1), (2,1)]: DTW = 3.
    # nDTW = exp(-3 / (3 * 2)) with threshold 2.
    ref = np.array([[0.0, 0.0], [2.0, 0.0]])
    q = np.array([[0.0, 1.0], [2.0, 1.0]])
    assert ndtw(q, ref, threshold=2.0) == pytest.approx(math.exp(-0.5))


@pytest.mark.parametrize("threshold", [0.0, -3.0, np.nan, np.inf])
def test_ndtw_rejects_bad_threshold(threshold):
    p = np.zeros((2, 2))
    with pytest.raises(ValueError, match="threshold"):
        ndtw(p, p, threshold=threshold)


def test_ndtw_rejects_bad_spacing():
    p = np.zeros((2, 2))
    with pytest.raises(ValueError, match="spacing"):
        ndtw(p, p, spacing=-1.0)


@settings(max_examples=80, deadline=None)
@given(
    data=st.data(),
    threshold=st.floats(0.1, 10.0),
    spacing=st.one_of(st.none(), st.floats(0.2, 3.0)),
)
def test_ndtw_in_unit_interval(data, threshold, spacing):
    q = data.draw(_paths(2))
    r = data.draw(_paths(2))
    score = ndtw(q, r, threshold=threshold, spacing=spacing)
    # exp(-DTW / (|R| d_th)) is positive in exact arithmetic but underflows to 0.0 for paths kilometres apart.
    assert 0.0 <= score <= 1.0
    if spacing is None and dtw_distance(q, r) / (len(r) * threshold) < 700:
        assert score > 0.0
    assert ndtw(r, r, threshold=threshold, spacing=spacing) == 1.0


# ---------------------------------------------------------------------------------------------
# edit_distance, sed, spl


def test_edit_distance_hand_cases():
    # kitten -> sitten (sub k/s) -> sittin (sub e/i) -> sitting (insert g): 3.
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert edit_distance("abc", "") == 3
    assert edit_distance([], []) == 0
    assert edit_distance("flaw", "lawn") == 2  # delete f, insert n
    assert edit_distance([1, 2, 3], (1, 2, 3)) == 0


_words = st.text(alphabet="abc", max_size=6)


@settings(max_examples=150, deadline=None)
@given(a=_words, b=_words, c=_words)
def test_edit_distance_is_a_metric(a, b, c):
    dab = edit_distance(a, b)
    assert dab == edit_distance(b, a)
    assert (dab == 0) == (a == b)
    assert dab <= edit_distance(a, c) + edit_distance(c, b)
    assert abs(len(a) - len(b)) <= dab <= max(len(a), len(b))


def test_sed_hand_cases():
    # One substitution (3 -> 9) in a 4-node path: 1 - 1/4 = 0.75.
    assert sed(True, [1, 2, 9, 4], [1, 2, 3, 4]) == pytest.approx(0.75)
    assert sed(False, [1, 2, 9, 4], [1, 2, 3, 4]) == 0.0
    # Path revisits a node: [a, b, a, b, c] vs [a, b, c]: 2 deletions over max length 5: 0.6.
    assert sed(True, list("ababc"), list("abc")) == pytest.approx(0.6)
    assert sed(True, [7, 8], [7, 8]) == 1.0
    assert sed(True, [], []) == 1.0


def test_sed_rejects_bad_success():
    with pytest.raises(ValueError, match="success"):
        sed(0.5, [1], [1])


def test_spl_hand_cases():
    assert spl(True, 10.0, 20.0) == pytest.approx(0.5)  # path twice as long as shortest
    assert spl(False, 10.0, 10.0) == 0.0
    assert spl(True, 10.0, 10.0) == 1.0
    # Agent shorter than the "shortest" path (e.g. geodesic vs. grid): capped at 1.
    assert spl(True, 10.0, 8.0) == 1.0
    assert spl(True, 0.0, 0.0) == 1.0
    assert spl(False, 0.0, 0.0) == 0.0
    assert spl(True, 0.0, 2.0) == 0.0


@pytest.mark.parametrize(("shortest", "taken"), [(-1.0, 2.0), (1.0, -2.0), (np.nan, 1.0), (1.0, np.inf)])
def test_spl_rejects_bad_lengths(shortest, taken):
    with pytest.raises(ValueError, match="length"):
        spl(True, shortest, taken)
