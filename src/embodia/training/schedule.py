"""Learning-rate schedule: linear warm-up, then cosine decay to 0 over the run's budget."""

from __future__ import annotations

import math

__all__ = ["lr_factor"]


def lr_factor(step: int, progress: float, warmup_steps: int) -> float:
    """Multiplier of the peak learning rate for the gradient step ``step`` (0-based).

    ``min(1, (step + 1) / warmup_steps) · ½(1 + cos(π · progress))``, where ``progress`` in [0, 1] is the fraction
    of the budget used (steps done / steps, or time used / time budget, whichever is further). Counting the
    cosine in budget fractions lets one schedule serve step budgets and wall-clock budgets.

    Args:
        step: Gradient steps taken before this one.
        progress: Fraction of the budget used; clamped to [0, 1].
        warmup_steps: Steps of linear warm-up (0 = none).

    Returns:
        The factor in [0, 1].
    """
    warm = 1.0 if warmup_steps <= 0 else min(1.0, (step + 1) / warmup_steps)
    p = min(max(progress, 0.0), 1.0)
    return warm * 0.5 * (1.0 + math.cos(math.pi * p))
