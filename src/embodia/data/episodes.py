"""Episode files: one episode per HDF5 file (per-episode groups like Minari's; `embodia export` writes Minari).

Layout of one file (root group)::

    observations/<key>   (T+1, ...)   Dict observation, one dataset per key (text: vlen UTF-8 strings)
    observations         (T+1, ...)   Box observation, a single dataset instead of the group
    actions              (T, Da)      float32
    rewards              (T,)         float64
    terminations         (T,)         bool
    truncations          (T,)         bool
    mj_state             (T+1, S)     float64, mujoco.mj_getState(..., mjSTATE_INTEGRATION); optional
    infos/<key>          (T, ...)     per-step numeric infos
    memory/<key>         (...)        optional memory snapshots (ragged arrays + offsets), verbatim
    scene_xml            ()           vlen UTF-8 string; optional
    attrs: format_version, env_id, seed (absent = None), instruction, num_steps,
           env_kwargs_json, metrics_json, extra_json

Files are written atomically (temp file in the same directory, fsync, ``os.replace``), so a reader never
sees a half-written episode. No pickle is used anywhere: arrays go to HDF5 datasets, dict-like metadata to
JSON strings.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from embodia.atomic import atomic_write

__all__ = [
    "FORMAT_VERSION",
    "Episode",
    "EpisodeFileError",
    "EpisodeRecorder",
    "episode_files",
    "load_episodes",
    "read_episode",
    "write_episode",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Version of the on-disk layout written by :func:`write_episode`; bump it when the layout changes."""

_REQUIRED = ("observations", "actions", "rewards", "terminations", "truncations")
_META_KEYS = frozenset({"env_id", "seed", "instruction", "scene_xml", "env_kwargs", "metrics", "extra", "memory"})
_NUMERIC_KINDS = "biufc"  # bool, signed int, unsigned int, float, complex
_GZIP_LEVEL = 4


