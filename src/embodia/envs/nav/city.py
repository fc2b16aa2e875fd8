"""City layouts for UrbanNav: a grid of blocks, streets, buildings and street-side landmarks.

Layouts are plain data (numpy, no MuJoCo), generated from a ``numpy.random.Generator``, so the same seed always
gives the same city. ``embodia.envs.nav.scene`` turns a layout into a MuJoCo scene.

Geometry (metres): intersection ``(i, j)`` sits at ``(i * pitch, j * pitch)`` with ``pitch = block_size +
street_width``. Streets run along the grid lines; buildings stand inside the blocks, set back by a sidewalk;
landmarks stand on the sidewalks, either at an intersection's corner or mid-block beside a street.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from embodia.envs.nav.street_graph import EdgePoint, StreetGraph

LANDMARK_COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.86, 0.12, 0.12),
    "blue": (0.12, 0.30, 0.90),
    "green": (0.10, 0.70, 0.20),
    "yellow": (0.95, 0.85, 0.10),
}
LANDMARK_SHAPES: tuple[str, ...] = ("tower", "kiosk", "globe", "pillar")
LANDMARK_CLASSES: tuple[str, ...] = tuple(f"{c} {s}" for c in LANDMARK_COLOURS for s in LANDMARK_SHAPES)
"""Semantic class names; class id ``k + 1`` is ``LANDMARK_CLASSES[k]`` (id 0 means "no landmark")."""

NUM_LANDMARK_CLASSES = len(LANDMARK_CLASSES)
MIN_LANDMARK_SPACING = 3.0
"""Smallest distance between two landmarks' centres, metres (the largest is 2.2 m across)."""


def landmark_class_id(colour: str, shape: str) -> int:
    """Semantic id (1-based) of a colour/shape pair."""
    return LANDMARK_CLASSES.index(f"{colour} {shape}") + 1


