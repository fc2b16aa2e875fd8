"""Experiments: collect demonstrations, train several variants, evaluate them on held-out seeds, compare.

``embodia demo`` and ``bench/memory_ablation.py`` are experiments. A :class:`Variant` is one row of the
comparison: a learned policy or agent (trained by :func:`~embodia.training.entry.train` on the env's
demonstrations) or a controller that needs no training (the scripted expert, the modular agent). Variants train
in parallel as Ray tasks (one CPU each; ``workers = 0`` trains them one after another in this process) and are
evaluated with :func:`~embodia.runtime.collect.collect` on the Ray rollout pool, every variant of an env on the
same held-out seeds, so differences between rows are paired.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from embodia.policies.base import PolicyConfig
from embodia.runtime.collect import collect
from embodia.runtime.policy_controller import policy_controller
from embodia.stats import mean_ci95
from embodia.training.config import TrainConfig

__all__ = [
    "Variant", "evaluate_variants", "log_eval", "mean_per_episode", "paired_difference", "per_episode",
    "train_variants",
]  # fmt: skip


@dataclass(frozen=True)
class Variant:
    """One row of a comparison.

    Attributes:
        name: Row label (also the run and evaluation directory name).
        env_id: The environment it is trained and evaluated on.
        policy: The config of the policy to train (``embodia.policies.factory.policy_config("ebt", ...)``; its
            data fields are set from the demonstrations), or None for a controller that needs no training
            (``controller``).
        obs_keys: Observation keys of a plain policy (None: every numeric key).
        controller: For ``policy=None``: ``functools.partial``-style factory ``env -> controller`` (picklable).
        env_kwargs: ``gymnasium.make`` keyword arguments for evaluation.
        dagger_rounds: DAgger rounds after training on the demonstrations (:mod:`embodia.runtime.dagger`).
        dagger_episodes: Labelled rollouts per DAgger round.
    """

    name: str
    env_id: str
    policy: PolicyConfig | None = None
    obs_keys: tuple[str, ...] | None = None
    controller: Callable[[gym.Env], Any] | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    dagger_rounds: int = 0
    dagger_episodes: int = 0

    def __post_init__(self) -> None:
        if (self.policy is None) == (self.controller is None):
            raise ValueError(f"variant {self.name!r}: give exactly one of policy and controller")
        if self.dagger_rounds:
            if self.policy is None or self.obs_keys is not None:
                raise ValueError(f"variant {self.name!r}: DAgger needs a policy trained on all its observations")
            if isinstance(self.dagger_episodes, bool) or not isinstance(self.dagger_episodes, int):
                raise ValueError(f"variant {self.name!r}: dagger_episodes must be an integer")
            if self.dagger_episodes < 1:
                raise ValueError(f"variant {self.name!r}: dagger_rounds > 0 needs dagger_episodes >= 1")


def _train_one(variant: Variant, data: str, run_dir: str, config: TrainConfig, progress: bool) -> dict[str, Any]:
    """Train one variant in this process; returns its summary (``summary.json``) with ``wall_s``.

    ``wall_s`` is the whole task's wall time: loading and preparing the data (e.g. an agent's memory replay), the
    optimiser's steps and every DAgger round.
    """
    import time

    import torch

    from embodia.runtime.dagger import train_with_dagger
    from embodia.training.entry import train
    from embodia.training.run import RunOptions

    torch.set_num_threads(1)
    start = time.perf_counter()
    if variant.dagger_rounds:
        summary = train_with_dagger(
            data, variant.policy, run_dir, config, rounds=variant.dagger_rounds, episodes=variant.dagger_episodes,
            overwrite=True, progress=progress,
        )  # fmt: skip
    else:
        options = RunOptions(obs_keys=variant.obs_keys, overwrite=True)
        summary = train(data, variant.policy, run_dir, config, options, progress=progress).to_dict()
    return {**summary, "wall_s": round(time.perf_counter() - start, 1)}


def train_variants(
    variants: Sequence[Variant],
    data_dirs: dict[str, Path],
    run_root: Path,
    config: TrainConfig,
    *,
    workers: int = 0,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Train every learned variant on its env's demonstrations; returns ``{name: summary}``.

    Args:
        variants: The rows; those without a ``policy`` are skipped.
        data_dirs: Demonstration directory per env id.
        run_root: Runs go to ``run_root/<name>`` (overwritten).
        config: The same budget and hyperparameters for every variant.
        workers: Train up to this many variants at once as Ray tasks (one CPU each); 0 trains them in turn here.
        progress: Progress bars (in-process training only).

    Raises:
        KeyError: A variant's env has no demonstrations in ``data_dirs``.
    """
    learned = [v for v in variants if v.policy is not None]
    jobs = [(v, str(data_dirs[v.env_id]), str(run_root / v.name)) for v in learned]
    if not workers:
        return {v.name: _train_one(v, data, run, config, progress) for v, data, run in jobs}
    import ray

    from embodia.ray_setup import init_ray

    init_ray(workers)
    remote = ray.remote(num_cpus=1, max_retries=0)(_train_one)
    refs = [remote.remote(v, data, run, config, False) for v, data, run in jobs]
    summaries = ray.get(refs)
    return {v.name: s for (v, _, _), s in zip(jobs, summaries, strict=True)}


