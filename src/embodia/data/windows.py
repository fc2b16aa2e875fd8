"""Training samples of action chunking: observation windows and action chunks cut from episodes.

Every step ``t`` of every episode (``0 <= t < T``, the steps that have an action) is one sample. With
``To = n_obs_steps`` and ``Tp = horizon``, the sample at ``t`` is::

    obs          (To, Do)   observations of steps t-To+1 .. t           (index < 0 -> observation 0)
    action       (Tp, Da)   actions of steps     t-To+1 .. t-To+Tp      (index < 0 -> action 0,
                                                                         index >= T -> action T-1)
    action_mask  (Tp,)      True where the action index lies in [0, T) (a real action, not padding)

so chunk position ``To-1`` is the action taken at step ``t`` and positions ``To-1 .. To-1+Ta`` are the ones a
policy executes before it re-plans. Padding repeats the edge value (Diffusion Policy's ``SequenceSampler`` with
``pad_before = To-1``, ``pad_after = Tp-To``); the mask says which entries were padding, for losses that want to
skip them. The observation at index ``T`` (after the last action) is never in a window: it has no action.

Storage follows Diffusion Policy's replay buffer: all episodes' observations live in one flat ``(N_obs, Do)``
float32 array and their actions in one flat ``(N_act, Da)`` array, with ``episode_ends`` (cumulative action
counts) delimiting the episodes. Selected observation keys are flattened per step and concatenated in
``obs_keys`` order; ``obs_slices`` says where each key sits in the ``Do`` features. Everything is numpy; a
trainer converts batches to tensors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from embodia.data.episodes import Episode

__all__ = ["EpisodeWindows"]

BOX_KEY = "obs"
"""Name under which a Box (single-array) observation appears in ``obs_keys``."""


class EpisodeWindows:
    """Action-chunking samples over a list of episodes (one sample per recorded step).

    Args:
        episodes: Episodes with identical observation structure (same selected keys and per-step shapes) and
            the same action width. Episodes with zero steps contribute no samples.
        n_obs_steps: To, observation steps per sample (>= 1).
        horizon: Tp, actions per chunk (>= n_obs_steps, so the chunk reaches the current step).
        obs_keys: Dict-observation keys to use, in this order. Default: every numeric (non-text) key, sorted by
            name (the push envs have one, ``"state"``). Must be None for Box observations, which appear as the
            single key ``"obs"``.

    Attributes:
        obs: ``(N_obs, Do)`` float32, every observation of every episode (``T_i + 1`` rows per episode).
        actions: ``(N_act, Da)`` float32, every action (``T_i`` rows per episode).
        episode_ends: ``(E,)`` int64, cumulative action counts: episode ``e``'s actions are
            ``actions[episode_ends[e-1]:episode_ends[e]]``; its observations start at row
            ``episode_ends[e-1] + e`` of ``obs``.
        obs_keys: The selected observation keys, in feature order.
        obs_slices: ``{key: slice}`` of each key's flattened features within ``Do``.
        obs_shapes: ``{key: per-step shape}`` before flattening.
        n_obs_steps: To.
        horizon: Tp.

    Raises:
        ValueError: No episodes, bad ``n_obs_steps``/``horizon``, unknown or text keys, or episodes whose keys,
            shapes or action widths disagree (the message names the episode index and the key).
    """

    def __init__(
        self,
        episodes: Sequence[Episode],
        *,
        n_obs_steps: int = 2,
        horizon: int = 16,
        obs_keys: Sequence[str] | None = None,
    ) -> None:
        for name, value in (("n_obs_steps", n_obs_steps), ("horizon", horizon)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if horizon < n_obs_steps:
            raise ValueError(f"horizon ({horizon}) must be >= n_obs_steps ({n_obs_steps})")
        episodes = list(episodes)
        if not episodes:
            raise ValueError("EpisodeWindows needs at least one episode")
        if isinstance(obs_keys, str):
            raise ValueError(f"obs_keys must be a sequence of str, not a str ({obs_keys!r})")
        self.n_obs_steps = int(n_obs_steps)
        self.horizon = int(horizon)

        self.obs_keys, self.obs_shapes, self._box = _select_keys(episodes[0], obs_keys)
        self.obs_slices: dict[str, slice] = {}
        start = 0
        for key in self.obs_keys:
            size = int(np.prod(self.obs_shapes[key], dtype=np.int64))
            self.obs_slices[key] = slice(start, start + size)
            start += size

        obs_rows, act_rows, lengths = [], [], []
        action_dim = None
        for e, ep in enumerate(episodes):
            obs_rows.append(self._flat_obs(ep, e))  # (T_e + 1, Do)
            act = np.asarray(ep.actions)
            if act.ndim != 2 or act.dtype.kind not in "biuf":
                raise ValueError(f"episode {e}: actions must be a numeric (T, Da) array, got {act.dtype}{act.shape}")
            if action_dim is None:
                action_dim = act.shape[1]
            elif act.shape[1] != action_dim:
                raise ValueError(f"episode {e}: actions have width {act.shape[1]}, episode 0 has {action_dim}")
            if len(obs_rows[-1]) != len(act) + 1:
                raise ValueError(
                    f"episode {e}: {len(obs_rows[-1])} observations for {len(act)} actions (expected T+1 for T)"
                )
            act_rows.append(act.astype(np.float32, copy=False))
            lengths.append(len(act))

        self.obs = np.concatenate(obs_rows, axis=0)  # (N_obs, Do)
        self.actions = np.concatenate(act_rows, axis=0)  # (N_act, Da)
        self.episode_ends = np.cumsum(np.asarray(lengths, dtype=np.int64))  # (E,)

        # Sample index: episode and step of every sample, built without a Python loop over steps.
        lengths_arr = np.asarray(lengths, dtype=np.int64)  # (E,)
        act_starts = self.episode_ends - lengths_arr  # (E,) first action row of each episode
        self._episode = np.repeat(np.arange(len(lengths_arr)), lengths_arr)  # (N,)
        self._step = np.arange(len(self._episode)) - act_starts[self._episode]  # (N,) t within its episode
        self._length = lengths_arr[self._episode]  # (N,) T of the sample's episode
        self._act_start = act_starts[self._episode]  # (N,)
        self._obs_start = act_starts[self._episode] + self._episode  # (N,) each episode has one extra obs

    # ------------------------------------------------------------------------------------------------ sizes

    @property
    def obs_dim(self) -> int:
        """Do, the flattened observation width."""
        return int(self.obs.shape[1])

    @property
    def action_dim(self) -> int:
        """Da, the action width."""
        return int(self.actions.shape[1])

    @property
    def num_episodes(self) -> int:
        """Number of episodes (including any with zero steps)."""
        return len(self.episode_ends)

    def digest_obs(self) -> np.ndarray:
        """The observations ``(N_obs, Do)`` a run's data digest covers (subclasses may narrow them)."""
        return self.obs

    def __len__(self) -> int:
        return len(self._episode)

    def __repr__(self) -> str:
        return (
            f"EpisodeWindows(samples={len(self)}, episodes={self.num_episodes}, obs_keys={self.obs_keys}, "
            f"obs_dim={self.obs_dim}, action_dim={self.action_dim}, n_obs_steps={self.n_obs_steps}, "
            f"horizon={self.horizon})"
        )

    # ------------------------------------------------------------------------------------------------ access

    def locate(self, i: int) -> tuple[int, int]:
        """Return ``(episode index, step t)`` of sample ``i`` (negative ``i`` counts from the end)."""
        idx = self._check_indices(np.asarray([i]))[0]
        return int(self._episode[idx]), int(self._step[idx])

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        """Sample ``i``: ``{"obs": (To, Do), "action": (Tp, Da), "action_mask": (Tp,)}``."""
        if isinstance(i, bool) or not isinstance(i, int | np.integer):
            raise TypeError(f"EpisodeWindows indices must be integers, got {type(i).__name__}")
        return {k: v[0] for k, v in self.get_batch(np.asarray([i])).items()}

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
        """Samples at ``indices`` (negative ones count from the end), gathered in one vectorised step.

        Returns:
            ``{"obs": (B, To, Do) float32, "action": (B, Tp, Da) float32, "action_mask": (B, Tp) bool}``.

        Raises:
            IndexError: An index outside ``[-len, len)``.
        """
        idx = self._check_indices(np.asarray(indices))  # (B,)
        t = self._step[idx][:, None]  # (B, 1)
        length = self._length[idx][:, None]  # (B, 1)
        first = t - (self.n_obs_steps - 1)  # (B, 1) step of window/chunk position 0

        obs_steps = np.maximum(first + np.arange(self.n_obs_steps), 0)  # (B, To), always <= t
        obs = self.obs[self._obs_start[idx][:, None] + obs_steps]  # (B, To, Do)

        act_steps = first + np.arange(self.horizon)  # (B, Tp) unclipped
        mask = (act_steps >= 0) & (act_steps < length)  # (B, Tp)
        act_steps = np.clip(act_steps, 0, length - 1)  # (B, Tp)
        action = self.actions[self._act_start[idx][:, None] + act_steps]  # (B, Tp, Da)
        return {"obs": obs, "action": action, "action_mask": mask}

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """A batch of ``batch_size`` samples drawn uniformly with replacement (see :meth:`get_batch`)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if len(self) == 0:
            raise ValueError("cannot sample from EpisodeWindows with no samples (all episodes have 0 steps)")
        return self.get_batch(rng.integers(0, len(self), size=batch_size))

    def split_obs(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        """Undo the flattening: ``(..., Do)`` -> ``{key: (..., *obs_shapes[key])}``."""
        lead = obs.shape[:-1]
        return {k: obs[..., s].reshape(*lead, *self.obs_shapes[k]) for k, s in self.obs_slices.items()}

    # ------------------------------------------------------------------------------------------------ helpers

    def _check_indices(self, idx: np.ndarray) -> np.ndarray:
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise TypeError(f"indices must be a 1-D integer array, got {idx.dtype}{idx.shape}")
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            bad = idx[(idx < -n) | (idx >= n)][0]
            raise IndexError(f"sample index {int(bad)} out of range for {n} samples")
        return np.where(idx < 0, idx + n, idx).astype(np.int64)

    def _flat_obs(self, ep: Episode, e: int) -> np.ndarray:
        """``(T+1, Do)`` float32 features of the selected keys of episode ``e``."""
        obs = ep.observations
        if isinstance(obs, Mapping):
            if self._box:
                raise ValueError(f"episode {e} has Dict observations, episode 0 a Box observation")
            parts = []
            for key in self.obs_keys:
                if key not in obs:
                    raise ValueError(f"episode {e}: observation key {key!r} missing (has {sorted(obs)})")
                parts.append(self._flat_key(np.asarray(obs[key]), key, e))
            return np.concatenate(parts, axis=1)
        if not self._box:
            raise ValueError(f"episode {e} has a Box observation, episode 0 Dict observations")
        return self._flat_key(np.asarray(obs), BOX_KEY, e)

    def _flat_key(self, arr: np.ndarray, key: str, e: int) -> np.ndarray:
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"episode {e}: observation {key!r} is not numeric ({arr.dtype})")
        if arr.shape[1:] != self.obs_shapes[key]:
            raise ValueError(
                f"episode {e}: observation {key!r} has per-step shape {arr.shape[1:]}, expected {self.obs_shapes[key]}"
            )
        return arr.reshape(len(arr), -1).astype(np.float32, copy=False)


def _select_keys(
    ep: Episode, obs_keys: Sequence[str] | None
) -> tuple[tuple[str, ...], dict[str, tuple[int, ...]], bool]:
    """Keys (in feature order), their per-step shapes, and whether the observation is a Box, from episode 0."""
    obs = ep.observations
    if not isinstance(obs, Mapping):
        if obs_keys is not None:
            raise ValueError(f"obs_keys must be None for Box observations, got {list(obs_keys)}")
        arr = np.asarray(obs)
        return (BOX_KEY,), {BOX_KEY: arr.shape[1:]}, True
    numeric = sorted(k for k, v in obs.items() if np.asarray(v).dtype.kind in "biuf")
    if obs_keys is None:
        if not numeric:
            raise ValueError(f"episode 0 has no numeric observation keys (keys: {sorted(obs)})")
        keys = tuple(numeric)
    else:
        keys = tuple(obs_keys)
        if not keys:
            raise ValueError("obs_keys is empty")
        if len(set(keys)) != len(keys):
            raise ValueError(f"obs_keys has duplicates: {list(keys)}")
        for key in keys:
            if key not in obs:
                raise ValueError(f"observation key {key!r} not in episode 0 (numeric keys: {numeric})")
            if key not in numeric:
                raise ValueError(f"observation key {key!r} is not numeric (numeric keys: {numeric})")
    return keys, {k: np.asarray(obs[k]).shape[1:] for k in keys}, False
