"""Episode files are faithful: re-simulating the actions reproduces every stored MuJoCo state bit for bit."""

import numpy as np
import pytest

from embodia.data.episodes import read_episode
from embodia.data.resimulate import resimulate
from embodia.runtime.rollout import EpisodeSpec, RolloutWorker


@pytest.mark.parametrize("env_id", ["embodia/UrbanNav-v0", "embodia/UrbanNav-Return-v0"])
def test_resimulation_reproduces_every_state(tmp_path, env_id):
    worker = RolloutWorker(env_id, {"sensor": {"pose_noise": 0.02}})
    result = worker.run_episode(EpisodeSpec(0, 21), tmp_path)
    worker.close()
    episode = read_episode(result.path)
    assert episode.mj_state.shape[0] == episode.num_steps + 1
    states = resimulate(episode)
    assert states.shape == episode.mj_state.shape
    assert np.array_equal(states, episode.mj_state)  # exact, not approximately


def test_resimulation_detects_a_tampered_action(tmp_path):
    worker = RolloutWorker("embodia/UrbanNav-v0")
    episode = read_episode(worker.run_episode(EpisodeSpec(0, 3), tmp_path).path)
    worker.close()
    episode.actions[5, 1] += 0.01
    assert not np.array_equal(resimulate(episode), episode.mj_state)


def test_episode_file_layout(tmp_path):
    worker = RolloutWorker("embodia/UrbanNav-v0")
    result = worker.run_episode(EpisodeSpec(7, 8), tmp_path)
    worker.close()
    episode = read_episode(result.path)
    t = episode.num_steps
    assert result.path.endswith("episode_000007.h5")
    assert episode.env_id == "embodia/UrbanNav-v0" and episode.seed == 8
    assert episode.observations["depth"].shape[0] == t + 1
    assert episode.observations["instruction"][0] == episode.instruction
    assert episode.actions.shape == (t, 3)
    assert set(episode.infos) >= {"reward_progress", "reward_success", "reward_collision"}
    np.testing.assert_allclose(
        episode.infos["reward_progress"] + episode.infos["reward_success"] + episode.infos["reward_collision"],
        episode.rewards,
    )
    assert episode.scene_xml.startswith("<mujoco")
    assert episode.metrics["success"] == 1.0 and episode.terminations[-1]
    assert episode.env_kwargs["task"] == "follow" and episode.extra["expert"] == "pure_pursuit"


def test_resimulate_needs_states(tmp_path):
    worker = RolloutWorker("embodia/UrbanNav-v0")
    episode = read_episode(worker.run_episode(EpisodeSpec(0, 1), tmp_path).path)
    worker.close()
    episode.mj_state = None
    with pytest.raises(ValueError, match="no mj_state"):
        resimulate(episode)
