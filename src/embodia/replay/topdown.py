"""A top-down map of an episode, for quick looks, for envs that draw one (:mod:`embodia.envs.views`).

It shows the env's map (UrbanNav: buildings, streets, the reference route, landmarks), the trajectory and what the
agent's memory held (topology graph, the path it planned on it, octree leaves where a semantic class was seen).
Drawn with Pillow from the scene the env rebuilds for the episode's seed (``top_down_map()``) and the robot
positions of the stored states; memory comes from the episode file's snapshot (``Mem4NavMemory.view_snapshot``)
when it has one.
"""

from __future__ import annotations

import numpy as np

from embodia.data.episodes import Episode
from embodia.envs.views import Disc, Polyline, Rect, has_top_down_map
from embodia.replay.palette import semantic_colours
from embodia.replay.video import rebuilt_scene, robot_positions

__all__ = ["draw_topdown"]

_TRAJECTORY, _GRAPH_NODE, _GRAPH_EDGE = (255, 120, 20), (255, 255, 255), (230, 230, 230)
_BACKGROUND, _PLAN = (28, 32, 30), (230, 40, 230)


def draw_topdown(episode: Episode, *, size: int = 800) -> np.ndarray:
    """The map of ``episode`` as a ``(size, size, 3)`` uint8 image (north up, 1 pixel = extent / size metres).

    Raises:
        ValueError: An episode of an env without a top-down map, no ``mj_state``, or a ``size`` outside
            [64, 4096].
    """
    from PIL import Image, ImageDraw

    if not (isinstance(size, int) and 64 <= size <= 4096):
        raise ValueError(f"map size must be an integer in [64, 4096], got {size!r}")
    if not has_top_down_map(episode.env_id):
        raise ValueError(f"{episode.env_id or 'the episode file'} defines no top-down map (top_down_map())")
    with rebuilt_scene(episode) as sim:
        scene = sim.top_down_map()
        trajectory = robot_positions(episode, sim)  # (T+1, 2)
    lo, hi = np.asarray(scene.bounds, dtype=np.float64)
    scale = (size - 1) / float((hi - lo).max())

    def px(points: np.ndarray) -> list[tuple[float, float]]:
        p = (np.asarray(points, dtype=np.float64).reshape(-1, 2) - lo) * scale
        return [(float(x), float(size - 1 - y)) for x, y in p]  # north up

    def shape(item: Polyline | Rect | Disc) -> None:
        if isinstance(item, Polyline):
            draw.line(px(item.points), fill=item.rgb, width=max(item.min_px, int(item.width * scale)))
        elif isinstance(item, Rect):
            (x0, y1), (x1, y0) = px(np.stack([item.lo, item.hi]))  # the y axis flips: the low corner is at the bottom
            draw.rectangle([x0, y0, x1, y1], fill=item.rgb)
        else:
            ((x, y),) = px(item.centre)
            r = max(item.min_px, int(item.radius * scale))
            draw.ellipse([x - r, y - r, x + r, y + r], fill=item.rgb, outline=item.outline)

    image = Image.new("RGB", (size, size), _BACKGROUND)
    draw = ImageDraw.Draw(image)
    line_w = max(1, int(scene.line_width * scale))
    for item in scene.under:
        shape(item)
    memory = episode.memory or {}
    if "octree.histograms" in memory:  # leaves where a semantic class was seen, in its colour
        hist = np.asarray(memory["octree.histograms"])[:, 1:]
        palette = (255 * semantic_colours(episode.env_id, hist.shape[1])).astype(int)  # (C, 3)
        seen = hist.sum(1) > 0
        centroids = np.asarray(memory["octree.centroids"])[seen, :2]
        for (x, y), cls in zip(px(centroids), hist[seen].argmax(1), strict=True):
            draw.rectangle([x - 1, y - 1, x + 1, y + 1], fill=tuple(int(c) for c in palette[cls]))
    draw.line(px(trajectory), fill=_TRAJECTORY, width=max(2, line_w // 5))
    if "graph.positions" in memory:
        graph_nodes = np.asarray(memory["graph.positions"])[:, :2]
        for u, v in np.asarray(memory["graph.edges"]).reshape(-1, 2):
            draw.line(px(graph_nodes[[u, v]]), fill=_GRAPH_EDGE, width=2)
        plan = np.asarray(memory.get("graph.plan", np.zeros(0)), dtype=np.int64)
        if len(plan) > 1:  # the planned path, over the graph
            draw.line(px(graph_nodes[plan]), fill=_PLAN, width=max(3, line_w // 3))
        for x, y in px(graph_nodes):
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=_GRAPH_NODE, outline=(0, 0, 0))
    for item in scene.over:
        shape(item)
    (sx, sy), (ex, ey) = px(trajectory[[0, -1]])
    draw.rectangle([sx - 5, sy - 5, sx + 5, sy + 5], outline=(0, 255, 120), width=2)
    draw.ellipse([ex - 6, ey - 6, ex + 6, ey + 6], outline=(255, 60, 60), width=3)
    return np.asarray(image)
