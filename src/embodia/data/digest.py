"""Digests of episode content: one definition of what "the same episodes" means, for records and caches.

* :func:`episodes_digest` (SHA-256, hex): the zoo's data digest (``embodia.zoo.train.data_digest``), recorded in
  ``zoo/records/*.json``. Its bytes are fixed: seed, actions, MuJoCo states (or the numeric observations of an
  episode without them), so a change here changes every recorded digest.
* :func:`episode_key` (BLAKE2b-160, hex): a cache key for what is derived from one episode (the navigator's
  replayed features): the content above plus the env, every observation (text included) and the per-step infos.

The content, not the file bytes: HDF5 files of the same data may differ in layout. The trainer's resume digest
(``embodia.training.run.data_digest``) hashes the training windows instead, see there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

import numpy as np

from embodia.data.episodes import Episode

__all__ = ["episode_key", "episodes_digest", "update_content_digest"]


def update_content_digest(h: Any, episode: Episode) -> None:
    """Feed ``episode``'s content into the hash object ``h`` (a ``hashlib`` hash).

    In order: ``str(seed)``, the ``(T, Da)`` actions as float32, then the ``(T+1, S)`` MuJoCo states as float64,
    or, for an episode without them (adapted third-party envs), its numeric observations (``(T+1, ...)``, dict
    entries by sorted key; text entries left out).

    Args:
        h: A hash object with ``update(bytes)``.
        episode: The episode.
    """
    h.update(str(episode.seed).encode())
    h.update(np.ascontiguousarray(episode.actions, dtype=np.float32).tobytes())
    if episode.mj_state is not None:
        h.update(np.ascontiguousarray(episode.mj_state, dtype=np.float64).tobytes())
        return
    obs = episode.observations
    for key in sorted(obs) if isinstance(obs, dict) else [None]:
        value = obs if key is None else obs[key]
        if value.dtype.kind in "biuf":
            h.update(np.ascontiguousarray(value).tobytes())


def episodes_digest(episodes: Iterable[Episode]) -> str:
    """Hex SHA-256 over the content (:func:`update_content_digest`) of ``episodes``, in the given order.

    Args:
        episodes: The episodes, e.g. a directory's files in sorted order.

    Returns:
        64 hex characters.

    Raises:
        ValueError: No episodes.
    """
    h = hashlib.sha256()
    count = 0
    for episode in episodes:
        update_content_digest(h, episode)
        count += 1
    if not count:
        raise ValueError("no episodes to digest")
    return h.hexdigest()


def episode_key(episode: Episode, salt: str = "") -> str:
    """A key for what is derived from ``episode``: equal keys mean equal episodes (and equal ``salt``).

    Hashes ``salt`` (e.g. the deriving model's settings as JSON), the env (id, kwargs, seed), the content
    (:func:`update_content_digest`), every observation by name (text entries as their strings) and every per-step
    info by name (e.g. the task phases), then the actions once more in their own dtype.

    Args:
        episode: The episode.
        salt: Text that keys the derivation as well.

    Returns:
        40 hex characters (BLAKE2b, 20 bytes).
    """
    h = hashlib.blake2b(digest_size=20)
    h.update(salt.encode())
    h.update(json.dumps([episode.env_id, episode.env_kwargs, episode.seed], sort_keys=True, default=str).encode())
    update_content_digest(h, episode)
    obs = episode.observations
    for name in sorted(obs) if isinstance(obs, dict) else [""]:
        value = np.asarray(obs[name] if isinstance(obs, dict) else obs)
        h.update(name.encode())
        h.update(value.astype(str).tobytes() if value.dtype == object else np.ascontiguousarray(value).tobytes())
    for name in sorted(episode.infos):
        h.update(name.encode())
        h.update(np.ascontiguousarray(episode.infos[name]).tobytes())
    h.update(np.ascontiguousarray(episode.actions).tobytes())  # in their own dtype (the content has float32)
    return h.hexdigest()
