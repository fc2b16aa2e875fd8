"""Config of Diffusion Policy (``"diffusion"``).

See ``/work/shared/design/EBT.md`` ("Diffusion Policy baseline"): DDPM with 100 training steps,
``squaredcos_cap_v2``, ε-prediction, clipped x₀; inference DDIM-10 (default) or DDPM-100. The backbone is the
transformer shared with EBT (CPU-sized: d = 64, 2 blocks), the diffusion step a conditioning token.
"""

from __future__ import annotations

from dataclasses import dataclass

from embodia.policies.transformer_config import TransformerPolicyConfig
from embodia.validation import check_bool, check_int

__all__ = ["DiffusionConfig"]

_INFERENCE = ("ddim", "ddpm")


@dataclass(kw_only=True)
class DiffusionConfig(TransformerPolicyConfig):
    """ε-prediction network ``ε_θ(obs, a_t, t)`` = :class:`TransformerBackbone` with a diffusion-step token."""

    step_embed_dim: int = 64
    """Width (even) of the sinusoidal embedding of the diffusion step, fed to the backbone as ``cond``."""

    # ----------------------------------------------------------------------------------------- diffusion
    num_train_timesteps: int = 100
    """T: DDPM steps of the ``squaredcos_cap_v2`` schedule."""
    clip_sample: bool = True
    """Clip the x₀ estimate to [-1, 1] (normalised action range) in every sampling step."""
    inference: str = "ddim"
    """Sampler of :meth:`DiffusionPolicy.predict_action`: ``"ddim"`` (η = 0, ``num_inference_steps``) or
    ``"ddpm"`` (ancestral, all ``num_train_timesteps`` steps)."""
    num_inference_steps: int = 10
    """DDIM steps k (ignored by ``"ddpm"``)."""
    mask_padded_actions: bool = False
    """Leave padded chunk entries (``action_mask`` False) out of the MSE (default False, as for ``"mlp"``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("step_embed_dim", "num_inference_steps"):
            check_int(name, getattr(self, name), 1)
        check_int("num_train_timesteps", self.num_train_timesteps, 2)
        if self.step_embed_dim % 2:
            raise ValueError(f"step_embed_dim must be even, got {self.step_embed_dim}")
        if self.inference not in _INFERENCE:
            raise ValueError(f"inference must be one of {_INFERENCE}, got {self.inference!r}")
        if self.num_inference_steps > self.num_train_timesteps:
            raise ValueError(
                f"num_inference_steps ({self.num_inference_steps}) must be <= num_train_timesteps "
                f"({self.num_train_timesteps})"
            )
        for name in ("clip_sample", "mask_padded_actions"):
            check_bool(name, getattr(self, name))
