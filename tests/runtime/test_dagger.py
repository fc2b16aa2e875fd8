"""DAgger: the learner's rollouts relabelled by the expert, aggregated and trained on, round by round."""

from __future__ import annotations

import json

import numpy as np
import pytest

from embodia.data.episodes import episode_files, read_episode
from embodia.envs.experts import make_expert
from embodia.policies.base import Policy
from embodia.policies.factory import policy_config
from embodia.runtime.collect import collect
from embodia.runtime.dagger import train_with_dagger
from embodia.runtime.rollout import EpisodeSpec, RolloutWorker, make_env
from embodia.training.config import TrainConfig

ENV = "embodia/DetourReach-Sided-v0"
MLP = policy_config("mlp")


class StandStill:
    """A learner that never moves (its states differ from the expert's at once)."""

    def __init__(self, env):
        self.zero = np.zeros(env.action_space.shape, dtype=np.float32)

    def reset(self, seed=None):
        pass

    def act(self, obs):
        return self.zero

    def info(self):
        return {"controller": "stand-still"}


def test_relabelled_rollouts_record_the_experts_action_in_the_learners_states(tmp_path):
    worker = RolloutWorker(ENV, {"max_episode_steps": 30}, StandStill, labeller_fn=make_expert)
    episode = read_episode(worker.run_episode(EpisodeSpec(0, 3), tmp_path).path)
    worker.close()
    assert episode.extra["labelled_by"] == "DetourExpert" and episode.num_steps == 30
    assert np.abs(episode.actions).max() > 0  # the labels are not what was executed
    env = make_env(ENV, {"max_episode_steps": 30})  # drive a fresh env the learner's way, ask the expert each step
    expert = make_expert(env)
    obs, _ = env.reset(seed=3)
    expert.reset(3)
    for t in range(episode.num_steps):
        np.testing.assert_array_equal(np.asarray(expert.act(obs), dtype=np.float32), episode.actions[t])
        obs, *_ = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
    env.close()


def test_train_with_dagger_aggregates_rounds_and_logs_them(tmp_path):
    demos = tmp_path / "demos"
    collect(ENV, 2, demos, seed=0, progress=False)
    config = TrainConfig(steps=10, batch_size=8, warmup_steps=2, checkpoint_every=100)
    run = tmp_path / "run"
    summary = train_with_dagger(demos, MLP, run, config, rounds=2, episodes=2, seed=50, progress=False)
    assert [r["round"] for r in summary["dagger"]] == [1, 2]
    assert summary["dagger"][1]["seeds"] == [52, 53] and summary["dagger"][1]["episodes_trained_on"] == 6
    assert "success" in summary["dagger"][0]["rollout_metrics"]
    assert json.loads((run / "summary.json").read_text())["dagger"] == summary["dagger"]
    for k in (1, 2):
        rollouts = json.loads((run / "dagger" / f"rollouts_{k}" / "summary.json").read_text())
        assert rollouts["labelled_by"] == ["DetourExpert"] and len(rollouts["files"]) == 2
    assert len(episode_files(run / "dagger" / "data_2")) == 6
    assert isinstance(Policy.load(run / "policy.pt"), Policy)
    assert list((run / "dagger").glob("events.out.tfevents.*"))
    with pytest.raises(ValueError, match="already holds a run"):
        train_with_dagger(demos, MLP, run, config, rounds=1, episodes=1, progress=False)
    interrupted = tmp_path / "interrupted"  # a plain run without policy.pt (stopped early) is not overwritten either
    (interrupted / "checkpoints").mkdir(parents=True)
    (interrupted / "summary.json").write_text("{}")
    with pytest.raises(ValueError, match="already holds a run"):
        train_with_dagger(demos, MLP, interrupted, config, rounds=1, episodes=1, progress=False)
    assert (interrupted / "summary.json").read_text() == "{}"


def test_dagger_rounds_can_fine_tune_the_previous_rounds_policy(tmp_path):
    demos = tmp_path / "demos"
    collect(ENV, 2, demos, seed=0, progress=False)
    config = TrainConfig(steps=10, batch_size=8, warmup_steps=2, checkpoint_every=100)
    run = tmp_path / "run"
    summary = train_with_dagger(demos, MLP, run, config, rounds=2, episodes=1, round_steps=3, progress=False)
    assert summary["steps"] == 3 and summary["init_from"] == str(run / "dagger" / "round_1" / "policy.pt")
    round_1 = json.loads((run / "dagger" / "round_1" / "summary.json").read_text())
    assert round_1["steps"] == 3 and round_1["init_from"] == str(run / "dagger" / "round_0" / "policy.pt")
    assert json.loads((run / "dagger" / "round_0" / "summary.json").read_text())["init_from"] is None
    with pytest.raises(ValueError, match="--dagger-round-steps must be an integer >= 1"):
        train_with_dagger(demos, MLP, tmp_path / "bad", config, rounds=1, episodes=1, round_steps=0, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"rounds": 0}, "--dagger-rounds must be an integer >= 1"),
     ({"episodes": 0}, "--dagger-episodes must be an integer >= 1"),
     ({"data": "empty"}, "holds no episode files"), ({"workers": -1}, "--dagger-workers must be an integer"),
     ({"ray_address": "127.0.0.1:1"}, "--ray-address needs --dagger-workers"),
     ({"seed": 2**63 - 1}, "--dagger-seed must be <=")],
)  # fmt: skip
def test_bad_dagger_arguments_are_refused_before_training(tmp_path, kwargs, match):
    (tmp_path / "empty").mkdir()
    args = {"rounds": 1, "episodes": 1, **kwargs}
    data = tmp_path / args.pop("data", "empty")
    with pytest.raises(ValueError, match=match):
        train_with_dagger(data, MLP, tmp_path / "run", TrainConfig(steps=5), progress=False, **args)
    assert not (tmp_path / "run").exists()


def test_a_dagger_rollout_actor_that_dies_loses_no_labelled_episode(ray_session, tmp_path):
    import threading
    import time

    import ray

    from embodia.runtime.ray_pool import RayRolloutPool

    out = tmp_path / "rollouts"
    out.mkdir()
    env_id, env_kwargs = "embodia/UrbanNav-Return-v0", {"max_episode_steps": 60}
    pool = RayRolloutPool(env_id, env_kwargs, workers=2, controller_fn=StandStill, labeller_fn=make_expert,
                          progress=False)  # fmt: skip
    victim = pool.actors[0]

    def kill_after_first_file() -> None:
        deadline = time.monotonic() + 60
        while not episode_files(out) and time.monotonic() < deadline:
            time.sleep(0.005)
        ray.kill(victim, no_restart=True)

    killer = threading.Thread(target=kill_after_first_file)
    killer.start()
    try:
        results = pool.run([EpisodeSpec(i, 300 + i) for i in range(8)], out)
    finally:
        killer.join()
        pool.close()
    assert pool.restarts >= 1 and [r.seed for r in results] == list(range(300, 308))
    files = episode_files(out)
    assert [f.name for f in files] == [f"episode_{i:06d}.h5" for i in range(8)]
    reference = RolloutWorker(env_id, env_kwargs, StandStill, labeller_fn=make_expert)  # the same, in this process
    for i, path in enumerate(files):
        episode = read_episode(path)
        assert episode.extra["labelled_by"] == "UrbanNavExpert"
        expected = read_episode(reference.run_episode(EpisodeSpec(i, 300 + i), tmp_path / "reference").path)
        np.testing.assert_array_equal(episode.actions, expected.actions)  # every label kept, none doubled
    reference.close()
