"""Run episodes on Ray actors with :class:`RolloutWorker`'s API: ``run(specs, out_dir) -> results``.

Each actor holds one :class:`~embodia.runtime.rollout.RolloutWorker` (its own env and controller, torch at one
thread). The pool keeps one episode in flight per actor and hands out the next spec as soon as an actor is free.
Episodes are deterministic per seed and their files are written atomically by the actor, so the pool gives
*exactly once* semantics: if an actor dies mid-episode (killed, OOM, node lost), the pool starts a replacement
actor and runs the same spec again; the interrupted episode left no file (only a hidden temp file, removed by
the atomic writer or skipped by readers), and its re-run writes the one file. Results come back in spec order,
identical to a sequential run with the same specs.

Ray is started on demand: ``address=None`` starts a local instance bounded to ``workers`` CPUs, without the
dashboard; ``address="HOST:PORT"`` joins a running cluster (``ray start --head --port PORT``), after checking
that the address accepts connections (an unreachable address fails in seconds with a clear message instead of
Ray's long retry loop).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from embodia.ray_setup import init_ray
from embodia.runtime.controller import ControllerFactory
from embodia.runtime.rollout import EpisodeResult, EpisodeSpec

__all__ = ["RayRolloutPool"]


def _make_actor_class() -> Any:
    import ray

    @ray.remote(num_cpus=1, max_restarts=0)
    class _RolloutActor:
        """A Ray actor around one :class:`RolloutWorker` (one thread for torch, one env)."""

        def __init__(
            self,
            env_id: str,
            env_kwargs: dict[str, Any] | None,
            controller_fn: ControllerFactory | None,
            action_noise: float = 0.0,
            labeller_fn: ControllerFactory | None = None,
        ) -> None:
            import torch

            import embodia  # noqa: F401  (registers the environments in this process)
            from embodia.runtime.rollout import RolloutWorker

            torch.set_num_threads(1)
            self.worker = RolloutWorker(env_id, env_kwargs, controller_fn, action_noise, labeller_fn)

        def pid(self) -> int:
            return os.getpid()

        def run_episode(self, spec: EpisodeSpec, out_dir: str | None) -> EpisodeResult:
            return self.worker.run_episode(spec, out_dir)

    return _RolloutActor


class RayRolloutPool:
    """:class:`RolloutWorker`'s ``run`` across ``workers`` Ray actors (see the module docstring).

    Args:
        env_id: A registered Gymnasium id.
        env_kwargs: Keyword arguments for ``gymnasium.make``.
        controller_fn: Builds the controller from the env (picklable; default: the env's scripted expert).
        action_noise: DART noise injection (:class:`~embodia.runtime.rollout.RolloutWorker`).
        labeller_fn: DAgger relabelling (:class:`~embodia.runtime.rollout.RolloutWorker`; picklable).
        workers: Number of actors.
        address: A running cluster's ``HOST:PORT``; None starts (or reuses) a local Ray instance.
        max_restarts: Replacement actors the pool may start in one ``run`` before giving up.
        progress: Show a progress bar over episodes.

    Raises:
        ValueError: Bad ``workers``, an unreachable ``address``, or an env the actors cannot make.
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict[str, Any] | None = None,
        controller_fn: ControllerFactory | None = None,
        *,
        action_noise: float = 0.0,
        labeller_fn: ControllerFactory | None = None,
        workers: int = 2,
        address: str | None = None,
        max_restarts: int = 8,
        progress: bool = True,
    ) -> None:
        import ray

        init_ray(workers, address)
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})
        self.controller_fn = controller_fn
        self.action_noise = action_noise
        self.labeller_fn = labeller_fn
        self.max_restarts = max_restarts
        self.progress = progress
        self.restarts = 0
        self._actor_class = _make_actor_class()
        self.actors = [self._new_actor() for _ in range(workers)]
        try:  # surface construction errors (bad env id or kwargs) here, once
            ray.get([actor.pid.remote() for actor in self.actors])
        except ray.exceptions.RayActorError as err:
            self.close()
            raise ValueError(f"cannot start rollout actors for {env_id}: {_cause(err)}") from None

    def _new_actor(self) -> Any:
        return self._actor_class.remote(
            self.env_id, self.env_kwargs, self.controller_fn, self.action_noise, self.labeller_fn
        )

    def run(self, specs: Iterable[EpisodeSpec], out_dir: str | os.PathLike | None = None) -> list[EpisodeResult]:
        """Run every spec once (re-running those whose actor died) and return the results in spec order.

        Raises:
            RuntimeError: More than ``max_restarts`` actors died in this call.
        """
        import ray

        specs = list(specs)
        out = None if out_dir is None else str(Path(out_dir).resolve())  # actors may run in another directory
        self.restarts = 0
        pending: deque[int] = deque(range(len(specs)))
        results: list[EpisodeResult | None] = [None] * len(specs)
        in_flight: dict[Any, tuple[int, int]] = {}  # future -> (actor slot, spec position)
        bar = tqdm(total=len(specs), desc=f"rollouts {self.env_id}", unit="ep", disable=not self.progress)
        try:
            free = list(range(len(self.actors)))
            while pending or in_flight:
                while pending and free:
                    slot, pos = free.pop(), pending.popleft()
                    in_flight[self.actors[slot].run_episode.remote(specs[pos], out)] = (slot, pos)
                done, _ = ray.wait(list(in_flight), num_returns=1)
                slot, pos = in_flight.pop(done[0])
                try:
                    results[pos] = ray.get(done[0])
                    bar.update(1)
                except (ray.exceptions.RayActorError, ray.exceptions.OutOfMemoryError) as err:
                    self._replace(slot, specs[pos], err)
                    pending.appendleft(pos)  # the same episode again, on the replacement actor
                free.append(slot)
        finally:
            bar.close()
        return [r for r in results if r is not None]

    def _replace(self, slot: int, spec: EpisodeSpec, err: Exception) -> None:
        self.restarts += 1
        if self.restarts > self.max_restarts:
            raise RuntimeError(
                f"{self.restarts} rollout actors died (last during episode {spec.index}, seed {spec.seed}: "
                f"{_cause(err)}); giving up after max_restarts={self.max_restarts}"
            )
        import ray

        ray.kill(self.actors[slot])  # in case it is only unreachable, so it frees its CPU
        self.actors[slot] = self._new_actor()

    def pids(self) -> list[int]:
        """Process ids of the current actors (for tests and diagnostics)."""
        import ray

        return ray.get([actor.pid.remote() for actor in self.actors])

    def close(self) -> None:
        """Stop the actors (the Ray instance stays up for later pools)."""
        import ray

        for actor in self.actors:
            ray.kill(actor)
        self.actors = []


def _cause(err: Exception) -> str:
    text = " ".join(str(err).split())
    return text[:300] + ("..." if len(text) > 300 else "")
