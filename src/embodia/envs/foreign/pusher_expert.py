"""A scripted expert for Gymnasium's ``Pusher-v5``: Jacobian inverse kinematics with computed-torque joint control.

What limits the task is the contact. Only the hand of Pusher's arm collides with anything: three capsules of radius
0.02 forming a U, a palm bar along the hand's y axis through the origin of body ``tips_arm`` and two finger bars along
its x axis from the palm bar's ends (0, +-0.1, 0). The object is so light that MuJoCo's contact regulariser makes the
hand-object contact very soft: each contact pushes with only about 0.4 N per metre of penetration (at most ~0.07 m)
against the object's joint damping of 0.5 N s/m, so one capsule pushes the object at barely 5 cm/s, too slowly for
the farther objects of a 100-step episode. The expert pushes with a corner of the U, where palm bar and finger bar
meet. Held so that neither bar leaves the corner towards the object (both run across the push or back from it), both
capsules touch the object at the corner, with normals close to the line from the corner to the object's centre: twice
the force, about 8 cm/s. Any such orientation of the hand will do, which leaves the arm free enough to reach behind
objects close to its base too.

Control runs in two layers. A task-space layer turns the wanted position of the pushing corner into joint angles by
damped-least-squares inverse kinematics on a private ``mujoco.MjData``: the rows are the corner's position (position
and rotational Jacobians of the hand from ``mujoco.mj_jacBody``; the model has no sites), one-sided rows keeping both
bars from pointing at the object and one-sided rows keeping the hand's capsule ends above the table. The steps are
weighted by the joints' inverse inertia (light wrist joints move before heavy shoulder joints), respect the joint
limits (active set), are capped in size and are warm-started from the last solution. A joint-space layer tracks
those angles (and, while pushing, their rate) with a computed-torque PD law (``mujoco.mj_fullM`` inertia, Coriolis
and joint damping compensated), clipped to the motors' range.

At the start, and whenever the object escapes the corner, a short plan picks the corner and the push direction:
towards the goal, turned away from it only as far as needed for the inverse kinematics to reach the corner's poses
touching the object and lowered behind it. The corner then approaches from above, descending as it nears the point
behind the object, and pushes: its target lies inside the object on the line through the object's centre along the
push direction, so the hand follows the object and the contact normals keep pointing along the push. A turned push
direction is turned back towards the goal as the arm allows. At the goal the corner backs off to the object's surface
and the arm keeps still.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

_UP = np.array([0.0, 0.0, 1.0])
_X, _Y = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
_CORNERS: dict[str, tuple[np.ndarray, tuple[np.ndarray, ...]]] = {
    "left": (0.1 * _Y, (-_Y, _X)),
    "right": (-0.1 * _Y, (_Y, _X)),
}
"""The hand's pushing corners: the corner (hand frame) and the directions of the two bars leaving it."""
_HAND_ENDS = np.array([[0.0, 0.1, 0.0], [0.0, -0.1, 0.0], [0.1, 0.1, 0.0], [0.1, -0.1, 0.0]])
"""Ends of the hand's capsule axes, hand frame."""


