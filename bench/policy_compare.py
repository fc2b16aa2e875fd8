"""Policy comparison: EBT-Policy vs Diffusion Policy vs MLP-BC, with learning curves, training seeds and costs.

What it measures. For each env and policy, several training seeds each train ONE run (same trainer and
hyperparameters for every policy: AdamW lr 1e-3, batch 64, 100 warm-up steps, cosine over the whole budget, EMA)
whose budget is the last mark; the run is paused at every mark (``Trainer.train(until_step=...)`` or
``until_s=...``, which leaves the LR schedule unchanged) and its EMA policy is evaluated there in its inference
variants on the same held-out seeds (starts never seen in the demonstrations):

* success (Wilson 95 % interval) and collision rate over closed-loop episodes, mean final chunk energy (EBT),
  mean NFE and re-planning wall time per chunk from the episode rows;
* costs: latency per chunk at batch 1 (median of ``predict_action`` calls on a real first observation window),
  NFE per chunk, training iterations per second of the run;
* on ``detour`` (last mark): the mode split of 256 chunks sampled from each of the first 10 eval starts (left /
  right / undecided by the env's ``side`` rule) and whether both sides get >= 25 % of the chunks per start;
* EBT / ``ebt-dsm`` (last mark): adaptive inference (``K<=4 stop_tol``: stop on the RMS step size; ``K<=2 E<qNN``:
  stop once the chunk's energy is below the NN-th percentile of the energy after one descent step on 512 training
  windows), and energy as uncertainty (final K=2 energy on 256 training windows vs the same windows with
  N(0, 0.5²) noise on the normalised observations, and closed-loop energies of successful vs failed episodes).

Variants: ``mlp``: one. ``diffusion``: DDIM-10 (every mark), DDPM-100 (last mark). ``ebt``, ``ebt-dsm``: K=1 and
K=2 (every mark), ``K<=4 stop_tol`` and ``K<=2 E<q{25,50,75}`` (last mark).

Why. EBT-Policy claims Diffusion-Policy-level success at a fraction of the inference cost. Its MSE-through-descent
training learns one action per state, so the claim can hold where the demonstrations are unimodal per state
(``sided``: ``embodia/DetourReach-Sided-v0``, each start has one side; ``pusher``: Pusher-v5; ``pusht``:
``embodia/PushT-v0``) and is not expected to hold where they are bimodal (``detour``: ``embodia/DetourReach-v0``,
both sides from every start), which is where ``ebt-dsm`` (ours, denoising score matching) is measured. The checks
at the end of the report state the claims as numbers.

Pusher-v5 is torque control at 20 Hz: cloned from plain expert rollouts, every policy stayed at 0.00-0.06 success
(compounding errors: the object ends ~0.2 m from the goal). Its demonstrations are therefore collected with DART
noise injection (``collect(action_noise=0.3)``: the env executes the expert's action plus noise, the files record the
expert's action), and its policies execute Ta = 4 of each chunk (``ENVS[...].policy_defaults``).

Usage::

    python bench/policy_compare.py                          # everything (hours on a 2-core machine)
    python bench/policy_compare.py --jobs 4                 # (env, policy, seed) jobs as Ray tasks
    python bench/policy_compare.py --envs sided pusher --policies ebt diffusion --seeds 0 1 2
    python bench/policy_compare.py --max-jobs 3             # a few jobs per session; rerun to fill the rest
    python bench/policy_compare.py --mark-unit s --marks 60 120 240 480    # marks in training seconds
    python bench/policy_compare.py --policy-config ebt='{"d_model": 128}' --redo
    python bench/policy_compare.py --quick --envs sided --policies mlp ebt  # smoke run (about a minute)
    python bench/policy_compare_table.py [bench/results/policy_compare.json]  # print the report again

Costs: latency and it/s are wall-clock figures of one torch thread; with ``--jobs N`` the jobs share the CPUs (and
on a shared machine, other work does too), so measure the cost checks with ``--jobs`` no larger than the number of
idle cores. Each record notes ``parallel_jobs``.

Filling across sessions: every finished job is written to the results file at once (atomically), keyed by
``env/policy/seed`` with its settings; a later run skips the jobs already there with the same settings (``--redo``
reruns them), so the same command can be repeated (with ``--max-jobs``) until every job is in. The report covers
every job in the file.

Writes: ``bench/results/policy_compare.json`` (``--quick``: ``policy_compare_quick.json``; or ``--out``), the demo
cache ``runs/policy_compare/demos/<env>_<n>[_noise<s>]/`` (``--cache-dir``; reused when present) and per-run TensorBoard
events and checkpoints under ``runs/policy_compare/<env>/<policy>/seed<k>/`` (``--quick``:
``runs/policy_compare_quick/``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import torch
from tqdm import tqdm

import embodia  # noqa: F401  (registers the environments)
from embodia.data.episodes import load_episodes
from embodia.data.windows import EpisodeWindows
from embodia.policies import Policy, make_policy
from embodia.runtime.collect import collect
from embodia.runtime.policy_eval import ObsWindow, evaluate_policy, mode_split
from embodia.runtime.rollout import make_env
from embodia.stats import wilson_interval
from embodia.training.config import TrainConfig
from embodia.training.trainer import POLICY_NAME, Trainer, TrainingDivergedError, TrainResult
from policy_compare_table import compute_checks, print_report

RESULTS_DIR = Path(__file__).resolve().parent / "results"
RUNS_ROOT = Path("runs")


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """One benchmark env: its id, default number of demonstrations and default policies."""

    env_id: str
    demos: int
    policies: tuple[str, ...]
    mode_split: bool = False
    action_noise: float = 0.0
    """DART noise of the demonstrations (``collect(action_noise=...)``; 0: plain expert rollouts)."""
    policy_defaults: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Config overrides every policy gets on this env (under ``--policy-config``)."""


