"""The modular agent: config checks, the fixed descriptor, and the handover protocol in the real env."""

import numpy as np
import pytest

from embodia.agents.ablation import MEMORY_MODES
from embodia.agents.modular import ModularAgent, ModularAgentConfig, ray_descriptor
from embodia.agents.perception import RayGeometry
from embodia.envs.nav.expert import UrbanNavExpert

RETURN_ENV = "embodia/UrbanNav-Return-v0"


def handover(env, agent, seed, max_agent_steps=None):
    """The expert drives the outbound phase (the agent observes every step), then the agent acts to the end.

    Returns the episode's final info, the agent's actions and the length of its graph plan at each of them.
    """
    expert = UrbanNavExpert(env)
    obs, _ = env.reset(seed=seed)
    expert.reset()
    agent.reset()
    while env.unwrapped.phase_index == 0:
        agent.observe(obs)
        obs, _, terminated, truncated, info = env.step(expert.act(obs))
        assert not (terminated or truncated)
    actions, plans = [], []
    while max_agent_steps is None or len(actions) < max_agent_steps:
        action = agent.act(obs)
        actions.append(action)
        plans.append(len(agent.plan))
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    return info, actions, plans


def random_obs(seed=0, elevations=8, azimuths=64):
    rng = np.random.default_rng(seed)
    return {
        "depth": rng.uniform(1.0, 40.0, (elevations, azimuths)).astype(np.float32),
        "semantic": rng.integers(0, 17, (elevations, azimuths)).astype(np.int16),
        "pose": np.array([3.0, -2.0, 0.7], dtype=np.float32),
        "instruction": "Now go back to the red tower you passed, and stop there.",
    }


# ---------------------------------------------------------------------- config
def test_config_defaults_are_valid():
    cfg = ModularAgentConfig()
    assert cfg.memory == "full" and cfg.embed_dim == 64
    for mode in MEMORY_MODES:
        assert ModularAgentConfig(memory=mode).memory == mode


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("memory", "everything", "memory mode must be one of"),
        ("embed_dim", 0, "embed_dim must be an integer >= 1"),
        ("embed_dim", 8.0, "embed_dim must be an integer >= 1"),
        ("embed_dim", True, "embed_dim must be an integer >= 1"),
        ("descriptor_seed", -1, "descriptor_seed must be an integer >= 0"),
        ("stop_distance", 0.0, "stop_distance must be > 0"),
        ("lookahead", -1.0, "lookahead must be > 0"),
        ("yaw_gain", float("nan"), "yaw_gain must be a finite number"),
        ("corner_radius", "8", "corner_radius must be a finite number"),
        ("node_delta", 2.5, r"node_delta must be in \[0, 2\]"),
        ("cruise_speed", 1.5, "cruise_speed must be <= 1"),
        ("min_speed", 0.9, "min_speed must be <= cruise_speed"),
        ("turn_in_place_deg", 200.0, "turn_in_place_deg must be <= 180"),
    ],
)
def test_config_rejects_bad_values(field, value, match):
    kwargs = {field: value}
    if field == "min_speed":
        kwargs["cruise_speed"] = 0.5
    with pytest.raises(ValueError, match=match):
        ModularAgentConfig(**kwargs)


# ---------------------------------------------------------------------- descriptor
def test_ray_descriptor_is_deterministic_and_unit_norm():
    obs = random_obs()
    a = ray_descriptor(obs, 64, seed=0)
    b = ray_descriptor({k: np.copy(v) if isinstance(v, np.ndarray) else v for k, v in obs.items()}, 64, seed=0)
    assert a.shape == (64,) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert not np.allclose(a, ray_descriptor(obs, 64, seed=1))
    assert not np.allclose(a, ray_descriptor(random_obs(1), 64, seed=0))
    assert ray_descriptor(obs, 16).shape == (16,)


def test_ray_descriptor_is_heading_invariant_and_defined_for_an_empty_view():
    obs = random_obs()
    shift = 5  # the robot turned 5 columns counter-clockwise: the world looks shifted the other way
    turned = dict(obs, depth=np.roll(obs["depth"], -shift, axis=1), semantic=np.roll(obs["semantic"], -shift, axis=1))
    turned["pose"] = obs["pose"] + np.array([0.0, 0.0, shift * 2 * np.pi / 64], dtype=np.float32)
    np.testing.assert_allclose(ray_descriptor(turned), ray_descriptor(obs), atol=1e-6)
    empty = {"depth": np.full((8, 64), 40.0), "semantic": np.zeros((8, 64), dtype=np.int16)}
    v = ray_descriptor(empty)
    assert np.isfinite(v).all() and np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"depth": None}, "no 'depth'"),
        ({"semantic": None}, "no 'semantic'"),
        ({"depth": np.ones((8, 32))}, "one shape"),
        ({"depth": np.full((8, 64), np.nan)}, "finite"),
        ({"semantic": np.zeros((8, 64), dtype=np.float32)}, "integer class ids"),
        ({"pose": np.array([0.0, np.inf, 0.0])}, "pose must be 3 finite numbers"),
    ],
)
def test_ray_descriptor_rejects_bad_observations(change, match):
    with pytest.raises(ValueError, match=match):
        ray_descriptor(changed_obs(change))


