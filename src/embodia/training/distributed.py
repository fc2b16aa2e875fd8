"""``train(..., workers=N)``: the same training loop, data-parallel on N Ray Train workers (gloo on CPU).

The owner (:func:`embodia.training.entry.train`) prepares the run once (checks, data, policy, the state to resume
from); Ray Train's ``TorchTrainer`` starts N worker processes and a gloo process group between them, and every
worker starts from that prepared run (sent once through the object store), draws its own batches, and after every
backward pass the gradients are averaged over the workers (one flattened all-reduce: the arithmetic of
DistributedDataParallel, done by hand because EBT's loss needs second-order gradients, which DDP's hooks do not
support). So every worker holds the same weights after every step, and a step sees ``N x batch_size`` samples.
Rank 0, the chief, writes TensorBoard, the checkpoints, ``config.json`` and ``summary.json``; the others only
compute. A resumed or restarted worker group continues the chief's checkpoint in every worker (the run directory
must be on storage every worker can read, as it is on one machine).
"""

from __future__ import annotations

import dataclasses
import json
import signal
import threading
from pathlib import Path
from typing import Any

import torch

from embodia.training.config import TrainConfig
from embodia.training.run import RunSetup, execute_run
from embodia.training.state import load_train_state
from embodia.training.summary import SUMMARY_NAME, TrainSummary
from embodia.training.trainer import CHECKPOINT_NAME, TrainingDivergedError

__all__ = ["DistributedTrainingError", "TorchDistSync", "train_on_ray"]


class TorchDistSync:
    """Collectives a data-parallel :class:`~embodia.training.trainer.Trainer` needs, on ``torch.distributed``.

    Attributes:
        rank: This worker's rank.
        world: Number of workers.
        is_chief: Whether this worker is rank 0.
    """

    def __init__(self) -> None:
        import torch.distributed as dist

        if not dist.is_initialized():
            raise RuntimeError("TorchDistSync needs an initialised torch.distributed process group")
        self._dist = dist
        self.rank = dist.get_rank()
        self.world = dist.get_world_size()
        self.is_chief = self.rank == 0

    def average_gradients(self, params: list[torch.nn.Parameter]) -> None:
        """Replace every parameter's gradient by its mean over the workers (a missing gradient counts as zero)."""
        grads = []
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            grads.append(p.grad)
        flat = torch.cat([g.reshape(-1) for g in grads])  # (P,)
        self._dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any worker."""
        t = torch.tensor([1.0 if flag else 0.0])
        self._dist.all_reduce(t, op=self._dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def from_chief(self, reason: int, elapsed_s: float) -> tuple[int, float]:
        """Rank 0's stop reason and training time, on every worker (so every worker uses the same lr schedule)."""
        t = torch.tensor([float(reason), float(elapsed_s)], dtype=torch.float64)
        self._dist.broadcast(t, src=0)
        return int(t[0].item()), float(t[1].item())


STARTED_FILE = ".started"
"""Touched by the chief when a worker group starts; removed by the driver before ``fit()`` (so its presence at a
start means a restart)."""
RESTARTS_FILE = "restarts.jsonl"
"""One line per worker-group restart: the step it resumed from."""
STOP_FILE = ".stop"
"""Created in the run directory by the driver on SIGINT/SIGTERM; the chief stops (with a checkpoint) when it sees it."""


class DistributedTrainingError(RuntimeError):
    """Distributed training failed in a worker; the message is the worker's error."""


def _worker_loop(cfg: dict[str, Any]) -> None:
    """The body of every Ray Train worker: train the owner's prepared run, with gradient averaging.

    A checkpoint in the run directory (a resumed run, or an earlier worker group's after a restart) is continued.
    """
    torch.set_num_threads(1)
    import ray

    import embodia  # noqa: F401  (registers the environments)

    config = TrainConfig.from_dict(cfg["train_config"])
    setup: RunSetup = ray.get(cfg["setup"])
    checkpoint = setup.run_dir / CHECKPOINT_NAME
    # The owner has claimed the run directory: a checkpoint there belongs to this run (resumed, or written by an
    # earlier worker group of this fit() that Ray Train restarted); every worker continues from it.
    if checkpoint.exists():
        state = load_train_state(checkpoint)
        setup.policy.load_checkpoint_weights(state["policy"])
        setup = dataclasses.replace(setup, state=state)
    sync = TorchDistSync()
    if sync.is_chief:
        started = setup.run_dir / STARTED_FILE
        if started.exists():  # an earlier worker group of this fit() ran: Ray Train restarted it after a loss
            step = int(setup.state["progress"]["step"]) if setup.state is not None else 0
            with open(setup.run_dir / RESTARTS_FILE, "a") as fh:
                fh.write(json.dumps({"resumed_at_step": step}) + "\n")
        started.touch()
    execute_run(setup, config, progress=cfg["progress"], sync=sync, stop_file=setup.run_dir / STOP_FILE)


