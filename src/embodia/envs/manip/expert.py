"""Scripted pushing experts for PushBlock and PushT.

``d`` (signed distance of the force line from the centre of mass) moves it with ``v ∝ f`` and
``ω / |v| = -d / ρ²`` (``ρ`` the radius of gyration). To bring the block from its pose to the goal, the expert
pushes along ``f = (goal - block) / |goal - block|`` with the lever arm ``d = -ρ² Δθ / |Δp|`` that makes the
rotation arrive with the translation (clipped to the block's width), re-planning the contact every step.

To reach the contact point, which lies behind the block as seen from the goal, the pusher goes around the
block on a circle. On the first approach of an episode the expert picks the side at random (``mode``: "left"
passes the block on the left of the push direction, "right" on the right), which makes the demonstrations
bimodal; later re-approaches take the shorter way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import networkx as nx
import numpy as np

from embodia.envs.experts import SIDES, paired_side
from embodia.envs.manip.push import PushEnv
from embodia.envs.manip.shapes import to_block, to_world


@dataclass
class PushExpertConfig:
    """Gains and distances of the pushing expert."""

    push_speed: float = 0.12
    """Top pushing speed, m/s."""
    min_push_speed: float = 0.015
    """Pushing speed near the goal, m/s."""
    speed_gain: float = 2.0
    """Pushing speed per metre of pose error, 1/s."""
    rotation_weight: float = 0.1
    """Metres of position error that one radian of orientation error counts as."""
    directions: int = 24
    """Push directions considered."""
    levers: int = 7
    """Lever arms considered per direction."""
    lever_fraction: float = 0.8
    """Largest lever arm as a fraction of the shape's radius."""
    max_push_angle: float = np.radians(20.0)
    """Largest angle between a push and the inward face normal (inside the friction cone)."""
    lookahead: float = 0.01
    """Block travel over which a push's effect is predicted, m."""
    detour_cost: float = 0.02
    """Error units charged per metre the pusher must travel to start a push."""
    hysteresis: float = 0.3
    """Bonus (fraction of its gain) for keeping the current push, against dithering."""
    settle_error: float = 0.01
    """Position error below which the expert holds still once the block is at the goal, m."""
    move_gain: float = 8.0
    """Pusher velocity per metre of distance to a waypoint, 1/s."""
    lateral_gain: float = 6.0
    """Lateral velocity per metre of offset from the push line while pushing, 1/s."""
    standoff: float = 0.02
    """Distance behind the contact point where a push starts, m."""
    clearance: float = 0.012
    """Extra distance kept from the block while going around it, m."""


def _wrap(angle: float, period: float = 2 * np.pi) -> float:
    return float((angle + period / 2) % period - period / 2)