class EpisodeFileError(Exception):
    """An episode file is missing, unreadable, corrupt or inconsistent.

    ``str(error)`` is always ``f"{path}: {reason}"``.

    Args:
        path: The offending file.
        reason: One line saying what is wrong with it.

    Attributes:
        path: The offending file.
        reason: What is wrong with it (without the path).
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        # args = (path, reason) keeps the exception picklable by Ray/multiprocessing.
        super().__init__(str(path), reason)
        self.path = Path(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(eq=False, repr=False)
class Episode:
    """One recorded episode of T steps.

    Observations have T+1 entries (the reset observation plus one per step); per-step arrays have T.
    Compare episodes field by field: ``==`` is identity, since fields are numpy arrays.

    Attributes:
        observations: Dict observation ``{key: (T+1, ...)}``; text entries are object arrays of ``str``,
            shape ``(T+1,)``. Or a Box observation: one array ``(T+1, ...)``.
        actions: ``(T, Da)`` float32 actions.
        rewards: ``(T,)`` float64 rewards.
        terminations: ``(T,)`` bool, the episode reached a terminal state at step t.
        truncations: ``(T,)`` bool, the episode was cut off (time limit) at step t.
        mj_state: ``(T+1, S)`` float64 MuJoCo states (``mj_getState(..., mjSTATE_INTEGRATION)``) for exact
            replay, or None.
        infos: Per-step numeric infos ``{key: (T, ...)}``.
        env_id: Gymnasium id of the environment, e.g. ``"embodia/UrbanNav-v0"``.
        seed: The ``reset(seed=...)`` seed, or None.
        instruction: The episode's language instruction ("" if none).
        scene_xml: The compiled scene MJCF (``spec.to_xml()``), or None.
        env_kwargs: JSON-serialisable kwargs given to ``gymnasium.make`` (tuples come back as lists).
        metrics: Episode metrics ``{name: float}`` (success, SPL, ...).
        extra: JSON-serialisable free-form metadata (e.g. expert mode).
        memory: Optional memory snapshots as ragged arrays + offsets ``{key: (...)}``, stored verbatim; None
            when absent (an empty dict is stored and read back as an empty dict).
    """

    observations: dict[str, np.ndarray] | np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    mj_state: np.ndarray | None = None
    infos: dict[str, np.ndarray] = field(default_factory=dict)
    env_id: str = ""
    seed: int | None = None
    instruction: str = ""
    scene_xml: str | None = None
    env_kwargs: dict = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    memory: dict[str, np.ndarray] | None = None

    @property
    def num_steps(self) -> int:
        """Number of steps T (the length of ``actions``)."""
        return len(self.actions)

    def __repr__(self) -> str:
        if isinstance(self.observations, Mapping):
            obs = "{" + ", ".join(f"{k}: {_describe(v)}" for k, v in self.observations.items()) + "}"
        else:
            obs = _describe(self.observations)
        return (
            f"Episode(env_id={self.env_id!r}, seed={self.seed!r}, num_steps={self.num_steps}, "
            f"observations={obs}, mj_state={_describe(self.mj_state)}, infos={sorted(self.infos)}, "
            f"metrics={self.metrics!r})"
        )

    def validate(self) -> None:
        """Check shapes, dtypes and metadata for consistency.

        Raises:
            ValueError: Naming the offending field, e.g. a length that is not T (per-step arrays) or T+1
                (observations, mj_state), non-finite actions or rewards, a wrong dtype, or metadata that
                is not JSON-serialisable.
        """
        obs_len = self._validate_observations()

        steps = {
            "actions": self.actions,
            "rewards": self.rewards,
            "terminations": self.terminations,
            "truncations": self.truncations,
        }
        for name, arr in steps.items():
            if not isinstance(arr, np.ndarray):
                raise ValueError(f"Episode.{name} must be a numpy array, got {type(arr).__name__}")
            if arr.ndim == 0:
                raise ValueError(f"Episode.{name} must have a time axis, got a 0-d array")
        lengths = {name: len(arr) for name, arr in steps.items()}
        if len(set(lengths.values())) == 1:
            t = lengths["actions"]
            if obs_len != t + 1:
                raise ValueError(
                    f"Episode.observations has {obs_len} entries but {t} steps were recorded "
                    f"(actions/rewards/terminations/truncations have T={t}); expected T+1={t + 1}"
                )
        else:
            t = obs_len - 1
            for name, n in lengths.items():
                if n != t:
                    raise ValueError(
                        f"Episode.{name} has length {n}, expected T={t} (observations have T+1={obs_len} entries)"
                    )

        if self.actions.ndim != 2 or self.actions.dtype.kind != "f":
            raise ValueError(
                f"Episode.actions must be a (T, Da) float array, got shape {self.actions.shape} "
                f"dtype {self.actions.dtype}"
            )
        if not np.isfinite(self.actions).all():
            bad = int(np.flatnonzero(~np.isfinite(self.actions).all(axis=1))[0])
            raise ValueError(f"Episode.actions has non-finite values (first at step {bad})")
        if self.rewards.shape != (t,) or self.rewards.dtype.kind not in "iuf":
            raise ValueError(
                f"Episode.rewards must be a (T,) = ({t},) real array, got shape {self.rewards.shape} "
                f"dtype {self.rewards.dtype}"
            )
        if not np.isfinite(self.rewards).all():
            bad = int(np.flatnonzero(~np.isfinite(self.rewards))[0])
            raise ValueError(f"Episode.rewards has non-finite values (first at step {bad})")
        for name in ("terminations", "truncations"):
            arr = steps[name]
            if arr.shape != (t,) or arr.dtype != np.bool_:
                raise ValueError(
                    f"Episode.{name} must be a (T,) = ({t},) bool array, got shape {arr.shape} dtype {arr.dtype}"
                )

        if self.mj_state is not None:
            ms = self.mj_state
            if not isinstance(ms, np.ndarray) or ms.ndim != 2 or ms.dtype.kind != "f":
                raise ValueError(
                    f"Episode.mj_state must be None or a (T+1, S) float array, got "
                    f"{_describe(ms) if isinstance(ms, np.ndarray) else type(ms).__name__}"
                )
            if len(ms) != t + 1:
                raise ValueError(f"Episode.mj_state has length {len(ms)}, expected T+1={t + 1} (T={t})")

        if not isinstance(self.infos, Mapping):
            raise ValueError(f"Episode.infos must be a dict, got {type(self.infos).__name__}")
        for key, arr in self.infos.items():
            where = f"Episode.infos[{key!r}]"
            _check_key(key, where)
            _check_array(arr, where, allow_text=False)
            if arr.ndim == 0 or len(arr) != t:
                raise ValueError(f"{where} has shape {arr.shape}, expected length T={t}")

        if self.memory is not None:
            if not isinstance(self.memory, Mapping):
                raise ValueError(f"Episode.memory must be None or a dict, got {type(self.memory).__name__}")
            for key, arr in self.memory.items():
                where = f"Episode.memory[{key!r}]"
                _check_key(key, where)
                _check_array(arr, where, allow_text=True)

        self._validate_metadata()

    def _validate_observations(self) -> int:
        """Check the observations and return their common length T+1."""
        obs = self.observations
        if isinstance(obs, Mapping):
            if not obs:
                raise ValueError("Episode.observations is an empty dict")
            first_key, obs_len = None, None
            for key, arr in obs.items():
                where = f"Episode.observations[{key!r}]"
                _check_key(key, where)
                if isinstance(arr, Mapping):
                    raise ValueError(f"{where} is a nested dict; only flat Dict observations are supported")
                _check_array(arr, where, allow_text=True)
                if arr.ndim == 0:
                    raise ValueError(f"{where} must have a time axis (T+1, ...), got a 0-d array")
                if obs_len is None:
                    first_key, obs_len = key, len(arr)
                elif len(arr) != obs_len:
                    raise ValueError(
                        f"{where} has {len(arr)} entries but Episode.observations[{first_key!r}] has "
                        f"{obs_len}; all observations need T+1 entries"
                    )
            assert obs_len is not None
        else:
            _check_array(obs, "Episode.observations", allow_text=True)
            if obs.ndim == 0:
                raise ValueError("Episode.observations must have a time axis (T+1, ...), got a 0-d array")
            obs_len = len(obs)
        if obs_len < 1:
            raise ValueError("Episode.observations is empty; it needs at least the reset observation")
        return obs_len

    def _validate_metadata(self) -> None:
        for name in ("env_id", "instruction"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"Episode.{name} must be a str, got {type(getattr(self, name)).__name__}")
        if self.scene_xml is not None and not isinstance(self.scene_xml, str):
            raise ValueError(f"Episode.scene_xml must be None or a str, got {type(self.scene_xml).__name__}")
        if self.seed is not None:
            if isinstance(self.seed, bool | np.bool_) or not isinstance(self.seed, numbers.Integral):
                raise ValueError(f"Episode.seed must be None or an int, got {type(self.seed).__name__}")
            if not -(2**63) <= int(self.seed) < 2**64:
                raise ValueError(f"Episode.seed {self.seed} does not fit in 64 bits")
        if not isinstance(self.metrics, Mapping):
            raise ValueError(f"Episode.metrics must be a dict, got {type(self.metrics).__name__}")
        for key, value in self.metrics.items():
            if not isinstance(key, str):
                raise ValueError(f"Episode.metrics keys must be str, got {key!r}")
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"Episode.metrics[{key!r}] must be a real number, got {value!r}")
        for name in ("env_kwargs", "extra"):
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                raise ValueError(f"Episode.{name} must be a dict, got {type(value).__name__}")
            try:
                json.dumps(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"Episode.{name} is not JSON-serialisable: {exc}") from None


class EpisodeRecorder:
    """Builds an Episode step by step during a rollout.

    Observations (and ``mj_state``) are copied when recorded, so an env that reuses its buffers is safe.

    Example::

        rec = EpisodeRecorder(record_infos=("is_success",))
        obs, info = env.reset(seed=seed)
        rec.start(obs, mj_state=state_of(env))
        while True:
            action = agent.act(obs)
            obs, reward, terminated, truncated, info = env.step(action)
            rec.add(action, obs, reward, terminated, truncated, info, mj_state=state_of(env))
            if terminated or truncated:
                break
        write_episode(path, rec.finish(env_id=env.spec.id, seed=seed))

    Args:
        record_infos: Names of scalar ``info`` keys copied at every step into ``Episode.infos`` as float64
            ``(T,)`` arrays; a key missing from a step's info is recorded as NaN.
    """

    def __init__(self, *, record_infos: Sequence[str] = ()) -> None:
        if isinstance(record_infos, str):
            raise TypeError(f"record_infos must be a sequence of str, not a str ({record_infos!r})")
        names = tuple(record_infos)
        for name in names:
            _check_key(name, "record_infos entry")
        if len(set(names)) != len(names):
            raise ValueError(f"record_infos has duplicate names: {names}")
        self._record_infos = names
        self._clear()

    def _clear(self) -> None:
        self._started = False
        self._obs: list[Any] = []
        self._actions: list[np.ndarray] = []
        self._rewards: list[float] = []
        self._terms: list[bool] = []
        self._truncs: list[bool] = []
        self._mj: list[np.ndarray] | None = None
        self._infos: dict[str, list[float]] = {name: [] for name in self._record_infos}

    def __len__(self) -> int:
        """Number of steps recorded so far."""
        return len(self._actions)

    def start(self, obs: Mapping[str, Any] | np.ndarray, mj_state: np.ndarray | None = None) -> None:
        """Begin a new episode (discarding anything recorded before).

        Args:
            obs: The reset observation: a flat dict of arrays (and ``str`` entries) or one array.
            mj_state: ``(S,)`` MuJoCo state at reset, or None to record no states for this episode.
        """
        self._clear()
        self._obs.append(_snapshot_obs(obs, step=0))
        if mj_state is not None:
            self._mj = [_snapshot_state(mj_state, step=0)]
        self._started = True

    def add(
        self,
        action: Any,
        obs: Mapping[str, Any] | np.ndarray,
        reward: float,
        terminated: bool,
        truncated: bool,
        info: Mapping[str, Any] | None = None,
        mj_state: np.ndarray | None = None,
    ) -> None:
        """Record one ``env.step``.

        Args:
            action: The action taken, ``(Da,)`` (a scalar becomes ``(1,)``); stored as float32.
            obs: The observation returned by the step, same structure as the reset observation.
            reward: The step reward.
            terminated: The ``terminated`` flag of the step.
            truncated: The ``truncated`` flag of the step.
            info: The step's info dict; only the ``record_infos`` keys are kept.
            mj_state: ``(S,)`` MuJoCo state after the step; required iff one was given to :meth:`start`.

        Raises:
            RuntimeError: If :meth:`start` was not called.
            ValueError: If the action, observation or state does not match earlier steps.
        """
        if not self._started:
            raise RuntimeError("EpisodeRecorder.add() called before start()")
        step = len(self._actions) + 1
        act = np.atleast_1d(np.array(action, dtype=np.float32))
        if act.ndim != 1:
            raise ValueError(f"action at step {step} must be 1-D (Da,), got shape {act.shape}")
        if self._actions and act.shape != self._actions[0].shape:
            raise ValueError(f"action at step {step} has shape {act.shape}, earlier actions {self._actions[0].shape}")
        snap = _snapshot_obs(obs, step=step)
        first = self._obs[0]
        if isinstance(first, dict) != isinstance(snap, dict) or (
            isinstance(first, dict) and first.keys() != snap.keys()
        ):
            raise ValueError(
                f"observation at step {step} has a different structure than the reset observation "
                f"({_structure(snap)} vs {_structure(first)})"
            )
        if (self._mj is None) != (mj_state is None):
            raise ValueError(
                f"mj_state at step {step}: give it at every step or never "
                f"(start() {'had' if self._mj is not None else 'had no'} mj_state)"
            )
        state = None if mj_state is None else _snapshot_state(mj_state, step=step)
        # Convert everything before appending anything, so a bad step leaves the recorder unchanged.
        info_values = {name: _info_scalar(info, name, step) for name in self._record_infos}
        reward_f, term_b, trunc_b = float(reward), bool(terminated), bool(truncated)

        self._actions.append(act)
        self._obs.append(snap)
        self._rewards.append(reward_f)
        self._terms.append(term_b)
        self._truncs.append(trunc_b)
        if self._mj is not None and state is not None:
            self._mj.append(state)
        for name, value in info_values.items():
            self._infos[name].append(value)

    def finish(self, **meta: Any) -> Episode:
        """Stack the recorded steps into a validated Episode and reset the recorder.

        Args:
            **meta: Episode metadata: any of ``env_id``, ``seed``, ``instruction``, ``scene_xml``,
                ``env_kwargs``, ``metrics``, ``extra``, ``memory``.

        Returns:
            The Episode, with ``observations`` ``(T+1, ...)``, ``actions`` ``(T, Da)`` float32,
            ``rewards`` ``(T,)`` float64, flags ``(T,)`` bool, ``mj_state`` ``(T+1, S)`` float64 or None.

        Raises:
            TypeError: On an unknown metadata key.
            RuntimeError: If nothing was recorded (no start() or no add()).
            ValueError: If the stacked episode fails :meth:`Episode.validate`.
        """
        unknown = sorted(set(meta) - _META_KEYS)
        if unknown:
            raise TypeError(f"EpisodeRecorder.finish() got unknown metadata {unknown}; known: {sorted(_META_KEYS)}")
        if not self._started or not self._actions:
            raise RuntimeError("EpisodeRecorder.finish() called with no recorded steps (call start() and add())")
        first = self._obs[0]
        if isinstance(first, dict):
            observations: dict[str, np.ndarray] | np.ndarray = {
                key: _stack([o[key] for o in self._obs], f"observation {key!r}") for key in first
            }
        else:
            observations = _stack(self._obs, "observation")
        episode = Episode(
            observations=observations,
            actions=np.stack(self._actions),
            rewards=np.asarray(self._rewards, dtype=np.float64),
            terminations=np.asarray(self._terms, dtype=np.bool_),
            truncations=np.asarray(self._truncs, dtype=np.bool_),
            mj_state=None if self._mj is None else _stack(self._mj, "mj_state"),
            infos={name: np.asarray(values, dtype=np.float64) for name, values in self._infos.items()},
            **meta,
        )
        episode.validate()
        self._clear()
        return episode


def write_episode(path: str | os.PathLike, episode: Episode, *, compression: str | None = "gzip") -> Path:
    """Validate an episode and write it atomically to one HDF5 file.

    The file is written to a hidden temp file (``.<name>.<random>.tmp``) in the same directory, flushed and
    fsynced, then moved onto ``path`` with ``os.replace``: readers see either the old file or the complete
    new one. On any error the temp file is removed and ``path`` is untouched. Parent directories are created.
    Name files ``*.h5`` so that :func:`episode_files` finds them.

    Args:
        path: Destination file; an existing file is replaced.
        episode: The episode to store.
        compression: ``"gzip"`` (level 4, with shuffle), ``"lzf"`` or None. Applied chunked to the large
            arrays (observations, mj_state, memory), never to the per-step scalars.

    Returns:
        The destination path.

    Raises:
        ValueError: If the episode is invalid or ``compression`` is unknown.
    """
    if compression not in (None, "gzip", "lzf"):
        raise ValueError(f"compression must be 'gzip', 'lzf' or None, got {compression!r}")
    episode.validate()
    path = Path(path)
    with atomic_write(path) as tmp, h5py.File(tmp, "x") as f:
        _write(f, episode, compression)
        f.flush()
    return path


def read_episode(path: str | os.PathLike) -> Episode:
    """Read one episode file written by :func:`write_episode`.

    Args:
        path: The ``.h5`` file.

    Returns:
        The Episode; arrays keep their stored dtypes, text observations come back as object arrays of
        ``str``, a file without ``mj_state`` gives ``mj_state=None``.

    Raises:
        EpisodeFileError: If the file is missing, not HDF5 or truncated, lacks a required dataset, has
            inconsistent lengths or an unknown ``format_version``. The message starts with the path.
    """
    path = Path(path)
    if not path.exists():
        raise EpisodeFileError(path, "no such file")
    if not path.is_file():
        raise EpisodeFileError(path, "not a regular file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise EpisodeFileError(path, f"not a readable HDF5 file ({_one_line(exc)})") from None
    try:
        with f:
            episode = _read(f, path)
    except EpisodeFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise EpisodeFileError(path, f"corrupt episode file ({type(exc).__name__}: {_one_line(exc)})") from None
    try:
        episode.validate()
    except ValueError as exc:
        raise EpisodeFileError(path, f"inconsistent episode: {_one_line(exc)}") from None
    return episode


def episode_files(directory: str | os.PathLike) -> list[Path]:
    """List the episode files in a directory.

    Args:
        directory: Directory to scan (not recursively).

    Returns:
        Sorted ``*.h5`` files, skipping hidden files (including in-progress ``.*.tmp`` writes).

    Raises:
        NotADirectoryError: If ``directory`` is not an existing directory.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise NotADirectoryError(f"{directory}: not an existing directory")
    return sorted(p for p in directory.glob("*.h5") if not p.name.startswith(".") and p.is_file())


