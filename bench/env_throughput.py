"""Environment throughput: env steps/s beside the raw MuJoCo cost of the same scene, and reset times.

The raw cost of one env step is what the simulator must do anyway: ``mj_step`` x frame skip on the same model
(plus, for UrbanNav, the same ``mj_multiRay`` scan). Everything else (action checks, odometry, collision
bookkeeping, progress on the street graph, coverage, the observation dict) is the env's overhead. Both loops
replay the same expert trajectories (the raw loop applies the very controls the env applied), so they see the
same contacts. Target: env step time <= 2x raw.

Measurements alternate between the variants in rounds and report medians, because this machine is shared.

Usage: python bench/env_throughput.py [--episodes 3] [--rounds 5]
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
from embodia.envs.experts import make_expert

RESULTS = Path(__file__).parent / "results" / "env_throughput.json"

CASES = [
    ("UrbanNav-v0 4x4", "embodia/UrbanNav-v0", {"city": {"blocks_x": 4, "blocks_y": 4}}),
    ("UrbanNav-v0 10x10", "embodia/UrbanNav-v0", {"city": {"blocks_x": 10, "blocks_y": 10}}),
    ("PushBlock-v0", "embodia/PushBlock-v0", {}),
    ("PushT-v0", "embodia/PushT-v0", {}),
    ("DetourReach-v0", "embodia/DetourReach-v0", {}),
]


def record(env: gym.Env, seeds: list[int]) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Expert trajectories: per seed, the actions ``(T, Da)`` and the controls the env applied ``(T, nu)``."""
    expert = make_expert(env)
    trajectories = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        expert.reset(seed)
        actions, controls = [], []
        while True:
            action = expert.act(obs)
            obs, _, terminated, truncated, _ = env.step(action)
            actions.append(action)
            controls.append(env.unwrapped.data.ctrl.copy())
            if terminated or truncated:
                break
        trajectories.append((seed, np.array(actions), np.array(controls)))
    return trajectories


def env_steps_per_s(env: gym.Env, trajectories: list) -> float:
    """Steps/s of ``env.unwrapped.step`` replaying the trajectories (resets excluded)."""
    u = env.unwrapped
    steps, elapsed = 0, 0.0
    for seed, actions, _ in trajectories:
        u.reset(seed=seed)
        t0 = time.perf_counter()
        for a in actions:
            u.step(a)
        elapsed += time.perf_counter() - t0
        steps += len(actions)
    return steps / elapsed


def raw_steps_per_s(env: gym.Env, trajectories: list) -> float:
    """Steps/s of the bare simulator work behind the same env steps: mj_step x frame_skip (+ the ray scan)."""
    u = env.unwrapped
    m = None
    rays = hasattr(u, "_ray_dirs")
    steps, elapsed = 0, 0.0
    for seed, _, controls in trajectories:
        u.reset(seed=seed)
        m, d = u.model, u.data
        if rays:
            dirs = u._ray_dirs
            vec = dirs.ravel().copy()
            geomid = np.zeros(len(dirs), dtype=np.int32)
            dist = np.zeros(len(dirs))
            group = np.array([1, 0, 0, 0, 0, 0], dtype=np.uint8)
            site, body, cutoff = u._sensor_site, u._robot_body, u.sensor_config.max_range
        t0 = time.perf_counter()
        for ctrl in controls:
            d.ctrl[:] = ctrl
            mujoco.mj_step(m, d, nstep=u.frame_skip)
            if rays:
                mujoco.mj_multiRay(m, d, d.site_xpos[site], vec, group, 1, body, geomid, dist, None, len(dirs), cutoff)
        elapsed += time.perf_counter() - t0
        steps += len(controls)
    return steps / elapsed


def reset_ms(env: gym.Env, n: int, seed: int) -> float:
    """Median milliseconds of ``reset`` (UrbanNav builds a new city each time)."""
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        env.unwrapped.reset(seed=seed + i)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    """Runs the benchmark, prints a table and writes the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=3, help="expert trajectories replayed per case")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    rows = []
    for name, env_id, kwargs in CASES:
        env = gym.make(env_id, **kwargs)
        trajectories = record(env, list(range(args.episodes)))
        rgb_env = gym.make(env_id, **kwargs, sensor={"rgb": True}) if "UrbanNav" in env_id else None
        env_rates, raw_rates, rgb_rates = [], [], []
        for _ in range(args.rounds):
            env_rates.append(env_steps_per_s(env, trajectories))
            raw_rates.append(raw_steps_per_s(env, trajectories))
            if rgb_env is not None:
                rgb_rates.append(env_steps_per_s(rgb_env, trajectories[:1]))
        env_rate, raw_rate = statistics.median(env_rates), statistics.median(raw_rates)
        u = env.unwrapped
        rows.append(
            {
                "case": name,
                "env_id": env_id,
                "geoms": int(u.model.ngeom),
                "frame_skip": u.frame_skip,
                "rays": len(u._ray_dirs) if hasattr(u, "_ray_dirs") else 0,
                "steps_replayed": int(sum(len(a) for _, a, _ in trajectories)),
                "env_steps_per_s": round(env_rate, 1),
                "raw_steps_per_s": round(raw_rate, 1),
                "env_step_over_raw": round(raw_rate / env_rate, 3),
                "env_rgb64_steps_per_s": round(statistics.median(rgb_rates), 1) if rgb_rates else None,
                "reset_ms_median": round(reset_ms(env, 20, seed=1000), 2),
                "env_steps_per_s_rounds": [round(x, 1) for x in env_rates],
                "raw_steps_per_s_rounds": [round(x, 1) for x in raw_rates],
            }
        )
        env.close()
        if rgb_env is not None:
            rgb_env.close()

    header = (
        f"{'case':<19}{'geoms':>6}{'skip':>5}{'rays':>5}{'env step/s':>11}{'raw step/s':>11}"
        f"{'env/raw':>9}{'rgb64 step/s':>13}{'reset ms':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        rgb = f"{r['env_rgb64_steps_per_s']:.0f}" if r["env_rgb64_steps_per_s"] else "-"
        print(
            f"{r['case']:<19}{r['geoms']:>6}{r['frame_skip']:>5}{r['rays']:>5}{r['env_steps_per_s']:>11.0f}"
            f"{r['raw_steps_per_s']:>11.0f}{r['env_step_over_raw']:>9.2f}{rgb:>13}{r['reset_ms_median']:>10.1f}"
        )
    ok = all(r["env_step_over_raw"] <= 2.0 for r in rows)
    print(f"target env step <= 2x raw cost: {'met' if ok else 'NOT met'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "env_throughput",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "mujoco": mujoco.__version__},
        "settings": {"episodes": args.episodes, "rounds": args.rounds, "workload": "replayed expert trajectories"},
        "target": "env step time <= 2x raw (mj_step x frame_skip [+ mj_multiRay])",
        "target_met": ok,
        "rows": rows,
    }
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
