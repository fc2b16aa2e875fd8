"""The demo's report: one table per environment (means with 95 % intervals), the memory effect, the commands."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from embodia.envs.views import headline_metrics
from embodia.experiments.variants import mean_per_episode, paired_difference

__all__ = ["build_report", "format_report", "write_demo_html"]

DIGITS = {"spd": 1}
"""Decimals of a metric in the tables (default 3): SPD is in metres."""
MEMORY_ROWS = ("memory-agent-ebt", "memory-agent-ebt-no-memory")
"""The paired memory effect: first minus second."""
ENV_NOTES = {
    "embodia/UrbanNav-Return-v0": (
        "Hand-over protocol: the scripted expert drives the outbound leg while the agent watches (its memory is "
        "written), then the agent drives the return to a landmark it passed, out of view where the return starts."
    ),
    "embodia/DetourReach-Sided-v0": (
        "One side per start (left iff the start's y >= 0): the demonstrations are unimodal, so every policy's "
        "claim applies."
    ),
    "embodia/DetourReach-v0": (
        "Both sides from every start, 50/50: a policy that averages its demonstrations (EBT-Policy's and MLP-BC's "
        "objectives do) drives head-on into the obstacle; Diffusion Policy samples one side."
    ),
}


def _metrics_of(env_id: str) -> tuple[tuple[str, str], ...]:
    return headline_metrics(env_id)  # the env's own (UrbanNav: TC, SPD, nDTW; the table tops: success)


def _budget(row: Any, trained: dict[str, Any], shipped: dict[str, Any]) -> dict[str, Any] | None:
    """Training budget of a row: the shipped record's, the run's just made, or None (scripted)."""
    if row.source == "trained now":
        s = trained[row.name]
        return {"steps": s["steps"], "seconds": round(s["elapsed_s"], 1), "loss": s["last_terms"].get("loss")}
    if row.source == "shipped":
        t = shipped[row.zoo]["trained"]
        return {"steps": t["steps"], "seconds": t["elapsed_s"], "loss": t.get("final_loss")}
    return None


def build_report(
    rows: Sequence[Any],
    trained: dict[str, dict[str, Any]],
    evals: dict[str, dict[str, Any]],
    shipped: dict[str, dict[str, Any]],
    settings: Any,
    config: Any,
    out: Path,
    timings: dict[str, float],
    replay: str | None,
    workers: int,
) -> dict[str, Any]:
    """The report as plain data (what ``report.json`` holds and ``format_report`` prints).

    Args:
        rows: The demo's :class:`~embodia.experiments.demo.DemoRow` s.
        trained: Summaries of the rows trained now, by name.
        evals: Evaluation summaries, by row name.
        shipped: The zoo's records (:func:`embodia.zoo_store.records`).
        settings: The :class:`~embodia.experiments.demo.DemoSettings`.
        config: The trained-now rows' :class:`~embodia.training.config.TrainConfig`.
        out: The demo directory (for the commands).
        timings: Seconds per phase.
        replay: Path of the replay video relative to ``out``, or why it is missing.
        workers: Ray workers used.
    """
    envs: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        summary = evals[row.name]
        metrics = {key: summary["metrics"][key] for key, _ in _metrics_of(row.env_id) if key in summary["metrics"]}
        envs.setdefault(row.env_id, []).append(
            {
                "name": row.name,
                "source": row.source,
                "zoo": row.zoo,
                "metrics": metrics,
                "plan_ms": mean_per_episode(summary, "plan_ms_mean"),
                "nfe": mean_per_episode(summary, "nfe_mean"),
                "act_ms": mean_per_episode(summary, "act_ms_mean"),
                "budget": _budget(row, trained, shipped),
                "command": row.command(out, settings.eval_episodes),
                "eval_s": summary.get("eval_s"),
            }
        )
    memory_effect = {
        key: paired_difference(evals[MEMORY_ROWS[0]], evals[MEMORY_ROWS[1]], key) for key in ("tc", "ndtw")
    }
    return {
        "settings": asdict(settings),
        "train_config": config.to_dict(),
        "workers": workers,
        "eval_episodes": settings.eval_episodes,
        "envs": envs,
        "memory_effect": memory_effect,
        "replay": replay,
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
    }


def _cell(m: dict[str, Any] | None, digits: int = 3) -> str:
    if m is None:
        return "–"
    lo, hi = m["ci95"]
    if math.isclose(lo, hi) and math.isclose(lo, m["mean"]):
        return f"{m['mean']:.{digits}f}"
    ci = max(digits - 1, 1)
    return f"{m['mean']:.{digits}f} [{lo:.{ci}f}, {hi:.{ci}f}]"


def _number(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _source(row: dict[str, Any]) -> str:
    budget = row["budget"]
    if budget is None:
        return "scripted (no training)"
    where = f"shipped (zoo:{row['zoo']})" if row["source"] == "shipped" else "trained now"
    return f"{where}, {budget['steps']} steps, {budget['seconds']:.0f} s"


def _intro(report: dict[str, Any]) -> list[str]:
    """The report's opening paragraphs: what ran and how the figures are made."""
    s, c = report["settings"], report["train_config"]
    return [
        f"Every row evaluated on the same {report['eval_episodes']} held-out seeds per environment (from 1000000) on "
        f"{report['workers']} Ray worker(s). Shipped rows are checkpoints of the zoo, trained by this project's "
        "recipes (`embodia zoo list --recipes`; `embodia zoo train NAME` retrains one). Trained-now rows learned "
        f"here from {s['train_demos']} fresh expert demonstrations in {c['steps']} steps (batch {c['batch_size']}, "
        f"lr {c['lr']:g}), next to their shipped counterparts.",
        "Means with 95 % confidence intervals (Wilson for rates, Student t otherwise). ms / chunk: the policy's "
        "plan of one action chunk; NFE: network evaluations per chunk; ms / action: the controller's whole step "
        "(for the navigator: perception, memory write, planning and the policy), on this machine.",
    ]


