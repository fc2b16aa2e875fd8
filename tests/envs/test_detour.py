"""DetourReach: physics, collisions, success, the side metric, paired starts, bad input, the bimodal expert, and the
sided (unimodal) variant DetourReach-Sided-v0."""

import json

import gymnasium as gym
import mujoco
import numpy as np
import pytest

from embodia.envs.detour.detour_reach import DetourReachEnv
from embodia.envs.detour.expert import DetourExpert
from embodia.envs.experts import make_expert
from embodia.runtime.rollout import EpisodeSpec, RolloutWorker

ENV_ID = "embodia/DetourReach-v0"
SIDED_ID = "embodia/DetourReach-Sided-v0"


def place_agent(env, xy) -> None:
    u = env.unwrapped
    u.data.qpos[u._agent_qpos : u._agent_qpos + 2] = xy
    u.data.qvel[:] = 0.0
    mujoco.mj_forward(u.model, u.data)


def run_expert(env, seed, mode=None):
    expert = DetourExpert(env, mode=mode)
    obs, _ = env.reset(seed=seed)
    expert.reset(seed)
    agents = [env.unwrapped.agent_position()]
    while True:
        obs, _reward, terminated, truncated, info = env.step(expert.act(obs))
        agents.append(env.unwrapped.agent_position())
        if terminated or truncated:
            return info, expert, np.array(agents)


def test_velocity_command_moves_at_the_commanded_speed(make_env):
    env = make_env(ENV_ID)
    env.reset(seed=0)
    u = env.unwrapped
    speed = u.config.max_speed
    p = u.agent_position()
    for action, expected in (([1.0, 0.0], [speed, 0.0]), ([1.0, 0.0], [speed, 0.0]), ([0.0, -0.5], [0.0, -speed / 2]),
                             ([0.4, 0.4], [0.4 * speed, 0.4 * speed])):  # fmt: skip
        obs, *_ = env.step(np.array(action))
        q = u.agent_position()
        # The servo reaches a new velocity within ~2 ms of the 100 ms step: <= 1 mm lag per step.
        np.testing.assert_allclose((q - p) / u.dt, expected, atol=0.01)
        np.testing.assert_allclose(obs["state"][:2], q, atol=1e-6)
        p = q
    env.step(np.zeros(2))
    p = u.agent_position()
    env.step(np.zeros(2))
    np.testing.assert_allclose(u.agent_position(), p, atol=1e-6)  # zero command: the mass stands still


@pytest.mark.parametrize("y", [0.0, 0.04])
def test_obstacle_blocks_and_a_contact_is_one_collision(make_env, y):
    env = make_env(ENV_ID, max_steps=100, end_on_collision=False)
    env.reset(seed=0)
    u = env.unwrapped
    reach = u.config.obstacle_radius + u.config.agent_radius
    place_agent(env, [-0.3, y])
    penalties = []
    for _ in range(30):
        _, _, terminated, truncated, info = env.step(np.array([1.0, 0.0]))
        penalties.append(info["reward_collision"])
        x, y_now = u.agent_position()
        assert np.hypot(x, y_now) > reach - 0.005  # at most a few mm of soft-contact penetration
        assert not (terminated or truncated)
    assert u.agent_position()[0] < 0.0 and abs(u.agent_position()[1] - y) < 0.01  # neither through nor around
    assert info["in_contact"] and info["collisions"] == 1.0
    assert penalties.count(-u.config.collision_penalty) == 1 and penalties.count(0.0) == 29
    for _ in range(2):
        _, _, _, _, info = env.step(np.array([-1.0, 0.0]))
    assert not info["in_contact"] and info["collisions"] == 1.0
    for _ in range(4):
        _, _, _, _, info = env.step(np.array([1.0, 0.0]))
    assert info["collisions"] == 2.0


def test_driving_into_the_obstacle_leaves_the_side_undecided(make_env):
    env = make_env(ENV_ID, max_steps=25, end_on_collision=False)
    env.reset(seed=6)
    for _ in range(25):
        _, _, terminated, truncated, info = env.step(np.array([1.0, 0.0]))
    assert truncated and not terminated
    metrics = info["metrics"]
    assert metrics["side"] == 0.0 and metrics["success"] == 0.0 and metrics["collisions"] == 1.0
    assert metrics["min_clearance"] < 0.0 and metrics["steps"] == 25.0


