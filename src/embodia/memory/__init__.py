"""Mem4Nav spatial memory: octree, topology graph, memory tokens, STM, LTM, and the facade agents use.

Heavy parts import lazily: ``from embodia.memory import Mem4NavMemory`` loads torch and faiss on first use.
"""

from typing import Any

_EXPORTS = {
    "Mem4NavConfig": "embodia.memory.mem4nav",
    "Mem4NavMemory": "embodia.memory.mem4nav",
    "MemoryReadout": "embodia.memory.mem4nav",
    "OctreeConfig": "embodia.memory.octree",
    "SparseOctree": "embodia.memory.octree",
    "TopologyConfig": "embodia.memory.topology",
    "SemanticTopologyGraph": "embodia.memory.topology",
    "STMConfig": "embodia.memory.stm",
    "ShortTermMemory": "embodia.memory.stm",
    "LTMConfig": "embodia.memory.ltm",
    "LongTermMemory": "embodia.memory.ltm",
    "TokenConfig": "embodia.memory.tokens",
    "MemoryTokens": "embodia.memory.tokens",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'embodia.memory' has no attribute {name!r}")