def changed_obs(change: dict) -> dict:
    """A random observation with ``change`` applied (a None value deletes the key)."""
    obs = random_obs()
    for key, value in change.items():
        if value is None:
            del obs[key]
        else:
            obs[key] = value
    return obs


def test_ray_descriptor_rejects_bad_sizes():
    with pytest.raises(ValueError, match="dim must be an integer >= 1"):
        ray_descriptor(random_obs(), 0)
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        ray_descriptor(random_obs(), 8, seed=-3)


# ---------------------------------------------------------------------- the agent
@pytest.mark.parametrize("mode", MEMORY_MODES)
def test_act_returns_a_valid_action(mode):
    agent = ModularAgent(ModularAgentConfig(memory=mode))
    assert "act_ms_mean" not in agent.info()
    for seed in range(3):
        action = agent.act(random_obs(seed))
        assert action.shape == (3,) and action.dtype == np.float32
        assert np.all(np.abs(action) <= 1.0)
    info = agent.info()
    assert info["agent"] == "modular" and info["memory"] == mode and info["act_ms_mean"] > 0
    stats = agent.memory_stats()
    assert "junctions" in stats
    assert ("nodes" in stats) == (mode != "none")
    agent.reset()
    assert agent.target is None and agent.anchor is None


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"depth": None}, "no 'depth'"),
        ({"pose": None}, "no 'pose'"),
        ({"depth": np.ones((8, 63), dtype=np.float32)}, "shape"),
        ({"semantic": np.zeros((4, 64), dtype=np.int16)}, "shape"),
        ({"pose": np.array([0.0, 1.0])}, "pose"),
        ({"instruction": None}, "instruction"),
        ({"instruction": 7}, "instruction"),
    ],
)
def test_bad_observations_raise(change, match):
    agent = ModularAgent()
    obs = changed_obs(change)
    with pytest.raises(ValueError, match=match):
        agent.act(obs)
    if "instruction" not in change:
        with pytest.raises(ValueError, match=match):
            agent.observe(obs)
    assert agent.memory.step == 0  # nothing was written


def test_other_sensor_geometry(make_env):
    env = make_env(RETURN_ENV, sensor={"elevations": 4, "azimuths": 32})
    agent = ModularAgent(geometry=RayGeometry.from_env(env))
    with pytest.raises(ValueError, match="shape"):
        agent.observe(random_obs())
    obs, _ = env.reset(seed=0)  # the agent works with the env's own fan
    for _ in range(5):
        action = agent.act(obs)
        assert action.shape == (3,) and np.all(np.abs(action) <= 1.0)
        obs, *_ = env.step(action)


# Seeds verified with the full memory: 0 and 22 return to a corner landmark at the start junction (22 at the
# city's corner), 2 and 3 to mid-block landmarks after a turn / straight through intersections.
@pytest.mark.parametrize("seed", [0, 2, 22])
def test_full_memory_agent_returns_to_the_landmark(make_env, seed):
    env = make_env(RETURN_ENV)
    agent = ModularAgent(ModularAgentConfig(memory="full"), RayGeometry.from_env(env))
    info, actions, plans = handover(env, agent, seed)
    assert info["metrics"]["tc"] == 1.0
    assert actions[-1][2] > 0 and all(a[2] < 0 for a in actions[:-1])  # it stopped, once
    assert info["metrics"]["collisions"] == 0
    lm = env.unwrapped.city.landmarks[env.unwrapped.task.phases[1].goal_landmark]
    assert np.linalg.norm(agent.target - lm.position) < 1.5
    stats = agent.memory_stats()
    assert stats["nodes"] >= 3 and stats["junctions"] >= 2 and stats["leaves"] > 0
    assert min(plans[:-1]) >= 1  # it followed a graph path all the way (the stop step plans nothing)
    assert np.linalg.norm(agent.anchor - env.unwrapped.true_pose()[:2]) <= agent.config.stop_distance


def test_memoryless_agent_runs_the_handover(make_env):
    env = make_env(RETURN_ENV, max_steps=600)
    agent = ModularAgent(ModularAgentConfig(memory="none"), RayGeometry.from_env(env))
    info, actions, _ = handover(env, agent, 1)
    assert "metrics" in info and info["metrics"]["tc"] in (0.0, 1.0)
    assert all(a.shape == (3,) and a.dtype == np.float32 and np.all(np.abs(a) <= 1.0) for a in actions)
    stats = agent.memory_stats()
    assert agent.memory is None and stats["junctions"] == 0.0
    assert stats["locate_stm_rate"] == stats["locate_leaf_rate"] == 0.0  # no memory part located anything
    # "Now go back to ...": without memory it first turns around on the spot.
    assert actions[0][0] == 0.0 and abs(actions[0][1]) == 1.0


def test_graphless_agent_runs_the_handover(make_env):
    env = make_env(RETURN_ENV)
    agent = ModularAgent(ModularAgentConfig(memory="no-graph"), RayGeometry.from_env(env))
    _, actions, plans = handover(env, agent, 0, max_agent_steps=60)
    assert agent.memory_stats()["nodes"] == 0
    assert agent.target is not None and set(plans) == {0}
    assert all(a.shape == (3,) and np.all(np.abs(a) <= 1.0) for a in actions)
