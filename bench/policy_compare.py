"""Policy comparison: MLP-BC, Diffusion Policy, EBT-Policy and ``ebt-dsm`` on the same demonstrations, side by side.

For each env (``embodia/DetourReach-v0``: bimodal, both modes from every start; ``embodia/PushBlock-v0``) the
script collects expert demonstrations, then trains every policy twice with the same trainer and hyperparameters:
once for the same wall-clock budget and once for the same number of gradient steps. Each trained policy is
evaluated, in its inference variants, on the same held-out seeds (starts never seen in the demonstrations):

* success rate and collision rate (Wilson 95 % intervals) over closed-loop episodes;
* on DetourReach, the mode split of 256 chunks sampled from each of 10 fixed starts (which side of the obstacle
  the chunk would pass, by the env's own ``side`` rule);
* latency per chunk at batch 1 (median of repeated ``predict_action`` calls) and network evaluations per chunk
  (NFE; an EBT step, forward + input-gradient backward, counts as one);
* training iterations per second.

Variants: diffusion at DDIM-10 and DDPM-100; EBT and ``ebt-dsm`` at K = 1, 2, 4 descent steps (no early stop),
with early stopping (K <= 4, stop once ‖∇ₐE‖ < grad_tol, the config's default tolerance), and K = 2 with
best-of-4 (four descents per chunk, the lowest final energy kept).

All policies train with lr 1e-3 (the trainer's default, 1e-4, is for long runs; these budgets are minutes on
one CPU thread), batch 64, 100 warm-up steps, EMA and the rest of ``TrainConfig``'s defaults.

Expected (issue 5) on DetourReach: MLP <= 10 % success, DP DDIM-10 >= 95 %, ``ebt-dsm`` keeps both modes (each
>= 25 % of sampled chunks), EBT latency per chunk <= 1/10 of DDPM-100's.

Usage: python bench/policy_compare.py [--envs detour pushblock] [--budget-s 240] [--steps 1500] [--quick]
Writes bench/results/policy_compare.json (``--quick``: policy_compare_quick.json) and TensorBoard runs under
``runs/policy_compare/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import numpy as np
import torch

import embodia  # noqa: F401  (registers the environments)
from embodia.data.episodes import load_episodes
from embodia.data.windows import EpisodeWindows
from embodia.policies import Policy, make_policy
from embodia.runtime.collect import collect
from embodia.runtime.policy_eval import ObsWindow, evaluate_policy, mode_split, summarise_episodes
from embodia.training.config import TrainConfig
from embodia.training.trainer import Trainer

RESULTS_DIR = Path(__file__).parent / "results"

ENVS: dict[str, dict[str, Any]] = {
    "detour": {"env_id": "embodia/DetourReach-v0", "demos": 200, "mode_split": True},
    "pushblock": {"env_id": "embodia/PushBlock-v0", "demos": 200, "mode_split": False},
}
EVAL_SEED0 = 1_000_000
"""Held-out seeds are EVAL_SEED0 + 2i (even: DetourReach pairs seeds 2k, 2k+1 on one start, so 50 distinct starts)."""

POLICIES = ("mlp", "diffusion", "ebt", "ebt-dsm")
VARIANTS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "mlp": [("mlp", {})],
    "diffusion": [("DDIM-10", {"inference": "ddim", "num_inference_steps": 10}), ("DDPM-100", {"inference": "ddpm"})],
    "ebt": [
        ("K=1", {"inference_steps": 1, "grad_tol": 0.0}),
        ("K=2", {"inference_steps": 2, "grad_tol": 0.0}),
        ("K=4", {"inference_steps": 4, "grad_tol": 0.0}),
        ("K<=4 early stop", {"inference_steps": 4}),
        ("K=2 best-of-4", {"inference_steps": 2, "grad_tol": 0.0, "best_of_n": 4}),
    ],
}
VARIANTS["ebt-dsm"] = VARIANTS["ebt"]


def train_one(
    name: str, windows: EpisodeWindows, config: TrainConfig, run_dir: Path | None
) -> tuple[Policy, dict[str, Any]]:
    """Train policy ``name`` from seed 0; returns the run's (EMA) policy and training figures."""
    torch.manual_seed(0)
    policy = make_policy(name, obs_dim=windows.obs_dim, action_dim=windows.action_dim, obs_keys=windows.obs_keys)
    policy.fit_normalizer(windows.obs, windows.actions)
    result = Trainer(policy, windows, config, run_dir=run_dir, progress=True).train()
    figures = {
        "steps": result.steps,
        "seconds": round(result.elapsed_s, 2),
        "it_per_s": round(result.it_per_s, 2),
        "final_loss": round(result.last_terms.get("loss", float("nan")), 5),
        "parameters": policy.num_parameters(),
    }
    return result.policy, figures


