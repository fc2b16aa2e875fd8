"""The learned navigator: features, config checks, train/test feature identity in the real env, gradients, loading."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from embodia.agents.handover import HandoverController
from embodia.agents.navigator import NavigatorAgent, NavigatorConfig, NavigatorPolicy, NavigatorWindows
from embodia.agents.plan_features import NUM_FEATURES, plan_features
from embodia.agents.planner import Plan
from embodia.data.episodes import read_episode
from embodia.envs.experts import make_expert
from embodia.policies.base import Policy
from embodia.policies.factory import make_policy, policy_config
from embodia.runtime.policy_controller import policy_controller
from embodia.runtime.rollout import EpisodeSpec, RolloutWorker

RETURN_ENV = "embodia/UrbanNav-Return-v0"


def fitted(policy: NavigatorPolicy, seed: int = 0) -> NavigatorPolicy:
    rng = np.random.default_rng(seed)
    policy.fit_normalizer(rng.uniform(-1, 1, (64, NUM_FEATURES)), rng.uniform(-1, 1, (64, 3)))
    return policy


# ---------------------------------------------------------------------- features
def test_features_of_a_known_goal_are_in_the_robot_frame():
    depth = np.full((8, 64), 40.0)
    depth[3, 0] = 4.0  # an obstacle straight ahead, on a row the planner reads
    plan = Plan(target=np.array([0.0, 10.0]), anchor=np.array([0.0, 5.0]), waypoints=np.array([[0.0, 5.0]]))
    yaw = math.pi / 2  # facing +y: the anchor is straight ahead
    f = plan_features(plan, np.array([0.0, 3.0]), np.zeros(2), yaw, depth, np.array([3, 4]), 40.0)
    assert f.shape == (NUM_FEATURES,) and f.dtype == np.float32
    np.testing.assert_allclose(f[:6], [1.0, 1.0, 0.0, 1.0, 0.0, 0.5], atol=1e-6)
    assert f[6] == pytest.approx(0.1) and np.all(f[7:] == 1.0)  # sector 0 is straight ahead


def test_features_of_an_unknown_goal_hold_only_free_space():
    depth = np.full((8, 64), 20.0)
    f = plan_features(Plan(), None, np.zeros(2), 0.0, depth, np.array([3]), 40.0)
    np.testing.assert_array_equal(f[:5], 0.0)
    assert f[5] == pytest.approx(3.0) and np.allclose(f[6:], 0.5)


# ---------------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"inner": policy_config("ebt-dsm")}, "inner policy must be one of"),
     ({"memory": "most"}, "memory mode must be one of"), ({"obs_dim": 5}, "feature width"),
     ({"inner": policy_config("mlp", horizon=12)}, "horizon .* comes from the navigator config"),
     ({"act_from_phase": -1}, "act_from_phase"), ({"azimuths": 0}, "azimuth"), ({"azimuths": 72}, "multiple of 16")],
)  # fmt: skip
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NavigatorConfig(**kwargs)


def test_config_reads_the_checkpoint_layout_before_typed_inner_configs():
    config = NavigatorConfig(act_from_phase=1)
    assert config.inner.energy_form == "residual" and NavigatorConfig.from_dict(config.to_dict()) == config
    old = {k: v for k, v in config.to_dict().items() if k != "inner"}
    assert NavigatorConfig.from_dict({**old, "policy": "ebt", "policy_kwargs": "{}"}) == config  # INNER_DEFAULTS
    with pytest.raises(ValueError, match="JSON object"):
        NavigatorConfig.from_dict({**old, "policy": "ebt", "policy_kwargs": "[1]"})


# ---------------------------------------------------------------------- train and test see the same features
class RecordingNavigator(NavigatorAgent):
    """Keeps every step's features (what the policy was given in the rollout)."""

    def reset(self, seed=None):
        super().reset(seed)
        self.log = []

    def observe(self, obs, *, plan=False):
        features = super().observe(obs, plan=plan)
        self.log.append(features)
        return features


def test_replayed_features_equal_the_rollouts(tmp_path, return_episodes):
    torch.manual_seed(0)
    policy = fitted(make_policy("navigator", act_from_phase=1, inner=policy_config("mlp")))
    outbound = int(np.argmax(np.asarray(return_episodes[0].infos["phase"]) >= 1)) + 1  # steps until the hand-over
    agents = []

    def controller(env):
        agents.append(RecordingNavigator(policy))
        return HandoverController(env, make_expert(env), agents[-1], 1)

    worker = RolloutWorker(RETURN_ENV, {"max_episode_steps": outbound + 25}, controller)
    episode = read_episode(worker.run_episode(EpisodeSpec(0, 0), tmp_path).path)  # seed 0: the demo's city
    worker.close()
    rollout = np.stack(agents[0].log)  # one row per observation the agent saw (not the final one)
    assert rollout[:, 0].max() == 1.0 and rollout[:outbound, 0].max() == 0.0  # planned once it acts
    windows = NavigatorWindows(policy, [episode])
    np.testing.assert_array_equal(windows.obs[: len(rollout)], rollout)
    assert len(windows) == episode.num_steps - int(np.argmax(np.asarray(episode.infos["phase"]) >= 1)) - 1


