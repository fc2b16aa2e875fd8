"""DDPM noise schedule with DDPM (ancestral) and DDIM (η = 0) sampling steps, in pure torch.

Schedule ``squaredcos_cap_v2`` (Nichol & Dhariwal's cosine schedule, as in diffusers)::

    ᾱ(u) = cos²((u + 0.008) / 1.008 · π/2),   β_t = min(1 − ᾱ((t+1)/T) / ᾱ(t/T), 0.999),   t = 0 .. T-1
    alphas_cumprod[t] = Π_{s<=t} (1 − β_s)

Forward process: ``x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε`` (:meth:`DDPMScheduler.add_noise`). Both samplers take an
ε-prediction, estimate ``x̂₀ = (x_t − √(1−ᾱ_t) ε̂)/√ᾱ_t`` and clip it to [-1, 1] (``clip_sample``):

* DDPM (:meth:`DDPMScheduler.ddpm_step`): posterior mean ``μ = √ᾱ_{t-1} β_t/(1−ᾱ_t) x̂₀ + √α_t (1−ᾱ_{t-1})/(1−ᾱ_t) x_t``
  plus ``σ_t z`` with the "fixed_small" variance ``σ_t² = (1−ᾱ_{t-1})/(1−ᾱ_t) β_t`` (no noise at t = 0).
* DDIM (:meth:`DDPMScheduler.ddim_step`, η = 0): ``ε̂`` is recomputed from the clipped ``x̂₀`` and
  ``x_prev = √ᾱ_prev x̂₀ + √(1−ᾱ_prev) ε̂``, with ᾱ_prev = 1 past t = 0 (``set_alpha_to_one``). Timesteps are
  :meth:`DDPMScheduler.ddim_timesteps` (diffusers' "leading" spacing: ``T//k · [k-1, .., 1, 0]``).

The schedule is computed in float64 and cast to the sample's dtype and device at use.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["DDPMScheduler", "cosine_betas"]

MAX_BETA = 0.999
"""Cap of β_t (``squaredcos_cap_v2``): keeps the last steps from being pure noise with ᾱ = 0."""


def cosine_betas(num_train_timesteps: int, max_beta: float = MAX_BETA) -> Tensor:
    """β_t of the ``squaredcos_cap_v2`` schedule, ``(T,)`` float64."""

    def alpha_bar(u: float) -> float:
        return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

    t = num_train_timesteps
    betas = [min(1 - alpha_bar((i + 1) / t) / alpha_bar(i / t), max_beta) for i in range(t)]
    return torch.tensor(betas, dtype=torch.float64)


class DDPMScheduler:
    """The noise schedule and the DDPM / DDIM update rules (see the module docstring).

    Args:
        num_train_timesteps: T (training timesteps are 0 .. T-1).
        clip_sample: Clip the x₀ estimate to [-1, 1] in both samplers.

    Attributes:
        betas, alphas, alphas_cumprod: ``(T,)`` float64 on the CPU.
    """

    def __init__(self, num_train_timesteps: int = 100, *, clip_sample: bool = True) -> None:
        if isinstance(num_train_timesteps, bool) or not isinstance(num_train_timesteps, int) or num_train_timesteps < 2:
            raise ValueError(f"num_train_timesteps must be an integer >= 2, got {num_train_timesteps!r}")
        self.num_train_timesteps = num_train_timesteps
        self.clip_sample = clip_sample
        self.betas = cosine_betas(num_train_timesteps)  # (T,)
        self.alphas = 1.0 - self.betas  # (T,)
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)  # (T,)

    # ------------------------------------------------------------------------------------------ training

    def add_noise(self, x0: Tensor, eps: Tensor, t: Tensor) -> Tensor:
        """``x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε`` for ``x0``, ``eps`` ``(B, ...)`` and per-sample ``t`` ``(B,)`` long."""
        ac = self.alphas_cumprod.to(x0.device)[t.long()].to(x0.dtype)  # (B,)
        ac = ac.view(-1, *([1] * (x0.ndim - 1)))  # (B, 1, ...)
        return ac.sqrt() * x0 + (1 - ac).sqrt() * eps

    def sample_timesteps(self, batch: int, *, device: torch.device | None = None, generator=None) -> Tensor:
        """Uniform training timesteps ``(B,)`` long in 0 .. T-1."""
        return torch.randint(0, self.num_train_timesteps, (batch,), device=device, generator=generator)

    # ------------------------------------------------------------------------------------------ sampling

    def ddim_timesteps(self, num_inference_steps: int) -> list[int]:
        """``k`` evenly spaced timesteps, descending: ``T//k · [k-1, .., 1, 0]`` (ends at 0)."""
        k = num_inference_steps
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.num_train_timesteps:
            raise ValueError(f"num_inference_steps must be an integer in [1, {self.num_train_timesteps}], got {k!r}")
        ratio = self.num_train_timesteps // k
        return [i * ratio for i in reversed(range(k))]

    def _x0(self, sample: Tensor, eps: Tensor, ac_t: float) -> Tensor:
        x0 = (sample - math.sqrt(1 - ac_t) * eps) / math.sqrt(ac_t)
        return x0.clamp(-1.0, 1.0) if self.clip_sample else x0

    def ddpm_step(self, eps: Tensor, t: int, sample: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One ancestral step ``x_t -> x_{t-1}`` from the ε-prediction ``eps`` (same shape as ``sample``)."""
        ac_t = float(self.alphas_cumprod[t])
        ac_prev = float(self.alphas_cumprod[t - 1]) if t > 0 else 1.0
        alpha_t = ac_t / ac_prev
        beta_t = 1 - alpha_t
        x0 = self._x0(sample, eps, ac_t)
        mean = (math.sqrt(ac_prev) * beta_t / (1 - ac_t)) * x0 + (
            math.sqrt(alpha_t) * (1 - ac_prev) / (1 - ac_t)
        ) * sample
        if t == 0:
            return mean
        variance = max((1 - ac_prev) / (1 - ac_t) * beta_t, 1e-20)
        noise = torch.randn(sample.shape, generator=generator, device=sample.device, dtype=sample.dtype)
        return mean + math.sqrt(variance) * noise

    def ddim_step(self, eps: Tensor, t: int, prev_t: int, sample: Tensor) -> Tensor:
        """One deterministic DDIM step (η = 0) ``x_t -> x_{prev_t}`` (``prev_t < 0``: to the clean sample)."""
        ac_t = float(self.alphas_cumprod[t])
        ac_prev = float(self.alphas_cumprod[prev_t]) if prev_t >= 0 else 1.0
        x0 = self._x0(sample, eps, ac_t)
        eps = (sample - math.sqrt(ac_t) * x0) / math.sqrt(1 - ac_t)  # consistent with the clipped x̂₀
        return math.sqrt(ac_prev) * x0 + math.sqrt(1 - ac_prev) * eps