ENVS: dict[str, EnvSpec] = {
    "sided": EnvSpec("embodia/DetourReach-Sided-v0", 200, ("mlp", "diffusion", "ebt")),
    "detour": EnvSpec("embodia/DetourReach-v0", 200, ("mlp", "diffusion", "ebt", "ebt-dsm"), mode_split=True),
    "pusht": EnvSpec("embodia/PushT-v0", 200, ("mlp", "diffusion", "ebt")),
    # Torque control at 20 Hz: cloned from plain expert rollouts every policy stayed at 0.00-0.06 (MLP up to 32k
    # steps, Ta 1-8); with DART demos (noise 0.3) MLP reached 0.54-0.64 at Ta 1-4 after 16k steps (one seed).
    "pusher": EnvSpec(
        "Pusher-v5", 200, ("mlp", "diffusion", "ebt"), action_noise=0.3, policy_defaults={"n_action_steps": 4}
    ),
}
POLICIES = ("mlp", "diffusion", "ebt", "ebt-dsm")
EBT_POLICIES = ("ebt", "ebt-dsm")
N_OBS_STEPS, HORIZON = 2, 16
EVAL_SEED0 = 1_000_000
"""Held-out seeds are EVAL_SEED0 + 2i (even: DetourReach-v0 pairs seeds 2k, 2k+1 on one start)."""
SPLIT_STARTS, SPLIT_CHUNKS, BOTH_SIDES_MIN = 10, 256, 0.25
CALIBRATION_WINDOWS, UNCERTAINTY_WINDOWS, OFF_DATA_STD = 512, 256, 0.5
ENERGY_QUANTILES = (25, 50, 75)
LATENCY_WARMUPS = 3
QUICK = {"demos": 20, "marks": [20, 40], "marks_s": [3, 6], "eval_episodes": 4, "seeds": [0], "latency_repeats": 3}


@dataclasses.dataclass
class Job:
    """One learning curve: an (env, policy, training seed) run and the settings that define its result."""

    env: str
    policy: str
    seed: int
    settings: dict[str, Any]
    cache_dir: str
    run_dir: str
    parallel: int = 1

    @property
    def key(self) -> str:
        """Key of the job in the results file."""
        return f"{self.env}/{self.policy}/{self.seed}"


# ------------------------------------------------------------------------------------------------ variants


def variants_for(policy: str, last: bool, stop_tol: float, thresholds: dict[str, float]) -> dict[str, dict]:
    """Inference variants (label -> config overrides) evaluated at a mark; ``last`` adds the last-mark ones."""
    if policy == "mlp":
        return {"mlp": {}}
    if policy == "diffusion":
        out = {"DDIM-10": {"inference": "ddim", "num_inference_steps": 10}}
        if last:
            out["DDPM-100"] = {"inference": "ddpm"}
        return out
    fixed = {"stop_tol": 0.0, "energy_threshold": None, "min_inference_steps": 1}
    out = {"K=1": {**fixed, "inference_steps": 1}, "K=2": {**fixed, "inference_steps": 2}}
    if last:
        out["K<=4 stop_tol"] = {**fixed, "inference_steps": 4, "stop_tol": stop_tol}
        for name, value in thresholds.items():
            out[f"K<=2 E<{name}"] = {**fixed, "inference_steps": 2, "energy_threshold": value}
    return out


def variant_of(policy: Policy, overrides: dict[str, Any]) -> Policy:
    """The trained ``policy`` with inference settings ``overrides`` (same weights, frozen like the EMA copy)."""
    if not overrides:
        return policy
    variant = make_policy(policy.name, config=dataclasses.replace(policy.config, **overrides))
    variant.load_state_dict(policy.state_dict())
    return variant.eval().requires_grad_(False)


# ------------------------------------------------------------------------------------------------ measurements


@contextmanager
def kept_torch_rng() -> Iterator[None]:
    """Restore torch's global RNG afterwards (evaluation reseeds it; training must go on as if uninterrupted)."""
    state = torch.get_rng_state()
    try:
        yield
    finally:
        torch.set_rng_state(state)


def first_window(env_id: str, seed: int, policy: Policy) -> np.ndarray:
    """The observation window ``(1, To, Do)`` a policy sees at the reset of episode ``seed``."""
    env = make_env(env_id)
    try:
        obs, _ = env.reset(seed=seed)
    finally:
        env.close()
    window = ObsWindow.for_policy(policy)
    window.reset(obs)
    return window.batch()["obs"]