def load_episodes(directory: str | os.PathLike, *, skip_corrupt: bool = True) -> list[Episode]:
    """Read every episode file in a directory, in :func:`episode_files` order.

    Args:
        directory: Directory holding ``*.h5`` episode files.
        skip_corrupt: If True, a bad file is reported (``warnings.warn`` and a log warning,
            ``"skipping <path>: <reason>"``) and skipped; if False its error propagates.

    Returns:
        The episodes that could be read.

    Raises:
        EpisodeFileError: For a bad file when ``skip_corrupt`` is False.
        NotADirectoryError: If ``directory`` is not an existing directory.
    """
    episodes = []
    for path in episode_files(directory):
        try:
            episodes.append(read_episode(path))
        except EpisodeFileError as exc:
            if not skip_corrupt:
                raise
            message = f"skipping {path}: {exc.reason}"
            logger.warning(message)
            warnings.warn(message, stacklevel=2)
    return episodes


# --------------------------------------------------------------------------------------------- helpers


def _describe(arr: Any) -> str:
    if arr is None:
        return "None"
    if isinstance(arr, np.ndarray):
        return f"{arr.dtype}{list(arr.shape)}"
    return type(arr).__name__


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _check_key(key: Any, where: str) -> None:
    if not isinstance(key, str) or not key or "/" in key or key in (".", ".."):
        raise ValueError(f"{where}: key {key!r} must be a non-empty str without '/'")


