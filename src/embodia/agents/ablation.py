"""Memory ablation switches shared by every agent: which parts of the Mem4Nav memory an agent uses.

=============  =====================================================================================
mode           memory
=============  =====================================================================================
``full``       octree + topology graph + STM + LTM (the whole Mem4Nav memory)
``none``       no memory at all (the agent sees only the current observation)
``stm``        STM only: no LTM retrieval (the octree and graph still index space and anchor the STM)
``ltm``        LTM only: no STM
``no-octree``  no sparse octree (no leaf tokens; the LTM holds graph-node tokens only)
``no-graph``   no topology graph (no node tokens; STM positions are anchored at the agent)
=============  =====================================================================================
"""

from __future__ import annotations

from typing import Any

from embodia.memory.mem4nav import Mem4NavConfig

MEMORY_MODES = ("full", "none", "stm", "ltm", "no-octree", "no-graph")
"""The ablation switches, in the order reports list them."""

_SWITCHES: dict[str, dict[str, bool]] = {
    "full": {},
    "stm": {"use_ltm": False},
    "ltm": {"use_stm": False},
    "no-octree": {"use_octree": False},
    "no-graph": {"use_graph": False},
}


def check_memory_mode(mode: str) -> str:
    """Returns ``mode`` if it is one of :data:`MEMORY_MODES`, else raises ``ValueError`` listing them."""
    if mode not in MEMORY_MODES:
        raise ValueError(f"memory mode must be one of {', '.join(MEMORY_MODES)}; got {mode!r}")
    return mode


def memory_config(mode: str, **settings: Any) -> Mem4NavConfig | None:
    """The memory configuration of an ablation ``mode`` (None for ``"none"``).

    Args:
        mode: One of :data:`MEMORY_MODES`.
        **settings: Other :class:`~embodia.memory.mem4nav.Mem4NavConfig` fields (e.g. ``embed_dim``).
    """
    check_memory_mode(mode)
    if mode == "none":
        return None
    return Mem4NavConfig(**settings, **_SWITCHES[mode])
