"""``embodia demo``, the main job: the shipped zoo's agents and policies against baselines, on held-out seeds.

1. **Shipped rows** (:mod:`embodia.zoo`, trained by this project's own recipes): the learned memory navigator on
   UrbanNav-Return-v0 (Mem4Nav memory + street planner + EBT-Policy) and the same navigator retrained without
   memory; EBT-Policy, Diffusion Policy and MLP-BC on DetourReach-Sided (one side per start, where every policy's
   claim applies) and on the bimodal DetourReach-v0 (where EBT-Policy and MLP-BC average the two sides).
2. **Trained now**: EBT-Policy and MLP-BC on DetourReach-Sided from fresh expert demonstrations, at a short budget
   (parallel Ray tasks), beside their shipped counterparts: the pipeline at work.
3. **Baselines that need no training**: the modular agent (the navigator's memory and planner with pure pursuit)
   and the scripted experts.
4. Every row is evaluated on the same held-out seeds (from 1,000,000) on the Ray rollout pool. Navigation uses the
   hand-over protocol (``embodia.agents.handover``): the expert drives the outbound leg while the agent watches,
   the agent drives the return to a landmark it passed, the leg that needs memory.
5. ``<out>/report.md`` / ``report.json`` / ``report.html``: per env a table (TC, SPD, nDTW or success with 95 %
   intervals; ms per chunk, network evaluations per chunk, ms per action; shipped or trained now, with which
   budget), the paired memory effect, the command that reproduces each row; TensorBoard logs (``runs/*/tb``,
   ``eval/*/tb``) and a replay video of the memory agent's first episode.

The default finishes within 10 minutes on 2 cores, ``--quick`` within 2 (fewer episodes and demonstrations, a
few training steps).
"""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from embodia.atomic import write_json_atomic

__all__ = ["DemoRow", "DemoSettings", "demo_rows", "run_demo"]