def _is_text(arr: np.ndarray) -> bool:
    return arr.dtype == object


def _check_array(arr: Any, where: str, *, allow_text: bool) -> None:
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{where} must be a numpy array, got {type(arr).__name__}")
    if arr.dtype.kind in _NUMERIC_KINDS:
        return
    if allow_text and _is_text(arr):
        bad = next((x for x in arr.flat if not isinstance(x, str)), None)
        if bad is not None:
            raise ValueError(f"{where} is an object array but holds {type(bad).__name__}; only str is storable")
        return
    hint = " (text must be an object array of str)" if arr.dtype.kind in "US" and allow_text else ""
    raise ValueError(f"{where} has unsupported dtype {arr.dtype}{hint}")


def _snapshot_obs(obs: Any, *, step: int) -> Any:
    if isinstance(obs, Mapping):
        snap = {}
        for key, value in obs.items():
            if isinstance(value, Mapping):
                raise ValueError(f"observation {key!r} at step {step} is a nested dict; Dict obs must be flat")
            snap[key] = value if isinstance(value, str) else np.array(value)
        return snap
    if isinstance(obs, str):
        raise ValueError(f"observation at step {step} is a str; use a Dict observation for text")
    return np.array(obs)


def _snapshot_state(state: Any, *, step: int) -> np.ndarray:
    arr = np.array(state, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"mj_state at step {step} must be 1-D (S,), got shape {arr.shape}")
    return arr


