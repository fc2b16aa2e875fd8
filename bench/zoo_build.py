"""Build zoo entries: run each recipe, ship the checkpoint into the package, evaluate it as ``zoo:NAME``, record.

For every named entry (default: all of :data:`embodia.zoo.recipes.RECIPES`):

1. ``embodia zoo train NAME`` (the recipe's collect and train commands) into ``<work>/NAME``;
2. copy ``run/policy.pt`` to ``src/embodia/zoo/checkpoints/NAME.pt`` and write its record (SHA-256, size, the
   demonstrations' digest, the training summary);
3. ``embodia eval --checkpoint zoo:NAME`` on the recipe's held-out seeds (exactly the command ``embodia zoo list``
   and the demo report print), and add its figures to the record.

Records are one file per entry (``src/embodia/zoo/records/NAME.json``), so two builds can run side by side::

    python bench/zoo_build.py memory-agent-ebt &  python bench/zoo_build.py sided-ebt sided-mlp

``--reuse`` skips step 1 where ``<work>/NAME/run/policy.pt`` exists. Prints a table of what it built.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from datetime import date
from pathlib import Path

from embodia.atomic import atomic_write
from embodia.cli import main as embodia_main
from embodia.experiments.variants import mean_per_episode
from embodia.zoo.recipes import EVAL_SEED, RECIPES, recipe
from embodia.zoo.train import data_digest, train_entry
from embodia.zoo_store import file_sha256, record_path, zoo_dir

PER_EPISODE_FIGURES = {"act_ms": "act_ms_mean", "plan_ms": "plan_ms_mean", "nfe": "nfe_mean"}
NAV_METRICS = ("spd", "ndtw", "collisions")


def write_record(name: str, record: dict) -> None:
    """Write ``records/NAME.json`` atomically."""
    path = record_path(name)
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def figures_of(summary: dict, metric: str) -> dict:
    """The recorded figures from an ``embodia eval`` summary: the metric's mean and CI, latency, NFE."""
    m = summary["metrics"]
    figures: dict = {metric: {"mean": round(m[metric]["mean"], 4), "ci95": [round(v, 4) for v in m[metric]["ci95"]]}}
    for key in NAV_METRICS:
        if key in m:
            figures[key] = round(m[key]["mean"], 4)
    for name, key in PER_EPISODE_FIGURES.items():
        mean = mean_per_episode(summary, key)
        figures[name] = None if mean is None else round(mean, 4)
    figures["per_episode"] = {str(r["seed"]): r[metric] for r in summary["per_episode"]}
    return figures


def build(name: str, work: Path, reuse: bool, workers: int) -> dict:
    """Steps 1-3 of the module docstring for one entry; returns its record."""
    entry = recipe(name)
    out = work / name
    policy = out / "run" / "policy.pt"
    t = time.perf_counter()
    if not (reuse and policy.exists()):
        same = [other for other, r in RECIPES.items() if r.collect == entry.collect and other != name]
        ready = [work / other / "demos" for other in same if (work / other / "demos" / "summary.json").exists()]
        train_entry(name, out, overwrite=True, demos_from=ready[0] if ready else None)
    train_wall = time.perf_counter() - t
    run_summary = json.loads((out / "run" / "summary.json").read_text())
    if run_summary["steps"] != entry.train_steps():  # e.g. a reused `embodia zoo train --steps N` run
        raise ValueError(
            f"{name}: {out / 'run'} trained {run_summary['steps']} steps, the recipe {entry.train_steps()}"
        )
    shipped = zoo_dir() / "checkpoints" / f"{name}.pt"
    shipped.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(shipped) as tmp:
        shutil.copyfile(policy, tmp)
    record = {
        "file": f"checkpoints/{name}.pt",
        "sha256": file_sha256(shipped),
        "bytes": shipped.stat().st_size,
        "env_id": entry.env_id,
        "data_digest": data_digest(out / "demos"),
        "trained": {
            "steps": run_summary["steps"],
            "elapsed_s": round(run_summary["elapsed_s"], 1),
            "wall_s": round(train_wall, 1) if train_wall > 1.0 else None,  # None: a reused run
            "final_loss": run_summary["last_terms"].get("loss"),
        },
        "recorded": date.today().isoformat(),
        "eval": {"episodes": entry.eval_episodes, "seed": EVAL_SEED},
    }
    write_record(name, record)  # the checkpoint is loadable as zoo:NAME from here on
    eval_dir = out / "eval"
    args = entry.eval_args(f"zoo:{name}", str(eval_dir)) + ["--overwrite", "--no-progress", "--workers", str(workers)]
    t = time.perf_counter()
    status = embodia_main(args)
    if status != 0:
        raise RuntimeError(f"{name}: `embodia {' '.join(args)}` exited with status {status}")
    record["eval"]["wall_s"] = round(time.perf_counter() - t, 1)
    record["figures"] = figures_of(json.loads((eval_dir / "summary.json").read_text()), entry.metric)
    write_record(name, record)
    return record


def main() -> None:
    """Build the named entries (all by default) and print what was built."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", default=list(RECIPES), help="entries to build (default: all)")
    p.add_argument("--work", type=Path, default=Path("runs/zoo"), help="where recipes run")
    p.add_argument("--reuse", action="store_true", help="skip training where <work>/NAME/run/policy.pt exists")
    p.add_argument("--workers", type=int, default=0, help="Ray workers for the evaluation (0: in this process)")
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    built = {name: build(name, args.work, args.reuse, args.workers) for name in args.names}
    print(f"\n{'entry':<30}{'metric':>8}{'mean':>8}{'95% CI':>16}{'ms/chunk':>10}{'NFE':>6}{'steps':>7}{'train s':>9}")
    for name, r in built.items():
        metric = recipe(name).metric
        f = r["figures"]
        low, high = f[metric]["ci95"]
        plan = f"{f['plan_ms']:.1f}" if f.get("plan_ms") is not None else "-"
        nfe = f"{f['nfe']:.2f}" if f.get("nfe") is not None else "-"
        print(
            f"{name:<30}{metric:>8}{f[metric]['mean']:>8.3f}{f'[{low:.2f}, {high:.2f}]':>16}{plan:>10}{nfe:>6}"
            f"{r['trained']['steps']:>7}{r['trained']['elapsed_s']:>9.0f}"
        )


if __name__ == "__main__":
    main()
