"""Exponential moving average of a model's weights (Diffusion Policy's schedule, power 0.75)."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

__all__ = ["EMA"]


class EMA:
    """A frozen copy of a model whose parameters track an exponential moving average of the model's.

    After the ``k``-th update (k = 0, 1, ...), ``θ_ema ← d_k θ_ema + (1 − d_k) θ`` with
    ``d_k = min(max_decay, 1 − (1 + k)^−power)``: ``d_0 = 0`` (the copy starts as the model), and the average
    grows slowly longer as training goes on (power 0.75: d ≈ 0.97 after 100 updates, 0.995 after 1000).
    Buffers (normaliser statistics, counters) are copied, not averaged.

    Args:
        model: The model being trained (deep-copied once; the copy is in eval mode with ``requires_grad`` off).
        power: Exponent of the decay schedule.
        max_decay: Upper bound of the decay.

    Attributes:
        model: The averaged copy (use it for evaluation and checkpoints).
        updates: Number of :meth:`update` calls so far.
    """

    def __init__(self, model: nn.Module, *, power: float = 0.75, max_decay: float = 0.9999) -> None:
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.power = power
        self.max_decay = max_decay
        self.updates = 0

    def decay(self) -> float:
        """The decay the next :meth:`update` uses."""
        return min(self.max_decay, 1.0 - (1.0 + self.updates) ** -self.power)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average toward ``model``'s current parameters and copy its buffers."""
        weight = 1.0 - self.decay()
        ema_params = list(self.model.parameters())
        params = [p.detach() for p in model.parameters()]
        if len(ema_params) != len(params):
            raise ValueError(f"EMA holds {len(ema_params)} parameters, the model has {len(params)}")
        torch._foreach_lerp_(ema_params, params, weight)
        for ema_buf, buf in zip(self.model.buffers(), model.buffers(), strict=True):
            ema_buf.copy_(buf)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        """``{"updates": int, "model": state_dict of the averaged copy}`` (plain types and tensors)."""
        return {
            "updates": self.updates,
            "model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])
