"""A scripted UrbanNav expert: follows the shortest street route of the current phase with pure pursuit.

The expert is privileged: it reads the route and the true pose from the unwrapped environment, not from the
observation. It drives along the reference polyline towards a look-ahead point, slows for sharp heading errors
(turning in place beyond ~70 degrees) and near the goal, and stops once within ``stop_radius`` of the final goal.

Once the robot is nearer another street than its route by more than ``replan_margin`` (a state the expert itself
never reaches, but a learner does: DAgger asks the expert to label the learner's states), the expert replans the
shortest street route from the street point nearest the robot to the phase's goal and follows that, so its label
from any state on the streets leads to the goal. Following the old
route back instead would steer across blocks, and once the robot has driven past the route's end it would point
along it rather than back to the goal.
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
    replan_margin: float = 2.0
    """The expert replans from where the robot is once the followed route is this much farther than the nearest
    street point, metres (a robot on the sidewalk of its route is not off it). Its own drives cut corners by ~1 m,
    so demonstrations never replan."""


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
        self._points = np.zeros((0, 2))
        self.replans = 0

    def reset(self, seed: int | None = None) -> None:
        """Forgets route progress; call after ``env.reset`` (the expert is deterministic: ``seed`` is unused)."""
        self._phase = -1
        self._segment = 0
        self.replans = 0

    def info(self) -> dict[str, Any]:
        """Metadata recorded with each episode: the controller and how often it replanned (0 on its own drives)."""
        return {"expert": "pure_pursuit", "replans": self.replans}

    def _track(self, points: np.ndarray, position: np.ndarray) -> tuple[float, int, float]:
        """Distance to the route, segment and fraction along it.

        Progress is tracked monotonically over a short window, so the route never jumps back at crossings.
        """
        best = (np.inf, self._segment, 0.0)
        for k in range(self._segment, min(self._segment + 3, len(points) - 1)):
            t, d = _project_on_segment(position, points[k], points[k + 1])
            if d < best[0] - 1e-9:
                best = (d, k, t)
        return best

    def _lookahead_point(self, points: np.ndarray, position: np.ndarray) -> np.ndarray:
        _, k, t = self._track(points, position)
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
        phase = env.task.phases[env.phase_index]
        if env.phase_index != self._phase:
            self._phase = env.phase_index
            self._segment = 0
            self._points = phase.route.points
        x, y, yaw = env.true_pose()
        position = np.array([x, y])
        graph = env.city.graph
        nearest, street_distance = graph.project(position)
        if self._track(self._points, position)[0] > street_distance + cfg.replan_margin:
            self._points = graph.route(nearest, phase.goal).points
            self._segment = 0
            self.replans += 1
        points = self._points
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
