"""The checkpoint zoo: shipped entries load and act, zoo:NAME resolution and its refusals, recipes that run."""

import functools
import json
import shutil
from pathlib import Path

import pytest

from embodia.cli import main
from embodia.policies.base import Policy
from embodia.runtime.collect import collect
from embodia.runtime.policy_controller import policy_controller
from embodia.zoo.recipes import EVAL_SEED, RECIPES, recipe
from embodia.zoo_store import ZooError, records, resolve_checkpoint, zoo_dir


def test_every_recipe_is_shipped_with_a_record():
    shipped = records()
    assert set(shipped) == set(RECIPES)
    for name, record in shipped.items():
        assert record["env_id"] == RECIPES[name].env_id
        assert RECIPES[name].metric in record["figures"]
        assert record["eval"] == {**record["eval"], "episodes": RECIPES[name].eval_episodes, "seed": EVAL_SEED}
    total = sum((zoo_dir() / r["file"]).stat().st_size for r in shipped.values())
    assert total < 16 * 2**20  # the package stays small


def test_every_shipped_checkpoint_was_trained_with_its_recipes_policy_config():
    """A recipe's policy flags are the config its shipped checkpoint holds (the data's fields aside)."""
    import dataclasses

    for name, entry in RECIPES.items():
        shipped = Policy.load(f"zoo:{name}").config
        data = {k: getattr(shipped, k) for k in shipped.data_fields}
        assert dataclasses.replace(entry.policy_config(), **data) == shipped, name


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_zoo_entry_loads_and_acts_on_one_episode(name, tmp_path):
    """One whole held-out episode per entry, run as `embodia eval` runs it; its result is the recorded one."""
    entry = recipe(name)
    policy = Policy.load(f"zoo:{name}")
    assert policy.training is False
    controller_fn = functools.partial(policy_controller, str(resolve_checkpoint(f"zoo:{name}")))
    summary = collect(entry.env_id, 1, tmp_path, seed=EVAL_SEED, controller_fn=controller_fn, progress=False)
    first = summary["per_episode"][0]
    assert first["steps"] > 0 and first["act_ms_mean"] > 0
    assert first[entry.metric] == records()[name]["figures"]["per_episode"][str(EVAL_SEED)]


@pytest.fixture
def private_zoo(tmp_path, monkeypatch):
    """A zoo directory of its own holding one entry (a copy of sided-mlp), set as EMBODIA_ZOO_DIR."""
    src = records()["sided-mlp"]
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "records").mkdir()
    shutil.copyfile(zoo_dir() / src["file"], tmp_path / src["file"])
    (tmp_path / "records" / "sided-mlp.json").write_text(json.dumps(src))
    monkeypatch.setenv("EMBODIA_ZOO_DIR", str(tmp_path))
    return tmp_path


def test_unknown_zoo_name_lists_the_known_ones(private_zoo, capsys):
    with pytest.raises(ZooError, match=r"unknown zoo entry 'nope'; known: sided-mlp"):
        Policy.load("zoo:nope")
    assert main(["eval", "--checkpoint", "zoo:nope", "--env", "embodia/DetourReach-Sided-v0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["embodia: error: unknown zoo entry 'nope'; known: sided-mlp"]


def test_a_zoo_checkpoint_that_does_not_match_its_digest_is_refused(private_zoo):
    file = private_zoo / "checkpoints" / "sided-mlp.pt"
    assert resolve_checkpoint("zoo:sided-mlp") == file
    data = bytearray(file.read_bytes())
    data[-100] ^= 0xFF
    file.write_bytes(bytes(data))
    with pytest.raises(ZooError, match="damaged or replaced"):
        Policy.load("zoo:sided-mlp")
    file.unlink()
    with pytest.raises(ZooError, match="is missing"):
        Policy.load("zoo:sided-mlp")


def test_zoo_train_refuses_an_existing_run_without_overwrite(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "policy.pt").write_bytes(b"old")
    assert main(["zoo", "train", "sided-mlp", "--out", str(tmp_path)]) == 2
    assert "run already holds files: pass --overwrite" in capsys.readouterr().err
    assert (run / "policy.pt").read_bytes() == b"old"
    assert main(["zoo", "train", "no-such-entry", "--out", str(tmp_path)]) == 2
    assert "unknown zoo entry 'no-such-entry'; known: " in capsys.readouterr().err


def test_zoo_list_prints_every_entry_with_its_figures(capsys):
    assert main(["zoo", "list", "--recipes"]) == 0
    out = capsys.readouterr().out
    for name, entry in RECIPES.items():
        assert f"zoo:{name}  ({entry.env_id})" in out
        assert f"policy:{entry.policy}" in out
        assert "measured by: embodia " + " ".join(entry.eval_args(f"zoo:{name}", f"runs/eval/{name}")) in out
    assert "not shipped" not in out


@pytest.mark.slow
def test_zoo_train_reruns_a_recipe_at_a_reduced_budget(tmp_path, capsys):
    """The recipe runs end to end; its demonstrations are the shipped entry's, to the digest."""
    assert main(["zoo", "train", "sided-ebt", "--out", str(tmp_path), "--steps", "30"]) == 0
    out = capsys.readouterr().out
    assert "(matches the shipped entry's)" in out
    assert Policy.load(tmp_path / "run" / "policy.pt").name == "ebt"
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 30


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recorded_figures_are_what_embodia_eval_prints(name, tmp_path):
    entry, record = recipe(name), records()[name]
    args = entry.eval_args(f"zoo:{name}", str(tmp_path / "eval")) + ["--no-progress", "--workers", "2"]
    assert main(args) == 0
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    per_episode = {str(r["seed"]): r[entry.metric] for r in summary["per_episode"]}
    assert per_episode == record["figures"]["per_episode"]
    assert summary["metrics"][entry.metric]["mean"] == pytest.approx(record["figures"][entry.metric]["mean"], abs=1e-4)


def test_recipes_are_commands_of_this_cli():
    """Every recipe's commands parse (tyro) as the subcommands they claim to be."""
    from embodia.cli import parse_args
    from embodia.cli.app import CollectCommand
    from embodia.cli.train import TrainCommand

    for entry in RECIPES.values():
        collect_args, train_args = entry.commands("D", "R")
        assert isinstance(parse_args(collect_args), CollectCommand)
        train = parse_args(train_args)
        assert isinstance(train, TrainCommand) and train.hp.steps == entry.train_steps() and train.data == Path("D")
        assert train.policy == entry.policy_config()  # the typed config the demo trains for this entry


def test_eval_of_a_zoo_entry_defaults_to_its_recorded_env(tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["eval", "--checkpoint", "zoo:sided-mlp", "--episodes", "2", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env"] == "embodia/DetourReach-Sided-v0" and summary["episodes"] == 2
    assert "note: zoo:sided-mlp's figures were recorded on embodia/DetourReach-Sided-v0, 50 episodes" in (
        capsys.readouterr().out
    )
    recorded = records()["sided-mlp"]["figures"]["per_episode"]
    assert {str(r["seed"]): r["success"] for r in summary["per_episode"]} == {
        seed: recorded[seed] for seed in (str(EVAL_SEED), str(EVAL_SEED + 1))
    }
