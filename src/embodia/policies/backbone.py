"""The action-chunk transformer shared by EBT-Policy (energy head) and Diffusion Policy (epsilon head).

::

    obs (B, To, Do) ──Linear──+ learned pos──┐
    cond (B, Dc) ──MLP── one token ──────────┴─ memory (B, M, d), M = [cond] + To
                                    └─ n_obs_layers causal pre-RMSNorm self-attention blocks ─ RMSNorm
    action (B, Tp, Da) ──MLP──+ sin-cos pos── x (B, Tp, d)
        n_layers × [ x += SelfAttn(RMSNorm x)            (causal over actions if causal_actions)
                     x += CrossAttn(RMSNorm x, memory)   (masked, below)
                     x += FFN(RMSNorm x) ]
    head: RMSNorm ─ Linear ─ GELU ─ Linear(no bias) ─ out (B, Tp, out_dim)

**Time alignment and masks.** Observation index ``s`` (0 .. To-1) and action index ``j`` (0 .. Tp-1) both count
from step ``t - (To-1)``, so ``obs[s]`` is the observation at the step where ``action[j = s]`` is taken.
Memory index ``m`` is the conditioning token (``m = 0``, only when ``cond_dim > 0``) or observation
``s = m - n_cond``. The masks (True = may attend) are

* obs encoder, memory ``m`` over memory ``m'``: ``m' <= m`` (causal in time; the cond token is seen by all
  and sees only itself);
* cross-attention, action ``j`` over memory ``m``: ``m`` is the cond token, or ``s = m - n_cond <= j``
  (action ``j`` sees observations up to its own step; ``j >= 0`` always sees ``obs[0]``, so no row is empty);
* self-attention, action ``j`` over action ``k``: ``k <= j`` when ``causal_actions`` (default), else all.

With ``causal_actions=True`` the output at action ``j`` is a function of ``obs[0..j]``, ``cond`` and
``action[0..j]`` only: changing ``obs[s]`` for ``s > j`` leaves it unchanged. With full action
self-attention (``causal_actions=False``) action ``j`` reads later action tokens, which (from the second
layer on) have read later observations, so only the *direct* cross-attention is masked.

**Second-order safety.** Attention is written out (``softmax(QKᵀ/√dh + mask) V``), never
``F.scaled_dot_product_attention`` (its flash/efficient kernels have no double backward), activations are GELU
(smooth: ReLU would make ``∇ₐ`` piecewise constant), and RMSNorm normalises each token on its own feature axis,
never across the batch or tokens, so samples stay independent and batch-1 inference equals batched
inference. The head's last Linear has no bias: a constant offset of the output is invisible to ``∇ₐ`` and would
be a parameter that energy training can never update.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from embodia.validation import check_int

__all__ = ["Attention", "BackboneConfig", "BackboneSizes", "RMSNorm", "TransformerBackbone", "sinusoidal_embedding"]

INITS = ("normal", "xavier")
"""Weight initialisations of :class:`TransformerBackbone` (``BackboneConfig.init``)."""
_INIT_STD = 0.02
"""Std of the normal initialisation of linear weights and learned positions (biases start at 0)."""


@dataclass(kw_only=True)
class BackboneSizes:
    """The sizes and settings of :class:`TransformerBackbone` that a policy config chooses.

    CPU-sized defaults (the EBT paper uses d=256, 8 blocks). :class:`BackboneConfig` and the policies' configs
    (``embodia.policies.transformer_config``) both take these fields from here.
    """

    d_model: int = 64
    """Token width d of the backbone (even, divisible by n_heads; EBT paper: 256)."""
    n_layers: int = 2
    """Action blocks of the backbone: self-attention, cross-attention, FFN (EBT paper: 8)."""
    n_heads: int = 4
    """Attention heads in every attention layer."""
    n_obs_layers: int = 1
    """Self-attention blocks of the observation encoder (0 = linear embedding + positions only; a conditioning
    token is encoded with the observations)."""
    mlp_ratio: int = 4
    """FFN hidden width as a multiple of d."""
    dropout: float = 0.0
    """Dropout on attention probabilities and residual branches (train mode only)."""
    causal_actions: bool = True
    """Causal self-attention over action tokens (see ``embodia.policies.backbone`` for what it guarantees)."""
    init: str = "normal"
    """Weight initialisation: ``"normal"`` (N(0, 0.02), residual projections scaled down by depth; GPT-2 style)
    or ``"xavier"`` (Xavier-uniform linear weights, as EBT-Policy's reference code; larger input gradients at
    initialisation, so an energy's first descent step moves the chunk)."""

    def check_sizes(self) -> None:
        """Raise ``ValueError`` naming the first size or setting that is out of range."""
        for name in ("d_model", "n_layers", "n_heads", "mlp_ratio"):
            check_int(name, getattr(self, name), 1)
        check_int("n_obs_layers", self.n_obs_layers, 0)
        if self.d_model % 2 or self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be even and divisible by n_heads ({self.n_heads})")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, int | float) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1), got {self.dropout!r}")
        if not isinstance(self.causal_actions, bool):
            raise ValueError(f"causal_actions must be a bool, got {self.causal_actions!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")

    def sizes(self) -> dict[str, Any]:
        """The :class:`BackboneSizes` fields of this object, by name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(BackboneSizes)}


@dataclass(kw_only=True)
class BackboneConfig(BackboneSizes):
    """Everything :class:`TransformerBackbone` is built from: the windows and widths, plus :class:`BackboneSizes`."""

    obs_dim: int
    """Do: width of one observation step."""
    action_dim: int
    """Da: width of one action."""
    n_obs_steps: int
    """To: observation tokens."""
    horizon: int
    """Tp: action tokens."""
    out_dim: int
    """Width of the per-token output: Da for epsilon/action prediction, 1 (or Da) for per-token energies."""
    cond_dim: int = 0
    """Width of the extra conditioning vector (e.g. a diffusion-step embedding); 0 = no conditioning token."""
    norm_eps: float = 1e-6
    """Epsilon of every RMSNorm."""

    def __post_init__(self) -> None:
        for name in ("obs_dim", "action_dim", "n_obs_steps", "horizon", "out_dim"):
            check_int(name, getattr(self, name), 1)
        check_int("cond_dim", self.cond_dim, 0)
        self.check_sizes()
        if not self.norm_eps > 0:
            raise ValueError(f"norm_eps must be > 0, got {self.norm_eps!r}")


def sinusoidal_embedding(x: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sin-cos embedding of positions or diffusion steps: ``(N,)`` -> ``(N, dim)`` (``dim`` even).

    ``out[n, i] = sin(x_n / max_period^(i/h))`` and ``out[n, h+i] = cos(...)`` for ``i < h = dim/2``.
    """
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=x.device) / half)  # (h,)
    angles = x.float()[:, None] * freqs[None, :]  # (N, h)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)  # (N, dim)


