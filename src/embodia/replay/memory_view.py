"""3-D views of what an agent remembered, with Open3D: octree leaves, the topology graph and the trajectory.

The geometry comes from the episode file's memory snapshot (``Mem4NavMemory.view_snapshot``): each octree leaf is a
point at its centroid, coloured by the landmark class seen most in it (grey where none was); graph nodes are white
points joined by line segments, the path the agent planned on them magenta; the trajectory (from the stored MuJoCo
states) is an orange line at ground level. ``render_memory_view`` draws them offscreen with Open3D's legacy
``Visualizer(visible=False)`` (EGL, no X server: FACTS.md §5); ``export_ply`` writes them as PLY files for other 3-D
tools; ``show_interactive`` opens a window when a display exists.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from embodia.data.episodes import Episode

__all__ = ["export_ply", "memory_geometry", "render_memory_view", "show_interactive"]

_NO_CLASS = (0.55, 0.55, 0.58)
_NODE, _EDGE, _TRAJECTORY, _PLAN = (1.0, 1.0, 1.0), (0.85, 0.85, 0.85), (1.0, 0.47, 0.08), (0.9, 0.16, 0.9)


def _class_colours(env_id: str, num_classes: int) -> np.ndarray:
    """``(num_classes + 1, 3)`` RGB in [0, 1] per semantic class of ``env_id`` (row 0: no class)."""
    from embodia.replay.palette import semantic_colours

    return np.concatenate([[_NO_CLASS], semantic_colours(env_id, num_classes)])


def memory_geometry(episode: Episode) -> dict[str, dict[str, np.ndarray]]:
    """Plain arrays of the views of ``episode``'s memory and trajectory.

    Returns:
        ``{"leaves": {points, colors}, "graph": ..., "plan": ..., "trajectory": ...}`` (graph, plan and
        trajectory: ``{points, lines, colors}``) with ``points (N, 3)``, ``lines (M, 2)`` int and ``colors (N or M,
        3)`` in [0, 1].

    Raises:
        ValueError: The episode has no memory snapshot (an expert's or a memoryless agent's episode).
    """
    memory = episode.memory or {}
    if "octree.centroids" not in memory and "graph.positions" not in memory:
        raise ValueError(
            "the episode file holds no memory snapshot (episodes of agents with memory do; experts have none)"
        )
    out: dict[str, dict[str, np.ndarray]] = {}
    if "octree.centroids" in memory:
        hist = np.asarray(memory["octree.histograms"])
        labelled = hist[:, 1:].sum(1) > 0
        classes = np.where(labelled, hist[:, 1:].argmax(1) + 1, 0)
        colours = _class_colours(episode.env_id, hist.shape[1] - 1)
        out["leaves"] = {"points": np.asarray(memory["octree.centroids"], np.float64), "colors": colours[classes]}
    if "graph.positions" in memory:
        nodes = np.asarray(memory["graph.positions"], np.float64) + [0.0, 0.0, 0.3]
        edges = np.asarray(memory["graph.edges"], np.int64).reshape(-1, 2)
        out["graph"] = {"points": nodes, "lines": edges, "colors": np.tile(_EDGE, (len(edges), 1))}
        plan = np.asarray(memory.get("graph.plan", np.zeros(0)), dtype=np.int64)
        if len(plan) > 1:  # the planned path: its consecutive nodes, lifted above the graph
            segments = np.stack([np.arange(len(plan) - 1), np.arange(1, len(plan))], 1)
            out["plan"] = {"points": nodes[plan] + [0.0, 0.0, 0.5], "lines": segments,
                           "colors": np.tile(_PLAN, (len(segments), 1))}  # fmt: skip
    trajectory = _trajectory(episode)
    if trajectory is not None:
        segments = np.stack([np.arange(len(trajectory) - 1), np.arange(1, len(trajectory))], 1)
        out["trajectory"] = {
            "points": trajectory,
            "lines": segments,
            "colors": np.tile(_TRAJECTORY, (len(segments), 1)),
        }
    return out


def _trajectory(episode: Episode) -> np.ndarray | None:
    """``(T+1, 3)`` robot positions just above the ground from the stored states (None without states)."""
    if episode.mj_state is None:
        return None
    from embodia.replay.video import robot_positions

    xy = robot_positions(episode)
    return np.column_stack([xy, np.full(len(xy), 0.1)])


def _o3d_geometries(parts: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    import open3d as o3d

    vec3, vec2 = o3d.utility.Vector3dVector, o3d.utility.Vector2iVector
    geometries: dict[str, Any] = {}
    if "leaves" in parts:
        cloud = o3d.geometry.PointCloud(vec3(parts["leaves"]["points"]))
        cloud.colors = vec3(parts["leaves"]["colors"])
        geometries["leaves"] = cloud
    for name in ("graph", "trajectory", "plan"):
        if name in parts:
            lines = o3d.geometry.LineSet(vec3(parts[name]["points"]), vec2(parts[name]["lines"]))
            lines.colors = vec3(parts[name]["colors"])
            geometries[name] = lines
    if "graph" in parts:
        nodes = o3d.geometry.PointCloud(vec3(parts["graph"]["points"]))
        nodes.colors = vec3(np.tile(_NODE, (len(parts["graph"]["points"]), 1)))
        geometries["graph_nodes"] = nodes
    return geometries


def render_memory_view(
    episode: Episode, path: str | os.PathLike, *, width: int = 800, height: int = 600, isolated: bool = True
) -> Path:
    """Draw the memory of ``episode`` offscreen to a PNG at ``path`` (an oblique view from above); returns it.

    Args:
        episode: An episode with a memory snapshot.
        path: The PNG to write.
        width: Image width, pixels.
        height: Image height, pixels.
        isolated: Render in a fresh (spawned) process. Once Open3D has made its EGL context in a process, MuJoCo
            can no longer create one there (``eglChooseConfig`` fails: measured with Mesa), so a process that also
            renders MuJoCo scenes must keep Open3D out.

    Raises:
        ValueError: The episode has no memory snapshot.
    """
    geometry = memory_geometry(episode)  # fails here, in this process, on an episode without memory
    if isolated:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            return pool.submit(_render_geometry, geometry, str(path), width, height).result()
    return _render_geometry(geometry, str(path), width, height)


def _render_geometry(geometry: dict[str, dict[str, np.ndarray]], path: str, width: int, height: int) -> Path:
    """Render :func:`memory_geometry` arrays to a PNG with Open3D's legacy offscreen visualizer."""
    import open3d as o3d

    geometries = _o3d_geometries(geometry)
    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Warning)  # no "falling back to EGL" chatter
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    vis = o3d.visualization.Visualizer()
    if not vis.create_window(visible=False, width=width, height=height):
        raise RuntimeError("Open3D could not create an offscreen window (EGL); see FACTS.md §5")
    try:
        for geometry in geometries.values():
            vis.add_geometry(geometry)
        options = vis.get_render_option()
        options.background_color = np.array([0.11, 0.12, 0.12])
        options.point_size = 4.0
        options.line_width = 3.0
        control = vis.get_view_control()
        control.set_front([0.0, -0.6, 1.0])  # looking down at the city, tilted north
        control.set_up([0.0, 1.0, 0.0])
        control.set_zoom(0.7)
        vis.poll_events()
        vis.update_renderer()
        vis.capture_screen_image(str(path), do_render=True)
    finally:
        vis.destroy_window()
    return path


