"""Mem4Nav memory tokens: a reversible transformer R, its decoders, and the write / read / decode protocol.

A memory token is ``2d`` wide (``d`` = observation embedding width). Every memory key (an octree leaf, a topology
node) keeps one *written* token ``θ_w``; writing observation ``v`` to a key whose current read token is ``θ_r`` is

    ``θ_w = R([θ_r ; v])``                      (``write``)

and ``R⁻¹(θ_w) = [θ_r ; v]`` recovers both halves exactly (``decode``; in eval mode, up to float round-off).

R is a stack of additive coupling blocks (MEM4NAV.md §3). On ``x = [x1 ; x2]`` (two ``d``-wide halves)::

    y1 = x1 + F(x2, ctx)        inverse:  x2 = y2 - G(y1)
    y2 = x2 + G(y1)                       x1 = y1 - F(x2, ctx)

G is a pre-norm MLP (``mlp_ratio`` × wider). F is chosen by ``TokenConfig.mixer``:

* ``"attention"`` (default): pre-norm multi-head attention whose single query is ``x2`` and whose keys/values are
  ``[x2 ; second halves of the neighbour tokens]``. Without neighbours it attends to ``x2`` alone, so it reduces to
  a linear map of ``LayerNorm(x2)`` (the degenerate case MEM4NAV.md warns about): pass ``context`` to get real
  attention.
* ``"mlp"``: a pre-norm MLP of ``[LayerNorm(x2) ; masked mean of LayerNorm(neighbour second halves)]`` (zeros for
  the pooled part when there are no neighbours).

F never sees ``x1``, and the neighbour tokens (``context``, ``(B, K, 2d)``) are a fixed condition: every block
sees the same neighbour second halves (normalised by its own LayerNorm); they are not transformed by R. So the
inverse recomputes exactly the same F and G, whatever the context, provided ``decode`` gets the **same context**
as ``write`` did.

**The read token (why it is not "the first half of R⁻¹(θ_w)").** MEM4NAV.md says the read token for the next
write is the first half of ``R⁻¹(θ_w)`` and must carry the accumulated state. But ``R⁻¹(R([θ_r ; v]))`` is
``[θ_r ; v]``, so that first half is ``θ_r`` itself: it would never change, and a key's read token would stay
the fresh one forever (the released code's bug in another form). We instead take ``read_token(θ_w) =
θ_w[..., :d]``, the first half of the *written* token. The couplings mix ``θ_r`` and ``v`` into it
(``y1 = x1 + F(x2)`` block after block), so it depends on the whole history of writes to the key: writing
``v1`` then ``v2`` gives a different read token from writing ``v2`` alone, or ``v3`` then ``v2``. Decoding
stays exact: ``decode(θ_w)`` returns ``(θ_r, v)``, i.e. the last embedding exactly and the previous written
token's first half. Earlier embeddings are not exactly recoverable (that would need the whole previous written
token): the read half is a learned summary of the history, not a lossless log.

**Where R's gradient comes from.** Because ``R⁻¹ ∘ R`` is the identity, any loss on ``decode(write(x))`` or on
``decode_heads(write(x))`` gives R's parameters a zero gradient (up to round-off): such losses train only the
decoders π_v, π_p, π_d and whatever produced ``x``. R learns through the read-token chain (a later write uses
``read_token`` of an earlier one, which is not inverted), and through any consumer of written tokens themselves
(LTM keys, policy attention). The last block's G shapes only the second half of ``θ_w``, which ``decode``
undoes and ``read_token`` drops: through the protocol alone its gradient is exactly 0, and only consumers of
written tokens train it. The cycle loss ``cycle_loss`` is the paper's: with ``dropout = 0`` it trains π_v
only; with ``dropout > 0`` in train mode, forward and inverse draw different dropout masks, so it also pushes R
to be robust to them.

**Modes.** With ``dropout = 0`` (the default) train and eval modes compute the same thing. With ``dropout > 0``
R is not invertible in train mode: ``decode`` raises ``RuntimeError`` then (call ``.eval()``), while
``cycle_loss`` and ``decode_heads`` (learned, approximate outputs used in training losses) run. Tokens written
in train mode with dropout cannot be decoded exactly in any mode: write the tokens you store in eval mode.

**Scale.** Each write adds the couplings' outputs to the read half, so over many writes to one key the read
token's norm can drift upward: pre-norm bounds each step, not the sum. Measured at initialisation (d = 384,
depth 6, unit-variance embeddings of norm ~20): the read token's norm goes ~2 -> 40 over 200 writes with the
attention mixer, ~2 -> 130 with the MLP mixer. The decoders are plain MLPs without a norm, so the token's scale
reaches them.

Inputs are validated: tokens must be 2-D with the right width (``ValueError`` naming the expected width),
finite (``ValueError`` on NaN/inf), and share the batch size with the context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MIXERS", "CouplingBlock", "MemoryTokens", "ReversibleTransformer", "TokenConfig"]

MIXERS: tuple[str, ...] = ("attention", "mlp")
"""Choices for ``TokenConfig.mixer``."""

_INIT_STD = 0.02
"""Std of the normal initialisation of every linear weight (biases start at 0)."""


@dataclass
class TokenConfig:
    """Widths and depth of the memory tokens, the reversible transformer R and its decoders."""

    embed_dim: int = 384
    """d: width of an observation embedding; a memory token is ``2 * embed_dim`` wide (paper: 384, token 768)."""
    depth: int = 6
    """Number of additive coupling blocks in R (paper: 6)."""
    mixer: str = "attention"
    """F of the couplings: ``"attention"`` (pre-norm multi-head attention of ``x2`` over ``[x2 ; neighbour second
    halves]``) or ``"mlp"`` (pre-norm MLP of ``[x2 ; mean of neighbour second halves]``)."""
    heads: int = 4
    """Attention heads of F when ``mixer == "attention"``; must divide ``embed_dim``."""
    mlp_ratio: int = 4
    """Hidden width of the coupling MLPs (G, and F when ``mixer == "mlp"``) as a multiple of ``embed_dim``."""
    position_dim: int = 3
    """Output width of the position decoder π_p."""
    descriptor_dim: int = 0
    """Output width of the descriptor decoder π_d; 0 means ``embed_dim``."""
    dropout: float = 0.0
    """Dropout in F and G, active in train mode only. Must be 0 for exact inversion: with ``dropout > 0``,
    ``MemoryTokens.decode`` raises in train mode (decode in eval mode)."""

    def __post_init__(self) -> None:
        for name, low in (("embed_dim", 1), ("depth", 1), ("heads", 1), ("mlp_ratio", 1), ("position_dim", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if isinstance(self.descriptor_dim, bool) or not isinstance(self.descriptor_dim, int) or self.descriptor_dim < 0:
            raise ValueError(f"descriptor_dim must be an integer >= 0, got {self.descriptor_dim!r}")
        if self.mixer not in MIXERS:
            raise ValueError(f"mixer must be one of {MIXERS}, got {self.mixer!r}")
        if self.mixer == "attention" and self.embed_dim % self.heads != 0:
            raise ValueError(f"heads ({self.heads}) must divide embed_dim ({self.embed_dim})")
        dropout = self.dropout
        if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")

    @property
    def token_dim(self) -> int:
        """Width of a memory token, ``2 * embed_dim``."""
        return 2 * self.embed_dim

    @property
    def descriptor_width(self) -> int:
        """Output width of π_d (``descriptor_dim``, or ``embed_dim`` when that is 0)."""
        return self.descriptor_dim or self.embed_dim


# ----------------------------------------------------------------------------------------------------------------
# input checks


def _check_rows(name: str, x: Tensor, width: int) -> None:
    """Raise ValueError unless ``x`` is a finite floating tensor of shape ``(B, width)``."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 2 or x.shape[-1] != width:
        raise ValueError(f"{name} must have shape (B, {width}), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf")


