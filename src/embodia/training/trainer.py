"""The training loop shared by every policy: AdamW, warm-up + cosine, clipping, EMA, TensorBoard, checkpoints.

One :class:`Trainer` trains one :class:`~embodia.policies.base.Policy` on the samples of an
:class:`~embodia.data.windows.EpisodeWindows` (batches drawn uniformly with replacement). Each gradient step::

    batch = windows.sample(batch_size)          # {"obs": (B, To, Do), "action": (B, Tp, Da), "action_mask": (B, Tp)}
    loss, terms = policy.compute_loss(batch)    # non-finite loss or term -> TrainingDivergedError, nothing applied
    loss.backward(); clip_grad_norm_(1.0)       # non-finite gradient norm -> TrainingDivergedError
    lr = lr · warm-up · cosine(progress); AdamW step; EMA update

With a run directory the trainer writes TensorBoard event files into its ``tb/`` (``train/loss``, ``train/lr``,
``train/grad_norm``, ``train/<term>`` for every loss term the policy reports, e.g. EBT's ``energy_first``,
``step_rms_<i>`` per unroll index, ``alpha``, ``grad_norm_a``; ``perf/samples_per_s``, ``perf/it_per_s`` and the
hyperparameters as a text table under ``hparams``) and checkpoints atomically: ``checkpoints/last.pt`` (the full
training state, see :mod:`embodia.training.state`) and ``policy.pt`` (the run's policy, EMA weights when EMA is
on, loadable with ``Policy.load``). SIGINT/SIGTERM finish the current step, write a checkpoint and return (a
second SIGINT aborts).
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from embodia.data.windows import EpisodeWindows
from embodia.policies.base import Policy
from embodia.training.config import TrainConfig
from embodia.training.ema import EMA
from embodia.training.schedule import lr_factor
from embodia.training.state import save_train_state

__all__ = ["CHECKPOINT_NAME", "POLICY_NAME", "TENSORBOARD_DIR", "TrainResult", "Trainer", "TrainingDivergedError"]

CHECKPOINT_NAME = "checkpoints/last.pt"
"""Training checkpoint inside a run directory."""
POLICY_NAME = "policy.pt"
"""The run's policy (EMA weights when EMA is on) inside a run directory."""
TENSORBOARD_DIR = "tb"
"""TensorBoard event files inside a run directory."""


STOP_REASONS = (None, "steps", "minutes", "signal", "paused")
"""Why training stops (index 0: it goes on); distributed workers receive the chief's index."""


class TrainingDivergedError(RuntimeError):
    """A batch produced a non-finite loss, loss term or gradient; nothing from that step was applied or saved.

    Attributes:
        step: The 1-based gradient step that failed.
        problem: What was non-finite.
        terms: The step's loss terms.
        checkpoint: The last checkpoint written by the run (None if none yet).
    """

    def __init__(self, step: int, problem: str, terms: dict[str, float], checkpoint: Path | None) -> None:
        super().__init__(step, problem, terms, checkpoint)
        self.step, self.problem, self.terms, self.checkpoint = step, problem, terms, checkpoint

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={v:.6g}" for k, v in self.terms.items()) or "none"
        last = f"last checkpoint: {self.checkpoint}" if self.checkpoint else "no checkpoint was written yet"
        return (
            f"training stopped at step {self.step}: {self.problem} (loss terms: {shown}); "
            f"nothing from this step was applied or saved; {last}"
        )


@dataclass
class TrainResult:
    """What :meth:`Trainer.train` returns.

    Attributes:
        policy: The run's policy in eval mode: the EMA copy when EMA is on, else the trained weights.
        trained_policy: The trained (non-averaged) weights.
        steps: Gradient steps of the whole run (across resumes).
        samples: Samples seen by the whole run.
        elapsed_s: Training time of the whole run, seconds.
        segment_steps: Steps taken by this call.
        segment_s: Wall time of this call, seconds.
        stopped_by: ``"steps"``, ``"minutes"``, ``"signal"`` or ``"paused"`` (``until_step`` / ``until_s``).
        last_terms: Mean loss terms over the last logging window.
    """

    policy: Policy
    trained_policy: Policy
    steps: int
    samples: int
    elapsed_s: float
    segment_steps: int
    segment_s: float
    stopped_by: str
    last_terms: dict[str, float] = field(default_factory=dict)

    @property
    def it_per_s(self) -> float:
        """Gradient steps per second in this call."""
        return self.segment_steps / self.segment_s if self.segment_s > 0 else 0.0


