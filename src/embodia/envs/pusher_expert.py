"""A scripted expert for Gymnasium's ``Pusher-v5``: Jacobian-based inverse kinematics plus joint-space PD torques.

Only the hand of Pusher's arm collides with anything: three capsules forming a U, a palm bar along the hand's y axis
(at the origin of body ``tips_arm``) and two finger bars along its x axis. The expert pushes the cylinder with the
palm bar, the bar held horizontal and perpendicular to the push direction, the object inside the U.

Each step the desired hand pose (palm-centre position, bar direction, fingers not pointing down) is turned into
joint angles by damped-least-squares inverse kinematics on a private ``mujoco.MjData`` (position Jacobian and
rotational Jacobian of the hand from ``mujoco.mj_jacBody``; the model has no sites), warm-started from the last
solution and clamped to the joint limits. A computed-torque PD law (``mujoco.mj_fullM`` inertia, bias and damping
compensation) tracks those angles with the 7 motor torques, clipped to the actuator range.

The hand hovers above the object, behind it, descends, then pushes: its target is a point just inside the object
along the push direction, so it follows the object's lateral motion. The push direction points at the goal, turned
away from it (found by inverse kinematics) when the pose behind the object is out of the arm's reach, and turned
back towards the goal as the object moves. If the object leaves the hand, the hand lifts and approaches again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

_UP = np.array([0.0, 0.0, 1.0])


@dataclass
class PusherExpertConfig:
    """Gains and distances of the Pusher expert."""

    kp: float = 60.0
    """Joint stiffness of the computed-torque PD law, 1/s^2 (multiplied by the inertia matrix)."""
    kd: float = 14.0
    """Joint damping of the computed-torque PD law, 1/s (multiplied by the inertia matrix)."""
    contact_distance: float = 0.07
    """Palm-centre to object-centre distance when the palm bar touches the object (radii 0.05 + 0.02), m."""
    standoff: float = 0.04
    """Extra distance behind the object of the hovering and descending palm, m."""
    push_depth: float = 0.04
    """How far into the object the palm target is set while pushing (sets the pushing speed), m."""
    slow_down: float = 0.5
    """Push depth per metre of remaining object-goal distance near the goal (stops the push at the goal)."""
    push_height: float = 0.005
    """Height of the palm centre above the object's centre while pushing, m."""
    hover_height: float = 0.12
    """Height of the palm centre above the object's centre while travelling, m."""
    aligned: float = 0.02
    """Horizontal palm distance from the approach point below which the hand descends, m."""
    lowered: float = 0.02
    """Palm height above the push height below which the push starts, m."""
    max_lateral: float = 0.05
    """Lateral object offset from the palm's centre line beyond which the push is abandoned, m."""
    max_gap: float = 0.14
    """Object-centre distance ahead of the palm beyond which the push is abandoned, m."""
    done_distance: float = 0.01
    """Object-goal distance below which the hand just holds its pose, m."""
    turn_rate: float = 0.6
    """Rate at which a push direction turned away from the goal is turned back towards it, rad/s."""
    turn_angles: tuple[float, ...] = (0.0, 15.0, -15.0, 30.0, -30.0, 45.0, -45.0, 60.0, -60.0, 75.0, -75.0, 90.0, -90.0)
    """Turns of the push direction away from the goal tried, in order, when planning an approach, degrees."""
    ik_iterations: int = 15
    """Damped-least-squares iterations per control step (warm-started)."""
    plan_iterations: int = 40
    """Damped-least-squares iterations per start when checking whether a pose is reachable."""
    ik_damping: float = 1e-2
    """Damping of the least-squares inverse kinematics."""
    finger_weight: float = 0.1
    """Weight of the (soft) wish that the fingers point along the push direction."""
    reach_tolerance: float = 0.01
    """Largest inverse-kinematics position error of a reachable pose, m."""
    bar_tolerance: float = 5.0
    """Largest inverse-kinematics bar-direction error of a reachable pose, degrees."""
    ik_starts: tuple[tuple[float, ...], ...] = (
        (0.0, 0.5, 0.0, -1.5, 0.0, -0.5, 0.0),
        (0.0, 1.3, 0.0, -2.0, 0.0, -1.0, 0.0),
        (0.5, 0.8, -1.5, -1.5, -0.7, -0.3, 1.5),
        (0.5, 0.8, 1.5, -1.5, 0.7, -0.3, -1.5),
    )
    """Joint configurations the inverse kinematics also starts from when planning an approach."""


