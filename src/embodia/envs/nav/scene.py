"""Builds the MuJoCo scene of a UrbanNav city with ``mujoco.MjSpec``.

The robot is a planar base: slide joints along world x and y and a yaw hinge, each driven by a velocity
actuator, with a cylinder body that collides with buildings, landmarks and the perimeter wall. Geom group 0
holds everything the range sensor sees (ground, buildings, landmarks, walls); group 1 holds visual-only street
paint. Shadows and multisampling are off so software rendering stays fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from embodia.envs.nav.city import LANDMARK_COLOURS, CityLayout, Landmark

ROBOT_BODY = "robot"
ROBOT_GEOM = "robot_body"
ROBOT_JOINTS = ("root_x", "root_y", "root_yaw")
SENSOR_SITE = "range_sensor"
EGO_CAMERA = "ego"
CHASE_CAMERA = "chase"
TOP_CAMERA = "top"


@dataclass
class RobotConfig:
    """The planar robot's body and drive."""

    radius: float = 0.4
    """Collision cylinder radius, metres."""
    mass: float = 20.0
    """Mass, kg."""
    sensor_height: float = 1.2
    """Height of the range sensor and ego camera, metres."""
    max_speed: float = 2.5
    """Forward speed at action 1.0, m/s (reverse allowed)."""
    max_yaw_rate: float = 1.5
    """Yaw rate at action 1.0, rad/s."""
    kv_linear: float = 2000.0
    """Velocity-actuator gain of the slide joints, N/(m/s)."""
    kv_yaw: float = 200.0
    """Velocity-actuator gain of the yaw joint, N·m/(rad/s)."""

    def __post_init__(self) -> None:
        for name in ("radius", "mass", "sensor_height", "max_speed", "max_yaw_rate", "kv_linear", "kv_yaw"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"RobotConfig.{name} must be a finite number > 0, got {value!r}")


def _quat_from_axes(x_axis: np.ndarray, y_axis: np.ndarray) -> np.ndarray:
    """Quaternion of a frame whose x and y axes are given (camera convention: looks along -z)."""
    x = x_axis / np.linalg.norm(x_axis)
    y = y_axis - x * (x @ y_axis)
    y = y / np.linalg.norm(y)
    z = np.cross(x, y)
    mat = np.stack([x, y, z], axis=1).ravel()
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, mat)
    return quat


def _add_landmark_geom(body: mujoco.MjsBody, landmark: Landmark) -> None:
    rgba = [*LANDMARK_COLOURS[landmark.colour], 1.0]
    x, y = (float(v) for v in landmark.position)
    geom = body.add_geom(name=f"landmark_{landmark.index}", rgba=rgba, group=0)
    shape = landmark.shape
    if shape == "tower":
        geom.type = mujoco.mjtGeom.mjGEOM_CYLINDER
        geom.size = [0.7, 4.0, 0.0]
        geom.pos = [x, y, 4.0]
    elif shape == "kiosk":
        geom.type = mujoco.mjtGeom.mjGEOM_BOX
        geom.size = [0.9, 0.9, 1.3]
        geom.pos = [x, y, 1.3]
    elif shape == "globe":
        geom.type = mujoco.mjtGeom.mjGEOM_SPHERE
        geom.size = [1.1, 0.0, 0.0]
        geom.pos = [x, y, 1.1]
    elif shape == "pillar":
        geom.type = mujoco.mjtGeom.mjGEOM_CAPSULE
        geom.size = [0.45, 1.8, 0.0]
        geom.pos = [x, y, 2.25]
    else:  # pragma: no cover - LANDMARK_SHAPES and this function must agree
        raise ValueError(f"unknown landmark shape {shape!r}")


