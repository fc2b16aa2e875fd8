"""The commands of ``embodia`` but ``train`` (:mod:`embodia.cli.train`), their runs, and the parser of them all.

A command line that starts with a command's name is parsed by that command alone, so ``embodia list`` or ``embodia
replay`` never imports torch or the policy configs; ``embodia`` / ``embodia --help`` parses the union of all.

``collect`` and ``eval`` take an env's constructor options as typed flags, one subcommand per env family
(``env:urban-nav --env.city.blocks-x 10``, from :func:`embodia.envs.options.option_families`); ``--env-kwargs``
(JSON) is for foreign envs only. The env modules those options live in are imported only when a command that
takes them is parsed (:func:`_bind_env_options`).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import tyro

EnvOptions: Any = None
"""The ``env:FAMILY`` subcommands of collect and eval: a union of the envs' options dataclasses, bound by
:func:`_bind_env_options` before those commands are parsed (so ``embodia list`` never imports the env modules)."""


def _bind_env_options() -> None:
    """Binds :data:`EnvOptions` (what collect's and eval's annotations name), importing the env modules once."""
    global EnvOptions
    if EnvOptions is None:
        from embodia.envs.options import option_families

        members = [
            Annotated[cls, tyro.conf.subcommand(family, description=cls.__doc__.splitlines()[0])]
            for family, cls in option_families().items()
        ]
        EnvOptions = Union[tuple(members)]  # noqa: UP007


@dataclass
class RolloutOptions:
    """How episodes are run and written (shared by collect and eval)."""

    env_kwargs: str | None = None
    """A foreign env's gymnasium.make keyword arguments as a JSON object, e.g. --env Pusher-v5 --env-kwargs
    '{"reward_control_weight": 0.2}'; embodia's envs take typed flags instead (env:FAMILY --env.FIELD VALUE)."""
    overwrite: bool = False
    """Replace episode files already in --out."""
    progress: bool = True
    """Show a progress bar."""
    workers: int = 0
    """Ray actors to run the episodes on (0: in this process); a local Ray instance is started on demand."""
    ray_address: str | None = None
    """HOST:PORT of a running Ray cluster (e.g. from `ray start --head --port 6379`) for the actors."""

    def collect_kwargs(self, env_id: str, env_options: object | None) -> dict:
        """Keyword arguments of :func:`embodia.runtime.collect.collect`.

        Args:
            env_id: The env the episodes run in.
            env_options: Its typed options (an ``env:FAMILY`` subcommand), or None.
        """
        return {
            "env_kwargs": _env_kwargs(env_id, env_options, self.env_kwargs),
            "overwrite": self.overwrite,
            "progress": self.progress,
            "workers": self.workers,
            "ray_address": self.ray_address,
        }


@dataclass
class CollectCommand:
    """Run an environment's scripted expert and write one HDF5 episode file per episode plus summary.json."""

    env: str = "embodia/UrbanNav-v0"
    """Environment id (see `embodia list`)."""
    env_options: Annotated[EnvOptions | None, tyro.conf.arg(name="env")] = None
    """The env's constructor options as typed flags, by env family (default: none given, the env id's own)."""
    episodes: int = 10
    """Number of episodes; episode i uses seed `seed + i`."""
    out: Path = Path("runs/collect")
    """Output directory for episode_<i>.h5 files and summary.json."""
    seed: int = 0
    """Seed of the first episode."""
    action_noise: float = 0.0
    """DART noise injection: the env executes the expert's action plus N(0, s²) noise (s in half action ranges,
    clipped) while the files record the expert's action as the label (0: none)."""
    rollout: Annotated[RolloutOptions, tyro.conf.OmitArgPrefixes] = field(default_factory=RolloutOptions)


@dataclass
class DemoCommand:
    """The main job: the shipped zoo's agents against baselines and rows trained now, held-out eval, report.md."""

    out: Path = Path("runs/demo")
    """Run directory: demos/, runs/ (rows trained now, TensorBoard), eval/, replay/, report.md/json/html."""
    quick: bool = False
    """A smoke run of the whole pipeline (within 2 minutes on 2 cores); the default takes up to 10."""
    workers: int = 2
    """Ray workers (CPUs) for collection, training and evaluation."""
    progress: bool = True
    """Show progress bars."""


