"""``AgentPolicy`` (``"agent"``): encoder + Mem4Nav memory + an inner policy, trained end to end as one module.

The agent is a registered :class:`~embodia.policies.base.Policy`, so the trainer, its checkpoints, ``--resume``,
Ray Train and ``Policy.load`` work for it unchanged. Its per-step observation row (``obs`` ``(B, To, Do)``) is
laid out by :class:`AgentLayout`::

    raw   = [depth (E*A) ; semantic (E*A) ; instruction token ids (L) ; pose (3) ; rgb (S*S*3, optional)]
    items = n x [relative position in the agent frame (3) ; source flag (1) ; score (1) ; valid (1) ;
                 source step (1) ; first write of its key (1) ; prior read token θ_r (d)]

``items`` are the step's memory readout (``Mem4NavMemory.retrieve`` after writing the step; n = the readout size,
0 without memory). One step's features for the inner policy are ``[v_t ; m_t]`` (``2d``, both in (-1, 1)):
``v_t`` the encoder's embedding and ``m_t`` a learned attention read of the items with ``v_t`` as the query
(zeros without memory, so every ablation runs the same inner policy).

**End to end.** Which items a step retrieves is a discrete choice made while the episode is replayed through the
memory (``embodia.agents.data``, with the weights the run starts from); their *contents* are recomputed with
gradients in every training step: an STM item's embedding is ``encoder(obs_s)`` of the step ``s`` that wrote it,
an LTM item's token is ``R([θ_r ; encoder(obs_s)])`` (``θ_r`` = the learned ``read_init`` for a key's first write)
and its embedding ``π_v(R⁻¹(token))``. So the policy loss reaches the encoder through the memory, R through the
tokens the reader attends to, π_v and ``read_init``; the loss adds ``cycle_weight`` times Mem4Nav's cycle loss.

**An approximation, stated.** The replay fixes, per step, the retrieved items, their scores and the ``θ_r`` of
later writes at the values of the initial weights (truncated backpropagation through the memory: the gradient
stops at the item's last write and does not flow through the retrieval choice). At inference
(:mod:`embodia.agents.agent`) the live memory runs with the trained weights, so it may retrieve other items than
the training rows hold; at the initial weights the two are identical (test).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from embodia.agents.ablation import check_memory_mode, memory_config
from embodia.agents.encoder import ObservationEncoder
from embodia.agents.inner import AnyInner, WrapsPolicy
from embodia.agents.perception import SensorFields
from embodia.agents.tokenizer import InstructionTokenizer
from embodia.data.episodes import Episode
from embodia.data.windows import EpisodeWindows
from embodia.envs.nav.city import NUM_LANDMARK_CLASSES
from embodia.memory.mem4nav import Mem4NavConfig, Mem4NavMemory, MemoryReadout
from embodia.memory.topology import TopologyConfig
from embodia.policies.base import CheckpointError, Policy, PolicyConfig
from embodia.policies.factory import inner_config, make_policy, policy_config
from embodia.validation import check_int, check_number

__all__ = ["AgentConfig", "AgentLayout", "AgentPolicy"]

_ITEM_FIELDS = 8  # rel position (3), source, score, valid, step, first write
_NUM_SOURCES = 4
INNER_POLICIES = ("ebt", "ebt-dsm", "diffusion", "mlp")


@dataclass(kw_only=True)
class AgentConfig(WrapsPolicy, PolicyConfig, SensorFields):
    """An UrbanNav agent: sensor layout, encoder, memory ablation mode and inner policy.

    The sensor fields come from :class:`~embodia.agents.perception.SensorFields`.

    ``obs_dim`` is derived from the other fields (not a command-line flag); a value that disagrees is refused.
    """

    obs_dim: int = 0
    """Do: width of one observation row (:class:`AgentLayout`); 0 = derive it."""
    action_dim: int = 3
    """Da: UrbanNav's ``[speed, yaw rate, stop]``."""
    memory: str = "full"
    """Memory ablation mode (``embodia.agents.ablation.MEMORY_MODES``)."""
    embed_dim: int = 64
    """d: width of the observation embedding and of memory embeddings (tokens are 2d)."""
    width: int = 64
    """Hidden width of the encoder and the memory reader."""
    inner: AnyInner = field(default_factory=lambda: policy_config("ebt"))
    """Inner policy: EBT-Policy (default), EBT-DSM, Diffusion Policy or MLP, with its config (the agent sets its
    window fields)."""
    max_tokens: int = 64
    """L: instruction tokens per step."""
    rgb_size: int = 0
    """Side of the rgb image the encoder reads, or 0 for none."""
    position_scale: float = 20.0
    """Metres per unit of the item positions the reader sees (squashed by tanh)."""
    cycle_weight: float = 0.1
    """Weight of Mem4Nav's cycle loss (the paper's 0.1)."""
    graph_delta: float = 0.0
    """Embedding gate δ of the topology graph. The paper's 0.7 assumes a pretrained encoder; ours starts untrained,
    its embeddings of different places nearly equal, and with δ = 0.7 a 650-step episode made one node. With 0
    the graph is spatial: a new node wherever the agent is farther than the spatial gate (5 m) from every node."""
    act_from_phase: int = 0
    """Task phase from which the agent acts (earlier phases are driven by another controller while the agent
    observes, the hand-over protocol of ``embodia.agents.handover``); training samples are the steps of these
    phases (the memory is still written from step 0)."""

    data_fields: ClassVar[tuple[str, ...]] = (
        *PolicyConfig.data_fields, "elevations", "azimuths", "min_elevation_deg", "max_elevation_deg", "max_range",
        "sensor_height",
    )  # fmt: skip
    inner_policies: ClassVar[tuple[str, ...]] = INNER_POLICIES

    def __post_init__(self) -> None:
        check_memory_mode(self.memory)
        for name in ("embed_dim", "width", "max_tokens", "elevations", "azimuths"):
            check_int(name, getattr(self, name), 1)
        check_int("rgb_size", self.rgb_size, 0)
        check_int("act_from_phase", self.act_from_phase, 0)
        for name in ("max_range", "sensor_height", "position_scale"):
            check_number(name, getattr(self, name))
        check_number("cycle_weight", self.cycle_weight, strict=False)
        check_number("graph_delta", self.graph_delta, strict=False, high=2.0)
        self.check_inner()
        self.inner_policy_config()  # validates the inner config's window fields
        derived = AgentLayout(self).width
        if self.obs_dim == 0:
            self.obs_dim = derived
        elif self.obs_dim != derived:
            raise ValueError(f"obs_dim {self.obs_dim} disagrees with the layout of this config ({derived}); use 0")
        super().__post_init__()

    def inner_policy_config(self) -> PolicyConfig:
        """The inner policy's config: :attr:`inner` with the window fields this config decides."""
        return inner_config(
            self.inner, "agent config", obs_dim=2 * self.embed_dim, action_dim=self.action_dim,
            n_obs_steps=self.n_obs_steps, horizon=self.horizon, n_action_steps=self.n_action_steps,
        )  # fmt: skip

    @property
    def readout_size(self) -> int:
        """n: memory items per step (0 without memory)."""
        cfg = self.memory_config()
        return 0 if cfg is None else cfg.readout_size

    def memory_config(self) -> Mem4NavConfig | None:
        """The memory's configuration (None in memory mode ``"none"``)."""
        return memory_config(self.memory, embed_dim=self.embed_dim, topology=TopologyConfig(delta=self.graph_delta))