def build_city_spec(layout: CityLayout, robot: RobotConfig, *, max_render_size: int = 640) -> mujoco.MjSpec:
    """Builds the scene of ``layout`` with the robot at the origin (its pose lives in ``qpos``).

    Args:
        layout: the city.
        robot: robot body and drive parameters.
        max_render_size: offscreen framebuffer side, pixels (renders may not exceed it).

    Returns:
        An uncompiled spec; ``spec.to_xml()`` is what the environment compiles and episode files store.
    """
    cfg = layout.config
    spec = mujoco.MjSpec()
    spec.modelname = "urban_nav"
    spec.option.timestep = 0.01
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.visual.quality.shadowsize = 0
    spec.visual.quality.offsamples = 0
    spec.visual.global_.offwidth = max_render_size
    spec.visual.global_.offheight = max_render_size
    spec.visual.headlight.ambient = [0.45, 0.45, 0.45]
    spec.visual.headlight.diffuse = [0.5, 0.5, 0.5]
    spec.stat.extent = float(max(cfg.extent))
    spec.stat.center = [cfg.extent[0] / 2, cfg.extent[1] / 2, 0.0]

    world = spec.worldbody
    width, depth = cfg.extent
    margin = cfg.street_width / 2 + cfg.sidewalk + 2.0
    world.add_light(pos=[width / 2, depth / 2, 80.0], dir=[0.2, 0.3, -1.0], castshadow=False, diffuse=[0.6] * 3)
    world.add_geom(
        name="ground",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[width / 2 + margin, depth / 2 + margin, 1.0],
        pos=[width / 2, depth / 2, 0.0],
        rgba=[0.36, 0.42, 0.33, 1.0],
        contype=0,
        conaffinity=0,
        group=0,
    )
    # Street paint: visual only (group 1, no contacts), excluded from the range sensor.
    for u, v in layout.graph.edges:
        a, b = layout.graph.positions[u], layout.graph.positions[v]
        centre = (a + b) / 2
        half = np.abs(b - a) / 2 + cfg.street_width / 2
        world.add_geom(
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[float(half[0]), float(half[1]), 0.01],
            pos=[float(centre[0]), float(centre[1]), 0.01],
            rgba=[0.22, 0.22, 0.24, 1.0],
            contype=0,
            conaffinity=0,
            group=1,
        )
    # Perimeter wall just outside the outer sidewalks keeps the robot in the city.
    wall_h, wall_t = 1.5, 0.3
    for cx, cy, hx, hy in (
        (width / 2, -margin, width / 2 + margin, wall_t),
        (width / 2, depth + margin, width / 2 + margin, wall_t),
        (-margin, depth / 2, wall_t, depth / 2 + margin),
        (width + margin, depth / 2, wall_t, depth / 2 + margin),
    ):
        world.add_geom(
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[hx, hy, wall_h / 2],
            pos=[cx, cy, wall_h / 2],
            rgba=[0.5, 0.5, 0.5, 1.0],
            group=0,
        )
    for k, building in enumerate(layout.buildings):
        world.add_geom(
            name=f"building_{k}",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[float(building.half_size[0]), float(building.half_size[1]), building.height / 2],
            pos=[float(building.center[0]), float(building.center[1]), building.height / 2],
            rgba=list(building.rgba),
            group=0,
        )
    for landmark in layout.landmarks:
        _add_landmark_geom(world, landmark)

    # Top-down camera that frames the whole city (fovy 45 degrees).
    fovy = 45.0
    height = (max(width, depth) / 2 + margin) / np.tan(np.radians(fovy / 2)) + 5.0
    world.add_camera(
        name=TOP_CAMERA,
        pos=[width / 2, depth / 2, float(height)],
        quat=_quat_from_axes(np.array([1.0, 0, 0]), np.array([0, 1.0, 0])),
        fovy=fovy,
    )

    body = world.add_body(name=ROBOT_BODY, pos=[0.0, 0.0, 0.0])
    body.add_joint(name="root_x", type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[1, 0, 0])
    body.add_joint(name="root_y", type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[0, 1, 0])
    body.add_joint(name="root_yaw", type=mujoco.mjtJoint.mjJNT_HINGE, axis=[0, 0, 1])
    body.add_geom(
        name=ROBOT_GEOM,
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[robot.radius, 0.5, 0.0],
        pos=[0.0, 0.0, 0.6],
        mass=robot.mass,
        rgba=[0.95, 0.95, 0.95, 1.0],
        group=0,
    )
    body.add_geom(  # a nose that shows the heading; visual only
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[0.15, 0.1, 0.1],
        pos=[robot.radius, 0.0, 1.0],
        rgba=[0.1, 0.1, 0.1, 1.0],
        contype=0,
        conaffinity=0,
        group=1,
    )
    body.add_site(name=SENSOR_SITE, pos=[0.0, 0.0, robot.sensor_height], size=[0.05, 0, 0])
    body.add_camera(
        name=EGO_CAMERA,
        pos=[robot.radius + 0.05, 0.0, robot.sensor_height],
        quat=_quat_from_axes(np.array([0, -1.0, 0]), np.array([0, 0, 1.0])),
        fovy=70.0,
    )
    tilt = np.radians(25.0)
    body.add_camera(
        name=CHASE_CAMERA,
        pos=[-7.0, 0.0, 4.5],
        quat=_quat_from_axes(np.array([0, -1.0, 0]), np.array([np.sin(tilt), 0, np.cos(tilt)])),
        fovy=60.0,
    )
    for joint, kv, limit in (
        ("root_x", robot.kv_linear, robot.max_speed),
        ("root_y", robot.kv_linear, robot.max_speed),
        ("root_yaw", robot.kv_yaw, robot.max_yaw_rate),
    ):
        actuator = spec.add_actuator(name=f"vel_{joint}", target=joint, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        actuator.set_to_velocity(kv=kv)
        actuator.ctrlrange = [-limit, limit]
        actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
    return spec