@dataclass
class EvalCommand:
    """Evaluate a checkpoint or a non-learned controller (--agent modular|expert): episodes, summary, TensorBoard."""

    checkpoint: Path | None = None
    """Policy checkpoint, e.g. runs/ebt/policy.pt (from `embodia train`) or zoo:NAME (`embodia zoo list`); or give
    --agent."""
    agent: str | None = None
    """A non-learned agent instead of a checkpoint, by its name in the controller registry: "modular" (UrbanNav:
    Mem4Nav memory, street planner, pure pursuit) or "expert" (the env's scripted expert)."""
    memory: str | None = None
    """Memory mode of --agent: full (default), none, stm, ltm, no-octree or no-graph."""
    act_from_phase: int | None = None
    """--agent acts from this task phase on (default 1: the env's expert drives the earlier ones while it watches,
    the hand-over protocol of UrbanNav-Return-v0); 0: it drives the whole episode."""
    env: str | None = None
    """Environment id (see `embodia list`); default: a zoo entry's recorded env, else embodia/DetourReach-v0."""
    env_options: Annotated[EnvOptions | None, tyro.conf.arg(name="env")] = None
    """The env's constructor options as typed flags, by env family (default: none given, the env id's own)."""
    episodes: int | None = None
    """Number of episodes; episode i uses seed `seed + i` (default: a zoo entry's recorded number, else 50)."""
    out: Path = Path("runs/eval")
    """Output directory for episode files, summary.json and tb/ (TensorBoard)."""
    seed: int = 1_000_000
    """Seed of the first episode (default: far from the seeds demonstrations are collected on)."""
    rollout: Annotated[RolloutOptions, tyro.conf.OmitArgPrefixes] = field(default_factory=RolloutOptions)


@dataclass
class ReplayCommand:
    """Re-render an episode file from its stored MuJoCo states (no physics) into an MP4, with a text overlay."""

    episode: Annotated[Path, tyro.conf.Positional]
    """Episode file (*.h5) from `embodia collect`, `eval` or `demo`."""
    video: Path | None = None
    """Output MP4 (default: the episode's path with .mp4; none when only --map is asked for)."""
    map: Path | None = None
    """Also draw a top-down PNG of an UrbanNav episode: city, route, trajectory, landmarks, the agent's memory."""
    memory: Path | None = None
    """Also draw the agent's memory in 3-D (octree leaves by class, topology graph, trajectory) to a PNG (Open3D)."""
    ply: Path | None = None
    """Also export the memory views as PLY files (leaves, graph, trajectory) into this directory."""
    interactive: bool = False
    """Open an Open3D window on the memory (needs a display)."""
    camera: str | None = None
    """Scene camera: chase, top or ego for UrbanNav, top for the table tops (default: chase where it exists)."""
    size: str = "320x240"
    """Frame size WIDTHxHEIGHT."""
    fps: int = 10
    """Frames per second of the video (the envs step at 10 Hz)."""
    overlay: bool = True
    """Write the instruction, the step and running metrics on the frames."""


@dataclass
class ZooCommand:
    """The checkpoint zoo: `embodia zoo list` (entries, recorded figures), `embodia zoo train NAME` (retrain one)."""

    action: Annotated[Literal["list", "train"], tyro.conf.Positional]
    """list: every entry with its recorded figures; train: rerun NAME's recipe (collect + train)."""
    name: Annotated[str | None, tyro.conf.Positional] = None
    """The entry to train (see `embodia zoo list`)."""
    out: Path | None = None
    """Directory of the retrained entry: demos/ and run/ (default: runs/zoo/NAME)."""
    steps: int | None = None
    """A reduced training budget instead of the recipe's (checks that the recipe runs end to end)."""
    overwrite: bool = False
    """Retrain into an --out that already holds a run."""
    recipes: bool = False
    """list: also print each entry's commands."""


@dataclass
class ExportCommand:
    """Export a directory of episode files as a Minari dataset (`minari.load_dataset(NAME)` reads it)."""

    episodes: Annotated[Path, tyro.conf.Positional]
    """Directory of episode files (from `embodia collect` or `embodia eval`)."""
    name: Annotated[str, tyro.conf.Positional]
    """Minari dataset id, e.g. embodia/pushblock/expert-v0."""
    format: Literal["minari"] = "minari"
    """Export format."""
    root: Path | None = None
    """Datasets root (default: $MINARI_DATASETS_PATH or ~/.minari/datasets)."""


@dataclass
class ListCommand:
    """Print the registered environments."""

    all: bool = False
    """Include every Gymnasium environment, not only embodia's."""


COMMANDS: dict[str, type] = {
    "demo": DemoCommand,
    "collect": CollectCommand,
    "eval": EvalCommand,
    "replay": ReplayCommand,
    "list": ListCommand,
    "zoo": ZooCommand,
    "export": ExportCommand,
}
"""The commands defined here, by name (``train`` is :class:`embodia.cli.train.TrainCommand`)."""