def _turn(v: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1], 0.0])


class PusherExpert:
    """Pushing expert for ``Pusher-v5`` (see the module docstring).

    Args:
        env: the env, possibly wrapped (``embodia.envs.adapt`` included).
        config: gains and distances.
    """

    def __init__(self, env: gym.Env, config: PusherExpertConfig | None = None) -> None:
        u = env.unwrapped
        if not hasattr(u, "model") or mujoco.mj_name2id(u.model, mujoco.mjtObj.mjOBJ_BODY, "tips_arm") < 0:
            raise TypeError("PusherExpert needs Gymnasium's Pusher environment")
        self.env = u
        self.config = config or PusherExpertConfig()
        m = u.model
        self._hand = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "tips_arm")
        self._object = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "object")
        self._goal = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "goal")
        self._n = 7
        self._low, self._high = m.jnt_range[: self._n, 0].copy(), m.jnt_range[: self._n, 1].copy()
        self._scratch = mujoco.MjData(m)
        self._jacp = np.zeros((3, m.nv))
        self._jacr = np.zeros((3, m.nv))
        self._inertia = np.zeros((m.nv, m.nv))
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        """Starts an episode."""
        self._phase = "plan"
        self._q_ref: np.ndarray | None = None
        self._turn_angle = 0.0

    def info(self) -> dict[str, Any]:
        """Metadata recorded with each demonstration."""
        return {"expert": "pusher_osc"}

    # --- inverse kinematics -------------------------------------------------------------------------------------

    def _ik(
        self, q0: np.ndarray, palm: np.ndarray, direction: np.ndarray, iterations: int
    ) -> tuple[np.ndarray, float, float]:
        """Damped-least-squares IK for the palm pose: centre at ``palm``, bar horizontal and perpendicular to
        ``direction``, fingers not below horizontal and softly along ``direction``.

        Returns:
            The joint angles, the palm position error (m) and the bar direction error (degrees).
        """
        m, s, cfg = self.env.model, self._scratch, self.config
        q = q0.copy()
        for _ in range(iterations + 1):
            s.qpos[: self._n] = q
            mujoco.mj_kinematics(m, s)
            mujoco.mj_comPos(m, s)
            pos, rot = s.xpos[self._hand], s.xmat[self._hand].reshape(3, 3)
            x, y = rot[:, 0], rot[:, 1]
            if _ == iterations:
                bar = float(np.degrees(np.arcsin(min(1.0, np.hypot(y @ direction, y @ _UP)))))
                return q, float(np.linalg.norm(palm - pos)), bar
            mujoco.mj_jacBody(m, s, self._jacp, self._jacr, self._hand)
            jacp, jacr = self._jacp[:, : self._n], self._jacr[:, : self._n]
            # Rows: palm position (3); bar perpendicular to the push (1) and horizontal (1); fingers towards the push
            # direction (soft, rotation about the bar); fingers not pointing down (only when they do).
            rows = [jacp, np.cross(y, direction) @ jacr, np.cross(y, _UP) @ jacr]
            errors = [palm - pos, [-(y @ direction)], [-(y @ _UP)]]
            pitch = np.arctan2(np.cross(x, direction) @ y, x @ direction)
            rows.append(cfg.finger_weight * (y @ jacr))
            errors.append([cfg.finger_weight * pitch])
            if x @ _UP < 0.0:
                rows.append(np.cross(x, _UP) @ jacr)
                errors.append([-(x @ _UP)])
            jac, err = np.vstack(rows), np.concatenate(errors)
            dq = jac.T @ np.linalg.solve(jac @ jac.T + cfg.ik_damping * np.eye(len(err)), err)
            q = np.clip(q + dq, self._low, self._high)
        raise AssertionError("unreachable")

    def _reachable(self, result: tuple[np.ndarray, float, float]) -> bool:
        return result[1] < self.config.reach_tolerance and result[2] < self.config.bar_tolerance

    def _plan(self, q: np.ndarray, obj: np.ndarray, to_goal: np.ndarray, z: float) -> None:
        """Chooses the turn of the push direction: the smallest in ``turn_angles`` whose touching palm pose is
        reachable.
        """
        cfg = self.config
        starts = [q, *(np.asarray(s, dtype=float) for s in cfg.ik_starts)]
        fallback = None
        for angle in np.radians(cfg.turn_angles):
            direction = _turn(to_goal, angle)
            palm = np.array([*(obj[:2] - cfg.contact_distance * direction[:2]), z])
            best = min((self._ik(s, palm, direction, cfg.plan_iterations) for s in starts), key=lambda r: r[1])
            if fallback is None or best[1] < fallback[1][1]:
                fallback = (angle, best)
            if self._reachable(best):
                self._turn_angle, self._q_ref = float(angle), best[0]
                return
        assert fallback is not None
        self._turn_angle, self._q_ref = float(fallback[0]), fallback[1][0]

    # --- control ------------------------------------------------------------------------------------------------

    def act(self, obs: Any = None) -> np.ndarray:
        """Joint torques ``(7,)`` float32 within the actuator range."""
        m, d, cfg = self.env.model, self.env.data, self.config
        n = self._n
        q, qvel = d.qpos[:n].copy(), d.qvel[:n].copy()
        hand = d.xpos[self._hand].copy()
        obj, goal = d.xpos[self._object].copy(), d.xpos[self._goal].copy()
        offset = goal[:2] - obj[:2]
        distance = float(np.linalg.norm(offset))
        to_goal = np.array([*(offset / max(distance, 1e-9)), 0.0])
        push_z, hover_z = obj[2] + cfg.push_height, obj[2] + cfg.hover_height

        if self._phase == "plan":
            self._plan(q, obj, to_goal, push_z)
            self._phase = "approach"
        direction = _turn(to_goal, self._turn_angle)
        normal = np.cross(_UP, direction)
        rel = obj - hand
        ahead, lateral = float(rel @ direction), float(rel @ normal)

        if self._phase == "push" and (abs(lateral) > cfg.max_lateral or not 0.0 < ahead < cfg.max_gap):
            self._phase = "plan"  # the object left the hand: lift and approach again
            self._plan(q, obj, to_goal, push_z)
            self._phase = "approach"
            direction = _turn(to_goal, self._turn_angle)
        behind = obj[:2] - (cfg.contact_distance + cfg.standoff) * direction[:2]
        if self._phase == "approach" and np.linalg.norm(hand[:2] - behind) < cfg.aligned:
            self._phase = "descend"
        if self._phase == "descend":
            if np.linalg.norm(hand[:2] - behind) > 2 * cfg.aligned:
                self._phase = "approach"
            elif hand[2] < push_z + cfg.lowered:
                self._phase = "push"

        if self._phase == "push":
            if self._turn_angle != 0.0:  # turn the push back towards the goal when the arm can
                step = np.sign(self._turn_angle) * min(abs(self._turn_angle), cfg.turn_rate * self.env.dt)
                trial = self._turn_angle - step
                trial_dir = _turn(to_goal, trial)
                palm = np.array([*(obj[:2] - (cfg.contact_distance - cfg.push_depth) * trial_dir[:2]), push_z])
                result = self._ik(self._q_ref, palm, trial_dir, cfg.ik_iterations)
                if self._reachable(result):
                    self._turn_angle, direction = trial, trial_dir
            depth = min(cfg.push_depth, cfg.slow_down * distance) if distance > cfg.done_distance else 0.0
            target = np.array([*(obj[:2] - (cfg.contact_distance - depth) * direction[:2]), push_z])
        elif self._phase == "descend":
            target = np.array([*behind, push_z])
        else:
            target = np.array([*behind, hover_z])

        assert self._q_ref is not None
        self._q_ref, _, _ = self._ik(self._q_ref, target, direction, cfg.ik_iterations)

        # Computed-torque PD tracking of the joint targets (zero gravity; bias and joint damping compensated).
        mujoco.mj_fullM(m, d, self._inertia)
        inertia = self._inertia[:n, :n]
        accel = cfg.kp * (self._q_ref - q) - cfg.kd * qvel
        torque = inertia @ accel + d.qfrc_bias[:n] + m.dof_damping[:n] * qvel
        low, high = m.actuator_ctrlrange[:, 0], m.actuator_ctrlrange[:, 1]
        return np.clip(torque, low, high).astype(np.float32)
