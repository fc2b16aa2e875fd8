"""The bridge for foreign Gymnasium envs: space checks, action checks, MuJoCo state, metrics, recording."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from embodia.data.episodes import read_episode
from embodia.data.resimulate import resimulate
from embodia.envs.foreign.adapter import ForeignTask, adapt
from embodia.runtime.rollout import EpisodeSpec, RolloutWorker


class NestedDictEnv(gym.Env):
    """A tiny non-MuJoCo env with a nested Dict observation (unsupported by the adapter)."""

    observation_space = spaces.Dict({"outer": spaces.Dict({"inner": spaces.Box(-1, 1, (2,))})})
    action_space = spaces.Box(-1, 1, (1,))


def test_unsupported_spaces_are_named():
    with pytest.raises(ValueError, match=r"Box action space.*Discrete"):
        adapt(gym.make("CartPole-v1"))
    with pytest.raises(ValueError, match="'outer'"):
        adapt(NestedDictEnv())


def test_pusher_contract():
    env = adapt(gym.make("Pusher-v5"))
    assert env.is_mujoco and "<mujoco" in env.scene_xml and "tips_arm" in env.scene_xml
    env.reset(seed=0)
    for bad, message in ((np.full(7, np.nan), "finite"), (np.zeros(6), "shape"), (np.array(["x"] * 7), "numeric")):
        with pytest.raises(ValueError, match=message):
            env.step(bad)
    state = env.get_mj_state()
    _, reward, _, _, info = env.step(np.full(7, 50.0))  # clipped to the actuator range [-2, 2]
    assert sum(info[k] for k in env.REWARD_TERMS) == pytest.approx(reward)
    env.set_mj_state(state)
    np.testing.assert_array_equal(env.get_mj_state(), state)
    with pytest.raises(ValueError, match="shape"):
        env.set_mj_state(state[:-1])
    for _ in range(99):
        _, _, _terminated, truncated, info = env.step(np.zeros(7))
    assert truncated and {"success", "object_goal_distance", "return", "length"} <= set(info["metrics"])
    assert info["metrics"]["length"] == 100.0
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(7))


def test_pusher_divergence_truncates_with_flag():
    env = adapt(gym.make("Pusher-v5"))
    env.reset(seed=0)
    env.unwrapped.data.qvel[0] = np.nan
    obs, reward, _terminated, truncated, info = env.step(np.zeros(7))
    assert truncated and info["sim_unstable"] and reward == 0.0 and np.isfinite(obs).all()


def test_non_mujoco_env_records_without_state(tmp_path):
    env = adapt(gym.make("Pendulum-v1"))
    assert not env.is_mujoco
    with pytest.raises(AttributeError):
        env.get_mj_state()

    class Swing:
        def __init__(self, env):
            self.env = env

        def reset(self, seed=None):
            pass

        def act(self, obs):
            return np.array([1.0], dtype=np.float32)

        def info(self):
            return {"expert": "constant"}

    worker = RolloutWorker("Pendulum-v1", controller_fn=Swing)
    result = worker.run_episode(EpisodeSpec(0, 5), tmp_path)
    episode = read_episode(result.path)
    assert episode.mj_state is None and episode.observations.shape == (201, 3)
    assert result.metrics["length"] == 200.0


def test_custom_task_profile():
    def metrics(env):
        return {"success": 1.0, "angle": float(env.unwrapped.state[0])}

    env = adapt(gym.make("Pendulum-v1", max_episode_steps=3), ForeignTask(metrics, ()))
    env.reset(seed=0)
    for _ in range(3):
        *_, info = env.step(np.zeros(1))
    assert info["metrics"]["success"] == 1.0 and "angle" in info["metrics"]


def test_pusher_episode_resimulates_exactly(tmp_path):
    worker = RolloutWorker("Pusher-v5")
    episode = read_episode(worker.run_episode(EpisodeSpec(0, 3), tmp_path).path)
    worker.close()
    assert episode.mj_state.shape[0] == 101
    assert np.array_equal(resimulate(episode), episode.mj_state)


def _pusher_success(seeds) -> float:
    worker = RolloutWorker("Pusher-v5")
    results = worker.run([EpisodeSpec(i, s) for i, s in enumerate(seeds)])
    worker.close()
    return float(np.mean([r.metrics["success"] for r in results]))


def test_pusher_expert_pushes_the_object_to_the_goal():
    assert _pusher_success(range(3)) == 1.0


@pytest.mark.slow
def test_pusher_expert_success_on_100_seeds():
    success = _pusher_success(range(100))
    print(f"Pusher-v5: expert success over 100 seeds = {success:.3f}")
    assert success >= 0.9