def variant_of(policy: Policy, overrides: dict[str, Any]) -> Policy:
    """The trained ``policy`` with inference settings ``overrides`` (same weights)."""
    if not overrides:
        return policy
    variant = make_policy(policy.name, config=dataclasses.replace(policy.config, **overrides))
    variant.load_state_dict(policy.state_dict())
    return variant.eval()


def latency(policy: Policy, obs: np.ndarray, repeats: int) -> dict[str, float]:
    """Median wall time (ms) of ``predict_action`` at batch 1, and NFE per chunk."""
    batch = {"obs": obs}
    nfe = []
    with torch.no_grad():
        for _ in range(3):
            policy.predict_action(batch)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            policy.predict_action(batch)
            times.append(1e3 * (time.perf_counter() - t0))
            last = getattr(policy, "last_nfe", None)
            nfe.append(float(last.float().mean()) if isinstance(last, torch.Tensor) else 1.0)
    return {"latency_ms": round(statistics.median(times), 3), "nfe": round(float(np.mean(nfe)), 2)}


def evaluate(policy: Policy, spec: dict[str, Any], seeds: list[int], split_seeds: list[int], repeats: int) -> dict:
    """Closed-loop success/collisions, mode split (DetourReach), latency and NFE of one policy variant."""
    rows = evaluate_policy(policy, spec["env_id"], seeds, record_latency=False)
    summary = summarise_episodes(rows)
    out: dict[str, Any] = {
        "success": summary["success"]["mean"],
        "success_ci95": summary["success"]["ci95"],
        "collision_rate": summary["collided"]["mean"] if "collided" in summary else None,
        "collision_ci95": summary["collided"]["ci95"] if "collided" in summary else None,
        "episodes": len(rows),
    }
    if spec["mode_split"]:
        split = mode_split(policy, spec["env_id"], split_seeds, 256)
        out["mode_split"] = {k: round(split[k], 4) for k in ("left", "right", "undecided")}
        out["closed_loop_sides"] = {
            "left": summary["side_left"]["mean"],
            "right": summary["side_right"]["mean"],
        }
    env = gym.make(spec["env_id"])
    obs, _ = env.reset(seed=seeds[0])
    env.close()
    window = ObsWindow.for_policy(policy)
    window.reset(obs)
    out.update(latency(policy, window.batch()["obs"], repeats))
    return out


def run_env(key: str, args: argparse.Namespace, runs_root: Path) -> dict[str, Any]:
    """Collect, train (both budgets) and evaluate every policy on one env."""
    spec = ENVS[key]
    n_demos = 20 if args.quick else spec["demos"]
    with tempfile.TemporaryDirectory() as tmp:
        print(f"\n== {spec['env_id']}: collecting {n_demos} expert demonstrations")
        collect(spec["env_id"], n_demos, Path(tmp), seed=0, progress=True)
        episodes = load_episodes(tmp)
    windows = EpisodeWindows(episodes, n_obs_steps=2, horizon=16, obs_keys=("state",))
    n_eval = 6 if args.quick else args.eval_episodes
    seeds = [EVAL_SEED0 + 2 * i for i in range(n_eval)]
    split_seeds = seeds[: min(10, len(seeds))]
    budgets = {
        "same_time": {"minutes": args.budget_s / 60.0},
        "same_steps": {"steps": args.steps},
    }
    budgets = {k: v for k, v in budgets.items() if k in args.budgets}
    out: dict[str, Any] = {
        "env_id": spec["env_id"],
        "demos": {"episodes": len(episodes), "samples": len(windows)},
        "eval_seeds": [seeds[0], seeds[-1], 2],
        "budgets": {},
    }
    for budget_name, budget in budgets.items():
        per_policy: dict[str, Any] = {}
        for name in POLICIES:
            config = TrainConfig(
                **budget, lr=args.lr, batch_size=args.batch_size, warmup_steps=args.warmup, log_every=25
            )
            run_dir = runs_root / key / budget_name / name
            print(f"-- {key} {budget_name}: training {name} ({budget})")
            policy, train_figures = train_one(name, windows, config, run_dir)
            variants = {}
            for label, overrides in VARIANTS[name]:
                variant = variant_of(policy, overrides)
                t0 = time.perf_counter()
                variants[label] = evaluate(variant, spec, seeds, split_seeds, args.latency_repeats)
                variants[label]["eval_s"] = round(time.perf_counter() - t0, 1)
                print(f"   {name} {label}: {fmt_variant(variants[label])}")
            per_policy[name] = {"train": train_figures, "variants": variants}
        out["budgets"][budget_name] = {"budget": budget, "policies": per_policy}
    return out


