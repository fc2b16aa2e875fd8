"""The learned navigator's observation: a street plan and the free space around the robot, in 22 numbers.

Mem4Nav's modular backbone feeds its policy the waypoint relative to the agent; here a step's features are, in
the robot frame (x ahead, y to the left):

=====  ==========================================================================================
index  feature
=====  ==========================================================================================
0      1 if the planner knows where the goal is (a target and a street anchor), else 0
1-2    the plan's look-ahead point, divided by ``lookahead_scale`` (0 when the goal is unknown)
3-4    the unit vector towards the street anchor (0 when the goal is unknown)
5      ``min(distance to the anchor, distance_cap) / distance_scale`` (the cap's value when unknown)
6-21   the nearest range reading in each of 16 azimuth sectors (sector 0 centred straight ahead,
       counter-clockwise), over the rows that look just above the horizon, divided by ``max_range``
=====  ==========================================================================================

The distance term tells the policy when to stop (the stop label is positive on about 1 % of the samples). The
free space lies in ``[0, 1]``, the direction in ``[-1, 1]``, the distance in ``[0, 3]`` and the look-ahead point
within about 1 of the origin (``lookahead_scale`` is the planner's look-ahead distance).
"""

from __future__ import annotations

import math

import numpy as np

from embodia.agents.planner import Plan

__all__ = ["FEATURE_NAMES", "NUM_FEATURES", "plan_features"]

SECTORS = 16
"""Azimuth sectors of the free-space part."""
FEATURE_NAMES = (
    "found", "lookahead_x", "lookahead_y", "anchor_dir_x", "anchor_dir_y", "anchor_distance",
    *(f"free_{k}" for k in range(SECTORS)),
)  # fmt: skip
"""The names of the features, in order."""
NUM_FEATURES = len(FEATURE_NAMES)
"""Width of one step's features (22)."""


def plan_features(
    plan: Plan,
    lookahead: np.ndarray | None,
    position: np.ndarray,
    yaw: float,
    depth: np.ndarray,
    rows: np.ndarray,
    max_range: float,
    *,
    lookahead_scale: float = 3.0,
    distance_scale: float = 10.0,
    distance_cap: float = 30.0,
) -> np.ndarray:
    """One step's features (see the module docstring).

    Args:
        plan: The planner's plan for this step.
        lookahead: ``(2,)`` the plan's look-ahead point (world frame), or None when the goal is unknown.
        position: ``(2,)`` the robot's position (world frame, metres).
        yaw: The robot's heading, radians.
        depth: ``(E, A)`` range image, metres (columns counter-clockwise from straight ahead).
        rows: Row indices of the range image that look just above the horizon.
        max_range: The sensor's range, metres.
        lookahead_scale: Metres per unit of the look-ahead point.
        distance_scale: Metres per unit of the anchor distance.
        distance_cap: Anchor distances beyond this count as this.

    Returns:
        ``(NUM_FEATURES,)`` float32.
    """
    c, s = math.cos(yaw), math.sin(yaw)

    def to_robot(point: np.ndarray) -> np.ndarray:
        dx, dy = point[0] - position[0], point[1] - position[1]
        return np.array([c * dx + s * dy, -s * dx + c * dy])

    out = np.zeros(NUM_FEATURES, dtype=np.float32)
    out[5] = distance_cap / distance_scale
    if plan.found and lookahead is not None:
        out[0] = 1.0
        out[1:3] = to_robot(lookahead) / lookahead_scale
        to_anchor = to_robot(plan.anchor)
        distance = float(np.linalg.norm(to_anchor))
        if distance > 1e-9:
            out[3:5] = to_anchor / distance
        out[5] = min(distance, distance_cap) / distance_scale
    free = np.asarray(depth, dtype=np.float64)[rows].min(axis=0)  # (A,)
    azimuths = free.size
    if azimuths % SECTORS:
        raise ValueError(f"the range image needs a multiple of {SECTORS} azimuth columns, got {azimuths}")
    shift = azimuths // (2 * SECTORS)  # centre sector 0 straight ahead
    sectors = np.roll(free, shift).reshape(SECTORS, -1).min(axis=1)
    out[6:] = np.clip(sectors / max_range, 0.0, 1.0)
    return out