def _structure(obs: Any) -> str:
    return f"keys {sorted(obs)}" if isinstance(obs, dict) else "a single array"


def _info_scalar(info: Mapping[str, Any] | None, name: str, step: int) -> float:
    if info is None or name not in info:
        return math.nan
    value = np.asarray(info[name])
    if value.size != 1 or value.dtype.kind not in "biuf":
        raise ValueError(f"info[{name!r}] at step {step} must be a real scalar, got {info[name]!r}")
    return float(value.reshape(()))


def _stack(items: list[Any], what: str) -> np.ndarray:
    if all(isinstance(x, str) for x in items):
        out = np.empty(len(items), dtype=object)
        out[:] = items
        return out
    try:
        return np.stack(items)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"cannot stack {what} over steps: {_one_line(exc)}") from None


def _compress_kwargs(arr: np.ndarray, compression: str | None) -> dict[str, Any]:
    if compression is None or arr.ndim == 0 or arr.size == 0 or _is_text(arr):
        return {}
    kwargs: dict[str, Any] = {"chunks": True, "compression": compression, "shuffle": True}
    if compression == "gzip":
        kwargs["compression_opts"] = _GZIP_LEVEL
    return kwargs


def _put(group: h5py.Group, name: str, arr: np.ndarray, compression: str | None = None) -> None:
    if _is_text(arr):
        group.create_dataset(name, data=arr, dtype=h5py.string_dtype())
    else:
        group.create_dataset(name, data=arr, **_compress_kwargs(arr, compression))


