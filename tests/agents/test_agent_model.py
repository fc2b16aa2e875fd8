"""The learned agent end to end: memory replay, training rows vs. live rows, gradients, checkpoints, hand-over."""

import dataclasses
import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from embodia.agents.agent import MemoryAgent
from embodia.agents.data import AgentWindows
from embodia.agents.handover import HandoverController
from embodia.agents.model import AgentConfig, AgentPolicy
from embodia.envs.experts import make_expert
from embodia.policies.base import CheckpointError, Policy
from embodia.policies.factory import policy_config
from embodia.runtime.policy_controller import policy_controller
from embodia.training.config import TrainConfig
from embodia.training.entry import train
from embodia.training.run import RunOptions

TINY = {"embed_dim": 16, "width": 16, "inner": policy_config("mlp", hidden_dims=(32, 32))}


def tiny_agent(**kwargs) -> AgentPolicy:
    torch.manual_seed(0)
    return AgentPolicy(AgentConfig(**{**TINY, **kwargs}))


def test_training_items_recompute_the_live_memory_contents(return_episodes):
    """End to end: item contents re-encoded from their source observations equal what the live memory returned."""
    policy = tiny_agent(memory="full")
    agent = MemoryAgent(policy)
    episode = return_episodes[0]
    obs = episode.observations
    agent.reset()
    live = [agent.observe({k: v[t] for k, v in obs.items()}) for t in range(len(episode.actions) + 1)]
    windows = AgentWindows(policy, [episode])
    np.testing.assert_array_equal(windows.obs, np.stack([s.row for s in live]))  # same rows, same code
    idx = np.arange(0, len(windows), 7)
    batch = windows.get_batch(idx)
    rows = torch.from_numpy(batch["obs"])
    with torch.no_grad():
        embeddings, tokens = policy._item_contents(rows, torch.from_numpy(batch["item_obs"]))
    steps = idx  # one episode: sample i is step i; window position To-1 is the step itself
    want_e = np.stack([live[t].item_embeddings for t in steps])
    want_t = np.stack([live[t].item_tokens for t in steps])
    np.testing.assert_allclose(embeddings[:, -1].numpy(), want_e, atol=2e-5)
    np.testing.assert_allclose(tokens[:, -1].numpy(), want_t, atol=2e-5)
    valid = policy.layout.items(rows[:, -1])["valid"]
    assert valid.any(), "the memory returned no item at all"
    stats = agent.memory.stats()
    assert stats["nodes"] >= 2 and stats["leaves"] > 10 and stats["stm_entries"] >= 1


@pytest.mark.parametrize("inner", ["ebt", "mlp"])
def test_policy_loss_reaches_encoder_R_and_read_init_through_the_memory(return_episodes, inner):
    """With the cycle loss off, R and read_init get gradients only from the policy loss through the memory items."""
    policy = tiny_agent(memory="full", cycle_weight=0.0, inner=policy_config(inner))
    windows = AgentWindows(policy, return_episodes[:1])
    policy.fit_normalizer(windows.obs, windows.actions)
    batch = windows.sample(32, np.random.default_rng(0))
    items = policy.layout.items(torch.from_numpy(batch["obs"]).reshape(64, -1))
    assert items["first"].any() and (items["valid"] & ~items["first"]).any()
    policy.train()
    loss, terms = policy.compute_loss(batch)
    loss.backward()
    assert np.isfinite(terms["policy_loss"]) and "cycle_loss" not in terms

    def grad(params):
        return sum(float(p.grad.abs().sum()) for p in params if p.grad is not None)

    assert grad(policy.encoder.parameters()) > 0
    assert grad(policy.memory.tokens.R.parameters()) > 0
    assert grad([policy.memory.tokens.read_init]) > 0
    # LTM retrieval is a discrete choice no loss reaches: its key projection is fixed, not a dead trainable part
    assert not any(p.requires_grad for p in policy.memory.key_projection.parameters())
    # every parameter left trainable gets a gradient from the loss it is trained by (here the policy loss alone,
    # except π_v, which only the cycle loss reaches)
    cycle_only = {id(p) for p in policy.memory.tokens.pi_v.parameters()}
    dead = [n for n, p in policy.named_parameters() if p.requires_grad and id(p) not in cycle_only and p.grad is None]
    assert not dead, dead


