"""Export embodia episode files as a Minari dataset, so ``minari.load_dataset(NAME)`` reads them.

Minari's own writer lays out the dataset (``data/main_data.hdf5`` with ``episode_<id>`` groups and a
``metadata.json`` of serialised spaces and the env spec); this module fills its episode buffers from our files:

- ``observations``, ``actions``, ``rewards``, ``terminations``, ``truncations`` as stored (the instruction of an
  UrbanNav episode is its ``instruction`` observation, a ``Text`` space);
- ``infos``: ``mj_state`` (T+1 rows, ``mjSTATE_INTEGRATION``, for exact re-simulation) and every per-step info of
  the file, with a NaN row first (Minari's infos have one row per observation, ours one per step);
- the episode's seed.

Spaces and the env spec come from ``gymnasium.make(env_id, **env_kwargs)`` of the first episode (every episode
must share them). Written under ``$MINARI_DATASETS_PATH`` (default ``~/.minari/datasets``), or ``root``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np

from embodia.data.episodes import Episode, load_episodes

__all__ = ["export_minari", "minari_buffer"]


def minari_buffer(episode: Episode, index: int) -> object:
    """One episode as a ``minari.data_collector.EpisodeBuffer`` (see the module docstring for the fields)."""
    from minari.data_collector import EpisodeBuffer

    steps = len(episode.actions)
    infos: dict[str, np.ndarray] = {}
    if episode.mj_state is not None:
        infos["mj_state"] = np.asarray(episode.mj_state, dtype=np.float64)
    for key, value in episode.infos.items():
        value = np.asarray(value, dtype=np.float64)
        pad = np.full((1, *value.shape[1:]), np.nan)
        infos[key] = np.concatenate([pad, value]) if len(value) == steps else value
    obs = episode.observations
    observations = {k: (list(v) if v.dtype == object else v) for k, v in obs.items()} if isinstance(obs, dict) else obs
    return EpisodeBuffer(
        id=index,
        seed=episode.seed,
        observations=observations,
        actions=np.asarray(episode.actions),
        rewards=list(np.asarray(episode.rewards, dtype=np.float64)),
        terminations=list(np.asarray(episode.terminations, dtype=bool)),
        truncations=list(np.asarray(episode.truncations, dtype=bool)),
        infos=infos,
    )


def export_minari(
    episodes: str | os.PathLike | Sequence[Episode],
    dataset_id: str,
    *,
    root: str | os.PathLike | None = None,
    description: str | None = None,
) -> Path:
    """Write ``episodes`` (a directory of episode files, or loaded episodes) as Minari dataset ``dataset_id``.

    Args:
        episodes: An ``embodia collect``/``eval`` directory, or a list of :class:`Episode`.
        dataset_id: Minari's ``(namespace/)(env_name/)dataset_name(-v[version])``, e.g.
            ``"embodia/pushblock/expert-v0"``.
        root: Datasets root (``MINARI_DATASETS_PATH`` during the write); default Minari's (the variable or
            ``~/.minari/datasets``). ``minari.load_dataset`` finds it with the same variable set.
        description: Free text stored with the dataset.

    Returns:
        The dataset's directory.

    Raises:
        ValueError: No episodes, or episodes of different envs or env kwargs.
    """
    if isinstance(episodes, str | os.PathLike):
        episodes = load_episodes(episodes)
    episodes = list(episodes)
    if not episodes:
        raise ValueError("no episodes to export")
    first = episodes[0]
    for i, ep in enumerate(episodes):
        if ep.env_id != first.env_id or ep.env_kwargs != first.env_kwargs:
            raise ValueError(f"episode {i} is from {ep.env_id} {ep.env_kwargs}, episode 0 from {first.env_id} "
                             f"{first.env_kwargs}: one dataset holds one env")  # fmt: skip
    previous = os.environ.get("MINARI_DATASETS_PATH")
    if root is not None:
        os.environ["MINARI_DATASETS_PATH"] = str(Path(root).resolve())
    try:
        return _write(episodes, dataset_id, description)
    finally:
        if root is not None:
            if previous is None:
                os.environ.pop("MINARI_DATASETS_PATH", None)
            else:
                os.environ["MINARI_DATASETS_PATH"] = previous


def _write(episodes: list[Episode], dataset_id: str, description: str | None) -> Path:
    """Minari's writer on our buffers; returns the dataset's directory."""
    import minari

    first = episodes[0]
    env = gym.make(first.env_id, **first.env_kwargs)
    buffers = [minari_buffer(ep, i) for i, ep in enumerate(episodes)]
    try:
        with warnings.catch_warnings():
            # Minari warns about metadata we have no value for (author, e-mail, code link, a separate eval env).
            warnings.filterwarnings("ignore", message=r"`(code_permalink|author|author_email|eval_env)` is set to None")
            dataset = minari.create_dataset_from_buffers(
                dataset_id,
                buffers,
                env=env,
                observation_space=env.observation_space,
                action_space=env.action_space,
                algorithm_name=str(first.extra.get("expert", "embodia collect")),
                description=description or f"{len(episodes)} episodes of {first.env_id} exported from embodia",
                data_format="hdf5",
            )
    finally:
        env.close()
    return Path(dataset.spec.data_path).parent