def test_first_contact_ends_the_episode_as_a_failure_by_default(make_env):
    env = make_env(ENV_ID)
    env.reset(seed=6)
    penalty = env.unwrapped.config.collision_penalty
    steps = 0
    terminated = truncated = False
    while not (terminated or truncated):
        _, _, terminated, truncated, info = env.step(np.array([1.0, 0.0]))
        steps += 1
    assert terminated and not truncated and info["collisions"] == 1.0
    assert info["reward_collision"] == -penalty and info["reward_success"] == 0.0
    metrics = info["metrics"]
    assert metrics["success"] == 0.0 and metrics["collisions"] == 1.0 and metrics["steps"] == float(steps)
    with pytest.raises(RuntimeError, match="ended"):
        env.step(np.zeros(2))


def test_without_end_on_collision_a_bump_then_the_goal_is_a_success(make_env):
    env = make_env(ENV_ID, end_on_collision=False)
    env.reset(seed=3)
    u = env.unwrapped
    for _ in range(12):  # into the obstacle
        _, _, terminated, _, info = env.step(np.array([1.0, 0.0]))
    assert info["collisions"] == 1.0 and info["in_contact"] and not terminated
    for _ in range(200):
        goal, agent = u.goal_position(), u.agent_position()
        around = (
            np.array([0.0, 1.0]) if abs(agent[1]) < 0.14 and agent[0] < 0.05 else np.clip((goal - agent) * 20, -1, 1)
        )
        _, _, terminated, truncated, info = env.step(around)
        if terminated or truncated:
            break
    assert terminated and info["metrics"]["success"] == 1.0 and info["metrics"]["collisions"] >= 1.0
    with pytest.raises(ValueError, match="end_on_collision"):
        gym.make(ENV_ID, end_on_collision=1)


def test_success_terminates_with_the_bonus(make_env):
    env = make_env(ENV_ID)
    env.reset(seed=3)
    u = env.unwrapped
    goal = u.goal_position()
    place_agent(env, goal + [0.08, 0.0])
    _, reward, terminated, _, info = env.step(np.array([-1.0, 0.0]))  # 2.5 cm: still 5.5 cm away
    assert not terminated and info["reward_success"] == 0.0
    _, reward, terminated, truncated, info = env.step(np.array([-1.0, 0.0]))  # 3 cm away
    assert terminated and not truncated
    assert info["reward_success"] == 1.0 and reward == pytest.approx(1.0 + 0.025, abs=2e-3)
    assert info["metrics"]["success"] == 1.0 and info["metrics"]["final_distance"] <= u.config.goal_radius
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(2))


def test_progress_rewards_add_up_to_the_distance_gained(make_env):
    env = make_env(ENV_ID)
    _, info = env.reset(seed=8)
    first = info["distance"]
    progress = 0.0
    env.action_space.seed(0)
    for _ in range(40):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert reward == info["reward_progress"] + info["reward_success"] + info["reward_collision"]
        progress += info["reward_progress"]
        if terminated or truncated:
            break
    assert progress == pytest.approx(first - info["distance"], abs=1e-9)


@pytest.mark.parametrize(("mode", "side"), [("left", 1.0), ("right", -1.0)])
def test_expert_modes_go_around_opposite_sides(make_env, mode, side):
    env = make_env(ENV_ID)
    info, expert, agents = run_expert(env, seed=4, mode=mode)
    metrics = info["metrics"]
    assert metrics["success"] == 1.0 and metrics["collisions"] == 0.0 and metrics["side"] == side
    assert metrics["min_clearance"] > 0.01
    assert expert.info() == {"expert": "detour", "mode": mode}
    lateral = agents[:, 1]  # the start -> goal axis is within a few degrees of +x
    assert (side * lateral).max() > 0.12 and (side * lateral).min() > -0.05
    assert metrics["path_length"] == pytest.approx(np.linalg.norm(np.diff(agents, axis=0), axis=1).sum())


def test_paired_starts(make_env):
    env, other = make_env(ENV_ID), make_env(ENV_ID)
    expert = make_expert(env)
    starts = []
    for k in range(5):
        a, _ = env.reset(seed=2 * k)
        b, _ = other.reset(seed=2 * k + 1)
        np.testing.assert_array_equal(a["state"], b["state"])  # same start and goal
        starts.append(a["state"])
        sides = []
        for seed in (2 * k, 2 * k + 1):
            info, exp, _ = run_expert(env, seed)
            sides.append(info["metrics"]["side"])
            expert.reset(seed)
            assert expert.mode == exp.mode
        assert sorted(sides) == [-1.0, 1.0]
    assert len({s.tobytes() for s in starts}) == 5  # different pairs, different starts
    unpaired = make_env(ENV_ID, paired_starts=False)
    assert not np.array_equal(unpaired.reset(seed=0)[0]["state"], unpaired.reset(seed=1)[0]["state"])
    np.testing.assert_array_equal(unpaired.reset(seed=1)[0]["state"], unpaired.reset(seed=1)[0]["state"])
    assert not np.array_equal(env.reset(seed=0)[0]["state"], env.reset()[0]["state"])  # unseeded: np_random