DESCRIPTION = "The embodia command line: embodia {demo,collect,train,eval,replay,list,zoo,export} ... (--help)."


def _env_kwargs(env_id: str, env_options: object | None, json_text: str | None) -> dict[str, Any]:
    """``gymnasium.make`` kwargs from the typed ``env:FAMILY`` options (embodia's envs) or ``--env-kwargs`` (foreign).

    Raises:
        ValueError: Both given, ``--env-kwargs`` for one of embodia's envs, options of another family or for a
            foreign env, or JSON that is not an object (one line each).
    """
    from embodia.envs.options import env_options_type, options_kwargs

    typed = env_options_type(env_id)
    if json_text is not None:
        if typed is not None:
            raise ValueError(
                f"--env-kwargs is for foreign envs; give {env_id}'s options as typed flags: env:{typed.FAMILY} "
                f"--env.FIELD VALUE (env:{typed.FAMILY} --help lists them)"
            )
        if env_options is not None:
            raise ValueError("give a foreign env's kwargs as --env-kwargs JSON, not env:FAMILY flags (not both)")
        return _parse_json_object(json_text, "--env-kwargs")
    if env_options is None:
        return {}
    try:
        return options_kwargs(env_id, env_options)
    except ValueError as err:
        hint = "" if typed is not None else "; give its kwargs as --env-kwargs JSON"
        raise ValueError(f"--env {err}{hint}") from None


