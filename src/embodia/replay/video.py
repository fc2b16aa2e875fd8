"""Re-render an episode from its stored MuJoCo states into frames and an MP4 video (no physics runs).

The environment is rebuilt from the episode file's env id, kwargs and seed (its scene XML must equal the stored
one); then, for every stored state, ``mj_setState`` and an offscreen render through the chosen camera. Rendering is
headless (EGL).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from embodia.data.episodes import Episode
from embodia.replay.overlay import draw_overlay, overlay_lines

__all__ = ["rebuilt_scene", "render_episode", "robot_positions", "stored_frames", "write_video"]


def render_episode(
    episode: Episode, *, camera: str | None = None, width: int = 320, height: int = 240, overlay: bool = False
) -> np.ndarray:
    """Frames of ``episode``, one per stored state.

    Args:
        episode: An embodia episode with ``mj_state``.
        camera: A camera of the env's scene (UrbanNav: ``chase``, ``top``, ``ego``; PushBlock: ``top``); None:
            ``chase`` where the scene has it, else its first camera.
        width: Frame width, pixels.
        height: Frame height, pixels.
        overlay: Write the instruction, the step and running metrics on every frame (:mod:`~.overlay`).

    Returns:
        ``(T+1, height, width, 3)`` uint8 frames.

    Raises:
        ValueError: No stored states, a scene that differs from the stored one, or an unknown camera (named).
    """
    if not (isinstance(width, int) and isinstance(height, int) and 16 <= width <= 4096 and 16 <= height <= 4096):
        raise ValueError(f"frame size must be two integers in [16, 4096], got {width}x{height}")
    with rebuilt_scene(episode) as sim:
        cameras = [sim.model.camera(i).name for i in range(sim.model.ncam)]
        if camera is None:
            camera = "chase" if "chase" in cameras else (cameras[0] if cameras else -1)
        elif camera not in cameras:
            raise ValueError(f"{episode.env_id} has no camera {camera!r} (cameras: {cameras})")
        _fit_offscreen_buffer(sim, width, height)
        frames = np.empty((len(episode.mj_state), height, width, 3), dtype=np.uint8)
        for t, state in enumerate(episode.mj_state):
            sim.set_mj_state(state)
            frames[t] = sim.render_camera(camera, width, height)
            if overlay:
                frames[t] = draw_overlay(frames[t], overlay_lines(episode, t))
        return frames


@contextlib.contextmanager
def rebuilt_scene(episode: Episode) -> Iterator[Any]:
    """The episode's env, rebuilt from its id, kwargs and seed, unwrapped (closed on exit).

    Raises:
        ValueError: No stored states, not an embodia MuJoCo env, or a scene that differs from the stored one.
    """
    if episode.mj_state is None:
        raise ValueError(f"the {episode.env_id or 'episode'} file has no mj_state: there is nothing to re-render")
    import embodia  # noqa: F401  (registers the environments)
    from embodia.envs.mujoco_base import MjSpecEnv

    env = gym.make(episode.env_id, **episode.env_kwargs)
    try:
        sim = env.unwrapped
        if not isinstance(sim, MjSpecEnv):
            raise ValueError(f"{episode.env_id} is not an embodia MuJoCo env; its states cannot be re-rendered")
        sim.reset(seed=episode.seed)
        if episode.scene_xml is not None and sim.scene_xml != episode.scene_xml:
            raise ValueError(f"the {episode.env_id} scene rebuilt for seed {episode.seed} differs from the stored one")
        yield sim
    finally:
        env.close()


def robot_positions(episode: Episode, sim: Any = None) -> np.ndarray:
    """``(T+1, 2)`` planar robot position (``qpos[:2]``) at every stored state.

    Args:
        episode: An episode with ``mj_state``.
        sim: The episode's :func:`rebuilt_scene` if one is open (its state is changed), else None.
    """
    if sim is None:
        with rebuilt_scene(episode) as scene:
            return robot_positions(episode, scene)
    positions = np.empty((len(episode.mj_state), 2))
    for t, state in enumerate(episode.mj_state):
        sim.set_mj_state(state)
        positions[t] = sim.data.qpos[:2]
    return positions


def stored_frames(episode: Episode, *, overlay: bool = False) -> np.ndarray:
    """The episode's own camera observations ``(T+1, H, W, 3)`` uint8 (the fallback without ``mj_state``).

    Raises:
        ValueError: The episode stored no ``rgb`` observations either.
    """
    obs = episode.observations
    rgb = obs.get("rgb") if isinstance(obs, dict) else None
    if rgb is None or np.asarray(rgb).ndim != 4 or np.asarray(rgb).shape[-1] != 3:
        keys = sorted(obs) if isinstance(obs, dict) else "a Box observation"
        raise ValueError(
            f"the episode has no mj_state to re-render and no rgb observations to show (observations: {keys})"
        )
    frames = np.asarray(rgb, dtype=np.uint8).copy()
    if overlay:
        frames = np.stack([draw_overlay(f, overlay_lines(episode, t)) for t, f in enumerate(frames)])
    return frames


def _fit_offscreen_buffer(sim: object, width: int, height: int) -> None:
    """Grow the model's offscreen buffer to the frame size (MuJoCo renders at most that size)."""
    vis = sim.model.vis.global_
    if vis.offwidth < width or vis.offheight < height:
        vis.offwidth, vis.offheight = max(vis.offwidth, width), max(vis.offheight, height)
        sim.close_renderers()


def write_video(frames: np.ndarray, path: str | os.PathLike, fps: int = 10) -> Path:
    """Write ``(T, H, W, 3)`` uint8 frames to an H.264 MP4 at ``path`` atomically (temp file + rename); returns it."""
    import imageio.v2 as imageio

    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames must be a non-empty (T, H, W, 3) uint8 array, got {frames.dtype}{frames.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp{path.suffix}")  # ffmpeg picks the format by suffix
    try:
        writer = imageio.get_writer(str(tmp), format="FFMPEG", fps=fps, codec="libx264", macro_block_size=8)
        try:
            for frame in frames:
                writer.append_data(frame)
        finally:
            writer.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
