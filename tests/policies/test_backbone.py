"""Tests for embodia.policies.backbone: shapes, attention masks, batch independence, double backward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from embodia.policies.backbone import BackboneConfig, TransformerBackbone, sinusoidal_embedding

torch.set_num_threads(1)

TO, TP, DO, DA, DC = 2, 8, 5, 3, 16


def make(**overrides) -> TransformerBackbone:
    torch.manual_seed(0)
    kwargs = {"obs_dim": DO, "action_dim": DA, "n_obs_steps": TO, "horizon": TP, "out_dim": DA} | overrides
    return TransformerBackbone(BackboneConfig(**kwargs)).eval()


def scramble(net: TransformerBackbone) -> TransformerBackbone:
    """Large random weights, so that every dependency the masks allow is strong (init makes them ~1e-6)."""
    torch.manual_seed(3)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.3).add_(1.0 if p.ndim == 1 and p.shape[0] == 64 else 0.0)
    return net


def inputs(b: int = 3, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, TO, DO, generator=g), torch.randn(b, TP, DA, generator=g), torch.randn(b, DC, generator=g)


@pytest.mark.parametrize("out_dim", [1, DA])
@pytest.mark.parametrize("cond_dim", [0, DC])
def test_shapes(out_dim: int, cond_dim: int):
    net = make(out_dim=out_dim, cond_dim=cond_dim)
    obs, act, cond = inputs()
    out = net(obs, act, cond if cond_dim else None)
    assert out.shape == (3, TP, out_dim) and torch.isfinite(out).all()
    memory = net.encode(obs, cond if cond_dim else None)
    assert memory.shape == (3, TO + (cond_dim > 0), 64)
    torch.testing.assert_close(net.decode(memory, act), out, rtol=0, atol=0)


def test_defaults_are_cpu_sized():
    cfg = BackboneConfig(obs_dim=DO, action_dim=DA, n_obs_steps=TO, horizon=TP, out_dim=1)
    assert (cfg.d_model, cfg.n_layers, cfg.n_heads) == (64, 2, 4)


def test_mask_buffers():
    net = make(cond_dim=DC)
    # memory = [cond, obs0, obs1]; action j sees cond and obs s <= j.
    assert net.cross_mask[0].tolist() == [True, True, False]
    assert net.cross_mask[1:].all()
    assert net.obs_mask.tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert torch.equal(net.self_mask, torch.ones(TP, TP, dtype=torch.bool).tril())
    assert make(causal_actions=False).self_mask.all()


@pytest.mark.parametrize("cond_dim", [0, DC])
def test_action_j_ignores_later_observations_and_actions(cond_dim: int):
    net = scramble(make(cond_dim=cond_dim, n_obs_steps=3, n_layers=3))
    g = torch.Generator().manual_seed(2)
    obs, act = torch.randn(2, 3, DO, generator=g), torch.randn(2, TP, DA, generator=g)
    cond = torch.randn(2, DC, generator=g) if cond_dim else None
    base = net(obs, act, cond)
    for s in range(3):
        changed = obs.clone()
        changed[:, s] += 3.0
        diff = (net(changed, act, cond) - base).abs().amax(dim=(0, 2))  # (Tp,)
        assert torch.all(diff[:s] == 0), f"obs {s} leaked into actions {diff[:s]}"
        assert torch.all(diff[s:] > 1e-3), f"obs {s} does not reach actions >= {s}: {diff}"
    for k in range(TP):
        changed = act.clone()
        changed[:, k] += 3.0
        diff = (net(obs, changed, cond) - base).abs().amax(dim=(0, 2))  # (Tp,)
        assert torch.all(diff[:k] == 0) and torch.all(diff[k:] > 1e-3), f"action {k}: {diff}"


def test_full_action_attention_leaks_through_later_actions_as_documented():
    net = scramble(make(causal_actions=False, n_layers=2))
    obs, act, _ = inputs()
    changed = obs.clone()
    changed[:, 1] += 3.0
    assert (net(changed, act) - net(obs, act))[:, 0].abs().max() > 1e-3
    one_layer = scramble(make(causal_actions=False, n_layers=1))  # self-attention comes before cross-attention
    assert torch.equal(one_layer(changed, act)[:, 0], one_layer(obs, act)[:, 0])


def test_cond_token_reaches_every_action():
    net = scramble(make(cond_dim=DC))
    obs, act, cond = inputs()
    diff = (net(obs, act, cond + 1.0) - net(obs, act, cond)).abs().amax(dim=(0, 2))
    assert torch.all(diff > 1e-3)


def test_samples_are_independent():
    net = scramble(make(cond_dim=DC))
    obs, act, cond = inputs(b=4)
    batched = net(obs, act, cond)
    for i in range(4):
        single = net(obs[i : i + 1], act[i : i + 1], cond[i : i + 1])
        torch.testing.assert_close(single, batched[i : i + 1], rtol=1e-4, atol=1e-5)
    scaled = obs.clone()
    scaled[0] *= 100.0  # one wild sample must not change the others
    torch.testing.assert_close(net(scaled, act, cond)[1:], batched[1:], rtol=1e-4, atol=1e-5)


def test_double_backward_reaches_every_parameter():
    net = make(cond_dim=DC, out_dim=1).train()
    obs, act, cond = inputs()
    act.requires_grad_(True)
    energy = net(obs, act, cond).mean(dim=(1, 2))  # (B,) energy per sample
    (grad_a,) = torch.autograd.grad(energy.sum(), act, create_graph=True)  # (B, Tp, Da)
    target = torch.zeros_like(act)
    loss = F.mse_loss(act - 0.1 * grad_a, target)  # one descent step, as in EBT training
    loss.backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    zero = [n for n, p in net.named_parameters() if p.grad is not None and p.grad.abs().max() == 0]
    assert not missing and not zero, f"no gradient: {missing}, zero gradient: {zero}"


def test_no_fused_attention(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("F.scaled_dot_product_attention has no double backward; use math attention")

    monkeypatch.setattr(F, "scaled_dot_product_attention", forbidden)
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", forbidden)
    net = make(cond_dim=DC)
    net(*inputs())


def test_sinusoidal_embedding():
    emb = sinusoidal_embedding(torch.arange(4), 8)
    assert emb.shape == (4, 8)
    torch.testing.assert_close(emb[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    torch.testing.assert_close(emb.pow(2)[:, :4] + emb.pow(2)[:, 4:], torch.ones(4, 4))
    with pytest.raises(ValueError, match="even"):
        sinusoidal_embedding(torch.arange(4), 7)


def test_input_and_config_errors():
    net = make(cond_dim=DC)
    obs, act, cond = inputs()
    with pytest.raises(ValueError, match=r"obs must have shape \(B, 2, 5\)"):
        net(obs[:, :1], act, cond)
    with pytest.raises(ValueError, match=r"action must have shape \(B, 8, 3\)"):
        net(obs, act[..., :2], cond)
    with pytest.raises(ValueError, match=r"cond must have shape \(3, 16\)"):
        net(obs, act)
    with pytest.raises(ValueError, match="cond_dim = 0"):
        make()(obs, act, cond)
    with pytest.raises(ValueError, match="divisible by n_heads"):
        make(d_model=66, n_heads=4)
    with pytest.raises(ValueError, match="n_layers"):
        make(n_layers=0)
    with pytest.raises(ValueError, match="dropout"):
        make(dropout=1.0)
