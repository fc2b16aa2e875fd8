"""Gymnasium environments of embodia. This module only registers them (entry points are imported lazily).

After ``import embodia``, ``gymnasium.make("embodia/UrbanNav-v0")`` works.
"""

from gymnasium.envs.registration import register, registry

ENV_IDS: tuple[str, ...] = (
    "embodia/UrbanNav-v0",
    "embodia/UrbanNav-Return-v0",
    "embodia/PushBlock-v0",
    "embodia/PushT-v0",
    "embodia/DetourReach-v0",
    "embodia/DetourReach-Sided-v0",
)
"""Every environment id this package registers."""


def _register(env_id: str, entry_point: str, **kwargs: object) -> None:
    # Episode limits are the envs' own ``max_steps`` kwarg (so the end-of-episode metrics are in ``info``), not
    # a Gymnasium TimeLimit, which would cut episodes without the env knowing.
    if env_id not in registry:  # importing twice (e.g. reloads) must not warn
        register(id=env_id, entry_point=entry_point, kwargs=kwargs)


_register("embodia/UrbanNav-v0", "embodia.envs.nav.urban_nav:UrbanNavEnv", task="follow", max_steps=1000)
_register("embodia/UrbanNav-Return-v0", "embodia.envs.nav.urban_nav:UrbanNavEnv", task="return", max_steps=1500)
_register("embodia/PushBlock-v0", "embodia.envs.manip.push:PushBlockEnv", max_steps=300)
_register("embodia/PushT-v0", "embodia.envs.manip.push:PushTEnv", max_steps=300)
_register("embodia/DetourReach-v0", "embodia.envs.detour.detour_reach:DetourReachEnv", max_steps=100)
_register(
    "embodia/DetourReach-Sided-v0",
    "embodia.envs.detour.detour_reach:DetourReachEnv",
    max_steps=100,
    side_rule="start",
    paired_starts=False,
    config={"start_gap": 0.01},
)