def export_ply(episode: Episode, directory: str | os.PathLike) -> list[Path]:
    """Write ``leaves.ply`` (coloured points), ``graph.ply``, ``trajectory.ply`` and ``plan.ply`` (line sets).

    Files go into ``directory``; ``plan.ply`` only when the agent planned a path.
    """
    import open3d as o3d

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, geometry in _o3d_geometries(memory_geometry(episode)).items():
        if name == "graph_nodes":
            continue
        path = directory / f"{name}.ply"
        ok = (
            o3d.io.write_point_cloud(str(path), geometry)
            if isinstance(geometry, o3d.geometry.PointCloud)
            else o3d.io.write_line_set(str(path), geometry)
        )
        if not ok:
            raise OSError(f"Open3D could not write {path}")
        written.append(path)
    return written


def show_interactive(episode: Episode) -> None:
    """Open an Open3D window on the memory of ``episode`` (blocks until it is closed).

    Raises:
        ValueError: No display (``DISPLAY``/``WAYLAND_DISPLAY`` unset): use ``render_memory_view`` instead.
    """
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise ValueError("--interactive needs a display and this machine has none (DISPLAY is unset); use --memory PNG")
    import open3d as o3d

    o3d.visualization.draw_geometries(list(_o3d_geometries(memory_geometry(episode)).values()), "embodia memory")
