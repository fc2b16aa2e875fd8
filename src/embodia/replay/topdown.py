"""A top-down map of an UrbanNav episode, for quick looks.

It shows buildings, streets, landmarks, the reference route, the trajectory and what the agent's memory held
(topology graph, the path it planned on it, octree leaves where a landmark class was seen). Drawn with Pillow from
the city the env rebuilds for the episode's seed and the robot positions of the stored states; memory comes from the
episode file's snapshot (``Mem4NavMemory.view_snapshot``) when it has one.
"""

from __future__ import annotations

import numpy as np

from embodia.data.episodes import Episode
from embodia.replay.video import rebuilt_scene, robot_positions

__all__ = ["draw_topdown"]

_STREET, _BUILDING, _ROUTE, _TRAJECTORY = (70, 70, 78), (150, 150, 160), (80, 160, 255), (255, 120, 20)
_GRAPH_NODE, _GRAPH_EDGE, _BACKGROUND, _PLAN = (255, 255, 255), (230, 230, 230), (28, 32, 30), (230, 40, 230)


def _landmark_rgb(class_id: int) -> tuple[int, int, int]:
    from embodia.envs.nav.city import LANDMARK_CLASSES, LANDMARK_COLOURS

    colour = LANDMARK_CLASSES[class_id - 1].split(" ")[0]
    return tuple(int(255 * c) for c in LANDMARK_COLOURS[colour])


def draw_topdown(episode: Episode, *, size: int = 800) -> np.ndarray:
    """The map of ``episode`` as a ``(size, size, 3)`` uint8 image (north up, 1 pixel = extent / size metres).

    Raises:
        ValueError: Not an UrbanNav episode, no ``mj_state``, or a ``size`` outside [64, 4096].
    """
    from PIL import Image, ImageDraw

    if not (isinstance(size, int) and 64 <= size <= 4096):
        raise ValueError(f"map size must be an integer in [64, 4096], got {size!r}")
    if "UrbanNav" not in episode.env_id:
        raise ValueError(f"the top-down map draws UrbanNav cities; this episode is from {episode.env_id or 'unknown'}")
    with rebuilt_scene(episode) as sim:
        city, task = sim.city, sim.task
        trajectory = robot_positions(episode, sim)  # (T+1, 2)
    nodes = city.graph.positions
    lo, hi = nodes.min(0) - 12.0, nodes.max(0) + 12.0
    scale = (size - 1) / float((hi - lo).max())

    def px(points: np.ndarray) -> list[tuple[float, float]]:
        p = (np.asarray(points, dtype=np.float64).reshape(-1, 2) - lo) * scale
        return [(float(x), float(size - 1 - y)) for x, y in p]  # north up

    image = Image.new("RGB", (size, size), _BACKGROUND)
    draw = ImageDraw.Draw(image)
    street_w = max(1, int(city.config.street_width * scale))
    for a, b in city.graph.edges:
        draw.line(px(nodes[[a, b]]), fill=_STREET, width=street_w)
    for building in city.buildings:
        corners = px(
            np.stack([building.center[:2] - building.half_size[:2], building.center[:2] + building.half_size[:2]])
        )
        (x0, y1), (x1, y0) = corners  # the y axis flips: the low corner is at the bottom
        draw.rectangle([x0, y0, x1, y1], fill=_BUILDING)
    draw.line(px(task.reference_path), fill=_ROUTE, width=max(2, street_w // 4))
    memory = episode.memory or {}
    if "octree.histograms" in memory:  # leaves where a landmark class was seen, in its colour
        hist = np.asarray(memory["octree.histograms"])[:, 1:]
        seen = hist.sum(1) > 0
        centroids = np.asarray(memory["octree.centroids"])[seen, :2]
        for (x, y), cls in zip(px(centroids), hist[seen].argmax(1) + 1, strict=True):
            draw.rectangle([x - 1, y - 1, x + 1, y + 1], fill=_landmark_rgb(int(cls)))
    draw.line(px(trajectory), fill=_TRAJECTORY, width=max(2, street_w // 5))
    if "graph.positions" in memory:
        graph_nodes = np.asarray(memory["graph.positions"])[:, :2]
        for u, v in np.asarray(memory["graph.edges"]).reshape(-1, 2):
            draw.line(px(graph_nodes[[u, v]]), fill=_GRAPH_EDGE, width=2)
        plan = np.asarray(memory.get("graph.plan", np.zeros(0)), dtype=np.int64)
        if len(plan) > 1:  # the planned path, over the graph
            draw.line(px(graph_nodes[plan]), fill=_PLAN, width=max(3, street_w // 3))
        for x, y in px(graph_nodes):
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=_GRAPH_NODE, outline=(0, 0, 0))
    r = max(3, int(0.8 * scale))
    for lm in city.landmarks:
        ((x, y),) = px(lm.position)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=_landmark_rgb(lm.class_id), outline=(255, 255, 255))
    (sx, sy), (ex, ey) = px(trajectory[[0, -1]])
    draw.rectangle([sx - 5, sy - 5, sx + 5, sy + 5], outline=(0, 255, 120), width=2)
    draw.ellipse([ex - 6, ey - 6, ex + 6, ey + 6], outline=(255, 60, 60), width=3)
    return np.asarray(image)
