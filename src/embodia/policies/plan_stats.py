"""The per-episode bookkeeping of a controller's latency and plans.

:meth:`Policy.select_action <embodia.policies.base.Policy.select_action>` records a
:class:`~embodia.policies.plan_info.PlanInfo` in ``policy.last_plan`` when a call predicted a new chunk (None when
it popped a planned action), so no caller needs the policy's plan queue. :class:`PlanStats` is the one bookkeeper
of every controller that times its actions (``PolicyController``, the memory agents, the modular agent): wall time
per action, per observation and per re-plan, network evaluations per plan and, for energy-based policies, the
final energy of every chunk.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from embodia.policies.base import Policy

__all__ = ["PlanStats"]


class PlanStats:
    """Per-episode latency and planning figures of a controller; :meth:`reset` at every episode start.

    Args:
        observes: The controller times its observations (``observe_ms_mean`` is reported, 0.0 when none).
    """

    def __init__(self, *, observes: bool = False) -> None:
        self.observes = observes
        self.reset()

    def reset(self) -> None:
        """Forget the episode's figures."""
        self._plan_ms: list[float] = []
        self._nfe: list[float] = []
        self._energy: list[float] = []
        self._act_ms: list[float] = []
        self._observe_ms: list[float] = []

    @property
    def plans(self) -> int:
        """Re-plans recorded this episode."""
        return len(self._plan_ms)

    @contextlib.contextmanager
    def acting(self) -> Iterator[None]:
        """Time the block as one action (``act_ms_mean``: observation, amortised plans and all)."""
        start = time.perf_counter()
        yield
        self._act_ms.append(1e3 * (time.perf_counter() - start))

    @contextlib.contextmanager
    def observing(self) -> Iterator[None]:
        """Time the block as one observation (``observe_ms_mean``)."""
        start = time.perf_counter()
        yield
        self._observe_ms.append(1e3 * (time.perf_counter() - start))

    def select(self, policy: Policy, batch: Mapping[str, Any]) -> np.ndarray:
        """``policy.select_action(batch)`` without gradients, its first row as ``(Da,)`` float32; records a re-plan.

        A call that predicted a new chunk (``policy.last_plan`` set) counts as a plan: its wall time (the copy of
        the action to the host included), network evaluations and energy.
        """
        start = time.perf_counter()
        with torch.no_grad():
            action = policy.select_action(batch)[0].cpu().numpy().astype(np.float32)  # (Da,)
        plan = policy.last_plan
        if plan is not None:
            self._plan_ms.append(1e3 * (time.perf_counter() - start))
            self._nfe.append(plan.nfe)
            if plan.energy is not None:
                self._energy.append(plan.energy)
        return action

    def act_figures(self) -> dict[str, float]:
        """``{"act_ms_mean"}``: mean wall time per action, ms; empty when the controller never acted."""
        return {"act_ms_mean": float(np.mean(self._act_ms))} if self._act_ms else {}

    def plan_figures(self) -> dict[str, Any]:
        """The episode's plans.

        Returns:
            ``plans``, ``plan_ms_mean`` / ``plan_ms_max`` (wall time per plan, ms), ``nfe_mean`` (network
            evaluations per plan), ``observe_ms_mean`` when the controller observes and, for energy-based policies,
            ``energies`` (the final energy of every chunk, in order: an uncertainty signal) and their
            ``energy_mean`` / ``energy_max``. Zeros for an episode without plans.
        """
        out: dict[str, Any] = {
            "plans": self.plans,
            "plan_ms_mean": float(np.mean(self._plan_ms)) if self._plan_ms else 0.0,
            "plan_ms_max": float(np.max(self._plan_ms)) if self._plan_ms else 0.0,
        }
        if self.observes:
            out["observe_ms_mean"] = float(np.mean(self._observe_ms)) if self._observe_ms else 0.0
        out["nfe_mean"] = float(np.mean(self._nfe)) if self._nfe else 0.0
        if self._energy:
            out.update(
                energies=list(self._energy),
                energy_mean=float(np.mean(self._energy)),
                energy_max=float(np.max(self._energy)),
            )
        return out
