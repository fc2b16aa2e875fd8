"""Contract suite run on every policy of ``embodia.policies``: shapes, save/load round trip, golden outputs.

Agents (``embodia.agents``) have their own tests in ``tests/agents``.

Golden files ``tests/policies/golden/<name>.npz`` hold the inputs and the outputs of a tiny, seeded policy
(actions at initialisation, the loss, actions after three Adam steps). A new policy, or an intended change of
a policy's numbers, needs them (re)generated; review the diff of the numbers before committing::

    EMBODIA_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/policies/test_policies.py -k golden -q
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from embodia.policies import Policy, available_policies, make_policy
from embodia.policies.factory import OTHER_MODULES

torch.set_num_threads(1)

GOLDEN_DIR = Path(__file__).parent / "golden"
DIMS = {"obs_dim": 5, "action_dim": 2, "n_obs_steps": 2, "horizon": 8, "n_action_steps": 4}
TINY: dict[str, dict] = {
    "mlp": {"hidden_dims": (32, 32)},
    "ebt": {},
    "diffusion": {"d_model": 32, "step_embed_dim": 32},
}
"""Per-policy config overrides that keep the suite fast (policies without an entry use their defaults)."""
POLICIES = [name for name in available_policies() if name not in OTHER_MODULES]  # agents: tests/agents


def golden_inputs() -> dict[str, np.ndarray]:
    """Fixed inputs: data to fit the normaliser on, and one training batch."""
    rng = np.random.default_rng(1234)
    return {
        "fit_obs": rng.normal(0.0, 3.0, size=(64, 5)).astype(np.float32),
        "fit_action": rng.uniform(-2.0, 5.0, size=(64, 2)).astype(np.float32),
        "obs": rng.normal(0.0, 3.0, size=(4, 2, 5)).astype(np.float32),
        "action": rng.uniform(-2.0, 5.0, size=(4, 8, 2)).astype(np.float32),
    }


def build(name: str, inputs: dict[str, np.ndarray]) -> Policy:
    torch.manual_seed(0)
    policy = make_policy(name, **DIMS, **TINY.get(name, {}))
    return policy.fit_normalizer(inputs["fit_obs"], inputs["fit_action"])


def predict(policy: Policy, obs: np.ndarray, seed: int = 1) -> np.ndarray:
    torch.manual_seed(seed)  # stochastic policies draw from torch's global RNG
    return policy.predict_action({"obs": obs}).numpy()


def train_steps(policy: Policy, batch: dict[str, np.ndarray], steps: int, seed: int = 2) -> list[float]:
    torch.manual_seed(seed)
    opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
    losses = []
    policy.train()
    for _ in range(steps):
        loss, _ = policy.compute_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def golden_run(name: str) -> dict[str, np.ndarray]:
    inputs = golden_inputs()
    policy = build(name, inputs)
    policy.eval()
    actions_init = predict(policy, inputs["obs"])
    torch.manual_seed(3)
    loss_init, _ = policy.compute_loss({"obs": inputs["obs"], "action": inputs["action"]})
    train_steps(policy, {"obs": inputs["obs"], "action": inputs["action"]}, steps=3)
    policy.eval()
    return inputs | {
        "actions_init": actions_init,
        "loss_init": np.float64(loss_init.item()),
        "actions_trained": predict(policy, inputs["obs"]),
    }


def test_registry_is_not_empty():
    assert "mlp" in POLICIES


@pytest.mark.parametrize("name", POLICIES)
def test_shapes_and_loss(name: str):
    inputs = golden_inputs()
    policy = build(name, inputs)
    with torch.no_grad():  # inference must work without autograd (EBT re-enables it internally)
        actions = policy.predict_action({"obs": inputs["obs"]})
    assert actions.shape == (4, 8, 2) and actions.dtype == torch.float32 and not actions.requires_grad
    loss, terms = policy.compute_loss({"obs": inputs["obs"], "action": inputs["action"]})
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.requires_grad
    assert terms and all(isinstance(k, str) and isinstance(v, float) for k, v in terms.items())
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().max() > 0 for p in policy.parameters())


@pytest.mark.parametrize("name", POLICIES)
def test_save_load_round_trip(name: str, tmp_path: Path):
    inputs = golden_inputs()
    policy = build(name, inputs)
    train_steps(policy, {"obs": inputs["obs"], "action": inputs["action"]}, steps=2)  # weights off their init
    policy.eval()
    path = policy.save(tmp_path / f"{name}.pt")
    loaded = Policy.load(path)
    assert type(loaded) is type(policy) and loaded.config == policy.config and not loaded.training
    for key, value in policy.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    np.testing.assert_array_equal(predict(loaded, inputs["obs"]), predict(policy, inputs["obs"]))
    assert type(policy).load(path).config == policy.config


@pytest.mark.parametrize("name", POLICIES)
def test_golden_outputs(name: str):
    path = GOLDEN_DIR / f"{name}.npz"
    result = golden_run(name)
    if os.environ.get("EMBODIA_REGEN_GOLDEN") == "1":
        GOLDEN_DIR.mkdir(exist_ok=True)
        np.savez(path, **result)
    if not path.exists():
        pytest.fail(f"no golden file {path}; generate it with EMBODIA_REGEN_GOLDEN=1 (see this module's docstring)")
    with np.load(path) as golden:
        assert sorted(golden.files) == sorted(result)
        for key in ("fit_obs", "fit_action", "obs", "action"):
            np.testing.assert_array_equal(golden[key], result[key], err_msg=f"golden input {key} changed")
        for key in ("actions_init", "loss_init", "actions_trained"):
            np.testing.assert_allclose(result[key], golden[key], rtol=1e-4, atol=1e-5, err_msg=f"{name}: {key}")
