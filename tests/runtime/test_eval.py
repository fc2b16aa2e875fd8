"""``embodia eval``: a trained policy checkpoint run in closed loop, recorded as episode files, summarised."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from embodia.cli import main
from embodia.data.episodes import episode_files, read_episode
from embodia.policies.factory import policy_config
from embodia.runtime.collect import collect
from embodia.training.config import TrainConfig
from embodia.training.entry import train


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small diffusion policy trained briefly on DetourReach demonstrations."""
    root = tmp_path_factory.mktemp("eval")
    collect("embodia/DetourReach-v0", 4, root / "demos", progress=False)
    config = TrainConfig(steps=30, lr=1e-3, warmup_steps=5)
    policy = policy_config("diffusion", d_model=32, n_layers=1, n_heads=2, num_inference_steps=3)
    train(root / "demos", policy, root / "run", config, progress=False)
    return root / "run" / "policy.pt"


def test_eval_writes_episodes_summary_and_tensorboard(checkpoint, tmp_path, capsys):
    out = tmp_path / "eval"
    args = ["eval", "--checkpoint", str(checkpoint), "--env", "embodia/DetourReach-v0", "--episodes", "3",
            "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    assert "wrote 3 episodes" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 3 and summary["seed"] == 1_000_000
    assert {"success", "collisions", "side"} <= set(summary["metrics"])
    first = summary["per_episode"][0]
    assert first["policy"] == "diffusion" and first["plans"] >= 1 and first["nfe_mean"] == 3.0
    episodes = [read_episode(p) for p in episode_files(out)]
    assert len(episodes) == 3 and all(ep.mj_state is not None for ep in episodes)
    acc = EventAccumulator(str(out / "tb"))
    acc.Reload()
    assert "eval/success" in acc.Tags()["scalars"] and "eval/summary/text_summary" in acc.Tags()["tensors"]
    # Same seeds, same episodes: the policy's sampling noise is seeded per episode.
    again = tmp_path / "again"
    assert main([*args[:-3], "--out", str(again), "--no-progress"]) == 0
    for a, b in zip(episode_files(out), episode_files(again), strict=True):
        np.testing.assert_array_equal(read_episode(a).actions, read_episode(b).actions)


def test_eval_of_ebt_logs_the_energy_of_every_chunk(tmp_path):
    """EBT's final chunk energy (its uncertainty signal) reaches the summary, the episode files and TensorBoard."""
    collect("embodia/DetourReach-v0", 2, tmp_path / "demos", progress=False)
    config = TrainConfig(steps=5, lr=1e-3, warmup_steps=2, batch_size=8)
    policy = policy_config("ebt", d_model=32, n_layers=1, n_heads=2)
    train(tmp_path / "demos", policy, tmp_path / "run", config, progress=False)
    out = tmp_path / "eval"
    args = ["eval", "--checkpoint", str(tmp_path / "run" / "policy.pt"), "--env", "embodia/DetourReach-v0",
            "--episodes", "2", "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    first = summary["per_episode"][0]
    assert len(first["energies"]) == first["plans"] >= 1 and first["nfe_mean"] == 2.0
    assert first["energy_mean"] == pytest.approx(np.mean(first["energies"]))
    assert {"energy_mean", "energy_max", "nfe_mean"} <= set(summary["controller"])
    acc = EventAccumulator(str(out / "tb"), size_guidance={"histograms": 0, "scalars": 0})
    acc.Reload()
    assert "eval/chunk_energy" in acc.Tags()["histograms"]
    assert len(acc.Scalars("eval/chunk_energy_episode0")) == first["plans"]
    assert "eval/controller/energy_mean" in acc.Tags()["scalars"]


def test_eval_refuses_a_bad_checkpoint(tmp_path, capsys):
    bad = tmp_path / "policy.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["eval", "--checkpoint", str(bad), "--out", str(tmp_path / "o"), "--episodes", "1"]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_eval_on_a_cluster_started_with_ray_start(checkpoint, tmp_path):
    """`ray start --head --port P` (blocking, so stopping it stops only this cluster), eval on it, stop it."""
    import os
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    ray_cli = str(Path(sys.executable).parent / "ray")
    head = subprocess.Popen(
        [ray_cli, "start", "--head", "--port", str(port), "--num-cpus", "2", "--include-dashboard=false",
         "--disable-usage-stats", "--block"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert head.poll() is None and time.monotonic() < deadline, "ray start --head did not come up"
                time.sleep(0.2)
        out = tmp_path / "cluster"
        result = subprocess.run(
            [sys.executable, "-m", "embodia.cli", "eval", "--checkpoint", str(checkpoint), "--episodes", "4",
             "--out", str(out), "--workers", "2", "--ray-address", f"127.0.0.1:{port}", "--no-progress"],
            env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        summary = json.loads((out / "summary.json").read_text())
        assert summary["episodes"] == 4 and len(episode_files(out)) == 4
    finally:
        head.terminate()
        head.wait(timeout=60)
        current = Path("/tmp/ray/ray_current_cluster")  # would point later ray.init() calls at the stopped head
        if current.is_file() and current.read_text().strip().endswith(f":{port}"):
            current.unlink()


def test_eval_runs_the_modular_agent_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "modular"
    args = ["eval", "--agent", "modular", "--memory", "full", "--env", "embodia/UrbanNav-Return-v0", "--episodes",
            "1", "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    first = summary["per_episode"][0]
    assert first["agent"] == "modular" and first["memory"] == "full" and first["handover_step"] > 0
    assert summary["metrics"]["tc"]["mean"] == 1.0  # seed 1,000,000: the modular agent finds its way back
    for bad, message in (
        (["--checkpoint", "x.pt"], "exactly one of --checkpoint and --agent"),
        (["--memory", "most"], "memory mode must be one of"),
    ):
        assert main([*args[:-3], *bad, "--out", str(tmp_path / "bad"), "--no-progress"]) == 2
        assert message in capsys.readouterr().err
    assert main(["eval", "--out", str(tmp_path / "none"), "--episodes", "1"]) == 2
    assert "exactly one of --checkpoint and --agent" in capsys.readouterr().err
    assert (
        main(["eval", "--checkpoint", "x.pt", "--memory", "none", "--out", str(tmp_path / "o"), "--episodes", "1"]) == 2
    )
    assert "--memory and --act-from-phase go with --agent" in capsys.readouterr().err


def test_eval_runs_the_scripted_expert_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "expert"
    args = ["eval", "--agent", "expert", "--env", "embodia/DetourReach-Sided-v0", "--episodes", "3", "--out", str(out),
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["success"]["mean"] == 1.0 and summary["episodes"] == 3
    assert main([*args[:-3], "--memory", "full", "--out", str(tmp_path / "bad"), "--no-progress"]) == 2
    assert "--memory and --act-from-phase go with --agent modular" in capsys.readouterr().err


def test_eval_takes_typed_env_options_over_the_registered_ones(tmp_path, capsys):
    """`env:detour --env.config.start-offset 0.03` keeps DetourReach-Sided-v0's registered config.start_gap."""
    from embodia.data.episodes import read_episode

    out = tmp_path / "typed"
    args = ["eval", "--agent", "expert", "--env", "embodia/DetourReach-Sided-v0", "--episodes", "1", "--out", str(out),
            "--no-progress", "env:detour", "--env.config.start-offset", "0.03", "--env.max-steps", "60"]  # fmt: skip
    assert main(args) == 0
    expected = {"config": {"start_gap": 0.01, "start_offset": 0.03}, "max_steps": 60}
    assert json.loads((out / "summary.json").read_text())["env_kwargs"] == expected
    recorded = read_episode(out / "episode_000000.h5").env_kwargs
    assert recorded["config"]["start_gap"] == 0.01 and recorded["config"]["start_offset"] == 0.03
    assert recorded["max_steps"] == 60 and recorded["side_rule"] == "start"
    wrong = ["eval", "--agent", "expert", "--env", "embodia/PushT-v0", "--out", str(tmp_path / "bad"), "env:detour"]
    assert main(wrong) == 2
    assert "--env embodia/PushT-v0 takes env:push options, not env:detour" in capsys.readouterr().err
