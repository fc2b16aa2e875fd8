"""Distributed training on a real local Ray instance: 2 Ray Train workers (gloo), gradients averaged every step."""

from __future__ import annotations

import json

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from embodia.policies import Policy
from embodia.policies.factory import policy_config
from embodia.runtime.collect import collect
from embodia.training.config import TrainConfig
from embodia.training.entry import train
from embodia.training.run import RunOptions

MLP = policy_config("mlp", hidden_dims=(64, 64))


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    out = tmp_path_factory.mktemp("demos")
    collect("embodia/DetourReach-v0", 6, out, progress=False)
    return out


def test_two_worker_run_learns_and_only_the_chief_writes(ray_session, demos, tmp_path):
    run = tmp_path / "ddp"
    config = TrainConfig(steps=120, lr=1e-3, warmup_steps=10, log_every=20, batch_size=32)
    summary = train(demos, MLP, run, config, workers=2, progress=False)
    assert summary.steps == 120 and summary.samples == 120 * 32 * 2  # each step sees both workers' batches
    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    loss = [e.value for e in acc.Scalars("train/loss")]
    assert len(loss) == 6 and loss[-1] < 0.8 * loss[0]
    assert len(list((run / "tb").glob("events.out.tfevents.*"))) == 1  # rank 1 wrote nothing
    table = acc.Tensors("hparams/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| run | workers | 2 |" in table
    policy = Policy.load(run / "policy.pt")
    assert torch.isfinite(torch.cat([p.flatten() for p in policy.parameters()])).all()
    config_json = json.loads((run / "config.json").read_text())
    assert config_json["train_config"]["steps"] == 120

    # Resume with a larger budget: every worker loads the chief's checkpoint and goes on from step 120.
    more = TrainConfig(**{**config.to_dict(), "steps": 160})
    summary = train(demos, MLP, run, more, RunOptions(resume=True), workers=2, progress=False)
    assert summary.steps == 160 and summary.restarts == []


def test_distributed_errors_are_checked_before_workers_start(ray_session, demos, tmp_path):
    with pytest.raises(ValueError, match="no checkpoint"):
        train(demos, MLP, tmp_path / "none", TrainConfig(steps=5), RunOptions(resume=True), workers=2)
    with pytest.raises(RuntimeError, match="non-finite loss"):
        train(demos, MLP, tmp_path / "nan", TrainConfig(steps=50, lr=1e30, warmup_steps=0), workers=2, progress=False)


@pytest.mark.slow
def test_a_killed_worker_restarts_and_the_run_finishes(demos, tmp_path):
    """`embodia train --workers 2 --max-failures 1`: a Ray Train worker SIGKILLed mid-run; the group restarts from
    the chief's last checkpoint and the run ends at its full step count with its final checkpoint."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    run = tmp_path / "ft"
    args = [sys.executable, "-m", "embodia.cli", "train", "--data", str(demos), "--run", str(run),
            "--steps", "3000", "--batch-size", "16", "--lr", "1e-3", "--workers", "2", "--max-failures", "1",
            "--checkpoint-every", "200", "--no-progress", "policy:mlp"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 180
        while not (run / "checkpoints" / "last.pt").exists():  # training has begun and checkpointed
            assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint before the deadline"
            time.sleep(0.2)
        workers = [
            p for p in psutil.Process(proc.pid).children(recursive=True) if "RayTrainWorker" in " ".join(p.cmdline())
        ]
        assert len(workers) == 2
        os.kill(workers[-1].pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    assert "worker group restart 1/1: a worker was lost; resumed from step" in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 3000 and len(summary["restarts"]) == 1
    assert 0 < summary["restarts"][0]["resumed_at_step"] < 3000
    assert Policy.load(run / "policy.pt").name == "mlp"
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["progress"]["step"] == 3000
