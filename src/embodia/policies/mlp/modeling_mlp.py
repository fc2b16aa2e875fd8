"""MLP behaviour cloning: the unimodal baseline (it averages the modes of bimodal demonstrations)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor, nn

from embodia.policies.base import Policy, chunk_mean
from embodia.policies.mlp.configuration_mlp import MLPConfig

__all__ = ["MLPPolicy"]


class MLPPolicy(Policy):
    """``(B, To·Do) -> MLP -> (B, Tp·Da)``, trained with MSE on the normalised chunk.

    Args:
        config: An :class:`MLPConfig`.
    """

    name = "mlp"
    config_class = MLPConfig

    def __init__(self, config: MLPConfig) -> None:
        super().__init__(config)
        c = config
        widths = (c.n_obs_steps * c.obs_dim, *c.hidden_dims)
        layers: list[nn.Module] = []
        for w_in, w_out in itertools.pairwise(widths):
            layers += [nn.Linear(w_in, w_out), nn.GELU(), nn.Dropout(c.dropout)]
        layers.append(nn.Linear(widths[-1], c.horizon * c.action_dim))
        self.net = nn.Sequential(*layers)
        for module in self.net:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def _forward(self, obs: Tensor) -> Tensor:
        """Normalised obs ``(B, To, Do)`` -> normalised chunk ``(B, Tp, Da)``."""
        c = self.config
        out = self.net(obs.flatten(1))  # (B, Tp·Da)
        return out.view(-1, c.horizon, c.action_dim)  # (B, Tp, Da)

    def predict_action(self, batch: Mapping[str, Tensor | np.ndarray]) -> Tensor:
        """Raw action chunk ``(B, Tp, Da)`` for ``batch["obs"]`` ``(B, To, Do)`` (deterministic, no graph)."""
        with torch.no_grad():
            obs = self.normalize_batch(batch, with_action=False)["obs"]  # (B, To, Do)
            return self.unnormalize_action(self._forward(obs))  # (B, Tp, Da)

    def compute_loss(self, batch: Mapping[str, Tensor | np.ndarray]) -> tuple[Tensor, dict[str, float]]:
        """MSE between predicted and demonstrated normalised chunks; terms ``{"mse"}``."""
        norm = self.normalize_batch(batch, with_action=True)
        pred = self._forward(norm["obs"])  # (B, Tp, Da)
        err = (pred - norm["action"]).pow(2)  # (B, Tp, Da)
        loss = chunk_mean(err, norm["action_mask"] if self.config.mask_padded_actions else None)
        return loss, {"mse": float(loss.detach())}
