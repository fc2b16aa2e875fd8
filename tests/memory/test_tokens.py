"""Tests for embodia.memory.tokens: exact inversion, the read-token history, gradients, cycle-loss training."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from embodia.memory.tokens import MemoryTokens, ReversibleTransformer, TokenConfig

torch.set_num_threads(1)

D = 384
BATCH = 8
K = 5


@pytest.fixture(scope="module", params=["attention", "mlp"])
def paper_model(request) -> MemoryTokens:
    """Paper-size tokens (d = 384, token 768, depth 6), eval mode, float32."""
    torch.manual_seed(0)
    return MemoryTokens(TokenConfig(embed_dim=D, depth=6, mixer=request.param)).eval()


def _inputs(dtype: torch.dtype, with_context: bool, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    read = torch.randn(BATCH, D, generator=g, dtype=dtype)
    emb = torch.randn(BATCH, D, generator=g, dtype=dtype)
    if not with_context:
        return read, emb, None, None
    context = torch.randn(BATCH, K, 2 * D, generator=g, dtype=dtype)
    mask = torch.rand(BATCH, K, generator=g) < 0.7
    return read, emb, context, mask


@pytest.mark.parametrize("with_context", [False, True])
def test_round_trip_float64_exact(paper_model: MemoryTokens, with_context: bool) -> None:
    model = copy.deepcopy(paper_model).double().eval()
    read, emb, context, mask = _inputs(torch.float64, with_context)
    with torch.no_grad():
        written = model.write(read, emb, context, mask)
        read_hat, emb_hat = model.decode(written, context, mask)
    assert written.shape == (BATCH, 2 * D)
    assert (written - torch.cat([read, emb], -1)).abs().max() > 1e-3  # R did something
    assert (read_hat - read).abs().max().item() < 1e-10
    assert (emb_hat - emb).abs().max().item() < 1e-10


@pytest.mark.parametrize("with_context", [False, True])
def test_round_trip_float32_relative(paper_model: MemoryTokens, with_context: bool) -> None:
    read, emb, context, mask = _inputs(torch.float32, with_context)
    with torch.no_grad():
        written = paper_model.write(read, emb, context, mask)
        read_hat, emb_hat = paper_model.decode(written, context, mask)
    for got, want in ((read_hat, read), (emb_hat, emb)):
        rel = ((got - want).norm(dim=-1) / want.norm(dim=-1)).max().item()
        assert rel < 1e-4, rel


def test_context_is_used_and_needed_for_decode(paper_model: MemoryTokens) -> None:
    read, emb, context, mask = _inputs(torch.float32, True)
    with torch.no_grad():
        with_ctx = paper_model.write(read, emb, context, mask)
        without = paper_model.write(read, emb)
        assert (with_ctx - without).abs().max() > 1e-4
        _, emb_wrong = paper_model.decode(with_ctx)  # decoding without the write's context is not exact
        assert (emb_wrong - emb).abs().max() > 1e-4


def test_masked_neighbours_have_no_effect(paper_model: MemoryTokens) -> None:
    read, emb, context, _ = _inputs(torch.float32, True)
    mask = torch.ones(BATCH, K, dtype=torch.bool)
    mask[:, -2:] = False
    other = context.clone()
    other[:, -2:] = torch.randn(BATCH, 2, 2 * D)
    with torch.no_grad():
        a = paper_model.write(read, emb, context, mask)
        b = paper_model.write(read, emb, other, mask)
        c = paper_model.write(read, emb, other, None)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert (a - c).abs().max() > 1e-4


def test_empty_context_equals_no_context(paper_model: MemoryTokens) -> None:
    read, emb, _, _ = _inputs(torch.float32, False)
    with torch.no_grad():
        a = paper_model.write(read, emb, torch.zeros(BATCH, 0, 2 * D))
        b = paper_model.write(read, emb)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_r_starts_near_but_not_at_identity() -> None:
    torch.manual_seed(0)
    r = ReversibleTransformer(TokenConfig(embed_dim=D, depth=6)).eval()
    x = torch.randn(BATCH, 2 * D)
    with torch.no_grad():
        rel = ((r(x) - x).norm(dim=-1) / x.norm(dim=-1)).max().item()
    assert 1e-3 < rel < 0.5, rel


@pytest.mark.parametrize("mixer", ["attention", "mlp"])
def test_write_history_accumulates(mixer: str) -> None:
    torch.manual_seed(0)
    model = MemoryTokens(TokenConfig(embed_dim=64, depth=2, mixer=mixer)).eval()
    v1, v2, v3 = torch.randn(3, 2, 64).unbind(0)
    with torch.no_grad():
        fresh = model.fresh_read_token(2)
        w1 = model.write(fresh, v1)
        r1 = model.read_token(w1)
        w2 = model.write(r1, v2)
        r2 = model.read_token(w2)
        prev, last = model.decode(w2)
        # Same key, second write: decode gives v2 and the read token that went in.
        torch.testing.assert_close(last, v2, rtol=0, atol=1e-5)
        torch.testing.assert_close(prev, r1, rtol=0, atol=1e-5)
        # The read token changes with each write.
        assert (r1 - fresh).abs().max() > 1e-3
        assert (r2 - r1).abs().max() > 1e-3
        # Another key: v3 then v2. Same last embedding, different history -> different read token.
        r_other = model.read_token(model.write(model.read_token(model.write(fresh, v3)), v2))
        assert (r_other - r2).abs().max() > 1e-3
        # v2 written to a fresh key also differs from v1-then-v2.
        r_only = model.read_token(model.write(fresh, v2))
        assert (r_only - r2).abs().max() > 1e-3


def test_fresh_read_token_is_learned_parameter() -> None:
    model = MemoryTokens(TokenConfig(embed_dim=16, depth=1))
    fresh = model.fresh_read_token(3)
    assert fresh.shape == (3, 16)
    assert fresh.requires_grad
    torch.testing.assert_close(fresh[0], fresh[2])
    assert torch.equal(fresh[0].detach(), model.read_init.detach())


@pytest.mark.parametrize("mixer", ["attention", "mlp"])
def test_gradients_reach_every_parameter(mixer: str) -> None:
    torch.manual_seed(0)
    model = MemoryTokens(TokenConfig(embed_dim=32, depth=2, heads=4, mixer=mixer, position_dim=3)).train()
    b = 4
    v1, v2 = torch.randn(2, b, 32).unbind(0)
    context = torch.randn(b, 3, 64)
    target = torch.randn(b, 3)

    def protocol_loss() -> tuple[torch.Tensor, torch.Tensor]:
        loss = model.cycle_loss(model.fresh_read_token(b), v1, context)
        # Two writes to the same key: R's gradient comes through the read-token chain (R^-1 o R is the identity).
        w1 = model.write(model.fresh_read_token(b), v1, context)
        w2 = model.write(model.read_token(w1), v2, context)
        return loss + torch.nn.functional.mse_loss(model.decode_heads(w2, context)["position"], target), w2

    loss, _ = protocol_loss()
    loss.backward()
    no_grad = {name for name, p in model.named_parameters() if p.grad is None}
    # Documented: each decoder head learns only from losses on its own output; pi_d has none here.
    assert no_grad == {name for name, _ in model.pi_d.named_parameters(prefix="pi_d")}
    # Documented: the last block's G only shapes the written token's second half, which decode undoes.
    last_g = {n for n, _ in model.named_parameters() if n.startswith("R.blocks.1.g")}
    assert len(last_g) == 6
    for name, p in model.named_parameters():
        if p.grad is None:
            continue
        assert torch.isfinite(p.grad).all(), name
        if name in last_g:
            assert p.grad.abs().max() == 0, name
        else:
            assert p.grad.abs().max() > 0, f"zero gradient for {name}"
    # A consumer of the written token itself (an LTM key, the policy) trains the last G too.
    model.zero_grad()
    loss, w2 = protocol_loss()
    (loss + w2.square().mean()).backward()
    for name in last_g:
        assert model.get_parameter(name).grad.abs().max() > 0, name


def test_cycle_loss_trains_pi_v() -> None:
    torch.manual_seed(0)
    d = 64
    model = MemoryTokens(TokenConfig(embed_dim=d, depth=2)).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(123)
    val_read, val_emb = torch.randn(2, 256, d, generator=g).unbind(0)
    with torch.no_grad():
        before = model.cycle_loss(val_read, val_emb).item()
    for _ in range(200):
        read, emb = torch.randn(2, 64, d, generator=g).unbind(0)
        loss = model.cycle_loss(read, emb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = model.cycle_loss(val_read, val_emb).item()
    print(f"pi_v reconstruction MSE: before {before:.4f}, after {after:.4f} ({before / after:.1f}x)")
    assert after * 10 <= before, (before, after)
    # The exact decode never depended on training.
    with torch.no_grad():
        _, emb_hat = model.eval().decode(model.write(val_read, val_emb))
    torch.testing.assert_close(emb_hat, val_emb, rtol=0, atol=1e-5)


def test_dropout_decode_requires_eval_mode() -> None:
    torch.manual_seed(0)
    model = MemoryTokens(TokenConfig(embed_dim=32, depth=2, dropout=0.2)).train()
    read, emb = torch.randn(2, 4, 32).unbind(0)
    written = model.write(read, emb)
    assert not torch.equal(written, model.write(read, emb))  # dropout is active in train mode
    with pytest.raises(RuntimeError, match="eval"):
        model.decode(written)
    loss = model.cycle_loss(read, emb)  # training losses still run
    assert torch.isfinite(loss)
    assert model.decode_heads(written)["embedding"].shape == (4, 32)
    model.eval()
    with torch.no_grad():
        written = model.write(read, emb)
        torch.testing.assert_close(written, model.write(read, emb), rtol=0, atol=0)
        _, emb_hat = model.decode(written)
    torch.testing.assert_close(emb_hat, emb, rtol=0, atol=1e-5)


def test_dropout_zero_decode_works_in_train_mode() -> None:
    model = MemoryTokens(TokenConfig(embed_dim=32, depth=2)).train()
    read, emb = torch.randn(2, 4, 32).unbind(0)
    _, emb_hat = model.decode(model.write(read, emb))
    torch.testing.assert_close(emb_hat, emb, rtol=0, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(
    mixer=st.sampled_from(["attention", "mlp"]),
    d_half=st.integers(1, 8),
    depth=st.integers(1, 3),
    batch=st.integers(1, 4),
    k=st.integers(0, 4),
    seed=st.integers(0, 2**16),
)
def test_round_trip_property(mixer: str, d_half: int, depth: int, batch: int, k: int, seed: int) -> None:
    d = 2 * d_half
    torch.manual_seed(seed)
    model = MemoryTokens(TokenConfig(embed_dim=d, depth=depth, heads=2, mixer=mixer)).double().eval()
    read, emb = (3 * torch.randn(2, batch, d, dtype=torch.float64)).unbind(0)
    context = torch.randn(batch, k, 2 * d, dtype=torch.float64)
    mask = torch.rand(batch, k) < 0.5
    with torch.no_grad():
        written = model.write(read, emb, context, mask)
        read_hat, emb_hat = model.decode(written, context, mask)
    assert (read_hat - read).abs().max() < 1e-10
    assert (emb_hat - emb).abs().max() < 1e-10


def test_decode_heads_shapes() -> None:
    model = MemoryTokens(TokenConfig(embed_dim=16, depth=1, position_dim=2, descriptor_dim=5))
    out = model.decode_heads(torch.randn(3, 32), torch.randn(3, 2, 32))
    shapes = {k: tuple(v.shape) for k, v in out.items()}
    assert shapes == {"embedding": (3, 16), "position": (3, 2), "descriptor": (3, 5)}
    default = MemoryTokens(TokenConfig(embed_dim=16, depth=1)).decode_heads(torch.randn(3, 32))
    assert default["descriptor"].shape == (3, 16)


def test_bad_inputs_raise() -> None:
    model = MemoryTokens(TokenConfig(embed_dim=16, depth=1)).eval()
    good = torch.randn(2, 16)
    with pytest.raises(ValueError, match=r"\(B, 16\)"):
        model.write(torch.randn(2, 15), good)
    with pytest.raises(ValueError, match=r"\(B, 16\)"):
        model.write(good, torch.randn(2, 32))
    with pytest.raises(ValueError, match=r"\(B, 16\)"):
        model.write(good, torch.randn(16))
    with pytest.raises(ValueError, match="batch sizes differ"):
        model.write(good, torch.randn(3, 16))
    with pytest.raises(ValueError, match=r"\(B, 32\)"):
        model.decode(torch.randn(2, 16))
    with pytest.raises(ValueError, match=r"\(B, 32\)"):
        model.read_token(torch.randn(2, 31))
    with pytest.raises(ValueError, match=r"\(B, 32\)"):
        model.R(torch.randn(2, 30))
    nan = good.clone()
    nan[0, 3] = float("nan")
    inf = good.clone()
    inf[1, 0] = float("inf")
    for bad in (nan, inf):
        with pytest.raises(ValueError, match="NaN or inf"):
            model.write(bad, good)
        with pytest.raises(ValueError, match="NaN or inf"):
            model.cycle_loss(good, bad)
    with pytest.raises(ValueError, match="NaN or inf"):
        model.decode(torch.cat([good, inf], -1))
    with pytest.raises(ValueError, match="floating"):
        model.write(good.long(), good)
    with pytest.raises(ValueError, match=r"\(2, K, 32\)"):
        model.write(good, good, torch.randn(2, 3, 16))
    with pytest.raises(ValueError, match=r"\(2, K, 32\)"):
        model.write(good, good, torch.randn(3, 3, 32))
    bad_ctx = torch.randn(2, 3, 32)
    bad_ctx[0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="context contains NaN or inf"):
        model.write(good, good, bad_ctx)
    with pytest.raises(ValueError, match="bool"):
        model.write(good, good, torch.randn(2, 3, 32), torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        model.write(good, good, torch.randn(2, 3, 32), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="without context"):
        model.write(good, good, None, torch.ones(2, 3, dtype=torch.bool))
    for batch in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="batch"):
            model.fresh_read_token(batch)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"embed_dim": 0}, "embed_dim"),
        ({"embed_dim": 8.0}, "embed_dim"),
        ({"depth": 0}, "depth"),
        ({"heads": 0}, "heads"),
        ({"mlp_ratio": 0}, "mlp_ratio"),
        ({"position_dim": 0}, "position_dim"),
        ({"descriptor_dim": -1}, "descriptor_dim"),
        ({"mixer": "conv"}, "mixer"),
        ({"embed_dim": 10, "heads": 4}, "divide"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"dropout": float("nan")}, "dropout"),
    ],
)
def test_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TokenConfig(**kwargs)


def test_config_mlp_mixer_ignores_heads_divisibility() -> None:
    assert TokenConfig(embed_dim=10, heads=4, mixer="mlp").token_dim == 20
