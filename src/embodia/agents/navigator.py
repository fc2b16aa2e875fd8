"""The learned memory agent (policy name ``"navigator"``): Mem4Nav's modular backbone with a learned controller.

Mem4Nav's modular backbone plans on the memory and feeds its policy ``[v_t ; m_t ; waypoint − p_t]``. Here the
backbone is the modular agent's (:mod:`embodia.agents.modular`): perception, the Mem4Nav memory (written with a
fixed view descriptor) and the street planner (:mod:`embodia.agents.planner`: ``Mem4NavMemory.locate`` keyed by
the instruction's landmark, the goal's street anchor, a Dijkstra path on the topology graph). What is learned is
the controller: an inner policy (EBT-Policy by default; Diffusion Policy, MLP) reads the plan and the free space
around the robot (:mod:`embodia.agents.plan_features`, 22 numbers per step, ``n_obs_steps`` steps) and outputs
action chunks (speed, yaw rate, stop).

Training rows are made by the same code as inference: each episode is replayed through a
:class:`NavigatorAgent` (its memory written and the plan made at every step, as in a rollout), giving one feature
row per step (:class:`NavigatorWindows`). A process keeps the features of the episodes it replayed, keyed by the
episode's content and the agent's settings, so a DAgger round replays only its new rollouts. With memory mode
``"none"`` the planner knows only what is in view, so a navigator trained that way is the no-memory baseline
trained as such.

The memory has no trained parameter here: the navigator's parameters are the inner policy's, and every one of them
is trained (tested). The memory's learned parts (R, the LTM key projection) are not used by ``locate``.
"""

from __future__ import annotations

import collections
import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

import numpy as np
import torch
import tyro
from torch import Tensor
from tqdm import tqdm

from embodia.agents.ablation import check_memory_mode
from embodia.agents.data import PhaseWindows, phase_mask
from embodia.agents.inner import WrapsPolicy
from embodia.agents.modular import ModularAgent, ModularAgentConfig
from embodia.agents.perception import SensorFields
from embodia.agents.plan_features import NUM_FEATURES, SECTORS, plan_features
from embodia.agents.planner import Plan
from embodia.agents.tokenizer import require_goal_landmark
from embodia.data.digest import episode_key
from embodia.data.episodes import Episode
from embodia.policies.base import Policy, PolicyConfig
from embodia.policies.diffusion.configuration_diffusion import DiffusionConfig
from embodia.policies.ebt.configuration_ebt import EBTConfig
from embodia.policies.factory import inner_config, make_policy, policy_config
from embodia.policies.mlp.configuration_mlp import MLPConfig
from embodia.policies.plan_stats import PlanStats
from embodia.validation import check_int

__all__ = ["NavigatorAgent", "NavigatorConfig", "NavigatorPolicy", "NavigatorWindows"]

INNER_POLICIES = ("ebt", "diffusion", "mlp")
INNER_DEFAULTS: dict[str, dict[str, Any]] = {
    "ebt": {"energy_form": "residual", "langevin_sigma_max": 0.0, "langevin_sigma_min": 0.0,
            "step_scale_range": [1.0, 1.0]},
    "diffusion": {},
    "mlp": {},
}  # fmt: skip
"""The inner policies' settings in the navigator (``NavigatorConfig.inner``'s defaults). EBT-Policy with a residual
energy, no Langevin noise and a fixed step scale (AGENT.md's recipe): on 40 demonstrations and 3,000 steps it reached a
training MSE of 0.0066 and TC 0.90 [0.70, 0.97] on 20 held-out seeds, where EBT's defaults (mean energy, Langevin
noise) stayed at MSE 0.082 and TC 0.85 [0.64, 0.95] (MLP: 0.60 [0.39, 0.78])."""
FEATURES_KEY = "plan_features"
FEATURE_CACHE_EPISODES = 4096
"""Episodes whose replayed features a process keeps (least recently used dropped first; ~1 MB per 100)."""
_feature_cache: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()


NavigatorInner = (
    Annotated[EBTConfig, tyro.conf.subcommand("ebt", default=policy_config("ebt", **INNER_DEFAULTS["ebt"]))]
    | Annotated[DiffusionConfig, tyro.conf.subcommand("diffusion")]
    | Annotated[MLPConfig, tyro.conf.subcommand("mlp")]
)
"""The navigator's inner policy config (EBT-Policy with :data:`INNER_DEFAULTS`, Diffusion Policy or MLP)."""