def evaluate_variants(
    variants: Sequence[Variant],
    run_root: Path,
    eval_root: Path,
    *,
    episodes: int,
    seed: int,
    workers: int = 0,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Evaluate every variant on episodes ``seed .. seed + episodes - 1`` of its env; returns ``{name: summary}``.

    A learned variant runs ``run_root/<name>/policy.pt`` (agents trained with ``act_from_phase`` run under the
    hand-over protocol); episode files and ``summary.json`` go to ``eval_root/<name>``.
    """
    summaries = {}
    for v in variants:
        if v.policy is not None:
            controller_fn = functools.partial(policy_controller, str((run_root / v.name / "policy.pt").resolve()))
        else:
            controller_fn = v.controller
        start = time.perf_counter()
        summary = collect(
            v.env_id, episodes, eval_root / v.name, seed=seed, env_kwargs=v.env_kwargs, overwrite=True,
            progress=progress, workers=workers, controller_fn=controller_fn,
        )  # fmt: skip
        summary["eval_s"] = round(time.perf_counter() - start, 2)
        summaries[v.name] = summary
    return summaries


def per_episode(summary: dict[str, Any], key: str) -> np.ndarray:
    """``(N,)`` values of ``key`` per episode, ordered by seed (NaN where an episode lacks it)."""
    rows = sorted(summary["per_episode"], key=lambda r: r["seed"])
    return np.array([float(r.get(key, np.nan)) for r in rows])


def mean_per_episode(summary: dict[str, Any], key: str) -> float | None:
    """Mean of ``key`` over the episodes that measured it (None when none did: e.g. a controller without latency)."""
    values = per_episode(summary, key)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None


def paired_difference(a: dict[str, Any], b: dict[str, Any], key: str) -> dict[str, Any]:
    """Mean of ``a - b`` over the episodes both ran (same seeds), with a 95 % t-interval.

    Returns:
        ``{"mean", "ci95", "n", "a", "b"}`` (``a``/``b``: the two means on those episodes).

    Raises:
        ValueError: The two summaries ran different seeds.
    """
    seeds_a = sorted(r["seed"] for r in a["per_episode"])
    seeds_b = sorted(r["seed"] for r in b["per_episode"])
    if seeds_a != seeds_b:
        raise ValueError("paired_difference needs evaluations on the same seeds")
    va, vb = per_episode(a, key), per_episode(b, key)
    diff = mean_ci95(va - vb, rate=False)
    return {"mean": diff["mean"], "ci95": diff["ci95"], "n": diff["n"], "a": float(va.mean()), "b": float(vb.mean())}


def log_eval(log_dir: Path, summary: dict[str, Any], label: str) -> None:
    """``eval/<metric>`` scalars (means) and a text table of means with 95 % CIs, in TensorBoard at ``log_dir``.

    Also ``eval/controller/<figure>`` (mean latency, NFE, energy per episode) and, for energy-based policies,
    ``eval/chunk_energy`` (a histogram of every chunk's final energy) and ``eval/chunk_energy_episode0`` (the
    energy of each chunk of the first episode, by chunk index).

    Args:
        log_dir: The event directory (e.g. ``<eval out>/tb``).
        summary: A :func:`~embodia.runtime.collect.collect` summary.
        label: What was evaluated (shown above the table), e.g. ``"ebt (runs/ebt/policy.pt)"``.
    """
    from torch.utils.tensorboard import SummaryWriter

    rows = ["| metric | mean | 95 % CI | n |", "|---|---|---|---|"]
    with SummaryWriter(str(log_dir)) as writer:
        for key, m in summary["metrics"].items():
            writer.add_scalar(f"eval/{key}", m["mean"], 0)
            rows.append(f"| {key} | {m['mean']:.4g} | [{m['ci95'][0]:.4g}, {m['ci95'][1]:.4g}] | {m['n']} |")
        for key, m in summary.get("controller", {}).items():  # latency, NFE, EBT's chunk energy
            writer.add_scalar(f"eval/controller/{key}", m["mean"], 0)
        energies = [e for episode in summary.get("per_episode", []) for e in episode.get("energies", [])]
        if energies:  # energy-based policies: the final energy of every chunk, an uncertainty signal
            writer.add_histogram("eval/chunk_energy", np.asarray(energies, dtype=np.float64), 0)
            for i, energy in enumerate(summary["per_episode"][0].get("energies", [])):
                writer.add_scalar("eval/chunk_energy_episode0", energy, i)
        header = f"{label} on {summary['env']}, {summary['episodes']} episodes\n\n"
        writer.add_text("eval/summary", header + "\n".join(rows), 0)
