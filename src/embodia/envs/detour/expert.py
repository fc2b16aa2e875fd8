"""Scripted expert for ``embodia/DetourReach-v0`` (paired bimodal) and ``embodia/DetourReach-Sided-v0`` (unimodal).

The expert goes around the obstacle on the side of its ``mode`` ("left" or "right" of the start -> goal axis)
along the shortest path around a safety circle of radius ``ρ = obstacle_radius + agent_radius + clearance``:
while the straight line to the goal crosses the circle it heads for the circle's tangent point on its side (or,
on the circle, along it), which is a waypoint beside the obstacle; once the goal is in sight it drives straight
to it. Every step stays at least ``ρ - clearance / 2`` from the obstacle centre, so it never touches it.

``reset(seed)`` draws the mode with the block randomisation of ``PushExpert``: each of the seeds ``2k, 2k + 1``
gets one mode and the pair's draw decides which. With the env's paired starts (the two seeds share a start and a
goal), a collection over consecutive seeds holds both modes from every start, exactly half of each. When the env
dictates the side (``DetourReachEnv.expert_side()``, e.g. ``side_rule="start"`` of DetourReach-Sided-v0: left
when the start's y >= 0, else right) the expert takes that side instead; a ``mode`` forced at construction wins
over both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from embodia.envs.detour.detour_reach import DetourReachEnv
from embodia.envs.experts import SIDES, paired_side


@dataclass
class DetourExpertConfig:
    """Distances and gains of the detour expert."""

    clearance: float = 0.06
    """Distance kept between the agent's and the obstacle's surfaces while going around, m (the path keeps at least
    half of it). Wide, so that a policy imitating it has centimetres to spare: DetourReach tests whether a policy
    picks a side, not how precisely it skirts the obstacle (a touch ends the episode)."""
    radial_gain: float = 10.0
    """Outward velocity per metre inside the safety circle, relative to full speed, 1/m."""

    def __post_init__(self) -> None:
        if not (np.isfinite(self.clearance) and self.clearance > 0):
            raise ValueError(f"clearance must be a finite number > 0, got {self.clearance!r}")
        if not (np.isfinite(self.radial_gain) and self.radial_gain >= 0):
            raise ValueError(f"radial_gain must be a finite number >= 0, got {self.radial_gain!r}")


def _cross(a: np.ndarray, b: np.ndarray) -> float:
    return float(a[0] * b[1] - a[1] * b[0])


class DetourExpert:
    """Goes around the obstacle on one side, then to the goal.

    Args:
        env: the environment (wrappers allowed).
        config: controller settings.
        mode: force ``"left"`` or ``"right"``; None takes it per episode in ``reset`` (from the env's side rule,
            else drawn from the seed).
    """

    MODES = SIDES

    def __init__(self, env: gym.Env, config: DetourExpertConfig | None = None, mode: str | None = None) -> None:
        if not isinstance(env.unwrapped, DetourReachEnv):
            raise TypeError(f"DetourExpert needs a DetourReachEnv, got {type(env.unwrapped).__name__}")
        if mode is not None and mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES} or None, got {mode!r}")
        self.env: DetourReachEnv = env.unwrapped
        self.config = config or DetourExpertConfig()
        self._forced_mode = mode
        self.mode = mode or "left"

    def reset(self, seed: int | None = None) -> None:
        """Starts an episode (call it after ``env.reset``) and picks its side.

        The side is the forced ``mode`` if one was given, else the env's ``expert_side()`` if it names one, else
        drawn from ``seed``, block-randomised over seed pairs ``(2k, 2k+1)``.

        Args:
            seed: the episode's env seed.
        """
        self.mode = self._forced_mode or self.env.expert_side() or paired_side(seed)

    def info(self) -> dict[str, Any]:
        """The side of this episode (recorded in the episode file)."""
        return {"expert": "detour", "mode": self.mode}

    def act(self, obs: Any = None) -> np.ndarray:
        """Returns the next velocity action ``(2,)`` float32 (reads the privileged state of ``env``)."""
        env, cfg = self.env, self.config
        agent, goal, centre = env.agent_position(), env.goal_position(), env.obstacle_position()
        max_speed, dt = env.config.max_speed, env.dt
        rho = env.config.obstacle_radius + env.config.agent_radius + cfg.clearance
        side = 1.0 if self.mode == "left" else -1.0

        to_goal = goal - agent
        nearest = agent + np.clip((centre - agent) @ to_goal / max(float(to_goal @ to_goal), 1e-12), 0, 1) * to_goal
        if np.linalg.norm(nearest - centre) >= rho - cfg.clearance / 2:  # the goal is in sight
            distance = float(np.linalg.norm(to_goal))
            speed = min(max_speed, distance / dt)  # do not overshoot within one step
            velocity = speed * to_goal / max(distance, 1e-12)
        else:
            rel = agent - centre
            d = float(np.linalg.norm(rel))
            if d > rho:  # head for the tangent point on our side: rotate the centre's bearing by asin(ρ/d)
                bearing = np.arctan2(-rel[1], -rel[0]) + side * np.arcsin(rho / d)
                heading = np.array([np.cos(bearing), np.sin(bearing)])
            else:  # on or inside the circle: follow it (clockwise for left), pushed outwards
                tangent = -side * np.array([-rel[1], rel[0]]) / max(d, 1e-12)
                heading = tangent + cfg.radial_gain * (rho - d) * rel / max(d, 1e-12)
                heading /= np.linalg.norm(heading)
            velocity = max_speed * heading
        return np.clip(velocity / max_speed, -1.0, 1.0).astype(np.float32)
