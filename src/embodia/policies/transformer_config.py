"""``TransformerPolicyConfig``: the backbone settings shared by the policies built on ``TransformerBackbone``."""

from __future__ import annotations

from dataclasses import dataclass

from embodia.policies.backbone import INITS, BackboneConfig
from embodia.policies.base import PolicyConfig
from embodia.validation import check_bool, check_int


@dataclass(kw_only=True)
class TransformerPolicyConfig(PolicyConfig):
    """A policy config with the shared transformer backbone's sizes (EBT-Policy, Diffusion Policy)."""

    d_model: int = 64
    """Token width d of the backbone (EBT paper: 256)."""
    n_layers: int = 2
    """Action blocks of the backbone (EBT paper: 8)."""
    n_heads: int = 4
    """Attention heads."""
    n_obs_layers: int = 1
    """Self-attention blocks of the observation encoder (a conditioning token is encoded with the observations)."""
    mlp_ratio: int = 4
    """FFN hidden width as a multiple of d."""
    dropout: float = 0.0
    """Backbone dropout (train mode only)."""
    causal_actions: bool = True
    """Causal self-attention over action tokens (see ``embodia.policies.backbone``)."""
    init: str = "normal"
    """Backbone weight initialisation, ``"normal"`` or ``"xavier"`` (see ``BackboneConfig.init``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("d_model", "n_layers", "n_heads", "mlp_ratio"):
            check_int(name, getattr(self, name), 1)
        check_int("n_obs_layers", self.n_obs_layers, 0)
        if self.d_model % 2 or self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be even and divisible by n_heads ({self.n_heads})")
        if not (isinstance(self.dropout, int | float) and not isinstance(self.dropout, bool)) or not (
            0 <= self.dropout < 1
        ):
            raise ValueError(f"dropout must be a number in [0, 1), got {self.dropout!r}")
        check_bool("causal_actions", self.causal_actions)
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")

    def backbone_config(self, out_dim: int, cond_dim: int = 0) -> BackboneConfig:
        """The ``BackboneConfig`` for this policy.

        Args:
            out_dim: per-token output width of the head.
            cond_dim: width of the conditioning vector (0: none).
        """
        return BackboneConfig(
            obs_dim=self.obs_dim,
            action_dim=self.action_dim,
            n_obs_steps=self.n_obs_steps,
            horizon=self.horizon,
            out_dim=out_dim,
            cond_dim=cond_dim,
            d_model=self.d_model,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            n_obs_layers=self.n_obs_layers,
            mlp_ratio=self.mlp_ratio,
            dropout=float(self.dropout),
            causal_actions=self.causal_actions,
            init=self.init,
        )