def _context_halves(
    context: Tensor | None, context_mask: Tensor | None, batch: int, token_dim: int
) -> tuple[Tensor | None, Tensor | None]:
    """Validate neighbour tokens and return their second halves and mask (``(None, None)`` when there are none).

    Args:
        context: Neighbour tokens ``(B, K, 2d)`` or None.
        context_mask: ``(B, K)`` bool, True where a neighbour is real, or None (all real).
        batch: B of the tokens the context belongs to.
        token_dim: 2d.

    Returns:
        ``(ctx2, mask)``: ``(B, K, d)`` second halves and the ``(B, K)`` mask (None when all real).
    """
    if context is None:
        if context_mask is not None:
            raise ValueError("context_mask given without context")
        return None, None
    if not isinstance(context, Tensor):
        raise ValueError(f"context must be a torch.Tensor, got {type(context).__name__}")
    if context.ndim != 3 or context.shape[0] != batch or context.shape[-1] != token_dim:
        raise ValueError(f"context must have shape ({batch}, K, {token_dim}), got {tuple(context.shape)}")
    if not context.is_floating_point():
        raise ValueError(f"context must be a floating-point tensor, got {context.dtype}")
    if not bool(torch.isfinite(context).all()):
        raise ValueError("context contains NaN or inf")
    num = context.shape[1]
    if context_mask is not None:
        if not isinstance(context_mask, Tensor) or context_mask.dtype != torch.bool:
            raise ValueError("context_mask must be a bool tensor")
        if tuple(context_mask.shape) != (batch, num):
            raise ValueError(f"context_mask must have shape ({batch}, {num}), got {tuple(context_mask.shape)}")
    if num == 0:
        return None, None
    return context[..., token_dim // 2 :], context_mask  # (B, K, d)


# ----------------------------------------------------------------------------------------------------------------
# building blocks


class MLP(nn.Module):
    """Two-layer GELU MLP ``in -> hidden -> out`` with dropout on the output (no norm: callers pre-normalise)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc = nn.Linear(in_dim, hidden)
        self.proj = nn.Linear(hidden, out_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``(..., in_dim)`` to ``(..., out_dim)``."""
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class AttentionMixer(nn.Module):
    """F for ``mixer="attention"``: ``x2`` attends over ``[x2 ; neighbour second halves]`` (pre-norm, multi-head)."""

    def __init__(self, config: TokenConfig) -> None:
        super().__init__()
        d = config.embed_dim
        self.heads = config.heads
        self.norm = nn.LayerNorm(d)
        self.query = nn.Linear(d, d)
        self.key_value = nn.Linear(d, 2 * d)
        self.proj = nn.Linear(d, d)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x2: Tensor, ctx2: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """Attend from ``x2`` over itself and the neighbours.

        Args:
            x2: Second half of the token, ``(B, d)``.
            ctx2: Neighbour second halves ``(B, K, d)`` or None.
            mask: ``(B, K)`` bool, True for real neighbours, or None (all real).

        Returns:
            ``(B, d)``.
        """
        b, d = x2.shape
        tokens = x2[:, None] if ctx2 is None else torch.cat([x2[:, None], ctx2], dim=1)  # (B, 1+K, d)
        h = self.norm(tokens)  # (B, 1+K, d)
        hd = d // self.heads
        q = self.query(h[:, :1]).view(b, 1, self.heads, hd).transpose(1, 2)  # (B, H, 1, hd)
        k, v = self.key_value(h).split(d, dim=-1)  # (B, 1+K, d) each
        k = k.view(b, -1, self.heads, hd).transpose(1, 2)  # (B, H, 1+K, hd)
        v = v.view(b, -1, self.heads, hd).transpose(1, 2)  # (B, H, 1+K, hd)
        attn_mask = None
        if mask is not None:  # the token itself is always attended, so no row is fully masked
            attn_mask = torch.cat([mask.new_ones(b, 1), mask], dim=1)[:, None, None, :]  # (B, 1, 1, 1+K)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, H, 1, hd)
        out = out.transpose(1, 2).reshape(b, d)  # (B, d)
        return self.dropout(self.proj(out))  # (B, d)


class MLPMixer(nn.Module):
    """F for ``mixer="mlp"``: MLP of ``[LN(x2) ; masked mean of LN(neighbour second halves)]`` (zeros if none)."""

    def __init__(self, config: TokenConfig) -> None:
        super().__init__()
        d = config.embed_dim
        self.norm = nn.LayerNorm(d)
        self.context_norm = nn.LayerNorm(d)
        self.mlp = MLP(2 * d, config.mlp_ratio * d, d, config.dropout)

    def forward(self, x2: Tensor, ctx2: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """Same contract as ``AttentionMixer.forward``: ``x2`` ``(B, d)``, ``ctx2`` ``(B, K, d)`` -> ``(B, d)``."""
        if ctx2 is None:
            pooled = torch.zeros_like(x2)  # (B, d)
        else:
            c = self.context_norm(ctx2)  # (B, K, d)
            if mask is None:
                pooled = c.mean(dim=1)  # (B, d)
            else:
                w = mask.to(c.dtype)[..., None]  # (B, K, 1)
                pooled = (c * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)  # (B, d)
        return self.mlp(torch.cat([self.norm(x2), pooled], dim=-1))  # (B, d)


class CouplingBlock(nn.Module):
    """Additive coupling: ``y1 = x1 + F(x2, ctx2)``, ``y2 = x2 + G(y1)``; exactly invertible (F never sees x1)."""

    def __init__(self, config: TokenConfig) -> None:
        super().__init__()
        d = config.embed_dim
        self.f = AttentionMixer(config) if config.mixer == "attention" else MLPMixer(config)
        self.g_norm = nn.LayerNorm(d)
        self.g = MLP(d, config.mlp_ratio * d, d, config.dropout)

    def forward(self, x: Tensor, ctx2: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """Apply the block.

        Args:
            x: Tokens ``(B, 2d)``.
            ctx2: Neighbour second halves ``(B, K, d)`` or None.
            mask: ``(B, K)`` bool, True for real neighbours, or None.

        Returns:
            ``(B, 2d)``.
        """
        x1, x2 = x.chunk(2, dim=-1)  # (B, d) each
        y1 = x1 + self.f(x2, ctx2, mask)  # (B, d)
        y2 = x2 + self.g(self.g_norm(y1))  # (B, d)
        return torch.cat([y1, y2], dim=-1)  # (B, 2d)

    def inverse(self, y: Tensor, ctx2: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """Undo ``forward`` (same ``ctx2`` and ``mask``): ``(B, 2d)`` -> ``(B, 2d)``."""
        y1, y2 = y.chunk(2, dim=-1)  # (B, d) each
        x2 = y2 - self.g(self.g_norm(y1))  # (B, d)
        x1 = y1 - self.f(x2, ctx2, mask)  # (B, d)
        return torch.cat([x1, x2], dim=-1)  # (B, 2d)


class ReversibleTransformer(nn.Module):
    """R: ``depth`` additive coupling blocks on ``2d``-wide tokens, conditioned on optional neighbour tokens.

    Initialised near (not at) the identity: linear weights ~ N(0, 0.02²), and the output projections of F and G
    ~ N(0, (0.02 / sqrt(2 depth))²), so every parameter gets a gradient from the start.
    """

    def __init__(self, config: TokenConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else TokenConfig()
        self.blocks = nn.ModuleList(CouplingBlock(self.config) for _ in range(self.config.depth))
        self.apply(_init_weights)
        residual_std = _INIT_STD / math.sqrt(2 * self.config.depth)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=residual_std)

    def forward(self, x: Tensor, context: Tensor | None = None, context_mask: Tensor | None = None) -> Tensor:
        """Apply R.

        Args:
            x: Tokens ``(B, 2d)``.
            context: Neighbour tokens ``(B, K, 2d)`` or None; only their second halves are used, by F.
            context_mask: ``(B, K)`` bool, True where a neighbour is real, or None (all real).

        Returns:
            ``(B, 2d)``.
        """
        _check_rows("x", x, self.config.token_dim)
        ctx2, mask = _context_halves(context, context_mask, x.shape[0], self.config.token_dim)
        for block in self.blocks:
            x = block(x, ctx2, mask)  # (B, 2d)
        return x

    def inverse(self, y: Tensor, context: Tensor | None = None, context_mask: Tensor | None = None) -> Tensor:
        """Apply R⁻¹ (exact in eval mode, or with ``dropout == 0``) with the same context as the forward pass.

        Args:
            y: Tokens ``(B, 2d)``.
            context: Neighbour tokens ``(B, K, 2d)`` or None, as given to ``forward``.
            context_mask: ``(B, K)`` bool or None, as given to ``forward``.

        Returns:
            ``(B, 2d)``.
        """
        _check_rows("y", y, self.config.token_dim)
        ctx2, mask = _context_halves(context, context_mask, y.shape[0], self.config.token_dim)
        for block in reversed(self.blocks):
            y = block.inverse(y, ctx2, mask)  # (B, 2d)
        return y


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=_INIT_STD)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


# ----------------------------------------------------------------------------------------------------------------
# memory tokens


class MemoryTokens(nn.Module):
    """R plus the decoders π_v, π_p, π_d and the write / read / decode protocol (see the module docstring).

    Parameters: ``R`` (the reversible transformer), ``read_init`` (the learned fresh read token, ``(d,)``) and the
    decoder heads ``pi_v`` (``2d -> d``), ``pi_p`` (``2d -> position_dim``), ``pi_d`` (``2d -> descriptor``), each a
    two-layer GELU MLP of hidden width ``mlp_ratio * d`` applied to ``R⁻¹(θ_w)``. Each head is trained only by losses
    on its own output (π_v by ``cycle_loss``, π_p / π_d by the caller's supervised losses).
    """

    def __init__(self, config: TokenConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else TokenConfig()
        d, t = self.config.embed_dim, self.config.token_dim
        self.R = ReversibleTransformer(self.config)
        self.read_init = nn.Parameter(torch.empty(d))
        hidden = self.config.mlp_ratio * d
        self.pi_v = MLP(t, hidden, d)
        self.pi_p = MLP(t, hidden, self.config.position_dim)
        self.pi_d = MLP(t, hidden, self.config.descriptor_width)
        for head in (self.pi_v, self.pi_p, self.pi_d):
            head.apply(_init_weights)
        nn.init.normal_(self.read_init, mean=0.0, std=_INIT_STD)

    def fresh_read_token(self, batch: int) -> Tensor:
        """The read token of a key never written to: the learned ``read_init`` expanded to ``(batch, d)``.

        The result is an expanded view (no copy): do not write into it in place.
        """
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
        return self.read_init.expand(batch, -1)  # (B, d)

    def write(
        self, read_token: Tensor, embedding: Tensor, context: Tensor | None = None, context_mask: Tensor | None = None
    ) -> Tensor:
        """Write an observation to keys: ``θ_w = R([θ_r ; v])``.

        Args:
            read_token: θ_r, the keys' current read tokens ``(B, d)`` (``fresh_read_token`` or ``read_token`` of
                the key's last written token).
            embedding: v, the observation embeddings ``(B, d)``.
            context: Neighbour tokens ``(B, K, 2d)`` or None; ``decode`` needs the same context.
            context_mask: ``(B, K)`` bool, True where a neighbour is real, or None.

        Returns:
            θ_w, the written tokens ``(B, 2d)``.
        """
        d = self.config.embed_dim
        _check_rows("read_token", read_token, d)
        _check_rows("embedding", embedding, d)
        if read_token.shape[0] != embedding.shape[0]:
            raise ValueError(f"batch sizes differ: read_token {read_token.shape[0]}, embedding {embedding.shape[0]}")
        x = torch.cat([read_token, embedding], dim=-1)  # (B, 2d)
        return self.R(x, context, context_mask)  # (B, 2d)

    def read_token(self, written: Tensor) -> Tensor:
        """Read token for the next write to the same key: the first half of the written token, ``(B, 2d) -> (B, d)``.

        Not the first half of ``R⁻¹(θ_w)``, which is the previous read token unchanged (module docstring).
        """
        _check_rows("written", written, self.config.token_dim)
        return written[..., : self.config.embed_dim]  # (B, d)

    def decode(
        self, written: Tensor, context: Tensor | None = None, context_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Invert a write exactly: ``R⁻¹(θ_w) = [θ_r ; v]``.

        Args:
            written: θ_w ``(B, 2d)``.
            context: The neighbour tokens ``(B, K, 2d)`` given to ``write`` (or None if none were).
            context_mask: The mask given to ``write``.

        Returns:
            ``(previous read token θ_r (B, d), embedding v (B, d))``.

        Raises:
            RuntimeError: In train mode with ``dropout > 0`` (R is not invertible then; call ``.eval()``).
        """
        if self.training and self.config.dropout > 0:
            raise RuntimeError("decode is exact only without dropout: call .eval() first (dropout > 0, train mode)")
        x = self.R.inverse(written, context, context_mask)  # (B, 2d)
        return x[..., : self.config.embed_dim], x[..., self.config.embed_dim :]  # (B, d), (B, d)

    def decode_heads(
        self,
        written: Tensor,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
        heads: tuple[str, ...] = ("embedding", "position", "descriptor"),
    ) -> dict[str, Tensor]:
        """Learned decoders on ``R⁻¹(θ_w)`` (runs in any mode; approximate in train mode with dropout).

        Args:
            written: θ_w ``(B, 2d)``.
            context: The neighbour tokens given to ``write`` (or None).
            context_mask: The mask given to ``write``.
            heads: which decoders to run (the others are skipped).

        Returns:
            ``{"embedding": π_v (B, d), "position": π_p (B, position_dim), "descriptor": π_d (B, descriptor)}``,
            restricted to ``heads``.
        """
        z = self.R.inverse(written, context, context_mask)  # (B, 2d)
        decoders = {"embedding": self.pi_v, "position": self.pi_p, "descriptor": self.pi_d}
        unknown = set(heads) - set(decoders)
        if unknown:
            raise ValueError(f"unknown heads {sorted(unknown)}; choose from {sorted(decoders)}")
        return {name: decoders[name](z) for name in heads}

    def cycle_loss(
        self, read_token: Tensor, embedding: Tensor, context: Tensor | None = None, context_mask: Tensor | None = None
    ) -> Tensor:
        """Cycle loss ``mean (v - π_v(R⁻¹(R([θ_r ; v]))))²`` over batch and features (``||·||² / d``, batch mean).

        Args:
            read_token: θ_r ``(B, d)``.
            embedding: v ``(B, d)``.
            context: Neighbour tokens ``(B, K, 2d)`` or None.
            context_mask: ``(B, K)`` bool or None.

        Returns:
            Scalar loss.
        """
        written = self.write(read_token, embedding, context, context_mask)  # (B, 2d)
        z = self.R.inverse(written, context, context_mask)  # (B, 2d)
        return F.mse_loss(self.pi_v(z), embedding)