def _table(env_id: str, rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of one env's comparison table."""
    metrics = _metrics_of(env_id)
    header = ["row", *[label for _, label in metrics], "ms / chunk", "NFE", "ms / action", "source"]
    cells = [
        [row["name"], *[_cell(row["metrics"].get(key), DIGITS.get(key, 3)) for key, _ in metrics],
         _number(row["plan_ms"], 1),
         _number(row["nfe"], 2), _number(row["act_ms"], 2), _source(row)]
        for row in rows
    ]  # fmt: skip
    return header, cells


def _memory_line(report: dict[str, Any]) -> str:
    effect = report["memory_effect"]
    tc, nd = effect["tc"], effect["ndtw"]
    return (
        f"{MEMORY_ROWS[0]} minus {MEMORY_ROWS[1]}: TC {tc['mean']:+.3f} [{tc['ci95'][0]:+.3f}, {tc['ci95'][1]:+.3f}], "
        f"nDTW {nd['mean']:+.3f} [{nd['ci95'][0]:+.3f}, {nd['ci95'][1]:+.3f}] over {tc['n']} episodes."
    )


def format_report(report: dict[str, Any]) -> str:
    """``report.md``: settings, one table per env, the memory effect, the commands, where to look next."""
    t = report["timings_s"]
    lines = ["# embodia demo report"]
    for paragraph in _intro(report):
        lines += ["", paragraph]
    for env_id, rows in report["envs"].items():
        lines += ["", f"## {env_id}", ""]
        if env_id in ENV_NOTES:
            lines += [ENV_NOTES[env_id], ""]
        header, cells = _table(env_id, rows)
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
    lines += ["", "## Memory effect (paired, same seeds)", "", _memory_line(report), "", "## Reproduce a row", ""]
    lines += [f"- {row['name']}: `{row['command']}`" for rows in report["envs"].values() for row in rows]
    lines += [
        "",
        "## Files",
        "",
        f"- replay video: `{report['replay']}`" if report["replay"] else "- replay video: not rendered yet",
        "- trained-now runs: `runs/<row>/` (checkpoint, `tb/` training logs; `tensorboard --logdir .` from here)",
        "- evaluation: `eval/<row>/` (episode files, `summary.json`, `tb/` with eval/* scalars and, for the "
        "navigation and trained-now rows, a replay video, the map and memory view, EBT's energy along its descent)",
        "",
        f"Time: collect {t['collect_s']:.0f} s, train {t['train_s']:.0f} s, evaluate {t['eval_s']:.0f} s, "
        f"TensorBoard media {t.get('media_s', 0.0):.0f} s, replay {t.get('replay_s', 0.0):.0f} s, "
        f"total {t['total_s']:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def write_demo_html(out: Path, report: dict[str, Any], replay_row: str, views: dict[str, np.ndarray]) -> Path:
    """``<out>/report.html``: the report's tables, the trained-now rows' curves, the replay, the map and memory view.

    Args:
        out: The demo directory.
        report: :func:`build_report`'s output.
        replay_row: The row whose replay and views are shown.
        views: That row's first episode's ``tb_media.episode_views`` (saved to ``replay/<name>.png``).
    """
    from PIL import Image

    from embodia.replay.report_html import Page, train_curves, write_page

    page = Page("embodia demo", notes=_intro(report))
    for env_id, rows in report["envs"].items():
        page.tables.append((env_id, *_table(env_id, rows)))
    page.notes.append("Memory effect (paired): " + _memory_line(report))
    for rows in report["envs"].values():
        for row in rows:
            if row["source"] == "trained now":
                for tag, points in train_curves(out / "runs" / row["name"], ("train/loss",)):
                    page.curves.append((f"{row['name']}: {tag}", points))
    (out / "replay").mkdir(parents=True, exist_ok=True)
    for name, image in views.items():
        Image.fromarray(image).save(out / "replay" / f"{name}.png")
    if report["replay"] and not str(report["replay"]).startswith("not written"):
        page.videos.append((f"{replay_row}, episode 0 (chase camera)", out / report["replay"]))
    page.images += [(f"{replay_row}: top-down map", out / "replay" / "map.png"),
                    (f"{replay_row}: memory view", out / "replay" / "memory.png")]  # fmt: skip
    return write_page(page, out / "report.html")
