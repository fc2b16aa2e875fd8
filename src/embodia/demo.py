"""``embodia demo``, the main job: demonstrations, brief training, held-out evaluation and a report, on Ray.

1. Collect scripted-expert demonstrations on UrbanNav-Return-v0 and PushBlock-v0 in parallel (Ray rollout pool).
2. Train, as parallel Ray tasks with the same time budget each, the memory + EBT-Policy agent and its baselines on
   UrbanNav-Return-v0 (the same agent without memory; the agent with Diffusion Policy and with an MLP as its
   inner policy), and EBT-Policy, Diffusion Policy and MLP-BC on PushBlock-v0.
3. Evaluate every row, plus the modular agent (planning on the memory's topology graph) and the expert for
   reference, on the same held-out seeds in parallel. Navigation uses the hand-over protocol
   (``embodia.agents.handover``): the expert drives the outbound leg while the agent watches, the agent drives
   the return to a landmark it passed, the leg that needs memory.
4. Write ``<out>/report.md`` (TC, SPD, nDTW, SED for navigation and success for manipulation, latency per action,
   each with a 95 % confidence interval; the paired memory difference), ``<out>/report.json``, TensorBoard
   logs (``<out>/runs/*/tb`` training, ``<out>/eval/*/tb`` evaluation) and a replay video of one episode.

The default settings finish within 15 minutes on 2 cores, ``--quick`` within 3; the brief training is a
demonstration of the pipeline, not a trained agent (the report says so and gives the budget).
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from embodia.runtime.rollout import write_json_atomic

__all__ = ["DemoSettings", "run_demo"]

NAV_ENV = "embodia/UrbanNav-Return-v0"
PUSH_ENV = "embodia/PushBlock-v0"
EVAL_SEED = 1_000_000
REPLAY_ROW = "modular-memory"
"""The row whose first evaluation episode is rendered to ``replay/``."""


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo (the defaults, or ``quick()``)."""

    nav_demos: int = 24
    """Expert demonstrations on UrbanNav-Return-v0."""
    push_demos: int = 40
    """Expert demonstrations on PushBlock-v0."""
    eval_episodes: int = 20
    """Held-out evaluation episodes per row."""
    train_minutes: float = 1.0
    """Training budget per learned row, minutes (the same for every row)."""
    batch_size: int = 64
    """Training batch size."""
    lr: float = 1e-3
    """Peak learning rate."""

    @classmethod
    def quick(cls) -> DemoSettings:
        """A smoke run of the whole pipeline (within 3 minutes on 2 cores)."""
        return cls(nav_demos=3, push_demos=4, eval_episodes=3, train_minutes=0.08, batch_size=16)


def demo_variants() -> list[Any]:
    """The rows of the demo's comparison."""
    from embodia.agents.modular import modular_controller
    from embodia.envs.experts import make_expert
    from embodia.runtime.experiment import Variant

    diffusion = {"inference": "ddim", "num_inference_steps": 10}

    def agent(name: str, memory: str, inner: str, inner_kwargs: dict | None = None) -> Variant:
        kwargs = {"memory": memory, "policy": inner, "act_from_phase": 1}
        if inner_kwargs:
            kwargs["policy_kwargs"] = json.dumps(inner_kwargs)
        return Variant(name, NAV_ENV, policy="agent", policy_kwargs=kwargs)

    return [
        agent("agent-ebt-memory", "full", "ebt"),
        agent("agent-ebt-no-memory", "none", "ebt"),
        agent("agent-diffusion-memory", "full", "diffusion", diffusion),
        agent("agent-mlp-memory", "full", "mlp"),
        Variant("modular-memory", NAV_ENV, controller=functools.partial(modular_controller, "full", 1)),
        Variant("expert-nav", NAV_ENV, controller=make_expert),
        Variant("ebt", PUSH_ENV, policy="ebt"),
        Variant("diffusion", PUSH_ENV, policy="diffusion", policy_kwargs=diffusion),
        Variant("mlp", PUSH_ENV, policy="mlp"),
        Variant("expert-push", PUSH_ENV, controller=make_expert),
    ]


def run_demo(out: Path, *, quick: bool = False, workers: int = 2, progress: bool = True) -> dict[str, Any]:
    """Run the demo into ``out`` (see the module docstring); returns the report as a dict.

    Raises:
        ValueError: ``workers`` < 1 (the demo runs on Ray).
    """
    from embodia.replay.video import render_episode, write_video
    from embodia.runtime.collect import collect
    from embodia.runtime.experiment import evaluate_variants, log_eval, train_variants
    from embodia.runtime.ray_pool import init_ray
    from embodia.training.config import TrainConfig

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"--workers must be an integer >= 1 (the demo runs on Ray), got {workers!r}")
    settings = DemoSettings.quick() if quick else DemoSettings()
    out = Path(out)
    start = time.perf_counter()
    init_ray(workers)
    timings: dict[str, float] = {}
    config = TrainConfig(
        minutes=settings.train_minutes, batch_size=settings.batch_size, lr=settings.lr,
        warmup_steps=10 if quick else 50, checkpoint_minutes=0.5,
    )  # fmt: skip
    write_json_atomic(
        out / "config.json", {"settings": asdict(settings), "train": config.to_dict(), "workers": workers}
    )

    t = time.perf_counter()
    data = {}
    for env_id, n in ((NAV_ENV, settings.nav_demos), (PUSH_ENV, settings.push_demos)):
        data[env_id] = out / "demos" / env_id.split("/")[-1]
        collect(env_id, n, data[env_id], seed=0, overwrite=True, progress=progress, workers=workers)
    timings["collect_s"] = time.perf_counter() - t

    variants = demo_variants()
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
    from embodia.policies.base import Policy
    from embodia.replay.tb_media import episode_views, first_episode, log_eval_dir_media

    replay_views: dict = {}
    for v in variants:  # TensorBoard media per row: replay video, map, memory view, EBT's descent
        policy = Policy.load(out / "runs" / v.name / "policy.pt") if v.policy is not None else None
        episode = first_episode(out / "eval" / v.name)
        views = episode_views(episode) if episode is not None else {}
        log_eval_dir_media(out / "eval" / v.name / "tb", episode, policy, views)
        if v.name == REPLAY_ROW:
            replay_views = views  # shown again in report.html
    timings["media_s"] = time.perf_counter() - t

    from embodia.demo_report import build_report, format_report, write_demo_html

    report_args = (variants, trained, evals, settings, config)
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