def latency(policy: Policy, obs: np.ndarray, repeats: int) -> dict[str, float]:
    """Median wall time (ms) of ``predict_action`` at batch 1 after warm-ups, and NFE per chunk."""
    batch = {"obs": obs}
    times, nfe, energy_evals = [], [], []
    with torch.no_grad():
        for _ in range(LATENCY_WARMUPS):
            policy.predict_action(batch)
        for _ in range(repeats):
            t0 = time.perf_counter()
            policy.predict_action(batch)
            times.append(1e3 * (time.perf_counter() - t0))
            last = getattr(policy, "last_nfe", None)
            nfe.append(float(last.float().mean()) if isinstance(last, torch.Tensor) else 1.0)
            evals = getattr(policy, "last_energy_evals", None)  # EBT's energy rule: forward-only checks
            energy_evals.append(float(evals.float().mean()) if isinstance(evals, torch.Tensor) else 0.0)
    return {
        "latency_ms": round(statistics.median(times), 3),
        "latency_nfe": round(float(np.mean(nfe)), 3),
        "latency_energy_evals": round(float(np.mean(energy_evals)), 3),
    }


ROW_IDS = frozenset({"seed", "success"})
"""Eval-row keys that are not metrics to average (success has its own figures)."""


def _mean_of(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if key in r]
    return round(float(np.mean(values)), 5) if values else None


def episode_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Success (Wilson 95 %), collision rate, energy, NFE and plan time from :func:`evaluate_policy` rows."""
    success = [int(r.get("success", 0.0) > 0) for r in rows]
    k, n = sum(success), len(success)
    out: dict[str, Any] = {
        "success": round(k / n, 4),
        "successes": k,
        "episodes": n,
        "success_ci95": [round(x, 4) for x in wilson_interval(k, n)],
        "per_episode_success": success,
        "collision_rate": None,
        "energy_mean": _mean_of(rows, "energy_mean"),
        "nfe": _mean_of(rows, "nfe_mean"),
        "plan_ms": _mean_of(rows, "plan_ms_mean"),
    }
    numeric = sorted({k for r in rows for k, v in r.items() if isinstance(v, int | float) and k not in ROW_IDS})
    out["metric_means"] = {k: _mean_of(rows, k) for k in numeric}  # e.g. Pusher's object_goal_distance
    if all("collisions" in r for r in rows):
        out["collision_rate"] = round(float(np.mean([r["collisions"] > 0 for r in rows])), 4)
    if all("side" in r for r in rows):
        out["closed_loop_sides"] = {
            "left": round(float(np.mean([r["side"] > 0 for r in rows])), 4),
            "right": round(float(np.mean([r["side"] < 0 for r in rows])), 4),
        }
    return out


def split_figures(policy: Policy, env_id: str, seeds: list[int]) -> dict[str, Any]:
    """Mode split of sampled chunks (overall and per start), and the fraction of starts with both sides >= 0.25."""
    split = mode_split(policy, env_id, seeds, SPLIT_CHUNKS)
    per_start = [
        {
            "seed": p["seed"],
            **{k: round(p[k], 4) for k in ("left", "right", "undecided")},
            "both_sides": min(p["left"], p["right"]) >= BOTH_SIDES_MIN,
        }
        for p in split["per_start"]
    ]
    return {
        **{k: round(split[k], 4) for k in ("left", "right", "undecided")},
        "both_sides_frac": round(float(np.mean([p["both_sides"] for p in per_start])), 4),
        "per_start": per_start,
    }


def evaluate_variant(
    policy: Policy, job: Job, seeds: list[int], window: np.ndarray, with_split: bool
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Closed-loop figures, latency and (``with_split``) the mode split of one variant; also the episode rows."""
    t0 = time.perf_counter()
    env_id = job.settings["env_id"]
    rows = evaluate_policy(policy, env_id, seeds, record_latency=True)
    out = episode_figures(rows)
    out.update(latency(policy, window, job.settings["latency_repeats"]))
    if with_split:
        out["mode_split"] = split_figures(policy, env_id, seeds[:SPLIT_STARTS])
    out["eval_s"] = round(time.perf_counter() - t0, 2)
    return out, rows


