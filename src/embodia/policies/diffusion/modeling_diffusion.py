"""Diffusion Policy: a DDPM over normalised action chunks, ε-prediction on the shared transformer backbone.

Network. ``ε_θ(obs, a_t, t)`` is a :class:`~embodia.policies.backbone.TransformerBackbone` with
``out_dim = Da`` and ``cond_dim = step_embed_dim``: the diffusion step ``t`` enters as
``sinusoidal_embedding(t)``, which the backbone turns into a conditioning token in front of the observations.
Everything is per sample (nothing pools across the batch) and works in normalised action space ([-1, 1] on
the fitted data).

Training (:meth:`DiffusionPolicy.compute_loss`): ``t ~ U{0..T-1}``, ``ε ~ N(0, I)``,
``a_t = √ᾱ_t a* + √(1−ᾱ_t) ε``, loss = MSE(ε_θ(obs, a_t, t), ε) (``mask_padded_actions`` leaves padding out).

Inference (:meth:`DiffusionPolicy.predict_action`): ``a_T ~ N(0, I)`` then DDIM (η = 0, ``num_inference_steps``
network evaluations) or DDPM (ancestral, ``num_train_timesteps`` evaluations), each step clipping the x₀
estimate to [-1, 1] (see :mod:`embodia.policies.diffusion.scheduler`). The noise comes from torch's global RNG,
or from :attr:`DiffusionPolicy.generator` when it is set. ``last_nfe`` ``(B,)`` counts network evaluations.

EMA of weights is left to the trainer (it is a property of the optimisation, not of the model).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from embodia.policies.backbone import TransformerBackbone, sinusoidal_embedding
from embodia.policies.base import Policy, chunk_mean
from embodia.policies.diffusion.configuration_diffusion import DiffusionConfig
from embodia.policies.diffusion.scheduler import DDPMScheduler

__all__ = ["DiffusionPolicy"]


class DiffusionPolicy(Policy):
    """Diffusion Policy with a transformer ε-network (see the module docstring).

    Args:
        config: A :class:`DiffusionConfig`.

    Attributes:
        backbone: The ε-network (per-token outputs ``(B, Tp, Da)``, step token as ``cond``).
        scheduler: The :class:`DDPMScheduler` (schedule and update rules; not a module, nothing to save).
        generator: Optional ``torch.Generator`` for all sampling noise of :meth:`predict_action` (None: torch's
            global RNG). Not saved in checkpoints.
        last_nfe: ``(B,)`` long: network evaluations per sample in the last :meth:`predict_action` call.
    """

    name = "diffusion"
    config_class = DiffusionConfig

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__(config)
        c = config
        self.backbone = TransformerBackbone(c.backbone_config(out_dim=c.action_dim, cond_dim=c.step_embed_dim))
        self.scheduler = DDPMScheduler(c.num_train_timesteps, clip_sample=c.clip_sample)
        self.generator: torch.Generator | None = None
        self.last_nfe: Tensor | None = None

    def predict_noise(self, obs: Tensor, noisy_action: Tensor, t: Tensor) -> Tensor:
        """ε̂ ``(B, Tp, Da)`` for normalised ``obs`` ``(B, To, Do)``, ``noisy_action`` ``(B, Tp, Da)``, ``t`` ``(B,)``.

        One call is one network evaluation (NFE).
        """
        cond = sinusoidal_embedding(t, self.config.step_embed_dim).to(obs.dtype)  # (B, step_embed_dim)
        return self.backbone(obs, noisy_action, cond)  # (B, Tp, Da)

    def sample(self, obs: Tensor, inference: str | None = None, num_inference_steps: int | None = None) -> Tensor:
        """Normalised chunk ``(B, Tp, Da)`` from ``N(0, I)`` given normalised ``obs``; sets :attr:`last_nfe`.

        ``inference`` / ``num_inference_steps`` override the config's sampler for this call.
        """
        c = self.config
        inference = c.inference if inference is None else inference
        b = obs.shape[0]
        shape = (b, c.horizon, c.action_dim)
        x = torch.randn(shape, generator=self.generator, device=obs.device, dtype=obs.dtype)  # (B, Tp, Da)
        if inference == "ddpm":
            timesteps = list(reversed(range(c.num_train_timesteps)))
        elif inference == "ddim":
            timesteps = self.scheduler.ddim_timesteps(
                c.num_inference_steps if num_inference_steps is None else num_inference_steps
            )
        else:
            raise ValueError(f"inference must be 'ddim' or 'ddpm', got {inference!r}")
        for i, t in enumerate(timesteps):
            t_batch = torch.full((b,), t, dtype=torch.long, device=obs.device)  # (B,)
            eps = self.predict_noise(obs, x, t_batch)  # (B, Tp, Da)
            if inference == "ddpm":
                x = self.scheduler.ddpm_step(eps, t, x, generator=self.generator)
            else:
                prev_t = timesteps[i + 1] if i + 1 < len(timesteps) else -1
                x = self.scheduler.ddim_step(eps, t, prev_t, x)
        self.last_nfe = torch.full((b,), len(timesteps), dtype=torch.long, device=obs.device)
        return x  # (B, Tp, Da)

    def predict_action(self, batch: Mapping[str, Tensor | np.ndarray]) -> Tensor:
        """Raw chunk ``(B, Tp, Da)`` by DDIM-k or DDPM-T sampling (config ``inference``); no graph."""
        with torch.no_grad():
            obs = self.normalize_batch(batch, with_action=False)["obs"]  # (B, To, Do)
            return self.unnormalize_action(self.sample(obs))  # (B, Tp, Da)

    def compute_loss(self, batch: Mapping[str, Tensor | np.ndarray]) -> tuple[Tensor, dict[str, float]]:
        """MSE(ε_θ(obs, a_t, t), ε) with ``t ~ U{0..T-1}``; terms ``{"mse"}`` (draws from torch's global RNG)."""
        norm = self.normalize_batch(batch, with_action=True)
        action = norm["action"]  # (B, Tp, Da)
        b = action.shape[0]
        eps = torch.randn_like(action)  # (B, Tp, Da)
        t = self.scheduler.sample_timesteps(b, device=action.device)  # (B,)
        noisy = self.scheduler.add_noise(action, eps, t)  # (B, Tp, Da)
        err = (self.predict_noise(norm["obs"], noisy, t) - eps).pow(2)  # (B, Tp, Da)
        loss = chunk_mean(err, norm["action_mask"] if self.config.mask_padded_actions else None)
        return loss, {"mse": float(loss.detach())}