class AgentLayout:
    """Slices of an agent observation row (see the module docstring).

    Attributes:
        raw_width: Width of the raw observation part.
        width: Width of a whole row (raw + items).
        n_items: Memory items per row.
    """

    def __init__(self, config: AgentConfig) -> None:
        c = config
        rays = c.elevations * c.azimuths
        sizes = {"depth": rays, "semantic": rays, "tokens": c.max_tokens, "pose": 3, "rgb": 3 * c.rgb_size**2}
        self.slices: dict[str, slice] = {}
        start = 0
        for key, size in sizes.items():
            self.slices[key] = slice(start, start + size)
            start += size
        self.raw_width = start
        self.n_items = c.readout_size
        self.item_width = _ITEM_FIELDS + c.embed_dim
        self.width = self.raw_width + self.n_items * self.item_width
        self.config = c

    def raw(self, rows: Tensor) -> dict[str, Tensor]:
        """Split raw rows ``(N, >= raw_width)`` into named parts.

        Returns:
            ``depth (N, E, A)``, ``semantic (N, E, A)``, ``tokens (N, L)``, ``pose (N, 3)``, ``rgb (N, S, S, 3)``
            (None without rgb).
        """
        c, s = self.config, self.slices
        n = rows.shape[0]
        return {
            "depth": rows[:, s["depth"]].reshape(n, c.elevations, c.azimuths),
            "semantic": rows[:, s["semantic"]].reshape(n, c.elevations, c.azimuths),
            "tokens": rows[:, s["tokens"]],
            "pose": rows[:, s["pose"]],
            "rgb": rows[:, s["rgb"]].reshape(n, c.rgb_size, c.rgb_size, 3) if c.rgb_size else None,
        }

    def items(self, rows: Tensor) -> dict[str, Tensor]:
        """The item fields of rows ``(N, width)``.

        Returns:
            ``positions (N, n, 3)``, ``sources (N, n)`` long, ``scores (N, n)``, ``valid (N, n)`` bool, ``steps (N, n)``
            long, ``first (N, n)`` bool, ``prior (N, n, d)``.
        """
        items = rows[:, self.raw_width :].reshape(rows.shape[0], self.n_items, self.item_width)
        return {
            "positions": items[..., 0:3],
            "sources": items[..., 3].round().long().clamp(0, _NUM_SOURCES - 1),
            "scores": items[..., 4],
            "valid": items[..., 5] > 0.5,
            "steps": items[..., 6].round().long(),
            "first": items[..., 7] > 0.5,
            "prior": items[..., _ITEM_FIELDS:],
        }

    def items_numpy(self, rows: np.ndarray) -> np.ndarray:
        """The items' source steps ``(N, n)`` int64 of numpy rows ``(N, width)`` (-1 for padding)."""
        items = rows[:, self.raw_width :].reshape(rows.shape[0], self.n_items, self.item_width)
        return np.rint(items[..., 6]).astype(np.int64)

    def item_rows(self, positions: np.ndarray, readout: MemoryReadout) -> np.ndarray:
        """One step's items as a flat ``(n * item_width,)`` float32 row part (inverse of :meth:`items`).

        Args:
            positions: ``(n, 3)`` item positions in the agent frame.
            readout: The step's memory readout (sources, scores, validity, steps, first writes, prior tokens).
        """
        r = readout
        columns = [r.sources, r.scores, r.valid, r.steps, r.first_writes]
        fields = np.concatenate([positions, *[c[:, None] for c in columns], r.prior_tokens], axis=1)  # (n, width)
        return fields.astype(np.float32).reshape(-1)