@dataclass(kw_only=True)
class NavigatorConfig(WrapsPolicy, PolicyConfig, SensorFields):
    """The learned memory agent: memory mode, inner policy and the sensor layout its features are read from.

    ``obs_dim`` is the feature width (:data:`~embodia.agents.plan_features.NUM_FEATURES`; not a command-line flag).
    """

    obs_dim: int = 0
    """Do: the feature width; 0 = derive it."""
    action_dim: int = 3
    """Da: UrbanNav's ``[speed, yaw rate, stop]``."""
    memory: str = "full"
    """Memory ablation mode (``embodia.agents.ablation.MEMORY_MODES``)."""
    inner: NavigatorInner = field(default_factory=lambda: NavigatorConfig.default_inner("ebt"))
    """Inner policy: EBT-Policy (default, with :data:`INNER_DEFAULTS`), Diffusion Policy or MLP, with its config
    (the navigator sets its window fields). In code, start from ``NavigatorConfig.default_inner(name)``
    to get those defaults; a bare ``policy_config(name)`` has the inner policy's own."""
    act_from_phase: int = 0
    """Task phase from which the agent acts (earlier phases are driven by the env's expert while the agent
    observes, ``embodia.agents.handover``); training samples are the steps of these phases."""

    data_fields: ClassVar[tuple[str, ...]] = (
        *PolicyConfig.data_fields, "elevations", "azimuths", "min_elevation_deg", "max_elevation_deg", "max_range",
        "sensor_height",
    )  # fmt: skip
    inner_policies: ClassVar[tuple[str, ...]] = INNER_POLICIES
    inner_defaults: ClassVar[dict[str, dict[str, Any]]] = INNER_DEFAULTS

    def __post_init__(self) -> None:
        check_memory_mode(self.memory)
        check_int("act_from_phase", self.act_from_phase, 0)
        self.check_inner()
        self.inner_policy_config()  # validates the inner config's window fields
        if self.obs_dim == 0:
            self.obs_dim = NUM_FEATURES
        elif self.obs_dim != NUM_FEATURES:
            raise ValueError(f"obs_dim {self.obs_dim} is not the navigator's feature width {NUM_FEATURES}; use 0")
        super().__post_init__()
        self.ray_geometry()  # validates the sensor fields
        if self.azimuths % SECTORS:
            raise ValueError(f"azimuths must be a multiple of {SECTORS} (the free-space sectors), got {self.azimuths}")

    def inner_policy_config(self) -> PolicyConfig:
        """The inner policy's config: :attr:`inner` with the window fields this config decides."""
        return inner_config(
            self.inner, "navigator config", obs_dim=NUM_FEATURES, action_dim=self.action_dim,
            n_obs_steps=self.n_obs_steps, horizon=self.horizon, n_action_steps=self.n_action_steps,
        )  # fmt: skip

    def backbone_config(self) -> ModularAgentConfig:
        """The modular backbone's settings (memory mode; planner distances and descriptor at their defaults)."""
        return ModularAgentConfig(memory=self.memory)


