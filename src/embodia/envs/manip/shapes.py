"""Planar block shapes made of rectangles: geometry, mass properties, point tests and Push-T coverage.

A shape is a union of axis-aligned rectangles in the block's own frame, whose origin is the centre of mass
(the block's hinge turns about it). The T of Push-T is two rectangles; the PushBlock box is one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BlockShape:
    """A union of rectangles ``centres (R, 2)`` with half sizes ``halves (R, 2)`` in the block frame (origin = COM).

    Attributes:
        name: ``"box"`` or ``"tee"``.
        symmetry: rotation (radians) that maps the shape onto itself (2*pi when none).
    """

    name: str
    centres: np.ndarray
    halves: np.ndarray
    symmetry: float

    @property
    def area(self) -> float:
        """Area in m^2 (rectangles must not overlap)."""
        return float(np.prod(2 * self.halves, axis=1).sum())

    @property
    def gyration2(self) -> float:
        """Squared radius of gyration about the origin, m^2 (I / m for a uniform plate)."""
        w, h = 2 * self.halves[:, 0], 2 * self.halves[:, 1]
        areas = w * h
        second = areas * ((w**2 + h**2) / 12 + (self.centres**2).sum(axis=1))
        return float(second.sum() / areas.sum())

    @property
    def radius(self) -> float:
        """Distance from the origin to the farthest corner, m."""
        corners = np.concatenate([self.centres + self.halves * s for s in ((1, 1), (1, -1), (-1, 1), (-1, -1))])
        return float(np.linalg.norm(corners, axis=1).max())

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Which block-frame points ``(N, 2)`` lie inside the shape; returns ``(N,)`` bool."""
        rel = np.abs(points[:, None, :] - self.centres[None])  # (N, R, 2)
        return (rel <= self.halves[None]).all(axis=2).any(axis=1)

    def grid(self, spacing: float) -> np.ndarray:
        """Points ``(M, 2)`` on a regular grid covering the shape (cell centres), for area integrals."""
        parts = []
        for centre, half in zip(self.centres, self.halves, strict=True):
            nx, ny = (max(round(2 * h / spacing), 1) for h in half)
            xs = centre[0] - half[0] + (np.arange(nx) + 0.5) * (2 * half[0] / nx)
            ys = centre[1] - half[1] + (np.arange(ny) + 0.5) * (2 * half[1] / ny)
            gx, gy = np.meshgrid(xs, ys, indexing="ij")
            parts.append(np.stack([gx.ravel(), gy.ravel()], axis=1))
        return np.concatenate(parts)

    def ray_entry(self, origin: np.ndarray, direction: np.ndarray) -> tuple[float, np.ndarray] | None:
        """Where the block-frame ray ``origin + s * direction`` first enters the shape.

        Returns:
            ``(s, normal)``: the smallest ``s >= 0`` on the boundary and the outward normal ``(2,)`` of the face
            entered there, or None if the ray misses (or starts inside) the shape.
        """
        best: tuple[float, np.ndarray] | None = None
        for centre, half in zip(self.centres, self.halves, strict=True):
            lo, hi = centre - half, centre + half
            t_near, t_far, axis_near = -np.inf, np.inf, -1
            for axis in range(2):
                if abs(direction[axis]) < 1e-12:
                    if not lo[axis] <= origin[axis] <= hi[axis]:
                        t_near, t_far = np.inf, -np.inf
                        break
                    continue
                t1 = (lo[axis] - origin[axis]) / direction[axis]
                t2 = (hi[axis] - origin[axis]) / direction[axis]
                if min(t1, t2) > t_near:
                    t_near, axis_near = min(t1, t2), axis
                t_far = min(t_far, max(t1, t2))
            if t_near <= t_far and t_near >= 0 and axis_near >= 0 and (best is None or t_near < best[0]):
                normal = np.zeros(2)
                normal[axis_near] = -np.sign(direction[axis_near])
                best = (float(t_near), normal)
        return best


def box_shape(half_x: float = 0.04, half_y: float = 0.04) -> BlockShape:
    """A rectangular block centred on its origin (a square has 4-fold symmetry)."""
    symmetry = np.pi / 2 if np.isclose(half_x, half_y) else np.pi
    return BlockShape("box", np.zeros((1, 2)), np.array([[half_x, half_y]]), symmetry)