def test_replayed_features_are_reused_only_for_the_same_episode_and_settings(return_episodes):
    import dataclasses

    from embodia.agents import navigator

    navigator._feature_cache.clear()
    episodes = return_episodes[:2]
    policy = fitted(make_policy("navigator", act_from_phase=1, inner=policy_config("mlp")))
    first = NavigatorWindows(policy, episodes)
    again = NavigatorWindows(policy, episodes)
    assert (first.cache_hits, again.cache_hits) == (0, 2)
    np.testing.assert_array_equal(first.obs, again.obs)
    blind_policy = fitted(make_policy("navigator", act_from_phase=1, memory="none", inner=policy_config("mlp")))
    blind = NavigatorWindows(blind_policy, episodes)
    assert blind.cache_hits == 0  # other settings, other features
    depth = episodes[0].observations["depth"].copy()
    depth[-1] *= 0.5  # another episode that differs in one observation
    changed = dataclasses.replace(episodes[0], observations={**episodes[0].observations, "depth": depth})
    assert NavigatorWindows(policy, [changed]).cache_hits == 0


def test_memoryless_navigator_locates_nothing_out_of_view(return_episodes):
    policy = fitted(make_policy("navigator", act_from_phase=1, memory="none", inner=policy_config("mlp")))
    with_memory = fitted(make_policy("navigator", act_from_phase=1, inner=policy_config("mlp")))
    blind = NavigatorWindows(policy, return_episodes[:1])
    seeing = NavigatorWindows(with_memory, return_episodes[:1])
    acting = blind.get_batch(np.arange(len(blind)))["obs"][:, -1]
    assert seeing.get_batch(np.arange(len(seeing)))["obs"][:, -1, 0].mean() == 1.0  # memory: always located
    assert acting[0, 0] == 0.0 and acting[:, 0].mean() < 1.0  # the landmark passed long ago is out of view
    np.testing.assert_array_equal(blind.obs[:, 6:], seeing.obs[:, 6:])  # the same free space


# ---------------------------------------------------------------------- learning
@pytest.mark.parametrize("inner", ["ebt", "diffusion", "mlp"])
def test_every_parameter_gets_a_gradient(inner):
    torch.manual_seed(0)
    policy = fitted(make_policy("navigator", inner=NavigatorConfig.default_inner(inner))).train()
    rng = np.random.default_rng(1)
    c = policy.config
    batch = {"obs": rng.uniform(-1, 1, (16, c.n_obs_steps, NUM_FEATURES)), "action": rng.uniform(-1, 1, (16, 16, 3))}
    loss, _ = policy.compute_loss(batch)
    loss.backward()
    missing = [n for n, p in policy.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not missing, f"parameters without a gradient: {missing}"
    assert policy.num_parameters() == policy.inner.num_parameters()  # the memory has no trained parameter here


def test_checkpoint_loads_as_a_handover_controller(tmp_path):
    import gymnasium as gym

    policy = fitted(make_policy("navigator", act_from_phase=1, inner=policy_config("mlp")))
    path = policy.save(tmp_path / "policy.pt")
    loaded = Policy.load(path)
    assert isinstance(loaded, NavigatorPolicy) and loaded.config == policy.config
    env = gym.make(RETURN_ENV)
    try:
        assert isinstance(policy_controller(path, env), HandoverController)
        with pytest.raises(ValueError, match="hand-over needs the env"):
            policy_controller(path)
    finally:
        env.close()
    saved = fitted(make_policy("navigator", inner=policy_config("mlp"))).save(tmp_path / "b.pt")
    assert isinstance(policy_controller(saved), NavigatorAgent)


def test_eval_media_reads_the_navigators_inner_energy(return_episodes):
    from embodia.replay.tb_media import ebt_descent_energies

    torch.manual_seed(0)
    policy = fitted(make_policy("navigator", act_from_phase=1))
    energies = ebt_descent_energies(policy, return_episodes[0], windows=4)
    assert len(energies) == policy.inner.config.inference_steps + 1 and all(map(math.isfinite, energies))


def test_an_unknown_landmark_is_a_one_line_error_and_an_unseen_one_means_exploring(return_episodes):
    policy = fitted(make_policy("navigator", act_from_phase=1, inner=policy_config("mlp")))
    agent = NavigatorAgent(policy)
    obs = {k: v[0] for k, v in return_episodes[0].observations.items()}
    with pytest.raises(ValueError, match="names no known landmark") as err:
        agent.act({**obs, "instruction": "Now go back to the purple dragon you passed."})
    assert "\n" not in str(err.value)
    from embodia.envs.nav.city import LANDMARK_CLASSES

    unseen = next(i for i in range(1, len(LANDMARK_CLASSES) + 1) if not (obs["semantic"] == i).any())
    instruction = f"Go back to the {LANDMARK_CLASSES[unseen - 1]} you passed."
    agent.reset()
    features = agent.observe({**obs, "instruction": instruction}, plan=True)
    assert features[0] == 0.0 and features[5] == 3.0  # not in memory: "not found", no exception
    assert agent.act({**obs, "instruction": instruction}).shape == (3,)
