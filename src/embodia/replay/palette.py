"""Colours of semantic classes in the viewers: the env's own palette where it has one, else an even hue wheel."""

from __future__ import annotations

import colorsys

import numpy as np

from embodia.envs.views import class_colours

__all__ = ["semantic_colours"]


def semantic_colours(env_id: str, num_classes: int) -> np.ndarray:
    """``(num_classes, 3)`` RGB in [0, 1] for semantic classes ``1..num_classes`` of ``env_id``'s episodes.

    The env's ``class_colours()`` (:mod:`embodia.envs.views`) when it defines at least ``num_classes`` of them;
    otherwise ``num_classes`` evenly spaced hues.

    Args:
        env_id: The episode's env id (may be unknown or empty).
        num_classes: Number of classes to colour, >= 0.
    """
    colours = class_colours(env_id) if env_id else None
    if colours is not None and len(colours) >= num_classes:
        return colours[:num_classes]
    return np.array([colorsys.hsv_to_rgb(k / max(num_classes, 1), 0.8, 0.9) for k in range(num_classes)]).reshape(-1, 3)