def _get(ds: h5py.Dataset) -> np.ndarray:
    if h5py.check_string_dtype(ds.dtype) is not None:
        return np.asarray(ds.asstr()[()], dtype=object)
    return np.asarray(ds[()])


def _dataset(f: h5py.File, name: str, path: Path) -> h5py.Dataset:
    if name not in f:
        raise EpisodeFileError(path, f"missing required dataset {name!r}")
    node = f[name]
    if not isinstance(node, h5py.Dataset):
        raise EpisodeFileError(path, f"{name!r} is a group, expected a dataset")
    return node


def _put_group(f: h5py.File, name: str, arrays: Mapping[str, np.ndarray], compression: str | None) -> None:
    group = f.create_group(name, track_order=True)
    for key, arr in arrays.items():
        _put(group, key, arr, compression)


def _get_group(f: h5py.File, name: str, path: Path) -> dict[str, np.ndarray]:
    group = f[name]
    if not isinstance(group, h5py.Group):
        raise EpisodeFileError(path, f"{name!r} is a dataset, expected a group")
    out = {}
    for key, node in group.items():
        if not isinstance(node, h5py.Dataset):
            raise EpisodeFileError(path, f"'{name}/{key}' is a group, expected a dataset")
        out[key] = _get(node)
    return out


def _write(f: h5py.File, ep: Episode, compression: str | None) -> None:
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["env_id"] = ep.env_id
    if ep.seed is not None:
        seed = int(ep.seed)
        f.attrs["seed"] = np.int64(seed) if seed < 2**63 else np.uint64(seed)
    f.attrs["instruction"] = ep.instruction
    f.attrs["num_steps"] = np.int64(ep.num_steps)
    f.attrs["env_kwargs_json"] = json.dumps(ep.env_kwargs)
    f.attrs["metrics_json"] = json.dumps({k: float(v) for k, v in ep.metrics.items()})
    f.attrs["extra_json"] = json.dumps(ep.extra)

    if isinstance(ep.observations, Mapping):
        _put_group(f, "observations", ep.observations, compression)
    else:
        _put(f, "observations", ep.observations, compression)
    _put(f, "actions", ep.actions)
    _put(f, "rewards", ep.rewards)
    _put(f, "terminations", ep.terminations)
    _put(f, "truncations", ep.truncations)
    if ep.mj_state is not None:
        _put(f, "mj_state", ep.mj_state, compression)
    _put_group(f, "infos", ep.infos, None)
    if ep.memory is not None:
        _put_group(f, "memory", ep.memory, compression)
    if ep.scene_xml is not None:
        f.create_dataset("scene_xml", data=ep.scene_xml, dtype=h5py.string_dtype())


