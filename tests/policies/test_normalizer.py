"""Tests for embodia.policies.normalizer.MinMaxNormalizer: range, exact inverse, constants, state_dict."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from embodia.policies.normalizer import MinMaxNormalizer

torch.set_num_threads(1)

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=32)


@st.composite
def data_2d(draw) -> np.ndarray:
    n = draw(st.integers(1, 20))
    d = draw(st.integers(1, 5))
    return draw(arrays(np.float32, (n, d), elements=finite))


@settings(max_examples=60, deadline=None)
@given(data_2d())
def test_range_and_round_trip(x: np.ndarray):
    norm = MinMaxNormalizer({"obs": x.shape[1]}).fit({"obs": x})
    y = norm.normalize("obs", x)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.all(y >= -1 - 1e-5) and np.all(y <= 1 + 1e-5)
    scale = np.abs(x).max() + 1.0
    np.testing.assert_allclose(norm.unnormalize("obs", y), x, rtol=0, atol=1e-5 * scale)
    # Torch gives the same numbers as numpy, and round-trips too.
    yt = norm.normalize("obs", torch.from_numpy(x))
    np.testing.assert_allclose(yt.numpy(), y, rtol=0, atol=1e-6)
    np.testing.assert_allclose(norm.unnormalize("obs", yt).numpy(), x, rtol=0, atol=1e-5 * scale)
    # The extremes of every non-constant feature hit -1 and 1.
    x64 = x.astype(np.float64)
    varying = (x64.max(0) - x64.min(0)) >= norm.range_eps  # the fit computes ranges in float64
    np.testing.assert_allclose(y.min(0)[varying], -1, atol=1e-5)
    np.testing.assert_allclose(y.max(0)[varying], 1, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(data_2d(), st.floats(-2, 2))
def test_inverse_of_normalised_values(x: np.ndarray, y0: float):
    norm = MinMaxNormalizer({"a": x.shape[1]}).fit({"a": x})
    y = np.full((3, x.shape[1]), y0, np.float64)
    np.testing.assert_allclose(norm.normalize("a", norm.unnormalize("a", y)), y, rtol=0, atol=1e-9)


def test_constant_feature_maps_to_zero_with_unit_scale():
    x = np.array([[5.0, 0.0], [5.0, 2.0], [5.0, 4.0]])
    norm = MinMaxNormalizer({"obs": 2}).fit({"obs": x})
    np.testing.assert_allclose(norm.normalize("obs", x), [[0, -1], [0, 0], [0, 1]])
    np.testing.assert_allclose(norm.normalize("obs", np.array([[5.5, 2.0]])), [[0.5, 0]])
    lo, hi = norm.bounds("obs")
    np.testing.assert_allclose(lo.numpy(), [4, 0]) and np.testing.assert_allclose(hi.numpy(), [6, 4])


def test_multi_dim_features_and_several_keys():
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(10, 3, 4)) * [1, 10, 100, 1000]
    act = rng.uniform(-7, 3, size=(50, 2))
    norm = MinMaxNormalizer({"obs": (3, 4), "action": (2,)}).fit({"obs": obs, "action": act})
    y = norm.normalize("obs", obs[None])  # extra leading axis is fine
    assert y.shape == (1, 10, 3, 4) and y.min() >= -1 - 1e-6 and y.max() <= 1 + 1e-6
    assert y.dtype == np.float64  # float64 in, float64 out
    np.testing.assert_allclose(norm.unnormalize("action", norm.normalize("action", act)), act, atol=1e-5)


def test_torch_keeps_graph_dtype_and_device():
    norm = MinMaxNormalizer({"action": 2}).fit({"action": np.array([[0.0, -4.0], [2.0, 4.0]])})
    x = torch.tensor([[1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    y = norm.normalize("action", x)
    assert y.dtype == torch.float64
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[1.0, 0.25]])


def test_state_dict_round_trip_and_buffers():
    x = np.random.default_rng(1).normal(size=(20, 3))
    norm = MinMaxNormalizer({"obs": 3}).fit({"obs": x})
    state = norm.state_dict()
    assert set(state) == {"obs_lo", "obs_hi", "fitted"} and all(isinstance(v, torch.Tensor) for v in state.values())
    fresh = MinMaxNormalizer({"obs": 3})
    assert not fresh.is_fitted
    fresh.load_state_dict(state)
    assert fresh.is_fitted
    np.testing.assert_array_equal(fresh.normalize("obs", x), norm.normalize("obs", x))


def test_errors():
    norm = MinMaxNormalizer({"obs": 2})
    with pytest.raises(RuntimeError, match="before fit"):
        norm.normalize("obs", np.zeros((1, 2)))
    with pytest.raises(ValueError, match="exactly the keys"):
        norm.fit({"action": np.zeros((1, 2))})
    with pytest.raises(ValueError, match="NaN or inf"):
        norm.fit({"obs": np.array([[0.0, np.nan]])})
    with pytest.raises(ValueError, match="shape"):
        norm.fit({"obs": np.zeros((4, 3))})
    with pytest.raises(ValueError, match="no rows"):
        norm.fit({"obs": np.zeros((0, 2))})
    norm.fit({"obs": np.zeros((4, 2))})
    with pytest.raises(ValueError, match=r"end in shape \(2,\)"):
        norm.normalize("obs", np.zeros((4, 3)))
    with pytest.raises(KeyError, match="no key 'act'"):
        norm.normalize("act", np.zeros((4, 2)))
    with pytest.raises(ValueError, match="alphanumeric"):
        MinMaxNormalizer({"obs.x": 2})
