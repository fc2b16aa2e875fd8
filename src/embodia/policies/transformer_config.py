"""``TransformerPolicyConfig``: the backbone settings shared by the policies built on ``TransformerBackbone``."""

from __future__ import annotations

from dataclasses import dataclass

from embodia.policies.backbone import BackboneConfig, BackboneSizes
from embodia.policies.base import PolicyConfig


@dataclass(kw_only=True)
class TransformerPolicyConfig(BackboneSizes, PolicyConfig):
    """A policy config with the shared transformer backbone's sizes (EBT-Policy, Diffusion Policy).

    The sizes are :class:`~embodia.policies.backbone.BackboneSizes`' fields, defined and checked there.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_sizes()

    def backbone_config(self, out_dim: int, cond_dim: int = 0) -> BackboneConfig:
        """The ``BackboneConfig`` for this policy.

        Args:
            out_dim: per-token output width of the head.
            cond_dim: width of the conditioning vector (0: none).
        """
        sizes = {**self.sizes(), "dropout": float(self.dropout)}
        return BackboneConfig(
            obs_dim=self.obs_dim, action_dim=self.action_dim, n_obs_steps=self.n_obs_steps, horizon=self.horizon,
            out_dim=out_dim, cond_dim=cond_dim, **sizes,
        )  # fmt: skip
