"""Tests for the policy contract (embodia.policies.base) and the factory: errors with clear messages."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from embodia.policies import (
    CheckpointError,
    Policy,
    PolicyConfig,
    available_policies,
    get_policy_class,
    make_policy,
    registry,
)
from embodia.policies.factory import PLANNED_POLICIES, policy_module
from embodia.policies.mlp import MLPConfig, MLPPolicy

torch.set_num_threads(1)

DIMS = {"obs_dim": 5, "action_dim": 2, "n_obs_steps": 2, "horizon": 8, "n_action_steps": 4}
SPEC = r"\{'obs': \(B, 2, 5\) float, 'action': \(B, 8, 2\) float"


@dataclasses.dataclass(kw_only=True)
class DummyConfig(PolicyConfig):
    """Config of a policy that predicts a learned constant chunk."""

    scale: float = 1.0
    """Multiplier of the constant."""


class DummyPolicy(Policy):
    name = "test-dummy"
    config_class = DummyConfig

    def __init__(self, config: DummyConfig) -> None:
        super().__init__(config)
        self.chunk = nn.Parameter(torch.zeros(config.horizon, config.action_dim))

    def predict_action(self, batch: Mapping[str, Tensor | np.ndarray]) -> Tensor:
        obs = self.normalize_batch(batch, with_action=False)["obs"]
        return self.unnormalize_action(self.chunk.detach().expand(len(obs), -1, -1) * self.config.scale)

    def compute_loss(self, batch: Mapping[str, Tensor | np.ndarray]) -> tuple[Tensor, dict[str, float]]:
        norm = self.normalize_batch(batch, with_action=True)
        loss = (self.chunk - norm["action"]).pow(2).mean()
        return loss, {"mse": float(loss)}


def fitted(policy: Policy) -> Policy:
    rng = np.random.default_rng(0)
    return policy.fit_normalizer(rng.normal(size=(50, 5)), rng.normal(size=(50, 2)))


def mlp() -> MLPPolicy:
    torch.manual_seed(0)
    return fitted(make_policy("mlp", **DIMS, hidden_dims=(16,)))


def batch(b: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "obs": rng.normal(size=(b, 2, 5)).astype(np.float32),
        "action": rng.normal(size=(b, 8, 2)).astype(np.float32),
    }


# ------------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"n_action_steps": 8}, r"n_action_steps \(8\) must be <= horizon - n_obs_steps \+ 1"),
        ({"n_obs_steps": 9}, r"n_obs_steps \(9\) must be <= horizon"),
        ({"obs_dim": 0}, "obs_dim must be an integer >= 1"),
        ({"action_dim": True}, "action_dim"),
        ({"horizon": 2.0}, "horizon"),
        ({"obs_keys": "state"}, "not a str"),
        ({"obs_keys": ("a", "a")}, "distinct"),
    ],
)
def test_config_validation(overrides, match):
    with pytest.raises(ValueError, match=match):
        PolicyConfig(**(DIMS | overrides))


def test_config_dict_round_trip():
    cfg = MLPConfig(**DIMS, obs_keys=["state"], hidden_dims=[8, 8])
    assert cfg.obs_keys == ("state",) and cfg.hidden_dims == (8, 8)  # lists become tuples
    assert MLPConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match=r"no fields \['typo'\]"):
        MLPConfig.from_dict(cfg.to_dict() | {"typo": 1})
    with pytest.raises(ValueError, match="obs_dim"):
        MLPConfig.from_dict({"action_dim": 2})


# ------------------------------------------------------------------------------------------------- subclass guard


def test_subclass_must_define_name():
    with pytest.raises(TypeError, match="must define its own class attribute `name`"):

        class NoName(Policy):
            config_class = DummyConfig

            def predict_action(self, batch):
                return batch

            def compute_loss(self, batch):
                return batch

    with pytest.raises(TypeError, match="lowercase id"):

        class BadName(Policy):
            name = "Bad_Name"
            config_class = DummyConfig

    with pytest.raises(TypeError, match="its own class attribute"):

        class Inherits(DummyPolicy):  # would silently take over "test-dummy"
            pass


def test_subclass_must_set_config_class_and_implement_methods():
    with pytest.raises(TypeError, match="config_class"):

        class NoConfig(Policy):
            name = "test-noconfig"

    with pytest.raises(TypeError, match=r"must implement compute_loss\(\)"):

        class NoLoss(Policy):
            name = "test-noloss"
            config_class = DummyConfig

            def predict_action(self, batch):
                return batch

    with pytest.raises(TypeError, match="taken by"):

        class Duplicate(DummyPolicy):
            name = "mlp"

    class Intermediate(Policy, abstract=True):  # allowed: a shared base for variants
        pass


def test_constructor_checks_config_type():
    with pytest.raises(TypeError, match="needs a DummyConfig, got MLPConfig"):
        DummyPolicy(MLPConfig(**DIMS))


# ------------------------------------------------------------------------------------------------- batch spec


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda b: {"observation": b["obs"]}, r"missing \['obs'\], unknown \['observation'\]"),
        (lambda b: b | {"extra": b["obs"]}, r"unknown \['extra'\]"),
        (lambda b: {"obs": b["obs"][:, :1]}, r"'obs' has shape \(3, 1, 5\)"),
        (lambda b: {"obs": b["obs"][..., :4]}, r"'obs' has shape \(3, 2, 4\)"),
        (lambda b: {"obs": b["obs"][0]}, r"'obs' has shape \(2, 5\)"),
        (lambda b: {"obs": b["obs"][:0]}, r"'obs' has shape \(0, 2, 5\)"),
        (lambda b: {"obs": b["obs"].tolist()}, "must be a tensor or numpy array"),
        (lambda b: {"obs": b["obs"].astype(bool)}, "dtype torch.bool"),
    ],
)
def test_bad_observation_spec_names_the_expected_spec(mutate, match):
    policy = mlp()
    with pytest.raises(ValueError, match=match) as info:
        policy.predict_action(mutate(batch()))
    assert "(B, 2, 5)" in str(info.value) or "tensor or numpy" in str(info.value)


def test_bad_training_batch():
    policy = mlp()
    with pytest.raises(ValueError, match=rf"missing \['action'\].*{SPEC}"):
        policy.compute_loss({"obs": batch()["obs"]})
    with pytest.raises(ValueError, match=rf"'action' has shape \(3, 7, 2\).*{SPEC}"):
        policy.compute_loss(batch() | {"action": batch()["action"][:, :7]})
    with pytest.raises(ValueError, match="batch size 2"):
        policy.compute_loss(batch() | {"action": batch()["action"][:2]})
    with pytest.raises(ValueError, match=r"'action_mask' is torch.int64\(3, 8\); expected \(3, 8\) bool"):
        policy.compute_loss(batch() | {"action_mask": torch.ones(3, 8, dtype=torch.long)})
    nan = batch()
    nan["obs"][0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        policy.compute_loss(nan)
    with pytest.raises(ValueError, match="must be a dict"):
        policy.predict_action(batch()["obs"])


def test_unfitted_normalizer_refuses():
    policy = make_policy("mlp", **DIMS)
    with pytest.raises(RuntimeError, match="before fit"):
        policy.predict_action(batch())


def test_numpy_and_tensor_batches_agree():
    policy = mlp()
    b = batch()
    torch.testing.assert_close(
        policy.predict_action(b), policy.predict_action({k: torch.from_numpy(v) for k, v in b.items()})
    )


# ------------------------------------------------------------------------------------------------- checkpoints


def test_load_wrong_policy_name(tmp_path):
    path = fitted(DummyPolicy(DummyConfig(**DIMS))).save(tmp_path / "dummy.pt")
    with pytest.raises(CheckpointError, match="holds a 'test-dummy' policy, not 'mlp'") as info:
        MLPPolicy.load(path)
    assert info.value.path == path
    loaded = Policy.load(path)  # the base dispatches on the stored name
    assert type(loaded) is DummyPolicy and not loaded.training


def test_load_missing_and_corrupt_files(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        Policy.load(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="not a regular file"):
        Policy.load(tmp_path)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        Policy.load(garbage)
    good = mlp().save(tmp_path / "good.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        MLPPolicy.load(truncated)
    tensor_only = tmp_path / "tensor.pt"
    torch.save({"weights": torch.zeros(3)}, tensor_only)
    with pytest.raises(CheckpointError, match="not a policy checkpoint"):
        Policy.load(tensor_only)


def _edit(src, dst, **changes):
    ckpt = torch.load(src, weights_only=True)
    for key, value in changes.items():
        if key == "config":
            ckpt["config"] = ckpt["config"] | value
        else:
            ckpt[key] = value
    torch.save(ckpt, dst)
    return dst


def test_load_rejects_bad_contents(tmp_path, monkeypatch):
    good = mlp().save(tmp_path / "good.pt")
    with pytest.raises(CheckpointError, match=r"invalid 'mlp' config: n_action_steps \(8\)"):
        Policy.load(_edit(good, tmp_path / "a.pt", config={"n_action_steps": 8}))
    with pytest.raises(CheckpointError, match=r"has no fields \['future_field'\]"):
        Policy.load(_edit(good, tmp_path / "b.pt", config={"future_field": 1}))
    with pytest.raises(CheckpointError, match="weights do not fit the 'mlp' model"):
        Policy.load(_edit(good, tmp_path / "c.pt", config={"hidden_dims": (17,)}))
    with pytest.raises(CheckpointError, match="format_version 99"):
        Policy.load(_edit(good, tmp_path / "d.pt", format_version=99))
    monkeypatch.setattr(registry, "PLANNED_POLICIES", (*registry.PLANNED_POLICIES, "planned-only"))
    with pytest.raises(CheckpointError, match="'planned-only' is not implemented yet"):
        Policy.load(_edit(good, tmp_path / "e.pt", policy="planned-only"))
    with pytest.raises(CheckpointError, match="invalid 'diffusion' config"):  # another policy's checkpoint
        Policy.load(_edit(good, tmp_path / "g.pt", policy="diffusion"))
    with pytest.raises(CheckpointError, match="invalid 'ebt' config"):  # another policy's checkpoint
        Policy.load(_edit(good, tmp_path / "f.pt", policy="ebt"))


def test_checkpoint_is_plain_and_atomic(tmp_path):
    policy = mlp()
    path = policy.save(tmp_path / "sub" / "p.pt")
    ckpt = torch.load(path, weights_only=True)  # tensors and plain types only
    assert ckpt["policy"] == "mlp" and ckpt["config"] == policy.config.to_dict()
    assert not any(k.startswith("normalizer.") for k in ckpt["state_dict"])
    assert set(ckpt["normalizer"]) == {"obs_lo", "obs_hi", "action_lo", "action_hi", "fitted"}
    policy.save(path)  # overwrite in place
    assert sorted(p.name for p in path.parent.iterdir()) == ["p.pt"]  # no temp files left behind


def test_select_action_executes_the_planned_window():
    policy = mlp()
    calls = []
    original = policy.predict_action

    def counting(b):
        calls.append(1)
        return original(b)

    policy.predict_action = counting
    b = {"obs": batch()["obs"]}
    chunk = original(b)
    actions = [policy.select_action(b) for _ in range(6)]
    assert len(calls) == 2  # re-planned after n_action_steps = 4
    for i in range(4):
        torch.testing.assert_close(actions[i], chunk[:, 1 + i])  # indices To-1 .. To-2+Ta
    torch.testing.assert_close(actions[4], chunk[:, 1])
    policy.reset()
    policy.select_action(b)
    assert len(calls) == 3


# ------------------------------------------------------------------------------------------------- factory


def test_factory():
    assert "mlp" in available_policies()
    assert "test-dummy" not in available_policies()  # only policies shipped in embodia.policies
    assert get_policy_class("mlp") is MLPPolicy
    assert policy_module("ebt-dsm") == "embodia.policies.ebt.modeling_ebt"
    policy = make_policy("mlp", **DIMS, hidden_dims=(4,))
    assert isinstance(policy, MLPPolicy) and policy.config.hidden_dims == (4,)
    again = make_policy("mlp", policy.config, hidden_dims=(6,))
    assert again.config.hidden_dims == (6,) and again.config.obs_dim == 5


def test_factory_planned_but_missing(monkeypatch):
    assert set(PLANNED_POLICIES) <= set(available_policies())  # every planned policy exists now
    monkeypatch.setattr(registry, "PLANNED_POLICIES", (*registry.PLANNED_POLICIES, "planned-only"))
    with pytest.raises(ValueError, match=r"policy 'planned-only' is not implemented yet"):
        make_policy("planned-only", **DIMS)


def test_factory_errors():
    with pytest.raises(ValueError, match=r"unknown policy 'nope'; available: \[.*'mlp'"):
        make_policy("nope")
    with pytest.raises(ValueError, match=r"MLPConfig has no fields \['hiden_dims'\]"):
        make_policy("mlp", **DIMS, hiden_dims=(4,))
    with pytest.raises(ValueError, match="missing 2 required keyword-only arguments"):
        make_policy("mlp")
    with pytest.raises(ValueError, match="needs a MLPConfig, got DummyConfig"):
        make_policy("mlp", DummyConfig(**DIMS))
