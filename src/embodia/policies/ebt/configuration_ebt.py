"""Config of EBT-Policy (``"ebt"``) and its denoising-score-matching variant (``"ebt-dsm"``).

See ``/work/shared/design/EBT.md``. Defaults follow the reference code where they are CPU-affordable (α = 1000,
T = 1, Nesterov μ = 0.9, step-scale U(1/1.5, 1.5), Langevin σ 0.2 → 0.002 over the unroll index, truncated
unroll, Xavier-uniform initialisation, 2 inference steps) and are scaled down where not (d = 64, 2 blocks,
K ~ U{1, 2} training steps instead of 6–10). Dynamic compute (``stop_tol``, ``energy_threshold``) is off by
default: EBT-Policy's fixed budget of 2 steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from embodia.policies.transformer_config import TransformerPolicyConfig
from embodia.validation import check_bool, check_int, check_number

__all__ = ["MAX_INFERENCE_STEPS", "EBTConfig", "EBTDSMConfig"]

ENERGY_FORMS = ("mean", "residual")
"""How the energy is read off the transformer's per-token outputs (see ``EBTConfig.energy_form``)."""
UNROLLS = ("truncated", "full")
"""Gradient structure of the training unroll (see ``EBTConfig.unroll``)."""
STEP_SCHEDULES = ("constant", "geometric")
"""Inference step-size schedules (see ``EBTConfig.step_schedule``)."""
MAX_INFERENCE_STEPS = 16
"""Upper bound of ``inference_steps`` (EBT-Policy itself uses 2; more steps are for ablations)."""