@dataclass
class PusherExpertConfig:
    """Gains and distances of the Pusher expert."""

    kp: float = 100.0
    """Joint stiffness of the computed-torque PD law, 1/s^2 (multiplied by the inertia matrix)."""
    kd: float = 20.0
    """Joint damping of the computed-torque PD law, 1/s (multiplied by the inertia matrix)."""
    contact_distance: float = 0.07
    """Corner to object-centre distance at first touch (object radius 0.05 plus capsule radius 0.02), m."""
    push_depth: float = 0.05
    """How far into the object the corner's target is set while pushing (the contact force grows with it), m."""
    push_height: float = 0.0
    """Height of the corner above the object's centre while pushing, m."""
    standoff: float = 0.03
    """Extra distance behind the object of the approach point, m."""
    hover_height: float = 0.09
    """Height of the approaching corner above the push height while far from the approach point, m."""
    descent_slope: float = 0.3
    """Height of the approaching corner above the push height per metre of its horizontal distance from the approach
    point (up to ``hover_height``)."""
    aligned: float = 0.03
    """Horizontal distance of the corner from the approach point (plus the inverse kinematics' error) below which
    the push starts, m."""
    lowered: float = 0.03
    """Height of the corner above the push height below which the push starts, m."""
    slow_down: float = 3.0
    """Push depth per metre of remaining object-goal distance near the goal (stops the push at the goal)."""
    done_distance: float = 0.01
    """Object-goal distance at which the push ends and the arm keeps still, m."""
    resume_distance: float = 0.03
    """Object-goal distance beyond which a finished push starts again, m."""
    max_lateral: float = 0.05
    """Lateral object offset from the push line through the corner beyond which the push is abandoned, m."""
    max_gap: float = 0.05
    """Distance of the object's centre ahead of the corner, beyond ``contact_distance``, at which the push is
    abandoned, m."""
    turn_angles: tuple[float, ...] = (0.0, 10.0, -10.0, 20.0, -20.0, 30.0, -30.0, 45.0, -45.0, 60.0, -60.0, 75.0, -75.0)
    """Turns of the push direction away from the goal the planner tries, in order, degrees."""
    turn_rate: float = 0.8
    """Rate at which a turned push direction is turned back towards the goal, rad/s."""
    table_clearance: float = -0.3
    """Lowest height of the hand's capsule ends (table top -0.325 plus capsule radius and margin), m."""
    bar_angle: float = 10.0
    """Largest angle by which a bar leaving the pushing corner may point towards the object, degrees."""
    ik_iterations: int = 10
    """Damped-least-squares iterations per control step (warm-started)."""
    plan_iterations: int = 40
    """Damped-least-squares iterations per pose when planning."""
    ik_damping: float = 1e-2
    """Damping of the least-squares steps."""
    ik_max_step: float = 0.2
    """Largest joint change of one inverse-kinematics step while approaching, rad."""
    push_max_step: float = 0.02
    """Largest joint change of one inverse-kinematics step while pushing, rad (no jumps between solution branches)."""
    inertia_weighting: float = 1.0
    """Exponent of the joints' inverse inertia in the weights of the inverse-kinematics steps (0: unweighted)."""
    limit_margin: float = 0.02
    """Margin the inverse kinematics keeps from the joint limits, rad."""
    min_elbow_bend: float = 0.2
    """Smallest elbow bend allowed to the inverse kinematics (a straight elbow is singular), rad."""
    reach_tolerance: float = 0.008
    """Largest position error of a reachable pose, m."""
    bar_tolerance: float = 5.0
    """Largest excess over ``bar_angle`` of a reachable pose, degrees."""
    ik_starts: tuple[tuple[float, ...], ...] = (
        (0.0, 0.5, 0.0, -1.5, 0.0, -0.5, 0.0),
        (0.0, 1.3, 0.0, -2.0, 0.0, -1.0, 0.0),
        (0.5, 0.8, -1.5, -1.5, -0.7, -0.3, 1.5),
        (0.5, 0.8, 1.5, -1.5, 0.7, -0.3, -1.5),
    )
    """Joint angles the planner's inverse kinematics starts from besides the current ones."""


