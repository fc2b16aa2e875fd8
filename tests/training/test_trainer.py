"""The trainer on real DetourReach demonstrations: losses fall, TensorBoard and checkpoints are real, resume is exact.

The SIGKILL test runs ``embodia train`` in a subprocess, kills it with SIGKILL after its first checkpoints,
resumes it, and checks that the result is bit-identical to an uninterrupted run of the same command.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from embodia.cli import main
from embodia.policies import Policy
from embodia.policies.base import CheckpointError
from embodia.policies.factory import policy_config
from embodia.runtime.collect import collect
from embodia.training.config import TrainConfig
from embodia.training.ema import EMA
from embodia.training.entry import train
from embodia.training.run import RunOptions
from embodia.training.schedule import lr_factor
from embodia.training.state import load_train_state
from embodia.training.summary import TrainSummary
from embodia.training.trainer import TrainingDivergedError

torch.set_num_threads(1)

MLP = policy_config("mlp", hidden_dims=(32, 32))
EBT_TINY = policy_config("ebt", d_model=32, n_heads=2, n_layers=1, n_obs_layers=0)


@pytest.fixture(scope="module")
def demos(tmp_path_factory) -> Path:
    """Six expert DetourReach episodes (three starts, both sides each)."""
    out = tmp_path_factory.mktemp("demos")
    collect("embodia/DetourReach-v0", 6, out, progress=False)
    return out


def scalars(run_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    return acc


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


# ------------------------------------------------------------------------------------------------ pieces


def test_lr_schedule_warmup_then_cosine():
    assert lr_factor(0, 0.0, 4) == pytest.approx(0.25)
    assert lr_factor(3, 0.0, 4) == pytest.approx(1.0)
    assert lr_factor(10, 0.5, 4) == pytest.approx(0.5)
    assert lr_factor(10, 1.0, 4) == pytest.approx(0.0)
    assert lr_factor(0, 0.0, 0) == pytest.approx(1.0)
    assert lr_factor(5, 2.0, 0) == pytest.approx(0.0)  # progress is clamped


def test_ema_follows_the_power_schedule():
    model = torch.nn.Linear(2, 1)
    model.register_buffer("count", torch.zeros(()))
    ema = EMA(model, power=0.75, max_decay=0.9999)
    assert ema.decay() == 0.0
    expected = {n: p.detach().clone() for n, p in model.named_parameters()}
    for k in range(5):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
            model.count += 1
        d = min(0.9999, 1 - (1 + k) ** -0.75)
        assert ema.decay() == pytest.approx(d)
        ema.update(model)
        for n, p in model.named_parameters():
            expected[n] = d * expected[n] + (1 - d) * p.detach()
    for n, p in ema.model.named_parameters():
        torch.testing.assert_close(p, expected[n])
        assert not p.requires_grad
    assert float(ema.model.count) == 5.0  # buffers are copied, not averaged
    state = ema.state_dict()
    other = EMA(torch.nn.Linear(2, 1).requires_grad_(True), power=0.75)
    other.model.register_buffer("count", torch.zeros(()))
    other.load_state_dict(state)
    assert other.updates == 5
    torch.testing.assert_close(other.model.weight, ema.model.weight)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": 0}, "steps"),
        ({"steps": 10, "lr": -1.0}, "lr"),
        ({"steps": 10, "lr": math.nan}, "lr"),
        ({"minutes": -1.0}, "minutes"),
        ({"steps": 10, "betas": (0.9, 1.0)}, "betas"),
        ({"steps": 10, "ema_max_decay": 1.5}, "ema_max_decay"),
        ({"steps": 10, "batch_size": 0}, "batch_size"),
    ],
)
def test_train_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_train_config_round_trip_and_budget():
    config = TrainConfig(steps=5, lr=3e-4)
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="no fields"):
        TrainConfig.from_dict({"steps": 5, "learning_rate": 1.0})
    with pytest.raises(ValueError, match="budget"):
        TrainConfig().check_budget()
    assert TrainConfig(steps=9, lr=3e-4).changed_fields(config) == []
    assert TrainConfig(steps=5, lr=1e-3).changed_fields(config) == ["lr"]


# ------------------------------------------------------------------------------------------------ training runs


def test_mlp_run_learns_and_writes_tensorboard_and_checkpoints(demos, tmp_path):
    run = tmp_path / "mlp"
    config = TrainConfig(steps=300, lr=1e-3, warmup_steps=20, log_every=25, checkpoint_every=100)
    result = train(demos, MLP, run, config, progress=False)
    assert result.steps == 300 and result.stopped_by == "steps"
    acc = scalars(run)
    loss = [e.value for e in acc.Scalars("train/loss")]
    assert len(loss) == 12
    assert loss[-1] < 0.7 * loss[0]  # bimodal demos: the MLP can only reach the mean, not zero
    for tag in ("train/lr", "train/grad_norm", "perf/samples_per_s", "perf/it_per_s"):
        assert tag in acc.Tags()["scalars"]
    lr = [e.value for e in acc.Scalars("train/lr")]
    assert max(lr) <= 1e-3 and lr[-1] < 0.05 * max(lr)  # warm-up, then cosine down to ~0
    assert "hparams/text_summary" in acc.Tags()["tensors"]
    table = acc.Tensors("hparams/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| train | lr | 0.001 |" in table and "| policy | name | mlp |" in table

    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["progress"]["step"] == 300
    policy = Policy.load(run / "policy.pt")  # the EMA weights
    for name, tensor in state["ema"]["model"].items():
        torch.testing.assert_close(tensor, policy.state_dict()[name])
    trained = state["policy"]["state_dict"]
    assert not all(torch.equal(tensor, policy.state_dict()[name]) for name, tensor in trained.items())
    assert TrainSummary.from_dict(json.loads((run / "summary.json").read_text())) == result
    config = json.loads((run / "config.json").read_text())
    assert config["policy"] == "mlp" and config["train_config"]["lr"] == 1e-3 and config["data"]["episodes"] == 6


def test_ebt_run_logs_its_energy_terms(demos, tmp_path):
    run = tmp_path / "ebt"
    config = TrainConfig(steps=4, log_every=2, batch_size=8)
    train(demos, EBT_TINY, run, config, progress=False)
    tags = scalars(run).Tags()["scalars"]
    for term in ("loss", "lr", "energy_first", "alpha", "grad_norm_a", "step_rms_0"):
        assert f"train/{term}" in tags
    assert "perf/samples_per_s" in tags


def test_a_paused_run_goes_on_with_the_same_schedule(demos):
    """``train(until_step=...)`` pauses without touching the schedule: paused + resumed == one straight run."""
    from embodia.data.episodes import load_episodes
    from embodia.data.windows import EpisodeWindows
    from embodia.policies import make_policy
    from embodia.training.trainer import Trainer

    windows = EpisodeWindows(load_episodes(demos), n_obs_steps=2, horizon=8, obs_keys=("state",))
    finals = []
    for pauses in ([], [7, 15]):
        torch.manual_seed(0)
        policy = make_policy(
            "mlp", MLP, obs_dim=windows.obs_dim, action_dim=windows.action_dim, horizon=8, n_action_steps=4
        )
        policy.fit_normalizer(windows.obs, windows.actions)
        trainer = Trainer(policy, windows, TrainConfig(steps=20, lr=1e-3, warmup_steps=5), progress=False)
        for until in pauses:
            result = trainer.train(until_step=until)
            assert (result.stopped_by, result.steps) == ("paused", until)
        result = trainer.train()
        assert (result.stopped_by, result.steps) == ("steps", 20)
        finals.append(result.policy.state_dict())
    for name, tensor in finals[0].items():
        torch.testing.assert_close(finals[1][name], tensor, msg=name)


def test_training_state_round_trip_is_exact(demos):
    """Stopping after 25 of 60 steps, reloading the state into fresh objects and going on equals training straight."""
    from embodia.data.episodes import load_episodes
    from embodia.data.windows import EpisodeWindows
    from embodia.policies import make_policy
    from embodia.training.trainer import Trainer

    windows = EpisodeWindows(load_episodes(demos), n_obs_steps=2, horizon=16)
    config = TrainConfig(steps=60, lr=1e-3, warmup_steps=10, batch_size=16)

    def fresh() -> Trainer:
        torch.manual_seed(0)
        policy = make_policy("mlp", obs_dim=windows.obs_dim, action_dim=windows.action_dim, hidden_dims=(32, 32))
        return Trainer(policy.fit_normalizer(windows.obs, windows.actions), windows, config, progress=False)

    straight = fresh().train()
    first = fresh()
    for _ in range(25):
        first.train_step()
    state = first.state_dict()
    torch.manual_seed(123)  # the global RNG moves on; the state must bring its own
    second = fresh()
    second.load_state_dict(state)
    resumed = second.train()
    assert resumed.steps == 60 and resumed.segment_steps == 35
    for name, tensor in straight.policy.state_dict().items():
        assert torch.equal(tensor, resumed.policy.state_dict()[name]), name
    for name, tensor in straight.trained_policy.state_dict().items():
        assert torch.equal(tensor, resumed.trained_policy.state_dict()[name]), name


def _train_cmd(demos: Path, run: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "embodia.cli", "train", "--data", str(demos), "--run", str(run),
        "--steps", "4000", "--lr", "1e-3", "--batch-size", "16", "--checkpoint-every", "200", "--no-progress",
        "policy:mlp", "--policy.hidden-dims", "32", "32", *extra,
    ]  # fmt: skip


def test_sigkill_then_resume_continues_from_the_last_checkpoint(demos, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    ckpt = killed / "checkpoints" / "last.pt"
    proc = subprocess.Popen(_train_cmd(demos, killed), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not ckpt.exists():
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    saved_step = load_train_state(ckpt)["progress"]["step"]
    assert 0 < saved_step < 4000 and saved_step % 200 == 0
    assert not (killed / "summary.json").exists()  # it really died mid-run

    resumed = subprocess.run(
        _train_cmd(demos, killed, "--resume"), env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "trained mlp for 4000 steps" in resumed.stdout
    assert load_train_state(ckpt)["progress"]["step"] == 4000

    straight = subprocess.run(_train_cmd(demos, tmp_path / "straight"), env=env, capture_output=True, timeout=300)
    assert straight.returncode == 0
    for name, tensor in weights(tmp_path / "straight" / "policy.pt").items():
        assert torch.equal(tensor, weights(killed / "policy.pt")[name]), name
    # TensorBoard shows one curve: the killed run's points after its checkpoint are purged on resume.
    steps = [e.step for e in scalars(killed).Scalars("train/loss")]
    assert steps == sorted(set(steps)) and steps[-1] == 4000


# ------------------------------------------------------------------------------------------------ bad input


def test_non_finite_loss_stops_naming_step_and_terms(demos, tmp_path):
    config = TrainConfig(steps=50, lr=1e30, warmup_steps=0)
    with pytest.raises(TrainingDivergedError, match=r"step 2: non-finite loss, mse \(loss terms: loss=nan, mse=nan\)"):
        train(demos, MLP, tmp_path / "nan", config, progress=False)
    assert not (tmp_path / "nan" / "checkpoints" / "last.pt").exists()
    assert not (tmp_path / "nan" / "policy.pt").exists()


def test_resume_errors(demos, tmp_path):
    config = TrainConfig(steps=5)
    resume, overwrite = RunOptions(resume=True), RunOptions(overwrite=True)
    with pytest.raises(ValueError, match=r"no checkpoint at .*nothing to resume"):
        train(demos, policy_config("mlp"), tmp_path / "none", config, resume, progress=False)
    train(demos, MLP, tmp_path / "run", config, progress=False)
    with pytest.raises(ValueError, match="already holds a run"):
        train(demos, MLP, tmp_path / "run", config, progress=False)
    with pytest.raises(ValueError, match="budget --steps 5 is used up"):
        train(demos, MLP, tmp_path / "run", config, resume, progress=False)
    longer = TrainConfig(steps=10)
    with pytest.raises(ValueError, match="trains a 'mlp' policy, not 'diffusion'"):
        train(demos, policy_config("diffusion"), tmp_path / "run", longer, resume, progress=False)
    with pytest.raises(ValueError, match=r"policy config differs .*hidden_dims"):
        train(demos, policy_config("mlp", hidden_dims=(16,)), tmp_path / "run", longer, resume, progress=False)
    other = tmp_path / "other"
    collect("embodia/DetourReach-v0", 2, other, seed=100, progress=False)
    with pytest.raises(ValueError, match="not the data"):
        train(other, MLP, tmp_path / "run", longer, resume, progress=False)
    ckpt = tmp_path / "run" / "checkpoints" / "last.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:500])  # truncated
    with pytest.raises(CheckpointError, match="cannot resume from it: corrupt or unreadable"):
        train(demos, MLP, tmp_path / "run", longer, resume, progress=False)
    Policy.load(tmp_path / "run" / "policy.pt").save(ckpt)  # a policy file where the training state belongs
    with pytest.raises(CheckpointError, match="holds a policy checkpoint, not a training checkpoint"):
        train(demos, MLP, tmp_path / "run", longer, resume, progress=False)
    with pytest.raises(ValueError, match="--resume and --overwrite exclude each other"):
        RunOptions(resume=True, overwrite=True)
    result = train(demos, MLP, tmp_path / "run", longer, overwrite, progress=False)
    assert result.steps == 10


def test_cli_train_and_its_errors(demos, tmp_path, capsys):
    run = tmp_path / "cli"
    assert main(["train", "--data", str(demos), "--run", str(run), "--steps", "20", "--no-progress",
                 "policy:mlp", "--policy.hidden-dims", "16"]) == 0  # fmt: skip
    assert "trained mlp for 20 steps" in capsys.readouterr().out
    assert json.loads((run / "config.json").read_text())["policy_config"]["hidden_dims"] == [16]
    assert main(["train", "--data", str(tmp_path / "missing"), "--run", str(run), "--steps", "5"]) == 2
    assert "is not a directory of episode files" in capsys.readouterr().err
    assert main(["train", "--data", str(demos), "--run", str(tmp_path / "x")]) == 2
    assert "set a training budget" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # tyro: an unknown subcommand, exit status 2
        main(["train", "--data", str(demos), "--run", str(tmp_path / "x"), "--steps", "1", "policy:nope"])
    assert exit_info.value.code == 2 and "policy:nope" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # the data's fields are no flags
        main(["train", "--data", str(demos), "--run", str(tmp_path / "x"), "--steps", "1", "policy:mlp",
              "--policy.obs-dim", "3"])  # fmt: skip
    assert exit_info.value.code == 2 and "--policy.obs-dim" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "--data", str(empty), "--run", str(tmp_path / "x"), "--steps", "1"]) == 2
    assert "holds no episode files" in capsys.readouterr().err


def test_trainer_checks_its_inputs(demos):
    from embodia.data.episodes import load_episodes
    from embodia.data.windows import EpisodeWindows
    from embodia.policies import make_policy
    from embodia.training.trainer import Trainer

    windows = EpisodeWindows(load_episodes(demos), n_obs_steps=2, horizon=16)
    policy = make_policy("mlp", obs_dim=windows.obs_dim, action_dim=windows.action_dim, hidden_dims=(8,))
    with pytest.raises(ValueError, match="fit the policy's normaliser"):
        Trainer(policy, windows, TrainConfig(steps=1), progress=False)
    policy.fit_normalizer(windows.obs, windows.actions)
    with pytest.raises(ValueError, match="budget"):
        Trainer(policy, windows, TrainConfig(), progress=False)
    short = make_policy("mlp", obs_dim=windows.obs_dim, action_dim=windows.action_dim, horizon=8, n_action_steps=4)
    short.fit_normalizer(windows.obs, windows.actions)
    with pytest.raises(ValueError, match=r"do not fit the 'mlp' policy's \(2, 8, 6, 2\)"):
        Trainer(short, windows, TrainConfig(steps=1), progress=False)
    result = Trainer(policy, windows, TrainConfig(steps=3, batch_size=4), progress=False).train()
    assert result.steps == 3 and result.samples == 12
    assert np.isfinite(result.last_terms["loss"])


def test_init_from_starts_from_a_policy_files_weights_and_normaliser(demos, tmp_path):
    first = tmp_path / "first"
    train(demos, MLP, first, TrainConfig(steps=20, lr=1e-3, warmup_steps=0), progress=False)
    start = Policy.load(first / "policy.pt")
    other = tmp_path / "other"  # other data: a fresh run would fit another normaliser
    collect("embodia/DetourReach-v0", 2, other, seed=100, progress=False)
    tuned = tmp_path / "tuned"
    tiny = TrainConfig(steps=1, lr=1e-12, warmup_steps=0, ema=False)  # one step that barely moves the weights
    train(other, MLP, tuned, tiny, RunOptions(init_from=first / "policy.pt"), progress=False)
    result = Policy.load(tuned / "policy.pt")
    for (name, a), b in zip(start.state_dict().items(), result.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a, atol=1e-8, rtol=0, msg=name)  # normaliser included: carried, not refitted
    summary = json.loads((tuned / "summary.json").read_text())
    assert summary["init_from"] == str(first / "policy.pt")
    fresh = tmp_path / "fresh"
    train(other, MLP, fresh, tiny, progress=False)
    fresh_normaliser = Policy.load(fresh / "policy.pt").normalizer.state_dict()
    assert json.loads((fresh / "summary.json").read_text())["init_from"] is None
    assert any(not torch.equal(fresh_normaliser[k], v) for k, v in start.normalizer.state_dict().items())


def test_init_from_refuses_another_policy_or_config(demos, tmp_path):
    first = tmp_path / "first"
    config = TrainConfig(steps=2, warmup_steps=0)
    train(demos, MLP, first, config, progress=False)
    start = RunOptions(init_from=first / "policy.pt")
    with pytest.raises(ValueError, match=r"has another config: hidden_dims=\(32, 32\) \(run: \(16,\)\)"):
        train(demos, policy_config("mlp", hidden_dims=(16,)), tmp_path / "a", config, start, progress=False)
    with pytest.raises(ValueError, match="holds a 'mlp' policy, not 'diffusion'"):
        train(demos, policy_config("diffusion"), tmp_path / "b", config, start, progress=False)
    with pytest.raises(CheckpointError, match="no such file"):
        train(demos, MLP, tmp_path / "c", config, RunOptions(init_from=tmp_path / "missing.pt"), progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
