"""``TrainSummary``: what a finished training run reports, written as the run's ``summary.json``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embodia.atomic import write_json_atomic
from embodia.training.config import TrainConfig

__all__ = ["SUMMARY_NAME", "TrainSummary"]

SUMMARY_NAME = "summary.json"
"""The summary's file in the run directory."""


@dataclass
class TrainSummary:
    """A finished (or stopped) training run, as :func:`embodia.training.entry.train` returns it.

    Attributes:
        policy: The policy's registry name.
        steps: Gradient steps of the whole run (across resumes).
        samples: Samples seen by the whole run (every worker's).
        elapsed_s: Training time of the whole run, seconds.
        stopped_by: ``"steps"``, ``"minutes"`` or ``"signal"``.
        it_per_s_last_segment: Steps per second of this call's training.
        last_terms: Mean loss terms over the last logging window.
        train_config: The budget and hyperparameters.
        data: The data description (directory, episodes, samples, observation keys, digest).
        policy_file: The run's policy file (``policy.pt``).
        checkpoint: The run's training checkpoint.
        init_from: The policy file a fine-tuning run started from (None: fresh weights or a resumed run).
        restarts: Distributed runs: one entry ``{"resumed_at_step": k}`` per restart of the worker group.
    """

    policy: str
    steps: int
    samples: int
    elapsed_s: float
    stopped_by: str
    it_per_s_last_segment: float
    last_terms: dict[str, float]
    train_config: TrainConfig
    data: dict[str, Any]
    policy_file: str
    checkpoint: str
    init_from: str | None = None
    restarts: list[dict[str, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain values (what ``summary.json`` holds)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainSummary:
        """The summary from :meth:`to_dict` output (``summary.json``); keys of other writers (DAgger) are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in data.items() if k in names}
        return cls(**{**fields, "train_config": TrainConfig.from_dict(data["train_config"])})

    def write(self, run_dir: str | Path) -> Path:
        """Write ``run_dir/summary.json`` atomically; returns its path."""
        path = Path(run_dir) / SUMMARY_NAME
        write_json_atomic(path, self.to_dict())
        return path
