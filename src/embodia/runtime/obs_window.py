"""The observation window a policy sees in closed loop, built exactly as training windows are cut from episodes."""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from embodia.data.windows import BOX_KEY
from embodia.policies.base import Policy

__all__ = ["ObsWindow"]


class ObsWindow:
    """The observation window ``(1, To, Do)`` of one running episode, built as ``EpisodeWindows`` builds it.

    Observation ``k`` of the window holds step ``t - To + 1 + k``; steps before 0 are step 0 (the reset
    observation repeated), the padding of :class:`~embodia.data.windows.EpisodeWindows`.

    Args:
        n_obs_steps: To, observations per window (>= 1).
        obs_keys: Dict-observation keys flattened and concatenated in this order (``policy.config.obs_keys``).
            ``()`` or ``("obs",)`` also accept a Box (single-array) observation, which ``EpisodeWindows`` names
            ``"obs"``; ``()`` with a Dict observation uses every numeric key sorted by name (``EpisodeWindows``'s
            default).
        obs_dim: Do the policy expects (checked at :meth:`reset`), or None to accept any width.

    Raises:
        ValueError: ``n_obs_steps`` < 1, or ``obs_keys`` is a str.
    """

    def __init__(self, n_obs_steps: int, obs_keys: Sequence[str] = (), obs_dim: int | None = None) -> None:
        if isinstance(n_obs_steps, bool) or not isinstance(n_obs_steps, int | np.integer) or n_obs_steps < 1:
            raise ValueError(f"n_obs_steps must be an integer >= 1, got {n_obs_steps!r}")
        if isinstance(obs_keys, str):
            raise ValueError(f"obs_keys must be a sequence of str, not a str ({obs_keys!r})")
        self.n_obs_steps = int(n_obs_steps)
        self.obs_keys = tuple(obs_keys)
        self.obs_dim = obs_dim
        self._keys: tuple[str, ...] | None = None  # resolved at reset()
        self._box = False
        self._steps: collections.deque[np.ndarray] = collections.deque(maxlen=self.n_obs_steps)

    @classmethod
    def for_policy(cls, policy: Policy) -> ObsWindow:
        """The window ``policy`` expects: its ``n_obs_steps``, ``obs_keys`` and ``obs_dim``."""
        c = policy.config
        return cls(c.n_obs_steps, c.obs_keys, c.obs_dim)

    def reset(self, obs: Mapping[str, Any] | np.ndarray) -> None:
        """Start an episode: every window slot holds the reset observation ``obs``.

        Raises:
            ValueError: A key of ``obs_keys`` is missing from ``obs`` (named), a Box observation with keys other
                than ``()`` / ``("obs",)``, a non-numeric observation, or a width other than ``obs_dim``.
        """
        if isinstance(obs, Mapping):
            self._box = False
            self._keys = self.obs_keys or tuple(sorted(k for k, v in obs.items() if np.asarray(v).dtype.kind in "biuf"))
            if not self._keys:
                raise ValueError(f"the observation has no numeric keys (keys: {sorted(obs)})")
        else:
            if self.obs_keys not in ((), (BOX_KEY,)):
                raise ValueError(
                    f"obs_keys {list(self.obs_keys)} name Dict-observation keys, but the env returns a Box "
                    f"observation ({type(obs).__name__}); use () or ({BOX_KEY!r},) for Box observations"
                )
            self._box, self._keys = True, (BOX_KEY,)
        flat = self._flatten(obs)
        if self.obs_dim is not None and flat.shape[0] != self.obs_dim:
            raise ValueError(
                f"observation keys {list(self._keys)} flatten to {flat.shape[0]} features, the policy expects "
                f"obs_dim={self.obs_dim}"
            )
        self._steps.clear()
        self._steps.extend([flat] * self.n_obs_steps)

    def push(self, obs: Mapping[str, Any] | np.ndarray) -> None:
        """Append the observation of the next step (the oldest one leaves the window).

        Raises:
            RuntimeError: Called before :meth:`reset`.
            ValueError: A missing key, or a width other than the reset observation's.
        """
        if self._keys is None:
            raise RuntimeError("ObsWindow.push() before reset()")
        flat = self._flatten(obs)
        if flat.shape != self._steps[-1].shape:
            raise ValueError(
                f"observation keys {list(self._keys)} flatten to {flat.shape[0]} features, the reset observation "
                f"to {self._steps[-1].shape[0]}"
            )
        self._steps.append(flat)

    def batch(self) -> dict[str, np.ndarray]:
        """The policy input ``{"obs": (1, To, Do) float32}``, oldest step first.

        Raises:
            RuntimeError: Called before :meth:`reset`.
        """
        if self._keys is None:
            raise RuntimeError("ObsWindow.batch() before reset()")
        return {"obs": np.stack(self._steps)[None]}  # (1, To, Do)

    def _flatten(self, obs: Mapping[str, Any] | np.ndarray) -> np.ndarray:
        """``(Do,)`` float32 features of one observation."""
        assert self._keys is not None
        if self._box:
            if isinstance(obs, Mapping):
                raise ValueError("got a Dict observation after a Box reset observation")
            parts = [(BOX_KEY, obs)]
        else:
            if not isinstance(obs, Mapping):
                raise ValueError(f"got a Box observation ({type(obs).__name__}) after a Dict reset observation")
            missing = [k for k in self._keys if k not in obs]
            if missing:
                raise ValueError(f"observation key(s) {missing} missing (the observation has {sorted(obs)})")
            parts = [(k, obs[k]) for k in self._keys]
        out = []
        for key, value in parts:
            arr = np.asarray(value)
            if arr.dtype.kind not in "biuf":
                raise ValueError(f"observation {key!r} is not numeric ({arr.dtype})")
            out.append(arr.astype(np.float32, copy=False).reshape(-1))
        return np.concatenate(out)  # (Do,)