def _read(f: h5py.File, path: Path) -> Episode:
    if "format_version" not in f.attrs:
        raise EpisodeFileError(path, "no 'format_version' attribute (not an embodia episode file)")
    version = f.attrs["format_version"]
    if not isinstance(version, numbers.Integral) or int(version) != FORMAT_VERSION:
        shown = int(version) if isinstance(version, numbers.Integral) else _one_line(repr(version))
        raise EpisodeFileError(path, f"unknown format_version {shown} (this embodia reads version {FORMAT_VERSION})")
    for name in _REQUIRED:
        if name not in f:
            raise EpisodeFileError(path, f"missing required dataset {name!r}")

    node = f["observations"]
    observations = _get_group(f, "observations", path) if isinstance(node, h5py.Group) else _get(node)
    attrs = f.attrs
    episode = Episode(
        observations=observations,
        actions=_get(_dataset(f, "actions", path)),
        rewards=_get(_dataset(f, "rewards", path)),
        terminations=_get(_dataset(f, "terminations", path)),
        truncations=_get(_dataset(f, "truncations", path)),
        mj_state=_get(_dataset(f, "mj_state", path)) if "mj_state" in f else None,
        infos=_get_group(f, "infos", path) if "infos" in f else {},
        env_id=_str_attr(attrs, "env_id", path),
        seed=int(attrs["seed"]) if "seed" in attrs else None,
        instruction=_str_attr(attrs, "instruction", path),
        scene_xml=str(_dataset(f, "scene_xml", path).asstr()[()]) if "scene_xml" in f else None,
        env_kwargs=_json_attr(attrs, "env_kwargs_json", path),
        metrics=_json_attr(attrs, "metrics_json", path),
        extra=_json_attr(attrs, "extra_json", path),
        memory=_get_group(f, "memory", path) if "memory" in f else None,
    )
    num_steps = attrs.get("num_steps")
    if num_steps is not None and int(num_steps) != episode.num_steps:
        raise EpisodeFileError(
            path, f"num_steps attribute is {int(num_steps)} but 'actions' has {episode.num_steps} rows"
        )
    return episode


def _str_attr(attrs: h5py.AttributeManager, name: str, path: Path) -> str:
    value = attrs.get(name, "")
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if not isinstance(value, str):
        raise EpisodeFileError(path, f"attribute {name!r} is not a string")
    return value


def _json_attr(attrs: h5py.AttributeManager, name: str, path: Path) -> dict:
    text = _str_attr(attrs, name, path) or "{}"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EpisodeFileError(path, f"attribute {name!r} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise EpisodeFileError(path, f"attribute {name!r} is not a JSON object")
    return value