class MemoryReader(nn.Module):
    """Attention read of memory items with the step's embedding as the query: ``(v, items) -> m`` ``(B, d)``."""

    def __init__(self, embed_dim: int, width: int, position_scale: float) -> None:
        super().__init__()
        self.position_scale = position_scale
        self.token_proj = nn.Linear(2 * embed_dim, width)
        self.item = nn.Sequential(nn.Linear(embed_dim + width + 3 + _NUM_SOURCES + 1, width), nn.GELU())
        self.query = nn.Linear(embed_dim, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)
        self.out = nn.Linear(width, embed_dim)

    def forward(
        self, v: Tensor, embeddings: Tensor, tokens: Tensor, positions: Tensor, sources: Tensor, scores: Tensor,
        valid: Tensor,
    ) -> Tensor:  # fmt: skip
        """Reads the items.

        Args:
            v: ``(B, d)`` query embeddings.
            embeddings: ``(B, n, d)`` item embeddings.
            tokens: ``(B, n, 2d)`` item tokens (zeros for STM items).
            positions: ``(B, n, 3)`` item positions in the agent frame, metres.
            sources: ``(B, n)`` long source flags.
            scores: ``(B, n)`` retrieval scores.
            valid: ``(B, n)`` bool.

        Returns:
            ``(B, d)`` in (-1, 1); zeros for rows without a valid item.
        """
        features = torch.cat(
            [
                embeddings,
                self.token_proj(tokens),
                torch.tanh(positions / self.position_scale),
                F.one_hot(sources, _NUM_SOURCES).to(v.dtype),
                scores.unsqueeze(-1),
            ],
            dim=-1,
        )  # (B, n, ...)
        h = self.item(features)  # (B, n, w)
        logits = (self.key(h) @ self.query(v).unsqueeze(-1)).squeeze(-1) / h.shape[-1] ** 0.5  # (B, n)
        logits = logits.masked_fill(~valid, float("-inf"))
        any_valid = valid.any(dim=1, keepdim=True)  # (B, 1)
        weights = torch.softmax(torch.where(any_valid, logits, torch.zeros_like(logits)), dim=1) * any_valid
        read = (weights.unsqueeze(-1) * self.value(h)).sum(1)  # (B, w)
        return torch.tanh(self.out(read)) * any_valid  # (B, d)


