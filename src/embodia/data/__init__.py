"""Episode data: per-episode HDF5 files, training windows and samplers, episode digests.

The files have embodia's own layout; ``embodia export --format minari`` writes a Minari dataset from them.
"""

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
