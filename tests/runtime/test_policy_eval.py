"""Tests for embodia.runtime.policy_eval (windows as in training, closed-loop metrics, mode split) and for
DetourReach's side rule (embodia.envs.detour.modes): the same for paths, chunks and the env."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from embodia.data.episodes import load_episodes
from embodia.data.windows import EpisodeWindows
from embodia.envs.detour.modes import chunk_sides, passing_side
from embodia.policies.factory import make_policy
from embodia.runtime.collect import collect
from embodia.runtime.policy_eval import (
    ObsWindow,
    evaluate_policy,
    mode_split,
    summarise_episodes,
)

ENV_ID = "embodia/DetourReach-v0"
MAX_SPEED, DT, RADIUS = 0.25, 0.1, 0.1  # DetourConfig defaults, 10 Hz control
START, GOAL, CENTRE = np.array([-0.35, 0.0]), np.array([0.35, 0.0]), np.zeros(2)


@pytest.fixture(scope="module")
def episodes(tmp_path_factory):
    """Two expert episodes from one paired start (seeds 0 and 1): one goes left, the other right."""
    out = tmp_path_factory.mktemp("detour")
    collect(ENV_ID, 2, out, seed=0, progress=False)
    eps = load_episodes(out)
    assert sorted(ep.metrics["side"] for ep in eps) == [-1.0, 1.0]
    return eps


@pytest.fixture(scope="module")
def windows(episodes):
    return EpisodeWindows(episodes, n_obs_steps=2, horizon=16, obs_keys=("state",))


def _step_obs(ep, t):
    return {k: v[t] for k, v in ep.observations.items()}


# ------------------------------------------------------------------------------------------------ ObsWindow


@pytest.mark.parametrize("n_obs_steps", [1, 2, 3])
def test_obs_window_matches_episode_windows(episodes, n_obs_steps):
    w = EpisodeWindows(episodes, n_obs_steps=n_obs_steps, horizon=16, obs_keys=("state",))
    window = ObsWindow(n_obs_steps, ("state",), obs_dim=6)
    sample = 0
    for ep in episodes:
        window.reset(_step_obs(ep, 0))
        for t in range(ep.num_steps):
            if t > 0:
                window.push(_step_obs(ep, t))
            got = window.batch()["obs"]
            assert got.shape == (1, n_obs_steps, 6) and got.dtype == np.float32
            np.testing.assert_array_equal(got[0], w.get_batch([sample])["obs"][0])
            sample += 1
    assert sample == len(w)


def test_obs_window_box_observation_and_for_policy():
    window = ObsWindow(2, (), obs_dim=3)
    window.reset(np.array([1.0, 2.0, 3.0]))
    window.push(np.array([4.0, 5.0, 6.0]))
    np.testing.assert_array_equal(window.batch()["obs"], [[[1, 2, 3], [4, 5, 6]]])
    policy = make_policy("mlp", obs_dim=6, action_dim=2, obs_keys=("state",), n_obs_steps=3)
    w = ObsWindow.for_policy(policy)
    assert (w.n_obs_steps, w.obs_keys, w.obs_dim) == (3, ("state",), 6)


def test_obs_window_bad_inputs_name_the_problem():
    window = ObsWindow(2, ("state", "goal"), obs_dim=8)
    with pytest.raises(ValueError, match="'goal'"):
        window.reset({"state": np.zeros(6, np.float32)})
    with pytest.raises(ValueError, match="obs_dim=5"):
        ObsWindow(2, ("state",), obs_dim=5).reset({"state": np.zeros(6, np.float32)})
    with pytest.raises(ValueError, match="Box"):
        ObsWindow(2, ("state",)).reset(np.zeros(6))
    with pytest.raises(RuntimeError, match="before reset"):
        ObsWindow(2, ("state",)).batch()
    ok = ObsWindow(2, ("state",), obs_dim=6)
    ok.reset({"state": np.zeros(6, np.float32)})
    with pytest.raises(ValueError, match="'state'"):
        ok.push({"pose": np.zeros(6, np.float32)})


def test_evaluate_policy_rejects_obs_keys_the_env_lacks():
    policy = make_policy("mlp", obs_dim=6, action_dim=2, obs_keys=("pose",))
    policy.fit_normalizer(np.zeros((2, 6)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="'pose'"):
        evaluate_policy(policy, ENV_ID, [0])


# ------------------------------------------------------------------------------------------------ sides


def _chunk(*segments):
    """One chunk (1, T, 2) from (action, repeats) pairs."""
    return np.concatenate([np.tile(np.asarray(a, float), (n, 1)) for a, n in segments])[None]


def test_chunk_sides_on_hand_made_chunks():
    kw = {"max_speed": MAX_SPEED, "dt": DT, "start_index": 0}
    up_then_right = _chunk(((0, 1), 6), ((1, 0), 14))  # y = 0.15 beside the obstacle: left of the +x axis
    down_then_right = _chunk(((0, -1), 6), ((1, 0), 14))
    head_on = _chunk(((1, 0), 20))  # through the centre
    short = _chunk(((1, 0.2), 3), ((0, 0), 17))  # stops far before the obstacle, 1.5 cm off the axis
    chunks = np.concatenate([up_then_right, down_then_right, head_on, short, 5 * up_then_right])
    np.testing.assert_array_equal(chunk_sides(START, GOAL, CENTRE, RADIUS, chunks, **kw), [1, -1, 0, 0, 1])
    # start_index skips the entries before the current step; an axis pointing to -x flips the sides.
    lead = np.concatenate([_chunk(((0, -1), 8)), up_then_right], axis=1)
    assert chunk_sides(START, GOAL, CENTRE, RADIUS, lead, **{**kw, "start_index": 8}).tolist() == [1.0]
    assert chunk_sides(START, START - (1, 0), CENTRE, RADIUS, torch.as_tensor(up_then_right), **kw).tolist() == [-1.0]
    with pytest.raises(ValueError, match="start and goal"):
        passing_side(np.zeros((3, 2)), START, START, CENTRE, RADIUS)
    with pytest.raises(ValueError, match="start_index"):
        chunk_sides(START, GOAL, CENTRE, RADIUS, head_on, **{**kw, "start_index": 20})


def test_side_rules_agree_with_the_env(episodes, windows):
    for ep in episodes:
        state = ep.observations["state"].astype(np.float64)  # (T+1, 6): agent, goal, obstacle
        start, goal, centre = state[0, :2], state[0, 2:4], state[0, 4:6]
        # the env's rule on the recorded trajectory
        assert passing_side(state[:, :2], start, goal, centre, RADIUS) == ep.metrics["side"]
    # the first training chunk of each episode, integrated from its start, already commits to the env's side
    first = np.concatenate([[0], windows.episode_ends[:-1]])  # sample index of step 0 of each episode
    chunks = windows.get_batch(first)["action"]  # (E, Tp, Da)
    for ep, chunk in zip(episodes, chunks, strict=True):
        state = ep.observations["state"].astype(np.float64)
        sides = chunk_sides(
            state[0, :2], state[0, 2:4], state[0, 4:6], RADIUS, chunk[None], max_speed=MAX_SPEED, dt=DT, start_index=1
        )
        assert sides.tolist() == [ep.metrics["side"]]


def test_the_env_mode_rule_is_the_side_rule_from_the_agent_position():
    import gymnasium as gym

    from embodia.envs.mode_rule import ModeRule

    env = gym.make(ENV_ID)
    env.reset(seed=3)
    detour = env.unwrapped
    assert isinstance(detour, ModeRule) and not isinstance(gym.make("embodia/PushBlock-v0").unwrapped, ModeRule)
    chunks = np.random.default_rng(0).uniform(-1, 1, (64, 16, 2)) + (0.5, 0.0)  # (N, Tp, 2), mostly towards +x
    expected = chunk_sides(detour.agent_position(), detour.goal_position(), CENTRE, RADIUS, chunks,
                           max_speed=MAX_SPEED, dt=DT, start_index=1)  # fmt: skip
    np.testing.assert_array_equal(detour.chunk_modes(chunks, 1), expected)
    assert detour.mode_origin() == {"start": detour.agent_position().tolist(), "goal": detour.goal_position().tolist()}
    env.close()


# ------------------------------------------------------------------------------------------------ closed loop


def _fitted(name, windows, **kw):
    torch.manual_seed(0)
    policy = make_policy(name, obs_dim=6, action_dim=2, obs_keys=("state",), **kw)
    return policy.fit_normalizer(windows.obs, windows.actions)


DIFFUSION = {"d_model": 16, "n_layers": 1, "n_heads": 2, "step_embed_dim": 8, "num_inference_steps": 2}


def test_evaluate_policy_mlp_rows_and_determinism(windows):
    policy = _fitted("mlp", windows, hidden_dims=(32,)).train()
    rows = evaluate_policy(policy, ENV_ID, [0, 1])
    assert policy.training  # mode restored
    assert [r["seed"] for r in rows] == [0, 1]
    for r in rows:
        for key in ("success", "collisions", "side", "steps", "return", "plan_ms_mean", "nfe_mean", "n_plans"):
            assert key in r, key
        assert isinstance(r["steps"], int) and 1 <= r["steps"] <= 100
        assert r["n_plans"] == math.ceil(r["steps"] / policy.config.n_action_steps)
        assert r["nfe_mean"] == 1.0 and r["plan_ms_mean"] > 0
    again = evaluate_policy(policy, ENV_ID, [0, 1], record_latency=False)
    assert "plan_ms_mean" not in again[0]
    assert again == [{k: v for k, v in r.items() if not k.startswith("plan_ms")} for r in rows]

    summary = summarise_episodes(rows)
    assert "seed" not in summary and summary["success"]["n"] == 2
    assert summary["collided"]["mean"] == np.mean([r["collisions"] > 0 for r in rows])
    lo, hi = summary["collided"]["ci95"]
    assert 0.0 <= lo <= hi <= 1.0  # Wilson


def test_evaluate_policy_stochastic_episodes_do_not_depend_on_order(windows):
    policy = _fitted("diffusion", windows, **DIFFUSION)
    both = evaluate_policy(policy, ENV_ID, [2, 3], record_latency=False, env_kwargs={"max_steps": 20})
    alone = evaluate_policy(policy, ENV_ID, [3], record_latency=False, env_kwargs={"max_steps": 20})
    assert alone == both[1:]
    assert both[0]["nfe_mean"] == 2.0 and both[0]["steps"] <= 20


def test_evaluate_policy_rejects_bad_env_kwargs(windows):
    with pytest.raises(ValueError, match="nonsense"):
        evaluate_policy(_fitted("mlp", windows), ENV_ID, [0], env_kwargs={"nonsense": 1})


# ------------------------------------------------------------------------------------------------ mode split


def test_mode_split_diffusion_fractions(windows):
    policy = _fitted("diffusion", windows, **DIFFUSION)
    split = mode_split(policy, ENV_ID, [0, 2], n_chunks=256)
    assert split["n_chunks"] == 256 and split["nfe_mean"] == 2.0
    assert math.isclose(split["left"] + split["right"] + split["undecided"], 1.0)
    assert [p["seed"] for p in split["per_start"]] == [0, 2]
    for p in split["per_start"]:
        assert math.isclose(p["left"] + p["right"] + p["undecided"], 1.0)
        assert all(256 * p[k] == round(256 * p[k]) for k in ("left", "right", "undecided"))
    assert mode_split(policy, ENV_ID, [2], n_chunks=256)["per_start"][0] == split["per_start"][1]  # reseeded


def test_mode_split_deterministic_policy_picks_one_side_per_start(windows):
    split = mode_split(_fitted("mlp", windows), ENV_ID, [0, 1], n_chunks=8)
    for p in split["per_start"]:
        assert sorted((p["left"], p["right"], p["undecided"])) == [0.0, 0.0, 1.0]


def test_mode_split_needs_an_env_with_a_mode_rule(windows):
    policy = make_policy("mlp", obs_dim=10, action_dim=2, obs_keys=("state",))
    policy.fit_normalizer(np.zeros((2, 10)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="embodia/PushBlock-v0 defines no mode rule"):
        mode_split(policy, "embodia/PushBlock-v0", [0])
