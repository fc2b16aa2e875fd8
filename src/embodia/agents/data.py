"""Training data for agents: episodes replayed through the agent's memory into rows, and windows over them.

:func:`agent_rows` replays an episode's observations through a :class:`~embodia.agents.agent.MemoryAgent`
(``observe`` at every step, exactly as in a rollout), giving ``(T+1, Do)`` rows: the raw observation plus the
memory items retrieved at each step. :class:`AgentWindows` cuts training windows from those rows like
:class:`~embodia.data.windows.EpisodeWindows` and adds ``item_obs`` ``(B, To, n, raw_width)``: for each item, the
raw observation of the step that wrote it, which ``AgentPolicy.compute_loss`` re-encodes (end-to-end training).

Samples can be restricted to the steps of later task phases (``AgentConfig.act_from_phase``): the memory is still
written from step 0, so the items of a return phase come from the outbound phase.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from embodia.agents.agent import MemoryAgent
from embodia.data.episodes import Episode
from embodia.data.windows import EpisodeWindows
from embodia.policies.base import Policy

__all__ = ["AgentWindows", "PhaseWindows", "agent_rows", "phase_mask"]

ROWS_KEY = "agent"


def agent_rows(agent: MemoryAgent, episode: Episode) -> np.ndarray:
    """Replay ``episode`` through ``agent`` (memory reset first); returns ``(T+1, Do)`` float32 rows.

    Raises:
        ValueError: The episode lacks an observation key the agent needs (named).
    """
    obs = episode.observations
    if not isinstance(obs, dict):
        raise ValueError(
            f"episode {episode.env_id!r} has a Box observation; an agent needs UrbanNav's Dict observations"
        )
    agent.reset()
    length = len(episode.actions) + 1
    rows = [agent.observe({key: value[t] for key, value in obs.items()}).row for t in range(length)]
    return np.stack(rows)


def phase_mask(episodes: Sequence[Episode], first_phase: int) -> np.ndarray:
    """``(N,)`` bool over the samples of ``episodes``: steps whose action was chosen in phase ``first_phase`` or later.

    Raises:
        ValueError: An episode without a ``phase`` info (not an UrbanNav episode).
    """
    masks = []
    for e, ep in enumerate(episodes):
        phase = ep.infos.get("phase")
        if phase is None:
            raise ValueError(f"episode {e} has no 'phase' info; act_from_phase needs UrbanNav episodes")
        # infos["phase"][t] is the phase after action t; action t was chosen in the phase before it (the
        # hand-over decides by the phase it observes), so a sample's phase is the previous step's.
        phase = np.asarray(phase).reshape(-1)
        masks.append(np.concatenate([[0], phase[:-1]])[: len(phase)] >= first_phase)
    return np.concatenate(masks)


class PhaseWindows(EpisodeWindows):
    """``EpisodeWindows`` whose samples can be restricted to later task phases (:meth:`keep_phases`)."""

    def keep_phases(self, episodes: Sequence[Episode], first_phase: int) -> None:
        """Keep only the samples whose action was chosen in phase ``first_phase`` or later (see :func:`phase_mask`).

        Raises:
            ValueError: No sample is left, or an episode has no phases.
        """
        mask = phase_mask(episodes, first_phase)
        if not mask.any():
            raise ValueError("no training step is in the phases the agent acts in (act_from_phase)")
        for name in ("_episode", "_step", "_length", "_act_start", "_obs_start"):
            setattr(self, name, getattr(self, name)[mask])

    def __len__(self) -> int:
        return len(self._episode)


class AgentWindows(PhaseWindows):
    """Training windows over agent rows, with the items' source observations (see the module docstring).

    Args:
        policy: The agent policy whose memory replays the episodes (in eval mode, with its current weights).
        episodes: UrbanNav episodes (``depth``, ``semantic``, ``pose``, ``instruction`` observations).
        progress: Show a progress bar over episodes.

    Attributes:
        raw_width: Width of the raw part of a row.
    """

    def __init__(self, policy: Policy, episodes: Sequence[Episode], *, progress: bool = False) -> None:
        episodes = list(episodes)
        if not episodes:
            raise ValueError("AgentWindows needs at least one episode")
        c = policy.config
        agent = MemoryAgent(policy)
        replayed = []
        bar = tqdm(episodes, desc="replay memory", unit="ep", disable=not progress, dynamic_ncols=True)
        for e, ep in enumerate(bar):
            try:
                rows = agent_rows(agent, ep)
            except ValueError as exc:
                raise ValueError(f"episode {e} (seed {ep.seed}): {exc}") from None
            replayed.append(dataclasses.replace(ep, observations={ROWS_KEY: rows}))
        policy.train(False)
        super().__init__(replayed, n_obs_steps=c.n_obs_steps, horizon=c.horizon, obs_keys=(ROWS_KEY,))
        self.layout = policy.layout
        self.raw_width = policy.layout.raw_width
        if c.act_from_phase > 0:
            self.keep_phases(episodes, c.act_from_phase)

    def digest_obs(self) -> np.ndarray:
        """The raw observation part of the rows ``(N_obs, raw_width)``, what a run's data digest covers.

        The memory items follow from these, the agent config and the seed (all checked on ``--resume``); they are
        floating-point results of torch and faiss, whose last bits may differ between machines and versions.
        """
        return self.obs[:, : self.raw_width]

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
        """Like ``EpisodeWindows.get_batch``, plus ``item_obs`` ``(B, To, n, raw_width)`` float32."""
        batch = super().get_batch(indices)
        idx = self._check_indices(np.asarray(indices))
        n = self.layout.n_items
        if n:
            b, t, _ = batch["obs"].shape
            steps = self.layout.items_numpy(batch["obs"].reshape(b * t, -1))  # (B*To, n) step of each item
            rows = self._obs_start[idx].repeat(t)[:, None] + np.maximum(steps, 0)  # (B*To, n)
            batch["item_obs"] = self.obs[rows, : self.raw_width].reshape(b, t, n, self.raw_width)
        return batch
