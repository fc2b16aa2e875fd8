"""Re-render an episode from its stored MuJoCo states into frames and an MP4 video (no physics runs).

The environment is rebuilt from the episode file's env id, kwargs and seed (its scene XML must equal the stored
one); then, for every stored state, ``mj_setState`` and an offscreen render through the chosen camera. Rendering is
headless (EGL).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import gymnasium as gym
import numpy as np

from embodia.data.episodes import Episode

__all__ = ["render_episode", "write_video"]


def render_episode(episode: Episode, *, camera: str = "chase", width: int = 320, height: int = 240) -> np.ndarray:
    """Frames of ``episode``, one per stored state.

    Args:
        episode: An embodia episode with ``mj_state``.
        camera: A camera of the env's scene (UrbanNav: ``chase``, ``top``, ``ego``; PushBlock: ``top``).
        width: Frame width, pixels.
        height: Frame height, pixels.

    Returns:
        ``(T+1, height, width, 3)`` uint8 frames.

    Raises:
        ValueError: No stored states, a scene that differs from the stored one, or an unknown camera (named).
    """
    if episode.mj_state is None:
        raise ValueError(f"the {episode.env_id or 'episode'} file has no mj_state: there is nothing to re-render")
    import mujoco

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
        if mujoco.mj_name2id(sim.model, mujoco.mjtObj.mjOBJ_CAMERA, camera) < 0:
            cameras = [sim.model.camera(i).name for i in range(sim.model.ncam)]
            raise ValueError(f"{episode.env_id} has no camera {camera!r} (cameras: {cameras})")
        frames = np.empty((len(episode.mj_state), height, width, 3), dtype=np.uint8)
        for t, state in enumerate(episode.mj_state):
            sim.set_mj_state(state)
            frames[t] = sim.render_camera(camera, width, height)
        return frames
    finally:
        env.close()


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
