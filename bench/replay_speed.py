"""Replay speed: frames/s of re-rendering an UrbanNav episode from its stored states, and memory-view times.

One modular-agent episode of UrbanNav-Return-v0 (hand-over, full memory, seed 5) is recorded, then re-rendered
through the chase camera at 320x240 with and without the text overlay and at 640x480 (EGL, shadows off), and its
top-down map and 3-D memory view (Open3D offscreen, in a spawned process and in this one) are drawn. Medians of
``--repeats`` runs.

Usage: python bench/replay_speed.py [--repeats 3]
Writes bench/results/replay_speed.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

from embodia.agents.modular import modular_controller
from embodia.data.episodes import read_episode
from embodia.replay.memory_view import render_memory_view
from embodia.replay.topdown import draw_topdown
from embodia.replay.video import render_episode
from embodia.runtime.collect import collect

RESULTS = Path(__file__).parent / "results" / "replay_speed.json"


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        controller = functools.partial(modular_controller, "full", 1)
        collect("embodia/UrbanNav-Return-v0", 1, tmp, seed=5, progress=False, controller_fn=controller)
        episode = read_episode(Path(tmp) / "episode_000000.h5")
        frames = len(episode.mj_state)
        rows = {}
        for label, kwargs in (
            ("320x240", {"width": 320, "height": 240}),
            ("320x240 + overlay", {"width": 320, "height": 240, "overlay": True}),
            ("640x480", {"width": 640, "height": 480}),
        ):
            seconds = median_seconds(lambda kw=kwargs: render_episode(episode, camera="chase", **kw), args.repeats)
            rows[f"video {label}"] = {"seconds": round(seconds, 3), "frames_per_s": round(frames / seconds, 1)}
        rows["top-down map 800x800"] = {
            "seconds": round(median_seconds(lambda: draw_topdown(episode), args.repeats), 3)
        }
        png = Path(tmp) / "memory.png"
        for label, isolated in (("spawned process", True), ("in process", False)):
            seconds = median_seconds(lambda i=isolated: render_memory_view(episode, png, isolated=i), args.repeats)
            rows[f"memory view 800x600, {label}"] = {"seconds": round(seconds, 3)}
    print(f"Replay of one UrbanNav-Return episode ({frames} stored states), medians of {args.repeats} runs")
    for name, row in rows.items():
        fps = f"{row['frames_per_s']:>8.1f} frames/s" if "frames_per_s" in row else ""
        print(f"  {name:<36} {row['seconds']:>7.3f} s {fps}")
    payload = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "frames": frames,
        "repeats": args.repeats,
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
