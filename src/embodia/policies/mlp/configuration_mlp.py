"""Config of the MLP behaviour-cloning baseline."""

from __future__ import annotations

from dataclasses import dataclass

from embodia.policies.base import PolicyConfig

__all__ = ["MLPConfig"]


@dataclass(kw_only=True)
class MLPConfig(PolicyConfig):
    """MLP from the flattened observation window to the flattened action chunk (MSE on normalised actions)."""

    hidden_dims: tuple[int, ...] = (256, 256)
    """Widths of the hidden layers (GELU after each)."""
    dropout: float = 0.0
    """Dropout after every hidden activation (train mode only)."""
    mask_padded_actions: bool = False
    """Leave padded chunk entries (``action_mask`` False) out of the loss. Default False, as in Diffusion
    Policy: padding repeats the edge action, which is a well-defined target (hold the last action)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.hidden_dims, str | int):
            raise ValueError(f"hidden_dims must be a sequence of ints, got {self.hidden_dims!r}")
        self.hidden_dims = tuple(self.hidden_dims)
        if any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.hidden_dims):
            raise ValueError(f"hidden_dims must be integers >= 1, got {self.hidden_dims!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, int | float) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1), got {self.dropout!r}")
        if not isinstance(self.mask_padded_actions, bool):
            raise ValueError(f"mask_padded_actions must be a bool, got {self.mask_padded_actions!r}")
