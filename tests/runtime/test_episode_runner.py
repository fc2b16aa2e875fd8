"""Tests for run_episode (the one episode loop), the controller protocol and registry, PlanStats, Policy.last_plan."""

from __future__ import annotations

import pickle
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from embodia.envs.contract import embodia_env
from embodia.envs.experts import make_expert
from embodia.policies.factory import make_policy
from embodia.policies.plan_info import PlanInfo
from embodia.policies.plan_stats import PlanStats
from embodia.runtime.controller import Controller, MemoryController, memory_snapshot
from embodia.runtime.controller_registry import CONTROLLERS, controller_factory
from embodia.runtime.episode import run_episode
from embodia.runtime.policy_controller import PolicyController
from embodia.runtime.rollout import EpisodeSpec, RolloutWorker, make_env

ENV_ID = "embodia/DetourReach-v0"
SRC = Path(__file__).resolve().parents[2] / "src"


class Steps:
    """An observer that counts what it saw."""

    def __init__(self):
        self.started, self.labels = 0, []

    def start(self, obs):
        self.started += 1

    def step(self, label, obs, reward, terminated, truncated, info):
        self.labels.append(label)


def test_run_episode_with_the_expert_matches_the_rollout_worker():
    env = make_env(ENV_ID, {"max_steps": 40})
    expert = make_expert(env)
    observer = Steps()
    run = run_episode(env, expert, 7, observer=observer)
    env.close()
    assert isinstance(expert, Controller) and not isinstance(expert, MemoryController)
    assert observer.started == 1 and len(observer.labels) == run.steps <= 40 and "metrics" in run.info
    assert {"success", "side", "return"} <= set(run.metrics) and all(isinstance(v, float) for v in run.metrics.values())
    worker = RolloutWorker(ENV_ID, {"max_steps": 40})
    result = worker.run_episode(EpisodeSpec(0, 7))
    worker.close()
    assert result.num_steps == run.steps and result.metrics == run.metrics


def test_run_episode_outer_time_limit_falls_back_to_the_env_metrics():
    env = make_env(ENV_ID, {"max_episode_steps": 5})  # Gymnasium's TimeLimit cuts the episode, not the env
    run = run_episode(env, make_expert(env), 0)
    env.close()
    assert run.steps == 5 and "metrics" not in run.info
    assert {"success", "side", "final_distance", "return"} <= set(run.metrics)


def test_embodia_env_refuses_an_env_without_the_contract():
    env = gym.make("Pendulum-v1")
    with pytest.raises(ValueError, match="make_env") as err:
        embodia_env(env)
    assert "\n" not in str(err.value)
    env.close()
    adapted = make_env("Pendulum-v1")
    assert embodia_env(adapted) is adapted and not embodia_env(adapted).is_mujoco
    adapted.close()


def test_registry_unknown_name_is_a_one_line_error_listing_the_names():
    with pytest.raises(ValueError) as err:
        controller_factory("wizard")
    message = str(err.value)
    assert "\n" not in message and "'wizard'" in message and all(name in message for name in CONTROLLERS)


def test_registry_entries_check_their_options_at_once():
    factory, label = controller_factory("expert")
    assert factory is make_expert and label == "scripted expert"
    with pytest.raises(ValueError, match="--agent expert takes no options, not --memory; --memory and --act-from-ph"):
        controller_factory("expert", memory="full")
    with pytest.raises(ValueError, match=r"--agent modular takes --memory and --act-from-phase, not --speed$"):
        controller_factory("modular", speed=2)
    with pytest.raises(ValueError, match="memory"):
        controller_factory("modular", memory="everything")
    with pytest.raises(ValueError, match="act-from-phase"):
        controller_factory("modular", act_from_phase=-1)
    factory, label = controller_factory("modular", memory="none", act_from_phase=0)
    assert label == "modular agent (memory none, acting from phase 0)"
    assert pickle.loads(pickle.dumps(factory)).args == ("none", 0)  # Ray actors get their own copy


def test_modular_agent_from_the_registry_is_a_memory_controller():
    env = make_env("embodia/UrbanNav-v0", {"max_steps": 5})
    factory, _ = controller_factory("modular", act_from_phase=0)
    agent = factory(env)
    assert isinstance(agent, MemoryController)
    run = run_episode(env, agent, 0)
    assert run.steps == 5 and memory_snapshot(agent) is not None and agent.info()["act_ms_mean"] > 0
    env.close()


def test_select_action_reports_its_plans_publicly():
    torch.manual_seed(0)
    policy = make_policy("mlp", obs_dim=3, action_dim=2, n_obs_steps=1, horizon=4, n_action_steps=2)
    policy.fit_normalizer(np.random.default_rng(0).normal(size=(10, 3)), np.random.default_rng(1).normal(size=(10, 2)))
    batch = {"obs": np.zeros((1, 1, 3), dtype=np.float32)}
    assert policy.last_plan is None and policy.rollout_controller(None) is None
    planned = []
    for _ in range(5):
        policy.select_action(batch)
        planned.append(policy.last_plan)
    assert [p is not None for p in planned] == [True, False, True, False, True]
    assert planned[0] == PlanInfo(nfe=1.0, energy=None)
    policy.reset()
    assert policy.last_plan is None
    stats = PlanStats()
    policy.reset()
    with stats.acting():
        stats.select(policy, batch)
    with stats.acting():
        stats.select(policy, batch)
    figures = {**stats.act_figures(), **stats.plan_figures()}
    assert figures["plans"] == 1 and figures["nfe_mean"] == 1.0 and figures["plan_ms_max"] >= figures["plan_ms_mean"]
    assert "energies" not in figures and "observe_ms_mean" not in figures and figures["act_ms_mean"] > 0


def test_policy_controller_figures_keep_their_keys():
    torch.manual_seed(0)
    policy = make_policy("mlp", obs_dim=6, action_dim=2, n_obs_steps=2, horizon=8, n_action_steps=4)
    policy.fit_normalizer(np.random.default_rng(0).normal(size=(10, 6)), np.random.default_rng(1).normal(size=(10, 2)))
    controller = PolicyController(policy)
    assert controller.info() == {"policy": "mlp", "plans": 0, "plan_ms_mean": 0.0, "plan_ms_max": 0.0, "nfe_mean": 0.0}
    env = make_env(ENV_ID, {"max_steps": 9})
    run = run_episode(env, controller, 3)
    env.close()
    info = controller.info()
    assert list(info) == ["policy", "act_ms_mean", "plans", "plan_ms_mean", "plan_ms_max", "nfe_mean"]
    assert run.steps == 9 and info["plans"] == 3  # re-plans at steps 0, 4 and 8
    assert memory_snapshot(controller) is None


def test_no_module_reads_the_policys_plan_queue():
    readers = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if "_action_queue" in path.read_text() and path.name != "base.py"
    ]
    assert readers == []
