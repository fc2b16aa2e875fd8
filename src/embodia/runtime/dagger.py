"""DAgger (Ross et al. 2011): roll the learner out, label the states it visits with the expert, aggregate, retrain.

``train_with_dagger`` trains on the demonstrations, then ``rounds`` times:

1. rolls the latest policy out on ``episodes`` episodes (on Ray workers with ``workers >= 1``) while the env's
   scripted expert labels every visited state (``collect(..., labeller_fn=make_expert)``: the learner's action
   is executed, the expert's is recorded);
2. aggregates the demonstrations and every round's labelled rollouts (hard links, so nothing is copied);
3. retrains from scratch on the aggregate with the same budget, or, with ``round_steps``, fine-tunes the round's
   policy on the aggregate for that many steps (its weights and normaliser carried over).

Layout of ``run_dir``: the last round's run itself (``policy.pt``, ``summary.json`` with a ``dagger`` list of
per-round figures, TensorBoard events), ``dagger/round_<k>/`` the earlier runs, ``dagger/rollouts_<k>/`` the
labelled rollouts of round ``k`` (episode files and ``summary.json``: the learner's on-policy figures),
``dagger/data_<k>/`` the aggregates and ``dagger/`` TensorBoard scalars per round (``dagger/*``). Any env with a
registered expert works, manipulation included. A rollout worker that dies is replaced and its episode re-run (the
rollout pool's exactly-once rule), so no labelled episode is lost.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from embodia.atomic import write_json_atomic
from embodia.data.episodes import episode_files, read_episode
from embodia.envs.experts import make_expert
from embodia.policies.base import PolicyConfig
from embodia.runtime.collect import collect
from embodia.runtime.policy_controller import policy_controller
from embodia.training.config import TrainConfig
from embodia.training.entry import train
from embodia.training.run import RunOptions, run_files
from embodia.training.summary import SUMMARY_NAME
from embodia.validation import check_int

__all__ = ["DAGGER_SEED", "train_with_dagger"]

DAGGER_SEED = 2_000_000
"""Seed of round 1's first rollout (round k starts at ``seed + (k - 1) * episodes``); apart from the seeds demos
(0, ...) and evaluations (1,000,000, ...) use."""


def train_with_dagger(
    data: str | os.PathLike,
    policy: PolicyConfig,
    run_dir: str | os.PathLike,
    config: TrainConfig,
    *,
    rounds: int,
    episodes: int,
    seed: int = DAGGER_SEED,
    round_steps: int | None = None,
    workers: int = 0,
    ray_address: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train with ``rounds`` DAgger rounds of ``episodes`` labelled rollouts each (see the module docstring).

    Args:
        data: Directory of demonstration episode files; their env (id and keyword arguments, recorded in the
            files, the same in every file) is rolled out.
        policy: The policy's config (its data fields are set from the data, see
            :func:`~embodia.training.entry.train`).
        run_dir: The run directory.
        config: Budget and hyperparameters of every training (round 0 and each retraining).
        rounds: DAgger rounds (>= 1).
        episodes: Labelled rollouts per round (>= 1).
        seed: Seed of the first rollout.
        round_steps: Fine-tune each round's policy on the aggregate for this many steps (``train``'s
            ``RunOptions.init_from``); None: retrain from fresh weights with ``config``'s budget.
        workers: Ray actors for the rollouts (0: in this process).
        ray_address: A running Ray cluster for the actors.
        overwrite: Start over in an existing run directory.
        progress: Show progress bars.

    Returns:
        The final run's summary (``run_dir/summary.json``), with ``dagger``: per round, the rollouts' seeds, their
        on-policy metrics (mean success/TC of the policy being corrected) and the episodes trained on next; and
        ``dagger_wall_s``, the wall time of all rounds (trainings and rollouts).

    Raises:
        ValueError: Bad arguments, data without episodes or without an expert for its env, or an existing run
            without ``overwrite`` (checked before anything is trained).
    """
    check_int("--dagger-rounds", rounds, 1)
    check_int("--dagger-episodes", episodes, 1)
    check_int("--dagger-seed", seed, 0)
    if round_steps is not None:
        check_int("--dagger-round-steps", round_steps, 1)
    check_int("--dagger-workers", workers, 0)
    if seed > 2**63 - 1 - rounds * episodes:
        raise ValueError(f"--dagger-seed must be <= 2**63 - 1 - rounds * episodes, got {seed}")
    if ray_address is not None and workers == 0:
        raise ValueError("--ray-address needs --dagger-workers N >= 1 (the rollout actors run on the cluster)")
    data, run_dir = Path(data), Path(run_dir)
    files = episode_files(data) if data.is_dir() else []
    if not files:
        raise ValueError(f"--data {data} holds no episode files (*.h5)")
    first = read_episode(files[0])
    env_id, env_kwargs = first.env_id, first.env_kwargs or {}
    for path in files[1:]:  # the rollouts run in the demos' env: every file must come from the same one
        episode = read_episode(path)
        if (episode.env_id, episode.env_kwargs or {}) != (env_id, env_kwargs):
            raise ValueError(f"--data {data}: {path.name} was recorded in another env than {files[0].name}")
    import gymnasium as gym

    import embodia  # noqa: F401  (registers the environments)

    probe = gym.make(env_id, **env_kwargs)
    try:
        make_expert(probe)  # fails now, with the list of envs that have experts, not after round 0's training
    finally:
        probe.close()
    work = run_dir / "dagger"
    if (work.exists() or run_files(run_dir)) and not overwrite:
        raise ValueError(f"--run {run_dir} already holds a run; pass --overwrite to start over")
    for path in run_files(run_dir):  # --overwrite: nothing of the old run may outlive a failed round
        path.unlink()
    if work.exists():
        shutil.rmtree(work)
    start = time.perf_counter()
    fresh = RunOptions(overwrite=True)
    train(data, policy, work / "round_0", config, fresh, progress=progress)
    sources, history = [data], []
    for k in range(1, rounds + 1):
        previous = work / f"round_{k - 1}" / "policy.pt"
        rollouts = work / f"rollouts_{k}"
        start_seed = seed + (k - 1) * episodes
        summary = collect(
            env_id, episodes, rollouts, seed=start_seed, env_kwargs=env_kwargs,
            controller_fn=functools.partial(policy_controller, str(previous)),
            labeller_fn=make_expert, overwrite=True, progress=progress, workers=workers, ray_address=ray_address,
        )  # fmt: skip
        sources.append(rollouts)
        aggregate = _aggregate(sources, work / f"data_{k}")
        last = k == rounds
        out = run_dir if last else work / f"round_{k}"
        if round_steps is None:
            result = train(aggregate, policy, out, config, fresh, progress=progress)
        else:
            tune = dataclasses.replace(
                config, steps=round_steps, minutes=None, warmup_steps=min(config.warmup_steps, round_steps)
            )
            tuned = RunOptions(overwrite=True, init_from=str(previous))
            result = train(aggregate, policy, out, tune, tuned, progress=progress)
        metrics = {name: summary["metrics"][name]["mean"] for name in ("success", "tc") if name in summary["metrics"]}
        history.append(
            {"round": k, "seeds": [start_seed, start_seed + episodes - 1], "rollout_metrics": metrics,
             "episodes_trained_on": len(episode_files(aggregate)), "final_loss": result.last_terms.get("loss")}
        )  # fmt: skip
        _log_round(work, k, metrics, len(episode_files(aggregate)))
    final = json.loads((run_dir / SUMMARY_NAME).read_text())
    final["dagger"] = history
    final["dagger_wall_s"] = round(time.perf_counter() - start, 1)  # every round's training and rollouts
    write_json_atomic(run_dir / SUMMARY_NAME, final)
    return final


def _aggregate(sources: list[Path], out: Path) -> Path:
    """A directory of hard links (copies where links fail) to every episode file in ``sources``."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for s, source in enumerate(sources):
        for path in episode_files(source):
            target = out / f"episode_{s:02d}_{path.name.removeprefix('episode_')}"
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
    return out


def _log_round(log_dir: Path, k: int, metrics: dict[str, float], episodes: int) -> None:
    """TensorBoard scalars of round ``k``: the learner's on-policy rollout metrics and the aggregate's size."""
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(log_dir)) as writer:
        for name, value in metrics.items():
            writer.add_scalar(f"dagger/rollout_{name}", value, k)
        writer.add_scalar("dagger/episodes_trained_on", episodes, k)