def test_expert_modes_are_balanced_per_pair(make_env):
    expert = DetourExpert(make_env(ENV_ID))
    modes = []
    for seed in range(100):
        expert.reset(seed)
        modes.append(expert.mode)
    assert modes.count("left") == 50
    assert all(modes[2 * k] != modes[2 * k + 1] for k in range(50))
    assert {tuple(modes[2 * k : 2 * k + 2]) for k in range(50)} == {("left", "right"), ("right", "left")}


def test_bad_actions(make_env):
    env = make_env(ENV_ID)
    env.reset(seed=0)
    for bad, message in ((np.array([np.nan, 0.0]), "finite"), (np.array([0.0, np.inf]), "finite"),
                         (np.zeros(3), "shape"), (np.zeros((1, 2)), "shape"), (["a", "b"], "numeric")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            env.unwrapped.step(bad)
    a, b = make_env(ENV_ID), make_env(ENV_ID)
    a.reset(seed=1)
    b.reset(seed=1)
    np.testing.assert_array_equal(a.step(np.array([5.0, -9.0]))[0]["state"], b.step(np.array([1.0, -1.0]))[0]["state"])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"config": {"obstacle_radius": -0.1}},
        {"config": {"max_speed": float("nan")}},
        {"config": {"start_offset": 0.2}},  # the straight way would not be blocked
        {"config": {"half_extent": 0.2}},  # the start lies outside the arena
        {"config": {"obstacle_radius": 0.4, "start_distance": 0.45, "half_extent": 0.5}},  # no gap to the walls
        {"config": {"bogus": 1}},
        {"config": "big"},
        {"max_steps": 0},
        {"max_steps": 2.5},
        {"rgb_size": 4},
        {"paired_starts": "yes"},
        {"config": {"start_gap": -0.01}},
        {"config": {"start_gap": 0.05}},  # above start_offset
        {"config": {"start_gap": float("inf")}},
        {"side_rule": "random"},
        {"side_rule": None},
        {"side_rule": "start"},  # paired starts (the default) would repeat each episode
        {"side_rule": "start", "paired_starts": True},
    ],
)
def test_bad_config_values(kwargs):
    with pytest.raises(ValueError):
        DetourReachEnv(**kwargs)


def test_unstable_simulation_truncates(make_env):
    env = make_env(ENV_ID)
    env.reset(seed=0)
    env.unwrapped.data.qvel[0] = np.inf
    _, reward, terminated, truncated, info = env.step(np.zeros(2))
    assert truncated and not terminated and info["sim_unstable"] and reward == 0.0
    assert "metrics" in info


def test_rgb_observation(make_env):
    env = make_env(ENV_ID, rgb=True)
    obs, _ = env.reset(seed=0)
    assert obs["rgb"].shape == (64, 64, 3) and obs["rgb"].std() > 5.0
    assert env.observation_space.contains(obs)


def test_env_kwargs_rebuild_the_same_env(make_env):
    env = make_env(ENV_ID, config={"obstacle_radius": 0.12}, max_steps=50)
    kwargs = json.loads(json.dumps(env.unwrapped.env_kwargs()))
    clone = make_env(ENV_ID, **kwargs)
    assert clone.unwrapped.scene_xml == env.unwrapped.scene_xml and clone.unwrapped.max_steps == 50
    np.testing.assert_array_equal(env.reset(seed=9)[0]["state"], clone.reset(seed=9)[0]["state"])
    assert isinstance(clone.unwrapped, DetourReachEnv)


def test_expert_through_the_collector():
    worker = RolloutWorker(ENV_ID)
    results = worker.run([EpisodeSpec(i, 20 + i) for i in range(4)])
    worker.close()
    assert [r.metrics["success"] for r in results] == [1.0] * 4
    assert sorted(r.extra["mode"] for r in results) == ["left", "left", "right", "right"]
    assert all(r.metrics["side"] == (1.0 if r.extra["mode"] == "left" else -1.0) for r in results)


