"""``embodia train``: its command (a policy config per subcommand, ``policy:NAME --policy.FIELD``) and its run.

Kept apart from :mod:`embodia.cli.app` because its types import torch and every policy config: only ``embodia
train`` and ``embodia --help`` pay for that.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import tyro
from tyro.constructors import MISSING, MISSING_NONPROP, ConstructorRegistry, StructConstructorSpec, StructTypeInfo

from embodia.agents.model import AgentConfig
from embodia.agents.navigator import NavigatorConfig
from embodia.policies.base import PolicyConfig
from embodia.policies.diffusion.configuration_diffusion import DiffusionConfig
from embodia.policies.ebt.configuration_ebt import EBTConfig, EBTDSMConfig
from embodia.policies.factory import data_placeholders, policy_config
from embodia.policies.mlp.configuration_mlp import MLPConfig
from embodia.training.config import TrainConfig
from embodia.training.run import RunOptions

__all__ = ["POLICY_FLAGS", "PolicyChoice", "TrainCommand", "policy_flags_overview", "run_train"]

PolicyChoice = (
    Annotated[EBTConfig, tyro.conf.subcommand("ebt")]
    | Annotated[EBTDSMConfig, tyro.conf.subcommand("ebt-dsm")]
    | Annotated[DiffusionConfig, tyro.conf.subcommand("diffusion")]
    | Annotated[MLPConfig, tyro.conf.subcommand("mlp")]
    | Annotated[AgentConfig, tyro.conf.subcommand("agent")]
    | Annotated[NavigatorConfig, tyro.conf.subcommand("navigator")]
)
"""The policy to train, one subcommand per policy (``embodia train policy:mlp --policy.hidden-dims 64 64``)."""

POLICY_FLAGS = ConstructorRegistry()
"""The command line's rule for policy configs: the fields the data decides are not flags."""


_DEFAULT_RULE_FOR: list[type] = []
"""The policy config whose default spec is being built (non-empty while :func:`_policy_config_flags` defers)."""


@POLICY_FLAGS.struct_rule
def _policy_config_flags(info: StructTypeInfo) -> StructConstructorSpec | None:
    """A policy config's flags: every field but its ``data_fields`` (set from the data when training)."""
    if _DEFAULT_RULE_FOR or not (isinstance(info.type, type) and issubclass(info.type, PolicyConfig)):
        return None  # not a policy config, or asked from below for tyro's own spec of it
    _DEFAULT_RULE_FOR.append(info.type)
    try:
        spec = ConstructorRegistry.get_struct_spec(info)  # tyro's own rule for the dataclass (ours declines above)
    finally:
        _DEFAULT_RULE_FOR.pop()
    if not isinstance(spec, StructConstructorSpec):
        return spec
    placeholders = data_placeholders(info.type)
    fields = []
    for spec_field in spec.fields:
        if spec_field.name in info.type.data_fields:
            missing = spec_field.default is MISSING or spec_field.default is MISSING_NONPROP
            default = placeholders[spec_field.name] if missing else spec_field.default
            spec_field = dataclasses.replace(
                spec_field, type=Annotated[spec_field.type, tyro.conf.Suppress], default=default
            )
        fields.append(spec_field)
    return dataclasses.replace(spec, fields=tuple(fields))


def policy_flags_overview() -> str:
    """Every policy's flags, one paragraph per ``policy:NAME`` subcommand (for ``embodia train --help``)."""
    paragraphs = []
    for choice in typing.get_args(PolicyChoice):
        config_class, *meta = typing.get_args(choice)
        name = next(m.name for m in meta if hasattr(m, "name"))
        flags = [
            f"--policy.{f.name.replace('_', '-')}"
            for f in dataclasses.fields(config_class)
            if f.init and f.name not in config_class.data_fields and f.name != "inner"
        ]
        if any(f.name == "inner" for f in dataclasses.fields(config_class)):
            flags.append(f"policy.inner:{{{','.join(config_class.inner_policies)}}} --policy.inner.FIELD")
        paragraphs.append(f"policy:{name}: {' '.join(flags)}")
    return "\n\n".join(paragraphs)


