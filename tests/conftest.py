"""Shared test setup: headless rendering, one thread per process, no Ray auth token."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import gymnasium as gym
import pytest

import embodia  # noqa: F401  (registers the environments)

EMBODIA_ENV_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("embodia/"))


@pytest.fixture
def make_env():
    """Factory that makes registered envs and closes them after the test."""
    envs = []

    def _make(env_id: str, **kwargs):
        env = gym.make(env_id, **kwargs)
        envs.append(env)
        return env

    yield _make
    for env in envs:
        env.close()


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance for the whole test session (2 CPUs, no dashboard), shut down at the end."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
