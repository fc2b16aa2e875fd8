"""Closed-loop evaluation of a :class:`~embodia.policies.base.Policy` in a live env, and its mode statistics.

The evaluator is the last stage of the data flow (episodes -> dataset -> trainer -> checkpoint -> evaluator):
it feeds a policy the same observation windows it was trained on and records the env's episode metrics.

* :class:`~embodia.runtime.obs_window.ObsWindow` (re-exported here) keeps the last To flattened observations of
  one episode exactly as :class:`~embodia.data.windows.EpisodeWindows` cuts them from episode files.
* :func:`evaluate_policy` runs one episode per seed with a
  :class:`~embodia.runtime.policy_controller.PolicyController` (``policy.select_action``: execute
  ``chunk[To-1 : To-1+Ta]``, then re-plan) without writing files, and returns one row per episode: the env's
  ``info["metrics"]`` plus the re-planning cost (wall time of the calls that produced a new chunk, network
  evaluations per chunk).
* :func:`summarise_episodes` turns the rows into means with 95 % confidence intervals.
* :func:`mode_split` measures, for an env with a mode rule (:class:`~embodia.envs.mode_rule.ModeRule`, e.g.
  ``embodia/DetourReach-v0``: which way around the obstacle), which mode the chunks a policy samples from a
  fixed start take (left / right / undecided, by the env's own rule): a multimodal policy splits about evenly
  between left and right, a mode-averaging one drives head-on.

Every episode (and every start of :func:`mode_split`) seeds torch's global RNG with its env seed, so the
results of a stochastic policy do not depend on the order or number of seeds. A policy's own ``generator``
(diffusion, EBT), when set, is not reseeded.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from embodia.envs.mode_rule import ModeRule
from embodia.policies.base import Policy
from embodia.runtime.episode import run_episode
from embodia.runtime.obs_window import ObsWindow
from embodia.runtime.policy_controller import PolicyController
from embodia.runtime.rollout import make_env
from embodia.stats import summarise_metrics

__all__ = [
    "RATE_KEYS",
    "ObsWindow",
    "evaluate_policy",
    "mode_split",
    "summarise_episodes",
]

RATE_KEYS = frozenset({"success", "collided", "side_left", "side_right", "sim_unstable", "tc"})
"""Per-episode metrics that are rates (0/1): summarised with Wilson intervals, the rest with t-intervals."""


# ------------------------------------------------------------------------------------------------ closed loop


def evaluate_policy(
    policy: Policy,
    env_id: str,
    seeds: Iterable[int],
    *,
    env_kwargs: Mapping[str, Any] | None = None,
    progress: bool = False,
    record_latency: bool = True,
) -> list[dict[str, Any]]:
    """Run one closed-loop episode per seed and return the per-episode metrics.

    One env (``gym.make(env_id, **env_kwargs)``) serves all seeds. Per seed (``run_episode``):
    ``env.reset(seed=seed)``, ``torch.manual_seed(seed)``, ``policy.reset()``, then ``policy.select_action`` on the
    :class:`ObsWindow` under ``torch.no_grad()`` with the policy in eval mode (its previous mode is restored
    afterwards) until the episode terminates or is truncated.

    Args:
        policy: A policy with a fitted normaliser.
        env_id: Registered Gymnasium id, e.g. ``"embodia/DetourReach-v0"``.
        seeds: Env seeds, one episode each.
        env_kwargs: Keyword arguments for ``gym.make``.
        progress: Show a tqdm bar over the episodes.
        record_latency: Add the wall-time keys ``plan_ms_mean`` / ``plan_ms_max`` (the only nondeterministic
            ones).

    Returns:
        One dict per seed, in order: ``seed``, ``steps`` (int), the env's ``info["metrics"]`` as floats (for
        DetourReach: success, collisions, final_distance, path_length, min_clearance, side), ``return``,
        ``n_plans`` (re-planning calls), ``nfe_mean`` (network evaluations per chunk, averaged over the
        episode's plans: the mean of ``policy.last_nfe`` where the policy has it, else 1, one forward pass),
        for energy-based policies ``energy_mean`` / ``energy_max`` (final energy of the episode's chunks) and,
        with ``record_latency``, ``plan_ms_mean`` / ``plan_ms_max``: wall time, ms, of the ``select_action``
        calls that predicted a new chunk (including the copy of the action to the host).

    Raises:
        ValueError: Bad ``env_kwargs`` (named), or an observation that does not fit the policy (see
            :class:`ObsWindow`).
    """
    seeds = [_check_seed(s) for s in seeds]
    env = make_env(env_id, env_kwargs)
    was_training = policy.training
    controller = PolicyController(policy)  # puts the policy in eval mode
    rows = []
    try:
        bar = tqdm(seeds, desc=f"eval {env_id}", unit="ep", disable=not progress, dynamic_ncols=True)
        for seed in bar:
            rows.append(_episode_row(controller, env, seed, record_latency))
            bar.set_postfix(success=f"{np.mean([r.get('success', 0.0) for r in rows]):.2f}")
    finally:
        env.close()
        policy.train(was_training)
    return rows


def _episode_row(controller: PolicyController, env: gym.Env, seed: int, record_latency: bool) -> dict[str, Any]:
    """One closed-loop episode (:func:`~embodia.runtime.episode.run_episode`) as a row of :func:`evaluate_policy`."""
    run = run_episode(env, controller, seed)
    row: dict[str, Any] = {"seed": seed, **run.metrics, "steps": run.steps}
    figures = controller.info()
    row["n_plans"] = figures["plans"]
    row["nfe_mean"] = figures["nfe_mean"]
    for key in ("energy_mean", "energy_max"):  # energy-based policies: final energy of the chunks
        if key in figures:
            row[key] = figures[key]
    if record_latency:
        row["plan_ms_mean"] = figures["plan_ms_mean"]
        row["plan_ms_max"] = figures["plan_ms_max"]
    return row


def summarise_episodes(
    rows: Sequence[Mapping[str, Any]], rate_keys: Collection[str] = RATE_KEYS
) -> dict[str, dict[str, Any]]:
    """Means with 95 % confidence intervals of :func:`evaluate_policy` rows.

    Derived per-episode rates are added first: ``collided`` (``collisions > 0``) and, where rows have
    ``side``, ``side_left`` (``side == +1``) and ``side_right`` (``side == -1``). ``seed`` is left out.

    Args:
        rows: One mapping per episode.
        rate_keys: Metrics summarised as rates (Wilson score interval); every other one gets a Student-t
            interval (see :func:`embodia.stats.summarise_metrics`).

    Returns:
        ``{metric: {"mean": float, "ci95": [lo, hi], "n": int}}``, keys sorted; ``{}`` for no rows.
    """
    per_episode = []
    for row in rows:
        r = {k: v for k, v in row.items() if k != "seed"}
        if "collisions" in row:
            r["collided"] = float(row["collisions"] > 0)
        if "side" in row:
            r["side_left"] = float(row["side"] > 0)
            r["side_right"] = float(row["side"] < 0)
        per_episode.append(r)
    return summarise_metrics(per_episode, rate_keys=rate_keys)


# ------------------------------------------------------------------------------------------------ mode split


def mode_split(
    policy: Policy,
    env_id: str,
    seeds: Iterable[int],
    n_chunks: int = 256,
    *,
    env_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Fractions of sampled first chunks in each mode (left / right / undecided), from fixed starts.

    Per seed: ``torch.manual_seed(seed)``, ``env.reset(seed=seed)``, the first observation window
    (:class:`ObsWindow`) repeated to a batch of ``n_chunks``, one ``policy.predict_action`` call (eval mode, no
    grad) and the env's ``chunk_modes`` of the ``n_chunks`` chunks from the start
    (:class:`~embodia.envs.mode_rule.ModeRule`; for DetourReach the side of the obstacle, the env's ``side``
    rule). A deterministic policy gives the same chunk ``n_chunks`` times.

    Args:
        policy: A policy with a fitted normaliser, whose actions are the env's actions.
        env_id: An env whose unwrapped env is a :class:`~embodia.envs.mode_rule.ModeRule`
            (``"embodia/DetourReach-v0"``).
        seeds: Env seeds, one start each (with paired starts, seeds ``2k`` and ``2k + 1`` share a start).
        n_chunks: Chunks sampled per start (one batch).
        env_kwargs: Keyword arguments for ``gym.make``.

    Returns:
        ``{"left", "right", "undecided"}`` fractions over all chunks of all starts (they sum to 1),
        ``"n_chunks"`` (per start), ``"nfe_mean"`` (as in :func:`evaluate_policy`), and ``"per_start"``: one
        ``{"seed", **env.mode_origin(), "left", "right", "undecided"}`` per seed (DetourReach: ``start`` and
        ``goal`` as ``[x, y]`` lists).

    Raises:
        ValueError: No seeds, ``n_chunks`` < 1, or an env that defines no mode rule.
    """
    if isinstance(n_chunks, bool) or not isinstance(n_chunks, int | np.integer) or n_chunks < 1:
        raise ValueError(f"n_chunks must be an integer >= 1, got {n_chunks!r}")
    seeds = [_check_seed(s) for s in seeds]
    if not seeds:
        raise ValueError("mode_split needs at least one seed")
    env = make_env(env_id, env_kwargs)
    was_training = policy.training
    policy.eval()
    per_start, nfe = [], []
    try:
        rule = env.unwrapped
        if not isinstance(rule, ModeRule):
            raise ValueError(f"{env_id} defines no mode rule (chunk_modes / mode_origin), mode_split cannot use it")
        window = ObsWindow.for_policy(policy)
        for seed in seeds:
            torch.manual_seed(seed)
            obs, _ = env.reset(seed=seed)
            window.reset(obs)
            batch = {"obs": np.repeat(window.batch()["obs"], n_chunks, axis=0)}  # (n_chunks, To, Do)
            with torch.no_grad():
                chunks = policy.predict_action(batch)  # (n_chunks, Tp, Da)
            last_nfe = policy.last_nfe
            nfe.append(float(last_nfe.float().mean()) if isinstance(last_nfe, torch.Tensor) else 1.0)
            modes = rule.chunk_modes(chunks, policy.config.n_obs_steps - 1)  # (n_chunks,)
            per_start.append({"seed": seed, **rule.mode_origin(), **_fractions(modes)})
    finally:
        env.close()
        policy.train(was_training)
    totals = {k: float(np.mean([p[k] for p in per_start])) for k in ("left", "right", "undecided")}
    return {**totals, "n_chunks": int(n_chunks), "nfe_mean": float(np.mean(nfe)), "per_start": per_start}


def _fractions(modes: np.ndarray) -> dict[str, float]:
    """``{"left", "right", "undecided"}`` fractions of ``modes`` ``(N,)`` in {+1, -1, 0}."""
    return {
        "left": float(np.mean(modes > 0)),
        "right": float(np.mean(modes < 0)),
        "undecided": float(np.mean(modes == 0)),
    }


# ------------------------------------------------------------------------------------------------ helpers


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seeds must be integers >= 0, got {seed!r}")
    return int(seed)
