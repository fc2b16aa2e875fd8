"""The policy contract: a config dataclass, a base ``nn.Module``, checkpoints and the batch spec.

Every policy is a pair ``configuration_<name>.py`` (a :class:`PolicyConfig` subclass) + ``modeling_<name>.py``
(a :class:`Policy` subclass) in ``embodia/policies/<name>/`` (LeRobot's layout). Shapes (Diffusion Policy's
contract, To = ``n_obs_steps``, Tp = ``horizon``, Ta = ``n_action_steps``)::

    batch = {"obs": (B, To, Do),                    # raw (unnormalised) observation window
             "action": (B, Tp, Da),                 # raw action chunk, compute_loss only
             "action_mask": (B, Tp) bool}           # optional: True where the action is real, not padding
    predict_action(batch) -> (B, Tp, Da)            # raw actions; chunk index To-1 is the current step
    compute_loss(batch)   -> (loss, {name: float})  # scalar tensor with a graph, plus named float terms
    select_action(batch)  -> (B, Da)                # closed loop: executes chunk[To-1 : To-1+Ta], then re-plans

These are exactly the samples of :class:`embodia.data.windows.EpisodeWindows` (numpy arrays are converted to
tensors on the policy's device). Normalisation happens inside the policy: :meth:`Policy.normalize_batch`
checks the batch against the spec (``ValueError`` naming the expected spec on wrong keys, shapes or
non-finite values) and maps obs and actions to [-1, 1] with the policy's :class:`MinMaxNormalizer`, which is
part of the module and of every checkpoint. Fit it on the training data (:meth:`Policy.fit_normalizer`) before
training.

A subclass must define ``name`` (a lowercase id, e.g. ``"mlp"``, ``"ebt-dsm"``), ``config_class`` and
implement ``predict_action`` and ``compute_loss``; ``__init_subclass__`` refuses the class otherwise (pass
``abstract=True`` in the class statement for an intermediate base). Defining the class registers its name for
:func:`embodia.policies.factory.make_policy` and :meth:`Policy.load` (:mod:`embodia.policies.registry`).

Checkpoints are ``torch.save`` of plain types and tensors only, so ``torch.load(path, weights_only=True)``
reads them::

    {"format_version": 1, "policy": name, "config": asdict(config),
     "state_dict": {parameters and buffers, normaliser excluded}, "normalizer": normaliser state_dict}

written atomically (temp file in the same directory, fsync, ``os.replace``).
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from embodia.atomic import atomic_write
from embodia.policies.normalizer import MinMaxNormalizer
from embodia.policies.plan_info import PlanInfo
from embodia.policies.registry import get_policy_class, register, registered_policies
from embodia.validation import check_int

__all__ = ["CHECKPOINT_VERSION", "CheckpointError", "Policy", "PolicyConfig", "registered_policies"]

CHECKPOINT_VERSION = 1
"""Version of the checkpoint layout written by :meth:`Policy.save`."""

_NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_CHECKPOINT_KEYS = ("policy", "config", "state_dict", "normalizer")


class CheckpointError(Exception):
    """A policy checkpoint is missing, unreadable, corrupt, or holds another policy.

    ``str(error)`` is ``f"{path}: {reason}"``.

    Attributes:
        path: The checkpoint file.
        reason: What is wrong with it (without the path).
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(str(path), reason)  # args = (path, reason): picklable
        self.path = Path(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(kw_only=True)
class PolicyConfig:
    """What every policy needs: observation/action widths and the chunking windows.

    Subclasses are ``@dataclass(kw_only=True)``, add their own fields (with a docstring each) and call
    ``super().__post_init__()`` first in their ``__post_init__``. Fields must be plain types (int, float,
    bool, str, tuples of them) so the config goes into checkpoints and JSON as is.
    """

    obs_dim: int
    """Do: width of one (flattened) observation step (``EpisodeWindows.obs_dim``)."""
    action_dim: int
    """Da: width of one action."""
    n_obs_steps: int = 2
    """To: observation steps the policy conditions on (the current one and To-1 before it)."""
    horizon: int = 16
    """Tp: actions per predicted chunk; the chunk starts at step t-(To-1), so index To-1 is the current step."""
    n_action_steps: int = 8
    """Ta: actions executed per chunk in closed loop (chunk indices To-1 .. To-2+Ta) before re-planning."""
    obs_keys: tuple[str, ...] = ()
    """Episode observation keys concatenated (flattened, in this order) into ``obs`` (e.g. ``("state",)``);
    empty = not recorded. Informational: it tells an agent how to build ``obs`` from env observations."""

    data_fields: ClassVar[tuple[str, ...]] = ("obs_dim", "action_dim", "obs_keys")
    """Fields the training data decides (``embodia.training.entry.train`` sets them; not command-line flags)."""

    def __post_init__(self) -> None:
        for name in ("obs_dim", "action_dim", "n_obs_steps", "horizon", "n_action_steps"):
            check_int(name, getattr(self, name), 1)
        if self.n_obs_steps > self.horizon:
            raise ValueError(f"n_obs_steps ({self.n_obs_steps}) must be <= horizon ({self.horizon})")
        if self.n_action_steps > self.horizon - self.n_obs_steps + 1:
            raise ValueError(
                f"n_action_steps ({self.n_action_steps}) must be <= horizon - n_obs_steps + 1 "
                f"({self.horizon} - {self.n_obs_steps} + 1 = {self.horizon - self.n_obs_steps + 1}): the executed "
                f"actions start at chunk index n_obs_steps - 1"
            )
        if isinstance(self.obs_keys, str):
            raise ValueError(f"obs_keys must be a sequence of str, not a str ({self.obs_keys!r})")
        self.obs_keys = tuple(self.obs_keys)
        if not all(isinstance(k, str) and k for k in self.obs_keys) or len(set(self.obs_keys)) != len(self.obs_keys):
            raise ValueError(f"obs_keys must be distinct non-empty strings, got {self.obs_keys!r}")

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict of plain values (what checkpoints store)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyConfig:
        """Build and validate a config from :meth:`to_dict` output.

        Raises:
            ValueError: Unknown or missing fields (named), or a value ``__post_init__`` rejects.
        """
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{cls.__name__} has no fields {unknown} (fields: {sorted(names)})")
        try:
            return cls(**data)
        except TypeError as exc:  # missing required fields
            raise ValueError(f"{cls.__name__}: {exc}") from None


class Policy(nn.Module):
    """Base class of all policies (see the module docstring for the contract and shapes).

    Args:
        config: An instance of the subclass's ``config_class``.

    Attributes:
        config: The validated config.
        normalizer: ``MinMaxNormalizer`` with keys ``"obs"`` ``(Do,)`` and ``"action"`` ``(Da,)``.
        last_plan: What the last :meth:`select_action` call's re-plan cost; None when it did not re-plan.
    """

    name: ClassVar[str]
    """Registry id of the policy (lowercase, digits and '-'), also stored in checkpoints."""
    config_class: ClassVar[type[PolicyConfig]]
    """The PolicyConfig subclass this policy is built from."""
    batch_keys: ClassVar[frozenset[str]] = frozenset({"obs", "action", "action_mask"})
    """Keys a batch may hold; subclasses with extra inputs (memory tokens, ...) extend it."""
    builds_own_windows: ClassVar[bool] = False
    """False: the trainer cuts ``EpisodeWindows`` over the episodes' observation keys and sets the config's widths
    from them. True: the policy reads episodes its own way (an agent replays them through its memory): the trainer
    builds it with :meth:`data_defaults` of the first episode and asks it for :meth:`training_windows`."""
    last_nfe: Tensor | None = None
    """``(B,)`` network evaluations per sample in the last ``predict_action`` call, for policies that count them
    (diffusion, EBT); None: one forward pass."""
    last_energy: Tensor | None = None
    """``(B,)`` final chunk energy of the last ``predict_action`` call (energy-based policies), else None."""

    def __init_subclass__(cls, *, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if abstract:
            return
        where = f"{cls.__module__}.{cls.__qualname__}"
        name = cls.__dict__.get("name")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise TypeError(
                f"{where} must define its own class attribute `name`, a lowercase id such as 'mlp' or 'ebt-dsm' "
                f"(got {name!r}); pass abstract=True in the class statement for an intermediate base"
            )
        config_class = getattr(cls, "config_class", None)
        if not (isinstance(config_class, type) and issubclass(config_class, PolicyConfig)):
            raise TypeError(f"{where} must set `config_class` to a PolicyConfig subclass, got {config_class!r}")
        for method in ("predict_action", "compute_loss"):
            if getattr(cls, method) is getattr(Policy, method):
                raise TypeError(f"{where} must implement {method}()")
        register(name, cls)

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config
        self.normalizer = MinMaxNormalizer({"obs": (config.obs_dim,), "action": (config.action_dim,)})
        self._action_queue: collections.deque[Tensor] = collections.deque()
        self.last_plan: PlanInfo | None = None

    # ------------------------------------------------------------------------------------------ the contract

    def predict_action(self, batch: Mapping[str, Tensor | np.ndarray]) -> Tensor:
        """Predict a raw action chunk ``(B, Tp, Da)`` from ``batch["obs"]`` ``(B, To, Do)`` (raw).

        Inference: works under ``torch.no_grad()`` and returns a tensor without a graph. Stochastic policies
        draw from torch's global RNG (seed it for reproducible outputs).
        """
        raise NotImplementedError

    def compute_loss(self, batch: Mapping[str, Tensor | np.ndarray]) -> tuple[Tensor, dict[str, float]]:
        """Training loss on a batch with ``"obs"`` and ``"action"``: ``(scalar loss, {term: float})``."""
        raise NotImplementedError

    def select_action(self, batch: Mapping[str, Tensor | np.ndarray]) -> Tensor:
        """Closed-loop action ``(B, Da)``: pops the next planned action, re-planning when the plan is used up.

        A plan is ``predict_action(batch)[:, To-1 : To-1+Ta]``; ``batch["obs"]`` is the current observation
        window. Call :meth:`reset` at the start of every episode. Sets :attr:`last_plan`: what a call that re-planned
        cost (network evaluations, energy), None after a call that popped an already planned action.
        """
        self.last_plan = None
        if not self._action_queue:
            chunk = self.predict_action(batch).detach()  # (B, Tp, Da)
            start = self.config.n_obs_steps - 1
            self._action_queue.extend(chunk[:, start : start + self.config.n_action_steps].unbind(1))
            self.last_plan = PlanInfo.of(self.last_nfe, self.last_energy)
        return self._action_queue.popleft()  # (B, Da)

    def reset(self) -> None:
        """Forget the current plan (call at the start of every episode)."""
        self._action_queue.clear()
        self.last_plan = None

    @classmethod
    def data_defaults(cls, episode: Any) -> dict[str, Any]:
        """Config fields taken from the data (e.g. an agent's sensor layout), for :attr:`builds_own_windows` policies.

        Args:
            episode: An ``embodia.data.episodes.Episode`` of the training data.

        Returns:
            ``{field: value}``; the default: none.
        """
        return {}

    def training_windows(self, episodes: Any, *, progress: bool = False) -> Any:
        """The training samples of a :attr:`builds_own_windows` policy, from its episodes.

        Args:
            episodes: The training ``Episode`` s.
            progress: Show a progress bar.

        Returns:
            An ``embodia.data.windows.EpisodeWindows`` (or a subclass) of the samples.

        Raises:
            NotImplementedError: A policy that does not build its own windows (the trainer cuts them).
        """
        raise NotImplementedError(f"{type(self).__name__} does not build its own training windows")

    def rollout_controller(self, env: Any) -> Any:
        """The controller that runs this policy in ``env``, for policies that bring their own (agents with memory).

        Args:
            env: The environment the controller will drive (a hand-over agent needs it), or None.

        Returns:
            None (the default): the runtime wraps the policy in its plain closed-loop controller
            (``embodia.runtime.policy_controller.PolicyController``); otherwise the controller to use.
        """
        return None

    # ------------------------------------------------------------------------------------------ helpers

    @property
    def device(self) -> torch.device:
        """Device of the policy's parameters (CPU for a parameterless policy)."""
        param = next(self.parameters(), None)
        return param.device if param is not None else self.normalizer.fitted.device

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def fit_normalizer(self, obs: np.ndarray | Tensor, actions: np.ndarray | Tensor) -> Policy:
        """Fit the normaliser on all training observations ``(N, Do)`` and actions ``(N, Da)``; returns self.

        With :class:`~embodia.data.windows.EpisodeWindows`: ``policy.fit_normalizer(w.obs, w.actions)``.
        """
        self.normalizer.fit({"obs": obs, "action": actions})
        return self

    def batch_spec(self) -> str:
        """The expected batch, e.g. ``{'obs': (B, 2, 5) float, 'action': (B, 16, 2) float, ...}``."""
        c = self.config
        return (
            f"{{'obs': (B, {c.n_obs_steps}, {c.obs_dim}) float, 'action': (B, {c.horizon}, {c.action_dim}) float "
            f"[compute_loss], 'action_mask': (B, {c.horizon}) bool [optional]}}"
        )

    def normalize_batch(self, batch: Mapping[str, Tensor | np.ndarray], *, with_action: bool) -> dict[str, Tensor]:
        """Check ``batch`` against the spec and return it as normalised float tensors on the policy's device.

        Returns:
            ``{"obs": (B, To, Do)}`` in [-1, 1] on the fitted data, plus ``"action"`` ``(B, Tp, Da)`` normalised
            and ``"action_mask"`` ``(B, Tp)`` bool (all True when absent) when ``with_action``.

        Raises:
            ValueError: Not a mapping, missing/unknown keys, wrong shapes or dtypes, non-finite values; the
                message names the expected spec.
            RuntimeError: The normaliser is not fitted.
        """
        c = self.config
        if not isinstance(batch, Mapping):
            raise ValueError(f"batch must be a dict {self.batch_spec()}, got {type(batch).__name__}")
        required = {"obs", "action"} if with_action else {"obs"}
        missing, unknown = sorted(required - set(batch)), sorted(set(batch) - self.batch_keys)
        if missing or unknown:
            raise ValueError(
                f"{self.name} batch has keys {sorted(batch)}: missing {missing}, unknown {unknown}; "
                f"expected {self.batch_spec()}"
            )
        obs = self._as_tensor(batch["obs"], "obs", (c.n_obs_steps, c.obs_dim))  # (B, To, Do)
        out = {"obs": self.normalizer.normalize("obs", obs)}
        if with_action:
            action = self._as_tensor(batch["action"], "action", (c.horizon, c.action_dim))  # (B, Tp, Da)
            if action.shape[0] != obs.shape[0]:
                raise ValueError(
                    f"batch 'action' has batch size {action.shape[0]}, 'obs' has {obs.shape[0]}; "
                    f"expected {self.batch_spec()}"
                )
            out["action"] = self.normalizer.normalize("action", action)
            out["action_mask"] = self._mask(batch.get("action_mask"), obs.shape[0])  # (B, Tp)
        return out

    def unnormalize_action(self, action: Tensor) -> Tensor:
        """Map a normalised chunk ``(B, Tp, Da)`` back to raw actions."""
        return self.normalizer.unnormalize("action", action)

    # ------------------------------------------------------------------------------------------ checkpoints

    def checkpoint_payload(self) -> dict[str, Any]:
        """The checkpoint dict (see the module docstring): plain types and CPU tensors only."""
        state = {k: v.detach().cpu().clone() for k, v in self.state_dict().items() if not k.startswith("normalizer.")}
        return {
            "format_version": CHECKPOINT_VERSION,
            "policy": self.name,
            "config": self.config.to_dict(),
            "state_dict": state,
            "normalizer": {k: v.detach().cpu().clone() for k, v in self.normalizer.state_dict().items()},
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write a checkpoint (see the module docstring) atomically to ``path``; returns the path."""
        path = Path(path)
        with atomic_write(path) as tmp:
            torch.save(self.checkpoint_payload(), tmp)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> Policy:
        """Load a checkpoint written by :meth:`save`, in eval mode.

        ``Policy.load`` builds whatever registered policy the file holds (importing its module by naming
        convention); ``SomePolicy.load`` insists the file holds a ``SomePolicy``.

        ``path`` may name a shipped zoo entry, ``"zoo:NAME"`` (:mod:`embodia.zoo`): its file is verified against
        the recorded SHA-256 before it is read.

        Raises:
            CheckpointError: Missing or unreadable file, not a policy checkpoint, another policy than ``cls``,
                a config the policy rejects, or weights that do not fit the model.
            embodia.zoo_store.ZooError: An unknown zoo name or a zoo file that does not match its record.
        """
        from embodia.zoo_store import resolve_checkpoint  # standard library only: no upward dependency

        path = resolve_checkpoint(path)
        if not path.exists():
            raise CheckpointError(path, "no such file")
        if not path.is_file():
            raise CheckpointError(path, "not a regular file")
        try:
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as exc:
            raise CheckpointError(path, f"not a readable checkpoint ({type(exc).__name__}: {_one_line(exc)})") from None
        return cls.from_checkpoint_payload(ckpt, path)

    @classmethod
    def from_checkpoint_payload(cls, ckpt: Mapping[str, Any], path: str | os.PathLike) -> Policy:
        """Build a policy (eval mode) from a :meth:`checkpoint_payload` dict; ``path`` names its source in errors.

        Raises:
            CheckpointError: Not a policy checkpoint, another policy than ``cls``, a config the policy rejects,
                or weights that do not fit the model.
        """
        path = Path(path)
        if not isinstance(ckpt, Mapping) or any(k not in ckpt for k in _CHECKPOINT_KEYS):
            keys = sorted(ckpt) if isinstance(ckpt, Mapping) else type(ckpt).__name__
            raise CheckpointError(path, f"not a policy checkpoint (expected keys {list(_CHECKPOINT_KEYS)}, got {keys})")
        version = ckpt.get("format_version")
        if version != CHECKPOINT_VERSION:
            raise CheckpointError(
                path, f"checkpoint format_version {version!r}, this embodia reads {CHECKPOINT_VERSION}"
            )
        name = ckpt["policy"]
        if cls is not Policy and name != cls.name:
            raise CheckpointError(
                path, f"holds a {name!r} policy, not {cls.name!r}; load it with Policy.load or {name!r}'s class"
            )
        target = cls
        if cls is Policy:
            try:
                target = get_policy_class(name)
            except ValueError as exc:
                raise CheckpointError(path, f"holds policy {name!r}, which cannot be built: {exc}") from None
        if not isinstance(ckpt["config"], dict):
            raise CheckpointError(path, f"config is a {type(ckpt['config']).__name__}, expected a dict")
        try:
            config = target.config_class.from_dict(ckpt["config"])
        except ValueError as exc:
            raise CheckpointError(path, f"invalid {name!r} config: {exc}") from None
        policy = target(config)
        try:
            policy.load_checkpoint_weights(ckpt)
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise CheckpointError(path, f"weights do not fit the {name!r} model: {_one_line(exc)}") from None
        return policy.eval()

    def load_checkpoint_weights(self, ckpt: Mapping[str, Any]) -> None:
        """Load the weights and normaliser of a :meth:`checkpoint_payload` dict into this policy (strict).

        Raises:
            RuntimeError: Missing, unexpected or wrongly shaped entries.
        """
        self.load_state_dict({**ckpt["state_dict"], **_prefixed(ckpt["normalizer"], "normalizer.")})

    # ------------------------------------------------------------------------------------------ internals

    def _as_tensor(self, value: Any, key: str, tail: tuple[int, int]) -> Tensor:
        """``value`` as a float tensor on the policy's device, checked to be ``(B, *tail)`` and finite."""
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in "biuf":
                raise ValueError(f"batch {key!r} has dtype {value.dtype}; expected {self.batch_spec()}")
            value = torch.from_numpy(np.ascontiguousarray(value))
        if not isinstance(value, Tensor):
            raise ValueError(f"batch {key!r} must be a tensor or numpy array, got {type(value).__name__}")
        if value.ndim != 3 or tuple(value.shape[1:]) != tail or value.shape[0] < 1:
            raise ValueError(f"batch {key!r} has shape {tuple(value.shape)}; expected {self.batch_spec()}")
        if value.dtype == torch.bool or value.is_complex():
            raise ValueError(f"batch {key!r} has dtype {value.dtype}; expected {self.batch_spec()}")
        dtype = next((p.dtype for p in self.parameters()), torch.float32)
        value = value.to(self.device, dtype)
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"batch {key!r} contains NaN or inf")
        return value

    def _mask(self, mask: Any, batch: int) -> Tensor:
        horizon = self.config.horizon
        if mask is None:
            return torch.ones(batch, horizon, dtype=torch.bool, device=self.device)
        if isinstance(mask, np.ndarray):
            mask = torch.from_numpy(mask)
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != (batch, horizon):
            shown = f"{mask.dtype}{tuple(mask.shape)}" if isinstance(mask, Tensor) else type(mask).__name__
            raise ValueError(f"batch 'action_mask' is {shown}; expected ({batch}, {horizon}) bool")
        return mask.to(self.device)


def chunk_mean(err: Tensor, action_mask: Tensor | None) -> Tensor:
    """Mean of per-entry losses ``err`` ``(B, Tp, Da)`` over the chunk.

    With ``action_mask`` ``(B, Tp)`` bool, padded steps are left out; None: plain mean, padding included.
    """
    if action_mask is None:
        return err.mean()
    weight = action_mask[..., None].to(err.dtype).expand_as(err)  # (B, Tp, Da)
    return (err * weight).sum() / weight.sum().clamp_min(1.0)


def _prefixed(state: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {prefix + k: v for k, v in state.items()}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
