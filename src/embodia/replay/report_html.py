"""``report.html``: one self-contained page per run, viewable offline.

A page has a title, notes, metric tables (means with 95 % intervals), training curves drawn as inline SVG (no
plotting library, no scripts, no network), and a replay video and images referenced by relative path. Only files
that exist are referenced; everything else is inline. ``embodia train``, ``embodia eval`` and ``embodia demo`` write
one into their run directory.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embodia.data.episodes import Episode

__all__ = ["Page", "eval_page", "svg_curve", "train_curves", "write_eval_report", "write_page", "write_train_report"]

_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}figure{display:inline-block;margin:0 1em 1em 0}
figcaption{font-size:90%;color:#555}svg{background:#fafafa;border:1px solid #ddd}"""


@dataclass
class Page:
    """What a report page shows (see the module docstring)."""

    title: str
    notes: list[str] = field(default_factory=list)
    tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)
    """(caption, header, rows) per table."""
    curves: list[tuple[str, list[tuple[float, float]]]] = field(default_factory=list)
    """(title, [(x, y), ...]) per chart."""
    videos: list[tuple[str, Path]] = field(default_factory=list)
    """(caption, file) per video; files that do not exist are left out."""
    images: list[tuple[str, Path]] = field(default_factory=list)
    """(caption, file) per image; files that do not exist are left out."""


def svg_curve(title: str, points: list[tuple[float, float]], width: int = 420, height: int = 220) -> str:
    """An inline SVG line chart of ``points`` with its y range and x range written on it."""
    finite = [(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y)]
    if len(finite) < 2:
        return f"<p>{html.escape(title)}: fewer than 2 points</p>"
    xs, ys = [p[0] for p in finite], [p[1] for p in finite]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    span_x, span_y = (x1 - x0) or 1.0, (y1 - y0) or 1.0
    pad = 30
    coords = " ".join(
        f"{pad + (x - x0) / span_x * (width - 2 * pad):.1f},{height - pad - (y - y0) / span_y * (height - 2 * pad):.1f}"
        for x, y in finite
    )
    label = html.escape(title)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{label}">'
        f'<text x="{pad}" y="18" font-size="13">{label}</text>'
        f'<text x="2" y="{pad + 4}" font-size="10">{y1:.4g}</text>'
        f'<text x="2" y="{height - pad}" font-size="10">{y0:.4g}</text>'
        f'<text x="{pad}" y="{height - 8}" font-size="10">{x0:.0f}</text>'
        f'<text x="{width - pad - 30}" y="{height - 8}" font-size="10">{x1:.0f}</text>'
        f'<polyline fill="none" stroke="#1f6fd1" stroke-width="1.5" points="{coords}"/></svg>'
    )