class NavigatorPolicy(Policy):
    """The navigator's learned part: an inner policy on plan features (see the module docstring).

    Batches are the inner policy's: ``{"obs": (B, To, 22), "action": (B, Tp, 3), "action_mask": (B, Tp)}``.

    Attributes:
        inner: The inner policy.
    """

    name = "navigator"
    config_class = NavigatorConfig
    builds_own_windows = True

    def __init__(self, config: NavigatorConfig) -> None:
        super().__init__(config)
        c = config
        self.inner = make_policy(c.policy, config=c.inner_policy_config())

    @classmethod
    def data_defaults(cls, episode: Episode) -> dict[str, Any]:
        """Config fields the data decides: the sensor layout of the env that recorded ``episode``."""
        return SensorFields.from_env_kwargs(episode.env_kwargs)

    def training_windows(self, episodes: Sequence[Episode], *, progress: bool = False) -> NavigatorWindows:
        """Training windows: ``episodes`` replayed through a :class:`NavigatorAgent` (module docstring)."""
        return NavigatorWindows(self, episodes, progress=progress)

    def rollout_controller(self, env: Any) -> Any:
        """This agent as a rollout controller: a ``NavigatorAgent``, under the hand-over protocol if it acts later.

        With ``act_from_phase >= 1`` the env's expert drives the earlier phases (``embodia.agents.handover``).

        Raises:
            ValueError: A hand-over agent without ``env``.
        """
        from embodia.agents.handover import handover_controller

        return handover_controller(NavigatorAgent(self), env, self.config.act_from_phase)

    @property
    def last_nfe(self) -> Tensor | None:
        """The inner policy's network evaluations in its last plan, if it counts them."""
        return self.inner.last_nfe

    @property
    def last_energy(self) -> Tensor | None:
        """The inner policy's final chunk energy in its last plan (energy-based inner policies), else None."""
        return self.inner.last_energy

    def fit_normalizer(self, obs: np.ndarray | Tensor, actions: np.ndarray | Tensor) -> NavigatorPolicy:
        """Fit the inner policy's normaliser (and this one's, kept for inspection); returns self."""
        super().fit_normalizer(obs, actions)
        self.inner.fit_normalizer(obs, actions)
        return self

    def inner_observations(self, batch: Mapping[str, Tensor | np.ndarray]) -> Tensor:
        """What the inner policy sees ``(B, To, 22)`` for a batch: the feature windows themselves."""
        return torch.as_tensor(batch["obs"], dtype=torch.float32)

    def batch_spec(self) -> str:
        """The expected batch (the inner policy's)."""
        return self.inner.batch_spec()

    def predict_action(self, batch: Mapping[str, Tensor | np.ndarray]) -> Tensor:
        """Raw action chunk ``(B, Tp, 3)`` from ``{"obs": (B, To, 22)}``."""
        return self.inner.predict_action(batch)

    def compute_loss(self, batch: Mapping[str, Tensor | np.ndarray]) -> tuple[Tensor, dict[str, float]]:
        """The inner policy's loss on a batch of feature windows and action chunks."""
        return self.inner.compute_loss(batch)


class NavigatorAgent:
    """Runs a :class:`NavigatorPolicy` in an UrbanNav episode: backbone (memory + planner), features, inner policy.

    A rollout controller (``reset(seed)``, ``observe(obs)``, ``act(obs)``, ``info()``), like the modular agent.

    Args:
        policy: The navigator policy (its normaliser fitted, e.g. loaded from a checkpoint).
    """

    def __init__(self, policy: NavigatorPolicy) -> None:
        if not isinstance(policy, NavigatorPolicy):
            raise TypeError(f"NavigatorAgent needs a NavigatorPolicy, got {type(policy).__name__}")
        self.policy = policy.eval()
        c = policy.config
        self.geometry = c.ray_geometry()
        self.backbone = ModularAgent(c.backbone_config(), self.geometry)
        self._window: collections.deque[np.ndarray] = collections.deque(maxlen=c.n_obs_steps)
        self.stats = PlanStats(observes=True)
        self.reset()

    @property
    def memory(self) -> Any:
        """The backbone's ``Mem4NavMemory`` (None in memory mode ``"none"``)."""
        return self.backbone.memory

    def reset(self, seed: int | None = None) -> None:
        """Start an episode: empty memory, window and plan (seeds torch with ``seed`` when given)."""
        if seed is not None:
            torch.manual_seed(seed)
        self.backbone.reset()
        self.policy.reset()
        self._window.clear()
        self._instruction: str | None = None
        self.plan = None
        self.stats.reset()

    def observe(self, obs: Mapping[str, Any], *, plan: bool = False) -> np.ndarray:
        """Perceive, write memory and compute the step's features (without acting).

        Args:
            obs: UrbanNav observation with ``depth``, ``semantic``, ``pose`` and ``instruction``.
            plan: Plan this step (``act`` does). A step only watched (another controller drives, the hand-over's
                early phases) is not planned: its features say "goal unknown" and hold the free space only. The
                training replay does the same per step, so a window that spans the hand-over matches.

        Returns:
            ``(22,)`` float32 features of this step.

        Raises:
            ValueError: A malformed observation or a missing instruction.
        """
        with self.stats.observing():
            return self._observe(obs, plan)

    def _observe(self, obs: Mapping[str, Any], plan: bool) -> np.ndarray:
        instruction = obs.get("instruction") if isinstance(obs, Mapping) else None
        if isinstance(instruction, bytes | np.bytes_):
            instruction = instruction.decode()
        if not isinstance(instruction, str):
            raise ValueError(f"the observation needs an 'instruction' string, got {type(instruction).__name__}")
        percept = self.backbone.observe(obs)
        planner = self.backbone.planner
        if instruction != self._instruction:
            self._instruction = instruction
            planner.new_instruction()
        step_plan = planner.plan(require_goal_landmark(instruction), percept) if plan else Plan()
        position = percept.position[:2]
        lookahead = planner.lookahead_point(position, step_plan.waypoints) if step_plan.found else None
        features = plan_features(
            step_plan, lookahead, position, percept.yaw, np.asarray(obs["depth"]), planner.junctions.rows,
            self.geometry.max_range,
        )  # fmt: skip
        self.plan = step_plan
        if not self._window:
            self._window.extend([features] * self._window.maxlen)  # pad with the first step, as training windows do
        else:
            self._window.append(features)
        return features

    def act(self, obs: Mapping[str, Any]) -> np.ndarray:
        """Observe, then the next action ``(3,)`` float32 of the current chunk (re-planning when it is used up)."""
        with self.stats.acting():
            self.observe(obs, plan=True)
            return self.stats.select(self.policy, {"obs": np.stack(self._window)[None]})  # (1, To, 22) -> (3,)

    def memory_snapshot(self) -> dict[str, np.ndarray] | None:
        """What the memory holds now and the first plan, for the episode file; None without memory."""
        return self.backbone.memory_snapshot()

    def info(self) -> dict[str, Any]:
        """Per-episode figures of the agent.

        Returns:
            Agent, inner policy, memory mode, the plans and latencies (ms; ``PlanStats``: evaluations per chunk and,
            with an energy-based inner policy, the chunks' final energies) and the backbone's memory statistics
            (``memory/goal_found_rate``: acting steps with the goal located; which memory parts located it).
        """
        out: dict[str, Any] = {
            "policy": self.policy.name,
            "inner_policy": self.policy.config.policy,
            "memory": self.policy.config.memory,
            **self.stats.plan_figures(),
            **self.stats.act_figures(),  # absent when the agent never acted (the episode ended before the hand-over)
        }
        out.update({f"memory/{k}": v for k, v in self.backbone.memory_stats().items()})
        return out


