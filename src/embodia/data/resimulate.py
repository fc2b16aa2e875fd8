"""Re-simulate a recorded episode: replay its actions from its first stored MuJoCo state.

Used to check that an episode file is a faithful record (every stored state is reproduced bit for bit) and
by replays that need states an episode did not store.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from embodia.data.episodes import Episode


def resimulate(episode: Episode) -> np.ndarray:
    """Replays ``episode.actions`` from ``episode.mj_state[0]`` in a fresh environment.

    The environment is rebuilt from the file's env id, kwargs and seed; its scene XML must equal the stored
    one (otherwise the file came from another version of the environment).

    Args:
        episode: an episode with ``mj_state`` and ``scene_xml``.

    Returns:
        ``(T+1, S)`` float64 states, comparable with ``episode.mj_state``.

    Raises:
        ValueError: the episode has no MuJoCo states, or the rebuilt scene differs from the stored one.
    """
    if episode.mj_state is None:
        raise ValueError("episode has no mj_state (recorded from a non-MuJoCo env?); it cannot be re-simulated")
    import embodia  # noqa: F401  (registers the environments)
    from embodia.envs.foreign.adapter import adapt
    from embodia.envs.mujoco_base import MjSpecEnv

    env = gym.make(episode.env_id, **episode.env_kwargs)
    # embodia's envs are stepped unwrapped; a foreign env goes through the same adapter that recorded it.
    sim = env.unwrapped if isinstance(env.unwrapped, MjSpecEnv) else adapt(env)
    try:
        sim.reset(seed=episode.seed)
        if episode.scene_xml is not None and sim.scene_xml != episode.scene_xml:
            raise ValueError(f"the {episode.env_id} scene rebuilt for seed {episode.seed} differs from the stored one")
        sim.set_mj_state(episode.mj_state[0])
        states = [sim.get_mj_state()]
        for action in episode.actions:
            sim.step(action)
            states.append(sim.get_mj_state())
        return np.stack(states)
    finally:
        env.close()