NAV_ENV = "embodia/UrbanNav-Return-v0"
SIDED_ENV = "embodia/DetourReach-Sided-v0"
DETOUR_ENV = "embodia/DetourReach-v0"
EVAL_SEED = 1_000_000
REPLAY_ROW = "memory-agent-ebt"
"""The row whose first evaluation episode is rendered to ``replay/``."""
TRAIN_NOW = ("sided-ebt", "sided-mlp")
"""Zoo entries the demo also trains from scratch (their recipe's policy and settings, the demo's budget)."""


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo (the defaults, or ``quick()``)."""

    eval_episodes: int = 20
    """Held-out evaluation episodes per row (seeds 1,000,000 on)."""
    train_demos: int = 200
    """Expert demonstrations the trained-now rows learn from (their zoo recipe's number)."""
    train_steps: int = 1000
    """Gradient steps of each trained-now row (its zoo counterpart's recipe trains longer)."""
    media: bool = True
    """TensorBoard media (replay video, map, memory view, EBT's descent) for every navigation and trained-now row;
    otherwise only for the replay row."""

    @classmethod
    def quick(cls) -> DemoSettings:
        """A smoke run of the whole pipeline (within 2 minutes on 2 cores)."""
        return cls(eval_episodes=2, train_demos=10, train_steps=30, media=False)


@dataclass(frozen=True)
class DemoRow:
    """One row of the demo's comparison.

    Attributes:
        name: Row label (also its directory under ``runs/`` and ``eval/``).
        env_id: The environment it is evaluated on.
        source: ``"shipped"`` (a zoo entry), ``"trained now"`` or ``"scripted"`` (needs no training).
        zoo: The zoo entry it runs (shipped rows) or retrains (trained-now rows).
        agent: ``"modular"`` or ``"expert"`` for scripted rows.
    """

    name: str
    env_id: str
    source: str
    zoo: str | None = None
    agent: str | None = None

    def command(self, out: Path, episodes: int) -> str:
        """Returns the ``embodia`` command that reproduces this row's figures."""
        tail = f"--env {self.env_id} --episodes {episodes} --seed {EVAL_SEED}"
        if self.source == "shipped":
            return f"embodia eval --checkpoint zoo:{self.zoo} {tail}"
        if self.source == "trained now":
            return f"embodia eval --checkpoint {out / 'runs' / self.name / 'policy.pt'} {tail}"
        memory = " --memory full" if self.agent == "modular" else ""
        return f"embodia eval --agent {self.agent}{memory} {tail}"


def demo_rows() -> list[DemoRow]:
    """The rows of the demo, grouped by env."""
    rows = [
        DemoRow("memory-agent-ebt", NAV_ENV, "shipped", zoo="memory-agent-ebt"),
        DemoRow("memory-agent-ebt-no-memory", NAV_ENV, "shipped", zoo="memory-agent-ebt-no-memory"),
        DemoRow("modular-memory", NAV_ENV, "scripted", agent="modular"),
        DemoRow("expert-nav", NAV_ENV, "scripted", agent="expert"),
    ]
    for env_id, prefix in ((SIDED_ENV, "sided"), (DETOUR_ENV, "detour")):
        rows += [DemoRow(f"{prefix}-{p}", env_id, "shipped", zoo=f"{prefix}-{p}") for p in ("ebt", "diffusion", "mlp")]
        if prefix == "sided":
            rows += [DemoRow(f"{name}-now", env_id, "trained now", zoo=name) for name in TRAIN_NOW]
        rows.append(DemoRow(f"expert-{prefix}", env_id, "scripted", agent="expert"))
    return rows


def _variant(row: DemoRow) -> Any:
    """The :class:`~embodia.experiments.variants.Variant` that trains and/or evaluates ``row``."""
    from embodia.experiments.variants import Variant
    from embodia.runtime.controller_registry import controller_factory
    from embodia.runtime.policy_controller import policy_controller
    from embodia.zoo.recipes import recipe
    from embodia.zoo_store import resolve_checkpoint

    if row.source == "trained now":
        return Variant(row.name, row.env_id, policy=recipe(row.zoo).policy_config())
    if row.source == "shipped":
        file = resolve_checkpoint(f"zoo:{row.zoo}")  # verified here, once
        return Variant(row.name, row.env_id, controller=functools.partial(policy_controller, str(file)))
    options = {"memory": "full", "act_from_phase": 1} if row.agent == "modular" else {}
    factory, _ = controller_factory(row.agent, **options)
    return Variant(row.name, row.env_id, controller=factory)


def run_demo(out: Path, *, quick: bool = False, workers: int = 2, progress: bool = True) -> dict[str, Any]:
    """Run the demo into ``out`` (see the module docstring); returns the report as a dict.

    Raises:
        ValueError: ``workers`` < 1 (the demo runs on Ray).
        embodia.zoo_store.ZooError: A shipped checkpoint is missing or does not match its recorded digest.
    """
    from embodia.experiments.report import build_report, format_report, write_demo_html
    from embodia.experiments.variants import evaluate_variants, log_eval, train_variants
    from embodia.ray_setup import init_ray
    from embodia.replay.video import render_episode, write_video
    from embodia.runtime.collect import collect
    from embodia.training.config import TrainConfig
    from embodia.zoo_store import records

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"--workers must be an integer >= 1 (the demo runs on Ray), got {workers!r}")
    settings = DemoSettings.quick() if quick else DemoSettings()
    out = Path(out)
    start = time.perf_counter()
    rows = demo_rows()
    variants = [_variant(row) for row in rows]  # fails fast on a damaged zoo
    init_ray(workers)
    timings: dict[str, float] = {}
    config = TrainConfig(
        steps=settings.train_steps, batch_size=64, lr=1e-3, warmup_steps=min(100, settings.train_steps), seed=0,
        checkpoint_minutes=0.5,
    )  # fmt: skip
    write_json_atomic(
        out / "config.json", {"settings": asdict(settings), "train": config.to_dict(), "workers": workers}
    )

    t = time.perf_counter()
    data = {SIDED_ENV: out / "demos" / SIDED_ENV.split("/")[-1]}
    collect(
        SIDED_ENV, settings.train_demos, data[SIDED_ENV], seed=0, overwrite=True, progress=progress, workers=workers
    )
    timings["collect_s"] = time.perf_counter() - t

    t = time.perf_counter()
    trained = train_variants(variants, data, out / "runs", config, workers=workers, progress=progress)
    timings["train_s"] = time.perf_counter() - t

    t = time.perf_counter()
    evals = evaluate_variants(
        variants, out / "runs", out / "eval", episodes=settings.eval_episodes, seed=EVAL_SEED, workers=workers,
        progress=progress,
    )  # fmt: skip
    for name, summary in evals.items():
        log_dir = out / "eval" / name / "tb"
        for stale in log_dir.glob("events.out.tfevents.*"):  # a rerun into the same --out starts the logs afresh
            stale.unlink()
        log_eval(log_dir, summary, name)
    timings["eval_s"] = time.perf_counter() - t

    t = time.perf_counter()
    replay_views = _media(out, rows, settings)
    timings["media_s"] = time.perf_counter() - t

    shipped = records()
    report_args = (rows, trained, evals, shipped, settings, config, out)
    t = time.perf_counter()
    replay = out / "replay" / f"{REPLAY_ROW}_episode0.mp4"
    report = build_report(*report_args, {**timings, "total_s": time.perf_counter() - start}, None, workers)
    write_json_atomic(out / "report.json", report)  # written before the replay: a failed render loses nothing
    try:
        from embodia.data.episodes import episode_files, read_episode

        episode = read_episode(episode_files(out / "eval" / REPLAY_ROW)[0])
        write_video(render_episode(episode, camera="chase"), replay)
        replay_note = str(replay.relative_to(out))
    except Exception as exc:  # rendering needs EGL and ffmpeg; the report says what went wrong
        replay_note = f"not written ({type(exc).__name__}: {exc})"
    timings["replay_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - start
    report = build_report(*report_args, timings, replay_note, workers)
    write_json_atomic(out / "report.json", report)
    (out / "report.md").write_text(format_report(report))
    try:
        write_demo_html(out, report, REPLAY_ROW, replay_views)
    except Exception as exc:  # the page is a view of report.json; its failure must not fail the run
        print(f"report.html not written ({type(exc).__name__}: {exc})")
    return report


def _media(out: Path, rows: list[DemoRow], settings: DemoSettings) -> dict:
    """TensorBoard media of the rows that get them (see ``DemoSettings.media``); returns the replay row's views."""
    from embodia.policies.base import Policy
    from embodia.replay.tb_media import episode_views, first_episode, log_eval_dir_media

    replay_views: dict = {}
    for row in rows:
        wanted = row.name == REPLAY_ROW or (settings.media and (row.env_id == NAV_ENV or row.source == "trained now"))
        if not wanted:
            continue
        if row.source == "shipped":
            policy = Policy.load(f"zoo:{row.zoo}")
        elif row.source == "trained now":
            policy = Policy.load(out / "runs" / row.name / "policy.pt")
        else:
            policy = None
        episode = first_episode(out / "eval" / row.name)
        views = episode_views(episode) if episode is not None else {}
        log_eval_dir_media(out / "eval" / row.name / "tb", episode, policy, views)
        if row.name == REPLAY_ROW:
            replay_views = views  # shown again in report.html
    return replay_views
