"""Ray rollouts with a real local Ray instance: the same episodes as in-process, and none lost to a killed actor."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from embodia.data.episodes import episode_files, read_episode
from embodia.ray_setup import check_ray_address
from embodia.runtime.collect import collect
from embodia.runtime.ray_pool import RayRolloutPool
from embodia.runtime.rollout import EpisodeSpec


def same_episode(a: Path, b: Path) -> None:
    ea, eb = read_episode(a), read_episode(b)
    np.testing.assert_array_equal(ea.actions, eb.actions)
    np.testing.assert_array_equal(ea.mj_state, eb.mj_state)
    assert ea.metrics == eb.metrics and ea.seed == eb.seed


def test_parallel_collection_equals_sequential(ray_session, tmp_path):
    seq = collect("embodia/DetourReach-v0", 6, tmp_path / "seq", seed=10, progress=False)
    par = collect("embodia/DetourReach-v0", 6, tmp_path / "par", seed=10, progress=False, workers=2)
    assert par["files"] == seq["files"] and par["metrics"] == seq["metrics"]
    assert [r["seed"] for r in par["per_episode"]] == list(range(10, 16))
    for a, b in zip(episode_files(tmp_path / "seq"), episode_files(tmp_path / "par"), strict=True):
        same_episode(a, b)


def test_a_killed_actor_loses_no_episode_and_duplicates_none(ray_session, tmp_path):
    import ray

    out = tmp_path / "killed"
    out.mkdir()
    pool = RayRolloutPool("embodia/UrbanNav-v0", workers=2, progress=False)
    victim_pid = pool.pids()[0]
    victim = pool.actors[0]

    def kill_after_first_file() -> None:
        deadline = time.monotonic() + 60
        while not episode_files(out) and time.monotonic() < deadline:
            time.sleep(0.005)
        ray.kill(victim, no_restart=True)

    killer = threading.Thread(target=kill_after_first_file)
    killer.start()
    try:
        specs = [EpisodeSpec(i, 100 + i) for i in range(10)]
        results = pool.run(specs, out)
        pids_after = pool.pids()
    finally:
        killer.join()
        pool.close()
    assert pool.restarts >= 1
    assert [r.index for r in results] == list(range(10)) and [r.seed for r in results] == list(range(100, 110))
    files = episode_files(out)
    assert [f.name for f in files] == [f"episode_{i:06d}.h5" for i in range(10)]
    assert victim_pid not in pids_after and len(pids_after) == 2  # the dead actor was replaced
    reference = tmp_path / "reference"
    collect("embodia/UrbanNav-v0", 10, reference, seed=100, progress=False)
    for a, b in zip(files, episode_files(reference), strict=True):
        same_episode(a, b)
    summary = collect("embodia/UrbanNav-v0", 10, tmp_path / "again", seed=100, progress=False, workers=2)
    assert summary["episodes"] == 10 and len(summary["files"]) == 10


def test_unreachable_ray_address_fails_fast(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free once the socket closes: nothing listens there
    start = time.monotonic()
    with pytest.raises(ValueError, match="no Ray cluster reachable"):
        check_ray_address(f"127.0.0.1:{port}")
    assert time.monotonic() - start < 10
    with pytest.raises(ValueError, match="HOST:PORT"):
        check_ray_address("localhost")
    with pytest.raises(ValueError, match="needs --workers"):
        collect("embodia/DetourReach-v0", 1, tmp_path / "x", ray_address=f"127.0.0.1:{port}", progress=False)
    assert not (tmp_path / "x").exists()


def test_cli_collect_with_workers(ray_session, tmp_path):
    from embodia.cli import main

    out = tmp_path / "cli"
    assert main(["collect", "--env", "embodia/DetourReach-v0", "--episodes", "4", "--out", str(out),
                 "--workers", "2", "--no-progress"]) == 0  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 4 and summary["metrics"]["success"]["mean"] == 1.0


HOST = """
import sys
import ray
from embodia.runtime.collect import collect
from embodia.ray_setup import init_ray

init_ray(2)  # what `--workers 2` starts
summary = collect("embodia/DetourReach-Sided-v0", 2, sys.argv[1], seed=0, workers=2, progress=False)
print("OWN", summary["episodes"], ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.readline()  # keep the instance up until the test is done
"""

STRANGER = """
import sys
import ray
try:
    ray.init(address=sys.argv[1], log_to_driver=False)
    print("JOINED", ray.get(ray.remote(lambda: 1).remote(), timeout=30), flush=True)
except Exception as exc:
    print("REFUSED", type(exc).__name__, flush=True)
"""


def test_the_local_instance_refuses_a_client_without_its_token(tmp_path):
    """`--workers N` keeps Ray's token authentication: its own workers run, a process without the token is refused."""
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_ADDRESS")}
    (tmp_path / "host_home").mkdir()
    (tmp_path / "stranger_home").mkdir()
    host = subprocess.Popen(
        [sys.executable, "-c", HOST, str(tmp_path / "episodes")],
        env={**clean, "HOME": str(tmp_path / "host_home")}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        line = host.stdout.readline().split()
        assert line[:2] == ["OWN", "2"], line  # the command's own actors ran its episodes
        assert (tmp_path / "host_home" / ".ray" / "auth_token").is_file()
        strangers = [  # a client with no token, and one with auth switched off; side by side (each waits ~20 s)
            subprocess.Popen(
                [sys.executable, "-c", STRANGER, line[2]],
                env={**clean, **auth, "HOME": str(tmp_path / "stranger_home")},
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            for auth in ({}, {"RAY_AUTH_MODE": "disabled"})
        ]
        for stranger in strangers:
            out, _ = stranger.communicate(timeout=180)
            assert out.strip().splitlines()[-1].startswith("REFUSED"), out
    finally:
        host.communicate("\n", timeout=60)