def train_on_ray(
    setup: RunSetup, config: TrainConfig, *, workers: int, ray_address: str | None, max_failures: int, progress: bool
) -> TrainSummary:
    """Train a prepared run on ``workers`` Ray Train workers (arguments: :func:`embodia.training.entry.train`).

    Raises:
        TrainingDivergedError: A step went non-finite (rank 0's error, with the step and the loss terms).
        DistributedTrainingError: Training failed in a worker (the worker's error is in the message).
    """
    import ray

    from embodia.ray_setup import init_ray

    init_ray(workers, ray_address)
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    run_dir = setup.run_dir
    loop_config = {"setup": ray.put(setup), "train_config": config.to_dict(), "progress": progress}
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config=loop_config,
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=False, resources_per_worker={"CPU": 1}),
        torch_config=TorchConfig(backend="gloo"),
        run_config=RunConfig(
            name="ray_train",
            storage_path=str(run_dir / "ray"),
            # A lost worker group restarts up to max_failures times and resumes from the chief's last checkpoint;
            # beyond that (and by default) the run fails (resume it with --resume).
            failure_config=FailureConfig(
                max_failures=max_failures, controller_failure_limit=0, max_preemption_failures=max_failures
            ),
        ),
    )
    stop_file = run_dir / STOP_FILE
    stop_file.unlink(missing_ok=True)
    (run_dir / STARTED_FILE).unlink(missing_ok=True)
    (run_dir / RESTARTS_FILE).unlink(missing_ok=True)
    _fit_stoppable(trainer, stop_file)
    summary = TrainSummary.from_dict(json.loads((run_dir / SUMMARY_NAME).read_text()))  # the chief's
    restarts_file = run_dir / RESTARTS_FILE
    restarts = [json.loads(line) for line in restarts_file.read_text().splitlines()] if restarts_file.exists() else []
    for i, restart in enumerate(restarts, 1):
        step = restart["resumed_at_step"]
        print(f"worker group restart {i}/{max_failures}: a worker was lost; resumed from step {step}")
    if restarts:  # summary.json says so too
        summary.restarts = restarts
        summary.write(run_dir)
    return summary


def _fit_stoppable(trainer: Any, stop_file: Path) -> None:
    """``trainer.fit()`` in a thread; SIGINT/SIGTERM create ``stop_file`` so the chief checkpoints and stops."""
    outcome: dict[str, BaseException] = {}

    def fit() -> None:
        try:
            trainer.fit()
        except BaseException as err:  # re-raised in the calling thread
            outcome["error"] = err

    def request_stop(signum: int, frame: Any) -> None:
        stop_file.touch()

    thread = threading.Thread(target=fit, name="ray-train-fit", daemon=True)
    main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:
        thread.start()
        while thread.is_alive():
            thread.join(timeout=0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop_file.unlink(missing_ok=True)
    if "error" in outcome:
        raise _worker_error(outcome["error"]) from None


def _worker_error(err: BaseException) -> BaseException:
    """The error to report for a failed fit: the chief's (or the first) worker's own exception when Ray has it."""
    failures = getattr(err, "worker_failures", None) or {}
    for _rank, failure in sorted(failures.items()):
        if isinstance(failure, TrainingDivergedError) and "another worker" not in failure.problem:
            return failure
    if failures:
        rank, failure = sorted(failures.items())[0]
        return DistributedTrainingError(f"distributed training failed in worker {rank}: {failure}")
    lines = [line for line in str(err).splitlines() if line.strip()]
    return DistributedTrainingError(f"distributed training failed: {lines[-1] if lines else type(err).__name__}")
