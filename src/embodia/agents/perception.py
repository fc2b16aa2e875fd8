"""Geometric perception for UrbanNav: 3-D points, their semantic classes and landmark detections from the rays.

The range sensor casts ``E x A`` rays from a site ``sensor_height`` above the robot (``embodia.envs.nav``):
elevation rows from ``min_elevation_deg`` to ``max_elevation_deg``, azimuth columns over 360 degrees starting
straight ahead, counter-clockwise. With the odometry pose ``(x, y, yaw)`` each ray that hit something
(range below ``max_range``) becomes a world-frame point; the semantic image gives its class. A landmark
detection is the mean of the points of one class (0 = none is skipped). Nothing here is learned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from embodia.envs.nav.urban_nav import SensorConfig


@dataclass(frozen=True)
class RayGeometry:
    """The sensor's ray fan: the env's ``SensorConfig`` and the sensor's height above the ground.

    Attributes:
        sensor: The ray sensor (elevation rows, azimuth columns, elevation limits, ``max_range``).
        sensor_height: Height of the sensor above the ground, metres (``RobotConfig.sensor_height``).
    """

    sensor: SensorConfig = field(default_factory=SensorConfig)
    sensor_height: float = 1.2

    @classmethod
    def from_env(cls, env: gym.Env) -> RayGeometry:
        """The geometry of an UrbanNav environment (wrappers allowed)."""
        inner = env.unwrapped
        if not hasattr(inner, "sensor_config") or not hasattr(inner, "robot_config"):
            raise TypeError(f"{type(inner).__name__} has no ray sensor (an embodia/UrbanNav-* env is needed)")
        return cls(inner.sensor_config, inner.robot_config.sensor_height)

    @property
    def elevations(self) -> int:
        """E, rows of the range image."""
        return self.sensor.elevations

    @property
    def azimuths(self) -> int:
        """A, columns of the range image."""
        return self.sensor.azimuths

    @property
    def min_elevation_deg(self) -> float:
        """Lowest ray elevation, degrees."""
        return self.sensor.min_elevation_deg

    @property
    def max_elevation_deg(self) -> float:
        """Highest ray elevation, degrees."""
        return self.sensor.max_elevation_deg

    @property
    def max_range(self) -> float:
        """Ray cutoff, metres; a ray reading this hit nothing."""
        return self.sensor.max_range

    def directions(self) -> np.ndarray:
        """``(E*A, 3)`` unit ray directions in the robot frame, row-major (elevation, azimuth)."""
        return self.sensor.ray_directions()


@dataclass(kw_only=True)
class SensorFields:
    """The ray sensor's layout as plain config fields (a mixin for policy configs, which must hold plain values)."""

    elevations: int = 8
    """E: rows of the ray images (the env's ``SensorConfig.elevations``)."""
    azimuths: int = 64
    """A: columns of the ray images."""
    min_elevation_deg: float = -10.0
    """Lowest ray elevation, degrees."""
    max_elevation_deg: float = 25.0
    """Highest ray elevation, degrees."""
    max_range: float = 40.0
    """Ray cutoff, metres."""
    sensor_height: float = 1.2
    """Sensor height above the ground, metres."""

    def ray_geometry(self) -> RayGeometry:
        """The sensor geometry these fields describe (checked by ``SensorConfig``)."""
        sensor = SensorConfig(
            elevations=self.elevations, azimuths=self.azimuths, min_elevation_deg=self.min_elevation_deg,
            max_elevation_deg=self.max_elevation_deg, max_range=self.max_range,
        )  # fmt: skip
        return RayGeometry(sensor, self.sensor_height)

    @staticmethod
    def from_env_kwargs(env_kwargs: dict[str, Any] | None) -> dict[str, Any]:
        """The fields an UrbanNav episode's recorded ``env_kwargs`` decide (those it sets)."""
        kwargs = env_kwargs or {}
        sensor, robot = kwargs.get("sensor") or {}, kwargs.get("robot") or {}
        names = ("elevations", "azimuths", "min_elevation_deg", "max_elevation_deg", "max_range")
        out = {name: sensor[name] for name in names if name in sensor}
        if "sensor_height" in robot:
            out["sensor_height"] = robot["sensor_height"]
        return out


@dataclass
class Percept:
    """One step's geometry for the memory.

    Attributes:
        position: ``(3,)`` the robot's position ``x, y, 0`` (odometry).
        yaw: heading, radians.
        points: ``(N, 3)`` world-frame hit points.
        point_classes: ``(N,)`` int64 semantic class per point (0 = none).
        detection_classes: ``(M,)`` int64 landmark classes seen this step.
        detection_positions: ``(M, 3)`` mean world position of each class's points.
    """

    position: np.ndarray
    yaw: float
    points: np.ndarray
    point_classes: np.ndarray
    detection_classes: np.ndarray
    detection_positions: np.ndarray


class RayPerception:
    """Turns an UrbanNav observation into a :class:`Percept` (see the module docstring).

    Args:
        geometry: The sensor's ray fan.
    """

    def __init__(self, geometry: RayGeometry | None = None) -> None:
        self.geometry = geometry or RayGeometry()
        self._directions = self.geometry.directions()  # (E*A, 3)

    def __call__(self, obs: dict[str, Any]) -> Percept:
        """Points and detections of one observation (``depth``, ``semantic``, ``pose`` keys).

        Raises:
            ValueError: Missing keys, or ``depth``/``semantic`` not of shape ``(E, A)``, or a non-finite pose.
        """
        g = self.geometry
        for key in ("depth", "semantic", "pose"):
            if key not in obs:
                raise ValueError(f"the observation has no {key!r} (keys: {sorted(obs)})")
        depth = np.asarray(obs["depth"], dtype=np.float64)
        semantic = np.asarray(obs["semantic"]).astype(np.int64)
        pose = np.asarray(obs["pose"], dtype=np.float64).reshape(-1)
        if depth.shape != (g.elevations, g.azimuths) or semantic.shape != depth.shape:
            raise ValueError(
                f"depth and semantic must have shape ({g.elevations}, {g.azimuths}), got {depth.shape} and "
                f"{semantic.shape}"
            )
        if pose.shape != (3,) or not np.isfinite(pose).all():
            raise ValueError(f"pose must be 3 finite numbers (x, y, yaw), got {pose}")
        x, y, yaw = pose
        c, s = np.cos(yaw), np.sin(yaw)
        world_dirs = self._directions @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]).T  # (E*A, 3)
        ranges = depth.reshape(-1)
        hit = np.isfinite(ranges) & (ranges < g.max_range)
        origin = np.array([x, y, g.sensor_height])
        points = origin + world_dirs[hit] * ranges[hit, None]  # (N, 3)
        classes = semantic.reshape(-1)[hit]  # (N,)
        present = np.unique(classes[classes > 0])
        positions = np.array([points[classes == k].mean(axis=0) for k in present]).reshape(-1, 3)
        return Percept(
            position=np.array([x, y, 0.0]),
            yaw=float(yaw),
            points=points,
            point_classes=classes,
            detection_classes=present.astype(np.int64),
            detection_positions=positions,
        )