@dataclass
class TrainCommand:
    """Train a policy on episode files (from `embodia collect`), with TensorBoard logs and checkpoints in --run."""

    data: Path
    """Directory of episode files (*.h5)."""
    policy: PolicyChoice = field(default_factory=lambda: policy_config("ebt"))
    """Policy to train, with its config: ebt, ebt-dsm, diffusion, mlp, navigator (UrbanNav: Mem4Nav memory and
    street planner with a learned controller) or agent (UrbanNav: encoder + Mem4Nav memory + an inner policy,
    trained end to end). `embodia train policy:NAME --help` lists its flags."""
    run: Path | None = None
    """Run directory for TensorBoard events, checkpoints/last.pt, policy.pt and summary.json (default runs/<policy>)."""
    hp: Annotated[TrainConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=TrainConfig)
    setup: Annotated[RunOptions, tyro.conf.OmitArgPrefixes] = field(default_factory=RunOptions)
    progress: bool = True
    """Show a progress bar."""
    workers: int = 0
    """Data-parallel Ray Train workers (gradients averaged every step); 0 trains in this process."""
    ray_address: str | None = None
    """HOST:PORT of a running Ray cluster for the workers (default: a local Ray instance)."""
    max_failures: int = 0
    """With --workers: restart the worker group up to this many times after a worker dies, resuming from the last
    checkpoint (0: a lost worker fails the run)."""
    dagger_rounds: int = 0
    """DAgger rounds after training on --data: roll the policy out, label its states with the env's expert,
    aggregate, retrain (0: none). Rollouts run on --dagger-workers Ray actors."""
    dagger_episodes: int = 20
    """Labelled rollouts per DAgger round."""
    dagger_seed: int = 2_000_000
    """Seed of the first DAgger rollout (round k starts at seed + (k-1) * episodes)."""
    dagger_workers: int = 0
    """Ray actors for the DAgger rollouts (0: in this process)."""
    dagger_round_steps: int | None = None
    """Fine-tune each DAgger round's policy on the aggregate for this many steps (None: retrain from scratch with
    the --steps/--minutes budget)."""


def run_train(cmd: TrainCommand) -> int:
    """Runs ``embodia train``."""
    import torch

    from embodia.policies.factory import policy_class_for
    from embodia.training.entry import train

    torch.set_num_threads(1)  # one thread per process; parallelism comes from Ray workers
    name = policy_class_for(cmd.policy).name
    run_dir = cmd.run if cmd.run is not None else Path("runs") / name
    if cmd.ray_address is not None and cmd.workers == 0 and cmd.dagger_workers == 0:
        raise ValueError("--ray-address needs --workers N >= 1 (or --dagger-workers N >= 1)")
    if not cmd.dagger_rounds and (cmd.dagger_workers or cmd.dagger_round_steps is not None):
        raise ValueError("--dagger-workers and --dagger-round-steps go with --dagger-rounds N >= 1")
    if cmd.dagger_rounds:
        from embodia.runtime.dagger import train_with_dagger

        opts = cmd.setup
        if cmd.workers or cmd.max_failures or opts.resume or opts.obs_keys is not None or opts.init_from is not None:
            raise ValueError(
                "--dagger-rounds trains in this process from scratch: drop --workers/--resume/--obs-keys/--init-from"
            )
        summary = train_with_dagger(
            cmd.data, cmd.policy, run_dir, cmd.hp, rounds=cmd.dagger_rounds, episodes=cmd.dagger_episodes,
            seed=cmd.dagger_seed, round_steps=cmd.dagger_round_steps, workers=cmd.dagger_workers,
            ray_address=cmd.ray_address, overwrite=opts.overwrite, progress=cmd.progress,
        )  # fmt: skip
        for entry in summary["dagger"]:
            figures = ", ".join(f"{k} {v:.3f}" for k, v in entry["rollout_metrics"].items())
            print(f"DAgger round {entry['round']}: learner rollouts {figures}; {entry['episodes_trained_on']} episodes")
    else:
        summary = train(
            cmd.data, cmd.policy, run_dir, cmd.hp, cmd.setup, workers=cmd.workers,
            ray_address=cmd.ray_address, max_failures=cmd.max_failures,
            progress=cmd.progress,
        ).to_dict()  # fmt: skip
    terms = ", ".join(f"{k} {v:.4g}" for k, v in summary["last_terms"].items() if k in ("loss", "lr"))
    print(
        f"trained {name} for {summary['steps']} steps ({summary['elapsed_s']:.1f} s, "
        f"{summary['it_per_s_last_segment']:.1f} it/s, {max(cmd.workers, 1)} worker(s), stopped by "
        f"{summary['stopped_by']}); last {terms}"
    )
    from embodia.replay.report_html import write_train_report

    report = write_train_report(run_dir)
    print(f"policy: {run_dir / 'policy.pt'}   report: {report}   tensorboard --logdir {run_dir}")
    return 0
