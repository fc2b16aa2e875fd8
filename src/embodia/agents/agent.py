"""``MemoryAgent``: runs an :class:`~embodia.agents.model.AgentPolicy` in an UrbanNav episode, step by step.

Each step (``observe``) the agent builds the step's raw observation row, embeds it (``v_t``), writes the step into
its Mem4Nav memory (3-D points and landmark detections from :mod:`embodia.agents.perception`, ``v_t`` and the
odometry position), retrieves memory items with ``v_t`` as the query and keeps the row (raw + items) and the
items' contents in an observation window of ``n_obs_steps``. ``act`` observes, then executes the inner policy's
action chunk in closed loop (re-planning every ``n_action_steps``). Training rows
(:func:`embodia.agents.data.agent_rows`) are built by this same code, so training and inference see the same
rows.

The agent is a rollout controller (``reset(seed)``, ``act(obs)``, ``info()``), so ``RolloutWorker``, the Ray pool
and ``embodia eval`` run it like any policy.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from embodia.agents.perception import RayPerception
from embodia.policies.base import Policy
from embodia.policies.plan_stats import PlanStats
from embodia.policies.registry import get_policy_class

__all__ = ["AgentStep", "MemoryAgent"]


@dataclass
class AgentStep:
    """What one ``observe`` produced.

    Attributes:
        row: ``(Do,)`` float32 observation row (raw + memory items).
        embedding: ``(d,)`` float32 ``v_t``.
        item_embeddings: ``(n, d)`` float32 contents of the retrieved items.
        item_tokens: ``(n, 2d)`` float32 tokens of the retrieved items (zeros for STM items).
    """

    row: np.ndarray
    embedding: np.ndarray
    item_embeddings: np.ndarray
    item_tokens: np.ndarray


class MemoryAgent:
    """An agent that perceives, remembers and acts (see the module docstring).

    Args:
        policy: The agent policy, an ``embodia.agents.model.AgentPolicy`` (the registered ``"agent"``; this module
            sits below ``model``, which builds ``MemoryAgent`` s), its inner normaliser fitted.
    """

    def __init__(self, policy: Policy) -> None:
        if not isinstance(policy, get_policy_class("agent")):
            raise TypeError(f"MemoryAgent needs an AgentPolicy, got {type(policy).__name__}")
        if policy.device.type != "cpu":
            raise ValueError(
                f"MemoryAgent runs on the CPU (its memory is numpy and faiss); the policy is on {policy.device}"
            )
        self.policy = policy.eval()
        c = policy.config
        self.perception = RayPerception(c.ray_geometry())
        self._window: collections.deque[AgentStep] = collections.deque(maxlen=c.n_obs_steps)
        self._token_cache: dict[str, np.ndarray] = {}
        self.stats = PlanStats(observes=True)

    @property
    def memory(self) -> Any:
        """The policy's ``Mem4NavMemory`` (None in memory mode ``"none"``)."""
        return self.policy.memory

    def reset(self, seed: int | None = None) -> None:
        """Start an episode: empty memory, window and plan (seeds torch with ``seed`` when given)."""
        if seed is not None:
            torch.manual_seed(seed)
        if self.memory is not None:
            self.memory.reset()
        self.policy.reset()
        self._window.clear()
        self.stats.reset()

    def raw_row(self, obs: dict[str, Any]) -> np.ndarray:
        """The raw part ``(raw_width,)`` float32 of an observation row.

        Raises:
            ValueError: A missing key, or an array of the wrong size (named).
        """
        c, layout = self.policy.config, self.policy.layout
        keys = ("depth", "semantic", "pose", "instruction") + (("rgb",) if c.rgb_size else ())
        missing = [k for k in keys if k not in obs]
        if missing:
            raise ValueError(f"the agent needs observation keys {list(keys)}; missing {missing}")
        text = obs["instruction"]
        text = text if isinstance(text, str) else str(text)
        tokens = self._token_cache.get(text)
        if tokens is None:
            tokens = self._token_cache[text] = self.policy.tokenizer.encode(text).astype(np.float32)
        parts = {"depth": obs["depth"], "semantic": obs["semantic"], "tokens": tokens, "pose": obs["pose"]}
        if c.rgb_size:
            parts["rgb"] = obs["rgb"]
        row = np.zeros(layout.raw_width, dtype=np.float32)
        for key, value in parts.items():
            flat = np.asarray(value, dtype=np.float32).reshape(-1)
            span = layout.slices[key]
            if flat.size != span.stop - span.start:
                raise ValueError(
                    f"observation {key!r} has {flat.size} values, the agent expects {span.stop - span.start}"
                )
            row[span] = flat
        if not np.isfinite(row).all():
            raise ValueError("the observation contains NaN or inf")
        return row

    def observe(self, obs: dict[str, Any]) -> AgentStep:
        """Perceive, write into memory and retrieve for one observation (without acting); returns the step."""
        with self.stats.observing():
            return self._observe(obs)

    def _observe(self, obs: dict[str, Any]) -> AgentStep:
        policy, layout = self.policy, self.policy.layout
        d = policy.config.embed_dim
        raw = self.raw_row(obs)
        with torch.inference_mode():
            v = policy.encode_rows(torch.from_numpy(raw)[None])[0].numpy()  # (d,)
        n = layout.n_items
        item_embeddings = np.zeros((n, d), dtype=np.float32)
        item_tokens = np.zeros((n, 2 * d), dtype=np.float32)
        items = np.zeros(0, dtype=np.float32)
        if self.memory is not None:
            percept = self.perception(obs)
            self.memory.update(
                v, percept.position, percept.points, percept.point_classes,
                (percept.detection_classes, percept.detection_positions),
            )  # fmt: skip
            readout = self.memory.retrieve(v)
            c, s = np.cos(percept.yaw), np.sin(percept.yaw)
            world = readout.positions.astype(np.float64)  # (n, 3) relative to the agent, world axes
            local = np.stack([c * world[:, 0] + s * world[:, 1], -s * world[:, 0] + c * world[:, 1], world[:, 2]], 1)
            items = layout.item_rows(local, readout)
            item_embeddings, item_tokens = readout.embeddings, readout.tokens
        step = AgentStep(np.concatenate([raw, items]), v.astype(np.float32), item_embeddings, item_tokens)
        if not self._window:
            self._window.extend([step] * self._window.maxlen)  # pad with the first step, as training windows do
        else:
            self._window.append(step)
        return step

    def batch(self) -> dict[str, np.ndarray]:
        """The inference batch of the current window (``AgentPolicy`` class docstring)."""
        if not self._window:
            raise RuntimeError("observe (or act) before asking for a batch")
        steps = list(self._window)
        batch = {"obs": np.stack([s.row for s in steps])[None]}  # (1, To, Do)
        if self.memory is not None:
            batch["item_embeddings"] = np.stack([s.item_embeddings for s in steps])[None]  # (1, To, n, d)
            batch["item_tokens"] = np.stack([s.item_tokens for s in steps])[None]  # (1, To, n, 2d)
        return batch

    def act(self, obs: dict[str, Any]) -> np.ndarray:
        """Observe, then the next action ``(Da,)`` float32 of the current plan (re-planning when it is used up)."""
        with self.stats.acting():
            self.observe(obs)
            return self.stats.select(self.policy, self.batch())  # (Da,)

    def memory_snapshot(self) -> dict[str, np.ndarray] | None:
        """What the memory holds now, for the episode file (``Mem4NavMemory.view_snapshot``); None without memory."""
        return None if self.memory is None else self.memory.view_snapshot()

    def info(self) -> dict[str, Any]:
        """Per-episode figures of the agent.

        Returns:
            Agent, memory mode, re-plans, latency (ms) per plan, per observation and per action (``act`` calls:
            observe + amortised plans), network evaluations per plan, memory statistics.
        """
        out: dict[str, Any] = {
            "policy": self.policy.name,
            "inner_policy": self.policy.config.policy,
            "memory": self.policy.config.memory,
            **self.stats.plan_figures(),
            **self.stats.act_figures(),  # absent when the agent never acted (the episode ended before the hand-over)
        }
        if self.memory is not None:
            out.update({f"memory/{k}": v for k, v in self.memory.stats().items()})
        return out