def write_page(page: Page, path: str | Path) -> Path:
    """Write ``page`` as HTML at ``path`` (media paths made relative to its directory); returns the path."""
    from embodia.atomic import atomic_write

    path = Path(path)
    root = path.parent.resolve()
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(page.title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(page.title)}</h1>"]  # fmt: skip
    parts += [f"<p>{html.escape(note)}</p>" for note in page.notes]
    for caption, header, rows in page.tables:
        parts.append(f"<table><caption>{html.escape(caption)}</caption><tr>")
        parts += [f"<th>{html.escape(h)}</th>" for h in header]
        parts.append("</tr>")
        for row in rows:
            parts.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
        parts.append("</table>")
    if page.curves:
        parts.append("<h2>Training</h2>" + "".join(svg_curve(t, pts) for t, pts in page.curves))
    media = [(c, f, "video") for c, f in page.videos] + [(c, f, "img") for c, f in page.images]
    shown = [(c, Path(f).resolve(), kind) for c, f, kind in media if Path(f).is_file()]
    if shown:
        parts.append("<h2>Replay and memory</h2>")
    for caption, file, kind in shown:
        rel = html.escape(file.relative_to(root).as_posix() if file.is_relative_to(root) else file.as_uri())
        tag = (
            f"<video src='{rel}' controls width='480'></video>"
            if kind == "video"
            else f"<img src='{rel}' width='480' alt='{html.escape(caption)}'>"
        )
        parts.append(f"<figure>{tag}<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("</body></html>")
    with atomic_write(path) as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
    return path


def train_curves(run_dir: str | Path, tags: tuple[str, ...] = ("train/loss", "train/lr")) -> list[tuple[str, list]]:
    """``(tag, [(step, value), ...])`` of a run's TensorBoard scalars (missing tags are skipped)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(Path(run_dir) / "tb"))
    events.Reload()
    present = set(events.Tags().get("scalars", []))
    return [(tag, [(e.step, e.value) for e in events.Scalars(tag)]) for tag in tags if tag in present]


def metrics_rows(summary: dict[str, Any]) -> list[list[str]]:
    """Rows ``[metric, mean, 95 % CI, n]`` of a collect/eval summary."""
    return [
        [key, f"{m['mean']:.4g}", f"[{m['ci95'][0]:.4g}, {m['ci95'][1]:.4g}]", str(m["n"])]
        for key, m in summary["metrics"].items()
    ]


def eval_page(out_dir: str | Path, label: str) -> Page:
    """The page of an evaluation directory (``summary.json``, ``replay.mp4``, ``map.png``, ``memory.png``)."""
    out_dir = Path(out_dir)
    summary = json.loads((out_dir / "summary.json").read_text())
    page = Page(f"Evaluation: {label}", notes=[f"{summary['episodes']} episodes of {summary['env']} from seed "
                                               f"{summary['seed']}."])  # fmt: skip
    page.tables.append(("Metrics (mean, 95 % CI)", ["metric", "mean", "95 % CI", "n"], metrics_rows(summary)))
    page.videos.append(("episode 0, re-rendered from its stored states", out_dir / "replay.mp4"))
    page.images += [("top-down map", out_dir / "map.png"), ("memory view", out_dir / "memory.png")]
    return page


def write_eval_report(
    out_dir: str | Path, label: str, episode: Episode | None, views: dict[str, np.ndarray] | None = None
) -> Path:
    """Write the first episode's replay and still views into ``out_dir``, and its ``report.html``.

    Args:
        out_dir: The evaluation directory (with ``summary.json``).
        label: What was evaluated.
        episode: Its first episode (None: no media).
        views: That episode's ``tb_media.episode_views`` if already made (None: made here).
    """
    from PIL import Image

    from embodia.replay.tb_media import episode_views
    from embodia.replay.video import render_episode, write_video

    out_dir = Path(out_dir)
    if episode is not None:
        if episode.mj_state is not None:
            write_video(render_episode(episode, overlay=True), out_dir / "replay.mp4")
        for name, image in (episode_views(episode) if views is None else views).items():
            Image.fromarray(image).save(out_dir / f"{name}.png")
    return write_page(eval_page(out_dir, label), out_dir / "report.html")


def write_train_report(run_dir: str | Path) -> Path:
    """``report.html`` of a training run: its summary, hyperparameters and loss / learning-rate curves."""
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    page = Page(f"Training run: {summary['policy']} ({run_dir.name})")
    page.notes.append(
        f"{summary['steps']} steps in {summary['elapsed_s']:.1f} s, stopped by {summary['stopped_by']}; data: "
        f"{summary['data'].get('episodes')} episodes, {summary['data'].get('samples')} samples."
    )
    last = [[k, f"{v:.4g}"] for k, v in summary["last_terms"].items()]
    page.tables.append(("Last logged terms", ["term", "value"], last))
    page.tables.append(
        ("Hyperparameters", ["field", "value"], [[k, str(v)] for k, v in summary["train_config"].items()])
    )
    page.curves += train_curves(run_dir, ("train/loss", "train/lr", "train/grad_norm"))
    return write_page(page, run_dir / "report.html")
