"""DetourReach's side rule: on which side of the start -> goal axis a path passes the disk obstacle.

One rule, used by the env's ``side`` metric (``DetourReachEnv.side``), by its :meth:`chunk_modes
<embodia.envs.detour.detour_reach.DetourReachEnv.chunk_modes>` (the side each sampled action chunk would take) and
by tests: take ``p*``, the point of the path closest to the obstacle centre (over the straight segments between
consecutive positions, starting from the start position), and return the sign of ``cross(axis, p* - centre)``
with ``axis`` the unit start -> goal direction: +1 left, -1 right, and 0 (undecided) when ``p*`` lies less than
``radius / 2`` off the axis.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["chunk_sides", "closest_point_side", "passing_side", "passing_sides"]


def closest_point_side(
    closest: np.ndarray, start: np.ndarray, goal: np.ndarray, centre: np.ndarray, radius: float
) -> np.ndarray:
    """The side of each path given its point closest to the obstacle centre.

    Args:
        closest: ``(N, 2)`` each path's point closest to ``centre``.
        start: ``(2,)`` episode start (tail of the axis).
        goal: ``(2,)`` goal (head of the axis).
        centre: ``(2,)`` obstacle centre.
        radius: Obstacle radius, m.

    Returns:
        ``(N,)`` float64 of +1.0 (left) / -1.0 (right) / 0.0 (undecided).

    Raises:
        ValueError: ``start`` equals ``goal`` (no axis).
    """
    start, goal, centre = (np.asarray(v, dtype=np.float64) for v in (start, goal, centre))
    length = float(np.linalg.norm(goal - start))
    if not length > 0:
        raise ValueError(f"start and goal must differ (they define the axis), both are {start.tolist()}")
    axis = (goal - start) / length  # (2,)
    rel = np.asarray(closest, dtype=np.float64) - centre  # (N, 2)
    lateral = axis[0] * rel[:, 1] - axis[1] * rel[:, 0]  # (N,)
    return np.where(np.abs(lateral) < radius / 2, 0.0, np.sign(lateral))


def passing_sides(
    paths: np.ndarray, start: np.ndarray, goal: np.ndarray, centre: np.ndarray, radius: float
) -> np.ndarray:
    """Vectorised :func:`passing_side`.

    Args:
        paths: ``(N, T, 2)`` positions in visiting order, ``paths[:, 0]`` the start position (``T >= 1``).
        start: ``(2,)`` episode start (tail of the axis).
        goal: ``(2,)`` goal (head of the axis).
        centre: ``(2,)`` obstacle centre.
        radius: Obstacle radius, m.

    Returns:
        ``(N,)`` float64 of +1.0 / -1.0 / 0.0.
    """
    paths = np.asarray(paths, dtype=np.float64)
    centre = np.asarray(centre, dtype=np.float64)
    a, b = paths[:, :-1], paths[:, 1:]  # (N, T-1, 2) segment ends
    ab = b - a  # (N, T-1, 2)
    denom = np.einsum("nti,nti->nt", ab, ab)  # (N, T-1)
    proj = np.einsum("nti,nti->nt", centre - a, ab)  # (N, T-1)
    t = np.where(denom > 0, np.clip(proj / np.where(denom > 0, denom, 1.0), 0.0, 1.0), 0.0)  # (N, T-1)
    nearest = a + t[..., None] * ab  # (N, T-1, 2) closest point of each segment
    candidates = np.concatenate([paths[:, :1], nearest], axis=1)  # (N, T, 2): the start, then each segment
    dist = np.linalg.norm(candidates - centre, axis=-1)  # (N, T)
    closest = candidates[np.arange(len(paths)), dist.argmin(axis=1)]  # (N, 2) first minimum, as the env keeps
    return closest_point_side(closest, start, goal, centre, radius)


def passing_side(points: np.ndarray, start: np.ndarray, goal: np.ndarray, centre: np.ndarray, radius: float) -> float:
    """Side on which one path passes the disk obstacle (the module's rule).

    Args:
        points: ``(T, 2)`` positions in visiting order, ``points[0]`` the start position (``T >= 1``).
        start: ``(2,)`` episode start (tail of the axis).
        goal: ``(2,)`` goal (head of the axis).
        centre: ``(2,)`` obstacle centre.
        radius: Obstacle radius, m.

    Returns:
        +1.0, -1.0 or 0.0.

    Raises:
        ValueError: ``points`` not ``(T, 2)``, or ``start`` equals ``goal``.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 1:
        raise ValueError(f"points must be (T, 2) with T >= 1, got {points.shape}")
    return float(passing_sides(points[None], start, goal, centre, radius)[0])


def chunk_sides(
    start_xy: np.ndarray,
    goal_xy: np.ndarray,
    obstacle_xy: np.ndarray,
    obstacle_radius: float,
    chunks: Any,
    *,
    max_speed: float,
    dt: float,
    start_index: int,
) -> np.ndarray:
    """Side (+1 left / -1 right / 0 undecided) of the obstacle each raw action chunk would pass.

    Each chunk is integrated open loop from ``start_xy`` as DetourReach moves the agent (velocity
    ``clip(a, -1, 1) * max_speed`` per axis for ``dt`` seconds, no obstacle contact), over chunk entries
    ``start_index`` onward (``To - 1``: the current step), and classified with :func:`passing_sides`. A chunk
    that ends before the obstacle is judged at its point closest to the obstacle, as the env judges a
    trajectory cut short.

    Args:
        start_xy: ``(2,)`` the agent's position, which is also the episode start (the axis tail).
        goal_xy: ``(2,)`` goal position.
        obstacle_xy: ``(2,)`` obstacle centre.
        obstacle_radius: Obstacle radius, m.
        chunks: ``(N, Tp, Da=2)`` raw action chunks (numpy, or a tensor on any device).
        max_speed: Speed per axis at action 1, m/s.
        dt: Seconds per env step.
        start_index: First chunk entry to execute, ``0 <= start_index < Tp``.

    Returns:
        ``(N,)`` float64 of +1.0 / -1.0 / 0.0.

    Raises:
        ValueError: ``chunks`` not ``(N, Tp, 2)``, or ``start_index`` out of range.
    """
    if hasattr(chunks, "detach"):  # a torch tensor, on any device
        chunks = chunks.detach().cpu().numpy()
    chunks = np.asarray(chunks, dtype=np.float64)
    if chunks.ndim != 3 or chunks.shape[2] != 2:
        raise ValueError(f"chunks must be (N, Tp, 2), got {chunks.shape}")
    if not 0 <= start_index < chunks.shape[1]:
        raise ValueError(f"start_index must be in [0, Tp={chunks.shape[1]}), got {start_index}")
    start = np.asarray(start_xy, dtype=np.float64)  # (2,)
    steps = np.clip(chunks[:, start_index:], -1.0, 1.0) * (max_speed * dt)  # (N, T, 2) displacement per step
    paths = start + np.cumsum(steps, axis=1)  # (N, T, 2)
    paths = np.concatenate([np.broadcast_to(start, (len(paths), 1, 2)), paths], axis=1)  # (N, T+1, 2)
    return passing_sides(paths, start, goal_xy, obstacle_xy, obstacle_radius)
