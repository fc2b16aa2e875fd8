"""Tests for embodia.data.digest: the zoo's content digest (its bytes fixed) and the per-episode cache key."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

from embodia.data.digest import episode_key, episodes_digest
from embodia.data.episodes import Episode


def _episode(seed: int = 3, *, state: bool = True, text: str = "go") -> Episode:
    t = 4
    return Episode(
        observations={"depth": np.arange(2 * (t + 1), dtype=np.float32).reshape(t + 1, 2),
                      "instruction": np.array([text] * (t + 1), dtype=object)},
        actions=np.linspace(-1, 1, 2 * t).reshape(t, 2),
        rewards=np.zeros(t), terminations=np.zeros(t, bool), truncations=np.zeros(t, bool),
        mj_state=np.arange(3 * (t + 1), dtype=np.float64).reshape(t + 1, 3) if state else None,
        infos={"phase": np.arange(t)}, env_id="embodia/UrbanNav-v0", seed=seed,
    )  # fmt: skip


def test_episodes_digest_hashes_seed_actions_and_states_as_the_zoo_records_them():
    a, b = _episode(3), _episode(4, state=False)
    h = hashlib.sha256()
    h.update(b"3")
    h.update(a.actions.astype(np.float32).tobytes())
    h.update(a.mj_state.tobytes())
    h.update(b"4")
    h.update(b.actions.astype(np.float32).tobytes())
    h.update(b.observations["depth"].tobytes())  # no states: the numeric observations, text left out
    assert episodes_digest([a, b]) == h.hexdigest()
    assert episodes_digest([a, b]) != episodes_digest([b, a])
    assert episodes_digest([_episode(text="stop")]) == episodes_digest([_episode()])  # text is not content
    with pytest.raises(ValueError, match="no episodes"):
        episodes_digest([])


def test_episode_key_covers_what_derived_features_depend_on():
    key = episode_key(_episode(), "settings")
    assert len(key) == 40 and key == episode_key(_episode(), "settings")
    assert key != episode_key(_episode(), "other settings")
    assert key != episode_key(_episode(text="stop"), "settings")  # the instruction text
    assert key != episode_key(dataclasses.replace(_episode(), infos={"phase": np.zeros(4, int)}), "settings")
    assert key != episode_key(dataclasses.replace(_episode(), env_kwargs={"task": "return"}), "settings")
