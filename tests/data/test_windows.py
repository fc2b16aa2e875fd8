"""Tests for embodia.data.windows.EpisodeWindows: padding at both ends, masks, keys, batching."""

from __future__ import annotations

import numpy as np
import pytest

from embodia.data import Episode, read_episode, write_episode
from embodia.data.windows import EpisodeWindows


def _text(n: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    out[:] = ["go left"] * n
    return out


def make_episode(t: int, offset: float = 0.0, *, box: bool = False) -> Episode:
    """Observation k is ``[offset + 10k, offset + 10k + 1]`` (state); action k is ``[offset + k, -k]``."""
    k = np.arange(t + 1, dtype=np.float64)
    state = np.stack([offset + 10 * k, offset + 10 * k + 1], axis=1).astype(np.float32)  # (T+1, 2)
    obs = (
        state
        if box
        else {
            "state": state,
            "pose": np.repeat(np.arange(t + 1)[:, None, None], 2, axis=1)
            .repeat(2, axis=2)
            .astype(np.int16),  # (T+1,2,2)
            "instruction": _text(t + 1),
        }
    )
    actions = np.stack([offset + k[:t], -k[:t]], axis=1).astype(np.float32)  # (T, 2)
    return Episode(
        observations=obs,
        actions=actions,
        rewards=np.zeros(t),
        terminations=np.zeros(t, dtype=bool),
        truncations=np.zeros(t, dtype=bool),
    )


def reference_sample(ep: Episode, t: int, to: int, tp: int, keys: list[str]) -> dict[str, np.ndarray]:
    """Straightforward per-sample loop, the definition the vectorised code must match."""
    n = ep.num_steps
    obs_rows = []
    for s in range(t - to + 1, t + 1):
        s = max(s, 0)
        obs_rows.append(np.concatenate([np.asarray(ep.observations[k][s], np.float32).ravel() for k in keys]))
    acts, mask = [], []
    for s in range(t - to + 1, t - to + 1 + tp):
        mask.append(0 <= s < n)
        acts.append(ep.actions[min(max(s, 0), n - 1)])
    return {"obs": np.stack(obs_rows), "action": np.stack(acts), "action_mask": np.array(mask)}


def test_padding_at_both_ends_and_mask():
    w = EpisodeWindows([make_episode(3)], n_obs_steps=2, horizon=4, obs_keys=["state"])
    assert len(w) == 3 and w.obs_dim == 2 and w.action_dim == 2

    first = w[0]  # t = 0: obs steps (-1, 0) -> (0, 0); action steps (-1, 0, 1, 2) -> (0, 0, 1, 2)
    np.testing.assert_array_equal(first["obs"], [[0, 1], [0, 1]])
    np.testing.assert_array_equal(first["action"][:, 0], [0, 0, 1, 2])
    np.testing.assert_array_equal(first["action_mask"], [False, True, True, True])

    last = w[2]  # t = 2: obs steps (1, 2); action steps (1, 2, 3, 4) -> (1, 2, 2, 2)
    np.testing.assert_array_equal(last["obs"], [[10, 11], [20, 21]])
    np.testing.assert_array_equal(last["action"][:, 0], [1, 2, 2, 2])
    np.testing.assert_array_equal(last["action"][:, 1], [-1, -2, -2, -2])
    np.testing.assert_array_equal(last["action_mask"], [True, True, False, False])
    # Chunk index To-1 is the action taken at step t.
    for t in range(3):
        np.testing.assert_array_equal(w[t]["action"][1], w.actions[t])
    # The observation after the last action (index T) is never in a window.
    assert not (w.get_batch(np.arange(3))["obs"][..., 0] == 30).any()


def test_long_obs_window_repeats_first_observation():
    w = EpisodeWindows([make_episode(2)], n_obs_steps=4, horizon=5, obs_keys=["state"])
    np.testing.assert_array_equal(w[1]["obs"][:, 0], [0, 0, 0, 10])
    np.testing.assert_array_equal(w[1]["action_mask"], [False, False, True, True, False])


def test_episode_boundaries_never_mix():
    eps = [make_episode(3, 0.0), make_episode(0, 500.0), make_episode(2, 1000.0)]
    w = EpisodeWindows(eps, n_obs_steps=2, horizon=4, obs_keys=["state"])
    assert len(w) == 5 and w.num_episodes == 3
    np.testing.assert_array_equal(w.episode_ends, [3, 3, 5])
    assert w.obs.shape == (4 + 1 + 3, 2) and w.actions.shape == (5, 2)
    assert w.locate(3) == (2, 0) and w.locate(-1) == (2, 1)
    third = w[3]  # episode 2, t = 0
    np.testing.assert_array_equal(third["obs"], [[1000, 1001], [1000, 1001]])
    np.testing.assert_array_equal(third["action"][:, 0], [1000, 1000, 1001, 1001])
    np.testing.assert_array_equal(third["action_mask"], [False, True, True, False])
    np.testing.assert_array_equal(w[-1]["action"][:, 0], [1000, 1001, 1001, 1001])


@pytest.mark.parametrize(("to", "tp"), [(1, 1), (2, 16), (3, 5), (2, 2)])
def test_matches_reference_loop(to: int, tp: int):
    rng = np.random.default_rng(to * 100 + tp)
    eps = [make_episode(int(n), float(100 * i)) for i, n in enumerate(rng.integers(1, 12, size=5))]
    keys = ["pose", "state"]
    w = EpisodeWindows(eps, n_obs_steps=to, horizon=tp)
    assert w.obs_keys == tuple(keys)  # default: numeric keys, sorted; text dropped
    expected = [reference_sample(ep, t, to, tp, keys) for ep in eps for t in range(ep.num_steps)]
    assert len(w) == len(expected)
    batch = w.get_batch(np.arange(len(w)))
    for i, ref in enumerate(expected):
        for key in ("obs", "action", "action_mask"):
            np.testing.assert_array_equal(batch[key][i], ref[key], err_msg=f"sample {i} {key}")
            np.testing.assert_array_equal(w[i][key], ref[key])


def test_keys_and_slices():
    w = EpisodeWindows([make_episode(3)], n_obs_steps=2, horizon=4)
    assert w.obs_keys == ("pose", "state")
    assert w.obs_slices == {"pose": slice(0, 4), "state": slice(4, 6)}
    assert w.obs_shapes == {"pose": (2, 2), "state": (2,)}
    parts = w.split_obs(w[2]["obs"])
    assert parts["pose"].shape == (2, 2, 2) and parts["state"].shape == (2, 2)
    np.testing.assert_array_equal(parts["state"], [[10, 11], [20, 21]])
    ordered = EpisodeWindows([make_episode(3)], obs_keys=("state", "pose"))
    assert ordered.obs_slices["state"] == slice(0, 2)


def test_dtypes_and_sample():
    w = EpisodeWindows([make_episode(5), make_episode(4, 7.0)], n_obs_steps=2, horizon=6)
    batch = w.sample(32, np.random.default_rng(0))
    assert batch["obs"].shape == (32, 2, w.obs_dim) and batch["obs"].dtype == np.float32
    assert batch["action"].shape == (32, 6, 2) and batch["action"].dtype == np.float32
    assert batch["action_mask"].shape == (32, 6) and batch["action_mask"].dtype == np.bool_
    again = w.sample(32, np.random.default_rng(0))
    for key in batch:
        np.testing.assert_array_equal(batch[key], again[key])
    with pytest.raises(ValueError, match="batch_size"):
        w.sample(0, np.random.default_rng(0))


def test_box_observation():
    w = EpisodeWindows([make_episode(3, box=True)], n_obs_steps=2, horizon=4)
    assert w.obs_keys == ("obs",)
    np.testing.assert_array_equal(w[2]["obs"], [[10, 11], [20, 21]])
    with pytest.raises(ValueError, match="None for Box"):
        EpisodeWindows([make_episode(3, box=True)], obs_keys=["state"])
    with pytest.raises(ValueError, match="Dict observations"):
        EpisodeWindows([make_episode(3, box=True), make_episode(3)])


def test_from_episode_files(tmp_path):
    paths = [write_episode(tmp_path / f"{i}.h5", make_episode(4 + i, 10.0 * i)) for i in range(2)]
    w = EpisodeWindows([read_episode(p) for p in paths], obs_keys=["state"], horizon=4)
    assert len(w) == 9
    np.testing.assert_array_equal(w[4]["obs"][1], [10, 11])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"obs_keys": ["nope"]}, "'nope' not in episode 0"),
        ({"obs_keys": ["instruction"]}, "not numeric"),
        ({"obs_keys": "state"}, "not a str"),
        ({"obs_keys": ["state", "state"]}, "duplicates"),
        ({"obs_keys": []}, "empty"),
        ({"n_obs_steps": 0}, "n_obs_steps"),
        ({"horizon": 1, "n_obs_steps": 2}, "horizon"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EpisodeWindows([make_episode(3)], **kwargs)


def test_inconsistent_episodes():
    other = make_episode(3)
    other.observations["state"] = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"episode 1: observation 'state' has per-step shape \(3,\)"):
        EpisodeWindows([make_episode(3), other], obs_keys=["state"])
    missing = make_episode(3)
    del missing.observations["pose"]
    with pytest.raises(ValueError, match="episode 1: observation key 'pose' missing"):
        EpisodeWindows([make_episode(3), missing])
    wide = make_episode(3)
    wide.actions = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="episode 1: actions have width 4"):
        EpisodeWindows([make_episode(3), wide])
    with pytest.raises(ValueError, match="at least one episode"):
        EpisodeWindows([])


def test_index_errors_and_empty():
    w = EpisodeWindows([make_episode(3)])
    with pytest.raises(IndexError, match="out of range"):
        w[3]
    with pytest.raises(IndexError):
        w.get_batch([-4])
    with pytest.raises(TypeError):
        w[1.0]
    empty = EpisodeWindows([make_episode(0)])
    assert len(empty) == 0 and empty.get_batch([])["obs"].shape == (0, 2, 6)
    with pytest.raises(ValueError, match="no samples"):
        empty.sample(1, np.random.default_rng(0))