def _parse_json_object(text: str, flag: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{flag} is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{flag} must be a JSON object, got {type(value).__name__}")
    return value


def run_collect(cmd: CollectCommand) -> int:
    """Runs ``embodia collect``."""
    from embodia.runtime.collect import collect, format_summary

    summary = collect(
        cmd.env,
        cmd.episodes,
        cmd.out,
        seed=cmd.seed,
        action_noise=cmd.action_noise,
        **cmd.rollout.collect_kwargs(cmd.env, cmd.env_options),
    )
    print(format_summary(summary))
    print(f"wrote {summary['episodes']} episodes and summary.json to {cmd.out}")
    return 0


def run_demo(cmd: DemoCommand) -> int:
    """Runs ``embodia demo``."""
    import torch

    from embodia.experiments.demo import run_demo as demo

    torch.set_num_threads(1)
    report = demo(cmd.out, quick=cmd.quick, workers=cmd.workers, progress=cmd.progress)
    print((cmd.out / "report.md").read_text())
    print(f"report: {cmd.out / 'report.md'}   replay: {report['replay']}   tensorboard --logdir {cmd.out}")
    return 0


def run_eval(cmd: EvalCommand) -> int:
    """Runs ``embodia eval``."""
    import functools

    from embodia.experiments.variants import log_eval
    from embodia.policies.base import Policy
    from embodia.runtime.collect import collect, format_summary
    from embodia.runtime.policy_controller import policy_controller

    if (cmd.checkpoint is None) == (cmd.agent is None):
        raise ValueError("give exactly one of --checkpoint and --agent")
    if cmd.agent is not None:
        from embodia.runtime.controller_registry import controller_factory

        options = {"memory": cmd.memory, "act_from_phase": cmd.act_from_phase}
        policy = None
        controller_fn, label = controller_factory(cmd.agent, **{k: v for k, v in options.items() if v is not None})
    else:
        if cmd.memory is not None or cmd.act_from_phase is not None:
            raise ValueError("--memory and --act-from-phase go with --agent (a checkpoint holds its own)")
        from embodia.zoo_store import resolve_checkpoint

        file = resolve_checkpoint(cmd.checkpoint)  # zoo:NAME -> the verified file inside the package (hashed once)
        policy = Policy.load(file)  # fail fast on a missing, corrupt or foreign checkpoint
        controller_fn = functools.partial(policy_controller, str(file.resolve()))
        label = f"{policy.name} ({cmd.checkpoint})"
    env, episodes = _eval_env_and_episodes(cmd)
    if cmd.rollout.overwrite:  # the old run's eval/* events would mix with the new ones
        for old in (cmd.out / "tb").glob("events.out.tfevents.*"):
            old.unlink()
    summary = collect(
        env,
        episodes,
        cmd.out,
        seed=cmd.seed,
        controller_fn=controller_fn,
        **cmd.rollout.collect_kwargs(env, cmd.env_options),
    )
    log_eval(cmd.out / "tb", summary, label)
    from embodia.replay.report_html import write_eval_report
    from embodia.replay.tb_media import episode_views, first_episode, log_eval_dir_media

    episode = first_episode(cmd.out)
    views = episode_views(episode) if episode is not None else {}  # map and memory view, made once for both
    media = log_eval_dir_media(cmd.out / "tb", episode, policy, views)  # replay video, views, EBT descent
    write_eval_report(cmd.out, label, episode, views)
    print(format_summary(summary))
    print(f"wrote {summary['episodes']} episodes, summary.json, report.html and tb/ ({', '.join(media)}) to {cmd.out}")
    return 0


def _eval_env_and_episodes(cmd: EvalCommand) -> tuple[str, int]:
    """``--env`` and ``--episodes``, defaulting to a zoo entry's recorded evaluation (a note when they differ)."""
    from embodia.zoo_store import records, zoo_name

    name = zoo_name(cmd.checkpoint) if cmd.checkpoint is not None else None
    record = records()[name] if name is not None else None  # resolve_checkpoint has checked the name
    env = cmd.env if cmd.env is not None else (record["env_id"] if record else "embodia/DetourReach-v0")
    episodes = cmd.episodes if cmd.episodes is not None else (record["eval"]["episodes"] if record else 50)
    if record is not None:
        recorded = (record["env_id"], record["eval"]["episodes"], record["eval"]["seed"])
        if (env, episodes, cmd.seed) != recorded:
            print(
                f"note: {cmd.checkpoint}'s figures were recorded on {recorded[0]}, {recorded[1]} episodes from seed "
                f"{recorded[2]}; this run differs, so its figures will too"
            )
    return env, episodes


def run_replay(cmd: ReplayCommand) -> int:
    """Runs ``embodia replay``."""
    import time

    from embodia.data.episodes import read_episode
    from embodia.replay.video import render_episode, stored_frames, write_video

    try:
        width, height = (int(v) for v in cmd.size.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must be WIDTHxHEIGHT, e.g. 320x240; got {cmd.size!r}") from None
    if not 1 <= cmd.fps <= 240:
        raise ValueError(f"--fps must be in [1, 240], got {cmd.fps}")
    episode = read_episode(cmd.episode)
    views_only = cmd.video is None and (cmd.map or cmd.memory or cmd.ply or cmd.interactive)
    if cmd.memory is not None or cmd.ply is not None or cmd.interactive:
        from embodia.replay.memory_view import export_ply, render_memory_view, show_interactive

        if cmd.memory is not None:
            start = time.perf_counter()
            render_memory_view(episode, cmd.memory)
            print(f"wrote the memory view to {cmd.memory} ({time.perf_counter() - start:.2f} s)")
        if cmd.ply is not None:
            print(f"wrote {', '.join(p.name for p in export_ply(episode, cmd.ply))} to {cmd.ply}")
        if cmd.interactive:
            show_interactive(episode)
    if cmd.map is not None:
        from PIL import Image

        from embodia.replay.topdown import draw_topdown

        cmd.map.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(draw_topdown(episode)).save(cmd.map)
        print(f"wrote the top-down map to {cmd.map}")
    if views_only:
        return 0
    start = time.perf_counter()
    if episode.mj_state is not None:
        frames = render_episode(episode, camera=cmd.camera, width=width, height=height, overlay=cmd.overlay)
        source = "re-rendered from mj_state"
    else:  # a foreign env's episode: show what it recorded
        frames = stored_frames(episode, overlay=cmd.overlay)
        source = "stored rgb observations (the file has no mj_state)"
    seconds = time.perf_counter() - start
    out = write_video(frames, cmd.video or cmd.episode.with_suffix(".mp4"), fps=cmd.fps)
    h, w = frames.shape[1:3]
    print(f"wrote {len(frames)} frames ({w}x{h}, {source}) to {out}; {len(frames) / seconds:.0f} frames/s")
    return 0


def run_list(cmd: ListCommand) -> int:
    """Runs ``embodia list``."""
    import gymnasium as gym

    import embodia  # noqa: F401  (registers the environments)

    for env_id, spec in sorted(gym.registry.items()):
        if cmd.all or env_id.startswith("embodia/"):
            entry = spec.entry_point if isinstance(spec.entry_point, str) else getattr(spec.entry_point, "__name__", "")
            limit = spec.max_episode_steps or spec.kwargs.get("max_steps")
            print(f"{env_id:<32} max_steps={limit!s:<6} {entry}")
    return 0


def run_export(cmd: ExportCommand) -> int:
    """Runs ``embodia export``."""
    from embodia.data.minari_export import export_minari

    path = export_minari(cmd.episodes, cmd.name, root=cmd.root)
    print(f"wrote Minari dataset {cmd.name} to {path}")
    return 0


def run_zoo(cmd: ZooCommand) -> int:
    """Runs ``embodia zoo``."""
    if cmd.action == "list":
        from embodia.zoo.listing import format_zoo

        if cmd.name is not None or cmd.steps is not None or cmd.out is not None or cmd.overwrite:
            raise ValueError("embodia zoo list takes only --recipes")
        print(format_zoo(recipes=cmd.recipes))
        return 0
    import torch

    from embodia.zoo.train import train_entry

    torch.set_num_threads(1)
    if cmd.name is None:
        raise ValueError("embodia zoo train needs a NAME (see `embodia zoo list`)")
    if cmd.recipes:
        raise ValueError("--recipes goes with embodia zoo list")
    out = cmd.out if cmd.out is not None else Path("runs/zoo") / cmd.name
    result = train_entry(cmd.name, out, steps=cmd.steps, overwrite=cmd.overwrite)
    recorded = result["recorded_digest"]
    if recorded is None:
        match = "no shipped entry to compare with"
    else:
        match = (
            "matches the shipped entry's" if recorded == result["data_digest"] else "DIFFERS from the shipped entry's"
        )
    print(f"demonstrations digest {result['data_digest'][:16]}… ({match})")
    print(f"policy: {result['policy']}")
    return 0


_USER_ERRORS = {
    "embodia.data.episodes": ("EpisodeFileError",),
    "embodia.policies.base": ("CheckpointError",),
    "embodia.training.trainer": ("TrainingDivergedError",),
    "embodia.training.distributed": ("DistributedTrainingError",),
    "embodia.zoo.train": ("RecipeError",),
    "gymnasium.error": ("Error",),
}
"""Exceptions reported as one line (besides ValueError and OSError), by module."""


def _user_error_types() -> tuple[type[BaseException], ...]:
    """The one-line error types, from the modules already imported (so a command never imports torch for this)."""
    types: list[type[BaseException]] = [ValueError, OSError]
    for module, names in _USER_ERRORS.items():
        if module in sys.modules:
            types += [getattr(sys.modules[module], name) for name in names]
    return tuple(types)


def parse_args(argv: list[str] | None = None) -> object:
    """The command ``argv`` (default: ``sys.argv[1:]``) names, parsed; tyro reports a malformed flag and exits 2.

    ``argv[0]`` naming a command parses that command alone (only its own imports); anything else (no command,
    ``--help``, an unknown name) parses the union of all commands, whose help lists them.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    name = argv[0] if argv else None
    if name in COMMANDS:
        command = COMMANDS[name]
        if command in (CollectCommand, EvalCommand):  # flags after env:FAMILY may still be the command's
            _bind_env_options()
            command = Annotated[command, tyro.conf.CascadeSubcommandArgs]
        return tyro.cli(command, args=argv[1:], prog=f"embodia {name}", description=COMMANDS[name].__doc__)
    _bind_env_options()
    from embodia.cli.train import POLICY_FLAGS, TrainCommand, policy_flags_overview

    if name == "train":
        train = Annotated[TrainCommand, tyro.conf.CascadeSubcommandArgs]
        description = f"{TrainCommand.__doc__}\n\nThe flags of each policy (its --help explains them):\n\n"
        return tyro.cli(train, args=argv[1:], prog="embodia train", description=description + policy_flags_overview(),
                        registry=POLICY_FLAGS)  # fmt: skip
    subcommands = [
        Annotated[cls, tyro.conf.subcommand(n), tyro.conf.CascadeSubcommandArgs] for n, cls in COMMANDS.items()
    ]
    subcommands.insert(2, Annotated[TrainCommand, tyro.conf.subcommand("train"), tyro.conf.CascadeSubcommandArgs])
    return tyro.cli(Union[tuple(subcommands)], args=argv, prog="embodia", description=DESCRIPTION,  # noqa: UP007
                    registry=POLICY_FLAGS)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``embodia`` console script; returns the exit status."""
    handlers = {
        CollectCommand: run_collect,
        DemoCommand: run_demo,
        EvalCommand: run_eval,
        ReplayCommand: run_replay,
        ListCommand: run_list,
        ZooCommand: run_zoo,
        ExportCommand: run_export,
    }
    try:
        import embodia  # noqa: F401

        try:
            # A malformed flag is reported by tyro: the argument, the problem and its help text, exit status 2.
            cmd = parse_args(argv)
            if type(cmd) not in handlers:  # embodia train (its module is loaded by now)
                from embodia.cli.train import run_train

                return run_train(cmd)
            return handlers[type(cmd)](cmd)
        except Exception as err:
            if not isinstance(err, _user_error_types()):
                raise
            print(f"embodia: error: {err}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:
        print("embodia: interrupted", file=sys.stderr)
        return 130
