"""Tests for the MLP behaviour-cloning policy: it learns a tiny dataset; config checks; padding mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embodia.data import Episode
from embodia.data.windows import EpisodeWindows
from embodia.policies import make_policy
from embodia.policies.mlp import MLPConfig

torch.set_num_threads(1)

DIMS = {"obs_dim": 2, "action_dim": 2, "n_obs_steps": 2, "horizon": 8, "n_action_steps": 4}


def point_episodes(n: int = 8, t: int = 25) -> list[Episode]:
    """A point steered to the origin by ``a = -0.5 x`` (a deterministic map the MLP can learn)."""
    rng = np.random.default_rng(0)
    episodes = []
    for _ in range(n):
        x = rng.uniform(-1, 1, size=2)
        states, actions = [x], []
        for _ in range(t):
            a = -0.5 * states[-1]
            actions.append(a)
            states.append(states[-1] + 0.2 * a)
        episodes.append(
            Episode(
                observations={"state": np.array(states, np.float32)},
                actions=np.array(actions, np.float32),
                rewards=np.zeros(t),
                terminations=np.zeros(t, bool),
                truncations=np.zeros(t, bool),
            )
        )
    return episodes


def test_loss_decreases_on_a_tiny_dataset():
    windows = EpisodeWindows(point_episodes(), n_obs_steps=2, horizon=8)
    torch.manual_seed(0)
    policy = make_policy("mlp", **DIMS, obs_keys=windows.obs_keys, hidden_dims=(64, 64))
    policy.fit_normalizer(windows.obs, windows.actions)
    opt = torch.optim.Adam(policy.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    eval_batch = windows.get_batch(np.arange(len(windows)))
    with torch.no_grad():
        first = float(policy.compute_loss(eval_batch)[0])
    for _ in range(300):
        loss, terms = policy.compute_loss(windows.sample(64, rng))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        last = float(policy.compute_loss(eval_batch)[0])
    assert last < 0.05 * first, (first, last)
    assert terms["mse"] == pytest.approx(loss.item())
    policy.eval()
    pred = policy.predict_action({"obs": eval_batch["obs"]})  # raw units: close to the demonstrations
    np.testing.assert_allclose(pred[:, 1].numpy(), eval_batch["action"][:, 1], atol=0.05)


def test_mask_padded_actions():
    rng = np.random.default_rng(0)
    batch = {
        "obs": rng.normal(size=(3, 2, 2)).astype(np.float32),
        "action": rng.normal(size=(3, 8, 2)).astype(np.float32),
        "action_mask": np.ones((3, 8), bool),
    }
    batch["action_mask"][:, 6:] = False
    changed = batch | {"action": batch["action"].copy()}
    changed["action"][:, 6:] += 10.0  # only padded entries differ
    for mask_padded in (True, False):
        torch.manual_seed(0)
        policy = make_policy("mlp", **DIMS, hidden_dims=(8,), mask_padded_actions=mask_padded)
        policy.fit_normalizer(rng.normal(size=(10, 2)), rng.normal(size=(10, 2)))
        same = policy.compute_loss(batch)[0].item() == policy.compute_loss(changed)[0].item()
        assert same is mask_padded


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"hidden_dims": (0,)}, "hidden_dims must be integers >= 1"),
        ({"hidden_dims": 64}, "sequence of ints"),
        ({"dropout": 1.0}, "dropout"),
        ({"mask_padded_actions": 1}, "mask_padded_actions must be a bool"),
    ],
)
def test_config_errors(overrides, match):
    with pytest.raises(ValueError, match=match):
        MLPConfig(**DIMS, **overrides)


def test_no_hidden_layers_is_linear():
    policy = make_policy("mlp", **DIMS, hidden_dims=())
    assert len(policy.net) == 1 and policy.num_parameters() == (2 * 2 + 1) * 16