@dataclass(kw_only=True)
class EBTConfig(TransformerPolicyConfig):
    """Energy ``E(obs, a)`` = mean over (Tp, Da) of a :class:`TransformerBackbone`'s per-token outputs.

    Actions are found by Nesterov gradient descent on ``E`` from ``a₀ ~ N(0, I)`` (normalised action space)
    with per-sample step size ``α_i = alpha · exp(clamp(E, ±energy_clamp)) / alpha_temperature``.
    """

    energy_form: str = "mean"
    """``"mean"``: E = mean over (Tp, Da) of the per-token outputs (EBT-Policy). ``"residual"``: E =
    ½‖a − D(obs, a)‖² / alpha with D the per-token outputs, so one descent step of size α lands near D(a)
    (a denoiser-shaped energy, Salimans & Ho 2021; used by ``"ebt-dsm"``)."""

    init: str = "xavier"
    """Backbone initialisation. Xavier-uniform (the reference code's) makes the first descent step move the chunk
    (RMS ~0.4 at initialisation); with ``"normal"`` (N(0, 0.02), scaled residual projections) ‖∇ₐE‖ ≈ 1e-4 and
    the step moves it by ~0.02, and a 40 s run on DetourReach-Sided stayed at 0 success (README, Numbers)."""

    # ----------------------------------------------------------------------------------------- descent
    alpha: float = 1000.0
    """Base step size α of the descent (paper code: 1000; E is a mean over Tp·Da, so ∇ₐE is small)."""
    alpha_temperature: float = 1.0
    """T in ``α_i = α·exp(E)/T``."""
    energy_clamp: float = 5.0
    """E is clamped to [-energy_clamp, energy_clamp] before the exp in ``α_i``, so the step size stays within
    ``α·e^{±energy_clamp}/T`` (an untrained or diverging energy cannot make it explode or vanish)."""
    momentum: float = 0.9
    """Nesterov momentum μ: ``ã = a + μv; g = ∇ₐE(ã); v ← μv − α_i g; a ← a + v`` (0 = plain descent)."""

    # ----------------------------------------------------------------------------------------- training
    train_steps_min: int = 1
    """Smallest number K of unrolled descent steps in training (K ~ U{min..max} per batch)."""
    train_steps_max: int = 2
    """Largest K (paper: 6–10; EBT.md: 2–4). {1, 2} learned as fast as {2..4} per second on DetourReach-Sided and
    trains at 0.44x Diffusion Policy's it/s ({2..4}: 0.32x); see README, Numbers."""
    unroll: str = "truncated"
    """``"truncated"`` (the reference's ``truncate_mcmc``): the iterate and velocity are detached between steps,
    only the last step builds a second-order graph and the loss is MSE(a_K, a*). ``"full"``: every step keeps
    its graph and the loss is the mean of MSE(a_i, a*) over the K steps (about 2x the cost per iteration)."""
    step_scale_range: tuple[float, float] = (1 / 1.5, 1.5)
    """Training only: every step's α_i is multiplied by a per-sample factor ~ U(low, high) ((1, 1): fixed)."""
    langevin_sigma_max: float = 0.2
    """Training only: std of the Langevin noise added to the iterate *before* the energy is evaluated at unroll
    step 0; annealed over the unroll index i (cosine) ..."""
    langevin_sigma_min: float = 0.002
    """... towards this std at i = K: ``σ_i = σ_min + ½(σ_max − σ_min)(1 + cos(π i / K))``. No noise follows the
    last step (it would be irreducible error in a_K). Both 0: no noise."""
    mask_padded_actions: bool = False
    """Leave padded chunk entries (``action_mask`` False) out of the MSE (default False, as for ``"mlp"``)."""
    dsm_weight: float = 0.0
    """Weight of the denoising-score-matching term (0 for ``"ebt"``; ``"ebt-dsm"`` uses > 0)."""
    dsm_sigma: float = 0.1
    """Smallest noise std σ of the DSM term in normalised action space ..."""
    dsm_sigma_max: float = 0.1
    """... and the largest: σ is drawn per sample, log-uniform in [dsm_sigma, dsm_sigma_max] (equal: one level)."""
    mse_weight: float = 1.0
    """Weight of EBT's unrolled MSE(a_i, a*) term (> 0 unless the DSM term trains the energy alone)."""

    # ----------------------------------------------------------------------------------------- inference
    inference_steps: int = 2
    """Maximal descent steps at inference: EBT-Policy's budget is 2 (the default); up to 16 for ablations."""
    step_schedule: str = "constant"
    """Inference step-size multipliers: ``"constant"`` (EBT-Policy) or ``"geometric"`` (a noise-level ladder from
    ``dsm_sigma_max`` down to ``dsm_sigma``, for the residual energy; see ``EBTPolicy.step_scales``)."""
    stop_tol: float = 0.0
    """Inference (dynamic compute): a sample stops once a step moved its chunk by less than this, measured as
    the RMS over the chunk's entries of ``α_i·∇ₐE`` in normalised action units (0 = never; EBT-Policy's
    fixed budget)."""
    energy_threshold: float | None = None
    """Inference (dynamic compute): after each step a forward pass evaluates the energy of the new chunk and a
    sample whose energy is below this value stops (None = off). Low energy = the model is confident, so the
    evaluations go to the chunks whose energy is high (calibrate with
    ``EBTPolicy.calibrate_energy_threshold``)."""
    min_inference_steps: int = 1
    """Steps every sample takes before a stop rule may stop it."""
    best_of_n: int = 1
    """Inference: descend from N noise draws per sample and keep the chunk with the lowest final energy."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("train_steps_min", "best_of_n", "inference_steps", "min_inference_steps"):
            check_int(name, getattr(self, name), 1)
        if self.inference_steps > MAX_INFERENCE_STEPS:
            raise ValueError(
                f"inference_steps must be <= {MAX_INFERENCE_STEPS} (EBT-Policy's budget is 2), "
                f"got {self.inference_steps}"
            )
        check_int("train_steps_max", self.train_steps_max, self.train_steps_min)
        if self.min_inference_steps > self.inference_steps:
            raise ValueError(
                f"min_inference_steps ({self.min_inference_steps}) must be <= inference_steps ({self.inference_steps})"
            )
        if self.unroll not in UNROLLS:
            raise ValueError(f"unroll must be one of {UNROLLS}, got {self.unroll!r}")
        for name in ("alpha", "alpha_temperature", "energy_clamp", "dsm_sigma", "dsm_sigma_max"):
            check_number(name, getattr(self, name))
        if self.energy_form not in ENERGY_FORMS:
            raise ValueError(f"energy_form must be one of {ENERGY_FORMS}, got {self.energy_form!r}")
        if self.step_schedule not in STEP_SCHEDULES:
            raise ValueError(f"step_schedule must be one of {STEP_SCHEDULES}, got {self.step_schedule!r}")
        if self.dsm_sigma_max < self.dsm_sigma:
            raise ValueError(f"dsm_sigma_max ({self.dsm_sigma_max}) must be >= dsm_sigma ({self.dsm_sigma})")
        if not (self.mse_weight > 0 or self.dsm_weight > 0):
            raise ValueError("mse_weight and dsm_weight are both 0: nothing would train the energy")
        for name in ("momentum", "langevin_sigma_max", "langevin_sigma_min", "stop_tol", "dsm_weight", "mse_weight"):
            check_number(name, getattr(self, name), strict=False)
        if self.momentum >= 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if isinstance(self.step_scale_range, str) or len(tuple(self.step_scale_range)) != 2:
            raise ValueError(f"step_scale_range must be a pair (low, high), got {self.step_scale_range!r}")
        self.step_scale_range = tuple(float(x) for x in self.step_scale_range)
        low, high = self.step_scale_range
        if not (0 < low <= high and math.isfinite(high)):
            raise ValueError(f"step_scale_range must satisfy 0 < low <= high, got {self.step_scale_range!r}")
        if self.energy_threshold is not None:
            check_number("energy_threshold", self.energy_threshold, low=-math.inf)
        check_bool("mask_padded_actions", self.mask_padded_actions)


@dataclass(kw_only=True)
class EBTDSMConfig(EBTConfig):
    """``"ebt-dsm"`` (ours): an energy trained by multi-scale denoising score matching, so it can hold several modes.

    Same model, descent (Nesterov, ``α·exp(E)/T``, ≤ 2 steps, early stop, best-of-N) and code as ``"ebt"``; what
    differs are these defaults: the residual energy ``E = ½‖a − D(obs, a)‖²/α`` (a descent step of size α lands
    near the denoiser output D), trained by DSM alone over noise levels σ ∈ [0.05, 2] (EBT's unrolled MSE pulls
    every start to the mean of the modes, so it is off), and action tokens that attend to the whole chunk (with
    causal attention the first tokens decide their side from their own noise only, and chunks blur).
    """

    dsm_weight: float = 1.0
    """Weight of the DSM term (must be > 0 for this variant)."""
    energy_form: str = "residual"
    """Residual energy (see ``EBTConfig.energy_form``)."""
    mse_weight: float = 0.0
    """EBT's unrolled MSE term, off: it makes the descent from any start land on the mean of the modes."""
    dsm_sigma: float = 0.05
    """Smallest DSM noise level."""
    dsm_sigma_max: float = 2.0
    """Largest DSM noise level (above the N(0, I) start's scale: measured better than 1.0 on DetourReach)."""
    causal_actions: bool = False
    """Every action token sees the whole chunk, so the whole chunk decides its mode together."""
    init: str = "normal"
    """N(0, 0.02) initialisation (the residual energy's first step moves the chunk to D(a) at any init)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.dsm_weight > 0:
            raise ValueError(f"ebt-dsm needs dsm_weight > 0, got {self.dsm_weight!r}")