def training_obs(windows: EpisodeWindows, n: int, seed: int) -> np.ndarray:
    """Observation windows ``(n', To, Do)`` of ``min(n, len)`` distinct training samples."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(windows), size=min(n, len(windows)), replace=False)
    return windows.get_batch(idx)["obs"]


def _descend_energy(policy: Policy, norm_obs: torch.Tensor, a0: torch.Tensor, steps: int) -> torch.Tensor:
    with torch.no_grad():
        return policy.descend(norm_obs, a0, steps=steps)["energy"]


def _normalised(policy: Policy, obs: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        return policy.normalize_batch({"obs": obs}, with_action=False)["obs"]


def _noise(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=generator)


def energy_thresholds(policy: Policy, windows: EpisodeWindows, seed: int) -> dict[str, float]:
    """Percentiles of the energy the ``energy_threshold`` rule reads after one step (``{"q25": ...}``).

    ``EBTPolicy.calibrate_energy_threshold`` on training windows, from N(0, I) starts drawn from ``seed``.
    """
    obs = training_obs(windows, CALIBRATION_WINDOWS, seed)
    probe = variant_of(policy, {"inference_steps": 2, "stop_tol": 0.0, "min_inference_steps": 1})
    out = {}
    for q in ENERGY_QUANTILES:
        probe.generator = torch.Generator().manual_seed(seed)  # the same starts for every quantile
        out[f"q{q}"] = round(probe.calibrate_energy_threshold(obs, q / 100), 6)
    return out


def _rank_correlation(x: torch.Tensor, y: torch.Tensor) -> float:
    """Spearman's rank correlation of two ``(N,)`` tensors (no ties expected: continuous values)."""
    rx, ry = x.argsort().argsort().double(), y.argsort().argsort().double()
    return float(torch.corrcoef(torch.stack([rx, ry]))[0, 1])


def energy_error_correlation(policy: Policy, windows: EpisodeWindows, seed: int) -> dict[str, float]:
    """Does the energy say where the chunk is wrong? Rank correlations on training windows with demo chunks.

    ``energy_error_spearman``: energy of the chunk after one step vs its MSE to the demonstrated chunk (what the
    energy rule needs: a high energy where the chunk is far off); ``energy_gain_spearman``: the same energy vs how
    much a second step lowers that MSE (where a second step pays).
    """
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(windows), size=min(UNCERTAINTY_WINDOWS, len(windows)), replace=False)
    batch = windows.get_batch(idx)
    with torch.no_grad():
        norm = policy.normalize_batch({"obs": batch["obs"], "action": batch["action"]}, with_action=True)
    target = norm["action"]  # (N, Tp, Da)
    a0 = _noise(tuple(target.shape), torch.Generator().manual_seed(seed))
    probe = variant_of(policy, {"stop_tol": 0.0, "energy_threshold": None})
    with torch.no_grad():
        one = probe.descend(norm["obs"], a0, steps=1)
        two = probe.descend(norm["obs"], a0, steps=2)
    err1 = (one["action"] - target).pow(2).mean(dim=(1, 2))  # (N,)
    err2 = (two["action"] - target).pow(2).mean(dim=(1, 2))  # (N,)
    return {
        "energy_error_spearman": round(_rank_correlation(one["energy"], err1), 4),
        "energy_gain_spearman": round(_rank_correlation(one["energy"], err1 - err2), 4),
        "mse_k1": round(float(err1.mean()), 6),
        "mse_k2": round(float(err2.mean()), 6),
    }


def energy_uncertainty(
    policy_k2: Policy, windows: EpisodeWindows, rows_k2: list[dict[str, Any]], seed: int
) -> dict[str, Any]:
    """Final K=2 energy on training windows vs off-data windows, and in successful vs failed episodes."""
    generator = torch.Generator().manual_seed(seed + 1)
    norm = _normalised(policy_k2, training_obs(windows, UNCERTAINTY_WINDOWS, seed + 1))
    c = policy_k2.config
    a0 = _noise((len(norm), c.horizon, c.action_dim), generator)
    off = norm + OFF_DATA_STD * _noise(tuple(norm.shape), generator)
    e_in = _descend_energy(policy_k2, norm, a0, steps=2)
    e_off = _descend_energy(policy_k2, off, a0, steps=2)
    error_corr = energy_error_correlation(policy_k2, windows, seed + 2)
    ok = [r["energy_mean"] for r in rows_k2 if "energy_mean" in r and r.get("success", 0.0) > 0]
    failed = [r["energy_mean"] for r in rows_k2 if "energy_mean" in r and not r.get("success", 0.0) > 0]
    return {
        "windows": len(norm),
        "noise_std": OFF_DATA_STD,
        "in_dist": round(float(e_in.mean()), 6),
        "off_data": round(float(e_off.mean()), 6),
        "frac_off_higher": round(float((e_off > e_in).float().mean()), 4),
        **error_corr,
        "closed_loop_success": round(float(np.mean(ok)), 6) if ok else None,
        "closed_loop_failed": round(float(np.mean(failed)), 6) if failed else None,
        "failed_episodes": len(failed),
    }


# ------------------------------------------------------------------------------------------------ one job


def load_windows(job: Job) -> EpisodeWindows:
    """Training windows from the job's demo cache."""
    cfg = job.settings["policy_config"]
    return EpisodeWindows(
        load_episodes(job.cache_dir),
        n_obs_steps=cfg.get("n_obs_steps", N_OBS_STEPS),
        horizon=cfg.get("horizon", HORIZON),
        obs_keys=None,  # every numeric key ("state" for embodia's envs) or "obs" for Box observations (Pusher)
    )


def build_policy(job: Job, windows: EpisodeWindows) -> Policy:
    """The job's policy from its training seed, config overrides and the data's sizes, normaliser fitted."""
    torch.manual_seed(job.seed)
    sizes = {
        "obs_dim": windows.obs_dim,
        "action_dim": windows.action_dim,
        "obs_keys": windows.obs_keys,
        "n_obs_steps": windows.n_obs_steps,
        "horizon": windows.horizon,
    }
    policy = make_policy(job.policy, **{**job.settings["policy_config"], **sizes})
    return policy.fit_normalizer(windows.obs, windows.actions)


