"""The contract every registered embodia environment keeps (Gymnasium's registry-wide suite, for our ids)."""

import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import embodia  # noqa: F401

ENV_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("embodia/"))


def _no_stop_actions(env: gym.Env, n: int, seed: int) -> list[np.ndarray]:
    """Seeded random actions; a 'stop' component (UrbanNav) is kept negative so episodes run on."""
    env.action_space.seed(seed)
    actions = []
    for _ in range(n):
        a = env.action_space.sample()
        if a.shape == (3,) and "UrbanNav" in env.spec.id:
            a[2] = -1.0
        actions.append(a)
    return actions


def _assert_obs_equal(a, b) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_obs_equal(a[key], b[key])
    elif isinstance(a, str):
        assert a == b
    else:
        np.testing.assert_array_equal(a, b)


def test_registry_lists_the_envs():
    assert "embodia/UrbanNav-v0" in ENV_IDS
    assert "embodia/UrbanNav-Return-v0" in ENV_IDS


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env(env_id):
    env = gym.make(env_id, render_mode="rgb_array", width=96, height=64)
    check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_deterministic_for_a_seed(env_id, make_env):
    env_a, env_b = make_env(env_id), make_env(env_id)
    obs_a, _ = env_a.reset(seed=123)
    obs_b, _ = env_b.reset(seed=123)
    _assert_obs_equal(obs_a, obs_b)
    for action in _no_stop_actions(env_a, 50, seed=7):
        step_a = env_a.step(action)
        step_b = env_b.step(action)
        _assert_obs_equal(step_a[0], step_b[0])
        assert step_a[1:4] == step_b[1:4]
        if step_a[2] or step_a[3]:
            env_a.reset(seed=5)
            env_b.reset(seed=5)
    np.testing.assert_array_equal(env_a.unwrapped.get_mj_state(), env_b.unwrapped.get_mj_state())


def _obs_differ(a, b) -> bool:
    try:
        _assert_obs_equal(a, b)
    except AssertionError:
        return True
    return False


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_different_seeds_give_different_episodes(env_id, make_env):
    env = make_env(env_id)
    obs_a, _ = env.reset(seed=1)
    obs_b, _ = env.reset(seed=2)
    assert _obs_differ(obs_a, obs_b)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_step_after_the_end_is_refused(env_id, make_env):
    env = make_env(env_id, max_steps=2)
    env.reset(seed=0)
    for action in _no_stop_actions(env, 2, seed=0):
        *_, truncated, _ = env.unwrapped.step(action)
    assert truncated
    with pytest.raises(RuntimeError, match="reset"):
        env.unwrapped.step(action)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_pickles(env_id, make_env):
    env = make_env(env_id)
    env.reset(seed=3)
    clone = pickle.loads(pickle.dumps(env))
    try:
        _assert_obs_equal(env.reset(seed=11)[0], clone.reset(seed=11)[0])
        for action in _no_stop_actions(env, 10, seed=2):
            a, b = env.step(action), clone.step(action)
            _assert_obs_equal(a[0], b[0])
            assert a[1] == b[1]
    finally:
        clone.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reward_terms_sum_to_the_reward(env_id, make_env):
    env = make_env(env_id)
    terms = env.unwrapped.REWARD_TERMS
    assert terms, "every embodia env names its reward terms"
    env.reset(seed=0)
    for action in _no_stop_actions(env, 60, seed=0):
        _, reward, terminated, truncated, info = env.step(action)
        assert sum(info[k] for k in terms) == reward
        if terminated or truncated:
            env.reset()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_metrics_at_episode_end(env_id, make_env):
    env = make_env(env_id, max_steps=20)
    env.reset(seed=0)
    for action in _no_stop_actions(env, 20, seed=0):
        _, _, terminated, truncated, info = env.step(action)
    assert truncated and not terminated
    assert "success" in info["metrics"] and info["metrics"]["success"] == 0.0
    assert all(isinstance(v, float) for v in info["metrics"].values())


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_headline_metrics_are_metrics_the_env_reports(env_id, make_env):
    """A report asks the env which metrics lead (envs.views.headline_metrics); every one is in its episode metrics."""
    from embodia.envs.views import headline_metrics

    env = make_env(env_id, max_steps=5)
    env.reset(seed=0)
    for action in _no_stop_actions(env, 5, seed=0):
        *_, info = env.step(action)
    keys = [key for key, _ in headline_metrics(env_id)]
    assert keys and all(key in info["metrics"] for key in keys)
    assert ("tc" in keys) == ("UrbanNav" in env_id)
    assert headline_metrics("no-such-env-v0") == (("success", "success"),)