@pytest.mark.slow
@pytest.mark.parametrize("env_id", [ENV_ID, SIDED_ID])
def test_expert_on_100_seeds(env_id):
    worker = RolloutWorker(env_id)
    results = worker.run([EpisodeSpec(i, i) for i in range(100)])
    worker.close()
    success = np.mean([r.metrics["success"] for r in results])
    collisions = sum(r.metrics["collisions"] for r in results)
    left = sum(r.extra["mode"] == "left" for r in results)
    sides = [r.metrics["side"] for r in results]
    clearance = min(r.metrics["min_clearance"] for r in results)
    steps = np.mean([r.metrics["steps"] for r in results])
    print(
        f"{env_id}: expert success over 100 seeds = {success:.3f}, left {left}/100, side +1/-1 = "
        f"{sides.count(1.0)}/{sides.count(-1.0)}, collisions {collisions:.0f}, min clearance {clearance * 100:.2f} cm, "
        f"mean steps {steps:.1f}"
    )
    assert success == 1.0 and collisions == 0
    assert all(s == (1.0 if r.extra["mode"] == "left" else -1.0) for s, r in zip(sides, results, strict=True))
    if env_id == ENV_ID:
        assert left == 50  # paired bimodal: exactly half of each side


def test_v0_starts_are_unchanged_by_the_start_gap_and_side_rule():
    # Values recorded before start_gap / side_rule existed: DetourReach-v0's episodes must stay bit-identical.
    env = DetourReachEnv()
    env.reset(seed=7)
    assert env._start.tolist() == [-0.35, 0.025096680325274838]
    assert env._goal.tolist() == [0.35, -0.03257741990654056]
    assert env.expert_side() is None
    unpaired = DetourReachEnv(paired_starts=False)
    unpaired.reset(seed=7)
    assert unpaired._start.tolist() == [-0.35, 0.010007637328373356]
    assert unpaired._goal.tolist() == [0.35, 0.031777104077566044]


@pytest.mark.parametrize("gap", [0.01, 0.03, 0.04])
def test_start_gap_is_respected(gap):
    env = DetourReachEnv(config={"start_gap": gap}, paired_starts=False)
    ys = []
    for seed in range(200):
        env.reset(seed=seed)
        ys.append(env._start[1])
    ys = np.array(ys)
    assert np.all(np.abs(ys) >= gap) and np.all(np.abs(ys) <= env.config.start_offset)
    assert 60 < np.sum(ys > 0) < 140  # either sign, about half each
    if gap < env.config.start_offset:
        assert np.ptp(np.abs(ys)) > 0.5 * (env.config.start_offset - gap)  # spread over [gap, offset]


def test_sided_env_has_its_own_start_per_seed_and_rebuilds_from_env_kwargs(make_env):
    env = make_env(SIDED_ID)
    u = env.unwrapped
    assert u.side_rule == "start" and not u.paired_starts and u.config.start_gap == 0.01 and u.max_steps == 100
    with pytest.raises(RuntimeError, match="reset"):
        u.expert_side()
    assert not np.array_equal(env.reset(seed=0)[0]["state"], env.reset(seed=1)[0]["state"])
    kwargs = json.loads(json.dumps(u.env_kwargs()))
    assert kwargs["side_rule"] == "start" and kwargs["config"]["start_gap"] == 0.01
    clone = make_env(ENV_ID, **kwargs)  # an episode file's env_kwargs rebuild the sided env from any DetourReach id
    np.testing.assert_array_equal(env.reset(seed=9)[0]["state"], clone.reset(seed=9)[0]["state"])
    assert clone.unwrapped.expert_side() == u.expert_side()


def test_sided_expert_side_follows_the_start(make_env):
    env = make_env(SIDED_ID)
    assert isinstance(make_expert(env), DetourExpert)
    sides = []
    for seed in range(20):
        info, expert, _ = run_expert(env, seed)
        start_y = env.unwrapped._start[1]
        assert abs(start_y) >= 0.01
        expected = "left" if start_y >= 0 else "right"
        assert env.unwrapped.expert_side() == expected and expert.mode == expected
        assert info["metrics"]["side"] == (1.0 if expected == "left" else -1.0)
        assert info["metrics"]["success"] == 1.0 and info["metrics"]["collisions"] == 0.0
        sides.append(expected)
    assert set(sides) == {"left", "right"}
    env.reset(seed=next(s for s, side in enumerate(sides) if side == "left"))
    forced = DetourExpert(env, mode="right")  # a forced mode wins over the env's side rule
    forced.reset(0)
    assert forced.mode == "right"


def test_sided_expert_through_the_collector_and_the_cli(tmp_path):
    worker = RolloutWorker(SIDED_ID)
    results = worker.run([EpisodeSpec(i, 100 + i) for i in range(20)])
    worker.close()
    assert [r.metrics["success"] for r in results] == [1.0] * 20
    assert all(r.metrics["side"] == (1.0 if r.extra["mode"] == "left" else -1.0) for r in results)
    from embodia.cli import main

    out = tmp_path / "sided"
    assert main(["collect", "--env", SIDED_ID, "--episodes", "2", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 2 and summary["metrics"]["success"]["mean"] == 1.0