class NavigatorWindows(PhaseWindows):
    """Training windows over plan features: episodes replayed through a :class:`NavigatorAgent`.

    Args:
        policy: The navigator policy (its settings decide the backbone; its weights are not used).
        episodes: UrbanNav episodes (``depth``, ``semantic``, ``pose``, ``instruction`` observations).
        progress: Show a progress bar over episodes.
    """

    def __init__(self, policy: NavigatorPolicy, episodes: Sequence[Episode], *, progress: bool = False) -> None:
        episodes = list(episodes)
        if not episodes:
            raise ValueError("NavigatorWindows needs at least one episode")
        c = policy.config
        agent = NavigatorAgent(policy)
        settings = json.dumps(c.to_dict(), sort_keys=True, default=str)
        replayed = []
        self.cache_hits = 0
        bar = tqdm(episodes, desc="replay memory", unit="ep", disable=not progress, dynamic_ncols=True)
        for e, ep in enumerate(bar):
            obs = ep.observations
            if not isinstance(obs, dict):
                raise ValueError(f"episode {e} ({ep.env_id}) has a Box observation; the navigator needs UrbanNav's")
            key = episode_key(ep, settings)
            features = _feature_cache.get(key)
            if features is None:
                features = _replay(agent, ep, e)
                _feature_cache[key] = features
                while len(_feature_cache) > FEATURE_CACHE_EPISODES:
                    _feature_cache.popitem(last=False)
            else:
                _feature_cache.move_to_end(key)
                self.cache_hits += 1
            replayed.append(dataclasses.replace(ep, observations={FEATURES_KEY: features.copy()}))
        super().__init__(replayed, n_obs_steps=c.n_obs_steps, horizon=c.horizon, obs_keys=(FEATURES_KEY,))
        if c.act_from_phase > 0:
            self.keep_phases(episodes, c.act_from_phase)


def _replay(agent: NavigatorAgent, episode: Episode, index: int) -> np.ndarray:
    """Features ``(T+1, 22)`` of ``episode`` replayed through ``agent`` (plans only on its acting steps)."""
    c = agent.policy.config
    obs, steps = episode.observations, len(episode.actions)
    agent.reset()
    try:
        acting = np.ones(steps, dtype=bool) if c.act_from_phase == 0 else phase_mask([episode], c.act_from_phase)
        acting = np.append(acting, acting[-1] if steps else True)  # the final observation: as the step before
        rows = [agent.observe({k: v[t] for k, v in obs.items()}, plan=bool(acting[t])) for t in range(steps + 1)]
    except ValueError as exc:
        raise ValueError(f"episode {index} (seed {episode.seed}): {exc}") from None
    return np.stack(rows)
