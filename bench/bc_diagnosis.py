"""Why does a cloned policy fail? Offline checks of a trained policy against held-out demonstrations.

Rule 8 of the house: a learned row at 0 is a defect to diagnose. This script answers, for one env's
demonstrations and one trained policy file, the questions that separate the causes:

1. **Is the action a function of the observation window at all?** A nearest-neighbour predictor: for each
   held-out window, the label of the closest training window (normalised observation window, Euclidean). Its R²
   against the held-out label bounds what any policy can read from the observation with this much data; a low
   value means the expert's choice depends on something the window does not show (its internal state, a random
   mode) or changes abruptly between nearby states.
2. **Does the policy condition on its input?** R² and per-dimension correlation of the policy's action for the
   current step with the demonstrated one, on training windows (fit) and held-out windows (generalisation).
3. **How abrupt are the labels?** The fraction of consecutive demonstrated steps whose action jumps by more than
   half the action range (a discrete switch of push, side or phase).

Example (PushT, the MLP of ``embodia train policy:mlp``)::

    python bench/bc_diagnosis.py --train runs/pusht/demos --heldout runs/pusht/heldout
        --policy runs/pusht/mlp/policy.pt --out bench/results/bc_diagnosis_pusht.json

Prints a table and writes JSON. Runs on one thread in seconds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from embodia.data.episodes import load_episodes
from embodia.data.windows import EpisodeWindows
from embodia.policies.base import Policy

MAX_HELDOUT_WINDOWS = 4000
"""Held-out windows scored (a random subset when there are more)."""


def r2(prediction: np.ndarray, target: np.ndarray) -> float:
    """Coefficient of determination over all entries of ``(N, Da)`` arrays (per-dim variance pooled)."""
    residual = float(((prediction - target) ** 2).sum())
    total = float(((target - target.mean(axis=0)) ** 2).sum())
    return 1.0 - residual / max(total, 1e-12)


def correlations(prediction: np.ndarray, target: np.ndarray) -> list[float]:
    """Pearson correlation per action dimension of ``(N, Da)`` arrays."""
    return [float(np.corrcoef(prediction[:, d], target[:, d])[0, 1]) for d in range(target.shape[1])]


def current_labels(windows: EpisodeWindows, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Observation windows ``(N, To, Do)`` and the demonstrated action of the current step ``(N, Da)``."""
    batch = windows.get_batch(idx)
    return batch["obs"], batch["action"][:, windows.n_obs_steps - 1]


def policy_actions(policy: Policy, obs: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """The policy's action for the current step ``(N, Da)`` of each observation window ``(N, To, Do)``."""
    torch.manual_seed(0)
    current = policy.config.n_obs_steps - 1  # a chunk starts at the window's first step (select_action's rule)
    out = []
    with torch.no_grad():
        for start in range(0, len(obs), batch_size):
            chunk = policy.predict_action({"obs": obs[start : start + batch_size]})  # (B, Tp, Da)
            out.append(chunk[:, current].numpy())
    return np.concatenate(out)


def nearest_neighbour_labels(train_obs: np.ndarray, train_act: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Label of the closest training window (z-scored flattened windows) for each query window ``(N, Da)``."""
    flat_train = train_obs.reshape(len(train_obs), -1)
    mean, std = flat_train.mean(axis=0), flat_train.std(axis=0) + 1e-6
    train_t = torch.from_numpy((flat_train - mean) / std)
    query_t = torch.from_numpy((query.reshape(len(query), -1) - mean) / std)
    nearest = torch.cdist(query_t, train_t).argmin(dim=1).numpy()  # (N,)
    return train_act[nearest]


def jump_fraction(windows: EpisodeWindows, threshold: float) -> float:
    """Fraction of consecutive in-episode action pairs whose change exceeds ``threshold`` (max over dims)."""
    jumps, pairs, start = 0, 0, 0
    for end in windows.episode_ends:
        act = windows.actions[start:end]
        if len(act) > 1:
            jumps += int((np.abs(np.diff(act, axis=0)).max(axis=1) > threshold).sum())
            pairs += len(act) - 1
        start = int(end)
    return jumps / max(pairs, 1)


def diagnose(train_dir: Path, heldout_dir: Path, policy_path: Path, seed: int = 0) -> dict:
    """All figures of the module docstring for one policy file and its demonstrations."""
    policy = Policy.load(policy_path)
    c = policy.config
    make = dict(n_obs_steps=c.n_obs_steps, horizon=c.horizon, obs_keys=c.obs_keys or None)
    train = EpisodeWindows(load_episodes(train_dir), **make)
    heldout = EpisodeWindows(load_episodes(heldout_dir), **make)
    rng = np.random.default_rng(seed)
    h_idx = rng.permutation(len(heldout))[:MAX_HELDOUT_WINDOWS]
    t_idx = rng.permutation(len(train))[:MAX_HELDOUT_WINDOWS]
    train_obs_all, train_act_all = current_labels(train, np.arange(len(train)))
    h_obs, h_act = current_labels(heldout, h_idx)
    t_obs, t_act = current_labels(train, t_idx)
    nn = nearest_neighbour_labels(train_obs_all, train_act_all, h_obs)
    on_train, on_heldout = policy_actions(policy, t_obs), policy_actions(policy, h_obs)
    half_range = 0.5 * float((train.actions.max(axis=0) - train.actions.min(axis=0)).max())
    return {
        "policy": str(policy_path),
        "policy_name": policy.name,
        "train_windows": len(train),
        "heldout_windows": len(h_idx),
        "nearest_neighbour_r2": round(r2(nn, h_act), 4),
        "nearest_neighbour_corr": [round(v, 4) for v in correlations(nn, h_act)],
        "policy_train_r2": round(r2(on_train, t_act), 4),
        "policy_heldout_r2": round(r2(on_heldout, h_act), 4),
        "policy_heldout_corr": [round(v, 4) for v in correlations(on_heldout, h_act)],
        "label_jump_fraction": round(jump_fraction(train, half_range), 4),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", type=Path, required=True, help="training demonstrations (episode files)")
    p.add_argument("--heldout", type=Path, required=True, help="held-out demonstrations (other seeds)")
    p.add_argument("--policy", type=Path, nargs="+", required=True, help="policy files trained on --train")
    p.add_argument("--out", type=Path, default=None, help="JSON results (default: print only)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = [diagnose(args.train, args.heldout, path) for path in args.policy]
    header = f"{'policy':<34}{'NN R²':>8}{'fit R²':>8}{'held-out R²':>13}{'held-out corr':>16}{'jumps':>8}"
    print(header)
    for row in rows:
        corr = "/".join(f"{v:.2f}" for v in row["policy_heldout_corr"])
        print(
            f"{row['policy'][-34:]:<34}{row['nearest_neighbour_r2']:>8.3f}{row['policy_train_r2']:>8.3f}"
            f"{row['policy_heldout_r2']:>13.3f}{corr:>16}{row['label_jump_fraction']:>8.3f}"
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps({"rows": rows}, indent=2))
        tmp.replace(args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