def test_loss_decreases_and_checkpoint_round_trips(tmp_path, return_episodes):
    policy = tiny_agent(memory="full", act_from_phase=1)
    windows = AgentWindows(policy, return_episodes)
    # samples: actions chosen in the return phase (the phase before the step), the hand-over's own steps
    chosen_in = np.concatenate([np.r_[0, ep.infos["phase"][:-1]] for ep in return_episodes])
    assert len(windows) == int((chosen_in >= 1).sum())
    for i in range(0, len(windows), 50):
        e, t = windows.locate(i)
        assert t > 0 and return_episodes[e].infos["phase"][t - 1] == 1
    policy.fit_normalizer(windows.obs, windows.actions)
    opt = torch.optim.AdamW(policy.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    fixed = windows.get_batch(np.arange(0, len(windows), max(1, len(windows) // 64)))
    policy.train()
    first = float(policy.compute_loss(fixed)[0].detach())
    for _ in range(60):
        loss, _ = policy.compute_loss(windows.sample(32, rng))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(policy.compute_loss(fixed)[0].detach()) < 0.7 * first
    path = policy.save(tmp_path / "agent.pt")
    loaded = Policy.load(path)
    assert isinstance(loaded, AgentPolicy) and loaded.config == policy.config
    policy.eval()
    a, b = MemoryAgent(policy), MemoryAgent(loaded)
    obs = {k: v[0] for k, v in return_episodes[0].observations.items()}
    a.reset(seed=1)
    b.reset(seed=1)
    np.testing.assert_array_equal(a.act(obs), b.act(obs))
    with pytest.raises(CheckpointError, match="memory: checkpoint 'full', expected 'none'"):
        AgentPolicy.load_matching(path, AgentConfig(**{**TINY, "memory": "none", "act_from_phase": 1}))


def test_handover_agent_watches_then_acts(tmp_path, return_episodes):
    policy = tiny_agent(memory="stm", act_from_phase=1)
    policy.fit_normalizer(np.zeros((2, policy.config.obs_dim)), np.stack([-np.ones(3), np.ones(3)]))
    path = policy.save(tmp_path / "agent.pt")
    env = gym.make("embodia/UrbanNav-Return-v0", max_steps=1200)
    controller = policy_controller(path, env)
    assert isinstance(controller, HandoverController)
    obs, _ = env.reset(seed=0)
    controller.reset(seed=0)
    steps, done = 0, False
    while not done:
        obs, _, terminated, truncated, info = env.step(controller.act(obs))
        steps += 1
        done = terminated or truncated
    figures = controller.info()
    assert figures["handover_step"] > 0 and figures["memory"] == "stm"
    assert controller.agent.memory.step == steps  # the agent observed every step, also while the expert drove
    assert info["metrics"]["phases_done"] >= 1
    env.close()
    with pytest.raises(ValueError, match="phased task"):
        HandoverController(gym.make("embodia/PushBlock-v0"), make_expert(env), MemoryAgent(policy), 1)
    follow = gym.make("embodia/UrbanNav-v0")
    follow.reset(seed=0)
    with pytest.raises(ValueError, match="has 1 phase"):  # the expert would drive all of it
        policy_controller(path, follow).reset(seed=0)


def test_item_rows_map_to_their_source_steps_across_episodes(return_episodes):
    """item_obs of padded and later-episode windows are the raw rows of the steps that wrote the items."""
    policy = tiny_agent(memory="full", n_obs_steps=3)
    windows = AgentWindows(policy, return_episodes)
    first_len = len(return_episodes[0].actions) + 1  # rows of episode 0; episode 1 starts here
    idx = np.array([0, 1, len(return_episodes[0].actions), len(return_episodes[0].actions) + 1])  # ep 1: steps 0, 1
    batch = windows.get_batch(idx)
    raw = policy.layout.raw_width
    for b, i in enumerate(idx):
        e, t = windows.locate(int(i))
        start = 0 if e == 0 else first_len
        for k in range(3):
            step = max(t - 2 + k, 0)  # window positions before step 0 repeat step 0
            np.testing.assert_array_equal(batch["obs"][b, k], windows.obs[start + step])
            steps = policy.layout.items_numpy(batch["obs"][b, k][None])[0]
            for j, s in enumerate(steps):
                if s >= 0:
                    assert s <= step
                    np.testing.assert_array_equal(batch["item_obs"][b, k, j], windows.obs[start + s, :raw])


def test_agent_rejects_bad_observations(return_episodes):
    agent = MemoryAgent(tiny_agent(memory="full"))
    obs = {k: v[0] for k, v in return_episodes[0].observations.items()}
    agent.reset()
    with pytest.raises(ValueError, match="missing \\['pose'\\]"):
        agent.act({k: v for k, v in obs.items() if k != "pose"})
    with pytest.raises(ValueError, match="'depth' has 10 values"):
        agent.act({**obs, "depth": np.ones(10, dtype=np.float32)})
    with pytest.raises(ValueError, match="NaN or inf"):
        agent.act({**obs, "pose": np.array([np.nan, 0, 0], dtype=np.float32)})


def test_train_trains_an_agent_and_resume_names_a_config_mismatch(tmp_path, return_demos):
    run = tmp_path / "run"
    config = TrainConfig(steps=6, batch_size=8, lr=1e-3, warmup_steps=1)
    kwargs = {**TINY, "memory": "no-graph", "act_from_phase": 1}
    result = train(return_demos, policy_config("agent", **kwargs), run, config, progress=False)
    assert result.steps == 6
    summary = json.loads((run / "summary.json").read_text())
    assert summary["policy"] == "agent"
    assert (run / "tb").is_dir() and (run / "policy.pt").is_file()
    more = TrainConfig(steps=8, batch_size=8, lr=1e-3, warmup_steps=1)
    resumed = train(return_demos, policy_config("agent", **kwargs), run, more, RunOptions(resume=True), progress=False)
    assert resumed.steps == 8
    with pytest.raises(ValueError, match="memory"):
        train(
            return_demos, policy_config("agent", **{**kwargs, "memory": "full"}), run,
            TrainConfig(steps=10, batch_size=8, lr=1e-3, warmup_steps=1), RunOptions(resume=True), progress=False,
        )  # fmt: skip


def test_agent_with_rgb_encodes_the_camera(return_episodes):
    """The optional rgb input: a different image gives a different embedding; a missing image is named."""
    policy = tiny_agent(memory="none", rgb_size=16)
    agent = MemoryAgent(policy)
    obs = {k: v[0] for k, v in return_episodes[0].observations.items()}
    rng = np.random.default_rng(0)
    first = {**obs, "rgb": rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)}
    second = {**obs, "rgb": rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)}
    agent.reset()
    v1 = agent.observe(first).embedding
    v2 = agent.observe(second).embedding
    assert not np.allclose(v1, v2)
    with pytest.raises(ValueError, match="missing \\['rgb'\\]"):
        agent.observe(obs)
    recorded_with_rgb = dataclasses.replace(return_episodes[0], env_kwargs={"sensor": {"rgb": True}})
    assert AgentPolicy.data_defaults(recorded_with_rgb) == {"rgb_size": 64}
