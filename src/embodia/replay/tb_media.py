"""TensorBoard media for an evaluation: a replay video, the top-down map, the memory view and EBT's descent.

``log_eval_media(writer, episode, policy)`` writes, for one evaluated episode:

* ``eval/video``: the episode re-rendered from its stored states (every ``stride``-th state, small frames;
  ``add_video`` stores an animated GIF and needs moviepy 1.x: FACTS.md §0);
* ``eval/map``: the top-down map (envs that draw one, :mod:`embodia.envs.views`: UrbanNav);
* ``eval/memory``: the 3-D memory view (episodes of agents with memory);
* ``eval/ebt_energy``: for EBT-Policy (alone or as an agent's inner policy), the mean energy of the episode's
  first observation windows after k = 0 .. K descent steps (x axis: k), from the same starting noise.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embodia.data.episodes import Episode

__all__ = ["ebt_descent_energies", "episode_views", "first_episode", "log_eval_dir_media", "log_eval_media"]


def ebt_descent_energies(policy: Any, episode: Episode, *, windows: int = 16, seed: int = 0) -> list[float] | None:
    """Mean energy after k = 0 .. ``inference_steps`` descent steps on ``episode``'s first observation windows.

    Returns None for a policy without an EBT energy (an agent counts when its inner policy is EBT).
    """
    from embodia.data.windows import EpisodeWindows

    inner = getattr(policy, "inner", policy)
    if not hasattr(inner, "descend"):
        return None
    if policy is not inner:  # an agent: its rows replay the episode through its memory
        data = policy.training_windows([episode])
        with torch.no_grad():
            obs = policy.inner_observations(data.get_batch(np.arange(min(windows, len(data)))))
    else:
        data = EpisodeWindows(
            [episode], n_obs_steps=policy.config.n_obs_steps, horizon=policy.config.horizon,
            obs_keys=policy.config.obs_keys or None,
        )  # fmt: skip
        obs = torch.as_tensor(data.get_batch(np.arange(min(windows, len(data))))["obs"])
    with torch.no_grad():
        obs = inner.normalize_batch({"obs": obs}, with_action=False)["obs"]
    c = inner.config
    generator = torch.Generator().manual_seed(seed)
    a0 = torch.randn((obs.shape[0], c.horizon, c.action_dim), generator=generator, dtype=obs.dtype)
    return [float(inner.descend(obs, a0, steps=k)["energy"].mean()) for k in range(c.inference_steps + 1)]


def episode_views(episode: Episode) -> dict[str, np.ndarray]:
    """The still views of an episode, each made once for TensorBoard and ``report.html``.

    Returns:
        ``{"map": (600, 600, 3), "memory": (480, 640, 3)}`` uint8, each present only where it can be made: the
        top-down map for episodes with stored states of an env that draws one (``has_top_down_map``: UrbanNav), the
        memory view for episodes with a memory snapshot.
    """
    from embodia.envs.views import has_top_down_map

    views = {}
    if episode.mj_state is not None and has_top_down_map(episode.env_id):
        from embodia.replay.topdown import draw_topdown

        views["map"] = draw_topdown(episode, size=600)
    if episode.memory:
        from PIL import Image

        from embodia.replay.memory_view import render_memory_view

        with tempfile.TemporaryDirectory() as tmp:
            path = render_memory_view(episode, Path(tmp) / "memory.png", width=640, height=480)
            views["memory"] = np.asarray(Image.open(path).convert("RGB"))
    return views


def log_eval_media(
    writer: Any,
    episode: Episode,
    policy: Any = None,
    *,
    views: dict[str, np.ndarray] | None = None,
    stride: int = 4,
    size: int = 160,
) -> list[str]:
    """Write the media of one evaluated ``episode`` to a ``SummaryWriter``; returns the tags written.

    ``views`` are the episode's :func:`episode_views` when the caller has made them already (None: made here). A
    view that cannot be made (no stored states, no memory, an env without a top-down map) is skipped, not an error.
    """
    from embodia.replay.video import render_episode

    tags = []
    if episode.mj_state is not None:
        frames = render_episode(episode, width=size, height=size * 3 // 4)[::stride]  # (T', H, W, 3)
        video = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))[None]  # (1, T', 3, H, W)
        writer.add_video("eval/video", video, 0, fps=max(1, 10 // stride))
        tags.append("eval/video")
    for name, image in (episode_views(episode) if views is None else views).items():
        writer.add_image(f"eval/{name}", image, 0, dataformats="HWC")
        tags.append(f"eval/{name}")
    if policy is not None:
        energies = ebt_descent_energies(policy, episode)
        if energies is not None:
            for k, energy in enumerate(energies):
                writer.add_scalar("eval/ebt_energy", energy, k)
            tags.append("eval/ebt_energy")
    return tags


def first_episode(eval_dir: str | Path) -> Episode | None:
    """The first episode file of an evaluation directory, read (None if it has none)."""
    from embodia.data.episodes import episode_files, read_episode

    files = episode_files(eval_dir)
    return read_episode(files[0]) if files else None


def log_eval_dir_media(
    log_dir: str | Path, episode: Episode | None, policy: Any = None, views: dict[str, np.ndarray] | None = None
) -> list[str]:
    """:func:`log_eval_media` into TensorBoard at ``log_dir`` (nothing for ``episode=None``)."""
    from torch.utils.tensorboard import SummaryWriter

    if episode is None:
        return []
    with SummaryWriter(str(log_dir)) as writer:
        return log_eval_media(writer, episode, policy, views=views)
