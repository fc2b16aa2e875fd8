"""EBT-Policy: actions are the minimisers of a learned energy ``E_θ(obs, a)``, found by gradient descent.

Energy model. :class:`~embodia.policies.backbone.TransformerBackbone` with ``out_dim = Da`` gives per-token
outputs ``(B, Tp, Da)``; the energy of a chunk is their mean over ``(Tp, Da)``, **per sample** (nothing is
normalised or pooled across the batch, so a sample's energy, gradient and actions never depend on the other
samples in the batch). Everything here works in normalised action space ([-1, 1] on the fitted data).

Descent (inference and training)::

    a₀ ~ N(0, I), v₀ = 0
    for i = 0 .. K-1:
        a  ← a + σ_i ξ                            (training only: Langevin noise before the energy, σ_i below)
        ã  = a + μ v                              (Nesterov look-ahead)
        E  = E_θ(obs, ã);  g = ∇ₐ E(obs, ã)       (one "NFE": a forward + an input-gradient backward)
        α_i = α · exp(clamp(E, ±energy_clamp)) / T   (per sample; ×U(scale range) in training)
        v  ← μ v − α_i g;  a ← a + v

The Langevin std follows the **unroll index**, ``σ_i = σ_min + ½(σ_max − σ_min)(1 + cos(π i / K))``, as in the
reference code; no noise follows the last step (it would be irreducible error in the returned chunk).

Inference (:meth:`EBTPolicy.predict_action`): at most ``inference_steps`` (2 by default) steps, no noise and no
randomisation. Dynamic compute (off by default): after ``min_inference_steps`` a sample stops once its last step
``α_i g`` moved the chunk by less than ``stop_tol`` (RMS over entries, normalised units; the gradient alone says
little, since α·e^E is in the thousands), or once the energy at its next evaluation point is below
``energy_threshold`` (read off the forward pass of the next step, before its backward pass, so the check costs
nothing where the sample goes on; :meth:`EBTPolicy.calibrate_energy_threshold` picks the threshold from training
observations): the evaluations go to the chunks the model is least sure of. ``last_nfe`` ``(B,)`` counts the
gradient evaluations per sample (summed over the N candidates with best-of-N) and ``last_energy_evals`` the
forward-only checks that stopped a sample. ``last_energy`` ``(B,)``, the uncertainty signal that evaluation logs
per chunk, is the energy at each sample's last evaluation (no extra forward pass); with best-of-N it is the
energy of the returned chunk, by which the lowest-energy candidate is kept. The initial noise comes from torch's
global RNG, or from :attr:`EBTPolicy.generator` when it is set.

Training (:meth:`EBTPolicy.compute_loss`): unroll K ~ U{train_steps_min..train_steps_max} steps from noise with a
random per-sample step-size scale and the Langevin noise above. ``unroll="truncated"`` (default; the reference's
``truncate_mcmc``): the iterate and velocity are detached between steps and only the last step is second order
(``create_graph=True``: the loss reaches θ through ∇ₐE and α(E)); loss = MSE(a_K, a*). ``unroll="full"``: every
step keeps its graph; loss = mean over the K steps of MSE(a_i, a*) (about 2x the cost per iteration). In eval
mode (or under ``torch.no_grad()``) K = ``train_steps_max`` with no noise and no randomisation (validation losses).

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
        last_energy: ``(B,)``: energy at each sample's last evaluation in the last :meth:`predict_action` call
            (of the returned chunk with best-of-N; see :meth:`descend`'s ``exact_energy``).
        last_energy_evals: ``(B,)`` long: forward-only evaluations of the energy rule that stopped a sample.
        train_step: Buffer counting train-mode :meth:`compute_loss` calls.
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
        self.last_energy_evals: Tensor | None = None

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

    def langevin_sigma(self, i: int, k: int) -> float:
        """Training Langevin std added before the energy of unroll step ``i`` of ``k``.

        ``σ_i = σ_min + ½(σ_max − σ_min)(1 + cos(π i / k))``: σ_max at i = 0, σ_min at i = k (never used: no
        noise follows the last step).
        """
        c = self.config
        return c.langevin_sigma_min + 0.5 * (c.langevin_sigma_max - c.langevin_sigma_min) * (
            1 + math.cos(math.pi * i / k)
        )

    # ------------------------------------------------------------------------------------------ inference

    def descend(
        self, obs: Tensor, a0: Tensor, steps: int | None = None, *, exact_energy: bool = True
    ) -> dict[str, Tensor]:
        """Inference descent (no noise) from ``a0`` with the config's stop rules; all tensors normalised.

        Every sample takes at least ``min_inference_steps`` steps and at most ``steps``. After that:

        * ``energy_threshold``: before each further step a forward-only pass reads the energy of the current chunk
          ``a``; a sample whose energy is below the threshold stops there and returns ``a`` (every check counts one
          ``energy_evals``). The chunk itself is read, not the next step's look-ahead ``ã = a + μv``: ``ã``
          overshoots ``a`` by μ·v, and stopping there returned a worse chunk than stopping one step earlier;
        * ``stop_tol``: a sample stops once its last step ``α_i ∇ₐE`` moved the chunk by less than ``stop_tol``
          (RMS over the chunk's entries).

        Args:
            obs: ``(B, To, Do)`` normalised observations.
            a0: ``(B, Tp, Da)`` initial chunk.
            steps: Maximal steps (default ``inference_steps``).
            exact_energy: ``"energy"`` is the energy of the returned chunk (one more forward pass for the samples
                whose chunk was not evaluated); False: the energy at each sample's last evaluation (the look-ahead
                point of its last step, or the returned chunk where the energy rule read it), which costs nothing
                more (:meth:`predict_action`'s uncertainty signal).

        Returns:
            ``{"action": (B, Tp, Da), "energy": (B,) (see ``exact_energy``), "energy_first": (B,) at a0,
            "nfe": (B,) long gradient evaluations (forward + input-gradient backward), "energy_evals": (B,) long
            forward-only evaluations of the energy rule, "step_rms": (steps, B) RMS of each step taken (0
            where none)}``, all detached.
        """
        c = self.config
        steps = c.inference_steps if steps is None else steps
        with torch.no_grad():
            memory = self.backbone.encode(obs)  # (B, M, d): constant w.r.t. the action
        a = a0.detach().clone()  # (B, Tp, Da)
        v = torch.zeros_like(a)  # (B, Tp, Da)
        batch = a.shape[0]
        nfe = torch.zeros(batch, dtype=torch.long, device=a.device)  # (B,)
        energy_evals = torch.zeros(batch, dtype=torch.long, device=a.device)  # (B,)
        step_rms = torch.zeros(steps, batch, dtype=a.dtype, device=a.device)  # (steps, B)
        final = torch.full((batch,), float("nan"), dtype=a.dtype, device=a.device)  # (B,) energies known at a stop
        last_seen = torch.zeros(batch, dtype=a.dtype, device=a.device)  # (B,) energy at the last evaluation
        energy_first = None
        idx = torch.arange(batch, device=a.device)  # (b,) samples still descending
        scales = self.step_scales(steps)
        for step in range(steps):
            if step >= c.min_inference_steps and c.energy_threshold is not None:
                with torch.no_grad():
                    checked = self._energy(memory[idx], a[idx])  # (b,) energy of the current chunk
                energy_evals[idx] += 1
                last_seen[idx] = checked
                low = checked < c.energy_threshold  # (b,) confident: stop with this chunk
                final[idx[low]] = checked[low]
                idx = idx[~low]
                if idx.numel() == 0:
                    break
            look = (a[idx] + c.momentum * v[idx]).detach().requires_grad_(True)  # (b, Tp, Da)
            with torch.enable_grad():
                energy = self._energy(memory[idx], look)  # (b,)
                (grad,) = torch.autograd.grad(energy.sum(), look)  # (b, Tp, Da); per-sample sums
            energy = energy.detach()
            if step == 0:
                energy_first = energy  # look == a0 at step 0, every sample active
            nfe[idx] += 1
            last_seen[idx] = energy
            delta = (scales[step] * self.step_size(energy))[:, None, None] * grad  # (b, Tp, Da)
            v_new = c.momentum * v[idx] - delta  # (b, Tp, Da)
            v[idx], a[idx] = v_new, a[idx] + v_new
            rms = delta.flatten(1).pow(2).mean(1).sqrt()  # (b,) RMS of the gradient step over the chunk
            step_rms[step, idx] = rms
            if c.stop_tol > 0 and step + 1 >= c.min_inference_steps:
                idx = idx[rms >= c.stop_tol]
                if idx.numel() == 0:
                    break
        missing = torch.isnan(final)
        if not exact_energy:
            final[missing] = last_seen[missing]
        elif bool(missing.any()):
            with torch.no_grad():
                final[missing] = self._energy(memory[missing], a[missing])  # (m,)
        if energy_first is None:  # steps == 0
            energy_first = final
        return {
            "action": a,
            "energy": final,
            "energy_first": energy_first,
            "nfe": nfe,
            "energy_evals": energy_evals,
            "step_rms": step_rms,
        }

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
        out = self.descend(obs_rep, a0.flatten(0, 1), exact_energy=n > 1)  # best-of-N compares returned chunks
        energy = out["energy"].view(b, n)  # (B, N)
        best = energy.argmin(dim=1)  # (B,)
        rows = torch.arange(b, device=obs.device)
        action = out["action"].view(shape)[rows, best]  # (B, Tp, Da)
        self.last_energy = energy[rows, best]
        self.last_nfe = out["nfe"].view(b, n).sum(dim=1)
        self.last_energy_evals = out["energy_evals"].view(b, n).sum(dim=1)
        with torch.no_grad():
            return self.unnormalize_action(action)  # (B, Tp, Da)

    def calibrate_energy_threshold(self, obs: Tensor | np.ndarray, quantile: float, steps: int = 1) -> float:
        """Set ``energy_threshold`` to a quantile of the energies the rule reads after ``steps`` steps on ``obs``.

        Those are the energies of the chunks after ``steps`` descent steps. With ``quantile=q`` about a fraction
        ``q`` of in-distribution chunks stop after ``steps`` gradient evaluations (for ``min_inference_steps ==
        steps``); chunks with higher energy, where the model is less sure, go on.

        Args:
            obs: Raw observation windows ``(N, To, Do)`` (e.g. training windows).
            quantile: In (0, 1).
            steps: Descent steps before the energies are read (at most ``inference_steps``).

        Returns:
            The threshold (also stored in ``config.energy_threshold``).

        Raises:
            ValueError: ``quantile`` outside (0, 1) or ``steps`` outside [1, inference_steps].
        """
        if not 0.0 < float(quantile) < 1.0:
            raise ValueError(f"quantile must be in (0, 1), got {quantile!r}")
        if not 1 <= steps <= self.config.inference_steps:
            raise ValueError(f"steps must be in [1, inference_steps={self.config.inference_steps}], got {steps!r}")
        with torch.no_grad():
            norm = self.normalize_batch({"obs": obs}, with_action=False)["obs"]  # (N, To, Do)
        shape = (norm.shape[0], self.config.horizon, self.config.action_dim)
        a0 = torch.randn(shape, generator=self.generator, device=norm.device, dtype=norm.dtype)  # (N, Tp, Da)
        c = self.config
        saved = c.energy_threshold, c.stop_tol
        c.energy_threshold, c.stop_tol = None, 0.0  # exactly ``steps`` steps; the energy of the chunk they reach
        try:
            energy = self.descend(norm, a0, steps=steps, exact_energy=True)["energy"]  # (N,)
        finally:
            c.energy_threshold, c.stop_tol = saved
        threshold = float(torch.quantile(energy.double(), float(quantile)))
        self.config.energy_threshold = threshold
        return threshold

    # ------------------------------------------------------------------------------------------ training

    def compute_loss(self, batch: Mapping[str, Tensor | np.ndarray]) -> tuple[Tensor, dict[str, float]]:
        """MSE between the unrolled descent's chunk and the demonstration (+ ``dsm_weight`` · DSM); module docstring.

        ``unroll="truncated"``: loss = MSE(a_K, a*), only step K−1 second-order. ``"full"``: the mean over the K
        steps of MSE(a_i, a*), every step second-order.

        Terms: ``loss``, ``mse`` (the MSE part), ``mse_first`` (after step 1), ``mse_last`` (after step K),
        ``energy_first`` (at the noisy a₀), ``alpha`` (mean α_i), ``grad_norm_a`` (mean ‖∇ₐE‖_F), ``n_steps``
        (K), ``step_rms_<i>`` (mean RMS over the chunk of the gradient step α_i·∇ₐE at unroll index i, normalised
        units), and ``dsm`` when ``dsm_weight > 0``. In eval mode (or under ``torch.no_grad()``) K =
        ``train_steps_max`` with no noise and no randomised step scale (validation losses).
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
        k = int(torch.randint(c.train_steps_min, c.train_steps_max + 1, ()).item()) if randomise else c.train_steps_max

        memory = self.backbone.encode(norm["obs"])  # (B, M, d); no graph under torch.no_grad()
        if c.mse_weight == 0:  # DSM alone: no unrolled descent
            with torch.enable_grad():
                dsm, extras = self._dsm(memory, target, weight, denom, create_graph)
            if randomise:
                self.train_step += 1
            loss = c.dsm_weight * dsm
            return loss, {"loss": float(loss.detach()), "dsm": float(dsm.detach()), **extras}
        truncated = c.unroll == "truncated"
        with torch.enable_grad():  # the descent needs ∇ₐE even under torch.no_grad()
            a = torch.randn_like(target)  # (B, Tp, Da)
            v = torch.zeros_like(a)
            mses, alphas, gnorms, step_rms = [], [], [], []
            energy_first = None
            for i in range(k):
                last = i == k - 1
                graph = create_graph and (last or not truncated)  # second order on this step
                if randomise:
                    sigma = self.langevin_sigma(i, k)
                    if sigma > 0:  # noise on the iterate before its energy is evaluated, never after the last step
                        a = a + sigma * torch.randn_like(a)
                look = a + c.momentum * v  # (B, Tp, Da)
                if not graph:
                    look = look.detach()
                if not look.requires_grad:
                    look = look.requires_grad_(True)
                energy, grad = self._energy_and_grad(memory if graph else memory.detach(), look, create_graph=graph)
                if not graph:
                    energy, grad = energy.detach(), grad.detach()
                if energy_first is None:
                    energy_first = energy.detach()
                alpha = self.step_size(energy)  # (B,)
                if randomise:
                    low, high = c.step_scale_range
                    if high > low or low != 1.0:
                        alpha = alpha * torch.empty(b, device=a.device, dtype=a.dtype).uniform_(low, high)
                delta = alpha[:, None, None] * grad  # (B, Tp, Da)
                v = c.momentum * v - delta
                a = a + v
                if not graph:
                    a, v = a.detach(), v.detach()
                mses.append(((a - target).pow(2) * weight).sum() / denom)
                alphas.append(alpha.detach().mean())
                gnorms.append(grad.detach().flatten(1).norm(dim=1).mean())
                step_rms.append(delta.detach().flatten(1).pow(2).mean(1).sqrt().mean())
            mse = mses[-1] if truncated else torch.stack(mses).mean()
            loss = c.mse_weight * mse
            terms: dict[str, float] = {}
            if c.dsm_weight > 0:
                dsm, _ = self._dsm(memory, target, weight, denom, create_graph)
                loss = loss + c.dsm_weight * dsm
                terms["dsm"] = float(dsm.detach())
        if randomise:
            self.train_step += 1
        terms = {
            "loss": float(loss.detach()),
            "mse": float(mse.detach()),
            "mse_first": float(mses[0].detach()),
            "mse_last": float(mses[-1].detach()),
            "energy_first": float(energy_first.mean()),
            "alpha": float(torch.stack(alphas).mean()),
            "grad_norm_a": float(torch.stack(gnorms).mean()),
            "n_steps": float(k),
            **{f"step_rms_{i}": float(r) for i, r in enumerate(step_rms)},
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
