"""Diffusion Policy: the DDPM/DDIM scheduler, shapes, training, sampler NFE, bimodality, checkpoints."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from embodia.policies import Policy, make_policy
from embodia.policies.diffusion import DDPMScheduler, DiffusionConfig, DiffusionPolicy

torch.set_num_threads(1)

SMALL = {"d_model": 32, "n_layers": 1, "n_heads": 2, "step_embed_dim": 32}


def _alpha_bar(u: float) -> float:
    return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2


def small_policy(**overrides) -> DiffusionPolicy:
    torch.manual_seed(0)
    dims = {"obs_dim": 3, "action_dim": 2, "n_obs_steps": 2, "horizon": 4, "n_action_steps": 2}
    policy = make_policy("diffusion", **dims, **(SMALL | overrides))
    rng = np.random.default_rng(0)
    return policy.fit_normalizer(rng.normal(size=(32, 3)), rng.uniform(-2, 3, size=(32, 2)))


# ---------------------------------------------------------------------------------------------- scheduler


def test_scheduler_values():
    s = DDPMScheduler(100)
    ac = s.alphas_cumprod
    assert ac.shape == (100,) and ac.dtype == torch.float64
    # t = 0: ᾱ₀ = 1 − β₀ = ᾱ(1/T) / ᾱ(0)
    assert ac[0].item() == pytest.approx(_alpha_bar(0.01) / _alpha_bar(0.0), rel=1e-12)
    assert ac[0].item() == pytest.approx(0.99936872, abs=1e-8)
    # only the last β hits the 0.999 cap (ᾱ(1) = 0), so ᾱ_{T-1} = 0.001 · ᾱ(0.99) / ᾱ(0)
    assert s.betas[-1].item() == pytest.approx(0.999)
    assert (s.betas[:-1] < 0.999).all()
    assert ac[-1].item() == pytest.approx(0.001 * _alpha_bar(0.99) / _alpha_bar(0.0), rel=1e-9)
    assert ac[-1].item() == pytest.approx(2.4286e-7, rel=1e-3)
    assert (ac[1:] < ac[:-1]).all() and (s.betas > 0).all()


def test_scheduler_add_noise_and_steps():
    torch.manual_seed(0)
    s = DDPMScheduler(100)
    x0, eps = torch.randn(3, 4, 2), torch.randn(3, 4, 2)
    t = torch.tensor([0, 50, 99])
    xt = s.add_noise(x0, eps, t)
    for i in range(3):
        a = s.alphas_cumprod[t[i]].item()
        torch.testing.assert_close(xt[i], math.sqrt(a) * x0[i] + math.sqrt(1 - a) * eps[i])
    # with the true ε, the x₀ estimate is exact: DDIM jumps to x₀ from any t (|x₀| <= 1 so clipping is a no-op)
    x0, eps = torch.rand(3, 4, 2, dtype=torch.float64) * 2 - 1, eps.double()  # float64: ᾱ_99 ~ 2e-7 amplifies error
    for t_ in (99, 40, 0):
        xt = s.add_noise(x0, eps, torch.full((3,), t_))
        torch.testing.assert_close(s.ddim_step(eps, t_, -1, xt), x0, rtol=1e-4, atol=1e-4)
        # DDIM to an intermediate step lands on the forward process at that step (η = 0, same ε)
        if t_ > 0:
            expect = s.add_noise(x0, eps, torch.full((3,), t_ // 2))
            torch.testing.assert_close(s.ddim_step(eps, t_, t_ // 2, xt), expect, rtol=1e-4, atol=1e-4)
    # DDPM at t = 0 returns the (clipped) x₀ estimate, without noise
    xt = s.add_noise(x0, eps, torch.zeros(3, dtype=torch.long))
    torch.testing.assert_close(s.ddpm_step(eps, 0, xt), x0, rtol=1e-4, atol=1e-4)
    # clipping: a wild ε-prediction cannot push x̂₀ outside [-1, 1]
    assert s.ddim_step(torch.full_like(xt, -50.0), 10, -1, xt).abs().max() <= 1 + 1e-6
    assert s.ddim_timesteps(10) == [90, 80, 70, 60, 50, 40, 30, 20, 10, 0]
    with pytest.raises(ValueError, match="num_inference_steps"):
        s.ddim_timesteps(101)


def test_config_validation():
    base = {"obs_dim": 3, "action_dim": 2}
    assert DiffusionConfig(**base).inference == "ddim" and DiffusionConfig(**base).num_train_timesteps == 100
    with pytest.raises(ValueError, match="inference"):
        DiffusionConfig(**base, inference="euler")
    with pytest.raises(ValueError, match="num_inference_steps"):
        DiffusionConfig(**base, num_inference_steps=200)
    with pytest.raises(ValueError, match="step_embed_dim"):
        DiffusionConfig(**base, step_embed_dim=7)


# ---------------------------------------------------------------------------------------------- policy


def test_shapes_and_nfe():
    policy = small_policy().eval()
    obs = torch.randn(5, 2, 3)
    calls = []
    policy.backbone.register_forward_hook(lambda *_: calls.append(1))
    actions = policy.predict_action({"obs": obs})
    assert actions.shape == (5, 4, 2) and not actions.requires_grad
    assert len(calls) == 10 and policy.last_nfe.tolist() == [10] * 5
    calls.clear()
    policy.config.inference = "ddpm"
    actions = policy.predict_action({"obs": obs})
    assert actions.shape == (5, 4, 2) and len(calls) == 100 and policy.last_nfe.tolist() == [100] * 5
    # outputs lie in the fitted action range (x̂₀ clipped to [-1, 1] in normalised space)
    lo, hi = policy.normalizer.unnormalize("action", torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))
    assert (actions >= lo - 1e-4).all() and (actions <= hi + 1e-4).all()


def test_loss_decreases():
    policy = small_policy()
    rng = np.random.default_rng(1)
    obs = rng.normal(size=(64, 2, 3)).astype(np.float32)
    action = np.repeat(np.tanh(obs[:, -1:, :2]), 4, axis=1)  # a function of the current observation
    opt = torch.optim.Adam(policy.parameters(), lr=3e-3)
    torch.manual_seed(0)
    losses = []
    for _ in range(150):
        loss, terms = policy.compute_loss({"obs": obs, "action": action})
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(terms["mse"])
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:10])


def test_bimodal_samples_cover_both_modes():
    """Targets +1 or -1 with equal probability for the same observation: samples must not average the modes."""
    torch.manual_seed(0)
    policy = make_policy(
        "diffusion", obs_dim=1, action_dim=1, n_obs_steps=1, horizon=2, n_action_steps=1, **SMALL
    ).fit_normalizer(np.array([[0.0], [1.0]], np.float32), np.array([[-1.0], [1.0]], np.float32))
    opt = torch.optim.Adam(policy.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(300):
        sign = torch.randint(0, 2, (128, 1, 1), generator=gen).float() * 2 - 1
        loss, _ = policy.compute_loss({"obs": torch.zeros(128, 1, 1), "action": sign.expand(128, 2, 1)})
        opt.zero_grad()
        loss.backward()
        opt.step()
    policy.eval()
    policy.generator = torch.Generator().manual_seed(1)
    for inference in ("ddim", "ddpm"):
        policy.config.inference = inference
        first = policy.predict_action({"obs": torch.zeros(256, 1, 1)})[:, 0, 0]  # (256,)
        near_pos, near_neg = ((first - 1).abs() < 0.3).float().mean(), ((first + 1).abs() < 0.3).float().mean()
        assert near_pos >= 0.2 and near_neg >= 0.2, (inference, near_pos.item(), near_neg.item())


def test_generator_makes_sampling_reproducible(tmp_path: Path):
    policy = small_policy()
    rng = np.random.default_rng(2)
    batch = {"obs": rng.normal(size=(8, 2, 3)).astype(np.float32), "action": rng.normal(size=(8, 4, 2))}
    opt = torch.optim.Adam(policy.parameters(), lr=1e-3)
    for _ in range(3):
        loss, _ = policy.compute_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    policy.eval()
    loaded = Policy.load(policy.save(tmp_path / "d.pt"))
    assert isinstance(loaded, DiffusionPolicy) and loaded.config == policy.config
    for inference in ("ddim", "ddpm"):
        policy.config.inference = loaded.config.inference = inference
        outs = []
        for p in (policy, loaded):
            p.generator = torch.Generator().manual_seed(7)
            torch.manual_seed(123)  # the global RNG must not matter when a generator is set
            outs.append(p.predict_action({"obs": batch["obs"]}))
        torch.manual_seed(999)
        policy.generator = torch.Generator().manual_seed(7)
        outs.append(policy.predict_action({"obs": batch["obs"]}))
        torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
        torch.testing.assert_close(outs[0], outs[2], rtol=0, atol=0)
