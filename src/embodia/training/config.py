"""Hyperparameters of the trainer (:class:`TrainConfig`), shared by ``embodia train`` and the benches.

Defaults follow ``shared/design/EBT.md`` for every policy: AdamW (lr 1e-4, weight decay 1e-6, betas 0.95/0.999
as in Diffusion Policy), linear warm-up then cosine decay to 0, gradient-norm clipping at 1.0, and an EMA of the
weights with Diffusion Policy's schedule ``decay = 1 - (1 + step)^-0.75`` capped at 0.9999.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from embodia.validation import check_int, check_number

__all__ = ["RESUME_MUTABLE_FIELDS", "TrainConfig"]

RESUME_MUTABLE_FIELDS = frozenset({"steps", "minutes", "log_every", "checkpoint_every", "checkpoint_minutes"})
"""Fields a resumed run may change (the budget and the bookkeeping); every other field must match the checkpoint."""


@dataclass(kw_only=True)
class TrainConfig:
    """How to train: the budget, the optimiser, the schedule, EMA, logging and checkpoints.

    Training stops at ``steps`` gradient steps or after ``minutes`` of training time, whichever comes first (at
    least one must be set before training: :meth:`check_budget`). Both count the whole run, across ``--resume``: a
    run resumed at step 800 with ``steps = 1000`` takes 200 more steps.
    """

    steps: int | None = None
    """Total gradient steps of the run (None: limited by --minutes only)."""
    minutes: float | None = None
    """Total training time of the run in minutes (None: limited by --steps only)."""
    batch_size: int = 64
    """Samples (observation window + action chunk) per gradient step."""
    lr: float = 1e-4
    """Peak learning rate of AdamW."""
    weight_decay: float = 1e-6
    """AdamW weight decay."""
    betas: tuple[float, float] = (0.95, 0.999)
    """AdamW betas."""
    warmup_steps: int = 200
    """Linear warm-up of the learning rate over this many steps (then cosine decay to 0 over the budget)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value (0 = no clipping)."""
    ema: bool = True
    """Keep an exponential moving average of the weights; the EMA weights are the run's policy."""
    ema_power: float = 0.75
    """EMA decay at step k is ``1 - (1 + k)^-ema_power`` (0 at the first step), capped at ``ema_max_decay``."""
    ema_max_decay: float = 0.9999
    """Upper bound of the EMA decay."""
    seed: int = 0
    """Seeds batch sampling and torch (initial weights, noise); a resumed run continues the saved RNG states."""
    log_every: int = 20
    """Write TensorBoard scalars every this many steps (means over the steps since the last write)."""
    checkpoint_every: int = 500
    """Write a checkpoint every this many steps (and at the end) ..."""
    checkpoint_minutes: float = 5.0
    """... and at least this often in training time, in minutes."""
    device: str = "cpu"
    """Torch device to train on."""

    def __post_init__(self) -> None:
        if self.steps is not None:
            check_int("steps", self.steps, 1)
        if self.minutes is not None:
            check_number("minutes", self.minutes, low=0.0, strict=True)
        for name, low in (("batch_size", 1), ("warmup_steps", 0), ("seed", 0), ("log_every", 1)):
            check_int(name, getattr(self, name), low)
        check_int("checkpoint_every", self.checkpoint_every, 1)
        check_number("lr", self.lr, low=0.0, strict=True)
        check_number("weight_decay", self.weight_decay, low=0.0, strict=False)
        check_number("grad_clip", self.grad_clip, low=0.0, strict=False)
        check_number("ema_power", self.ema_power, low=0.0, strict=True)
        check_number("ema_max_decay", self.ema_max_decay, low=0.0, strict=False, high=1.0)
        check_number("checkpoint_minutes", self.checkpoint_minutes, low=0.0, strict=True)
        if self.seed >= 2**31:
            raise ValueError(f"seed must be < 2**31, got {self.seed}")
        if isinstance(self.betas, str) or len(tuple(self.betas)) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {self.betas!r}")
        self.betas = tuple(float(b) for b in self.betas)
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must lie in [0, 1), got {self.betas!r}")
        if not isinstance(self.ema, bool):
            raise ValueError(f"ema must be a bool, got {self.ema!r}")
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(f"device must be a non-empty str, got {self.device!r}")

    def check_budget(self) -> None:
        """Raise ``ValueError`` unless ``steps`` or ``minutes`` is set."""
        if self.steps is None and self.minutes is None:
            raise ValueError("set a training budget: --steps N and/or --minutes M")

    @property
    def budget_s(self) -> float | None:
        """The time budget in seconds (None without ``minutes``)."""
        return None if self.minutes is None else 60.0 * self.minutes

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain values (what checkpoints and run directories store)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build and validate a config from :meth:`to_dict` output.

        Raises:
            ValueError: Unknown fields (named) or invalid values.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"TrainConfig has no fields {unknown}")
        return cls(**data)

    def changed_fields(self, other: TrainConfig) -> list[str]:
        """Fields that differ from ``other`` and may not change on resume (see ``RESUME_MUTABLE_FIELDS``)."""
        mine, theirs = self.to_dict(), other.to_dict()
        return sorted(k for k in mine if k not in RESUME_MUTABLE_FIELDS and mine[k] != theirs[k])
