"""UrbanNav's answers to the viewers (:mod:`embodia.envs.views`): its landmark palette and its city map."""

from __future__ import annotations

import numpy as np

from embodia.envs.nav.city import LANDMARK_CLASSES, LANDMARK_COLOURS, CityLayout
from embodia.envs.nav.tasks import NavTask
from embodia.envs.views import Disc, Polyline, Rect, TopDownMap

__all__ = ["city_map", "landmark_colours"]

_STREET, _BUILDING, _ROUTE, _WHITE = (70, 70, 78), (150, 150, 160), (80, 160, 255), (255, 255, 255)
MAP_MARGIN = 12.0
"""Metres of map around the street graph's nodes."""
LANDMARK_MAP_RADIUS = 0.8
"""Radius, metres, of a landmark's disc on the map."""


def landmark_colours() -> np.ndarray:
    """``(C, 3)`` RGB in [0, 1] of the landmark classes ``1..C`` (each class in its colour word's colour)."""
    return np.array([LANDMARK_COLOURS[name.split(" ")[0]] for name in LANDMARK_CLASSES])


def city_map(city: CityLayout, task: NavTask) -> TopDownMap:
    """The map of ``city``: streets and buildings under, ``task``'s reference route, landmarks over.

    Args:
        city: The episode's city.
        task: The episode's task (its ``reference_path`` ``(K, 2)`` is drawn).
    """
    nodes = city.graph.positions  # (N, 2)
    street = city.config.street_width
    under: list[Polyline | Rect | Disc] = [Polyline(nodes[[a, b]], street, _STREET) for a, b in city.graph.edges]
    under += [Rect(b.center[:2] - b.half_size[:2], b.center[:2] + b.half_size[:2], _BUILDING) for b in city.buildings]
    under.append(Polyline(np.asarray(task.reference_path), street / 4, _ROUTE, min_px=2))
    colours = landmark_colours()
    over: list[Polyline | Rect | Disc] = [
        Disc(np.asarray(lm.position)[:2], LANDMARK_MAP_RADIUS, _rgb255(colours[lm.class_id - 1]), _WHITE, min_px=3)
        for lm in city.landmarks
    ]
    bounds = np.stack([nodes.min(0) - MAP_MARGIN, nodes.max(0) + MAP_MARGIN])
    return TopDownMap(bounds=bounds, line_width=street, under=under, over=over)


def _rgb255(colour: np.ndarray) -> tuple[int, int, int]:
    r, g, b = (int(255 * c) for c in colour)
    return r, g, b
