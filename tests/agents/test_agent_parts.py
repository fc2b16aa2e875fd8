"""The agent's parts: tokenizer, perception, config checks and ablation switches."""

import gymnasium as gym
import numpy as np
import pytest

from embodia.agents.ablation import MEMORY_MODES, memory_config
from embodia.agents.model import AgentConfig, AgentPolicy
from embodia.agents.perception import RayGeometry, RayPerception
from embodia.agents.tokenizer import VOCABULARY, InstructionTokenizer, goal_landmark_class
from embodia.envs.nav.city import LANDMARK_CLASSES
from embodia.policies.factory import policy_config


@pytest.mark.parametrize("env_id", ["embodia/UrbanNav-v0", "embodia/UrbanNav-Return-v0"])
def test_tokenizer_covers_every_generated_instruction(env_id):
    env = gym.make(env_id)
    tok = InstructionTokenizer(max_tokens=64)
    texts = []
    for seed in range(8):
        env.reset(seed=seed)
        texts += [phase.instruction for phase in env.unwrapped.task.phases]
    env.close()
    for text in texts:
        ids = tok.encode(text)
        assert 1 not in ids, f"unknown word in {text!r}: {tok.decode(ids)}"
        assert tok.last_truncated == 0
        assert len(tok.words(text)) == int((ids > 0).sum())
    env = gym.make(env_id)
    env.reset(seed=3)
    task, city = env.unwrapped.task, env.unwrapped.city
    for phase in task.phases:
        assert goal_landmark_class(phase.instruction) == city.landmarks[phase.goal_landmark].class_id
    env.close()


def test_tokenizer_digits_unknown_words_and_padding():
    tok = InstructionTokenizer(max_tokens=6)
    ids = tok.encode("Go 12 zorks.")
    assert tok.decode(ids) == "go 1 2 <unk> ."
    assert ids[-1] == 0 and VOCABULARY[0] == "<pad>"
    tok.encode("go " * 10)
    assert tok.last_truncated == 4
    assert goal_landmark_class("turn left") is None
    assert goal_landmark_class("Stop at the red tower, not the blue kiosk") == LANDMARK_CLASSES.index("blue kiosk") + 1
    with pytest.raises(ValueError, match="max_tokens"):
        InstructionTokenizer(0)


def test_perception_points_lie_at_the_measured_ranges(make_env):
    env = make_env("embodia/UrbanNav-Return-v0")
    obs, _ = env.reset(seed=0)
    geometry = RayGeometry.from_env(env)
    percept = RayPerception(geometry)(obs)
    hit = obs["depth"].reshape(-1) < geometry.max_range
    x, y, _ = obs["pose"]
    origin = np.array([x, y, geometry.sensor_height])
    ranges = np.linalg.norm(percept.points - origin, axis=1)
    np.testing.assert_allclose(ranges, obs["depth"].reshape(-1)[hit], rtol=1e-5)
    assert set(percept.detection_classes) == set(np.unique(obs["semantic"])) - {0}
    # each detection is the mean of its class's points
    for cls, pos in zip(percept.detection_classes, percept.detection_positions, strict=True):
        np.testing.assert_allclose(pos, percept.points[percept.point_classes == cls].mean(0))
    with pytest.raises(ValueError, match="depth and semantic must have shape"):
        RayPerception(geometry)({**obs, "depth": obs["depth"][:, :10]})
    with pytest.raises(ValueError, match="no 'pose'"):
        RayPerception(geometry)({"depth": obs["depth"], "semantic": obs["semantic"]})


def test_memory_modes_switch_the_parts():
    assert memory_config("none") is None
    full = memory_config("full")
    assert full.use_octree and full.use_graph and full.use_stm and full.use_ltm
    assert not memory_config("stm").use_ltm and not memory_config("ltm").use_stm
    assert not memory_config("no-octree").use_octree and not memory_config("no-graph").use_graph
    with pytest.raises(ValueError, match="memory mode must be one of"):
        memory_config("everything")
    assert len(MEMORY_MODES) == 6


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"memory": "lots"}, "memory mode"),
        ({"inner": "ebt"}, "inner must be a policy config"),
        ({"inner": policy_config("navigator")}, "inner policy must be one of"),
        ({"inner": policy_config("mlp", horizon=12)}, "horizon .* comes from the agent config"),
        ({"obs_dim": 7}, "obs_dim 7 disagrees"),
        ({"embed_dim": 0}, "embed_dim"),
        ({"act_from_phase": -1}, "act_from_phase"),
        ({"cycle_weight": float("nan")}, "cycle_weight"),
    ],
)
def test_agent_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AgentConfig(**kwargs)


def test_agent_config_reads_the_checkpoint_layout_before_typed_inner_configs():
    config = AgentConfig(memory="stm", inner=policy_config("mlp", hidden_dims=(8,)))
    assert AgentConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["inner"]["policy"] == "mlp" and config.policy == "mlp"
    old = {k: v for k, v in config.to_dict().items() if k != "inner"}
    assert AgentConfig.from_dict({**old, "policy": "mlp", "policy_kwargs": '{"hidden_dims": [8]}'}) == config
    with pytest.raises(ValueError, match="policy_kwargs must be a JSON object"):
        AgentConfig.from_dict({**old, "policy": "mlp", "policy_kwargs": "{bad json"})


def test_every_memory_mode_builds_the_same_inner_policy():
    sizes = {}
    for mode in MEMORY_MODES:
        agent = AgentPolicy(AgentConfig(memory=mode, inner=policy_config("mlp")))
        sizes[mode] = sum(p.numel() for p in agent.inner.parameters())
        assert (agent.memory is None) == (mode == "none")
    assert len(set(sizes.values())) == 1
