"""Tests for embodia.data.episodes: round trips, recorder, validation, atomic writes, corrupt files."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from embodia.data import (
    FORMAT_VERSION,
    Episode,
    EpisodeFileError,
    EpisodeRecorder,
    episode_files,
    load_episodes,
    read_episode,
    write_episode,
)

T = 6
S = 13
DA = 3
META_FIELDS = ("env_id", "seed", "instruction", "scene_xml", "env_kwargs", "metrics", "extra")


def _text(items: list[str]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def dict_episode(seed: int = 0, t: int = T) -> Episode:
    rng = np.random.default_rng(seed)
    depth = rng.random((t + 1, 8, 64), dtype=np.float32)
    depth[0, 0, 0] = np.inf  # out-of-range rays are legal observations
    return Episode(
        observations={
            "depth": depth,
            "semantic": rng.integers(-1, 500, size=(t + 1, 8, 64), dtype=np.int16),
            "rgb": rng.integers(0, 256, size=(t + 1, 16, 16, 3), dtype=np.uint8),
            "instruction": _text([f"go to the red chair ({i}) — 红色椅子" for i in range(t + 1)]),
            "pose": rng.standard_normal((t + 1, 3)),
        },
        actions=rng.uniform(-1, 1, (t, DA)).astype(np.float32),
        rewards=rng.standard_normal(t),
        terminations=np.arange(t) == t - 1,
        truncations=np.zeros(t, dtype=bool),
        mj_state=rng.standard_normal((t + 1, S)),
        infos={"dist": rng.random(t), "is_success": np.array([math.nan] * (t - 1) + [1.0])},
        env_id="embodia/UrbanNav-v0",
        seed=2**40 + seed,
        instruction="go to the red chair — 红色椅子",
        scene_xml="<mujoco model='scene'>" + "<geom type='box' size='1 1 1'/>" * 8000 + "</mujoco>",
        env_kwargs={"size": [64, 64], "nested": {"a": 1, "b": None}, "name": "x"},
        metrics={"success": 1.0, "spl": 0.75, "path_length": 12.5},
        extra={"expert": "shortest_path", "noise": 0.1},
        memory={
            "nodes": rng.standard_normal((17, 4)).astype(np.float32),
            "offsets": np.array([0, 3, 3, 7, 12, 15, 16, 17], dtype=np.int64),
            "labels": _text(["chair", "table"]),
        },
    )


def box_episode(seed: int = 1, t: int = T) -> Episode:
    rng = np.random.default_rng(seed)
    return Episode(
        observations=rng.standard_normal((t + 1, 5)).astype(np.float32),
        actions=rng.uniform(-1, 1, (t, 2)).astype(np.float32),
        rewards=rng.standard_normal(t),
        terminations=np.zeros(t, dtype=bool),
        truncations=np.arange(t) == t - 1,
        env_id="embodia/PointMass-v0",
    )


def assert_arrays_equal(a: np.ndarray, b: np.ndarray, what: str) -> None:
    assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), what
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != {b.dtype}"
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    if a.dtype == object:
        assert all(type(x) is str for x in a.flat), f"{what}: non-str entries"
        assert a.tolist() == b.tolist(), what
    else:
        np.testing.assert_array_equal(a, b, err_msg=what)


def assert_array_dicts_equal(a: dict | None, b: dict | None, what: str) -> None:
    if a is None or b is None:
        assert a is None and b is None, what
        return
    assert list(a) == list(b), f"{what}: keys {list(a)} != {list(b)}"
    for key in a:
        assert_arrays_equal(a[key], b[key], f"{what}[{key}]")


def assert_episodes_equal(a: Episode, b: Episode) -> None:
    if isinstance(a.observations, dict):
        assert isinstance(b.observations, dict)
        assert_array_dicts_equal(a.observations, b.observations, "observations")
    else:
        assert_arrays_equal(a.observations, b.observations, "observations")
    for name in ("actions", "rewards", "terminations", "truncations"):
        assert_arrays_equal(getattr(a, name), getattr(b, name), name)
    if a.mj_state is None or b.mj_state is None:
        assert a.mj_state is None and b.mj_state is None
    else:
        assert_arrays_equal(a.mj_state, b.mj_state, "mj_state")
    assert_array_dicts_equal(a.infos, b.infos, "infos")
    assert_array_dicts_equal(a.memory, b.memory, "memory")
    for name in META_FIELDS:
        assert getattr(a, name) == getattr(b, name), name
    assert type(a.seed) is type(b.seed)


# ------------------------------------------------------------------------------------------ round trips


def test_round_trip_dict_observation(tmp_path: Path) -> None:
    ep = dict_episode()
    path = write_episode(tmp_path / "ep.h5", ep)
    assert path == tmp_path / "ep.h5"
    back = read_episode(path)
    assert_episodes_equal(ep, back)
    assert back.num_steps == T
    assert back.observations["instruction"][0] == "go to the red chair (0) — 红色椅子"


def test_file_layout_is_minari_like_and_compressed(tmp_path: Path) -> None:
    path = write_episode(tmp_path / "ep.h5", dict_episode())
    with h5py.File(path, "r") as f:
        assert isinstance(f["observations"], h5py.Group)
        assert list(f["observations"]) == ["depth", "semantic", "rgb", "instruction", "pose"]
        assert f["observations/depth"].shape == (T + 1, 8, 64)
        for name in ("actions", "rewards", "terminations", "truncations"):
            assert f[name].shape[0] == T
            assert f[name].compression is None, name
        assert f["observations/depth"].compression == "gzip"
        assert f["observations/depth"].compression_opts == 4
        assert f["mj_state"].compression == "gzip"
        assert f["mj_state"].shape == (T + 1, S)
        assert h5py.check_string_dtype(f["observations/instruction"].dtype).length is None
        assert h5py.check_string_dtype(f["scene_xml"].dtype).encoding == "utf-8"
        assert f.attrs["format_version"] == FORMAT_VERSION
        assert f.attrs["num_steps"] == T
        assert f.attrs["env_id"] == "embodia/UrbanNav-v0"
        assert set(f.attrs) >= {"env_kwargs_json", "metrics_json", "extra_json", "seed", "instruction"}
        assert set(f["memory"]) == {"nodes", "offsets", "labels"}


def test_round_trip_box_observation_without_mj_state(tmp_path: Path) -> None:
    ep = box_episode()
    back = read_episode(write_episode(tmp_path / "box.h5", ep, compression=None))
    assert_episodes_equal(ep, back)
    assert back.mj_state is None
    assert back.seed is None
    assert back.memory is None
    assert back.scene_xml is None
    with h5py.File(tmp_path / "box.h5", "r") as f:
        assert isinstance(f["observations"], h5py.Dataset)
        assert "mj_state" not in f and "seed" not in f.attrs


def test_dict_episode_without_mj_state_reads_none(tmp_path: Path) -> None:
    ep = dict_episode()
    ep.mj_state = None
    back = read_episode(write_episode(tmp_path / "e.h5", ep, compression="lzf"))
    assert back.mj_state is None
    assert_episodes_equal(ep, back)


def test_empty_memory_dict_is_kept_distinct_from_none(tmp_path: Path) -> None:
    ep = box_episode()
    ep.memory = {}
    assert read_episode(write_episode(tmp_path / "e.h5", ep)).memory == {}


# ------------------------------------------------------------------------------------------ recorder


def test_recorder_builds_the_same_episode_as_by_hand() -> None:
    expected = dict_episode()
    obs = expected.observations
    rec = EpisodeRecorder(record_infos=("dist", "is_success"))
    buffer = {k: v[0].copy() if v.dtype != object else v[0] for k, v in obs.items()}
    rec.start(buffer, mj_state=expected.mj_state[0])
    for t in range(T):
        # Reuse the same buffers, like an env that writes observations in place.
        for k, v in obs.items():
            if v.dtype == object:
                buffer[k] = v[t + 1]
            else:
                buffer[k][...] = v[t + 1]
        info = {"dist": expected.infos["dist"][t], "other": "ignored"}
        if t == T - 1:
            info["is_success"] = True
        rec.add(
            expected.actions[t].astype(np.float64),
            buffer,
            expected.rewards[t],
            bool(expected.terminations[t]),
            np.bool_(expected.truncations[t]),
            info,
            mj_state=expected.mj_state[t + 1],
        )
        assert len(rec) == t + 1
    meta = {name: getattr(expected, name) for name in META_FIELDS}
    built = rec.finish(**meta, memory=expected.memory)
    assert_episodes_equal(expected, built)
    assert np.isnan(built.infos["is_success"][:-1]).all()  # missing key -> NaN
    assert len(rec) == 0


def test_recorder_box_observation_and_missing_infos() -> None:
    rec = EpisodeRecorder(record_infos=("cost",))
    rec.start(np.zeros(2, dtype=np.float32))
    rec.add(0.5, np.ones(2, dtype=np.float32), 1, False, False)
    rec.add([0.25], np.full(2, 2, dtype=np.float32), 2, True, False, info={})
    ep = rec.finish(env_id="x", seed=3)
    assert ep.observations.dtype == np.float32 and ep.observations.shape == (3, 2)
    assert ep.actions.dtype == np.float32 and ep.actions.shape == (2, 1)
    assert ep.rewards.dtype == np.float64
    assert ep.terminations.tolist() == [False, True]
    assert ep.mj_state is None
    assert np.isnan(ep.infos["cost"]).all() and ep.infos["cost"].shape == (2,)
    assert ep.seed == 3


def test_recorder_misuse_errors() -> None:
    rec = EpisodeRecorder()
    with pytest.raises(RuntimeError, match="before start"):
        rec.add([0.0], np.zeros(1), 0.0, False, False)
    rec.start({"a": np.zeros(2)}, mj_state=np.zeros(3))
    with pytest.raises(ValueError, match="mj_state"):
        rec.add([0.0], {"a": np.zeros(2)}, 0.0, False, False)
    with pytest.raises(ValueError, match="structure"):
        rec.add([0.0], {"b": np.zeros(2)}, 0.0, False, False, mj_state=np.zeros(3))
    assert len(rec) == 0
    with pytest.raises(RuntimeError, match="no recorded steps"):
        rec.finish()
    rec.add([0.0], {"a": np.zeros(2)}, 0.0, False, False, mj_state=np.zeros(3))
    with pytest.raises(TypeError, match="unknown metadata"):
        rec.finish(env="typo")


# ------------------------------------------------------------------------------------------ validate


def _break_actions_len(ep: Episode) -> None:
    ep.actions = np.zeros((T + 1, DA), dtype=np.float32)


def _break_obs_key_len(ep: Episode) -> None:
    ep.observations["semantic"] = ep.observations["semantic"][:-1]


def _break_all_obs_len(ep: Episode) -> None:
    ep.observations = {k: v[:-1] for k, v in ep.observations.items()}


def _nan_action(ep: Episode) -> None:
    ep.actions[2, 1] = np.nan


def _inf_reward(ep: Episode) -> None:
    ep.rewards[0] = np.inf


def _short_mj_state(ep: Episode) -> None:
    ep.mj_state = ep.mj_state[:-1]


def _int_terminations(ep: Episode) -> None:
    ep.terminations = ep.terminations.astype(np.int8)


def _short_info(ep: Episode) -> None:
    ep.infos["dist"] = ep.infos["dist"][:-1]


def _bad_kwargs(ep: Episode) -> None:
    ep.env_kwargs = {"f": object()}


def _unicode_text_obs(ep: Episode) -> None:
    ep.observations["instruction"] = ep.observations["instruction"].astype(str)


@pytest.mark.parametrize(
    ("breaker", "pattern"),
    [
        (_break_actions_len, r"Episode\.actions has length 7, expected T=6"),
        (_break_obs_key_len, r"Episode\.observations\['semantic'\] has 6 entries"),
        (_break_all_obs_len, r"Episode\.observations has 6 entries.*expected T\+1=7"),
        (_nan_action, r"Episode\.actions has non-finite values \(first at step 2\)"),
        (_inf_reward, r"Episode\.rewards has non-finite"),
        (_short_mj_state, r"Episode\.mj_state has length 6, expected T\+1=7"),
        (_int_terminations, r"Episode\.terminations must be a \(T,\) = \(6,\) bool"),
        (_short_info, r"Episode\.infos\['dist'\]"),
        (_bad_kwargs, r"Episode\.env_kwargs is not JSON-serialisable"),
        (_unicode_text_obs, r"Episode\.observations\['instruction'\] has unsupported dtype"),
    ],
)
def test_validate_names_the_field(breaker, pattern: str, tmp_path: Path) -> None:
    ep = dict_episode()
    ep.validate()
    breaker(ep)
    with pytest.raises(ValueError, match=pattern) as info:
        ep.validate()
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=pattern):
        write_episode(tmp_path / "bad.h5", ep)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------ atomicity


def test_write_leaves_no_temp_files_and_creates_parents(tmp_path: Path) -> None:
    target = tmp_path / "run" / "episodes" / "ep_000.h5"
    write_episode(target, box_episode())
    write_episode(target, dict_episode())  # overwrite in place
    assert [p.name for p in target.parent.iterdir()] == ["ep_000.h5"]
    assert isinstance(read_episode(target).observations, dict)


def _failing_create_dataset(monkeypatch: pytest.MonkeyPatch, directory: Path) -> list[int]:
    """Make h5py dataset creation raise after a few datasets, checking the temp file is open then."""
    real = h5py.Group.create_dataset
    calls: list[int] = []

    def create_dataset(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            temps = [p for p in directory.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]
            assert len(temps) == 1, "the temp file should exist while writing"
            raise OSError("disk full (simulated)")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", create_dataset)
    return calls


def test_failed_write_leaves_no_destination_and_no_temp(tmp_path: Path, monkeypatch) -> None:
    calls = _failing_create_dataset(monkeypatch, tmp_path)
    with pytest.raises(OSError, match="disk full"):
        write_episode(tmp_path / "ep.h5", dict_episode())
    assert len(calls) == 3
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_previous_version(tmp_path: Path, monkeypatch) -> None:
    old = box_episode()
    path = write_episode(tmp_path / "ep.h5", old)
    before = path.read_bytes()
    _failing_create_dataset(monkeypatch, tmp_path)
    with pytest.raises(OSError, match="disk full"):
        write_episode(path, dict_episode())
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["ep.h5"]
    assert path.read_bytes() == before
    assert_episodes_equal(old, read_episode(path))


def test_failed_replace_removes_temp(tmp_path: Path, monkeypatch) -> None:
    def boom(src, dst):
        raise PermissionError("replace refused (simulated)")

    monkeypatch.setattr("embodia.data.episodes.os.replace", boom)
    with pytest.raises(PermissionError):
        write_episode(tmp_path / "ep.h5", box_episode())
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------ bad files


@pytest.fixture
def mixed_dir(tmp_path: Path) -> tuple[Path, list[Episode], Path, Path]:
    good = [dict_episode(seed=0), box_episode(seed=1)]
    write_episode(tmp_path / "a_good.h5", good[0])
    write_episode(tmp_path / "c_good.h5", good[1])
    truncated = write_episode(tmp_path / "b_truncated.h5", dict_episode(seed=2))
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "d_garbage.h5"
    garbage.write_bytes(b"this is not an HDF5 file\n" * 100)
    (tmp_path / ".e_inprogress.h5.abc.tmp").write_bytes(b"partial")
    (tmp_path / "notes.txt").write_text("not an episode")
    (tmp_path / "sub").mkdir()
    write_episode(tmp_path / "sub" / "nested.h5", box_episode())
    return tmp_path, good, truncated, garbage


def test_episode_files_sorted_non_recursive_without_temp(mixed_dir) -> None:
    directory, _, _, _ = mixed_dir
    names = [p.name for p in episode_files(directory)]
    assert names == ["a_good.h5", "b_truncated.h5", "c_good.h5", "d_garbage.h5"]
    with pytest.raises(NotADirectoryError, match="not an existing directory"):
        episode_files(directory / "missing")


@pytest.mark.parametrize("which", ["truncated", "garbage"])
def test_read_corrupt_file_raises_with_path(mixed_dir, which: str) -> None:
    _, _, truncated, garbage = mixed_dir
    path = truncated if which == "truncated" else garbage
    with pytest.raises(EpisodeFileError) as info:
        read_episode(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    assert info.value.path == path


def test_load_episodes_skips_corrupt_with_warning(mixed_dir) -> None:
    directory, good, truncated, garbage = mixed_dir
    with pytest.warns(UserWarning) as record:
        episodes = load_episodes(directory)
    messages = [str(w.message) for w in record]
    assert any(re.match(rf"skipping {re.escape(str(truncated))}: ", m) for m in messages), messages
    assert any(re.match(rf"skipping {re.escape(str(garbage))}: ", m) for m in messages), messages
    assert len(episodes) == 2
    for expected, got in zip(good, episodes, strict=True):
        assert_episodes_equal(expected, got)


def test_load_episodes_strict_raises(mixed_dir) -> None:
    directory, _, truncated, _ = mixed_dir
    with pytest.raises(EpisodeFileError, match=f"^{re.escape(str(truncated))}: "):
        load_episodes(directory, skip_corrupt=False)


def test_read_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.h5"
    with pytest.raises(EpisodeFileError, match=f"^{re.escape(str(path))}: no such file"):
        read_episode(path)


def _drop_rewards(f: h5py.File) -> None:
    del f["rewards"]


def _long_rewards(f: h5py.File) -> None:
    del f["rewards"]
    f["rewards"] = np.zeros(T + 1)


def _future_version(f: h5py.File) -> None:
    f.attrs["format_version"] = FORMAT_VERSION + 1


def _no_version(f: h5py.File) -> None:
    del f.attrs["format_version"]


def _bad_json(f: h5py.File) -> None:
    f.attrs["metrics_json"] = "{not json"


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (_drop_rewards, "missing required dataset 'rewards'"),
        (_long_rewards, "inconsistent episode: Episode.rewards has length 7, expected T=6"),
        (_future_version, "unknown format_version 2"),
        (_no_version, "no 'format_version' attribute"),
        (_bad_json, "attribute 'metrics_json' is not valid JSON"),
    ],
)
def test_read_tampered_file(tmp_path: Path, tamper, reason: str) -> None:
    path = write_episode(tmp_path / "ep.h5", dict_episode())
    with h5py.File(path, "r+") as f:
        tamper(f)
    with pytest.raises(EpisodeFileError) as info:
        read_episode(path)
    assert str(info.value).startswith(f"{path}: {reason}")


def test_episode_file_error_survives_reconstruction() -> None:
    # Ray/multiprocessing rebuild exceptions from their args (via __reduce__, as copy does).
    err = EpisodeFileError("/x/ep.h5", "no such file")
    back = copy.deepcopy(err)
    assert str(back) == "/x/ep.h5: no such file" and back.reason == "no such file"