def fmt_variant(v: dict[str, Any]) -> str:
    lo, hi = v["success_ci95"]
    text = f"success {v['success']:.2f} [{lo:.2f}, {hi:.2f}]"
    if v.get("collision_rate") is not None:
        text += f"  collided {v['collision_rate']:.2f}"
    if "mode_split" in v:
        m = v["mode_split"]
        text += f"  chunks L/R/U {m['left']:.2f}/{m['right']:.2f}/{m['undecided']:.2f}"
    return text + f"  {v['latency_ms']:.2f} ms  NFE {v['nfe']:.1f}"


def print_table(results: dict[str, Any]) -> None:
    """One row per env, budget, policy and inference variant."""
    header = (
        f"{'env':<10}{'budget':<11}{'policy':<10}{'variant':<17}{'steps':>6}{'it/s':>8}{'success [95% CI]':>22}"
        f"{'collide':>8}{'chunks L/R/U':>16}{'ms/chunk':>9}{'NFE':>6}"
    )
    print("\n" + header)
    print("-" * len(header))
    for key, env in results["envs"].items():
        for budget_name, budget in env["budgets"].items():
            for name, entry in budget["policies"].items():
                t = entry["train"]
                for label, v in entry["variants"].items():
                    lo, hi = v["success_ci95"]
                    split = v.get("mode_split")
                    split_text = f"{split['left']:.2f}/{split['right']:.2f}/{split['undecided']:.2f}" if split else "-"
                    coll = f"{v['collision_rate']:.2f}" if v.get("collision_rate") is not None else "-"
                    print(
                        f"{key:<10}{budget_name:<11}{name:<10}{label:<17}{t['steps']:>6}{t['it_per_s']:>8.1f}"
                        f"{v['success']:>8.2f} [{lo:.2f}, {hi:.2f}]{coll:>8}{split_text:>16}{v['latency_ms']:>9.2f}"
                        f"{v['nfe']:>6.1f}"
                    )


def checks(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's expected shape on DetourReach, per budget: measured value and whether it holds."""
    out: dict[str, Any] = {}
    env = results["envs"].get("detour")
    if env is None:
        return out
    for budget_name, budget in env["budgets"].items():
        p = budget["policies"]
        if set(p) != set(POLICIES):
            continue
        ddpm = p["diffusion"]["variants"]["DDPM-100"]["latency_ms"]
        dsm = p["ebt-dsm"]["variants"]["K=2"]["mode_split"]
        mlp = p["mlp"]["variants"]["mlp"]["success"]
        out[budget_name] = {
            "mlp_success_le_0.10": [mlp, mlp <= 0.10],
            "dp_ddim10_success_ge_0.95": [
                p["diffusion"]["variants"]["DDIM-10"]["success"],
                p["diffusion"]["variants"]["DDIM-10"]["success"] >= 0.95,
            ],
            "ebt_dsm_K2_each_mode_ge_0.25": [[dsm["left"], dsm["right"]], min(dsm["left"], dsm["right"]) >= 0.25],
            "ebt_K2_latency_le_ddpm100_over_10": [
                round(p["ebt"]["variants"]["K=2"]["latency_ms"] / ddpm, 4),
                p["ebt"]["variants"]["K=2"]["latency_ms"] <= ddpm / 10,
            ],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=list(ENVS), choices=list(ENVS))
    parser.add_argument("--budget-s", type=float, default=240.0, help="wall-clock training budget per policy")
    parser.add_argument("--steps", type=int, default=1500, help="gradient steps per policy (the other comparison)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--eval-episodes", type=int, default=50)
    parser.add_argument("--latency-repeats", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="tiny budgets and few seeds (a smoke run)")
    parser.add_argument(
        "--budgets", nargs="+", default=["same_time", "same_steps"], choices=["same_time", "same_steps"]
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="results file (default bench/results/policy_compare.json)"
    )
    args = parser.parse_args()
    if args.quick:
        args.budget_s, args.steps, args.latency_repeats = 6.0, 30, 5
    torch.set_num_threads(1)
    runs_root = Path("runs") / ("policy_compare_quick" if args.quick else "policy_compare")
    start = time.perf_counter()
    results: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "envs": {},
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = args.out or RESULTS_DIR / ("policy_compare_quick.json" if args.quick else "policy_compare.json")
    for key in args.envs:
        results["envs"][key] = run_env(key, args, runs_root)
        results["checks"] = checks(results)
        results["total_s"] = round(time.perf_counter() - start, 1)
        path.write_text(json.dumps(results, indent=2))  # after every env, so a later failure loses nothing
    print_table(results)
    print("\nexpected shape (DetourReach):")
    for budget_name, items in results["checks"].items():
        for label, (value, ok) in items.items():
            print(f"  {budget_name:<11}{label:<36}{value!s:<24}{'met' if ok else 'NOT met'}")
    print(f"\nwrote {path} ({results['total_s']} s)")


if __name__ == "__main__":
    main()