class Trainer:
    """Trains a policy on episode windows (see the module docstring).

    Args:
        policy: The policy, its normaliser fitted (``policy.fit_normalizer(windows.obs, windows.actions)``).
        windows: Training samples with the policy's ``n_obs_steps``, ``horizon`` and observation width.
        config: Hyperparameters and budget.
        run_dir: Where TensorBoard events and checkpoints go (None: nothing is written).
        data_info: Description of the training data stored in checkpoints (see :mod:`embodia.training.state`).
        progress: Show a progress bar.
        hparams_extra: More rows for the hyperparameter table (e.g. the command line).
        stop_file: When this file appears, training stops after the current step as on SIGINT (how a
            distributed run's driver asks its workers to stop; None: no stop file).
        sync: In a distributed (data-parallel) worker, a :class:`~embodia.training.distributed.TorchDistSync`:
            gradients are averaged over the workers after every backward pass, every worker stops on the chief's
            decision and on any worker's non-finite loss, and only the chief (rank 0) writes to ``run_dir``.

    Raises:
        ValueError: No budget in ``config``, windows that do not fit the policy, or an unfitted normaliser.
    """

    def __init__(
        self,
        policy: Policy,
        windows: EpisodeWindows,
        config: TrainConfig,
        *,
        run_dir: str | Path | None = None,
        data_info: dict[str, Any] | None = None,
        progress: bool = True,
        hparams_extra: dict[str, Any] | None = None,
        sync: Any = None,
        stop_file: str | Path | None = None,
    ) -> None:
        config.check_budget()
        try:
            device = torch.device(config.device)
        except RuntimeError:
            raise ValueError(f"device {config.device!r} is not a torch device (e.g. 'cpu', 'cuda:0')") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {config.device!r}: this torch build or machine has no CUDA")
        pc = policy.config
        fits = (windows.n_obs_steps, windows.horizon, windows.obs_dim, windows.action_dim)
        wanted = (pc.n_obs_steps, pc.horizon, pc.obs_dim, pc.action_dim)
        if fits != wanted:
            raise ValueError(f"windows (To, Tp, Do, Da) = {fits} do not fit the {policy.name!r} policy's {wanted}")
        if not policy.normalizer.is_fitted:
            raise ValueError("fit the policy's normaliser on the training data first (policy.fit_normalizer)")
        self.config = config
        self.policy = policy.to(config.device)
        self.windows = windows
        self.sync = sync
        self.stop_file = None if stop_file is None else Path(stop_file)
        self.rank = 0 if sync is None else sync.rank
        self.world = 1 if sync is None else sync.world
        chief = self.rank == 0
        self.run_dir = None if run_dir is None or not chief else Path(run_dir)
        self.data_info = dict(data_info or {})
        self.progress = progress
        self.hparams_extra = dict(hparams_extra or {})
        self.optimizer = torch.optim.AdamW(
            [p for p in self.policy.parameters() if p.requires_grad],
            lr=config.lr,
            betas=config.betas,
            weight_decay=config.weight_decay,
        )
        self.ema = EMA(self.policy, power=config.ema_power, max_decay=config.ema_max_decay) if config.ema else None
        # Rank 0 draws exactly what a single process draws; other ranks draw their own batches and noise.
        self.rng = np.random.default_rng(config.seed if self.rank == 0 else [config.seed, self.rank])
        torch.manual_seed(config.seed + self.rank)
        self.step = 0
        self.samples = 0
        self.elapsed_s = 0.0
        self.last_checkpoint: Path | None = None
        self._stop_requested = False

    # ------------------------------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """The training state in the layout of :mod:`embodia.training.state` (without the header keys)."""
        return {
            "policy": self.policy.checkpoint_payload(),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "progress": {"step": self.step, "samples": self.samples, "elapsed_s": self.elapsed_s},
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": self.rng.bit_generator.state,
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
            "train_config": self.config.to_dict(),
            "data": self.data_info,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a training checkpoint: weights, EMA, optimiser, progress and RNG states.

        Raises:
            ValueError: The checkpoint has no EMA but this config wants one (or the other way round).
        """
        self.policy.load_checkpoint_weights(state["policy"])
        if (state["ema"] is None) != (self.ema is None):
            raise ValueError(
                f"the checkpoint {'has no' if state['ema'] is None else 'has an'} EMA, the config ema={self.config.ema}"
            )
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        progress = state["progress"]
        self.step, self.samples, self.elapsed_s = (
            int(progress["step"]),
            int(progress["samples"]),
            float(progress["elapsed_s"]),
        )
        if self.rank == 0:
            torch.set_rng_state(state["rng"]["torch"])
            self.rng.bit_generator.state = state["rng"]["numpy"]
            if state["rng"].get("cuda") and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        else:  # the checkpoint holds rank 0's RNG states; other ranks re-seed from (seed, rank, step)
            self.rng = np.random.default_rng([self.config.seed, self.rank, self.step])
            torch.manual_seed(self.config.seed + 1000 * self.rank + self.step)

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoints/last.pt`` and ``policy.pt`` into the run directory (nothing without one)."""
        if self.run_dir is None:
            return None
        path = save_train_state(self.run_dir / CHECKPOINT_NAME, self.state_dict())
        self.run_policy().save(self.run_dir / POLICY_NAME)
        self.last_checkpoint = path
        return path

    def run_policy(self) -> Policy:
        """The run's policy: the EMA copy when EMA is on, else the trained one."""
        return self.policy if self.ema is None else self.ema.model

    # ------------------------------------------------------------------------------------------ training

    def budget_reached(self) -> str | None:
        """``"steps"`` or ``"minutes"`` once that budget is used up, else None."""
        c = self.config
        if c.steps is not None and self.step >= c.steps:
            return "steps"
        if c.budget_s is not None and self.elapsed_s >= c.budget_s:
            return "minutes"
        return None

    def progress_fraction(self) -> float:
        """Fraction of the budget used: the larger of steps done / steps and time used / time budget."""
        c = self.config
        fractions = [0.0]
        if c.steps is not None:
            fractions.append(self.step / c.steps)
        if c.budget_s is not None:
            fractions.append(self.elapsed_s / c.budget_s)
        return min(1.0, max(fractions))

    def train_step(self) -> dict[str, float]:
        """One gradient step; returns its terms (``loss``, the policy's terms, ``lr``, ``grad_norm``).

        Raises:
            TrainingDivergedError: Non-finite loss, term or gradient norm (no parameter was changed).
        """
        c = self.config
        batch = self.windows.sample(c.batch_size, self.rng)
        self.policy.train()
        loss, terms = self.policy.compute_loss(batch)
        terms = {"loss": float(loss.detach()), **{k: v for k, v in terms.items() if k != "loss"}}
        bad = [k for k, v in terms.items() if not math.isfinite(v)]
        if self.sync is not None and self.sync.any(bool(bad)) and not bad:  # every worker stops together
            raise TrainingDivergedError(self.step + 1, "non-finite loss on another worker", terms, self.last_checkpoint)
        if bad:
            raise TrainingDivergedError(self.step + 1, f"non-finite {', '.join(bad)}", terms, self.last_checkpoint)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        if self.sync is not None:
            self.sync.average_gradients(params)
        max_norm = c.grad_clip if c.grad_clip > 0 else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        if not math.isfinite(grad_norm):
            self.optimizer.zero_grad(set_to_none=True)
            raise TrainingDivergedError(self.step + 1, f"gradient norm is {grad_norm}", terms, self.last_checkpoint)
        lr = c.lr * lr_factor(self.step, self.progress_fraction(), c.warmup_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.policy)
        self.step += 1
        self.samples += c.batch_size * self.world
        return {**terms, "lr": lr, "grad_norm": grad_norm}

    def train(self, *, until_step: int | None = None, until_s: float | None = None) -> TrainResult:
        """Train until the budget is used up (or SIGINT/SIGTERM), checkpointing along the way.

        ``until_step`` / ``until_s`` pause the run earlier, at that many gradient steps or seconds of training
        (``stopped_by == "paused"``), without changing the schedule, which still spans the whole budget: call
        ``train`` again to go on. This is how a learning curve is evaluated along one run.

        Returns:
            A :class:`TrainResult`. The run's policy is in eval mode.

        Raises:
            TrainingDivergedError: A step went non-finite (the last checkpoint stays as it was).
        """
        c = self.config
        writer = self._open_writer()
        bar = self._open_bar()
        seg_start = time.perf_counter()
        seg_step0, elapsed0 = self.step, self.elapsed_s
        last_ckpt_elapsed = self.elapsed_s
        window: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)  # a term may appear in some steps only (e.g. per unroll index)
        window_n, window_t0 = 0, seg_start
        last_terms: dict[str, float] = {}
        stopped_by = None
        try:
            with self._stop_on_signals():
                while True:
                    if self.stop_file is not None and self.stop_file.exists():
                        self._stop_requested = True
                    stopped_by = self.budget_reached() or ("signal" if self._stop_requested else None)
                    if stopped_by is None and (
                        (until_step is not None and self.step >= until_step)
                        or (until_s is not None and self.elapsed_s >= until_s)
                    ):
                        stopped_by = "paused"
                    if self.sync is not None:  # the chief's clock and signals decide for every worker
                        reason, self.elapsed_s = self.sync.from_chief(STOP_REASONS.index(stopped_by), self.elapsed_s)
                        stopped_by = STOP_REASONS[reason]
                    if stopped_by:
                        break
                    terms = self.train_step()
                    self.elapsed_s = elapsed0 + (time.perf_counter() - seg_start)  # workers: the chief's, next step
                    for k, v in terms.items():
                        window[k] += v
                        counts[k] += 1
                    window_n += 1
                    if self.step % c.log_every == 0:
                        last_terms = self._log(writer, bar, window, counts, window_n, time.perf_counter() - window_t0)
                        window, counts = defaultdict(float), defaultdict(int)
                        window_n, window_t0 = 0, time.perf_counter()
                    due = self.elapsed_s - last_ckpt_elapsed >= 60.0 * c.checkpoint_minutes
                    if self.step % c.checkpoint_every == 0 or due:
                        self.save_checkpoint()
                        last_ckpt_elapsed = self.elapsed_s
            if window_n:
                last_terms = self._log(writer, bar, window, counts, window_n, time.perf_counter() - window_t0)
            if self.step > seg_step0 or self.last_checkpoint is None:
                self.save_checkpoint()
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        self.policy.eval()
        return TrainResult(
            policy=self.run_policy().eval(),
            trained_policy=self.policy,
            steps=self.step,
            samples=self.samples,
            elapsed_s=self.elapsed_s,
            segment_steps=self.step - seg_step0,
            segment_s=time.perf_counter() - seg_start,
            stopped_by=stopped_by or "steps",
            last_terms=last_terms,
        )

    # ------------------------------------------------------------------------------------------ helpers

    def hparams_table(self) -> str:
        """The hyperparameters as a Markdown table (policy config, train config, data, extras)."""
        rows = [("policy", "name", self.policy.name), ("policy", "parameters", self.policy.num_parameters())]
        rows += [("policy", k, v) for k, v in self.policy.config.to_dict().items()]
        rows += [("train", k, v) for k, v in self.config.to_dict().items()]
        rows += [("data", k, v) for k, v in self.data_info.items()]
        rows += [("run", k, v) for k, v in self.hparams_extra.items()]
        lines = ["| group | name | value |", "|---|---|---|"]
        lines += [f"| {g} | {k} | {str(v).replace('|', '/')} |" for g, k, v in rows]
        return "\n".join(lines)

    def _open_writer(self) -> Any:
        if self.run_dir is None:
            return None
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: on resume, events the interrupted run logged after its checkpoint are hidden in TensorBoard.
        log_dir = self.run_dir / TENSORBOARD_DIR
        writer = SummaryWriter(str(log_dir), purge_step=self.step + 1 if self.step > 0 else None)
        if self.step == 0:
            writer.add_text("hparams", self.hparams_table(), global_step=0)
        return writer

    def _open_bar(self) -> tqdm:
        c = self.config
        if c.steps is not None:
            return tqdm(
                total=c.steps,
                initial=self.step,
                unit="step",
                desc=f"train {self.policy.name}",
                disable=not self.progress,
            )
        return tqdm(
            total=round(c.budget_s or 0),
            initial=round(self.elapsed_s),
            unit="s",
            desc=f"train {self.policy.name}",
            disable=not self.progress,
        )

    def _log(
        self, writer: Any, bar: tqdm, window: dict[str, float], counts: dict[str, int], n: int, seconds: float
    ) -> dict[str, float]:
        means = {k: v / counts[k] for k, v in window.items()}
        if writer is not None:
            for k, v in means.items():
                writer.add_scalar(f"train/{k}", v, self.step)
            if seconds > 0:
                writer.add_scalar("perf/samples_per_s", n * self.config.batch_size * self.world / seconds, self.step)
                writer.add_scalar("perf/it_per_s", n / seconds, self.step)
        if self.config.steps is not None:
            bar.n = self.step
        else:
            bar.n = min(round(self.elapsed_s), bar.total)
        bar.set_postfix(step=self.step, loss=f"{means['loss']:.4g}", lr=f"{means['lr']:.2e}", refresh=False)
        bar.refresh()
        return means

    @contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM set a stop flag (checked between steps); a second SIGINT raises KeyboardInterrupt."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(signum: int, frame: Any) -> None:
            if self._stop_requested and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self._stop_requested = True

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