def train_config(job: Job) -> TrainConfig:
    """One run whose budget is the last mark (steps or seconds)."""
    s = job.settings
    budget = {"steps": s["marks"][-1]} if s["mark_unit"] == "steps" else {"minutes": s["marks"][-1] / 60.0}
    return TrainConfig(
        **budget, lr=s["lr"], batch_size=s["batch_size"], warmup_steps=s["warmup"], seed=job.seed, log_every=25
    )


def train_figures(result: TrainResult, mark: float) -> dict[str, Any]:
    """Steps, training seconds, it/s (whole run so far and this segment) and the last logged loss at a mark."""
    return {
        "mark": mark,
        "steps": result.steps,
        "seconds": round(result.elapsed_s, 2),
        "it_per_s": round(result.steps / result.elapsed_s, 3) if result.elapsed_s > 0 else None,
        "segment_it_per_s": round(result.it_per_s, 3),
        "loss": round(result.last_terms.get("loss", float("nan")), 6),
    }


def evaluate_mark(
    job: Job, result: TrainResult, windows: EpisodeWindows, window: np.ndarray, mark: float, last: bool
) -> dict[str, Any]:
    """Evaluate the run's EMA policy at one mark in every inference variant due there."""
    policy, s = result.policy, job.settings
    seeds = [EVAL_SEED0 + 2 * i for i in range(s["eval_episodes"])]
    entry = train_figures(result, mark)
    is_ebt = job.policy in EBT_POLICIES
    thresholds = energy_thresholds(policy, windows, job.seed) if last and is_ebt else {}
    if thresholds:
        entry["energy_thresholds"] = thresholds
    entry["variants"] = {}
    for label, overrides in variants_for(job.policy, last, s["stop_tol"], thresholds).items():
        variant = variant_of(policy, overrides)
        with_split = last and s["mode_split"]
        entry["variants"][label], rows = evaluate_variant(variant, job, seeds, window, with_split)
        if last and is_ebt and label == "K=2":
            entry["energy_uncertainty"] = energy_uncertainty(variant, windows, rows, job.seed)
    return entry


def mark_line(job: Job, entry: dict[str, Any]) -> str:
    """One progress line per finished mark."""
    parts = [
        f"[{job.key}] step {entry['steps']} ({entry['seconds']:.0f} s, {entry['it_per_s'] or 0:.1f} it/s, "
        f"loss {entry['loss']:.4g})"
    ]
    for label, v in entry["variants"].items():
        parts.append(f"{label} {v['success']:.2f} {v['latency_ms']:.1f}ms NFE{v['latency_nfe']:.1f}")
    return " | ".join(parts)


