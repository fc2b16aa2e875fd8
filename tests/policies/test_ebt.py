"""Tests for EBT-Policy (``"ebt"``) and its DSM variant (``"ebt-dsm"``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from embodia.policies import Policy, make_policy
from embodia.policies.ebt import EBTConfig, EBTDSMConfig, EBTDSMPolicy, EBTPolicy

torch.set_num_threads(1)

DIMS = {"obs_dim": 3, "action_dim": 2, "n_obs_steps": 2, "horizon": 8, "n_action_steps": 4}
TINY = {"d_model": 32, "n_layers": 1, "n_heads": 2}


def unimodal_data(n: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """obs ``(n, 2, 3)``, actions ``(n, 8, 2)``: a smooth deterministic function of the last observation."""
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, size=(n, 2, 3)).astype(np.float32)
    w = rng.normal(size=(3, 2)).astype(np.float32) * 0.5
    base = obs[:, -1] @ w  # (n, 2)
    act = base[:, None, :] + 0.05 * np.arange(8, dtype=np.float32)[None, :, None]  # (n, 8, 2)
    return obs, act.astype(np.float32)


def build(name: str = "ebt", **overrides) -> EBTPolicy:
    obs, act = unimodal_data()
    torch.manual_seed(0)
    policy = make_policy(name, **DIMS, **(TINY | overrides))
    return policy.fit_normalizer(obs.reshape(-1, 3), act.reshape(-1, 2))


def train_tiny(policy: EBTPolicy, obs: np.ndarray, act: np.ndarray, steps: int, lr: float, batch: int) -> EBTPolicy:
    """``steps`` AdamW steps (gradient norm clipped at 1) on random batches; returns the policy in eval mode."""
    opt = torch.optim.AdamW(policy.parameters(), lr=lr)
    rng = np.random.default_rng(1)
    policy.train()
    for _ in range(steps):
        idx = rng.integers(0, len(obs), batch)
        loss, _ = policy.compute_loss({"obs": obs[idx], "action": act[idx]})
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
    return policy.eval()


@pytest.fixture(scope="module")
def trained() -> EBTPolicy:
    """A tiny EBT trained for 200 steps on the unimodal data."""
    obs, act = unimodal_data()
    return train_tiny(build(), obs, act, steps=200, lr=1e-3, batch=32)


def test_shapes_and_terms():
    obs, act = unimodal_data(5)
    policy = build()
    with torch.no_grad():
        actions = policy.predict_action({"obs": obs})
    assert actions.shape == (5, 8, 2) and not actions.requires_grad
    assert policy.last_nfe.shape == (5,) and policy.last_nfe.dtype == torch.long
    assert policy.last_energy.shape == (5,)
    policy.train()
    loss, terms = policy.compute_loss({"obs": obs, "action": act})
    assert loss.ndim == 0 and loss.requires_grad
    for key in ("energy_first", "alpha", "grad_norm_a", "mse_first", "mse_last", "n_steps", "step_rms_0"):
        assert key in terms and math.isfinite(terms[key]), key
    assert 1 <= terms["n_steps"] <= 2
    assert {f"step_rms_{i}" for i in range(int(terms["n_steps"]))} <= set(terms)
    assert "dsm" not in terms
    assert int(policy.train_step) == 1


@pytest.mark.parametrize(
    "overrides",
    [{"unroll": "truncated"}, {"unroll": "full"}, {"energy_form": "residual", "init": "xavier", "train_steps_min": 1}],
)
def test_training_gradients_reach_every_parameter(overrides):
    obs, act = unimodal_data(8)
    policy = build(n_layers=2, **overrides)
    policy.train()
    loss, _ = policy.compute_loss({"obs": obs, "action": act})
    loss.backward()
    missing = [n for n, p in policy.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing, missing


def test_truncated_unroll_is_second_order_only_on_the_last_step(monkeypatch):
    obs, act = unimodal_data(8)
    policy = build(unroll="truncated", train_steps_min=3, train_steps_max=3)
    graphs = []
    original = policy._energy_and_grad

    def spy(memory, action, create_graph):
        graphs.append(create_graph)
        return original(memory, action, create_graph)

    monkeypatch.setattr(policy, "_energy_and_grad", spy)
    policy.train()
    _, terms = policy.compute_loss({"obs": obs, "action": act})
    assert graphs == [False, False, True]
    assert terms["loss"] == pytest.approx(terms["mse_last"])  # the loss is the last step's MSE
    graphs.clear()
    policy.config.unroll = "full"
    _, terms = policy.compute_loss({"obs": obs, "action": act})
    assert graphs == [True, True, True] and terms["loss"] == pytest.approx(terms["mse"])


def test_compute_loss_under_no_grad_is_deterministic_in_eval():
    obs, act = unimodal_data(8)
    policy = build().eval()
    with torch.no_grad():
        torch.manual_seed(0)
        loss1, terms = policy.compute_loss({"obs": obs, "action": act})
        torch.manual_seed(0)
        loss2, _ = policy.compute_loss({"obs": obs, "action": act})
    assert not loss1.requires_grad and float(loss1) == float(loss2)
    assert terms["n_steps"] == policy.config.train_steps_max and int(policy.train_step) == 0


def test_descent_lowers_the_error_after_training(trained: EBTPolicy):
    obs, act = unimodal_data(128, seed=5)
    norm = trained.normalize_batch({"obs": obs, "action": act}, with_action=True)
    torch.manual_seed(0)
    a0 = torch.randn_like(norm["action"])
    out = trained.descend(norm["obs"], a0, steps=2)
    mse0 = float((a0 - norm["action"]).pow(2).mean())
    mse = float((out["action"] - norm["action"]).pow(2).mean())
    assert mse < 0.5 * mse0, (mse0, mse)
    with torch.no_grad():
        _, terms = trained.compute_loss({"obs": obs, "action": act})
    assert terms["mse_last"] < 0.5 * mse0  # the validation loss (K = train_steps_max, no noise) agrees


def test_inference_steps_and_early_stop_on_the_step_size():
    obs, _ = unimodal_data(6)
    policy = build(alpha=1e5, energy_clamp=0.01).eval()  # α_i ≈ 1e5: steps far larger than gradients
    policy.predict_action({"obs": obs})
    assert policy.last_nfe.tolist() == [2] * 6
    norm = policy.normalize_batch({"obs": obs}, with_action=False)["obs"]
    a0 = torch.randn(6, 8, 2)
    out = policy.descend(norm, a0, steps=4)
    rms = out["step_rms"]  # (4, 6): the RMS of α_i·∇ₐE per step and sample
    assert out["nfe"].tolist() == [4] * 6 and bool((rms > 0).all())
    # The stop rule reads the step α_i·∇ₐE, not the gradient: with a tolerance below every step's RMS nobody
    # stops, although from the second step on every gradient's RMS is below it (a gradient rule would stop all).
    grad_rms = rms / policy.step_size(out["energy_first"])[None, :]  # (4, 6), α_i ≈ 1e5 for every step
    policy.config.stop_tol = float(rms.min()) / 2
    assert bool((grad_rms[1:] < policy.config.stop_tol).all())
    assert policy.descend(norm, a0, steps=4)["nfe"].tolist() == [4] * 6
    # A tolerance between the samples' first steps stops exactly the samples whose first step was smaller.
    first = rms[0]
    policy.config.stop_tol = float(first.median())
    nfe = policy.descend(norm, a0, steps=4)["nfe"]
    assert bool((nfe[first < policy.config.stop_tol] == 1).all()) and bool(
        (nfe[first >= policy.config.stop_tol] > 1).all()
    )
    policy.config.min_inference_steps = 2  # nobody stops before its second step
    assert bool((policy.descend(norm, a0, steps=4)["nfe"] >= 2).all())
    policy.config.min_inference_steps, policy.config.stop_tol = 1, 0.0
    policy.config.energy_threshold = 1e9  # the energy rule: every chunk is below it after one step
    out = policy.descend(norm, a0, steps=4)
    assert out["nfe"].tolist() == [1] * 6 and out["energy_evals"].tolist() == [1] * 6
    torch.testing.assert_close(out["energy"], policy.energy(norm, out["action"]))
    with pytest.raises(ValueError, match="inference_steps"):
        EBTConfig(**DIMS, inference_steps=17)
    with pytest.raises(ValueError, match="min_inference_steps"):
        EBTConfig(**DIMS, inference_steps=2, min_inference_steps=3)


def test_energy_threshold_spends_steps_where_the_energy_is_high():
    obs, _ = unimodal_data(32)
    policy = build().eval()
    norm = policy.normalize_batch({"obs": obs}, with_action=False)["obs"]
    a0 = torch.randn(32, 8, 2)
    one = policy.descend(norm, a0, steps=1)
    checked = policy.energy(norm, one["action"])  # (32,) what the rule reads: the chunk after one step
    policy.config.energy_threshold = float(checked.detach().median())
    out = policy.descend(norm, a0, steps=2)
    low = checked < policy.config.energy_threshold
    assert bool((out["nfe"][low] == 1).all()) and bool((out["nfe"][~low] == 2).all())
    assert out["energy_evals"].tolist() == [1] * 32  # one forward-only check before step 2, for every sample
    # A stopped sample returns the chunk whose energy was read (not the next step's look-ahead a + μv).
    torch.testing.assert_close(out["action"][low], one["action"][low])
    torch.testing.assert_close(out["energy"][low], checked[low])
    torch.testing.assert_close(out["energy"], policy.energy(norm, out["action"]))
    policy.config.energy_threshold = None  # the others went on exactly as without the rule
    torch.testing.assert_close(out["action"][~low], policy.descend(norm[~low], a0[~low], steps=2)["action"])


def test_batch_independence():
    obs, _ = unimodal_data(5)
    policy = build().eval()
    norm = policy.normalize_batch({"obs": obs}, with_action=False)["obs"]
    a0 = torch.randn(5, 8, 2)
    full = policy.descend(norm, a0)
    for i in range(5):
        one = policy.descend(norm[i : i + 1], a0[i : i + 1])
        torch.testing.assert_close(one["action"][0], full["action"][i], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(one["energy"][0], full["energy"][i], rtol=1e-5, atol=1e-6)
    other = norm.clone()
    other[1:] = torch.randn_like(other[1:])  # change every other sample: sample 0 is unaffected
    swapped = policy.descend(other, a0)
    torch.testing.assert_close(swapped["action"][0], full["action"][0], rtol=1e-5, atol=1e-5)


def test_best_of_n_keeps_lowest_energy():
    obs, _ = unimodal_data(3)
    policy = build(best_of_n=4).eval()
    gen = torch.Generator().manual_seed(7)
    policy.generator = gen
    actions = policy.predict_action({"obs": obs})
    assert actions.shape == (3, 8, 2) and policy.last_nfe.tolist() == [8, 8, 8]
    gen.manual_seed(7)
    a0 = torch.randn(3, 4, 8, 2, generator=gen)
    norm = policy.normalize_batch({"obs": obs}, with_action=False)["obs"]
    out = policy.descend(norm.repeat_interleave(4, 0), a0.flatten(0, 1))
    torch.testing.assert_close(policy.last_energy, out["energy"].view(3, 4).min(dim=1).values)


def test_step_size_is_clamped():
    policy = build(energy_clamp=2.0)
    alpha = policy.step_size(torch.tensor([-1e6, 0.0, 1e6]))
    torch.testing.assert_close(alpha, torch.tensor([1000 * math.exp(-2), 1000.0, 1000 * math.exp(2)]))


def test_langevin_noise_follows_the_unroll_schedule():
    policy = build(langevin_sigma_max=0.2, langevin_sigma_min=0.002)
    assert policy.langevin_sigma(0, 4) == pytest.approx(0.2)
    assert policy.langevin_sigma(2, 4) == pytest.approx(0.101)
    assert policy.langevin_sigma(4, 4) == pytest.approx(0.002)
    assert policy.langevin_sigma(1, 4) > policy.langevin_sigma(2, 4) > policy.langevin_sigma(3, 4)


def test_langevin_noise_comes_before_each_energy_and_never_after_the_last_step(monkeypatch):
    """With a vanishing step size the unrolled chunk is a₀ plus the noise: K draws σ_0..σ_{K-1}, none after."""
    obs, act = unimodal_data(16)
    k = 3
    policy = build(
        alpha=1e-30, momentum=0.0, train_steps_min=k, train_steps_max=k, step_scale_range=(1.0, 1.0), unroll="full"
    )
    seen = []
    original = policy._energy_and_grad
    monkeypatch.setattr(
        policy,
        "_energy_and_grad",
        lambda m, a, create_graph: seen.append(a.detach().clone()) or original(m, a, create_graph),
    )
    policy.train()
    torch.manual_seed(11)
    _, terms = policy.compute_loss({"obs": obs, "action": act})
    torch.manual_seed(11)
    torch.randint(k, k + 1, ())  # K's draw
    target = policy.normalize_batch({"obs": obs, "action": act}, with_action=True)["action"]
    a = torch.randn_like(target)
    expected = []
    for i in range(k):
        a = a + policy.langevin_sigma(i, k) * torch.randn_like(a)  # before the energy at step i
        expected.append(a.clone())
    for got, want in zip(seen, expected, strict=True):
        torch.testing.assert_close(got, want)
    assert terms["mse_last"] == pytest.approx(float((a - target).pow(2).mean()), rel=1e-5)  # nothing after step K


def test_save_load_same_actions_with_same_seed(tmp_path):
    obs, act = unimodal_data(4)
    policy = build()
    policy.train()
    opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
    loss, _ = policy.compute_loss({"obs": obs, "action": act})
    loss.backward()
    opt.step()
    policy.eval()
    loaded = Policy.load(policy.save(tmp_path / "ebt.pt"))
    assert isinstance(loaded, EBTPolicy) and int(loaded.train_step) == 1
    torch.manual_seed(3)
    expected = policy.predict_action({"obs": obs})
    torch.manual_seed(3)
    torch.testing.assert_close(loaded.predict_action({"obs": obs}), expected, rtol=0, atol=0)
    policy.generator = torch.Generator().manual_seed(5)
    loaded.generator = torch.Generator().manual_seed(5)
    torch.testing.assert_close(loaded.predict_action({"obs": obs}), policy.predict_action({"obs": obs}))


def test_ebt_dsm_adds_the_dsm_term():
    obs, act = unimodal_data(8)
    policy = build("ebt-dsm", dsm_weight=0.5, mse_weight=1.0)
    assert isinstance(policy, EBTDSMPolicy) and isinstance(policy.config, EBTDSMConfig)
    policy.train()
    loss, terms = policy.compute_loss({"obs": obs, "action": act})
    assert terms["dsm"] > 0
    assert terms["loss"] == pytest.approx(terms["mse"] + 0.5 * terms["dsm"], rel=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in policy.parameters())
    with torch.no_grad():
        assert policy.predict_action({"obs": obs}).shape == (8, 8, 2)
    with pytest.raises(ValueError, match="dsm_weight"):
        EBTDSMConfig(**DIMS, dsm_weight=0.0)


def test_config_validation():
    with pytest.raises(ValueError, match="train_steps_max"):
        EBTConfig(**DIMS, train_steps_min=3, train_steps_max=2)
    with pytest.raises(ValueError, match="step_scale_range"):
        EBTConfig(**DIMS, step_scale_range=(2.0, 1.0))
    with pytest.raises(ValueError, match="momentum"):
        EBTConfig(**DIMS, momentum=1.0)
    with pytest.raises(ValueError, match="energy_form"):
        EBTConfig(**DIMS, energy_form="sum")
    with pytest.raises(ValueError, match="step_schedule"):
        EBTConfig(**DIMS, step_schedule="cosine")
    with pytest.raises(ValueError, match="dsm_sigma_max"):
        EBTConfig(**DIMS, dsm_sigma=0.5, dsm_sigma_max=0.1)
    with pytest.raises(ValueError, match="nothing would train"):
        EBTConfig(**DIMS, mse_weight=0.0)
    config = EBTConfig(**DIMS, step_scale_range=[0.5, 2.0])
    assert EBTConfig.from_dict(config.to_dict()) == config


def test_ebt_dsm_defaults_train_by_dsm_alone_with_the_residual_energy():
    obs, act = unimodal_data(8)
    policy = build("ebt-dsm", n_layers=2)
    c = policy.config
    assert (c.energy_form, c.mse_weight, c.causal_actions) == ("residual", 0.0, False)
    policy.train()
    loss, terms = policy.compute_loss({"obs": obs, "action": act})
    assert set(terms) == {"loss", "dsm", "energy_first", "energy_last", "alpha", "grad_norm_a"}
    assert terms["loss"] == pytest.approx(terms["dsm"]) and int(policy.train_step) == 1
    loss.backward()
    missing = [n for n, p in policy.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing, missing  # the DSM term alone reaches every energy parameter (through create_graph)

    norm = policy.normalize_batch({"obs": obs, "action": act}, with_action=True)
    memory = policy.backbone.encode(norm["obs"])
    out = policy.backbone.decode(memory, norm["action"])
    expected = 0.5 * (norm["action"] - out).pow(2).sum(dim=(1, 2)) / c.alpha
    torch.testing.assert_close(policy.energy(norm["obs"], norm["action"]), expected)
    assert bool((expected >= 0).all())


def test_step_schedules():
    policy = build("ebt-dsm", step_schedule="geometric", dsm_sigma_max=1.0)
    assert policy.step_scales(1) == [1.0]
    assert policy.step_scales(2) == pytest.approx([1 - math.sqrt(0.05), 1.0])  # sigma 1 -> sqrt(0.05) -> 0
    four = policy.step_scales(4)
    assert four[:3] == pytest.approx([1 - 0.05**0.25] * 3) and four[3] == 1.0
    assert build("ebt").step_scales(3) == [1.0, 1.0, 1.0]


def bimodal_data(n: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Every observation is followed by both chunks, +0.8 and -0.8 on both action dims (one sample each).

    Each observation appears twice, once per mode, so the data are bimodal given the observation: a model cannot
    memorise an observation's sign (with a distinct observation per sample it could, and EBT then leaned to it).
    """
    rng = np.random.default_rng(seed)
    obs = np.repeat(rng.uniform(-1, 1, size=(n // 2, 2, 3)), 2, axis=0).astype(np.float32)  # rows 2i, 2i+1 equal
    sign = np.where(np.arange(n) % 2 == 0, 1.0, -1.0).astype(np.float32)
    act = np.broadcast_to(0.8 * sign[:, None, None], (n, 8, 2)).astype(np.float32)
    return obs, act + rng.normal(0, 0.02, size=act.shape).astype(np.float32)


def test_ebt_dsm_keeps_both_modes_where_ebt_averages_them():
    """On two-mode data, trained ebt-dsm samples both modes; EBT trained the same way lands near their mean."""
    obs, act = bimodal_data()
    results = {}
    for name in ("ebt", "ebt-dsm"):
        torch.manual_seed(0)
        policy = make_policy(name, **DIMS, **TINY).fit_normalizer(obs.reshape(-1, 3), act.reshape(-1, 2))
        train_tiny(policy, obs, act, steps=500, lr=2e-3, batch=64)
        torch.manual_seed(2)
        with torch.no_grad():
            chunks = policy.predict_action({"obs": np.repeat(obs[:1], 256, axis=0)})  # (256, 8, 2)
        results[name] = chunks.mean(dim=(1, 2))  # (256,) near +0.8, -0.8 or 0 (the mean)
    dsm, ebt = results["ebt-dsm"], results["ebt"]
    plus, minus = float((dsm > 0.4).float().mean()), float((dsm < -0.4).float().mean())
    assert plus >= 0.15 and minus >= 0.15 and plus + minus >= 0.7, (plus, minus)
    assert float((ebt.abs() < 0.4).float().mean()) >= 0.75, ebt


def test_calibrated_energy_threshold_stops_about_the_quantile():
    obs, _ = unimodal_data(400)
    policy = build(inference_steps=3).eval()
    torch.manual_seed(0)
    threshold = policy.calibrate_energy_threshold(obs, 0.25)
    assert policy.config.energy_threshold == threshold
    torch.manual_seed(1)
    policy.predict_action({"obs": obs})
    stopped = float((policy.last_nfe == 1).float().mean())
    assert 0.15 < stopped < 0.35, stopped  # other noise draws: about a quarter stop after one step
    with pytest.raises(ValueError, match="quantile"):
        policy.calibrate_energy_threshold(obs, 1.0)
    with pytest.raises(ValueError, match="steps"):
        policy.calibrate_energy_threshold(obs, 0.5, steps=4)
