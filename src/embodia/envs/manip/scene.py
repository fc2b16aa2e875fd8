"""MuJoCo scene of the table-top pushing tasks, built with ``mujoco.MjSpec``.

Table plane at z = 0 with a low wall around the workspace. The pusher is a cylinder on x/y slide joints driven
by velocity actuators. The block is a planar body (x/y slides + a hinge about its centre of mass) whose joint
damping and dry friction (``frictionloss``) model sliding on the table: a push moves it, and it stops when the
push stops. The rotational damping is the translational one times the squared radius of gyration, the
quasi-static "limit surface" of a uniform plate in its simplest (ellipsoidal) form. The goal is a translucent
copy of the block on a mocap body, so its pose is part of the recorded MuJoCo state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from embodia.envs.manip.shapes import BlockShape

PUSHER_BODY = "pusher"
PUSHER_GEOM = "pusher_geom"
BLOCK_BODY = "block"
GOAL_BODY = "goal"
TOP_CAMERA = "top"
BLOCK_HEIGHT = 0.02
"""Half height of the block and the pusher, m."""


@dataclass
class TableConfig:
    """Physical parameters of the pushing table."""

    half_extent: float = 0.3
    """Half side of the square workspace inside the walls, m."""
    pusher_radius: float = 0.015
    """Radius of the pusher, m."""
    max_speed: float = 0.25
    """Pusher speed at action 1.0, m/s."""
    block_damping: float = 20.0
    """Translational damping of the block on the table, N/(m/s)."""
    block_friction: float = 0.3
    """Translational dry friction of the block (frictionloss), N."""
    contact_friction: float = 0.6
    """Pusher-block contact friction coefficient."""

    def __post_init__(self) -> None:
        for name in (
            "half_extent",
            "pusher_radius",
            "max_speed",
            "block_damping",
            "block_friction",
            "contact_friction",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"TableConfig.{name} must be a finite number, got {value!r}")
        for name in ("half_extent", "pusher_radius", "max_speed", "block_damping", "block_friction"):
            if not getattr(self, name) > 0:
                raise ValueError(f"TableConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.half_extent < 0.2:
            raise ValueError(f"TableConfig.half_extent must be >= 0.2 m (room for the blocks), got {self.half_extent}")
        if not 0 <= self.contact_friction <= 2:
            raise ValueError(f"contact_friction must be in [0, 2], got {self.contact_friction}")


def _add_shape_geoms(
    body: mujoco.MjsBody, shape: BlockShape, rgba: list[float], prefix: str, collide: bool, friction: float = 1.0
) -> None:
    for k, (centre, half) in enumerate(zip(shape.centres, shape.halves, strict=True)):
        body.add_geom(
            name=f"{prefix}_{k}",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[float(half[0]), float(half[1]), BLOCK_HEIGHT],
            pos=[float(centre[0]), float(centre[1]), 0.0],
            rgba=rgba,
            contype=1 if collide else 0,
            conaffinity=1 if collide else 0,
            group=0 if collide else 1,
            mass=0.3 * float(np.prod(2 * half)) / shape.area if collide else 0.0,
            friction=[friction, 0.005, 0.0001],
        )


def build_push_spec(shape: BlockShape, table: TableConfig, *, max_render_size: int = 640) -> mujoco.MjSpec:
    """Builds the pushing scene for ``shape`` (pusher and block at the origin; poses live in qpos/mocap).

    Args:
        shape: the block's shape.
        table: table and dynamics parameters.
        max_render_size: offscreen framebuffer side, pixels.
    """
    spec = mujoco.MjSpec()
    spec.modelname = f"push_{shape.name}"
    spec.option.timestep = 0.002
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.visual.quality.shadowsize = 0
    spec.visual.quality.offsamples = 0
    spec.visual.global_.offwidth = max_render_size
    spec.visual.global_.offheight = max_render_size
    spec.visual.headlight.ambient = [0.5, 0.5, 0.5]
    spec.stat.extent = 2 * table.half_extent
    spec.stat.center = [0.0, 0.0, 0.0]
    world = spec.worldbody
    h = table.half_extent
    world.add_light(pos=[0, 0, 2.0], dir=[0, 0, -1], castshadow=False, diffuse=[0.5] * 3)
    world.add_geom(
        name="table",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[h + 0.05, h + 0.05, 0.01],
        rgba=[0.82, 0.82, 0.78, 1.0],
        contype=0,
        conaffinity=0,
    )
    wall = 0.01
    for cx, cy, hx, hy in ((0, -h - wall, h + 2 * wall, wall), (0, h + wall, h + 2 * wall, wall),
                           (-h - wall, 0, wall, h), (h + wall, 0, wall, h)):  # fmt: skip
        world.add_geom(
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[hx, hy, 0.03],
            pos=[cx, cy, 0.03],
            rgba=[0.35, 0.35, 0.4, 1.0],
        )
    fovy = 45.0
    cam_height = (h + 0.03) / np.tan(np.radians(fovy / 2))
    world.add_camera(name=TOP_CAMERA, pos=[0, 0, float(cam_height)], fovy=fovy)

    goal = world.add_body(name=GOAL_BODY, mocap=True, pos=[0, 0, BLOCK_HEIGHT])
    _add_shape_geoms(goal, shape, [0.2, 0.8, 0.3, 0.35], "goal", collide=False)

    block = world.add_body(name=BLOCK_BODY, pos=[0, 0, BLOCK_HEIGHT])
    rot_scale = shape.gyration2
    for name, jtype, axis, damping, friction in (
        ("block_x", mujoco.mjtJoint.mjJNT_SLIDE, [1, 0, 0], table.block_damping, table.block_friction),
        ("block_y", mujoco.mjtJoint.mjJNT_SLIDE, [0, 1, 0], table.block_damping, table.block_friction),
        ("block_yaw", mujoco.mjtJoint.mjJNT_HINGE, [0, 0, 1], table.block_damping * rot_scale,
         table.block_friction * np.sqrt(rot_scale)),
    ):  # fmt: skip
        block.add_joint(name=name, type=jtype, axis=axis, damping=float(damping), frictionloss=float(friction))
    _add_shape_geoms(block, shape, [0.85, 0.35, 0.2, 1.0], "block", collide=True, friction=table.contact_friction)

    pusher = world.add_body(name=PUSHER_BODY, pos=[0, 0, BLOCK_HEIGHT])
    for name, axis in (("pusher_x", [1, 0, 0]), ("pusher_y", [0, 1, 0])):
        pusher.add_joint(name=name, type=mujoco.mjtJoint.mjJNT_SLIDE, axis=axis)
    pusher.add_geom(
        name=PUSHER_GEOM,
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[table.pusher_radius, BLOCK_HEIGHT, 0.0],
        mass=1.0,  # with kv=200 and 2 ms steps, kv * dt / m = 0.4: the velocity servo settles without chatter
        rgba=[0.15, 0.3, 0.85, 1.0],
        friction=[table.contact_friction, 0.005, 0.0001],
    )
    for joint in ("pusher_x", "pusher_y"):
        actuator = spec.add_actuator(name=f"vel_{joint}", target=joint, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        actuator.set_to_velocity(kv=200.0)
        actuator.ctrlrange = [-table.max_speed, table.max_speed]
        actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
    return spec
