"""Environment throughput: UrbanNav env steps/s beside the raw MuJoCo cost of the same scene, and reset times.

The raw cost of one env step is what the simulator must do anyway: ``mj_step`` x frame skip on the same model
plus the same ``mj_multiRay`` scan. Everything else (action checks, odometry, collision bookkeeping, progress on
the street graph, the observation dict) is the env's overhead. Target: env step <= 2x raw.

Measurements alternate between the variants in rounds and report medians, because this machine is shared.

Usage: python bench/env_throughput.py [--steps 3000] [--rounds 5]
Writes bench/results/env_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym
import mujoco
import numpy as np

import embodia  # noqa: F401

RESULTS = Path(__file__).parent / "results" / "env_throughput.json"


def _actions(n: int, seed: int) -> np.ndarray:
    """Forward driving with random turns; never 'stop'."""
    rng = np.random.default_rng(seed)
    actions = np.zeros((n, 3), dtype=np.float32)
    actions[:, 0] = rng.uniform(0.3, 1.0, n)
    actions[:, 1] = rng.uniform(-1.0, 1.0, n)
    actions[:, 2] = -1.0
    return actions


def env_steps_per_s(env: gym.Env, steps: int, seed: int) -> float:
    """Steps/s of ``env.unwrapped.step`` (resets excluded from the timing)."""
    unwrapped = env.unwrapped
    unwrapped.reset(seed=seed)
    actions = _actions(steps, seed)
    elapsed = 0.0
    for a in actions:
        t0 = time.perf_counter()
        _, _, terminated, truncated, _ = unwrapped.step(a)
        elapsed += time.perf_counter() - t0
        if terminated or truncated:
            unwrapped.reset()
    return steps / elapsed


def raw_steps_per_s(env: gym.Env, steps: int, seed: int) -> float:
    """Steps/s of the bare simulator work behind one env step: mj_step x frame_skip + the ray scan."""
    u = env.unwrapped
    u.reset(seed=seed)
    m, d = u.model, u.data
    dirs = u._ray_dirs
    geomid = np.zeros(len(dirs), dtype=np.int32)
    dist = np.zeros(len(dirs), dtype=np.float64)
    group = np.array([1, 0, 0, 0, 0, 0], dtype=np.uint8)
    site = u._sensor_site
    body = u._robot_body
    cutoff = u.sensor_config.max_range
    vec = dirs.ravel().copy()
    d.ctrl[:] = [1.0, 0.5, 0.3]
    t0 = time.perf_counter()
    for _ in range(steps):
        mujoco.mj_step(m, d, nstep=u.frame_skip)
        mujoco.mj_multiRay(m, d, d.site_xpos[site], vec, group, 1, body, geomid, dist, None, len(dirs), cutoff)
    return steps / (time.perf_counter() - t0)


def reset_ms(env: gym.Env, n: int, seed: int) -> float:
    """Median milliseconds of ``reset`` with a new city each time."""
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        env.unwrapped.reset(seed=seed + i)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    """Runs the benchmark, prints a table and writes the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    rows = []
    for blocks in (4, 10):
        city = {"blocks_x": blocks, "blocks_y": blocks}
        env = gym.make("embodia/UrbanNav-v0", city=city)
        env_rgb = gym.make("embodia/UrbanNav-v0", city=city, sensor={"rgb": True})
        env_rates, raw_rates, rgb_rates = [], [], []
        for r in range(args.rounds):
            env_rates.append(env_steps_per_s(env, args.steps, seed=r))
            raw_rates.append(raw_steps_per_s(env, args.steps, seed=r))
            rgb_rates.append(env_steps_per_s(env_rgb, max(args.steps // 10, 50), seed=r))
        resets = reset_ms(env, 20, seed=1000)
        env_rate, raw_rate, rgb_rate = (statistics.median(x) for x in (env_rates, raw_rates, rgb_rates))
        u = env.unwrapped
        rows.append(
            {
                "city": f"{blocks}x{blocks}",
                "geoms": int(u.model.ngeom),
                "rays": len(u._ray_dirs),
                "frame_skip": u.frame_skip,
                "env_steps_per_s": round(env_rate, 1),
                "raw_steps_per_s": round(raw_rate, 1),
                "env_step_over_raw": round(raw_rate / env_rate, 3),
                "env_rgb64_steps_per_s": round(rgb_rate, 1),
                "reset_ms_median": round(resets, 2),
                "env_steps_per_s_rounds": [round(x, 1) for x in env_rates],
                "raw_steps_per_s_rounds": [round(x, 1) for x in raw_rates],
            }
        )
        env.close()
        env_rgb.close()

    header = (
        f"{'city':<7}{'geoms':>7}{'rays':>6}{'env step/s':>12}{'raw step/s':>12}"
        f"{'env/raw time':>14}{'rgb64 step/s':>14}{'reset ms':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['city']:<7}{r['geoms']:>7}{r['rays']:>6}{r['env_steps_per_s']:>12.0f}{r['raw_steps_per_s']:>12.0f}"
            f"{r['env_step_over_raw']:>14.2f}{r['env_rgb64_steps_per_s']:>14.0f}{r['reset_ms_median']:>10.1f}"
        )
    ok = all(r["env_step_over_raw"] <= 2.0 for r in rows)
    print(f"target env step <= 2x raw cost: {'met' if ok else 'NOT met'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "env_throughput",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "mujoco": mujoco.__version__,
        },
        "settings": {"steps": args.steps, "rounds": args.rounds},
        "target": "env step time <= 2x raw (mj_step x frame_skip + mj_multiRay)",
        "target_met": ok,
        "rows": rows,
    }
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
