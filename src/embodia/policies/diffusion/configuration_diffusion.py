"""Config of Diffusion Policy (``"diffusion"``).

See ``/work/shared/design/EBT.md`` ("Diffusion Policy baseline"): DDPM with 100 training steps,
``squaredcos_cap_v2``, ε-prediction, clipped x₀; inference DDIM-10 (default) or DDPM-100. The backbone is the
transformer shared with EBT (CPU-sized: d = 64, 2 blocks), the diffusion step a conditioning token.
"""

from __future__ import annotations

from dataclasses import dataclass

from embodia.policies.transformer_config import TransformerPolicyConfig

__all__ = ["DiffusionConfig"]

_INFERENCE = ("ddim", "ddpm")


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


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
        for name in ("d_model", "n_layers", "n_heads", "mlp_ratio", "step_embed_dim", "num_inference_steps"):
            _check_int(name, getattr(self, name), 1)
        _check_int("n_obs_layers", self.n_obs_layers, 0)
        _check_int("num_train_timesteps", self.num_train_timesteps, 2)
        if self.d_model % 2 or self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be even and divisible by n_heads ({self.n_heads})")
        if self.step_embed_dim % 2:
            raise ValueError(f"step_embed_dim must be even, got {self.step_embed_dim}")
        if not (isinstance(self.dropout, int | float) and not isinstance(self.dropout, bool)) or not (
            0 <= self.dropout < 1
        ):
            raise ValueError(f"dropout must be a number in [0, 1), got {self.dropout!r}")
        if self.inference not in _INFERENCE:
            raise ValueError(f"inference must be one of {_INFERENCE}, got {self.inference!r}")
        if self.num_inference_steps > self.num_train_timesteps:
            raise ValueError(
                f"num_inference_steps ({self.num_inference_steps}) must be <= num_train_timesteps "
                f"({self.num_train_timesteps})"
            )
        for name in ("causal_actions", "clip_sample", "mask_padded_actions"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
