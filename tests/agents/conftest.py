"""Fixtures for the agent tests: a few recorded UrbanNav-Return expert episodes (shared by the session)."""

import pytest

from embodia.data.episodes import load_episodes
from embodia.runtime.collect import collect

RETURN_ENV = "embodia/UrbanNav-Return-v0"


@pytest.fixture(scope="session")
def return_demos(tmp_path_factory):
    """Directory with 2 expert episodes of UrbanNav-Return-v0 (seeds 0 and 1)."""
    out = tmp_path_factory.mktemp("return_demos")
    collect(RETURN_ENV, 2, out, seed=0, progress=False)
    return out


@pytest.fixture(scope="session")
def return_episodes(return_demos):
    """The episodes of ``return_demos``, loaded."""
    return load_episodes(return_demos)