@dataclass
class CityConfig:
    """Size and make-up of a generated city."""

    blocks_x: int = 4
    """Blocks along x (intersections: blocks_x + 1)."""
    blocks_y: int = 4
    """Blocks along y."""
    block_size: float = 16.0
    """Side of a block between two streets, metres."""
    street_width: float = 8.0
    """Width of a street, metres (the robot drives on its centre line)."""
    sidewalk: float = 3.0
    """Setback of buildings from the street edge, metres; landmarks stand in this strip."""
    building_height: tuple[float, float] = (6.0, 30.0)
    """Range of building heights, metres."""
    corner_landmark_prob: float = 0.85
    """Probability that an intersection has at least one corner landmark (a second one with a third of it)."""
    midblock_landmark_prob: float = 0.6
    """Probability that a street segment has a mid-block landmark."""

    def __post_init__(self) -> None:
        for name in ("blocks_x", "blocks_y"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int):
                raise ValueError(f"{name} must be an integer, got {getattr(self, name)!r}")
        for name in ("block_size", "street_width", "sidewalk", "corner_landmark_prob", "midblock_landmark_prob"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if len(self.building_height) != 2 or not all(math.isfinite(float(h)) for h in self.building_height):
            raise ValueError(f"building_height must be two finite numbers, got {self.building_height!r}")
        if not (1 <= self.blocks_x <= 30 and 1 <= self.blocks_y <= 30):
            raise ValueError(f"blocks_x and blocks_y must be in [1, 30], got {self.blocks_x}x{self.blocks_y}")
        if self.blocks_x * self.blocks_y < 2:
            raise ValueError("a city needs at least 2 blocks")
        if self.street_width <= 2.0:
            raise ValueError(f"street_width must be > 2 m, got {self.street_width}")
        if self.sidewalk < 2.0:
            raise ValueError(f"sidewalk must be >= 2 m (landmarks stand on it), got {self.sidewalk}")
        if self.block_size <= 2 * self.sidewalk + 2.0:
            raise ValueError(f"block_size must exceed 2 * sidewalk + 2 m, got {self.block_size}")
        lo, hi = self.building_height
        if not 0 < lo <= hi:
            raise ValueError(f"building_height must satisfy 0 < low <= high, got {self.building_height}")
        for name in ("corner_landmark_prob", "midblock_landmark_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.midblock_landmark_prob == 0.0:
            raise ValueError("midblock_landmark_prob must be > 0: goals are mid-block landmarks")

    @property
    def pitch(self) -> float:
        """Distance between neighbouring intersections, metres."""
        return self.block_size + self.street_width

    @property
    def extent(self) -> tuple[float, float]:
        """Width and depth of the street grid, metres."""
        return self.blocks_x * self.pitch, self.blocks_y * self.pitch


@dataclass(frozen=True)
class Building:
    """A box building: ``center`` ``(2,)``, ``half_size`` ``(2,)`` in the plane, ``height`` and an RGBA colour."""

    center: np.ndarray
    half_size: np.ndarray
    height: float
    rgba: tuple[float, float, float, float]


@dataclass(frozen=True)
class Landmark:
    """A named street-side object.

    Attributes:
        index: position in ``CityLayout.landmarks``.
        class_id: semantic id, 1-based into ``LANDMARK_CLASSES``.
        position: ``(2,)`` ground position.
        anchor: the street point that counts as "at the landmark" (the intersection for a corner landmark, the
            nearest centre-line point for a mid-block one).
        node: the intersection of a corner landmark, else None.
        edge: the street segment of a mid-block landmark, else None.
    """

    index: int
    class_id: int
    position: np.ndarray
    anchor: EdgePoint
    node: int | None = None
    edge: int | None = None

    @property
    def name(self) -> str:
        """Human name such as ``"red tower"``."""
        return LANDMARK_CLASSES[self.class_id - 1]

    @property
    def colour(self) -> str:
        """Colour word of the name."""
        return self.name.split(" ")[0]

    @property
    def shape(self) -> str:
        """Shape word of the name."""
        return self.name.split(" ")[1]


@dataclass
class CityLayout:
    """A generated city: street graph, buildings and landmarks."""

    config: CityConfig
    graph: StreetGraph
    buildings: list[Building] = field(default_factory=list)
    landmarks: list[Landmark] = field(default_factory=list)

    def corner_landmarks(self, node: int) -> list[Landmark]:
        """Landmarks at the corners of intersection ``node``."""
        return [lm for lm in self.landmarks if lm.node == node]

    def midblock_landmarks(self, edge: int) -> list[Landmark]:
        """Mid-block landmarks beside street segment ``edge``."""
        return [lm for lm in self.landmarks if lm.edge == edge]


def _building_colour(rng: np.random.Generator) -> tuple[float, float, float, float]:
    # Muted greys and browns, kept apart from the saturated landmark colours.
    base = rng.choice(np.array([[0.55, 0.55, 0.58], [0.62, 0.52, 0.44], [0.70, 0.66, 0.60], [0.45, 0.47, 0.52]]))
    jitter = rng.uniform(-0.06, 0.06, size=3)
    r, g, b = np.clip(base + jitter, 0.2, 0.8)
    return (float(r), float(g), float(b), 1.0)


def _block_buildings(cfg: CityConfig, lo: np.ndarray, hi: np.ndarray, rng: np.random.Generator) -> list[Building]:
    """Fills the buildable area ``[lo, hi]`` of one block with 1 to 4 buildings separated by alleys."""
    nx_split, ny_split = (int(x) for x in rng.choice([1, 2], size=2))
    alley = 1.5
    xs = np.linspace(lo[0], hi[0], nx_split + 1)
    ys = np.linspace(lo[1], hi[1], ny_split + 1)
    buildings = []
    for i in range(nx_split):
        for j in range(ny_split):
            cell_lo = np.array([xs[i], ys[j]]) + (alley / 2) * np.array([i > 0, j > 0])
            cell_hi = np.array([xs[i + 1], ys[j + 1]]) - (alley / 2) * np.array([i < nx_split - 1, j < ny_split - 1])
            # Varied footprints: shrink the far sides a little, never into the sidewalk.
            shrink = rng.uniform(0.0, 0.25, size=2) * (cell_hi - cell_lo)
            inner_lo = cell_lo + shrink * np.array([i > 0, j > 0])
            inner_hi = cell_hi - shrink * np.array([i < nx_split - 1, j < ny_split - 1])
            center = (inner_lo + inner_hi) / 2
            half = (inner_hi - inner_lo) / 2
            height = float(rng.uniform(*cfg.building_height))
            buildings.append(Building(center, half, height, _building_colour(rng)))
    return buildings


def generate_city(cfg: CityConfig, rng: np.random.Generator) -> CityLayout:
    """Generates a city layout.

    Args:
        cfg: city size and make-up.
        rng: the only source of randomness (same state, same city).

    Returns:
        The layout: most intersections have corner landmarks and a share ``midblock_landmark_prob`` of the street
        segments a mid-block one; landmarks stand at least ``MIN_LANDMARK_SPACING`` apart.
    """
    nodes_x, nodes_y = cfg.blocks_x + 1, cfg.blocks_y + 1
    graph = StreetGraph.grid(nodes_x, nodes_y, cfg.pitch)
    layout = CityLayout(cfg, graph)
    half_street = cfg.street_width / 2
    for bi in range(cfg.blocks_x):
        for bj in range(cfg.blocks_y):
            lo = np.array([bi, bj]) * cfg.pitch + half_street + cfg.sidewalk
            hi = np.array([bi + 1, bj + 1]) * cfg.pitch - half_street - cfg.sidewalk
            layout.buildings.extend(_block_buildings(cfg, lo, hi, rng))

    offset = half_street + cfg.sidewalk / 2  # landmark distance from a street centre line
    extent = np.array(cfg.extent)
    for node in range(graph.num_nodes):
        count = int(rng.random() < cfg.corner_landmark_prob) + int(rng.random() < cfg.corner_landmark_prob / 3)
        corners = [np.array(c) for c in ((1, 1), (1, -1), (-1, 1), (-1, -1))]
        rng.shuffle(corners)
        placed = 0
        for corner in corners:
            if placed == count:
                break
            position = graph.positions[node] + offset * corner
            if (position < 0).any() or (position > extent).any():
                continue  # corners outside the city are not sidewalks
            class_id = int(rng.integers(1, NUM_LANDMARK_CLASSES + 1))
            layout.landmarks.append(Landmark(len(layout.landmarks), class_id, position, graph.at_node(node), node=node))
            placed += 1
    for e, (u, v) in enumerate(graph.edges):
        if rng.random() >= cfg.midblock_landmark_prob:
            continue
        t = float(rng.uniform(0.35, 0.65))
        along = graph.positions[v] - graph.positions[u]
        normal = np.array([-along[1], along[0]]) / np.linalg.norm(along)
        side = 1.0 if rng.random() < 0.5 else -1.0
        position = graph.positions[u] + t * along + side * offset * normal
        if (position < 0).any() or (position > extent).any():
            side = -side
            position = graph.positions[u] + t * along + side * offset * normal
        class_id = int(rng.integers(1, NUM_LANDMARK_CLASSES + 1))
        if any(np.linalg.norm(lm.position - position) < MIN_LANDMARK_SPACING for lm in layout.landmarks):
            continue  # would touch a corner landmark
        layout.landmarks.append(Landmark(len(layout.landmarks), class_id, position, EdgePoint(e, t), edge=e))
    return layout
