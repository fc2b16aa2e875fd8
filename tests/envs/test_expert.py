"""The UrbanNav expert: a fast check here, the 100-seed acceptance figure in a slow test."""

import numpy as np
import pytest

from embodia.runtime.rollout import EpisodeSpec, RolloutWorker


@pytest.mark.parametrize("env_id", ["embodia/UrbanNav-v0", "embodia/UrbanNav-Return-v0"])
def test_expert_reaches_the_goal(env_id):
    worker = RolloutWorker(env_id)
    results = worker.run([EpisodeSpec(i, 100 + i) for i in range(4)])
    worker.close()
    assert [r.metrics["tc"] for r in results] == [1.0] * 4


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ["embodia/UrbanNav-v0", "embodia/UrbanNav-Return-v0"])
def test_expert_tc_on_100_seeds(env_id):
    worker = RolloutWorker(env_id)
    results = worker.run([EpisodeSpec(i, i) for i in range(100)])
    worker.close()
    tc = np.mean([r.metrics["tc"] for r in results])
    print(f"{env_id}: expert TC over 100 seeds = {tc:.3f}")
    assert tc >= 0.95


@pytest.mark.slow
def test_expert_in_a_10x10_city():
    worker = RolloutWorker("embodia/UrbanNav-v0", {"city": {"blocks_x": 10, "blocks_y": 10}})
    results = worker.run([EpisodeSpec(i, i) for i in range(20)])
    worker.close()
    assert np.mean([r.metrics["tc"] for r in results]) >= 0.95
