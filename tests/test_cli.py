"""The `embodia` command line, run as a real subprocess like a user would."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from embodia.data.episodes import read_episode


def embodia(
    *args: str, cwd: Path | None = None, timeout: float = 300, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "MUJOCO_GL": "egl", "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "embodia.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )


def test_list_prints_the_registered_envs():
    proc = embodia("list")
    assert proc.returncode == 0, proc.stderr
    assert "embodia/UrbanNav-v0" in proc.stdout and "embodia/UrbanNav-Return-v0" in proc.stdout


@pytest.mark.parametrize("env_id", ["embodia/UrbanNav-v0", "embodia/UrbanNav-Return-v0"])
def test_collect_writes_episodes_and_summary(tmp_path, env_id):
    out = tmp_path / "demos"
    proc = embodia("collect", "--env", env_id, "--episodes", "3", "--out", str(out), "--seed", "40")
    assert proc.returncode == 0, proc.stderr
    files = sorted(out.glob("episode_*.h5"))
    assert [f.name for f in files] == ["episode_000000.h5", "episode_000001.h5", "episode_000002.h5"]
    assert not list(out.glob(".*tmp"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env"] == env_id and summary["episodes"] == 3
    for key in ("tc", "spd", "ndtw", "sed", "spl", "success"):
        lo, hi = summary["metrics"][key]["ci95"]
        assert lo <= summary["metrics"][key]["mean"] <= hi
    assert summary["metrics"]["tc"]["mean"] == 1.0
    assert [read_episode(f).seed for f in files] == [40, 41, 42]
    assert "tc" in proc.stdout


def test_collect_refuses_to_overwrite_and_reports_bad_values_in_one_line(tmp_path):
    out = tmp_path / "demos"
    assert embodia("collect", "--episodes", "1", "--out", str(out)).returncode == 0
    again = embodia("collect", "--episodes", "1", "--out", str(out))
    assert again.returncode == 2
    assert again.stderr.strip().count("\n") == 0 and "--overwrite" in again.stderr
    assert "Traceback" not in again.stderr
    assert embodia("collect", "--episodes", "1", "--out", str(out), "--overwrite").returncode == 0

    for args, fragment in [  # a later --out overrides the default one below
        (("--episodes", "0"), "--episodes must be >= 1"),
        (("--env", "nope/Nothing-v0"), "nope"),
        (("--env", "Pusher-v5", "--env-kwargs", "{not json"), "--env-kwargs is not valid JSON"),
        (("--env", "Pusher-v5", "--env-kwargs", "[1]"), "--env-kwargs must be a JSON object"),
        (("--env", "Pusher-v5", "--env-kwargs", '{"foo": 1}'), "unexpected keyword argument"),
        (("--env-kwargs", '{"max_steps": 5}'), "typed flags: env:urban-nav --env.FIELD VALUE"),
        (("--env", "Pusher-v5", "env:push"), "give its kwargs as --env-kwargs JSON"),
        (("--env", "Pusher-v5", "--env-kwargs", "{}", "env:push"), "not both"),
        (("--env", "embodia/PushT-v0", "env:urban-nav", "--env.max-steps", "5"), "takes env:push options, not"),
        (("env:detour", "--env.max-steps", "5"), "embodia/UrbanNav-v0 takes env:urban-nav options, not env:detour"),
        (("env:urban-nav", "--env.max-steps", "0"), "max_steps"),
        (("--env", "CartPole-v1"), "Box action space"),
        (("--env", "InvertedPendulum-v5"), "no scripted expert"),
        (("--out", "/proc/embodia-nope"), "No such file"),
    ]:
        proc = embodia("collect", "--episodes", "1", "--out", str(tmp_path / "x"), *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert fragment in proc.stderr and "Traceback" not in proc.stderr
        assert proc.stderr.strip().count("\n") == 0, proc.stderr


def test_typed_env_flags_report_bad_values_through_tyro(tmp_path):
    """A nested config's invalid value fails while parsing (tyro's report, exit status 2), not in a traceback."""
    proc = embodia("collect", "--out", str(tmp_path / "x"), "env:urban-nav", "--env.city.blocks-x", "0")
    assert proc.returncode == 2 and "blocks_x" in proc.stderr and "Traceback" not in proc.stderr
    proc = embodia("collect", "--out", str(tmp_path / "x"), "env:urban-nav", "--env.city.nope", "1")
    assert proc.returncode == 2 and "--env.city.nope" in proc.stderr and "Traceback" not in proc.stderr


def test_typed_env_flags_make_the_episode_the_kwargs_dict_makes(tmp_path):
    """`env:urban-nav --env.city.blocks-x 3 ...` runs the env `collect(env_kwargs={...})` does (the old JSON)."""
    from embodia.runtime.collect import collect

    flags = ("env:urban-nav", "--env.city.blocks-x", "3", "--env.city.blocks-y", "2", "--env.max-steps", "40")
    proc = embodia("collect", "--episodes", "1", "--seed", "7", "--out", str(tmp_path / "flags"), "--no-progress",
                   *flags)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    kwargs = {"city": {"blocks_x": 3, "blocks_y": 2}, "max_steps": 40}
    collect("embodia/UrbanNav-v0", 1, tmp_path / "dict", seed=7, env_kwargs=kwargs, progress=False)
    assert json.loads((tmp_path / "flags" / "summary.json").read_text())["env_kwargs"] == kwargs
    by_flags, by_dict = (read_episode(tmp_path / d / "episode_000000.h5") for d in ("flags", "dict"))
    assert by_flags.env_kwargs == by_dict.env_kwargs
    assert by_flags.env_kwargs["city"]["blocks_x"] == 3 and by_flags.env_kwargs["max_steps"] == 40
    assert by_flags.env_kwargs["task"] == "follow"  # the registered id's value, not given
    assert (by_flags.actions == by_dict.actions).all() and by_flags.num_steps == by_dict.num_steps


def test_overwrite_replaces_the_whole_collection(tmp_path):
    out = tmp_path / "demos"
    assert embodia("collect", "--episodes", "3", "--out", str(out), "--no-progress").returncode == 0
    proc = embodia("collect", "--episodes", "1", "--seed", "50", "--out", str(out), "--overwrite", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert [f.name for f in sorted(out.glob("*.h5"))] == ["episode_000000.h5"]
    assert json.loads((out / "summary.json").read_text())["episodes"] == 1


@pytest.mark.parametrize("env_id", ["embodia/PushBlock-v0", "embodia/PushT-v0", "Pusher-v5"])
def test_collect_manipulation(tmp_path, env_id):
    out = tmp_path / "demos"
    proc = embodia("collect", "--env", env_id, "--episodes", "2", "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert "success" in summary["metrics"] and summary["episodes"] == 2
    episode = read_episode(out / "episode_000000.h5")
    assert episode.mj_state is not None and episode.mj_state.shape[0] == episode.num_steps + 1


def test_collect_with_action_noise(tmp_path):
    out = tmp_path / "dart"
    proc = embodia(
        "collect", "--env", "Pusher-v5", "--episodes", "1", "--action-noise", "0.3", "--out", str(out), "--no-progress"
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "summary.json").read_text())["action_noise"] == 0.3
    proc = embodia("collect", "--env", "Pusher-v5", "--action-noise", "-1", "--out", str(tmp_path / "x"))
    assert proc.returncode != 0 and "--action-noise must be a finite number >= 0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_train_with_dagger_rounds(tmp_path):
    demos, run = tmp_path / "demos", tmp_path / "run"
    env = "embodia/DetourReach-Sided-v0"
    assert embodia("collect", "--env", env, "--episodes", "2", "--out", str(demos), "--no-progress").returncode == 0
    args = ("train", "--data", str(demos), "--run", str(run), "--steps", "10", "--batch-size", "8", "--warmup-steps",
            "2", "--dagger-rounds", "1", "--dagger-episodes", "2", "--no-progress", "policy:mlp")  # fmt: skip
    proc = embodia(*args)
    assert proc.returncode == 0, proc.stderr
    assert "DAgger round 1: learner rollouts success" in proc.stdout
    assert json.loads((run / "summary.json").read_text())["dagger"][0]["episodes_trained_on"] == 4
    proc = embodia(*args, "--workers", "2")
    assert proc.returncode != 0 and "--dagger-rounds trains in this process" in proc.stderr
    assert "Traceback" not in proc.stderr
    plain = ("train", "--data", str(demos), "--steps", "3", "--no-progress", "policy:mlp")
    proc = embodia(*plain, "--run", str(tmp_path / "x"), "--dagger-round-steps", "3")
    assert proc.returncode != 0 and "go with --dagger-rounds" in proc.stderr
    proc = embodia(*plain, "--run", str(tmp_path / "tuned"), "--init-from", str(run / "policy.pt"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "tuned" / "summary.json").read_text())["init_from"] == str(run / "policy.pt")


def test_bad_flag_type_is_reported_without_traceback(tmp_path):
    proc = embodia("collect", "--episodes", "many")
    assert proc.returncode == 2
    assert "--episodes" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.timeout(360)
def test_demo_quick(tmp_path):
    """The main job end to end: zoo rows, rows trained now on Ray, held-out eval, report, TensorBoard, replay."""
    out = tmp_path / "demo"
    proc = embodia("demo", "--quick", "--no-progress", "--out", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    rows = {row["name"]: row for rows in report["envs"].values() for row in rows}
    assert set(report["envs"]) == {
        "embodia/UrbanNav-Return-v0",
        "embodia/DetourReach-Sided-v0",
        "embodia/DetourReach-v0",
    }
    shipped = {"memory-agent-ebt", "memory-agent-ebt-no-memory", "sided-ebt", "sided-diffusion", "sided-mlp",
               "detour-ebt", "detour-diffusion", "detour-mlp"}  # fmt: skip
    assert {name for name, row in rows.items() if row["source"] == "shipped"} == shipped
    assert {name for name, row in rows.items() if row["source"] == "trained now"} == {"sided-ebt-now", "sided-mlp-now"}
    assert {"modular-memory", "expert-nav", "expert-sided", "expert-detour"} <= set(rows)
    for name in ("sided-ebt-now", "sided-mlp-now"):
        assert rows[name]["budget"]["steps"] == report["train_config"]["steps"]
        assert (out / "runs" / name / "policy.pt").is_file()
        assert list((out / "runs" / name / "tb").glob("events.out.tfevents.*"))
    for name in shipped:
        assert rows[name]["budget"]["steps"] >= 2000 and rows[name]["command"].startswith(
            f"embodia eval --checkpoint zoo:{name} "
        )
        assert rows[name]["plan_ms"] > 0 and rows[name]["nfe"] >= 1 and rows[name]["act_ms"] > 0
    assert rows["sided-ebt"]["nfe"] == pytest.approx(2.0) and rows["sided-diffusion"]["nfe"] == pytest.approx(10.0)
    assert rows["expert-nav"]["metrics"]["tc"]["mean"] == 1.0
    assert rows["modular-memory"]["command"].startswith("embodia eval --agent modular --memory full ")
    assert list((out / "eval" / "memory-agent-ebt" / "tb").glob("events.out.tfevents.*"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    media = EventAccumulator(str(out / "eval" / "memory-agent-ebt" / "tb"))
    media.Reload()
    assert {"eval/video", "eval/map", "eval/memory"} <= set(media.Tags()["images"])
    assert "eval/tc" in media.Tags()["scalars"]
    nav = rows["memory-agent-ebt"]["metrics"]
    assert set(nav) == {"tc", "spd", "ndtw"} and all(len(m["ci95"]) == 2 for m in nav.values())
    assert report["memory_effect"]["tc"]["n"] == report["eval_episodes"]
    text = (out / "report.md").read_text()
    assert "| memory-agent-ebt |" in text and "shipped (zoo:memory-agent-ebt), 3000 steps" in text
    assert "Memory effect" in text and "## Reproduce a row" in text and "trained now, 30 steps" in text
    assert_page_files_exist(out / "report.html")
    import imageio.v2 as imageio

    reader = imageio.get_reader(str(out / report["replay"]))
    assert reader.count_frames() > 10
    reader.close()


def assert_page_files_exist(page: Path) -> None:
    """Every src/href of an HTML page names a file that exists (relative to the page)."""
    import re

    text = page.read_text()
    refs = re.findall(r"(?:src|href)='([^']+)'", text)
    assert refs, "the page references no media"
    for ref in refs:
        assert (page.parent / ref).is_file(), ref


def test_max_failures_goes_with_workers(tmp_path):
    proc = embodia("train", "--data", str(tmp_path), "--max-failures", "1", "policy:mlp")
    assert proc.returncode == 2
    assert "--max-failures goes with --workers N >= 1" in proc.stderr and "Traceback" not in proc.stderr


def test_train_help_lists_every_policys_config_fields():
    """`embodia train --help` names every policy's flags; `embodia train policy:NAME --help` explains every field of
    NAME's config but the ones the data decides."""
    import dataclasses
    import re

    from embodia.cli.train import PolicyChoice
    from embodia.policies.factory import policy_class_for, policy_config

    proc = embodia("train", "--help", env_extra={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    names = ("ebt", "ebt-dsm", "diffusion", "mlp", "agent", "navigator")
    overview = {line.split(": ", 1)[0]: line for line in proc.stdout.splitlines() if line.startswith("policy:")}
    for name in names:
        config = policy_config(name)
        for f in dataclasses.fields(config):
            if f.init and f.name != "inner":
                listed = f"--policy.{f.name.replace('_', '-')}" in overview[f"policy:{name}"].split()
                assert listed == (f.name not in config.data_fields), (name, f.name)
    shown = set()
    for name in names:
        config = policy_config(name)
        proc = embodia("train", f"policy:{name}", "--help", env_extra={"COLUMNS": "200"})
        assert proc.returncode == 0, proc.stderr
        for f in dataclasses.fields(config):
            flag = f"--policy.{f.name.replace('_', '-')}"
            if f.name == "inner":  # the inner policy: a nested subcommand with its own fields
                assert "policy.inner:mlp" in proc.stdout
            else:  # a flag, or a bool's pair of flags; the data's fields are none
                listed = re.search(re.escape(flag) + "[ ,]", proc.stdout) is not None
                assert listed == (f.name not in config.data_fields), (name, flag)
        shown.add(policy_class_for(config).name)
    assert len(PolicyChoice.__args__) == len(shown) == len(names)
    proc = embodia("train", "policy:agent", "policy.inner:diffusion", "--help", env_extra={"COLUMNS": "200"})
    assert "--policy.inner.num-inference-steps " in proc.stdout and "--policy.inner.obs-dim" not in proc.stdout


def test_commands_but_train_parse_without_torch():
    """`embodia list` / `replay` / `collect` parse without importing torch or the policy configs (a fast start)."""
    code = (
        "import sys; from embodia.cli import parse_args; "
        "cmd = parse_args(['list', '--all']); print(type(cmd).__name__, 'torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ListCommand", "False"]