def tee_shape(bar: tuple[float, float] = (0.12, 0.03), stem: tuple[float, float] = (0.03, 0.09)) -> BlockShape:
    """The Push-T block: a horizontal bar on top of a vertical stem, shifted so the origin is the COM.

    Args:
        bar: full width and height of the bar, m.
        stem: full width and height of the stem, m.
    """
    bar_c = np.array([0.0, bar[1] / 2])
    stem_c = np.array([0.0, -stem[1] / 2])
    areas = np.array([bar[0] * bar[1], stem[0] * stem[1]])
    com = (areas[0] * bar_c + areas[1] * stem_c) / areas.sum()
    centres = np.stack([bar_c, stem_c]) - com
    halves = np.array([[bar[0] / 2, bar[1] / 2], [stem[0] / 2, stem[1] / 2]])
    return BlockShape("tee", centres, halves, 2 * np.pi)


def to_world(points: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """Block-frame points ``(N, 2)`` to world for ``pose = (x, y, theta)``."""
    c, s = np.cos(pose[2]), np.sin(pose[2])
    return points @ np.array([[c, s], [-s, c]]) + pose[:2]


def to_block(points: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """World points ``(N, 2)`` to the frame of a block at ``pose``."""
    c, s = np.cos(pose[2]), np.sin(pose[2])
    return (points - pose[:2]) @ np.array([[c, -s], [s, c]])


def rectangle_corners(shape: BlockShape, pose: np.ndarray) -> np.ndarray:
    """World corners ``(R, 4, 2)`` of each rectangle of ``shape`` at ``pose``, counter-clockwise."""
    signs = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)  # (4, 2) ccw
    local = shape.centres[:, None, :] + signs[None] * shape.halves[:, None, :]  # (R, 4, 2)
    return to_world(local.reshape(-1, 2), pose).reshape(-1, 4, 2)


def _clip_convex(subject: list[np.ndarray], clip: np.ndarray) -> list[np.ndarray]:
    """Sutherland-Hodgman: the part of polygon ``subject`` inside the convex ccw polygon ``clip`` ``(4, 2)``."""
    output = subject
    for k in range(len(clip)):
        a, b = clip[k], clip[(k + 1) % len(clip)]
        edge = b - a
        inputs, output = output, []
        if not inputs:
            break
        for i, p in enumerate(inputs):
            q = inputs[i - 1]
            side_p = edge[0] * (p[1] - a[1]) - edge[1] * (p[0] - a[0])  # >= 0: inside (left of the ccw edge)
            side_q = edge[0] * (q[1] - a[1]) - edge[1] * (q[0] - a[0])
            if (side_p >= 0) != (side_q >= 0):  # q -> p crosses the clip line (one side strictly negative)
                output.append(q + (side_q / (side_q - side_p)) * (p - q))
            if side_p >= 0:
                output.append(p)
    return output


def _polygon_area(points: list[np.ndarray]) -> float:
    if len(points) < 3:
        return 0.0
    xy = np.asarray(points)
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * abs(float(x @ np.roll(y, -1) - y @ np.roll(x, -1)))


def coverage(shape: BlockShape, pose: np.ndarray, goal: np.ndarray, samples: np.ndarray | None = None) -> float:
    """Fraction of the goal-pose shape covered by the shape at ``pose`` (Push-T's success measure).

    Exact by default: the shape's rectangles do not overlap, so the intersection of the two unions is the sum of
    the pairwise rectangle intersections, each a convex polygon clip.

    Args:
        shape: the block shape.
        pose: ``(3,)`` block pose ``x, y, theta``.
        goal: ``(3,)`` goal pose.
        samples: ``(M, 2)`` block-frame points from ``shape.grid`` for a sampled estimate instead (resolution
            about one grid row of the area; too coarse near a 0.95 threshold).

    Returns:
        Intersection area / shape area, in [0, 1].
    """
    if samples is not None:
        world = to_world(samples, goal)
        return float(shape.contains(to_block(world, pose)).mean())
    block, target = rectangle_corners(shape, pose), rectangle_corners(shape, goal)
    overlap = sum(_polygon_area(_clip_convex(list(a), b)) for a in block for b in target)
    return float(min(overlap / shape.area, 1.0))
