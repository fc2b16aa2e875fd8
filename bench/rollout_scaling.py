"""Rollout scaling: episodes/s of the in-process loop, 1 and 2 Ray workers, and Gymnasium's AsyncVectorEnv.

All four run the same env with the same scripted expert on the same seeds (episode i: seed SEED0 + i), one thread
per process. The in-process loop and the Ray actors run :class:`~embodia.runtime.rollout.RolloutWorker` (control and
in-memory recording, no files); AsyncVectorEnv steps two sub-env processes with one expert per sub-env (control
only, autoreset disabled so every episode gets its seed). Ray is started before timing (its start-up is reported
separately), and each Ray pool's actors are up before the clock starts.

Scaling efficiency at 2 workers = (episodes/s with 2 Ray workers) / (2 x episodes/s with 1 Ray worker); the
target (issue 6) is >= 0.8.

Usage: python bench/rollout_scaling.py [--env embodia/UrbanNav-v0] [--episodes 40] [--quick]
Writes bench/results/rollout_scaling.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import gymnasium as gym
import numpy as np

import embodia  # noqa: F401  (registers the environments)
from embodia.envs.experts import make_expert
from embodia.runtime.rollout import EpisodeSpec, RolloutWorker

RESULTS = Path(__file__).parent / "results" / "rollout_scaling.json"
SEED0 = 5000


def in_process(env_id: str, specs: list[EpisodeSpec]) -> tuple[float, int]:
    worker = RolloutWorker(env_id)
    start = time.perf_counter()
    results = worker.run(specs)
    elapsed = time.perf_counter() - start
    worker.close()
    return elapsed, sum(r.num_steps for r in results)


def ray_pool(env_id: str, specs: list[EpisodeSpec], workers: int) -> tuple[float, int]:
    from embodia.runtime.ray_pool import RayRolloutPool

    pool = RayRolloutPool(env_id, workers=workers, progress=False)  # actors are up when this returns
    start = time.perf_counter()
    results = pool.run(specs)
    elapsed = time.perf_counter() - start
    pool.close()
    return elapsed, sum(r.num_steps for r in results)


class ExpertDriven(gym.Wrapper):
    """Steps its env with the scripted expert's action (the expert is privileged: it lives with its env)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.expert = make_expert(env)
        self._obs = None

    def reset(self, *, seed=None, options=None):
        """Reset the env, then the expert with the episode's seed."""
        self._obs, info = self.env.reset(seed=seed, options=options)
        self.expert.reset(seed)
        return self._obs, info

    def step(self, action):
        """Ignore ``action``; step with the expert's."""
        self._obs, reward, terminated, truncated, info = self.env.step(self.expert.act(self._obs))
        return self._obs, reward, terminated, truncated, info


def async_vector(env_id: str, seeds: list[int], n_envs: int) -> tuple[float, int]:
    """Episodes with per-episode seeds on an AsyncVectorEnv (autoreset disabled; done sub-envs reset by mask)."""
    from gymnasium.vector import AsyncVectorEnv, AutoresetMode

    envs = AsyncVectorEnv(
        [lambda: ExpertDriven(gym.make(env_id))] * n_envs, autoreset_mode=AutoresetMode.DISABLED, shared_memory=False
    )
    dummy = np.zeros((n_envs, *envs.single_action_space.shape), dtype=np.float32)  # the sub-envs' experts act
    queue = list(seeds)
    start = time.perf_counter()
    envs.reset(seed=[queue.pop(0) for _ in range(n_envs)])
    active = np.ones(n_envs, dtype=bool)
    steps = 0
    filler = 10**9  # a sub-env with no seeds left runs throw-away episodes (not counted) until the others finish
    while active.any():
        _, _, terminated, truncated, _ = envs.step(dummy)
        steps += int(active.sum())
        done = terminated | truncated
        if not done.any():
            continue
        mask = done.copy()
        seed_list = [0] * n_envs
        for i in np.flatnonzero(done):
            if active[i] and queue:
                seed_list[i] = queue.pop(0)
            else:
                active[i] = False
                seed_list[i], filler = filler, filler + 1
        if active.any():
            envs.reset(seed=seed_list, options={"reset_mask": mask})
    elapsed = time.perf_counter() - start
    envs.close()
    return elapsed, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="embodia/UrbanNav-v0")
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 8 if args.quick else args.episodes
    specs = [EpisodeSpec(i, SEED0 + i) for i in range(n)]
    seeds = [s.seed for s in specs]

    import ray

    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray_start_s = time.perf_counter() - t0

    rows = {}
    for name, fn in (
        ("in-process loop", lambda: in_process(args.env, specs)),
        ("Ray, 1 worker", lambda: ray_pool(args.env, specs, 1)),
        ("Ray, 2 workers", lambda: ray_pool(args.env, specs, 2)),
        ("AsyncVectorEnv, 2 envs", lambda: async_vector(args.env, seeds, 2)),
    ):
        elapsed, steps = fn()
        rows[name] = {"seconds": round(elapsed, 3), "episodes_per_s": round(n / elapsed, 3), "steps": steps}
    ray.shutdown()

    one, two = rows["Ray, 1 worker"]["episodes_per_s"], rows["Ray, 2 workers"]["episodes_per_s"]
    efficiency = two / (2 * one)
    print(f"\n{args.env}: {n} episodes (seeds {SEED0}..{SEED0 + n - 1}); Ray start-up {ray_start_s:.2f} s\n")
    print(f"{'runner':<26}{'seconds':>9}{'episodes/s':>12}{'steps':>9}")
    for name, row in rows.items():
        print(f"{name:<26}{row['seconds']:>9.2f}{row['episodes_per_s']:>12.2f}{row['steps']:>9}")
    verdict = "met" if efficiency >= 0.8 else "NOT met"
    print(f"\nscaling efficiency at 2 Ray workers: {efficiency:.2f} (target >= 0.8: {verdict})")
    result = {
        "env": args.env,
        "episodes": n,
        "seed0": SEED0,
        "ray_start_s": round(ray_start_s, 2),
        "rows": rows,
        "scaling_efficiency_2_workers": round(efficiency, 3),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