def run_job(job: Job) -> dict[str, Any]:
    """Train one learning curve, evaluating at every mark; returns the job's record for the results file."""
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    windows = load_windows(job)
    policy = build_policy(job, windows)
    run_dir = Path(job.run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)  # a rerun must not mix its TensorBoard events with old ones
    trainer = Trainer(policy, windows, train_config(job), run_dir=run_dir, progress=False)
    window = first_window(job.settings["env_id"], EVAL_SEED0, policy)
    marks, unit = job.settings["marks"], job.settings["mark_unit"]
    entries, diverged = [], None
    for i, mark in enumerate(marks):
        try:
            result = trainer.train(until_step=mark) if unit == "steps" else trainer.train(until_s=mark)
        except TrainingDivergedError as err:  # a result too: recorded, not retried
            diverged = str(err)
            tqdm.write(f"[{job.key}] diverged: {diverged}")
            break
        with kept_torch_rng():
            entry = evaluate_mark(job, result, windows, window, mark, last=i == len(marks) - 1)
        entries.append(entry)
        tqdm.write(mark_line(job, entry))
    return {
        "env": job.env,
        "policy": job.policy,
        "seed": job.seed,
        "settings": job.settings,
        "parameters": policy.num_parameters(),
        "demos": {"episodes": windows.num_episodes, "samples": len(windows)},
        "marks": entries,
        "diverged": diverged,
        "job_s": round(time.perf_counter() - t0, 1),
        "machine": {
            "platform": platform.platform(),
            "node": platform.node(),
            "cpus": os.cpu_count(),
            "parallel_jobs": job.parallel,
        },
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


ADAPTIVE_PREFIX = "K<="
"""Labels of the adaptive-compute variants (``variants_for``)."""


def reevaluate_adaptive(job: Job, record: dict[str, Any]) -> dict[str, Any]:
    """Redo a finished EBT job's last-mark adaptive rows and offline energy figures from its saved ``policy.pt``.

    For a change to the stop rules (inference only): the thresholds are recalibrated, every ``K<=`` variant is
    evaluated again on the same held-out seeds, and the offline energy figures are recomputed; the fixed-K rows,
    the learning curve and the closed-loop energies of the K=2 episodes are kept. The record notes when.
    """
    torch.set_num_threads(1)
    policy = Policy.load(Path(job.run_dir) / POLICY_NAME).eval().requires_grad_(False)
    windows = load_windows(job)
    window = first_window(job.settings["env_id"], EVAL_SEED0, policy)
    entry = record["marks"][-1]
    seeds = [EVAL_SEED0 + 2 * i for i in range(job.settings["eval_episodes"])]
    thresholds = energy_thresholds(policy, windows, job.seed)
    entry["energy_thresholds"] = thresholds
    for label, overrides in variants_for(job.policy, True, job.settings["stop_tol"], thresholds).items():
        if label.startswith(ADAPTIVE_PREFIX):
            variant = variant_of(policy, overrides)
            entry["variants"][label], _ = evaluate_variant(variant, job, seeds, window, job.settings["mode_split"])
            tqdm.write(
                f"[{job.key}] {label}: {entry['variants'][label]['success']:.2f} NFE {entry['variants'][label]['nfe']}"
            )
    closed_loop = {k: v for k, v in entry.get("energy_uncertainty", {}).items() if k.startswith(("closed", "failed"))}
    k2 = variant_of(policy, variants_for(job.policy, False, 0.0, {})["K=2"])
    entry["energy_uncertainty"] = {**energy_uncertainty(k2, windows, [], job.seed), **closed_loop}
    record["reevaluated_adaptive"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return record


# ------------------------------------------------------------------------------------------------ results file


def load_results(path: Path) -> dict[str, Any]:
    """The results file (``{"jobs": {key: record}, ...}``); an older layout is moved aside to ``*.legacy.json``."""
    if not path.exists():
        return {"jobs": {}}
    data = json.loads(path.read_text())
    if "jobs" not in data:
        legacy = path.with_suffix(".legacy.json")
        os.replace(path, legacy)
        print(f"{path} has the old layout: moved to {legacy}")
        return {"jobs": {}}
    return data


def write_results(path: Path, data: dict[str, Any]) -> None:
    """Write the results file atomically (a temporary file, then ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def save_job(path: Path, record: dict[str, Any]) -> None:
    """Add one finished job to the file (re-read first, so jobs written meanwhile by another run are kept)."""
    data = load_results(path)
    data["jobs"][f"{record['env']}/{record['policy']}/{record['seed']}"] = record
    data["updated"] = time.strftime("%Y-%m-%d %H:%M:%S")
    write_results(path, data)


def is_done(data: dict[str, Any], job: Job) -> bool:
    """Whether the file already holds ``job`` with the same settings."""
    record = data["jobs"].get(job.key)
    return record is not None and record.get("settings") == job.settings


# ------------------------------------------------------------------------------------------------ demos


def ensure_demos(env_id: str, n: int, cache_dir: Path, action_noise: float = 0.0) -> None:
    """Collect ``n`` expert demonstrations of ``env_id`` into ``cache_dir`` unless a complete set is there."""
    summary = cache_dir / "summary.json"
    if summary.exists():
        info = json.loads(summary.read_text())
        if info.get("env") == env_id and info.get("episodes") == n and info.get("action_noise", 0.0) == action_noise:
            return
    noise = f" (DART noise {action_noise})" if action_noise else ""
    print(f"collecting {n} expert demonstrations of {env_id}{noise} into {cache_dir}")
    collect(env_id, n, cache_dir, seed=0, overwrite=True, progress=True, action_noise=action_noise)


# ------------------------------------------------------------------------------------------------ jobs


def job_settings(args: argparse.Namespace, env: str, policy: str) -> dict[str, Any]:
    """Everything that defines a job's result (a job with other settings in the file is run again)."""
    spec = ENVS[env]
    settings = {
        "env_id": spec.env_id,
        "demos": args.demos[env],
        "marks": args.marks,
        "mark_unit": args.mark_unit,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "warmup": args.warmup,
        "eval_episodes": args.eval_episodes,
        "latency_repeats": args.latency_repeats,
        "stop_tol": args.stop_tol,
        "mode_split": spec.mode_split,
        "policy_config": {**spec.policy_defaults, **args.policy_config.get(policy, {})},
    }
    if spec.action_noise:  # only where used: records made without it keep their settings
        settings["action_noise"] = spec.action_noise
    return json.loads(json.dumps(settings))  # as it reads back from the file


def make_jobs(args: argparse.Namespace) -> list[Job]:
    """Every (env, policy, seed) job, seed-major (a partial fill has whole seeds)."""
    runs = RUNS_ROOT / ("policy_compare_quick" if args.quick else "policy_compare")
    jobs = []
    for seed in args.seeds:
        for env in args.envs:
            for policy in args.policies or ENVS[env].policies:
                cache = args.cache_dir or RUNS_ROOT / "policy_compare" / "demos"
                noise = ENVS[env].action_noise
                cache_name = f"{env}_{args.demos[env]}" + (f"_noise{noise}" if noise else "")
                jobs.append(
                    Job(
                        env,
                        policy,
                        seed,
                        job_settings(args, env, policy),
                        cache_dir=str((cache / cache_name).resolve()),
                        run_dir=str((runs / env / policy / f"seed{seed}").resolve()),
                        parallel=max(1, args.jobs),
                    )
                )
    return jobs


def run_in_process(jobs: list[Job], path: Path) -> list[str]:
    """Run the jobs one after the other; returns the keys of the failed ones."""
    failed = []
    for job in tqdm(jobs, desc="jobs", unit="job", dynamic_ncols=True):
        try:
            save_job(path, run_job(job))
        except Exception:
            tqdm.write(f"[{job.key}] FAILED\n{traceback.format_exc()}")
            failed.append(job.key)
    return failed


def run_on_ray(jobs: list[Job], path: Path, workers: int) -> list[str]:
    """Run the jobs as Ray tasks (one CPU each), saving each as it finishes; returns the failed keys."""
    import ray

    ray.init(num_cpus=workers, include_dashboard=False)
    remote = ray.remote(num_cpus=1)(run_job)
    pending = {remote.remote(job): job for job in jobs}
    failed = []
    bar = tqdm(total=len(jobs), desc="jobs", unit="job", dynamic_ncols=True)
    try:
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ref)
            try:
                save_job(path, ray.get(ref))
            except Exception:
                tqdm.write(f"[{job.key}] FAILED\n{traceback.format_exc()}")
                failed.append(job.key)
            bar.update()
    finally:
        bar.close()
        ray.shutdown()
    return failed


# ------------------------------------------------------------------------------------------------ side-by-side costs

SIDE_BY_SIDE_VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "mlp": {"mlp": {}},
    "diffusion": {"DDIM-10": {"inference": "ddim", "num_inference_steps": 10}},
    "ebt": {"K=1": {"inference_steps": 1}, "K=2": {"inference_steps": 2}},
    "ebt-dsm": {"K=2": {"inference_steps": 2}},
}
"""The fixed-compute variants whose batch-1 latency is measured side by side."""
SIDE_BY_SIDE_ADAPTIVE = tuple(f"q{q}" for q in ENERGY_QUANTILES)
"""Energy-rule variants (``K<=2 E<qNN``, thresholds from the seed-0 record) timed alongside: their cost depends
on the chunk, so the rounds cycle through several start windows."""
SIDE_BY_SIDE_ROUNDS, SIDE_BY_SIDE_WINDOWS = 64, 8
"""Interleaved rounds: every variant is timed once per round (so load changes hit all of them alike), round r on
the first observation window of held-out start r mod SIDE_BY_SIDE_WINDOWS."""