class RMSNorm(nn.Module):
    """Root-mean-square norm over the last axis only (per token, per sample), with a learned gain."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        """``(..., dim)`` -> ``(..., dim)``."""
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Attention(nn.Module):
    """Multi-head attention written out as ``softmax(QKᵀ/√dh + mask) V`` (double-backward safe).

    Args:
        dim: Token width d.
        n_heads: Heads (divide d).
        dropout: Dropout on the attention probabilities.
    """

    def __init__(self, dim: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, context: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """Queries from ``x`` ``(B, Tq, d)``, keys/values from ``context`` ``(B, Tk, d)`` (default ``x``).

        ``mask``: ``(Tq, Tk)`` bool, True where query may attend key; every row needs one True.
        """
        context = x if context is None else context
        b, tq, d = x.shape
        tk, h = context.shape[1], self.n_heads
        q = self.q(x).view(b, tq, h, d // h).transpose(1, 2)  # (B, h, Tq, dh)
        k, v = self.kv(context).view(b, tk, 2, h, d // h).permute(2, 0, 3, 1, 4)  # 2 × (B, h, Tk, dh)
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // h)  # (B, h, Tq, Tk)
        if mask is not None:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)  # (B, h, Tq, Tk)
        probs = self.attn_drop(scores.softmax(dim=-1))  # (B, h, Tq, Tk)
        out = (probs @ v).transpose(1, 2).reshape(b, tq, d)  # (B, Tq, d)
        return self.proj(out)  # (B, Tq, d)


class FeedForward(nn.Module):
    """``Linear(d, r·d) -> GELU -> Linear(r·d, d)``."""

    def __init__(self, dim: int, ratio: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, ratio * dim)
        self.proj = nn.Linear(ratio * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """``(..., d)`` -> ``(..., d)``."""
        return self.proj(F.gelu(self.fc(x)))


class EncoderBlock(nn.Module):
    """Pre-RMSNorm self-attention block: ``x += Attn(N x)``, ``x += FFN(N x)``."""

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.norm1, self.norm2 = RMSNorm(d, cfg.norm_eps), RMSNorm(d, cfg.norm_eps)
        self.attn = Attention(d, cfg.n_heads, cfg.dropout)
        self.ffn = FeedForward(d, cfg.mlp_ratio)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """``(B, M, d)`` -> ``(B, M, d)`` with a ``(M, M)`` mask."""
        x = x + self.drop(self.attn(self.norm1(x), mask=mask))  # (B, M, d)
        return x + self.drop(self.ffn(self.norm2(x)))  # (B, M, d)


class DecoderBlock(nn.Module):
    """Pre-RMSNorm action block: self-attention, cross-attention to the memory, FFN."""

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.norm1, self.norm2, self.norm3 = (RMSNorm(d, cfg.norm_eps) for _ in range(3))
        self.self_attn = Attention(d, cfg.n_heads, cfg.dropout)
        self.cross_attn = Attention(d, cfg.n_heads, cfg.dropout)
        self.ffn = FeedForward(d, cfg.mlp_ratio)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, memory: Tensor, self_mask: Tensor, cross_mask: Tensor) -> Tensor:
        """``x`` ``(B, Tp, d)``, ``memory`` ``(B, M, d)``, masks ``(Tp, Tp)`` and ``(Tp, M)`` -> ``(B, Tp, d)``."""
        x = x + self.drop(self.self_attn(self.norm1(x), mask=self_mask))  # (B, Tp, d)
        x = x + self.drop(self.cross_attn(self.norm2(x), memory, mask=cross_mask))  # (B, Tp, d)
        return x + self.drop(self.ffn(self.norm3(x)))  # (B, Tp, d)


class TransformerBackbone(nn.Module):
    """Per-token outputs for an action chunk given an observation window (see the module docstring).

    Call ``forward(obs, action, cond)``, or :meth:`encode` once and :meth:`decode` many times (EBT's descent
    steps re-use the observation memory).
    """

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        self.config = cfg = config
        d, n_cond = cfg.d_model, int(cfg.cond_dim > 0)
        self.obs_embed = nn.Linear(cfg.obs_dim, d)
        self.obs_pos = nn.Parameter(torch.zeros(cfg.n_obs_steps, d))
        self.cond_embed = (
            nn.Sequential(nn.Linear(cfg.cond_dim, d), nn.GELU(), nn.Linear(d, d)) if cfg.cond_dim > 0 else None
        )
        self.encoder = nn.ModuleList(EncoderBlock(cfg) for _ in range(cfg.n_obs_layers))
        self.memory_norm = RMSNorm(d, cfg.norm_eps)

        self.action_embed = nn.Sequential(nn.Linear(cfg.action_dim, d), nn.GELU(), nn.Linear(d, d))
        positions = torch.arange(cfg.horizon, dtype=torch.float32)
        self.register_buffer("action_pos", sinusoidal_embedding(positions, d), persistent=False)  # (Tp, d)
        self.blocks = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.n_layers))
        self.head = nn.Sequential(
            RMSNorm(d, cfg.norm_eps), nn.Linear(d, d), nn.GELU(), nn.Linear(d, cfg.out_dim, bias=False)
        )

        m = n_cond + cfg.n_obs_steps
        mem_idx = torch.arange(m)  # memory index
        obs_step = mem_idx - n_cond  # (M,) observation step, -1 for the cond token
        act_idx = torch.arange(cfg.horizon)  # (Tp,)
        self.register_buffer("obs_mask", mem_idx[None, :] <= mem_idx[:, None], persistent=False)  # (M, M)
        cross = obs_step[None, :] <= act_idx[:, None]  # (Tp, M); the cond token has step -1 <= j
        self.register_buffer("cross_mask", cross, persistent=False)
        self_mask = (
            act_idx[None, :] <= act_idx[:, None]
            if cfg.causal_actions
            else torch.ones(cfg.horizon, cfg.horizon, dtype=torch.bool)
        )
        self.register_buffer("self_mask", self_mask, persistent=False)  # (Tp, Tp)
        self._init_weights()

    def _init_weights(self) -> None:
        """Zero biases, unit RMSNorm gains, N(0, 0.02) positions; linear weights by ``init``.

        ``"normal"``: N(0, 0.02), residual projections scaled down by depth. ``"xavier"``: Xavier-uniform.
        """
        xavier = self.config.init == "xavier"
        for module in self.modules():
            if isinstance(module, nn.Linear):
                if xavier:
                    nn.init.xavier_uniform_(module.weight)
                else:
                    nn.init.normal_(module.weight, std=_INIT_STD)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.obs_pos, std=_INIT_STD)
        if xavier:
            return
        depth = self.config.n_layers + self.config.n_obs_layers
        for name, param in self.named_parameters():
            if name.endswith("proj.weight"):  # outputs of attention and FFN, added to the residual stream
                nn.init.normal_(param, std=_INIT_STD / math.sqrt(2 * depth))

    def encode(self, obs: Tensor, cond: Tensor | None = None) -> Tensor:
        """Observation memory ``(B, M, d)`` from ``obs`` ``(B, To, Do)`` and ``cond`` ``(B, cond_dim)``."""
        cfg = self.config
        if obs.ndim != 3 or tuple(obs.shape[1:]) != (cfg.n_obs_steps, cfg.obs_dim):
            raise ValueError(f"obs must have shape (B, {cfg.n_obs_steps}, {cfg.obs_dim}), got {tuple(obs.shape)}")
        tokens = self.obs_embed(obs) + self.obs_pos  # (B, To, d)
        if self.cond_embed is not None:
            if cond is None or tuple(cond.shape) != (obs.shape[0], cfg.cond_dim):
                shown = None if cond is None else tuple(cond.shape)
                raise ValueError(f"cond must have shape ({obs.shape[0]}, {cfg.cond_dim}), got {shown}")
            tokens = torch.cat([self.cond_embed(cond)[:, None], tokens], dim=1)  # (B, 1 + To, d)
        elif cond is not None:
            raise ValueError("cond given but the backbone has cond_dim = 0")
        for block in self.encoder:
            tokens = block(tokens, self.obs_mask)  # (B, M, d)
        return self.memory_norm(tokens)  # (B, M, d)

    def decode(self, memory: Tensor, action: Tensor) -> Tensor:
        """Per-token outputs ``(B, Tp, out_dim)`` for ``action`` ``(B, Tp, Da)`` given ``memory`` ``(B, M, d)``."""
        cfg = self.config
        if action.ndim != 3 or tuple(action.shape[1:]) != (cfg.horizon, cfg.action_dim):
            raise ValueError(f"action must have shape (B, {cfg.horizon}, {cfg.action_dim}), got {tuple(action.shape)}")
        if memory.shape[0] != action.shape[0]:
            raise ValueError(f"memory batch {memory.shape[0]} != action batch {action.shape[0]}")
        x = self.action_embed(action) + self.action_pos  # (B, Tp, d)
        for block in self.blocks:
            x = block(x, memory, self.self_mask, self.cross_mask)  # (B, Tp, d)
        return self.head(x)  # (B, Tp, out_dim)

    def forward(self, obs: Tensor, action: Tensor, cond: Tensor | None = None) -> Tensor:
        """``obs`` ``(B, To, Do)``, ``action`` ``(B, Tp, Da)``, ``cond`` ``(B, cond_dim)`` -> ``(B, Tp, out_dim)``."""
        return self.decode(self.encode(obs, cond), action)
