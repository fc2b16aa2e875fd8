"""``embodia train``: train a policy on a directory of episode files into a run directory.

A run directory holds ``config.json`` (the resolved policy and train configs and the data, written at the start),
``tb/`` (TensorBoard event files), ``checkpoints/last.pt`` (training state), ``policy.pt`` (the run's policy) and,
when training ends, ``summary.json``. Starting a run where a checkpoint already exists is refused
unless ``resume`` (continue it, with the same data and hyperparameters; only the budget and the bookkeeping may
change) or ``overwrite`` (delete the run's files and start over).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embodia.atomic import write_json_atomic
from embodia.data.episodes import episode_files, load_episodes
from embodia.data.windows import EpisodeWindows
from embodia.policies.base import CheckpointError, Policy
from embodia.policies.factory import get_policy_class, make_policy
from embodia.training.config import TrainConfig
from embodia.training.state import load_train_state
from embodia.training.trainer import CHECKPOINT_NAME, POLICY_NAME, TENSORBOARD_DIR, Trainer, TrainResult

__all__ = ["RunOptions", "RunSetup", "data_digest", "execute_run", "prepare_run", "run_files", "train_run"]

SUMMARY_NAME = "summary.json"
CONFIG_NAME = "config.json"


def data_digest(windows: EpisodeWindows) -> str:
    """A short hash of the training data (episode lengths, observations, actions) that identifies it on resume.

    It hashes the windows' arrays, not the episodes (so it is not :mod:`embodia.data.digest`'s): what the trainer
    trains on is the flattened ``(N, Do)`` observations of the chosen ``obs_keys`` (an agent's raw part) and the
    ``(N, Da)`` actions, which change with the keys and the flattening even when the episode files do not, and the
    windows are all a run (and every Ray worker) holds. Its values are in existing checkpoints' ``data_info``.
    """
    h = hashlib.blake2b(digest_size=8)
    obs = windows.digest_obs() if hasattr(windows, "digest_obs") else windows.obs  # agents: the raw part
    for arr in (windows.episode_ends, obs, windows.actions):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


@dataclass
class RunSetup:
    """What a run trains on and from: checked data, the built policy and the state to resume from.

    Attributes:
        policy_name: The policy's registry name.
        run_dir: The run directory.
        windows: Training samples.
        policy: The policy (normaliser fitted, or weights loaded from ``state``).
        state: The training checkpoint to continue from (None: a fresh run).
        data_info: Description of the data (stored in checkpoints; its digest guards ``--resume``).
        init_from: The policy file a fresh run started from (:attr:`RunOptions.init_from`), or None.
    """

    policy_name: str
    run_dir: Path
    windows: EpisodeWindows
    policy: Policy
    state: dict[str, Any] | None
    data_info: dict[str, Any]
    init_from: str | None = None


def train_run(
    data: str | os.PathLike,
    policy_name: str,
    run_dir: str | os.PathLike,
    config: TrainConfig,
    *,
    policy_kwargs: dict[str, Any] | None = None,
    obs_keys: tuple[str, ...] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    init_from: str | os.PathLike | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``policy_name`` on the episode files in ``data``, writing the run into ``run_dir``.

    Args:
        data: Directory of episode files (``embodia collect --out``); corrupt files are reported and skipped.
        policy_name: A registered policy (``embodia.policies.factory.available_policies()``).
        run_dir: The run directory (created).
        config: Budget and hyperparameters.
        policy_kwargs: Overrides of the policy's config (``obs_dim``/``action_dim``/``obs_keys`` come from the data).
        obs_keys: Observation keys the policy sees (default: every numeric key of the episodes).
        resume: Continue from ``run_dir/checkpoints/last.pt``.
        overwrite: Delete the run's files first and start over.
        init_from: Start from this policy file's weights and normaliser (:attr:`RunOptions.init_from`).
        progress: Show a progress bar.

    Returns:
        The :class:`TrainResult`; ``run_dir/summary.json`` summarises it.

    Raises:
        ValueError: Bad arguments, no episodes, a policy or config that differs from the checkpoint's (named), a
            run that exists without ``resume``/``overwrite``, or ``resume`` without a checkpoint.
        CheckpointError: The checkpoint to resume from is corrupt or unreadable.
        TrainingDivergedError: A step went non-finite (the last checkpoint stays as it was).
    """
    options = RunOptions(
        policy_kwargs=dict(policy_kwargs or {}), obs_keys=obs_keys, resume=resume, overwrite=overwrite,
        init_from=None if init_from is None else str(init_from),
    )  # fmt: skip
    setup = prepare_run(data, policy_name, run_dir, config, options, progress=progress)
    return execute_run(setup, config, progress=progress)


@dataclass
class RunOptions:
    """How a run is set up (the keyword arguments of :func:`train_run` besides ``progress``)."""

    policy_kwargs: dict[str, Any] = field(default_factory=dict)
    """Overrides of the policy's config."""
    obs_keys: tuple[str, ...] | None = None
    """Observation keys the policy sees (None: every numeric key)."""
    resume: bool = False
    """Continue from the run's checkpoint."""
    overwrite: bool = False
    """Delete the run's files first."""
    init_from: str | None = None
    """A policy file (``policy.pt``) whose weights and normaliser a fresh run starts from, instead of new weights
    and a normaliser fitted on the data: fine-tuning (a DAgger round continues the previous round's policy). The
    file must hold the same policy with the same config. A resumed run continues its checkpoint instead."""


def prepare_run(
    data: str | os.PathLike,
    policy_name: str,
    run_dir: str | os.PathLike,
    config: TrainConfig,
    options: RunOptions,
    *,
    claim: bool = True,
    progress: bool = False,
) -> RunSetup:
    """Check the data, build the policy and find the state to resume from (see :func:`train_run` for arguments).

    With ``claim`` (the process that owns the run) an existing run is refused or, with ``overwrite``, deleted;
    without it (a distributed worker, after the owner has claimed the run) the run directory is only read.
    Nothing in ``run_dir`` is touched before the data and the policy config have been checked. A policy that
    reads episodes its own way (an agent, ``embodia.agents.model.AgentPolicy``) defines ``data_defaults(episode)``
    (config fields taken from the data, e.g. the sensor layout) and ``training_windows(episodes, progress=...)``;
    ``progress`` shows its progress bar.
    """
    config.check_budget()
    resume, overwrite, obs_keys = options.resume, options.overwrite, options.obs_keys
    start = None if options.init_from is None else Policy.load(options.init_from)  # CheckpointError: one line
    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other")
    run_dir = Path(run_dir)
    policy_kwargs = dict(options.policy_kwargs)
    cls = get_policy_class(policy_name)
    for key in ("obs_dim", "action_dim", "obs_keys"):
        if key in policy_kwargs:
            raise ValueError(f"policy setting {key!r} comes from the data; set --obs-keys to choose observations")
    data = Path(data)
    if not data.is_dir():
        raise ValueError(f"--data {data} is not a directory of episode files")
    if not episode_files(data):
        raise ValueError(f"--data {data} holds no episode files (*.h5); write some with `embodia collect --out {data}`")
    episodes = load_episodes(data)
    if not episodes:
        raise ValueError(f"--data {data}: every episode file is corrupt (see the warnings above)")
    torch.manual_seed(config.seed)  # initial weights (the same in every process)
    if hasattr(cls, "training_windows"):  # an agent: its rows come from replaying episodes through its memory
        if obs_keys is not None:
            raise ValueError(f"--obs-keys does not apply to {policy_name!r}: it reads the observations it needs")
        policy = make_policy(policy_name, **{**cls.data_defaults(episodes[0]), **policy_kwargs})
        windows = policy.training_windows(episodes, progress=progress)  # with the initial weights, as on resume
    else:
        defaults = {f.name: f.default for f in dataclasses.fields(cls.config_class) if f.init}
        n_obs_steps = policy_kwargs.get("n_obs_steps", defaults["n_obs_steps"])
        horizon = policy_kwargs.get("horizon", defaults["horizon"])
        windows = EpisodeWindows(episodes, n_obs_steps=n_obs_steps, horizon=horizon, obs_keys=obs_keys)
        policy = make_policy(
            policy_name, obs_dim=windows.obs_dim, action_dim=windows.action_dim, obs_keys=windows.obs_keys,
            **policy_kwargs,
        )  # fmt: skip
    if start is not None:
        _check_same_policy(start, policy, options.init_from)
    data_info = {
        "dir": str(data),
        "episodes": windows.num_episodes,
        "samples": len(windows),
        "obs_keys": list(windows.obs_keys),
        "digest": data_digest(windows),
    }

    checkpoint = run_dir / CHECKPOINT_NAME
    if claim:  # only now is the run directory touched (--overwrite deletes the old run)
        state = _existing_state(run_dir, checkpoint, resume=resume, overwrite=overwrite)
    else:
        state = load_train_state(checkpoint) if resume else None
    if state is not None:
        _check_resume(state, checkpoint, policy, config, data_info)
        policy.load_checkpoint_weights(state["policy"])
    elif start is not None:
        policy.load_checkpoint_weights(start.checkpoint_payload())
    else:
        policy.fit_normalizer(windows.obs, windows.actions)
    return RunSetup(policy_name, run_dir, windows, policy, state, data_info, options.init_from)


def _check_same_policy(start: Policy, policy: Policy, path: str | None) -> None:
    """Refuse to start a run from a policy file with another policy or config (named)."""
    if start.name != policy.name:
        raise ValueError(f"--init-from {path} holds a {start.name!r} policy, not {policy.name!r}")
    ours, theirs = policy.config.to_dict(), start.config.to_dict()
    differ = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    if differ:
        shown = ", ".join(f"{k}={theirs.get(k)!r} (run: {ours.get(k)!r})" for k in differ[:4])
        raise ValueError(f"--init-from {path} has another config: {shown}")


def execute_run(
    setup: RunSetup, config: TrainConfig, *, progress: bool = True, sync: Any = None, stop_file: Path | None = None
) -> TrainResult:
    """Train a prepared run; the chief process (the only one without ``sync``) writes config.json and summary.json.

    Args:
        setup: From :func:`prepare_run`.
        config: Budget and hyperparameters.
        progress: Show a progress bar (chief only).
        sync: A :class:`~embodia.training.distributed.TorchDistSync` in a distributed worker, else None.
        stop_file: Stop (with a checkpoint) once this file exists (see :class:`Trainer`).
    """
    chief = sync is None or sync.is_chief
    trainer = Trainer(
        setup.policy,
        setup.windows,
        config,
        run_dir=setup.run_dir,
        data_info=setup.data_info,
        progress=progress and chief,
        hparams_extra={"data_dir": setup.data_info["dir"], "workers": 1 if sync is None else sync.world},
        sync=sync,
        stop_file=stop_file if chief else None,
    )
    if setup.state is not None:
        trainer.load_state_dict(setup.state)
        trainer.last_checkpoint = setup.run_dir / CHECKPOINT_NAME
    if chief:
        resolved = {"policy": setup.policy_name, "policy_config": setup.policy.config.to_dict()}
        payload = {**resolved, "train_config": config.to_dict(), "data": setup.data_info, "init_from": setup.init_from}
        write_json_atomic(setup.run_dir / CONFIG_NAME, {**payload, "resumed_at_step": trainer.step})
    result = trainer.train()
    if chief:
        summary = {
            **_summary(result, setup.policy_name, config, setup.data_info, setup.run_dir),
            "init_from": setup.init_from,
        }
        write_json_atomic(setup.run_dir / SUMMARY_NAME, summary)
    return result


def _existing_state(run_dir: Path, checkpoint: Path, *, resume: bool, overwrite: bool) -> dict[str, Any] | None:
    """The checkpoint to resume from (None to start fresh), after clearing stale or overwritten files."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"--run {run_dir} exists and is not a directory")
    for stale in [*run_dir.glob(".*.tmp"), *(run_dir / "checkpoints").glob(".*.tmp")]:  # writes that were killed
        stale.unlink(missing_ok=True)
    if resume:
        if not checkpoint.exists():
            raise ValueError(f"--resume: no checkpoint at {checkpoint} (nothing to resume; run without --resume)")
        try:
            return load_train_state(checkpoint)
        except CheckpointError as exc:
            raise CheckpointError(exc.path, f"--resume: cannot resume from it: {exc.reason}") from None
    ours = run_files(run_dir)
    if ours and not overwrite:
        raise ValueError(
            f"--run {run_dir} already holds a run ({ours[0].name}, ...); pass --resume to continue it or "
            f"--overwrite to start over"
        )
    for path in ours:
        path.unlink()
    return None


def run_files(run_dir: Path) -> list[Path]:
    """The files a run writes (checkpoints, policy, summary, TensorBoard events) that exist in ``run_dir``."""
    if not run_dir.is_dir():
        return []
    files = [run_dir / CHECKPOINT_NAME, run_dir / POLICY_NAME, run_dir / SUMMARY_NAME, run_dir / CONFIG_NAME]
    return [p for p in files if p.exists()] + sorted((run_dir / TENSORBOARD_DIR).glob("events.out.tfevents.*"))


def _check_resume(
    state: dict[str, Any], checkpoint: Path, policy: Policy, config: TrainConfig, data_info: dict[str, Any]
) -> None:
    """Refuse to resume with another policy, policy config, hyperparameters or data than the checkpoint's."""
    saved = state["policy"]
    if saved.get("policy") != policy.name:
        raise ValueError(f"--resume: {checkpoint} trains a {saved.get('policy')!r} policy, not {policy.name!r}")
    mine = policy.config.to_dict()
    theirs = saved.get("config", {})
    diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    if diff:
        shown = ", ".join(f"{k}: {theirs.get(k)!r} in the checkpoint, {mine.get(k)!r} now" for k in diff)
        raise ValueError(f"--resume: the policy config differs from {checkpoint} ({shown})")
    try:
        saved_config = TrainConfig.from_dict(state["train_config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(checkpoint, f"--resume: bad train_config in the checkpoint: {exc}") from None
    changed = config.changed_fields(saved_config)
    if changed:
        shown = ", ".join(
            f"{k}: {getattr(saved_config, k)!r} in the checkpoint, {getattr(config, k)!r} now" for k in changed
        )
        raise ValueError(f"--resume: hyperparameters differ from {checkpoint} ({shown}); only the budget may change")
    saved_data = state["data"]
    if saved_data.get("digest") != data_info["digest"]:
        raise ValueError(
            f"--resume: --data is not the data {checkpoint} was trained on ({data_info['episodes']} episodes, "
            f"{data_info['samples']} samples now; {saved_data.get('episodes')} episodes, {saved_data.get('samples')} "
            f"samples then, from {saved_data.get('dir')})"
        )
    progress = state["progress"]
    if config.steps is not None and progress["step"] >= config.steps:
        raise ValueError(
            f"--resume: {checkpoint} is at step {progress['step']}, the budget --steps {config.steps} is used up; "
            f"raise --steps to train longer"
        )
    if config.budget_s is not None and progress["elapsed_s"] >= config.budget_s:
        raise ValueError(
            f"--resume: {checkpoint} has trained {progress['elapsed_s'] / 60:.2f} min, the budget --minutes "
            f"{config.minutes} is used up; raise --minutes to train longer"
        )


def _summary(
    result: TrainResult, policy_name: str, config: TrainConfig, data_info: dict[str, Any], run_dir: Path
) -> dict[str, Any]:
    return {
        "policy": policy_name,
        "steps": result.steps,
        "samples": result.samples,
        "elapsed_s": round(result.elapsed_s, 3),
        "stopped_by": result.stopped_by,
        "it_per_s_last_segment": round(result.it_per_s, 3),
        "last_terms": result.last_terms,
        "train_config": config.to_dict(),
        "data": data_info,
        "policy_file": str(run_dir / POLICY_NAME),
        "checkpoint": str(run_dir / CHECKPOINT_NAME),
    }
