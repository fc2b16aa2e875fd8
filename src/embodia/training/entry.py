"""``train``: the one entry point of training, in this process or data-parallel on Ray Train workers.

A run directory holds ``config.json`` (the resolved policy and train configs and the data, written at the start),
``tb/`` (TensorBoard event files), ``checkpoints/last.pt`` (training state), ``policy.pt`` (the run's policy) and,
when training ends, ``summary.json`` (:class:`~embodia.training.summary.TrainSummary`). Starting a run where a
checkpoint already exists is refused unless ``resume`` (continue it, with the same data and hyperparameters; only
the budget and the bookkeeping may change) or ``overwrite`` (delete the run's files and start over).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from embodia.policies.base import PolicyConfig
from embodia.training.config import TrainConfig
from embodia.training.run import RunOptions, execute_run, prepare_run
from embodia.training.summary import TrainSummary
from embodia.validation import check_int

__all__ = ["train"]


def train(
    data: str | os.PathLike,
    policy: PolicyConfig,
    run_dir: str | os.PathLike,
    config: TrainConfig,
    options: RunOptions | None = None,
    *,
    workers: int = 0,
    ray_address: str | None = None,
    max_failures: int = 0,
    progress: bool = True,
) -> TrainSummary:
    """Train ``policy`` on the episode files in ``data``, writing the run into ``run_dir``.

    Args:
        data: Directory of episode files (``embodia collect --out``); corrupt files are reported and skipped.
        policy: The policy's config (e.g. ``embodia.policies.factory.policy_config("ebt", d_model=128)``); its data
            fields (``type(policy).data_fields``: widths, observation keys, an agent's sensor layout) are set
            from the data.
        run_dir: The run directory (created).
        config: Budget and hyperparameters.
        options: Observation keys, ``resume``, ``overwrite``, ``init_from`` (default: :class:`RunOptions`'s).
        workers: Data-parallel Ray Train workers (gradients averaged every step, CPUs only); 0 trains in this
            process.
        ray_address: ``HOST:PORT`` of a running Ray cluster for the workers (None: a local Ray instance bounded to
            ``workers`` CPUs).
        max_failures: With ``workers``: how many times Ray Train may restart the worker group after a worker dies;
            a restarted group resumes from the chief's last checkpoint (0: the first loss fails the run).
        progress: Show a progress bar.

    Returns:
        The run's :class:`TrainSummary` (also written as ``run_dir/summary.json``).

    Raises:
        ValueError: Bad arguments, no episodes, a policy or config that differs from the checkpoint's (named), a
            run that exists without ``resume``/``overwrite``, or ``resume`` without a checkpoint (all checked
            before any worker starts).
        CheckpointError: The checkpoint to resume from, or ``init_from``, is corrupt or unreadable.
        TrainingDivergedError: A step went non-finite (the last checkpoint stays as it was).
        DistributedTrainingError: Training failed in a Ray Train worker (the worker's error is in the message).
    """
    if not isinstance(policy, PolicyConfig):
        raise ValueError(f"policy must be a policy config (embodia.policies.factory.policy_config), got {policy!r}")
    options = RunOptions() if options is None else options
    check_int("--workers", workers, 0)
    check_int("--max-failures", max_failures, 0)
    if max_failures and not workers:
        raise ValueError("--max-failures goes with --workers N >= 1 (Ray Train restarts lost workers)")
    if ray_address is not None and not workers:
        raise ValueError("--ray-address needs --workers N >= 1")
    if workers:
        if options.init_from is not None:
            raise ValueError("--init-from trains in this process: drop --workers")
        if torch.device(config.device).type != "cpu":
            raise ValueError(f"--workers trains on CPUs (gloo); device {config.device!r} is not supported with it")
        run_dir = Path(run_dir).resolve()
        data = Path(data).resolve()
    setup = prepare_run(data, policy, run_dir, config, options, progress=progress)  # the owner's checks, once
    if not workers:
        return execute_run(setup, config, progress=progress)
    from embodia.training.distributed import train_on_ray

    return train_on_ray(setup, config, workers=workers, ray_address=ray_address, max_failures=max_failures,
                        progress=progress)  # fmt: skip
