"""The demo's report: one table per environment (means with 95 % confidence intervals) and the memory effect."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from embodia.runtime.experiment import Variant, paired_difference, per_episode

__all__ = ["build_report", "format_report"]

NAV_METRICS = (("tc", "TC"), ("spd", "SPD (m)"), ("ndtw", "nDTW"), ("sed", "SED"))
PUSH_METRICS = (("success", "success"),)
ENV_METRICS = {"embodia/UrbanNav-Return-v0": NAV_METRICS, "embodia/PushBlock-v0": PUSH_METRICS}


def _latency(summary: dict[str, Any]) -> dict[str, Any] | None:
    """Mean latency per action (ms) over episodes with a 95 % percentile-bootstrap interval (None if not measured).

    The controllers report ``act_ms_mean`` per episode; latencies are positive and skewed, so the interval is a
    bootstrap over episodes (2000 resamples, fixed seed) rather than a t-interval, which can go below zero.
    """
    values = per_episode(summary, "act_ms_mean")
    values = values[np.isfinite(values)]  # controllers that do not measure it give NaN
    if not len(values):
        return None
    means = np.random.default_rng(0).choice(values, size=(2000, len(values))).mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"mean": float(values.mean()), "ci95": [float(lo), float(hi)], "n": len(values)}


def build_report(
    variants: Sequence[Variant],
    trained: dict[str, dict[str, Any]],
    evals: dict[str, dict[str, Any]],
    settings: Any,
    config: Any,
    timings: dict[str, float],
    replay: str | None,
    workers: int,
) -> dict[str, Any]:
    """The report as plain data (what ``report.json`` holds and ``format_report`` prints)."""
    envs: dict[str, list[dict[str, Any]]] = {}
    for v in variants:
        summary = evals[v.name]
        metrics = {key: summary["metrics"][key] for key, _ in ENV_METRICS[v.env_id] if key in summary["metrics"]}
        row = {"name": v.name, "kind": "learned" if v.policy else "scripted", "metrics": metrics}
        row["latency_ms"] = _latency(summary)
        if v.name in trained:
            s = trained[v.name]
            row["train"] = {"steps": s["steps"], "seconds": s["elapsed_s"], "loss": s["last_terms"].get("loss")}
        envs.setdefault(v.env_id, []).append(row)
    memory_effect = {
        key: paired_difference(evals["agent-ebt-memory"], evals["agent-ebt-no-memory"], key) for key in ("tc", "ndtw")
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
    return f"{m['mean']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _intro(report: dict[str, Any]) -> list[str]:
    """The report's opening paragraphs: what ran, how the intervals are made, what the budget means."""
    s = report["settings"]
    return [
        f"Demonstrations: {s['nav_demos']} (UrbanNav-Return-v0) and {s['push_demos']} (PushBlock-v0) expert episodes. "
        f"Every learned row trained for {s['train_minutes']:g} min (batch {s['batch_size']}, lr {s['lr']:g}) on "
        f"{report['workers']} Ray worker(s) in parallel; every row evaluated on the same {report['eval_episodes']} "
        f"held-out seeds (from 1000000). Means with 95 % confidence intervals (Wilson for rates, Student t "
        f"otherwise; bootstrap over episodes for latency). Latency: wall time per action of the controller (ms), "
        f"on this machine.",
        "This training budget demonstrates the pipeline; it does not train a capable agent. The figures are what "
        "these runs measured.",
    ]


def _table(env_id: str, rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of one env's comparison table (metrics, latency per action, training steps)."""
    metrics = ENV_METRICS[env_id]
    header = ["row", *[label for _, label in metrics], "ms / action", "train steps"]
    cells = [
        [row["name"], *[_cell(row["metrics"].get(key)) for key, _ in metrics], _cell(row["latency_ms"], 2),
         str(row["train"]["steps"]) if "train" in row else "–"]
        for row in rows
    ]  # fmt: skip
    return header, cells


def format_report(report: dict[str, Any]) -> str:
    """``report.md``: settings, one table per env, the memory effect, where to look next."""
    t = report["timings_s"]
    lines = ["# embodia demo report"]
    for paragraph in _intro(report):
        lines += ["", paragraph]
    for env_id, rows in report["envs"].items():
        lines += ["", f"## {env_id}", ""]
        if env_id.endswith("UrbanNav-Return-v0"):
            lines += [
                "Hand-over protocol: the scripted expert drives the outbound leg while the agent watches (its memory "
                "is written), then the agent drives the return to a landmark it passed, out of view where the "
                "return starts.",
                "",
            ]
        header, cells = _table(env_id, rows)
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
    effect = report["memory_effect"]
    lines += [
        "",
        "## Memory effect (paired, same seeds)",
        "",
        f"agent-ebt-memory minus agent-ebt-no-memory: TC {effect['tc']['mean']:+.3f} "
        f"[{effect['tc']['ci95'][0]:+.3f}, {effect['tc']['ci95'][1]:+.3f}], nDTW {effect['ndtw']['mean']:+.3f} "
        f"[{effect['ndtw']['ci95'][0]:+.3f}, {effect['ndtw']['ci95'][1]:+.3f}] over {effect['tc']['n']} episodes.",
        "",
        "## Files",
        "",
        f"- replay video: `{report['replay']}`" if report["replay"] else "- replay video: not rendered yet",
        "- training logs: `runs/<row>/tb` (`tensorboard --logdir .` from this directory)",
        "- checkpoints: `runs/<row>/policy.pt` (`embodia eval --checkpoint ...` runs one again)",
        "- evaluation: `eval/<row>/` (episode files, `summary.json`, `tb/` with eval/* scalars, a replay video, the "
        "map and memory view, EBT's energy along its descent steps)",
        "",
        f"Time: collect {t['collect_s']:.0f} s, train {t['train_s']:.0f} s, evaluate {t['eval_s']:.0f} s, "
        f"TensorBoard media {t.get('media_s', 0.0):.0f} s, replay {t.get('replay_s', 0.0):.0f} s, "
        f"total {t['total_s']:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def write_demo_html(out: Path, report: dict[str, Any], replay_row: str, views: dict[str, np.ndarray]) -> Path:
    """``<out>/report.html``: the report's tables, two training curves, the replay, the map and memory view.

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
    effect = report["memory_effect"]["tc"]
    page.notes.append(
        f"Memory effect, agent-ebt-memory minus agent-ebt-no-memory (paired): TC {effect['mean']:+.3f} "
        f"[{effect['ci95'][0]:+.3f}, {effect['ci95'][1]:+.3f}] over {effect['n']} episodes."
    )
    for row in ("agent-ebt-memory", "ebt"):
        for tag, points in train_curves(out / "runs" / row, ("train/loss",)):
            page.curves.append((f"{row}: {tag}", points))
    (out / "replay").mkdir(parents=True, exist_ok=True)
    for name, image in views.items():
        Image.fromarray(image).save(out / "replay" / f"{name}.png")
    if report["replay"] and not str(report["replay"]).startswith("not written"):
        page.videos.append((f"{replay_row}, episode 0 (chase camera)", out / report["replay"]))
    page.images += [(f"{replay_row}: top-down map", out / "replay" / "map.png"),
                    (f"{replay_row}: memory view", out / "replay" / "memory.png")]  # fmt: skip
    return write_page(page, out / "report.html")
