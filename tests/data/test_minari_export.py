"""Minari for real: `embodia export --format minari` writes what `minari.load_dataset` reads, arrays intact."""

import minari
import numpy as np
import pytest

from embodia.cli import main
from embodia.data.episodes import load_episodes
from embodia.runtime.collect import collect


@pytest.mark.parametrize(("env_id", "episodes"), [("embodia/UrbanNav-v0", 1), ("embodia/PushBlock-v0", 2)])
def test_minari_load_dataset_reads_exported_episodes_unchanged(env_id, episodes, tmp_path, monkeypatch, capsys):
    collect(env_id, episodes, tmp_path / "episodes", seed=3, progress=False)
    name = f"embodia/{env_id.split('/')[1].split('-')[0].lower()}/expert-v0"
    assert main(["export", str(tmp_path / "episodes"), name, "--root", str(tmp_path / "minari")]) == 0
    assert f"wrote Minari dataset {name}" in capsys.readouterr().out
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    dataset = minari.load_dataset(name)
    assert dataset.total_episodes == episodes and dataset.spec.env_spec.id == env_id
    originals = load_episodes(tmp_path / "episodes")
    for exported, original in zip(dataset.iterate_episodes(), originals, strict=True):
        np.testing.assert_array_equal(exported.actions, original.actions)
        np.testing.assert_array_equal(exported.rewards, original.rewards)
        np.testing.assert_array_equal(exported.terminations, original.terminations)
        np.testing.assert_array_equal(exported.truncations, original.truncations)
        np.testing.assert_array_equal(exported.infos["mj_state"], original.mj_state)  # exact re-simulation survives
        for key, value in original.observations.items():
            if value.dtype == object:  # the instruction (a Text space)
                assert list(exported.observations[key]) == list(value)
            else:
                np.testing.assert_array_equal(exported.observations[key], value)
        for key, value in original.infos.items():
            np.testing.assert_array_equal(exported.infos[key][1:], value)  # a NaN row first: Minari's reset info
    assert dataset.observation_space.contains(dataset.recover_environment().observation_space.sample())


def test_export_refuses_mixed_envs_and_an_empty_directory(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["export", str(tmp_path / "empty"), "embodia/x/y-v0", "--root", str(tmp_path / "m")]) == 2
    assert "no episodes to export" in capsys.readouterr().err