def side_by_side_latency(data: dict[str, Any], envs: list[str]) -> dict[str, Any]:
    """Median batch-1 ``predict_action`` ms of each env's trained seed-0 policies, timed interleaved in one process.

    Each job's own latency column was measured in its own process at its own time (other jobs running or not);
    the ratio checks use these figures instead. Policies are loaded from the runs' ``policy.pt`` (EMA weights).
    """
    out: dict[str, Any] = {}
    for env in envs:
        variants: dict[str, Policy] = {}
        for name, labels in SIDE_BY_SIDE_VARIANTS.items():
            record = data["jobs"].get(f"{env}/{name}/0")
            path = RUNS_ROOT / "policy_compare" / env / name / "seed0" / POLICY_NAME
            if record is None or not path.is_file():
                continue
            trained = Policy.load(path)
            for label, overrides in labels.items():
                variants[f"{name} {label}"] = variant_of(trained, overrides) if overrides else trained
            thresholds = (record["marks"][-1].get("energy_thresholds") or {}) if record["marks"] else {}
            for q in SIDE_BY_SIDE_ADAPTIVE:
                if q in thresholds:
                    overrides = {"inference_steps": 2, "stop_tol": 0.0, "energy_threshold": thresholds[q]}
                    variants[f"{name} K<=2 E<{q}"] = variant_of(trained, overrides)
        if not variants:
            continue
        first = next(iter(variants.values()))
        windows = [first_window(ENVS[env].env_id, EVAL_SEED0 + 2 * i, first) for i in range(SIDE_BY_SIDE_WINDOWS)]
        times: dict[str, list[float]] = {label: [] for label in variants}
        with torch.no_grad():
            for policy in variants.values():
                for _ in range(LATENCY_WARMUPS):
                    policy.predict_action({"obs": windows[0]})
            for r in range(SIDE_BY_SIDE_ROUNDS):
                window = windows[r % SIDE_BY_SIDE_WINDOWS]
                for label, policy in variants.items():
                    if hasattr(policy, "generator"):  # the same noise draw for every variant in a round
                        policy.generator = torch.Generator().manual_seed(r)
                    t0 = time.perf_counter()
                    policy.predict_action({"obs": window})
                    times[label].append(1e3 * (time.perf_counter() - t0))
        out[env] = {label: round(statistics.median(t), 3) for label, t in times.items()}
        print(f"side-by-side latency {env}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in out[env].items()))
    return out


# ------------------------------------------------------------------------------------------------ command line


def parse_policy_config(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["ebt={...}", ...]`` -> ``{"ebt": {...}}`` (config overrides passed to ``make_policy``)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or name not in POLICIES:
            raise SystemExit(f"--policy-config wants NAME=JSON with NAME in {POLICIES}, got {item!r}")
        value = json.loads(text)
        if not isinstance(value, dict):
            raise SystemExit(f"--policy-config {name}: the JSON must be an object, got {text!r}")
        out[name] = {**out.get(name, {}), **value}
    return out


def parse_demos(items: list[str]) -> dict[str, int]:
    """``["detour=100", ...]`` over the env defaults."""
    out = {key: spec.demos for key, spec in ENVS.items()}
    for item in items:
        key, sep, n = item.partition("=")
        if not sep or key not in ENVS or not n.isdigit() or int(n) < 1:
            raise SystemExit(f"--demos wants ENV=N with ENV in {list(ENVS)}, got {item!r}")
        out[key] = int(n)
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--envs", nargs="+", default=list(ENVS), choices=list(ENVS))
    p.add_argument("--policies", nargs="+", choices=POLICIES, help="on every env (default: each env's own list)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="training seeds")
    p.add_argument(
        "--marks", nargs="+", type=float, default=[1000, 2000, 4000, 8000], help="eval points, last = budget"
    )
    p.add_argument("--mark-unit", choices=["steps", "s"], default="steps", help="marks in steps or training seconds")
    p.add_argument("--demos", nargs="*", default=[], metavar="ENV=N", help="demonstrations per env (default 200)")
    p.add_argument("--cache-dir", type=Path, default=None, help="demo cache root (runs/policy_compare/demos)")
    p.add_argument("--policy-config", action="append", default=[], metavar="NAME=JSON", help="make_policy overrides")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--eval-episodes", type=int, default=50)
    p.add_argument("--latency-repeats", type=int, default=30)
    p.add_argument("--stop-tol", type=float, default=0.05, help="RMS step size of the K<=4 stop_tol variant")
    p.add_argument("--jobs", type=int, default=1, help="> 1: run the jobs as Ray tasks on this many CPUs")
    p.add_argument("--max-jobs", type=int, default=None, help="run at most this many pending jobs this session")
    p.add_argument("--redo", action="store_true", help="rerun jobs already in the results file")
    p.add_argument("--quick", action="store_true", help="smoke run: 20 demos, marks 20 40, 4 episodes, 1 seed")
    p.add_argument(
        "--latency-only",
        action="store_true",
        help="run no job; re-time every env's trained seed-0 policies side by side (the latency checks use it)",
    )
    p.add_argument(
        "--reeval-adaptive",
        action="store_true",
        help="train nothing; redo the finished EBT jobs' adaptive rows and energy figures from their policy.pt",
    )
    p.add_argument("--out", type=Path, default=None, help="results file (bench/results/policy_compare.json)")
    args = p.parse_args(argv)
    args.demos = parse_demos(args.demos)
    args.policy_config = parse_policy_config(args.policy_config)
    if args.quick:
        args.demos = dict.fromkeys(ENVS, QUICK["demos"])
        args.marks = QUICK["marks"] if args.mark_unit == "steps" else QUICK["marks_s"]
        args.eval_episodes = QUICK["eval_episodes"]
        args.seeds, args.latency_repeats = QUICK["seeds"], QUICK["latency_repeats"]
    if args.mark_unit == "steps":
        args.marks = [int(m) for m in args.marks]
    if sorted(set(args.marks)) != list(args.marks) or args.marks[0] <= 0:
        p.error(f"--marks must be positive and increasing, got {args.marks}")
    args.out = args.out or RESULTS_DIR / ("policy_compare_quick.json" if args.quick else "policy_compare.json")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    jobs = make_jobs(args)
    data = load_results(args.out)
    pending = [job for job in jobs if args.redo or not is_done(data, job)]
    print(f"{len(jobs)} jobs, {len(jobs) - len(pending)} already in {args.out} (--redo reruns them)")
    pending = pending[: args.max_jobs] if args.max_jobs is not None else pending
    pending = [] if args.latency_only or args.reeval_adaptive else pending
    if args.reeval_adaptive:
        for job in jobs:
            record = data["jobs"].get(job.key)
            saved = Path(job.run_dir) / POLICY_NAME
            if job.policy in EBT_POLICIES and is_done(data, job) and saved.is_file():
                save_job(args.out, reevaluate_adaptive(job, record))
    for job in {j.cache_dir: j for j in pending}.values():
        ensure_demos(
            job.settings["env_id"], job.settings["demos"], Path(job.cache_dir), job.settings.get("action_noise", 0.0)
        )
    if pending:
        run = run_on_ray if args.jobs > 1 else None
        failed = run(pending, args.out, args.jobs) if run else run_in_process(pending, args.out)
    else:
        failed = []
    data = load_results(args.out)
    envs = sorted({key.split("/")[0] for key in data["jobs"]} if args.latency_only else set(args.envs))
    data.setdefault("latency_side_by_side", {}).update(side_by_side_latency(data, envs))
    data["checks"] = compute_checks(data)
    write_results(args.out, data)
    print_report(data)
    print(f"\n{len(pending) - len(failed)} jobs run, {len(failed)} failed {failed or ''}")
    print(f"wrote {args.out} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