class AgentPolicy(Policy):
    """Encoder + Mem4Nav memory + inner policy (see the module docstring).

    Batches: training ``{"obs": (B, To, Do), "item_obs": (B, To, n, raw_width), "action", "action_mask"}`` (the
    items' source observations, :class:`embodia.agents.data.AgentWindows`); inference ``{"obs": (B, To, Do),
    "item_embeddings": (B, To, n, d), "item_tokens": (B, To, n, 2d)}`` (:class:`embodia.agents.agent.MemoryAgent`).

    Attributes:
        encoder: The observation encoder.
        memory: The ``Mem4NavMemory`` (None for memory mode ``"none"``); its data structures are per episode.
        reader: The memory reader (None without memory).
        inner: The inner policy on ``2d``-wide features.
    """

    name = "agent"
    config_class = AgentConfig
    builds_own_windows = True
    batch_keys = frozenset({"obs", "action", "action_mask", "item_obs", "item_embeddings", "item_tokens"})

    def __init__(self, config: AgentConfig) -> None:
        super().__init__(config)
        c = config
        self.layout = AgentLayout(c)
        self.tokenizer = InstructionTokenizer(c.max_tokens)
        self.encoder = ObservationEncoder(
            elevations=c.elevations, azimuths=c.azimuths, max_range=c.max_range, num_classes=NUM_LANDMARK_CLASSES,
            vocab_size=self.tokenizer.vocab_size, max_tokens=c.max_tokens, embed_dim=c.embed_dim, width=c.width,
            rgb_size=c.rgb_size,
        )  # fmt: skip
        mem_cfg = c.memory_config()
        self.memory = None if mem_cfg is None else Mem4NavMemory(mem_cfg)
        if self.memory is not None:
            # This agent reads tokens, never decodes positions or descriptors: no loss reaches π_p and π_d, so they
            # stay at their initialisation instead of posing as trained parts (π_v is trained by the cycle loss).
            self.memory.freeze_decoders()
        self.reader = None if mem_cfg is None else MemoryReader(c.embed_dim, c.width, c.position_scale)
        self.inner = make_policy(c.policy, config=c.inner_policy_config())
        features = 2 * c.embed_dim
        self.inner.normalizer.fit({"obs": np.stack([-np.ones(features), np.ones(features)]),
                                   "action": np.zeros((1, c.action_dim))})  # fmt: skip

    @classmethod
    def data_defaults(cls, episode: Episode) -> dict[str, Any]:
        """Config fields the data decides: the sensor layout of the env that recorded ``episode``."""
        out = SensorFields.from_env_kwargs(episode.env_kwargs)
        sensor = (episode.env_kwargs or {}).get("sensor") or {}
        if sensor.get("rgb"):
            out["rgb_size"] = sensor.get("rgb_size", 64)
        return out

    def training_windows(self, episodes: Sequence[Episode], *, progress: bool = False) -> EpisodeWindows:
        """Training windows: ``episodes`` replayed through this agent's memory (``embodia.agents.data``)."""
        from embodia.agents.data import AgentWindows

        return AgentWindows(self, episodes, progress=progress)

    def rollout_controller(self, env: Any) -> Any:
        """This agent as a rollout controller: a ``MemoryAgent``, under the hand-over protocol if it acts later.

        With ``act_from_phase >= 1`` the env's expert drives the earlier phases (``embodia.agents.handover``).

        Raises:
            ValueError: A hand-over agent without ``env``.
        """
        from embodia.agents.agent import MemoryAgent
        from embodia.agents.handover import handover_controller

        return handover_controller(MemoryAgent(self), env, self.config.act_from_phase)

    @classmethod
    def load_matching(cls, path: str | os.PathLike, config: AgentConfig) -> AgentPolicy:
        """Load an agent checkpoint that must hold exactly ``config``.

        Raises:
            CheckpointError: The file cannot be loaded, or its config differs (every differing field is named
                with both values).
        """
        policy = cls.load(path)
        saved, wanted = policy.config.to_dict(), config.to_dict()
        diffs = [f"{k}: checkpoint {saved[k]!r}, expected {wanted[k]!r}" for k in wanted if saved.get(k) != wanted[k]]
        if diffs:
            raise CheckpointError(path, f"agent config differs ({'; '.join(diffs)})")
        return policy

    @property
    def last_nfe(self) -> Tensor | None:
        """The inner policy's network evaluations in its last plan (EBT's dynamic compute), if it counts them."""
        return self.inner.last_nfe

    @property
    def last_energy(self) -> Tensor | None:
        """``(B,)`` final chunk energy of the inner policy's last plan (energy-based inner policies), else None."""
        return self.inner.last_energy

    def fit_normalizer(self, obs: np.ndarray | Tensor, actions: np.ndarray | Tensor) -> AgentPolicy:
        """Fit the action range (the inner policy's) and the row statistics (kept for inspection); returns self."""
        super().fit_normalizer(obs, actions)
        features = 2 * self.config.embed_dim
        self.inner.normalizer.fit({"obs": np.stack([-np.ones(features), np.ones(features)]), "action": actions})
        return self

    def train(self, mode: bool = True) -> AgentPolicy:
        """Train mode for the learned parts; the memory's data structures are unaffected."""
        return super().train(mode)

    # ------------------------------------------------------------------ features
    def encode_rows(self, rows: Tensor) -> Tensor:
        """Embeddings ``(N, d)`` of raw rows ``(N, >= raw_width)``."""
        raw = self.layout.raw(rows)
        return self.encoder(raw["depth"], raw["semantic"], raw["tokens"], raw["rgb"])

    def features(self, obs: Tensor, item_embeddings: Tensor | None, item_tokens: Tensor | None) -> Tensor:
        """Inner-policy features ``(B, To, 2d)`` of rows ``(B, To, Do)`` and their items' contents.

        Args:
            obs: ``(B, To, Do)`` observation rows.
            item_embeddings: ``(B, To, n, d)`` item embeddings (None without memory).
            item_tokens: ``(B, To, n, 2d)`` item tokens (None without memory).
        """
        b, t, _ = obs.shape
        rows = obs.reshape(b * t, -1)
        v = self.encode_rows(rows)  # (B*To, d)
        if self.reader is None:
            m = torch.zeros_like(v)
        else:
            items = self.layout.items(rows)
            n, d = self.layout.n_items, self.config.embed_dim
            m = self.reader(
                v, item_embeddings.reshape(b * t, n, d), item_tokens.reshape(b * t, n, 2 * d), items["positions"],
                items["sources"], items["scores"], items["valid"],
            )  # fmt: skip
        return torch.cat([v, m], dim=-1).reshape(b, t, -1)  # (B, To, 2d)

    def inner_observations(self, batch: Mapping[str, Tensor | np.ndarray]) -> Tensor:
        """What the inner policy sees ``(B, To, 2d)`` for a training batch (rows and their items' observations)."""
        rows = self._rows(batch)
        contents = (None, None)
        if self.reader is not None:
            contents = self._item_contents(rows, self._items(batch, "item_obs", rows, self.layout.raw_width))
        return self.features(rows, *contents)

    def _item_contents(self, obs: Tensor, item_obs: Tensor) -> tuple[Tensor, Tensor]:
        """Recompute item embeddings and tokens from their source observations (training; with gradients)."""
        from embodia.memory.mem4nav import SOURCE_STM

        b, t, n, _ = item_obs.shape
        d = self.config.embed_dim
        items = self.layout.items(obs.reshape(b * t, -1))
        v_src = self.encode_rows(item_obs.reshape(b * t * n, -1)).reshape(b * t, n, d)  # (B*To, n, d)
        fresh = self.memory.fresh_read_tokens(1).expand(b * t, n, d)  # learned read_init, with its gradient
        prior = torch.where(items["first"].unsqueeze(-1), fresh, items["prior"])  # (B*To, n, d)
        tokens = self.memory.written_tokens(prior.reshape(-1, d), v_src.reshape(-1, d))  # (B*To*n, 2d)
        decoded = self.memory.decode_embeddings(tokens).reshape(b * t, n, d)
        is_ltm = (items["sources"] > SOURCE_STM) & items["valid"]  # (B*To, n)
        embeddings = torch.where(is_ltm.unsqueeze(-1), decoded, v_src * items["valid"].unsqueeze(-1))
        tokens = tokens.reshape(b * t, n, 2 * d) * is_ltm.unsqueeze(-1)
        return embeddings.reshape(b, t, n, d), tokens.reshape(b, t, n, 2 * d)

    # ------------------------------------------------------------------ the contract
    def _rows(self, batch: Mapping[str, Tensor | np.ndarray]) -> Tensor:
        if not isinstance(batch, Mapping) or "obs" not in batch:
            raise ValueError(f"agent batch must be a dict with 'obs' {self.batch_spec()}")
        unknown = sorted(set(batch) - self.batch_keys)
        if unknown:
            raise ValueError(f"agent batch has unknown keys {unknown}; expected {self.batch_spec()}")
        return self._as_tensor(batch["obs"], "obs", (self.config.n_obs_steps, self.config.obs_dim))

    def _items(self, batch: Mapping, key: str, rows: Tensor, width: int) -> Tensor:
        value = batch.get(key)
        b, t = rows.shape[:2]
        want = (b, t, self.layout.n_items, width)
        if value is None:
            raise ValueError(f"agent batch needs {key!r} {want} (memory mode {self.config.memory!r})")
        value = torch.as_tensor(value, dtype=rows.dtype, device=rows.device)
        if tuple(value.shape) != want:
            raise ValueError(f"agent batch {key!r} has shape {tuple(value.shape)}, expected {want}")
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"agent batch {key!r} contains NaN or inf")
        return value

    def batch_spec(self) -> str:
        """The expected batch (see the class docstring)."""
        c, n = self.config, self.layout.n_items
        return (
            f"{{'obs': (B, {c.n_obs_steps}, {c.obs_dim}), 'item_obs': (B, {c.n_obs_steps}, {n}, "
            f"{self.layout.raw_width}) [training] or 'item_embeddings': (B, {c.n_obs_steps}, {n}, {c.embed_dim}) + "
            f"'item_tokens': (B, {c.n_obs_steps}, {n}, {2 * c.embed_dim}) [inference], 'action': (B, {c.horizon}, "
            f"{c.action_dim}) [compute_loss], 'action_mask': (B, {c.horizon}) bool [optional]}}"
        )

    def predict_action(self, batch: Mapping[str, Tensor | np.ndarray]) -> Tensor:
        """Raw action chunk ``(B, Tp, Da)`` from an inference batch (class docstring)."""
        rows = self._rows(batch)
        embeddings = tokens = None
        if self.reader is not None:
            if "item_obs" in batch and "item_embeddings" not in batch:
                embeddings, tokens = self._item_contents(
                    rows, self._items(batch, "item_obs", rows, self.layout.raw_width)
                )
            else:
                embeddings = self._items(batch, "item_embeddings", rows, self.config.embed_dim)
                tokens = self._items(batch, "item_tokens", rows, 2 * self.config.embed_dim)
        with torch.no_grad():
            features = self.features(rows, embeddings, tokens)
        return self.inner.predict_action({"obs": features.detach()})

    def compute_loss(self, batch: Mapping[str, Tensor | np.ndarray]) -> tuple[Tensor, dict[str, float]]:
        """Inner policy loss on the features + ``cycle_weight`` x cycle loss (training batch, class docstring)."""
        rows = self._rows(batch)
        embeddings = tokens = None
        if self.reader is not None:
            embeddings, tokens = self._item_contents(rows, self._items(batch, "item_obs", rows, self.layout.raw_width))
        features = self.features(rows, embeddings, tokens)
        inner_batch = {"obs": features, "action": batch["action"]}
        if "action_mask" in batch:
            inner_batch["action_mask"] = batch["action_mask"]
        policy_loss, terms = self.inner.compute_loss(inner_batch)
        loss = policy_loss
        out = {f"policy/{k}": v for k, v in terms.items() if k != "loss"}
        out["policy_loss"] = float(policy_loss.detach())
        if self.memory is not None and self.config.cycle_weight > 0:
            d = self.config.embed_dim
            v = features[..., :d].reshape(-1, d)
            cycle = self.memory.cycle_loss(v)
            loss = loss + self.config.cycle_weight * cycle
            out["cycle_loss"] = float(cycle.detach())
        return loss, out
