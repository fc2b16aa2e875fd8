"""Memory ablation on UrbanNav-Return-v0: what Mem4Nav memory adds to the same agent, with 95 % confidence intervals.

Protocol (hand-over, ``embodia.agents.handover``): the scripted expert drives the outbound phase while the agent
watches (its memory is written as if it drove), then the agent drives the return phase ("go back to the <landmark>
you passed", a landmark out of view from where the return starts). TC, SPD, nDTW and SED of the episode then
measure the return.

Rows:

* ``nav-<inner>-<mode>``: the learned navigator (``embodia.agents.navigator``: the modular backbone's memory and
  street planner, a learned controller on plan features), trained on the return-phase steps of the expert
  demonstrations (plus ``--dagger-rounds`` DAgger rounds, default none), with the same steps, batch size, seed and
  DAgger budget in every row; ``--nav-modes`` with EBT-Policy inside (``none``: retrained without memory, not only
  switched off), ``--inners`` in memory mode ``full``;
* ``modular-<mode>``: the modular agent (no learning): the same planner, pure pursuit instead of a learned
  controller;
* ``agent-<mode>``: the end-to-end reader agent (``embodia.agents.model``), only with ``--reader-modes``.

Every row is evaluated on the same held-out seeds, so ``TC(full) - TC(none)`` is a paired difference; its 95 %
interval is the Student-t interval over episodes. Hit rates per memory part: the share of acting steps whose
located goal had STM detections (``stm``) or octree-leaf points (``leaf``) behind it. Everything runs on a local
Ray instance with ``--workers`` CPUs (training as parallel tasks, evaluation on the rollout pool).

Usage: python bench/memory_ablation.py [--demos 40] [--episodes 40] [--steps 3000] [--train-seed 0] [--dagger-rounds 0]
       [--nav-modes full none ...] [--inners ebt diffusion mlp] [--modular-modes ...] [--quick]
Writes bench/results/memory_ablation.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import embodia  # noqa: F401  (registers the environments)
from embodia.agents.ablation import MEMORY_MODES
from embodia.agents.modular import modular_controller
from embodia.agents.navigator import NavigatorConfig
from embodia.experiments.variants import Variant, evaluate_variants, paired_difference, train_variants
from embodia.policies.factory import policy_config
from embodia.runtime.collect import collect
from embodia.training.config import TrainConfig

RESULTS = Path(__file__).parent / "results" / "memory_ablation.json"
ENV_ID = "embodia/UrbanNav-Return-v0"
EVAL_SEED = 1_000_000
METRICS = ("tc", "spd", "ndtw", "sed")
FIGURES = (
    "memory/goal_found_rate", "memory/locate_stm_rate", "memory/locate_leaf_rate", "memory/stm_hit_rate",
    "memory/ltm_hit_rate", "act_ms_mean", "plan_ms_mean", "nfe_mean",
)  # fmt: skip


def variants(args: argparse.Namespace) -> list[Variant]:
    """The rows (see the module docstring)."""
    dagger = {"dagger_rounds": args.dagger_rounds, "dagger_episodes": args.dagger_episodes}
    rows = []
    nav = [("ebt", mode) for mode in args.nav_modes] + [(inner, "full") for inner in args.inners if inner != "ebt"]
    for inner, mode in nav:
        config = policy_config("navigator", memory=mode, inner=NavigatorConfig.default_inner(inner), act_from_phase=1)
        rows.append(Variant(f"nav-{inner}-{mode}", ENV_ID, policy=config, **dagger))
    for mode in args.reader_modes:
        config = policy_config("agent", memory=mode, act_from_phase=1)  # the inner policy: EBT-Policy
        rows.append(Variant(f"agent-{mode}", ENV_ID, policy=config))
    for mode in args.modular_modes:
        controller = functools.partial(modular_controller, mode, 1)
        rows.append(Variant(f"modular-{mode}", ENV_ID, controller=controller))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demos", type=int, default=40, help="expert demonstrations to train on")
    parser.add_argument("--episodes", type=int, default=40, help="held-out evaluation episodes per row")
    parser.add_argument("--steps", type=int, default=3000, help="training steps per learned row (every round)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--train-seed", type=int, default=0, help="training seed (initial weights, batches)")
    parser.add_argument("--dagger-rounds", type=int, default=0, help="DAgger rounds per learned row")
    parser.add_argument("--dagger-episodes", type=int, default=30, help="labelled rollouts per DAgger round")
    parser.add_argument("--nav-modes", nargs="*", default=list(MEMORY_MODES), choices=MEMORY_MODES)
    parser.add_argument("--inners", nargs="*", default=["ebt", "diffusion", "mlp"], help="navigator inner policies")
    parser.add_argument("--reader-modes", nargs="*", default=[], choices=MEMORY_MODES, help="end-to-end reader")
    parser.add_argument("--modular-modes", nargs="*", default=list(MEMORY_MODES), choices=MEMORY_MODES)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None, help="working directory (default: a temporary one)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 6 demos, 4 episodes, 20 steps")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.demos, args.episodes, args.steps, args.dagger_episodes = 6, 4, 20, 2
    for flag, modes in (("--nav-modes", args.nav_modes), ("--reader-modes", args.reader_modes),
                        ("--modular-modes", args.modular_modes)):  # fmt: skip
        if modes and "none" not in modes:
            parser.error(f"{flag} must include 'none' (the baseline differences are taken against)")
    work = args.work or Path(tempfile.mkdtemp(prefix="memory_ablation_"))
    start = time.perf_counter()

    demos = collect(ENV_ID, args.demos, work / "demos", seed=0, overwrite=True, workers=args.workers, progress=False)
    print(f"demos: {args.demos} expert episodes, TC {demos['metrics']['tc']['mean']:.2f}")
    rows = variants(args)
    config = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=min(100, args.steps),
        seed=args.train_seed,
    )
    t0 = time.perf_counter()
    trained = train_variants(rows, {ENV_ID: work / "demos"}, work / "runs", config, workers=args.workers)
    train_s = time.perf_counter() - t0
    evals = evaluate_variants(
        rows, work / "runs", work / "eval", episodes=args.episodes, seed=EVAL_SEED, workers=args.workers, progress=False
    )

    table = {}
    for v in rows:
        m = evals[v.name]["metrics"]
        row = {k: {"mean": m[k]["mean"], "ci95": m[k]["ci95"]} for k in METRICS}
        for key in ("collisions", "steps", "path_length"):  # what the rows did (e.g. stuck against a wall)
            row[key] = round(m[key]["mean"], 3)
        per = evals[v.name]["per_episode"]
        for key in FIGURES:
            values = [r[key] for r in per if key in r]
            if values:
                row[key] = round(float(sum(values) / len(values)), 4)
        if v.name in trained:
            s = trained[v.name]
            row["train"] = {
                "steps": s["steps"], "seconds": s["wall_s"], "optimiser_s": s["elapsed_s"],
                "final_loss": s["last_terms"].get("loss"), "dagger": s.get("dagger", []),
            }  # fmt: skip
        row["eval_s"] = evals[v.name]["eval_s"]
        table[v.name] = row
    differences = {}
    families = (("nav-ebt", args.nav_modes), ("agent", args.reader_modes), ("modular", args.modular_modes))
    for family, modes in families:
        if not modes:
            continue
        base = evals[f"{family}-none"]
        for mode in modes:
            if mode != "none":
                name = f"{family}-{mode}"
                differences[f"{name} minus {family}-none"] = {
                    k: paired_difference(evals[name], base, k) for k in ("tc", "ndtw", "spd")
                }

    print(f"\nMemory ablation on {ENV_ID} (hand-over protocol), {args.episodes} held-out episodes per row")
    print(
        f"{'row':<22} {'TC [95% CI]':>20} {'SPD m':>7} {'nDTW':>6} {'coll.':>6} {'found':>6} {'stm':>5} {'leaf':>5} "
        f"{'ms/act':>7} {'NFE':>5} {'train s':>8}"
    )
    nan = float("nan")
    for name, row in table.items():
        tc = row["tc"]
        print(
            f"{name:<22} {tc['mean']:>6.3f} [{tc['ci95'][0]:.2f}, {tc['ci95'][1]:.2f}] {row['spd']['mean']:>7.1f} "
            f"{row['ndtw']['mean']:>6.3f} {row['collisions']:>6.2f} {row.get('memory/goal_found_rate', nan):>6.2f} "
            f"{row.get('memory/locate_stm_rate', nan):>5.2f} {row.get('memory/locate_leaf_rate', nan):>5.2f} "
            f"{row.get('act_ms_mean', nan):>7.2f} {row.get('nfe_mean', nan):>5.2f} "
            f"{row.get('train', {}).get('seconds', nan):>8.0f}"
        )
    print("\nPaired differences (same seeds), mean [95% CI]:")
    for label, diff in differences.items():
        tc, nd = diff["tc"], diff["ndtw"]
        print(
            f"  {label:<36} TC {tc['mean']:+.3f} [{tc['ci95'][0]:+.3f}, {tc['ci95'][1]:+.3f}]"
            f"   nDTW {nd['mean']:+.3f} [{nd['ci95'][0]:+.3f}, {nd['ci95'][1]:+.3f}]"
        )
    total = time.perf_counter() - start
    payload = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": 1},
        "settings": {
            "env": ENV_ID,
            "protocol": "hand-over (expert outbound, agent return)",
            "demos": args.demos,
            "eval_episodes": args.episodes,
            "eval_seeds": [EVAL_SEED, EVAL_SEED + args.episodes - 1],
            "train": config.to_dict(),
            "nav_modes": args.nav_modes,
            "inners": args.inners,
            "dagger": {"rounds": args.dagger_rounds, "episodes": args.dagger_episodes},
            "reader_modes": args.reader_modes,
            "workers": args.workers,
            "quick": args.quick,
        },
        "demos_tc": demos["metrics"]["tc"]["mean"],
        "rows": table,
        "differences": differences,
        "train_s": round(train_s, 1),
        "total_s": round(total, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {args.out} ({total:.0f} s)")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
