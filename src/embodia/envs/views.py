"""What an env offers to the viewers (``embodia.replay``), looked up from an episode's env id.

Generic replay code never names an env: it asks here. An env class may define

* ``class_colours()`` (a classmethod): ``(C, 3)`` RGB in [0, 1] of its semantic classes ``1..C`` (UrbanNav's
  landmark classes), for colouring what a memory saw;
* ``top_down_map()`` (on the env after ``reset``): a :class:`TopDownMap` of the scene, in world metres, which the
  replay draws under and over the trajectory and the memory.

An env without them gets None from :func:`class_colours` and False from :func:`has_top_down_map`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator

__all__ = [
    "Disc",
    "Polyline",
    "Rect",
    "TopDownMap",
    "class_colours",
    "env_class",
    "has_top_down_map",
    "headline_metrics",
]

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Polyline:
    """A line through ``points`` ``(K, 2)`` (metres), ``width`` metres wide but at least ``min_px`` pixels."""

    points: np.ndarray
    width: float
    rgb: RGB
    min_px: int = 1


@dataclass(frozen=True)
class Rect:
    """An axis-aligned filled rectangle from corner ``lo`` ``(2,)`` to corner ``hi`` ``(2,)`` (metres)."""

    lo: np.ndarray
    hi: np.ndarray
    rgb: RGB


@dataclass(frozen=True)
class Disc:
    """A filled disc at ``centre`` ``(2,)`` of ``radius`` metres (at least ``min_px`` pixels), outlined."""

    centre: np.ndarray
    radius: float
    rgb: RGB
    outline: RGB | None = None
    min_px: int = 1


@dataclass(frozen=True)
class TopDownMap:
    """A planar map of an env's scene (world x, y in metres, north up).

    Attributes:
        bounds: ``(2, 2)`` the ``[low, high]`` corners the map spans.
        line_width: The width, metres, of the scene's main lines (UrbanNav: a street); the viewer draws the
            trajectory and a planned path at fractions of it.
        under: Shapes drawn first, under the trajectory and the memory (streets, buildings, a reference route).
        over: Shapes drawn last, over them (landmarks).
    """

    bounds: np.ndarray
    line_width: float
    under: list[Polyline | Rect | Disc] = field(default_factory=list)
    over: list[Polyline | Rect | Disc] = field(default_factory=list)


def env_class(env_id: str) -> type | None:
    """The class registered as ``env_id`` (importing its module), or None for an unknown id or a factory function.

    Args:
        env_id: A Gymnasium id, e.g. ``"embodia/UrbanNav-v0"``.
    """
    try:
        entry = gym.spec(env_id).entry_point
    except gym.error.Error:
        return None
    try:  # a foreign env whose module or dependencies are missing here has no views to offer
        creator = load_env_creator(entry) if isinstance(entry, str) else entry
    except (ImportError, gym.error.Error):
        return None
    return creator if isinstance(creator, type) else None


def class_colours(env_id: str) -> np.ndarray | None:
    """``(C, 3)`` float RGB in [0, 1] of ``env_id``'s semantic classes ``1..C``, or None if it defines none."""
    cls = env_class(env_id)
    colours = getattr(cls, "class_colours", None)
    return None if colours is None else np.asarray(colours(), dtype=np.float64).reshape(-1, 3)


def has_top_down_map(env_id: str) -> bool:
    """Whether ``env_id``'s env draws a :class:`TopDownMap` (``top_down_map()``)."""
    return callable(getattr(env_class(env_id), "top_down_map", None))


def headline_metrics(env_id: str) -> tuple[tuple[str, str], ...]:
    """The metrics a report on ``env_id`` leads with, as ``(key, column title)`` pairs.

    Its env's ``HEADLINE_METRICS``; else ``(("success", "success"),)``, which every embodia env and every adapted
    foreign env reports.
    """
    return getattr(env_class(env_id), "HEADLINE_METRICS", (("success", "success"),))
