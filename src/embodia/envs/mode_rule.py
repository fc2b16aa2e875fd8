"""What an env provides so that generic code can sort action chunks into modes (e.g. which way round an obstacle).

An env that has distinct modes (DetourReach: left or right of the obstacle) implements :class:`ModeRule` on its
unwrapped env; :func:`embodia.runtime.policy_eval.mode_split` asks for it and never names an env.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["ModeRule"]


@runtime_checkable
class ModeRule(Protocol):
    """An env that can tell which mode an action chunk would take from its current state."""

    def chunk_modes(self, chunks: Any, start_index: int) -> np.ndarray:
        """The mode of each raw action chunk, executed open loop from the current state.

        Args:
            chunks: ``(N, Tp, Da)`` raw action chunks (numpy or a CPU/GPU tensor).
            start_index: First chunk entry to execute (``To - 1``: the current step), ``0 <= start_index < Tp``.

        Returns:
            ``(N,)`` float64 labels: +1.0 (``"left"``), -1.0 (``"right"``), 0.0 (``"undecided"``).

        Raises:
            ValueError: Chunks of the wrong shape or a ``start_index`` out of range.
        """
        ...

    def mode_origin(self) -> dict[str, list[float]]:
        """Where the chunks of :meth:`chunk_modes` start from, as JSON values (DetourReach: ``start``, ``goal``)."""
        ...