def _turn(v: np.ndarray, angle: float) -> np.ndarray:
    """``v``'s horizontal part turned by ``angle`` (rad) about the vertical."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1], 0.0])


class PusherExpert:
    """Corner-pushing expert for ``Pusher-v5`` (see the module docstring).

    Args:
        env: the env, possibly wrapped (``embodia.envs.foreign.adapter.adapt`` included).
        config: gains and distances.
    """

    def __init__(self, env: gym.Env, config: PusherExpertConfig | None = None) -> None:
        u = env.unwrapped
        if not hasattr(u, "model") or mujoco.mj_name2id(u.model, mujoco.mjtObj.mjOBJ_BODY, "tips_arm") < 0:
            raise TypeError("PusherExpert needs Gymnasium's Pusher environment")
        self.env = u
        self.config = cfg = config or PusherExpertConfig()
        m = u.model
        self._hand = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "tips_arm")
        self._object = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "object")
        self._goal = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "goal")
        self._n = n = 7
        self._low = m.jnt_range[:n, 0] + cfg.limit_margin
        self._high = m.jnt_range[:n, 1] - cfg.limit_margin
        self._high[3] = min(self._high[3], -cfg.min_elbow_bend)  # r_elbow_flex_joint
        self._scratch = mujoco.MjData(m)
        self._jacp = np.zeros((3, m.nv))
        self._jacr = np.zeros((3, m.nv))
        self._inertia = np.zeros((m.nv, m.nv))
        self._weights = np.ones(n)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        """Starts an episode."""
        self._phase = "plan"
        self._corner = "left"
        self._turn_angle = 0.0
        self._q_ref = np.zeros(self._n)
        self._q_plan = np.zeros(self._n)
        self._ik_error = 0.0
        self._hold_direction = np.array([1.0, 0.0, 0.0])

    def info(self) -> dict[str, Any]:
        """Metadata recorded with each demonstration."""
        return {"expert": "pusher_osc"}

    # --- task space: inverse kinematics -------------------------------------------------------------------------

    def _ik(
        self, q0: np.ndarray, corner: str, point: np.ndarray, direction: np.ndarray, iterations: int, max_step: float
    ) -> tuple[np.ndarray, float, float]:
        """Damped-least-squares inverse kinematics putting ``corner`` at ``point`` for a push along ``direction``.

        Returns:
            The joint angles, the corner's position error (m) and how far a bar leaving the corner points towards
            the object beyond ``bar_angle`` (degrees, 0 if neither does).
        """
        m, s, cfg = self.env.model, self._scratch, self.config
        corner_point, bars = _CORNERS[corner]
        bar_limit = float(np.sin(np.radians(cfg.bar_angle)))
        q = q0.copy()
        for i in range(iterations + 1):
            s.qpos[: self._n] = q
            mujoco.mj_kinematics(m, s)
            mujoco.mj_comPos(m, s)
            origin, rot = s.xpos[self._hand], s.xmat[self._hand].reshape(3, 3)
            lever = rot @ corner_point
            error = point - (origin + lever)
            bars_world = [rot @ b for b in bars]
            ends_z = origin[2] + _HAND_ENDS @ rot[2]
            converged = (
                float(np.abs(error).max()) < 1e-4
                and all(b @ direction <= bar_limit - 0.05 for b in bars_world)
                and bool((ends_z >= cfg.table_clearance).all())
            )
            if i == iterations or converged:
                excess = max(float(np.arcsin(np.clip(b @ direction, -1.0, 1.0))) for b in bars_world)
                return q, float(np.linalg.norm(error)), max(0.0, float(np.degrees(excess)) - cfg.bar_angle)
            mujoco.mj_jacBody(m, s, self._jacp, self._jacr, self._hand)
            jacp, jacr = self._jacp[:, : self._n], self._jacr[:, : self._n]
            # The corner's position: v = v_origin + w x lever.
            rows, errors = [jacp - np.cross(lever, jacr.T).T], [error]
            # One-sided: the bars leaving the corner do not point towards the object (d(b.d)/dt = w . (b x d)).
            for bar in bars_world:
                if bar @ direction > bar_limit - 0.05:
                    rows.append((np.cross(bar, direction) @ jacr)[None])
                    errors.append([bar_limit - 0.05 - bar @ direction])
            # One-sided: the capsule ends stay above the table.
            for end in _HAND_ENDS:
                r = rot @ end
                if origin[2] + r[2] < cfg.table_clearance:
                    rows.append((jacp[2] + np.cross(r, _UP) @ jacr)[None])
                    errors.append([cfg.table_clearance - origin[2] - r[2]])
            q = self._step(q, np.vstack(rows), np.concatenate(errors), max_step)
        raise AssertionError("unreachable")

    def _step(self, q: np.ndarray, jac: np.ndarray, err: np.ndarray, max_step: float) -> np.ndarray:
        """One weighted damped-least-squares step within the joint limits.

        Joints that would pass a limit are put on it and the step is solved again for the others.
        """
        damping = self.config.ik_damping * np.eye(len(err))
        free = np.ones(self._n, dtype=bool)
        step = np.zeros(self._n)
        for _ in range(self._n):
            weights = self._weights[free]
            jw = jac[:, free] * weights
            step[free] = weights * (jw.T @ np.linalg.solve(jw @ jw.T + damping, err - jac[:, ~free] @ step[~free]))
            step *= min(1.0, max_step / max(float(np.abs(step).max()), 1e-12))
            new = q + step
            over = free & ((new < self._low) | (new > self._high))
            if not over.any():
                return new
            step[over] = np.clip(new[over], self._low[over], self._high[over]) - q[over]
            free &= ~over
        return np.clip(q + step, self._low, self._high)

    def _reachable(self, result: tuple[np.ndarray, float, float]) -> bool:
        return result[1] < self.config.reach_tolerance and result[2] < self.config.bar_tolerance

    # --- planning -----------------------------------------------------------------------------------------------

    def _plan(self, q: np.ndarray, obj: np.ndarray, goal: np.ndarray) -> None:
        """Chooses the corner and the push direction.

        The push direction is the goal's, turned by the first of ``turn_angles`` for which a corner's poses are
        reachable: touching the object and, solved on from there as the controller will, lowered behind it.
        """
        cfg = self.config
        offset = goal[:2] - obj[:2]
        to_goal = np.array([*(offset / max(float(np.linalg.norm(offset)), 1e-9)), 0.0])
        push_z = obj[2] + cfg.push_height
        starts = [q]
        for start in (self._q_ref, *(np.asarray(s, dtype=float) for s in cfg.ik_starts)):
            if not any(np.allclose(start, other) for other in starts):
                starts.append(start)
        best: tuple[float, str, float, np.ndarray] | None = None  # fallback: the smallest touching error
        for angle in np.radians(cfg.turn_angles):
            direction = _turn(to_goal, angle)
            touch = np.array([*(obj[:2] - cfg.contact_distance * direction[:2]), push_z])
            behind = np.array([*(obj[:2] - (cfg.contact_distance + cfg.standoff) * direction[:2]), push_z])
            for corner in _CORNERS:
                for start in starts:
                    touching = self._ik(start, corner, touch, direction, cfg.plan_iterations, cfg.ik_max_step)
                    if best is None or touching[1] < best[0]:
                        best = (touching[1], corner, float(angle), touching[0])
                    if not self._reachable(touching):
                        continue
                    lowered = self._ik(touching[0], corner, behind, direction, cfg.plan_iterations, cfg.ik_max_step)
                    if self._reachable(lowered):
                        self._corner, self._turn_angle, self._q_plan = corner, float(angle), lowered[0]
                        return
        assert best is not None
        _, self._corner, self._turn_angle, self._q_plan = best

    # --- control ------------------------------------------------------------------------------------------------

    def act(self, obs: Any = None) -> np.ndarray:
        """Joint torques ``(7,)`` float32 within the actuator range."""
        m, d, cfg = self.env.model, self.env.data, self.config
        n = self._n
        q, qvel = d.qpos[:n].copy(), d.qvel[:n].copy()
        obj, goal = d.xpos[self._object].copy(), d.xpos[self._goal].copy()
        offset = goal[:2] - obj[:2]
        distance = float(np.linalg.norm(offset))
        to_goal = np.array([*(offset / max(distance, 1e-9)), 0.0])
        push_z = obj[2] + cfg.push_height
        mujoco.mj_fullM(m, d, self._inertia)
        self._weights = np.diag(self._inertia)[:n] ** (-0.5 * cfg.inertia_weighting)

        if self._phase == "hold" and distance > cfg.resume_distance:
            self._phase = "plan"  # the object has left the goal: push it back
        if self._phase == "plan":
            self._plan(q, obj, goal)
            self._phase = "approach"
        if self._phase == "push" and distance < cfg.done_distance:
            self._phase = "hold"  # at the goal: back off to the object's surface and keep the push direction
            self._hold_direction = _turn(to_goal, self._turn_angle)
        if self._phase == "hold":
            target = np.array([*(obj[:2] - cfg.contact_distance * self._hold_direction[:2]), push_z])
            self._q_ref = self._ik(
                self._q_ref, self._corner, target, self._hold_direction, cfg.ik_iterations, cfg.push_max_step
            )[0]
            return self._track(q, qvel, np.zeros(n))
        rot = d.xmat[self._hand].reshape(3, 3)
        tip = d.xpos[self._hand] + rot @ _CORNERS[self._corner][0]
        direction = _turn(to_goal, self._turn_angle)
        rel = obj - tip
        ahead, lateral = float(rel @ direction), float(rel @ np.cross(_UP, direction))
        if self._phase == "push" and (
            abs(lateral) > cfg.max_lateral or not 0.0 < ahead < cfg.contact_distance + cfg.max_gap
        ):
            self._plan(q, obj, goal)  # the object left the corner: approach again
            self._phase = "approach"
            tip = d.xpos[self._hand] + rot @ _CORNERS[self._corner][0]
            direction = _turn(to_goal, self._turn_angle)
        behind = obj[:2] - (cfg.contact_distance + cfg.standoff) * direction[:2]
        gap = float(np.linalg.norm(tip[:2] - behind))
        if self._phase == "approach" and gap < cfg.aligned + self._ik_error and tip[2] < push_z + cfg.lowered:
            self._phase = "push"

        if self._phase == "push":
            if self._turn_angle != 0.0:  # turn the push back towards the goal where the arm can
                trial = self._turn_angle - np.sign(self._turn_angle) * min(
                    abs(self._turn_angle), cfg.turn_rate * self.env.dt
                )
                trial_direction = _turn(to_goal, trial)
                point = np.array([*(obj[:2] - cfg.contact_distance * trial_direction[:2]), push_z])
                result = self._ik(
                    self._q_ref, self._corner, point, trial_direction, cfg.ik_iterations, cfg.push_max_step
                )
                if self._reachable(result):
                    self._turn_angle, direction = trial, trial_direction
            depth = min(cfg.push_depth, cfg.slow_down * distance)
            target = np.array([*(obj[:2] - (cfg.contact_distance - depth) * direction[:2]), push_z])
            start, max_step = self._q_ref, cfg.push_max_step
        else:  # approach: high while far from the point behind the object, lower as the corner comes closer
            target = np.array([*behind, push_z + min(cfg.hover_height, cfg.descent_slope * gap)])
            start, max_step = self._q_plan, cfg.ik_max_step  # stays on the planned branch and ends on its pose
        previous = self._q_ref
        self._q_ref, self._ik_error, _ = self._ik(start, self._corner, target, direction, cfg.ik_iterations, max_step)
        # While pushing, the joint targets move with the object: track their velocity too (no lag behind it).
        qvel_ref = (self._q_ref - previous) / self.env.dt if self._phase == "push" else np.zeros(n)

        return self._track(q, qvel, qvel_ref)

    def _track(self, q: np.ndarray, qvel: np.ndarray, qvel_ref: np.ndarray) -> np.ndarray:
        """Joint space: computed-torque PD tracking of the joint targets, clipped to the motors' range.

        Gravity is zero in Pusher; the Coriolis terms and the joints' damping are compensated.
        """
        m, d, cfg, n = self.env.model, self.env.data, self.config, self._n
        accel = cfg.kp * (self._q_ref - q) + cfg.kd * (qvel_ref - qvel)
        torque = self._inertia[:n, :n] @ accel + d.qfrc_bias[:n] + m.dof_damping[:n] * qvel
        low, high = m.actuator_ctrlrange[:n, 0], m.actuator_ctrlrange[:n, 1]
        return np.clip(torque, low, high).astype(np.float32)
