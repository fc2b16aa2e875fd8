"""What one re-plan of a policy cost: :class:`PlanInfo`, which ``Policy.select_action`` keeps in ``last_plan``."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

__all__ = ["PlanInfo"]


@dataclass(frozen=True)
class PlanInfo:
    """One re-plan of a policy.

    Attributes:
        nfe: Network evaluations per sample, averaged over the batch (1.0 for a policy that does not count them:
            one forward pass).
        energy: Final energy of the chunk, averaged over the batch (energy-based policies), else None.
    """

    nfe: float
    energy: float | None

    @classmethod
    def of(cls, last_nfe: Tensor | None, last_energy: Tensor | None) -> PlanInfo:
        """From a policy's ``last_nfe`` ``(B,)`` and ``last_energy`` ``(B,)`` after ``predict_action`` (or None)."""
        nfe = float(last_nfe.float().mean()) if isinstance(last_nfe, Tensor) else 1.0
        energy = float(last_energy.float().mean()) if isinstance(last_energy, Tensor) else None
        return cls(nfe, energy)
