"""Replays re-rendered from stored MuJoCo states: frames, states, overlay, fallbacks and the CLI."""

import subprocess
import sys

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import pytest

from embodia.data.episodes import Episode, read_episode
from embodia.replay.overlay import overlay_lines
from embodia.replay.video import render_episode, stored_frames, write_video
from embodia.runtime.collect import collect


@pytest.fixture(scope="module")
def nav_episode(tmp_path_factory):
    out = tmp_path_factory.mktemp("replay_demos")
    collect("embodia/UrbanNav-Return-v0", 1, out, seed=3, progress=False)
    return out / "episode_000000.h5"


def test_one_frame_per_state_not_blank_and_changing(nav_episode):
    episode = read_episode(nav_episode)
    frames = render_episode(episode, camera="chase", width=160, height=120)
    assert frames.shape == (episode.num_steps + 1, 120, 160, 3) and frames.dtype == np.uint8
    assert all(f.std() > 10 for f in frames[:: max(1, len(frames) // 20)])  # not blank
    moving = [not np.array_equal(a, b) for a, b in zip(frames[:-1:10], frames[1::10], strict=False)]
    assert np.mean(moving) > 0.8  # the chase camera follows a moving robot


def test_replayed_states_equal_stored_states(nav_episode):
    episode = read_episode(nav_episode)
    env = gym.make(episode.env_id, **episode.env_kwargs)
    sim = env.unwrapped
    sim.reset(seed=episode.seed)
    assert sim.scene_xml == episode.scene_xml
    for state in episode.mj_state[::25]:
        sim.set_mj_state(state)
        np.testing.assert_array_equal(sim.get_mj_state(), state)
    env.close()


def test_overlay_shows_the_instruction_of_each_phase(nav_episode):
    episode = read_episode(nav_episode)
    first, last = overlay_lines(episode, 0), overlay_lines(episode, episode.num_steps)
    assert first[-1].startswith(f"step 0/{episode.num_steps}")
    assert "back to the" in " ".join(last) and "tc 1" in last[-1]
    plain = render_episode(episode, width=160, height=120)
    marked = render_episode(episode, width=160, height=120, overlay=True)
    assert not np.array_equal(plain[5], marked[5])
    assert np.array_equal(plain[5][60:], marked[5][60:])  # only the top band is written on


def test_unknown_camera_and_no_states_are_named(nav_episode, tmp_path):
    episode = read_episode(nav_episode)
    with pytest.raises(ValueError, match=r"no camera 'side'.*chase"):
        render_episode(episode, camera="side")
    rgb = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    foreign = Episode(
        observations={"rgb": rgb},
        actions=np.zeros((3, 1), np.float32),
        rewards=np.zeros(3),
        terminations=np.zeros(3, bool),
        truncations=np.zeros(3, bool),
        env_id="Foreign-v0",
    )
    with pytest.raises(ValueError, match="no mj_state"):
        render_episode(foreign)
    np.testing.assert_array_equal(stored_frames(foreign), rgb)
    no_rgb = Episode(
        observations={"state": np.zeros((4, 2))},
        actions=np.zeros((3, 1), np.float32),
        rewards=np.zeros(3),
        terminations=np.zeros(3, bool),
        truncations=np.zeros(3, bool),
    )
    with pytest.raises(ValueError, match="no rgb observations"):
        stored_frames(no_rgb)
    path = write_video(rgb.repeat(4, axis=1).repeat(4, axis=2), tmp_path / "v.mp4", fps=5)
    reader = imageio.get_reader(str(path))
    assert reader.count_frames() == 4
    reader.close()


def embodia(*args):
    return subprocess.run([sys.executable, "-m", "embodia.cli", *args], capture_output=True, text=True, timeout=300)


def test_cli_replay_writes_a_video_and_reports_frames_per_second(nav_episode, tmp_path):
    out = tmp_path / "replay.mp4"
    proc = embodia("replay", str(nav_episode), "--video", str(out), "--size", "160x120", "--camera", "top")
    assert proc.returncode == 0, proc.stderr
    assert "frames/s" in proc.stdout
    reader = imageio.get_reader(str(out))
    assert reader.count_frames() == read_episode(nav_episode).num_steps + 1
    reader.close()
    bad = tmp_path / "bad.h5"
    bad.write_text("not an episode")
    proc = embodia("replay", str(bad))
    assert proc.returncode == 2 and "bad.h5" in proc.stderr and "Traceback" not in proc.stderr
    proc = embodia("replay", str(nav_episode), "--size", "big")
    assert proc.returncode == 2 and "--size must be WIDTHxHEIGHT" in proc.stderr


@pytest.fixture(scope="module")
def agent_episode(tmp_path_factory):
    """One hand-over episode of the modular agent (full memory), with its memory snapshot in the file."""
    import functools

    from embodia.agents.modular import modular_controller

    out = tmp_path_factory.mktemp("agent_episode")
    collect(
        "embodia/UrbanNav-Return-v0", 1, out, seed=5, progress=False,
        controller_fn=functools.partial(modular_controller, "full", 1),
    )  # fmt: skip
    return out / "episode_000000.h5"


def test_agent_episodes_store_what_the_memory_held(agent_episode):
    memory = read_episode(agent_episode).memory
    assert memory["graph.positions"].shape[0] >= 2 and memory["graph.edges"].shape[1] == 2
    assert memory["octree.histograms"].shape == (len(memory["octree.centroids"]), 17)
    assert (memory["octree.histograms"][:, 1:].sum(1) > 0).any()  # a landmark class was seen
    assert "stm.class_ids" in memory and not any(k.startswith("ltm") for k in memory)
    plan = memory["graph.plan"]  # the modular agent's path home, over its graph's nodes
    assert len(plan) >= 2 and plan.max() < len(memory["graph.positions"])


def test_topdown_map_draws_trajectory_landmarks_and_the_memory_graph(agent_episode, nav_episode, tmp_path):
    from embodia.replay.topdown import draw_topdown

    with_memory = draw_topdown(read_episode(agent_episode), size=400)
    without = draw_topdown(read_episode(nav_episode), size=400)  # an expert episode: no memory in the file
    assert with_memory.shape == (400, 400, 3) and with_memory.std() > 10
    colours = {tuple(c) for c in with_memory.reshape(-1, 3)}
    assert (255, 255, 255) in colours  # graph nodes
    assert (255, 120, 20) in colours  # the trajectory
    assert (230, 40, 230) in colours  # the planned path
    assert not np.array_equal(with_memory, without)
    proc = embodia("replay", str(agent_episode), "--map", str(tmp_path / "map.png"))
    assert proc.returncode == 0 and (tmp_path / "map.png").stat().st_size > 1000
    assert not (tmp_path / "episode_000000.mp4").exists()  # only the map was asked for
    push = tmp_path / "push"
    collect("embodia/PushBlock-v0", 1, push, seed=0, progress=False)
    with pytest.raises(ValueError, match="embodia/PushBlock-v0 defines no top-down map"):
        draw_topdown(read_episode(push / "episode_000000.h5"))


def test_memory_view_png_ply_and_interactive_without_display(agent_episode, nav_episode, tmp_path, monkeypatch):
    import open3d as o3d
    from PIL import Image

    from embodia.replay.memory_view import export_ply, memory_geometry, render_memory_view, show_interactive

    episode = read_episode(agent_episode)
    path = render_memory_view(episode, tmp_path / "memory.png", width=400, height=300)
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape == (300, 400, 3) and image.std() > 5
    pixels = image.reshape(-1, 3).astype(np.int64)

    def shows(rgb: tuple[int, int, int]) -> bool:
        return bool((np.abs(pixels - np.array(rgb)).max(axis=1) <= 2).any())

    assert shows((255, 255, 255))  # graph nodes
    assert shows((230, 41, 230))  # the planned path (0.9, 0.16, 0.9)
    assert shows((140, 140, 148))  # leaves where no landmark class was seen (0.55, 0.55, 0.58)
    landmark_colours = [(219, 31, 31), (31, 77, 230), (26, 178, 51), (242, 217, 26)]  # LANDMARK_COLOURS x 255
    assert any(shows(rgb) for rgb in landmark_colours)  # leaves coloured by their class
    files = export_ply(episode, tmp_path / "ply")
    assert [f.name for f in files] == ["leaves.ply", "graph.ply", "trajectory.ply", "plan.ply"]
    leaves = o3d.io.read_point_cloud(str(files[0]))
    assert len(leaves.points) == len(memory_geometry(episode)["leaves"]["points"])
    with pytest.raises(ValueError, match="no memory snapshot"):
        render_memory_view(read_episode(nav_episode), tmp_path / "none.png")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(ValueError, match="needs a display"):
        show_interactive(episode)


def test_tensorboard_media_video_images_and_ebt_descent(agent_episode, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    from embodia.data.windows import EpisodeWindows
    from embodia.policies import make_policy
    from embodia.replay.tb_media import log_eval_media

    push_dir = tmp_path / "push"
    collect("embodia/PushBlock-v0", 1, push_dir, seed=0, progress=False)
    push = read_episode(push_dir / "episode_000000.h5")
    windows = EpisodeWindows([push], obs_keys=("state",))
    policy = make_policy("ebt", obs_dim=windows.obs_dim, action_dim=2, obs_keys=("state",), inference_steps=3)
    policy.fit_normalizer(windows.obs, windows.actions)
    with SummaryWriter(str(tmp_path / "tb_push")) as writer:
        assert log_eval_media(writer, push, policy) == ["eval/video", "eval/ebt_energy"]
    with SummaryWriter(str(tmp_path / "tb_nav")) as writer:
        assert log_eval_media(writer, read_episode(agent_episode)) == ["eval/video", "eval/map", "eval/memory"]
    push_events = EventAccumulator(str(tmp_path / "tb_push"))
    push_events.Reload()
    assert "eval/video" in push_events.Tags()["images"]  # add_video is stored as an animated image
    assert [e.step for e in push_events.Scalars("eval/ebt_energy")] == [0, 1, 2, 3]
    nav_events = EventAccumulator(str(tmp_path / "tb_nav"))
    nav_events.Reload()
    assert {"eval/video", "eval/map", "eval/memory"} <= set(nav_events.Tags()["images"])
