"""A training run's setup and execution: check the data, build the policy, train it into a run directory.

:func:`embodia.training.entry.train` is the entry point (in this process or on Ray Train workers).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embodia.atomic import write_json_atomic
from embodia.data.episodes import episode_files, load_episodes
from embodia.data.windows import EpisodeWindows
from embodia.policies.base import CheckpointError, Policy, PolicyConfig
from embodia.policies.factory import policy_class_for
from embodia.training.config import TrainConfig
from embodia.training.state import load_train_state
from embodia.training.summary import SUMMARY_NAME, TrainSummary
from embodia.training.trainer import CHECKPOINT_NAME, POLICY_NAME, TENSORBOARD_DIR, Trainer, TrainResult

__all__ = ["CONFIG_NAME", "RunOptions", "RunSetup", "data_digest", "execute_run", "prepare_run", "run_files"]

CONFIG_NAME = "config.json"


def data_digest(windows: EpisodeWindows) -> str:
    """A short hash of the training data (episode lengths, observations, actions) that identifies it on resume.

    It hashes the windows' arrays, not the episodes (so it is not :mod:`embodia.data.digest`'s): what the trainer
    trains on is the flattened ``(N, Do)`` observations of the chosen ``obs_keys`` (an agent's raw part) and the
    ``(N, Da)`` actions, which change with the keys and the flattening even when the episode files do not, and the
    windows are all a run (and every Ray worker) holds. Its values are in existing checkpoints' ``data_info``.
    """
    h = hashlib.blake2b(digest_size=8)
    for arr in (windows.episode_ends, windows.digest_obs(), windows.actions):  # an agent's: the raw part
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


@dataclass
class RunOptions:
    """How a run is set up: the observations it trains on, and what happens to an existing run."""

    obs_keys: tuple[str, ...] | None = None
    """Observation keys the policy sees (None: every numeric key)."""
    resume: bool = False
    """Continue from the run's checkpoint (same data and hyperparameters; only the budget may change)."""
    overwrite: bool = False
    """Delete the run's files first."""
    init_from: str | None = None
    """A policy file (``policy.pt``) whose weights and normaliser a fresh run starts from, instead of new weights
    and a normaliser fitted on the data: fine-tuning (a DAgger round continues the previous round's policy). The
    file must hold the same policy with the same config. A resumed run continues its checkpoint instead."""

    def __post_init__(self) -> None:
        if self.resume and self.overwrite:
            raise ValueError("--resume and --overwrite exclude each other")
        if self.obs_keys is not None:
            if isinstance(self.obs_keys, str):
                raise ValueError(f"--obs-keys must be a sequence of keys, not a str ({self.obs_keys!r})")
            self.obs_keys = tuple(self.obs_keys)
        if self.init_from is not None:
            self.init_from = str(self.init_from)


def prepare_run(
    data: str | os.PathLike,
    policy: PolicyConfig,
    run_dir: str | os.PathLike,
    config: TrainConfig,
    options: RunOptions,
    *,
    progress: bool = False,
) -> RunSetup:
    """Check the data, build the policy and find the state to resume from (arguments: :func:`~.entry.train`).

    The caller owns the run: an existing run is refused or, with ``overwrite``, deleted; nothing in ``run_dir`` is
    touched before the data and the policy config have been checked. The policy's data fields
    (``type(policy).data_fields``) are set from the data: a plain policy's widths and observation keys from the
    episode windows; a policy that reads episodes its own way (an agent, ``embodia.agents.model.AgentPolicy``)
    defines ``data_defaults(episode)`` (the config fields the data decides, e.g. the sensor layout; the others of
    its data fields stay at their defaults) and ``training_windows(episodes, progress=...)``; ``progress`` shows
    its progress bar.
    """
    config.check_budget()
    obs_keys = options.obs_keys
    start = None if options.init_from is None else Policy.load(options.init_from)  # CheckpointError: one line
    run_dir = Path(run_dir)
    cls = policy_class_for(policy)
    data = Path(data)
    if not data.is_dir():
        raise ValueError(f"--data {data} is not a directory of episode files")
    if not episode_files(data):
        raise ValueError(f"--data {data} holds no episode files (*.h5); write some with `embodia collect --out {data}`")
    episodes = load_episodes(data)
    if not episodes:
        raise ValueError(f"--data {data}: every episode file is corrupt (see the warnings above)")
    torch.manual_seed(config.seed)  # initial weights (the same in every process)
    if cls.builds_own_windows:  # an agent: its rows come from replaying episodes through its memory
        if obs_keys is not None:
            raise ValueError(f"--obs-keys does not apply to {cls.name!r}: it reads the observations it needs")
        unset = {  # the data fields at their defaults, then the data's values
            f.name: f.default for f in dataclasses.fields(policy) if f.name in policy.data_fields and f.init
            and f.default is not dataclasses.MISSING
        }  # fmt: skip
        model = cls(dataclasses.replace(policy, **{**unset, **cls.data_defaults(episodes[0])}))
        windows = model.training_windows(episodes, progress=progress)  # with the initial weights, as on resume
    else:
        windows = EpisodeWindows(episodes, n_obs_steps=policy.n_obs_steps, horizon=policy.horizon, obs_keys=obs_keys)
        model = cls(
            dataclasses.replace(
                policy, obs_dim=windows.obs_dim, action_dim=windows.action_dim, obs_keys=windows.obs_keys
            )
        )
    if start is not None:
        _check_same_policy(start, model, options.init_from)
    data_info = {
        "dir": str(data),
        "episodes": windows.num_episodes,
        "samples": len(windows),
        "obs_keys": list(windows.obs_keys),
        "digest": data_digest(windows),
    }

    checkpoint = run_dir / CHECKPOINT_NAME
    # Only now is the run directory touched (--overwrite deletes the old run).
    state = _existing_state(run_dir, checkpoint, resume=options.resume, overwrite=options.overwrite)
    if state is not None:
        _check_resume(state, checkpoint, model, config, data_info)
        model.load_checkpoint_weights(state["policy"])
    elif start is not None:
        model.load_checkpoint_weights(start.checkpoint_payload())
    else:
        model.fit_normalizer(windows.obs, windows.actions)
    return RunSetup(cls.name, run_dir, windows, model, state, data_info, options.init_from)


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
) -> TrainSummary:
    """Train a prepared run; the chief process (the only one without ``sync``) writes config.json and summary.json.

    Args:
        setup: From :func:`prepare_run`.
        config: Budget and hyperparameters.
        progress: Show a progress bar (chief only).
        sync: A :class:`~embodia.training.distributed.TorchDistSync` in a distributed worker, else None.
        stop_file: Stop (with a checkpoint) once this file exists (see :class:`Trainer`).

    Returns:
        The run's summary (every worker computes it; the chief writes it).
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
    summary = _summary(trainer.train(), setup, config)
    if chief:
        summary.write(setup.run_dir)
    return summary


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
    try:  # a checkpoint of an older layout of the config, read as it loads
        theirs = type(policy.config).from_dict(theirs).to_dict()
    except (TypeError, ValueError):
        pass  # compared as stored: the differing fields are named below
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


def _summary(result: TrainResult, setup: RunSetup, config: TrainConfig) -> TrainSummary:
    return TrainSummary(
        policy=setup.policy_name,
        steps=result.steps,
        samples=result.samples,
        elapsed_s=round(result.elapsed_s, 3),
        stopped_by=result.stopped_by,
        it_per_s_last_segment=round(result.it_per_s, 3),
        last_terms=result.last_terms,
        train_config=config,
        data=setup.data_info,
        policy_file=str(setup.run_dir / POLICY_NAME),
        checkpoint=str(setup.run_dir / CHECKPOINT_NAME),
        init_from=setup.init_from,
    )
