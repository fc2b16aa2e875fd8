"""Agents: an observation encoder, a Mem4Nav memory (optional) and a policy, composed to act in UrbanNav.

* :class:`~embodia.agents.model.AgentPolicy` (policy name ``"agent"``): encoder + memory + inner policy (EBT,
  Diffusion, MLP), trained end to end from episode files by ``embodia train policy:agent``.
* :class:`~embodia.agents.agent.MemoryAgent`: runs one in an episode (``reset``, ``observe``, ``act``).
* :class:`~embodia.agents.modular.ModularAgent`: the modular backbone, planning on the memory's topology graph.
* :mod:`~embodia.agents.ablation`: the memory switches (none, STM only, LTM only, no octree, no graph).
* :mod:`~embodia.agents.handover`: an expert drives early task phases while the agent watches.

Submodules are imported where used (torch-heavy ones stay out of ``import embodia``).
"""
