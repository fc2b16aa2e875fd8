"""Typed env options (``embodia.envs.options``): the kwargs they stand for, and their match with the env classes."""

import dataclasses
import inspect

import pytest

from embodia.envs import ENV_IDS
from embodia.envs.detour.detour_reach import DetourConfig, DetourOptions
from embodia.envs.manip.push import PushOptions
from embodia.envs.nav.city import CityConfig
from embodia.envs.nav.urban_nav import SensorConfig, UrbanNavOptions
from embodia.envs.options import env_options_type, option_families, options_kwargs
from embodia.envs.views import env_class


def test_every_env_of_ours_names_options_whose_fields_are_constructor_kwargs():
    assert list(option_families()) == ["urban-nav", "push", "detour"]
    for env_id in ENV_IDS:
        options = env_options_type(env_id)
        assert options is not None and option_families()[options.FAMILY] is options
        parameters = inspect.signature(env_class(env_id).__init__).parameters
        assert {f.name for f in dataclasses.fields(options)} <= set(parameters), env_id
    assert env_options_type("Pusher-v5") is None and env_options_type("nope/Nothing-v0") is None


def test_options_give_only_what_was_set():
    assert options_kwargs("embodia/UrbanNav-v0", UrbanNavOptions()) == {}
    options = UrbanNavOptions(city=CityConfig(blocks_x=10, blocks_y=10), sensor=SensorConfig(rgb=True), max_steps=9)
    assert options_kwargs("embodia/UrbanNav-Return-v0", options) == {
        "city": {"blocks_x": 10, "blocks_y": 10},
        "sensor": {"rgb": True},
        "max_steps": 9,
    }
    assert options_kwargs("embodia/PushT-v0", PushOptions(random_goal=False)) == {"random_goal": False}


def test_a_nested_config_is_merged_over_the_registered_one():
    options = DetourOptions(config=DetourConfig(start_offset=0.03), paired_starts=False)
    assert options_kwargs("embodia/DetourReach-Sided-v0", options) == {
        "config": {"start_gap": 0.01, "start_offset": 0.03},
        "paired_starts": False,
    }
    assert options_kwargs("embodia/DetourReach-v0", options)["config"] == {"start_offset": 0.03}


def test_options_of_another_family_or_a_foreign_env_are_refused_in_one_line():
    with pytest.raises(ValueError, match=r"^embodia/PushT-v0 takes env:push options, not env:urban-nav$"):
        options_kwargs("embodia/PushT-v0", UrbanNavOptions())
    with pytest.raises(ValueError, match="Pusher-v5 is not one of embodia's envs"):
        options_kwargs("Pusher-v5", PushOptions())
