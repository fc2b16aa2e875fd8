"""EBT-Policy: actions are the minimisers of a learned energy ``E_θ(obs, a)``, found by gradient descent.

Energy model. :class:`~embodia.policies.backbone.TransformerBackbone` with ``out_dim = Da`` gives per-token
outputs ``(B, Tp, Da)``; the energy of a chunk is their mean over ``(Tp, Da)``, **per sample** (nothing is
normalised or pooled across the batch, so a sample's energy, gradient and actions never depend on the other
samples in the batch). Everything here works in normalised action space ([-1, 1] on the fitted data).

Descent (inference and training)::

    a₀ ~ N(0, I), v₀ = 0
    for i = 0 .. steps-1:
        ã  = a + μ v                              (Nesterov look-ahead)
        E  = E_θ(obs, ã);  g = ∇ₐ E(obs, ã)       (one "NFE": a forward + an input-gradient backward)
        α_i = α · exp(clamp(E, ±energy_clamp)) / T   (per sample; ×U(scale range) in training)
        v  ← μ v − α_i g;  a ← a + v  (+ σ_t ξ Langevin noise, training only)

Inference (:meth:`EBTPolicy.predict_action`): at most ``inference_steps`` (2 by default) steps, no noise and no
randomisation; a sample stops (its step is not taken and it is not evaluated again) once
``‖g‖_F < grad_tol`` or, optionally, ``E < energy_threshold``. ``last_nfe`` ``(B,)`` counts the gradient
evaluations per sample (summed over the N candidates with best-of-N); one extra forward without backward
evaluates the final energies (``last_energy`` ``(B,)``), which best-of-N uses to keep the lowest-energy chunk.
The initial noise comes from torch's global RNG, or from :attr:`EBTPolicy.generator` when it is set.

Training (:meth:`EBTPolicy.compute_loss`): unroll K ~ U{train_steps_min..train_steps_max} steps from noise with
``create_graph=True`` (second order: the loss reaches θ through ∇ₐE), with a random per-sample step-size scale
and cosine-annealed Langevin noise; loss = mean over the K steps of MSE(a_i, a*). In eval mode (or under
``torch.no_grad()``) K = ``train_steps_max`` and there is no randomisation (validation losses).

``"ebt-dsm"`` (:class:`EBTDSMPolicy`, ours) trains the energy by denoising score matching. With
``ã = a* + σε``, the score of the σ-smoothed data is ``∇ log p_σ(ã) ≈ −ε/σ``, and an energy is ``E ∝ −log p``, so
``∇ₐE`` should point along ``+ε``: the descent step ``ã − α_i ∇ₐE(ã)`` then moves the noisy action back toward the
data. Its scale is fixed so that one plain descent step lands on Tweedie's denoised estimate ``ã − σε``::

    dsm = mean over (B, Tp, Da) of ( α_i(ã) · ∇ₐE(obs, ã) / σ − ε )²     (α_i detached, σ ~ logU[σ_min, σ_max])

i.e. ``−∇ₐE = (σ²/α_i) · score``: the usual σ²-weighted DSM on the gradient field, in the units of the descent,
over noise levels up to the scale of the N(0, I) start. The term is ``dsm_weight · dsm``; ``"ebt-dsm"`` sets
``mse_weight`` to 0 (the unrolled MSE from pure noise has the mean of the modes as its optimum, whatever the
start), which also makes a training step first-order in the unroll (one DSM pass, ~3x faster). Its energy is
the residual form ``E = ½‖a − D(obs, a)‖²/α`` (``energy_form="residual"``; Salimans & Ho 2021), so a descent
step of size α lands near the denoiser output D(a), and its action tokens attend to the whole chunk. The
residual also scores a chunk: a blurred chunk between two modes has a large one, so best-of-N by final energy
keeps chunks that commit to a mode. ``step_schedule="geometric"`` (an option) replaces the constant step with a
deterministic DDIM-like noise ladder: step k moves ``1 − σ_{k+1}/σ_k`` of the way to D(a).

EMA of weights is left to the trainer (it is a property of the optimisation, not of the model).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from embodia.policies.backbone import TransformerBackbone
from embodia.policies.base import Policy
from embodia.policies.ebt.configuration_ebt import EBTConfig, EBTDSMConfig

__all__ = ["EBTDSMPolicy", "EBTPolicy"]


class EBTPolicy(Policy):
    """Energy-based transformer policy (see the module docstring).

    Args:
        config: An :class:`EBTConfig`.

    Attributes:
        backbone: The energy network (per-token outputs ``(B, Tp, Da)``).
        generator: Optional ``torch.Generator`` for the initial noise of :meth:`predict_action` (None: torch's
            global RNG). Not saved in checkpoints.
        last_nfe: ``(B,)`` long: gradient evaluations (forward + input-gradient backward) per sample in the last
            :meth:`predict_action` call, summed over best-of-N candidates.
        last_energy: ``(B,)``: final energy of each returned chunk in the last :meth:`predict_action` call.
        train_step: Buffer counting train-mode :meth:`compute_loss` calls (drives the Langevin annealing).
    """

    name = "ebt"
    config_class = EBTConfig

    def __init__(self, config: EBTConfig) -> None:
        super().__init__(config)
        c = config
        self.backbone = TransformerBackbone(c.backbone_config(out_dim=c.action_dim))
        self.register_buffer("train_step", torch.zeros((), dtype=torch.long))
        self.generator: torch.Generator | None = None
        self.last_nfe: Tensor | None = None
        self.last_energy: Tensor | None = None

    # ------------------------------------------------------------------------------------------ energy

    def energy(self, obs: Tensor, action: Tensor) -> Tensor:
        """Energies ``(B,)`` of normalised ``action`` ``(B, Tp, Da)`` given normalised ``obs`` ``(B, To, Do)``."""
        return self._energy(self.backbone.encode(obs), action)

    def _energy(self, memory: Tensor, action: Tensor) -> Tensor:
        """``memory`` ``(B, M, d)``, ``action`` ``(B, Tp, Da)`` -> ``(B,)`` (``energy_form``, module docstring)."""
        out = self.backbone.decode(memory, action)  # (B, Tp, Da)
        if self.config.energy_form == "residual":
            return 0.5 * (action - out).pow(2).sum(dim=(1, 2)) / self.config.alpha  # (B,)
        return out.mean(dim=(1, 2))  # (B,)

    def _energy_and_grad(self, memory: Tensor, action: Tensor, create_graph: bool) -> tuple[Tensor, Tensor]:
        """``(E (B,), ∇ₐE (B, Tp, Da))``; ``action`` must require grad. Enables grad locally."""
        with torch.enable_grad():
            energy = self._energy(memory, action)  # (B,)
            (grad,) = torch.autograd.grad(energy.sum(), action, create_graph=create_graph)  # per-sample sums
        return energy, grad

    def step_size(self, energy: Tensor) -> Tensor:
        """Per-sample step ``α·exp(clamp(E, ±energy_clamp))/T`` ``(B,)`` from energies ``(B,)``."""
        c = self.config
        return c.alpha * torch.exp(energy.clamp(-c.energy_clamp, c.energy_clamp)) / c.alpha_temperature

    def step_scales(self, steps: int) -> list[float]:
        """Inference multipliers of α_i for steps 0..steps-1 (``step_schedule``).

        ``"constant"``: all 1. ``"geometric"``: step k moves ``1 − σ_{k+1}/σ_k`` of the way, with
        ``σ_k = dsm_sigma_max · (dsm_sigma / dsm_sigma_max)^(k/steps)`` for k < steps and σ_steps = 0 (the last step
        goes all the way; 2 steps from σ = 1 to 0.05: σ 1 → 0.22 → 0). With the residual energy a step of size α
        lands on the denoiser's estimate D(a), so this is the deterministic (DDIM-like) noise-level ladder
        ``a ← D(a) + (σ_{k+1}/σ_k)(a − D(a))``.
        """
        c = self.config
        if c.step_schedule == "constant" or steps <= 1:
            return [1.0] * steps
        ratio = (c.dsm_sigma / c.dsm_sigma_max) ** (1.0 / steps)
        sigmas = [c.dsm_sigma_max * ratio**k for k in range(steps)] + [0.0]
        return [1.0 - sigmas[k + 1] / sigmas[k] for k in range(steps)]

    def langevin_sigma(self, step: int | None = None) -> float:
        """Langevin noise std at training step ``step`` (default: the current ``train_step``), cosine-annealed."""
        c = self.config
        t = min(int(self.train_step) if step is None else step, c.noise_anneal_steps) / c.noise_anneal_steps
        return c.langevin_sigma_end + 0.5 * (c.langevin_sigma_start - c.langevin_sigma_end) * (
            1 + math.cos(math.pi * t)
        )

    # ------------------------------------------------------------------------------------------ inference

    def descend(self, obs: Tensor, a0: Tensor, steps: int | None = None) -> dict[str, Tensor]:
        """Inference descent (no noise, per-sample early stop) from ``a0``; all tensors normalised.

        Args:
            obs: ``(B, To, Do)`` normalised observations.
            a0: ``(B, Tp, Da)`` initial chunk.
            steps: Maximal steps (default ``inference_steps``).

        Returns:
            ``{"action": (B, Tp, Da), "energy": (B,) final, "energy_first": (B,) at a0, "nfe": (B,) long}``,
            all detached.
        """
        c = self.config
        steps = c.inference_steps if steps is None else steps
        with torch.no_grad():
            memory = self.backbone.encode(obs)  # (B, M, d): constant w.r.t. the action
        a = a0.detach().clone()  # (B, Tp, Da)
        v = torch.zeros_like(a)  # (B, Tp, Da)
        batch = a.shape[0]
        active = torch.ones(batch, dtype=torch.bool, device=a.device)  # (B,)
        nfe = torch.zeros(batch, dtype=torch.long, device=a.device)  # (B,)
        energy_first = None
        scales = self.step_scales(steps)
        for step in range(steps):
            idx = active.nonzero().squeeze(1)  # (b,) samples still descending
            if idx.numel() == 0:
                break
            look = (a[idx] + c.momentum * v[idx]).detach().requires_grad_(True)  # (b, Tp, Da)
            energy, grad = self._energy_and_grad(memory[idx], look, create_graph=False)  # (b,), (b, Tp, Da)
            energy = energy.detach()
            nfe[idx] += 1
            if step == 0:
                energy_first = energy  # look == a0 at step 0, every sample active
            stop = grad.flatten(1).norm(dim=1) < c.grad_tol  # (b,)
            if c.energy_threshold is not None:
                stop |= energy < c.energy_threshold
            go = ~stop
            alpha = scales[step] * self.step_size(energy)  # (b,)
            v_new = c.momentum * v[idx] - alpha[:, None, None] * grad  # (b, Tp, Da)
            moved = idx[go]
            v[moved] = v_new[go]
            a[moved] = a[moved] + v_new[go]
            active[idx[stop]] = False
        with torch.no_grad():
            final = self._energy(memory, a)  # (B,)
        if energy_first is None:  # steps == 0
            energy_first = final
        return {"action": a, "energy": final, "energy_first": energy_first, "nfe": nfe}

    def predict_action(self, batch: Mapping[str, Tensor | np.ndarray]) -> Tensor:
        """Raw chunk ``(B, Tp, Da)`` by descent from ``N(0, I)`` (best-of-N by final energy); no graph.

        Works under ``torch.no_grad()``; sets :attr:`last_nfe` and :attr:`last_energy`.
        """
        c = self.config
        with torch.no_grad():
            obs = self.normalize_batch(batch, with_action=False)["obs"]  # (B, To, Do)
        b, n = obs.shape[0], c.best_of_n
        shape = (b, n, c.horizon, c.action_dim)
        a0 = torch.randn(shape, generator=self.generator, device=obs.device, dtype=obs.dtype)  # (B, N, Tp, Da)
        obs_rep = obs.repeat_interleave(n, dim=0)  # (B·N, To, Do): candidates of a sample are adjacent
        out = self.descend(obs_rep, a0.flatten(0, 1))
        energy = out["energy"].view(b, n)  # (B, N)
        best = energy.argmin(dim=1)  # (B,)
        rows = torch.arange(b, device=obs.device)
        action = out["action"].view(shape)[rows, best]  # (B, Tp, Da)
        self.last_energy = energy[rows, best]
        self.last_nfe = out["nfe"].view(b, n).sum(dim=1)
        with torch.no_grad():
            return self.unnormalize_action(action)  # (B, Tp, Da)

    # ------------------------------------------------------------------------------------------ training

    def compute_loss(self, batch: Mapping[str, Tensor | np.ndarray]) -> tuple[Tensor, dict[str, float]]:
        """Mean over K unrolled steps of MSE(a_i, a*) (+ ``dsm_weight`` · DSM); see the module docstring.

        Terms: ``loss``, ``mse_first``, ``mse_last``, ``energy_first`` (at a₀), ``energy_last`` (at a_K),
        ``alpha`` (mean α_i), ``grad_norm_a`` (mean ‖∇ₐE‖_F), ``n_steps`` (K), ``langevin_sigma``, and ``dsm``
        when ``dsm_weight > 0``.
        """
        c = self.config
        create_graph = torch.is_grad_enabled()
        randomise = self.training
        norm = self.normalize_batch(batch, with_action=True)
        target = norm["action"]  # (B, Tp, Da)
        if c.mask_padded_actions:
            weight = norm["action_mask"][..., None].to(target.dtype).expand_as(target)  # (B, Tp, Da)
        else:
            weight = torch.ones_like(target)
        denom = weight.sum().clamp_min(1.0)
        b = target.shape[0]
        if randomise:
            k = int(torch.randint(c.train_steps_min, c.train_steps_max + 1, ()).item())
            sigma = self.langevin_sigma()
        else:
            k, sigma = c.train_steps_max, 0.0

        memory = self.backbone.encode(norm["obs"])  # (B, M, d); no graph under torch.no_grad()
        if c.mse_weight == 0:  # DSM alone: no unrolled descent
            with torch.enable_grad():
                dsm, extras = self._dsm(memory, target, weight, denom, create_graph)
            if randomise:
                self.train_step += 1
            loss = c.dsm_weight * dsm
            return loss, {"loss": float(loss.detach()), "dsm": float(dsm.detach()), **extras}
        with torch.enable_grad():  # the descent needs ∇ₐE even under torch.no_grad()
            a = torch.randn_like(target)  # (B, Tp, Da)
            v = torch.zeros_like(a)
            mses, alphas, gnorms = [], [], []
            energy_first = None
            for _ in range(k):
                look = a + c.momentum * v  # (B, Tp, Da)
                if not look.requires_grad:
                    look = look.detach().requires_grad_(True)
                energy, grad = self._energy_and_grad(memory, look, create_graph=create_graph)
                if not create_graph:  # no_grad on entry: the loss carries no graph
                    energy = energy.detach()
                if energy_first is None:
                    energy_first = energy.detach()
                alpha = self.step_size(energy)  # (B,)
                if randomise:
                    low, high = c.step_scale_range
                    alpha = alpha * torch.empty(b, device=a.device, dtype=a.dtype).uniform_(low, high)
                v = c.momentum * v - alpha[:, None, None] * grad  # (B, Tp, Da)
                a = a + v
                if randomise and sigma > 0:
                    a = a + sigma * torch.randn_like(a)
                mses.append(((a - target).pow(2) * weight).sum() / denom)
                alphas.append(alpha.detach().mean())
                gnorms.append(grad.detach().flatten(1).norm(dim=1).mean())
                if c.detach_between_steps:
                    a, v = a.detach(), v.detach()
            mse = torch.stack(mses).mean()
            loss = c.mse_weight * mse
            terms: dict[str, float] = {}
            if c.dsm_weight > 0:
                dsm, _ = self._dsm(memory, target, weight, denom, create_graph)
                loss = loss + c.dsm_weight * dsm
                terms["dsm"] = float(dsm.detach())
        with torch.no_grad():
            energy_last = self._energy(memory.detach(), a.detach())  # (B,)
        if randomise:
            self.train_step += 1
        terms = {
            "loss": float(loss.detach()),
            "mse": float(mse.detach()),
            "mse_first": float(mses[0].detach()),
            "mse_last": float(mses[-1].detach()),
            "energy_first": float(energy_first.mean()),
            "energy_last": float(energy_last.mean()),
            "alpha": float(torch.stack(alphas).mean()),
            "grad_norm_a": float(torch.stack(gnorms).mean()),
            "n_steps": float(k),
            "langevin_sigma": float(sigma),
            **terms,
        }
        return loss, terms

    def _dsm(
        self, memory: Tensor, target: Tensor, weight: Tensor, denom: Tensor, create_graph: bool
    ) -> tuple[Tensor, dict[str, float]]:
        """Denoising score matching ``mean((α_i ∇ₐE(a* + σε) / σ − ε)²)``, σ log-uniform per sample (module doc).

        Returns the term and, for logging, ``energy_first`` (E at ``ã = a* + σε``), ``energy_last`` (E after one
        descent step from ã), ``alpha`` (mean α_i) and ``grad_norm_a`` (mean ‖∇ₐE(ã)‖_F).
        """
        c = self.config
        b = target.shape[0]
        u = torch.rand(b, device=target.device, dtype=target.dtype)  # (B,)
        sigma = (math.log(c.dsm_sigma) + u * math.log(c.dsm_sigma_max / c.dsm_sigma)).exp()[:, None, None]
        eps = torch.randn_like(target)  # (B, Tp, Da)
        noisy = (target + sigma * eps).detach().requires_grad_(True)  # (B, Tp, Da)
        energy, grad = self._energy_and_grad(memory, noisy, create_graph=create_graph)
        alpha = self.step_size(energy.detach())  # (B,)
        err = (alpha[:, None, None] * grad / sigma - eps).pow(2)  # (B, Tp, Da)
        with torch.no_grad():
            stepped = noisy.detach() - alpha[:, None, None] * grad.detach()  # (B, Tp, Da)
            extras = {
                "energy_first": float(energy.detach().mean()),
                "energy_last": float(self._energy(memory.detach(), stepped).mean()),
                "alpha": float(alpha.mean()),
                "grad_norm_a": float(grad.detach().flatten(1).norm(dim=1).mean()),
            }
        return (err * weight).sum() / denom, extras


class EBTDSMPolicy(EBTPolicy):
    """``"ebt-dsm"``: :class:`EBTPolicy` plus the denoising-score-matching term (module docstring)."""

    name = "ebt-dsm"
    config_class = EBTDSMConfig