class PushExpert:
    """Closed-loop pushing expert for ``embodia/PushBlock-v0`` and ``embodia/PushT-v0``.

    Args:
        env: the environment (wrappers allowed).
        config: controller settings.
        mode: force ``"left"`` or ``"right"`` for the first approach; None draws it per episode.
    """

    MODES = SIDES

    def __init__(self, env: gym.Env, config: PushExpertConfig | None = None, mode: str | None = None) -> None:
        if not isinstance(env.unwrapped, PushEnv):
            raise TypeError(f"PushExpert needs a pushing environment, got {type(env.unwrapped).__name__}")
        if mode is not None and mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES} or None, got {mode!r}")
        self.env: PushEnv = env.unwrapped
        self.config = config or PushExpertConfig()
        self._forced_mode = mode
        self.mode = mode or "left"
        self._approached = False
        self._pushing = False
        self._current: tuple[np.ndarray, float] | None = None

    def reset(self, seed: int | None = None) -> None:
        """Starts an episode; the approach side is drawn from ``seed`` (reproducible per episode).

        The draw is block-randomised over seed pairs ``(2k, 2k+1)``: each episode is left or right with
        probability 1/2, and every pair holds one of each, so a collection over consecutive seeds is balanced.
        """
        self.mode = self._forced_mode or paired_side(seed)
        self._approached = False
        self._pushing = False
        self._current = None
        self._axis: np.ndarray | None = None  # initial block -> goal direction, fixed for the episode
        self._origin: np.ndarray | None = None  # initial block position
        self._previous_along: float | None = None
        self._side: str | None = None

    def side_taken(self) -> str | None:
        """The side of the block the pusher actually passed to get behind it.

        Measured in the frame of the initial block-to-goal axis: the sign of the pusher's lateral offset when it
        first crosses from in front of the block's initial position to behind it. None until that happens.
        """
        return self._side

    def info(self) -> dict[str, Any]:
        """Metadata for the episode file: ``mode`` is the side actually taken (the draw when it never went around).

        ``mode_drawn`` is the side the expert was told to take; when walls leave only the other way, they differ.
        """
        taken = self.side_taken()
        return {"expert": "push_lever", "mode": taken or self.mode, "mode_drawn": self.mode}

    # ------------------------------------------------------------------ geometry
    def _pushes(self, block: np.ndarray) -> list[tuple[np.ndarray, float, np.ndarray]]:
        """Feasible pushes ``(f, lever, contact)``: world direction, signed lever arm and entry point.

        A push is feasible when its line enters the block through a face whose inward normal is within
        ``max_push_angle`` of ``f`` (inside the friction cone, so the pusher does not slide along the face).
        """
        shape, cfg = self.env.shape, self.config
        limit = self.env.table.half_extent - self.env.table.pusher_radius - 0.002
        c, s = np.cos(block[2]), np.sin(block[2])
        pushes = []
        for phi in np.linspace(0.0, 2 * np.pi, cfg.directions, endpoint=False):
            f = np.array([np.cos(phi), np.sin(phi)])
            n = np.array([-f[1], f[0]])
            local_dir = np.array([c * f[0] + s * f[1], -s * f[0] + c * f[1]])
            for fraction in np.linspace(-1.0, 1.0, cfg.levers):
                lever = fraction * cfg.lever_fraction * shape.radius
                start = block[:2] + lever * n - 0.5 * f
                hit = shape.ray_entry(to_block(start[None], block)[0], local_dir)
                if hit is None or -(hit[1] @ local_dir) < np.cos(cfg.max_push_angle):
                    continue
                contact = start + hit[0] * f
                begin = contact - (self.env.table.pusher_radius + cfg.standoff) * f
                if (np.abs(begin) > limit).any():
                    continue  # the pusher cannot stand there (wall)
                touch = contact - (self.env.table.pusher_radius + 0.003) * f
                if self._path_blocked(touch, block, begin):
                    continue  # another part of the shape is in the way (the T's pocket)
                pushes.append((f, float(lever), contact))
        return pushes

    def _error(self, position: np.ndarray, theta: float) -> float:
        env = self.env
        dth = _wrap(env.goal[2] - theta, env.shape.symmetry)
        return float(np.linalg.norm(env.goal[:2] - position)) + self.config.rotation_weight * abs(dth)

    def _choose_push(self, block: np.ndarray, pusher: np.ndarray) -> tuple[np.ndarray, float, np.ndarray] | None:
        """The push whose predicted one-step effect most reduces the pose error, net of the pusher's detour."""
        cfg, rho2 = self.config, self.env.shape.gyration2
        now = self._error(block[:2], block[2])
        steps = min(cfg.lookahead, max(now, 1e-3)) / np.array([1.0, 2.0, 4.0, 8.0])  # fine pushes near the goal
        best, best_score = None, 0.0
        for f, lever, contact in self._pushes(block):
            # Damped sliding: translation along f, rotation -lever / rho^2 per metre translated.
            gain = (
                max(now - self._error(block[:2] + d * f, block[2] - lever / rho2 * d) for d in steps)
                / steps[0]
                * cfg.lookahead
            )
            detour = float(np.linalg.norm(pusher - (contact - self.env.table.pusher_radius * f)))
            score = gain - cfg.detour_cost * detour
            if self._current is not None and np.allclose(f, self._current[0]) and lever == self._current[1]:
                score += cfg.hysteresis * abs(gain)
            if gain > 0 and score > best_score:
                best, best_score = (f, lever, contact), score
        return best

    def _path_blocked(self, pusher: np.ndarray, block: np.ndarray, target: np.ndarray) -> bool:
        """Whether the straight move from ``pusher`` to ``target`` would touch the block (pusher-inflated)."""
        shape = self.env.shape
        margin = self.env.table.pusher_radius + 0.002
        # The first sample is skipped: a pusher touching the block may always move away from it.
        points = pusher + np.linspace(0.0, 1.0, 13)[1:, None] * (target - pusher)  # (12, 2)
        local = to_block(points, block)
        rel = np.abs(local[:, None, :] - shape.centres[None])  # (12, R, 2)
        return bool((rel <= shape.halves[None] + margin).all(axis=2).any())

    def _detour(
        self, pusher: np.ndarray, block: np.ndarray, target: np.ndarray, side: float, axis: np.ndarray | None = None
    ) -> np.ndarray:
        """First waypoint of the shortest way around the block from ``pusher`` to ``target``.

        The way runs through the corners of the block's rectangles, pushed out by the pusher radius plus a margin
        (a visibility graph). ``side`` +1 keeps to the left of ``axis`` (default: the line from ``target`` through
        the block's centre), -1 to the right, 0 takes the shorter way.
        """
        env = self.env
        shape, limit = env.shape, env.table.half_extent - env.table.pusher_radius - 0.002
        pad = env.table.pusher_radius + self.config.clearance
        corners = np.concatenate(
            [shape.centres + (shape.halves + pad) * sign for sign in ((1, 1), (1, -1), (-1, 1), (-1, -1))]
        )
        nodes = [p for p in to_world(corners, block) if (np.abs(p) <= limit).all()]
        axis = block[:2] - target if axis is None else axis
        if side != 0:
            nodes = [p for p in nodes if side * (axis[0] * (p - block[:2])[1] - axis[1] * (p - block[:2])[0]) > -1e-3]
        points = [pusher, *nodes, target]
        graph = nx.Graph()
        for i in range(len(points)):
            for j in range(i + 1, len(points)):
                if not self._path_blocked(points[i], block, points[j]):
                    graph.add_edge(i, j, weight=float(np.linalg.norm(points[i] - points[j])))
        try:
            path = nx.shortest_path(graph, 0, len(points) - 1, weight="weight")
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            if side != 0:  # that side is walled off: take the other way (info() reports the side taken)
                return self._detour(pusher, block, target, 0.0)
            away = pusher - block[:2]
            return pusher + 0.05 * away / max(float(np.linalg.norm(away)), 1e-6)  # back off and re-plan
        return points[path[1]]

    # ------------------------------------------------------------------ control
    def act(self, obs: Any = None) -> np.ndarray:
        """Returns the next pusher velocity action ``(2,)`` float32."""
        env, cfg = self.env, self.config
        block, pusher = env.block_pose(), env.pusher_position()
        max_speed = env.table.max_speed
        if self._axis is None:
            towards = env.goal[:2] - block[:2]
            self._axis = towards / max(float(np.linalg.norm(towards)), 1e-9)
            self._origin = block[:2].copy()
        if self._side is None:  # which side does the pusher pass to get behind the block?
            rel = pusher - self._origin
            along = float(self._axis @ rel)
            if self._previous_along is not None and self._previous_along > 0 >= along:
                self._side = "left" if self._axis[0] * rel[1] - self._axis[1] * rel[0] > 0 else "right"
            self._previous_along = along
        if env.at_goal() and env.position_error() < cfg.settle_error:
            self._pushing = False
            return np.zeros(2, dtype=np.float32)
        choice = self._choose_push(block, pusher)
        if choice is None:
            return np.zeros(2, dtype=np.float32)
        self._current = (choice[0], choice[1])
        f, _, contact = choice
        n = np.array([-f[1], f[0]])
        touch = contact - env.table.pusher_radius * f  # pusher centre when touching
        start = touch - cfg.standoff * f  # where a push begins
        rel = pusher - touch
        along, lateral = float(rel @ f), float(rel @ n)

        if self._pushing and not (abs(lateral) < 0.015 and along < 0.01):
            self._pushing = False  # lost the contact line: re-approach
        if not self._pushing and abs(lateral) < 0.006 and -cfg.standoff - 0.01 < along < 0.006:
            self._pushing = True
            self._approached = True
        if self._pushing:
            error = self._error(block[:2], block[2])
            speed = float(np.clip(cfg.speed_gain * error, cfg.min_push_speed, cfg.push_speed))
            velocity = speed * f - cfg.lateral_gain * lateral * n
        else:
            if self._path_blocked(pusher, block, start):
                side = 0.0 if self._approached else (1.0 if self.mode == "left" else -1.0)
                waypoint = self._detour(pusher, block, start, side, None if self._approached else self._axis)
            else:
                waypoint = start
            velocity = cfg.move_gain * (waypoint - pusher)
        norm = float(np.linalg.norm(velocity))
        if norm > max_speed:
            velocity *= max_speed / norm
        return (velocity / max_speed).astype(np.float32)
