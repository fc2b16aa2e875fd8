"""Episode data: per-episode HDF5 files (Minari-compatible layout), datasets and samplers for training."""

from embodia.data.episodes import (
    FORMAT_VERSION,
    Episode,
    EpisodeFileError,
    EpisodeRecorder,
    episode_files,
    load_episodes,
    read_episode,
    write_episode,
)

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
