"""DART noise injection while collecting: perturbed execution, the expert's own actions recorded as labels."""

from __future__ import annotations

import numpy as np
import pytest

from embodia.data.episodes import read_episode
from embodia.data.resimulate import resimulate
from embodia.envs.experts import make_expert
from embodia.runtime.collect import collect
from embodia.runtime.episode import action_noise_rng
from embodia.runtime.rollout import EpisodeSpec, RolloutWorker, make_env


def test_noisy_collection_records_the_experts_labels_in_the_states_it_visited(tmp_path):
    summary = collect("Pusher-v5", 2, tmp_path / "dart", seed=5, action_noise=0.3, progress=False)
    assert summary["action_noise"] == 0.3
    assert all(row["action_noise"] == 0.3 for row in summary["per_episode"])
    episode = read_episode(tmp_path / "dart" / summary["files"][0])
    # The env executed other actions than the recorded ones: replaying the labels leaves the recorded states.
    assert not np.allclose(resimulate(episode), episode.mj_state)
    # Rebuild the executed actions from the labels and the episode's noise stream: driving a fresh env with them
    # visits the recorded states, and in each one the expert's action is the recorded label.
    env = make_env("Pusher-v5")
    expert = make_expert(env)
    obs, _ = env.reset(seed=episode.seed)
    expert.reset(episode.seed)
    rng, low, high = action_noise_rng(episode.seed), env.action_space.low, env.action_space.high
    for t in range(episode.num_steps):
        np.testing.assert_array_equal(np.asarray(expert.act(obs), dtype=np.float32), episode.actions[t])
        noise = 0.3 * (high - low) / 2 * rng.standard_normal(episode.actions[t].shape)
        obs, *_ = env.step(np.clip(episode.actions[t] + noise, low, high).astype(np.float32))
        np.testing.assert_array_equal(env.get_mj_state(), episode.mj_state[t + 1])
    env.close()


def test_noise_is_reproducible_and_zero_noise_is_plain_collection(tmp_path):
    noisy = [RolloutWorker("Pusher-v5", action_noise=0.3) for _ in range(2)]
    a, b = (read_episode(w.run_episode(EpisodeSpec(0, 7), tmp_path / f"w{i}").path) for i, w in enumerate(noisy))
    np.testing.assert_array_equal(a.mj_state, b.mj_state)  # the noise is drawn from the episode's seed
    plain = RolloutWorker("Pusher-v5")
    c = read_episode(plain.run_episode(EpisodeSpec(0, 7), tmp_path / "plain").path)
    np.testing.assert_array_equal(resimulate(c), c.mj_state)  # no noise: the labels are what was executed
    assert not np.array_equal(a.mj_state, c.mj_state) and "action_noise" not in c.extra
    for worker in (*noisy, plain):
        worker.close()


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), True, "0.3"])
def test_bad_action_noise_is_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="action-noise"):
        collect("Pusher-v5", 1, tmp_path / "x", action_noise=bad, progress=False)
    assert not (tmp_path / "x").exists()  # refused before anything was written
