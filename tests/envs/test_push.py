"""PushBlock and PushT: physics, success rules, coverage, bad input, and the multimodal expert."""

import mujoco
import numpy as np
import pytest

from embodia.envs.manip.expert import PushExpert
from embodia.envs.manip.push import PushBlockEnv, PushTEnv
from embodia.envs.manip.shapes import box_shape, coverage, tee_shape

PUSH_IDS = ["embodia/PushBlock-v0", "embodia/PushT-v0"]


def run_expert(env, seed, mode=None):
    expert = PushExpert(env, mode=mode)
    obs, _ = env.reset(seed=seed)
    expert.reset(seed)
    pushers = [env.unwrapped.pusher_position()]
    while True:
        obs, _reward, terminated, truncated, info = env.step(expert.act(obs))
        pushers.append(env.unwrapped.pusher_position())
        if terminated or truncated:
            return info, expert, np.array(pushers)


def test_tee_shape_geometry():
    tee = tee_shape()
    assert tee.area == pytest.approx(0.12 * 0.03 + 0.03 * 0.09)
    # The origin is the centre of mass: the area-weighted mean of a uniform grid is ~0.
    np.testing.assert_allclose(tee.grid(0.001).mean(axis=0), [0.0, 0.0], atol=2e-4)
    samples = tee.grid(0.002)
    pose = np.array([0.0, 0.0, 0.3])
    assert coverage(tee, pose, pose, samples) == 1.0
    # 3 mm sideways loses the 3 mm strips along the bar's and stem's long sides, about 4 %.
    shifted = coverage(tee, pose + np.array([0.003 * np.cos(0.3), 0.003 * np.sin(0.3), 0.0]), pose, samples)
    assert 0.93 < shifted < 0.98
    assert coverage(tee, pose + np.array([0.5, 0.0, 0.0]), pose, samples) == 0.0
    # Exact coverage (polygon clipping) against a fine sampled estimate, near and far from the 0.95 line.
    fine = tee.grid(0.0003)
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = np.array([*rng.uniform(-0.01, 0.01, 2), rng.uniform(-0.2, 0.2)])
        exact = coverage(tee, a, pose)
        assert abs(exact - coverage(tee, a, pose, fine)) < 2e-3
    assert coverage(tee, pose, pose) == pytest.approx(1.0)
    # Two squares offset by 1 cm along one side: exactly 7/8 overlap.
    square = box_shape()
    assert coverage(square, np.array([0.01, 0.0, 0.0]), np.zeros(3)) == pytest.approx(0.875)
    assert square.symmetry == pytest.approx(np.pi / 2) and tee.symmetry == pytest.approx(2 * np.pi)


def test_ray_entry_reports_the_face():
    tee = tee_shape()
    s, normal = tee.ray_entry(np.array([0.0, -0.3]), np.array([0.0, 1.0]))  # up the stem from below
    stem_bottom = tee.centres[1, 1] - tee.halves[1, 1]
    assert s == pytest.approx(stem_bottom + 0.3)
    np.testing.assert_allclose(normal, [0.0, -1.0])
    assert tee.ray_entry(np.array([-0.3, 0.2]), np.array([1.0, 0.0])) is None


@pytest.mark.parametrize("env_id", PUSH_IDS)
def test_pushing_moves_the_block_and_it_stops(make_env, env_id):
    env = make_env(env_id)
    env.reset(seed=0)
    u = env.unwrapped
    block = u.block_pose()
    # Put the pusher 5 cm left of the block's centre line at its height and push +x.
    u.data.qpos[u._pusher_qpos : u._pusher_qpos + 2] = [block[0] - u.shape.radius - 0.03, block[1]]
    mujoco.mj_forward(u.model, u.data)
    for _ in range(15):
        env.step(np.array([0.4, 0.0]))
    moved = u.block_pose()
    assert moved[0] - block[0] > 0.01
    for _ in range(3):
        env.step(np.array([-0.5, 0.0]))  # pull the pusher away: the block must not glide on
    settled = u.block_pose()
    for _ in range(3):
        env.step(np.zeros(2))
    np.testing.assert_allclose(u.block_pose(), settled, atol=1e-4)


@pytest.mark.parametrize("env_id", PUSH_IDS)
def test_bad_actions(make_env, env_id):
    env = make_env(env_id)
    env.reset(seed=0)
    for bad, message in ((np.array([np.nan, 0.0]), "finite"), (np.zeros(3), "shape"), (["a", "b"], "numeric")):
        with pytest.raises(ValueError, match=message):
            env.unwrapped.step(bad)
    a, b = make_env(env_id), make_env(env_id)
    a.reset(seed=1)
    b.reset(seed=1)
    np.testing.assert_array_equal(a.step(np.array([5.0, -9.0]))[0]["state"], b.step(np.array([1.0, -1.0]))[0]["state"])


@pytest.mark.parametrize("env_id", PUSH_IDS)
def test_unstable_simulation_truncates(make_env, env_id):
    env = make_env(env_id)
    env.reset(seed=0)
    env.unwrapped.data.qvel[0] = np.inf
    _, reward, terminated, truncated, info = env.step(np.zeros(2))
    assert truncated and not terminated and info["sim_unstable"] and reward == 0.0


