"""A scripted UrbanNav expert: follows the shortest street route of the current phase with pure pursuit.

The expert is privileged: it reads the route and the true pose from the unwrapped environment, not from the
observation. It drives along the reference polyline towards a look-ahead point, slows for sharp heading errors
(turning in place beyond ~70 degrees) and near the goal, and stops once within ``stop_radius`` of the final goal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from embodia.envs.nav.urban_nav import UrbanNavEnv


@dataclass
class PurePursuitConfig:
    """Gains and distances of the pure-pursuit controller."""

    lookahead: float = 3.0
    """Distance along the route to the pursued point, metres."""
    yaw_gain: float = 2.5
    """Yaw-rate action per radian of heading error."""
    turn_in_place: float = np.radians(70.0)
    """Heading error beyond which the robot turns without driving, radians."""
    stop_radius: float = 1.0
    """Distance to the final goal at which the expert stops, metres."""
    approach_distance: float = 4.0
    """Distance to the final goal over which the expert slows down, metres."""


def _project_on_segment(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    ab = b - a
    denom = float(ab @ ab)
    t = 0.0 if denom == 0 else float(np.clip((p - a) @ ab / denom, 0.0, 1.0))
    return t, float(np.linalg.norm(a + t * ab - p))


class UrbanNavExpert:
    """Pure-pursuit route follower for ``embodia/UrbanNav-*`` environments.

    Args:
        env: the environment (wrappers allowed; the expert reads ``env.unwrapped``).
        config: controller settings.
    """

    def __init__(self, env: gym.Env, config: PurePursuitConfig | None = None) -> None:
        if not isinstance(env.unwrapped, UrbanNavEnv):
            raise TypeError(f"UrbanNavExpert needs an UrbanNav environment, got {type(env.unwrapped).__name__}")
        self.env: UrbanNavEnv = env.unwrapped
        self.config = config or PurePursuitConfig()
        self._phase = -1
        self._segment = 0

    def reset(self, seed: int | None = None) -> None:
        """Forgets route progress; call after ``env.reset`` (the expert is deterministic: ``seed`` is unused)."""
        self._phase = -1
        self._segment = 0

    def info(self) -> dict[str, Any]:
        """Metadata recorded with each demonstration."""
        return {"expert": "pure_pursuit"}

    def _lookahead_point(self, points: np.ndarray, position: np.ndarray) -> np.ndarray:
        # Track progress monotonically over a short window so the route never jumps back at crossings.
        best = (np.inf, self._segment, 0.0)
        for k in range(self._segment, min(self._segment + 3, len(points) - 1)):
            t, d = _project_on_segment(position, points[k], points[k + 1])
            if d < best[0] - 1e-9:
                best = (d, k, t)
        _, k, t = best
        self._segment = k
        remaining = self.config.lookahead
        point = points[k] + t * (points[k + 1] - points[k])
        while True:
            seg_end = points[k + 1]
            seg_left = float(np.linalg.norm(seg_end - point))
            if remaining <= seg_left or k + 1 == len(points) - 1:
                direction = seg_end - point
                norm = np.linalg.norm(direction)
                return seg_end if norm < 1e-9 else point + direction / norm * min(remaining, seg_left)
            remaining -= seg_left
            point = seg_end
            k += 1

    def act(self, obs: Any = None) -> np.ndarray:
        """Returns the next action ``(3,)`` float32: speed, yaw rate, stop."""
        env, cfg = self.env, self.config
        if env.phase_index != self._phase:
            self._phase = env.phase_index
            self._segment = 0
        points = env.task.phases[env.phase_index].route.points
        x, y, yaw = env.true_pose()
        position = np.array([x, y])
        final_phase = env.phase_index == len(env.task.phases) - 1
        goal_distance = float(np.linalg.norm(points[-1] - position))
        if final_phase and goal_distance <= cfg.stop_radius:
            return np.array([0.0, 0.0, 1.0], dtype=np.float32)
        target = self._lookahead_point(points, position)
        heading = np.arctan2(target[1] - y, target[0] - x)
        error = float((heading - yaw + np.pi) % (2 * np.pi) - np.pi)
        yaw_rate = float(np.clip(cfg.yaw_gain * error, -1.0, 1.0))
        if abs(error) >= cfg.turn_in_place:
            speed = 0.0
        else:
            speed = 1.0 - abs(error) / cfg.turn_in_place
            if final_phase:
                speed = min(speed, max(goal_distance / cfg.approach_distance, 0.15))
        return np.array([speed, yaw_rate, -1.0], dtype=np.float32)
