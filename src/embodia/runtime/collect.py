"""``embodia collect`` / ``eval``: run a controller for N episodes and write episode files and a summary.

The episodes run in this process or on Ray actors; the summary holds 95 % confidence intervals.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from embodia.atomic import write_json_atomic
from embodia.data.episodes import episode_files
from embodia.runtime.controller import ControllerFactory
from embodia.runtime.rollout import EpisodeResult, EpisodeSpec, RolloutWorker
from embodia.stats import summarise_metrics
from embodia.validation import check_number

RATE_METRICS = frozenset({"success", "tc", "sim_unstable"})
"""Metrics that are rates (0/1 per episode): summarised with Wilson intervals, the rest with t-intervals."""


def collect(
    env_id: str,
    episodes: int,
    out: str | Path,
    *,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    workers: int = 0,
    ray_address: str | None = None,
    controller_fn: ControllerFactory | None = None,
    action_noise: float = 0.0,
    labeller_fn: ControllerFactory | None = None,
) -> dict[str, Any]:
    """Runs a controller (default: the env's expert) for ``episodes`` episodes and writes files and a summary.

    Episode ``i`` (seed ``seed + i``) goes to ``out/episode_<i>.h5``; the summary to ``out/summary.json``.

    Args:
        env_id: registered Gymnasium id (with a scripted expert unless ``controller_fn`` is given).
        episodes: number of episodes (>= 1).
        out: output directory (created).
        seed: seed of the first episode.
        env_kwargs: keyword arguments for ``gymnasium.make``.
        overwrite: replace episode files already in ``out`` (otherwise refuse, so nothing is lost).
        progress: show a progress bar.
        workers: 0 runs the episodes in this process; N >= 1 runs them on N Ray actors
            (:class:`~embodia.runtime.ray_pool.RayRolloutPool`; same episodes, same files, same summary).
        ray_address: ``HOST:PORT`` of a running Ray cluster for the actors (default: a local instance).
        controller_fn: builds the controller from the env (picklable with ``workers``), e.g.
            ``functools.partial(policy_controller, checkpoint)``; None: the env's scripted expert.
        action_noise: > 0: DART noise injection (the env executes the controller's action plus Gaussian noise of
            this std in half action ranges; the files record the unperturbed action as the label); see
            :class:`~embodia.runtime.rollout.RolloutWorker`. Recorded in the summary.
        labeller_fn: DAgger relabelling: builds the labeller (e.g. ``make_expert``) whose action for each visited
            state the files record, while the controller's action is executed (picklable with ``workers``).

    Returns:
        The summary written to ``summary.json``:
        ``{"env", "episodes", "seed", "env_kwargs", "metrics": {name: {"mean", "ci95", "n"}}, "files", ...}``.

    Raises:
        ValueError: bad arguments, or ``out`` already holds episodes and ``overwrite`` is False.
    """
    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    if not 0 <= seed <= 2**63 - 1 - episodes:
        raise ValueError(f"--seed must be in [0, 2**63 - 1 - episodes], got {seed}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a directory")
    existing = episode_files(out) if out.is_dir() else []
    if existing and not overwrite:
        raise ValueError(f"{out} already holds {len(existing)} episode files; pass --overwrite or another --out")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"--workers must be an integer >= 0, got {workers!r}")
    check_number("--action-noise", action_noise, strict=False)
    action_noise = float(action_noise)
    if ray_address is not None and workers == 0:
        raise ValueError("--ray-address needs --workers N >= 1 (the actors run on the cluster)")
    start = time.perf_counter()
    if workers:
        from embodia.runtime.ray_pool import RayRolloutPool

        worker: Any = RayRolloutPool(
            env_id,
            env_kwargs,
            controller_fn,
            action_noise=action_noise,
            labeller_fn=labeller_fn,
            workers=workers,
            address=ray_address,
            progress=progress,
        )
    else:  # fails on a bad env id or kwargs before anything is touched
        worker = RolloutWorker(env_id, env_kwargs, controller_fn, action_noise, labeller_fn)
    specs = [EpisodeSpec(i, seed + i) for i in range(episodes)]
    try:
        out.mkdir(parents=True, exist_ok=True)
        for stale in existing:  # --overwrite: the directory must hold this collection only
            stale.unlink()
        (out / "summary.json").unlink(missing_ok=True)
        results = worker.run(specs, out) if workers else _run_sequentially(worker, specs, out, env_id, progress)
    finally:
        worker.close()
    for partial in out.glob(".*.tmp"):  # left by an actor killed while writing (its episode was re-run)
        partial.unlink(missing_ok=True)
    wall = time.perf_counter() - start
    steps = sum(r.num_steps for r in results)
    summary = {
        "env": env_id,
        "episodes": len(results),
        "seed": seed,
        "env_kwargs": env_kwargs or {},
        "action_noise": action_noise,
        "labelled_by": sorted({str(r.extra["labelled_by"]) for r in results if "labelled_by" in r.extra}) or None,
        "metrics": summarise_metrics([r.metrics for r in results], rate_keys=RATE_METRICS),
        "controller": summarise_metrics([_controller_figures(r.extra) for r in results], rate_keys=()),
        "steps": steps,
        "wall_s": round(wall, 3),
        "steps_per_s": round(steps / wall, 1) if wall > 0 else None,
        "files": [Path(r.path).name for r in results if r.path],
        "per_episode": [
            {"index": r.index, "seed": r.seed, "steps": r.num_steps, **r.metrics, **r.extra} for r in results
        ],
    }
    write_json_atomic(out / "summary.json", summary)
    return summary


CONTROLLER_FIGURES = ("act_ms_mean", "plan_ms_mean", "nfe_mean", "energy_mean", "energy_max")
"""Per-episode controller figures summarised across episodes (latency, network evaluations, EBT's chunk energy)."""


def _controller_figures(extra: dict[str, Any]) -> dict[str, float]:
    """The numeric :data:`CONTROLLER_FIGURES` a controller reported for one episode (experts report none)."""
    return {k: float(extra[k]) for k in CONTROLLER_FIGURES if isinstance(extra.get(k), int | float)}


def _run_sequentially(
    worker: RolloutWorker, specs: list[EpisodeSpec], out: Path, env_id: str, progress: bool
) -> list[EpisodeResult]:
    """Run ``specs`` in this process, with a progress bar showing the running success rate."""
    results = []
    bar = tqdm(specs, desc=f"collect {env_id}", unit="ep", disable=not progress, dynamic_ncols=True)
    for spec in bar:
        result = worker.run_episode(spec, out)
        results.append(result)
        successes = sum(r.metrics.get("success", 0.0) for r in results)
        bar.set_postfix(success=f"{successes / len(results):.2f}", steps=result.num_steps)
    return results


def format_summary(summary: dict[str, Any], keys: tuple[str, ...] | None = None) -> str:
    """A plain-text table of a summary's metrics (mean and 95 % CI)."""
    metrics = summary["metrics"]
    keys = keys or tuple(metrics)
    lines = [f"{summary['env']}: {summary['episodes']} episodes", f"  {'metric':<22} {'mean':>9}  95% CI"]
    for key in keys:
        if key in metrics:
            m = metrics[key]
            lines.append(f"  {key:<22} {m['mean']:>9.3f}  [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}]")
    return "\n".join(lines)