def test_pushblock_success_needs_five_steps_at_the_goal(make_env):
    env = make_env("embodia/PushBlock-v0")
    env.reset(seed=3)
    u = env.unwrapped
    # Place the block on the goal, 90 degrees turned (the square's symmetry): at the goal.
    u.data.qpos[u._block_qpos : u._block_qpos + 3] = [u.goal[0] + 0.01, u.goal[1], u.goal[2] + np.pi / 2 + 0.1]
    u.data.qpos[u._pusher_qpos : u._pusher_qpos + 2] = [0.25, 0.25]
    mujoco.mj_forward(u.model, u.data)
    assert u.at_goal()
    for step in range(1, 6):
        _, _reward, terminated, _, info = env.step(np.zeros(2))
        assert terminated == (step == 5)
    assert info["metrics"]["success"] == 1.0 and info["reward_success"] == 1.0


def test_pusht_success_is_coverage(make_env):
    env = make_env("embodia/PushT-v0")
    env.reset(seed=0)
    u = env.unwrapped
    np.testing.assert_allclose(u.goal, PushTEnv.DEFAULT_GOAL)
    u.data.qpos[u._block_qpos : u._block_qpos + 3] = u.goal + np.array([0.0005, 0.0, 0.0])
    u.data.qpos[u._pusher_qpos : u._pusher_qpos + 2] = [0.25, 0.25]
    mujoco.mj_forward(u.model, u.data)
    _, _, terminated, _, info = env.step(np.zeros(2))
    assert terminated and info["coverage"] >= 0.95 and info["metrics"]["success"] == 1.0


def test_rgb_observation(make_env):
    env = make_env("embodia/PushT-v0", rgb=True)
    obs, _ = env.reset(seed=0)
    assert obs["rgb"].shape == (64, 64, 3) and obs["rgb"].std() > 5.0
    assert env.observation_space.contains(obs)


def test_bad_config_values():
    for kwargs in ({"table": {"max_speed": float("nan")}}, {"table": {"half_extent": 0.1}}, {"max_steps": 0},
                   {"table": {"bogus": 1}}, {"rgb_size": 4}):  # fmt: skip
        with pytest.raises(ValueError):
            PushBlockEnv(**kwargs)


def side_from_path(env, seed, pushers) -> str:
    """The side of the block's start position the pusher passed to get behind it (w.r.t. block -> goal)."""
    u = env.unwrapped
    env.reset(seed=seed)
    block, goal = u.block_pose(), u.goal
    axis = (goal[:2] - block[:2]) / np.linalg.norm(goal[:2] - block[:2])
    rel = pushers - block[:2]
    along = rel @ axis
    offset = axis[0] * rel[:, 1] - axis[1] * rel[:, 0]
    assert along[0] > 0  # the pusher starts in front of the block
    behind = int(np.argmax(along <= 0))  # first step behind the block's start position
    assert behind > 0
    return "left" if offset[behind] > 0 else "right"


@pytest.mark.parametrize("mode", ["left", "right"])
def test_expert_modes_go_around_opposite_sides(make_env, mode):
    env = make_env("embodia/PushBlock-v0")
    info, expert, pushers = run_expert(env, seed=4, mode=mode)  # seed 4: both ways around are free
    assert info["metrics"]["success"] == 1.0
    assert expert.info()["mode"] == mode == side_from_path(env, 4, pushers)


def test_recorded_mode_is_the_side_the_pusher_took(make_env):
    env = make_env("embodia/PushBlock-v0")
    for seed in range(12):
        _, expert, pushers = run_expert(env, seed)
        assert expert.info()["mode"] == side_from_path(env, seed, pushers), seed


def test_the_pusher_tracks_its_commanded_speed(make_env):
    env = make_env("embodia/PushBlock-v0")
    env.reset(seed=0)
    u = env.unwrapped
    u.data.qpos[u._pusher_qpos : u._pusher_qpos + 2] = [-0.25, -0.25]
    u.data.qpos[u._block_qpos : u._block_qpos + 2] = [0.2, 0.2]
    mujoco.mj_forward(u.model, u.data)
    start = u.pusher_position()
    for _ in range(5):
        env.step(np.array([1.0, 0.0]))
    assert (u.pusher_position() - start)[0] == pytest.approx(5 * 0.1 * 0.25, rel=0.03)


def test_expert_modes_are_balanced_and_seeded(make_env):
    env = make_env("embodia/PushBlock-v0")
    expert = PushExpert(env)
    modes = []
    for seed in range(40):
        expert.reset(seed)
        modes.append(expert.mode)
    assert modes.count("left") == 20
    again = PushExpert(env)
    again.reset(7)
    assert again.mode == modes[7]


@pytest.mark.parametrize("env_id", PUSH_IDS)
def test_expert_succeeds(make_env, env_id):
    env = make_env(env_id)
    for seed in range(3):
        info, _, _ = run_expert(env, seed)
        assert info["metrics"]["success"] == 1.0, seed


@pytest.mark.slow
@pytest.mark.parametrize(("env_id", "floor"), [("embodia/PushBlock-v0", 0.95), ("embodia/PushT-v0", 0.8)])
def test_expert_success_on_100_seeds(make_env, env_id, floor):
    env = make_env(env_id)
    results = [run_expert(env, seed) for seed in range(100)]
    success = np.mean([info["metrics"]["success"] for info, _, _ in results])
    left = np.mean([expert.info()["mode"] == "left" for _, expert, _ in results])  # the side actually taken
    print(f"{env_id}: expert success over 100 seeds = {success:.3f}, left mode {left:.2f}")
    assert success >= floor
    if env_id == "embodia/PushBlock-v0":
        assert 0.4 <= left <= 0.6
