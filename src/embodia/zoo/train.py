"""``embodia zoo train NAME``: retrain a zoo entry from scratch by running its recipe's commands.

The recipe's ``embodia collect`` and ``embodia train`` commands (:mod:`embodia.zoo.recipes`) run as child
processes, exactly as a user would type them, into ``<out>/demos`` and ``<out>/run``. The demonstrations' digest
is compared with the shipped entry's (the expert and the simulation are deterministic per seed, so they match on
this machine's library versions).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from embodia.zoo.recipes import recipe

__all__ = ["RecipeError", "data_digest", "train_entry"]


class RecipeError(RuntimeError):
    """A recipe's command failed (it has printed its own one-line error)."""


def data_digest(directory: str | os.PathLike) -> str:
    """Hex SHA-256 over a directory's episodes (sorted by file name): :func:`embodia.data.digest.episodes_digest`.

    Seed, actions and MuJoCo states (numeric observations for episodes without states); the value is what
    ``zoo/records/*.json`` record as ``data_digest``.

    Raises:
        ValueError: No episode files in ``directory``.
    """
    from embodia.data.digest import episodes_digest
    from embodia.data.episodes import episode_files, read_episode

    files = episode_files(directory)
    if not files:
        raise ValueError(f"{directory}: no episode files to digest")
    return episodes_digest(read_episode(path) for path in files)


def train_entry(
    name: str,
    out: str | os.PathLike,
    *,
    steps: int | None = None,
    overwrite: bool = False,
    demos_from: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Run ``name``'s recipe into ``out``; returns ``{"policy", "data_digest", "commands", "recorded_digest"}``.

    Args:
        name: A zoo entry (see ``embodia zoo list``).
        out: Directory for ``demos/`` and ``run/``.
        steps: A reduced training budget instead of the recipe's (for a quick check that the recipe runs).
        overwrite: Retrain into an ``out`` that already holds a run.
        demos_from: Copy the demonstrations from this directory instead of running the collect command (another
            entry's with the same collect command; ``bench/zoo_build.py`` uses it). The digest still checks them.

    Raises:
        ValueError: Unknown name, bad ``steps``, or ``out/run`` or ``out/demos`` holds files without ``overwrite``.
        RecipeError: A recipe command failed (its exit status and command line are named).
    """
    from embodia.zoo_store import records

    entry = recipe(name)
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"--steps must be an integer >= 1, got {steps!r}")
    out = Path(out)
    demos, run = out / "demos", out / "run"
    for existing in (run, demos):
        if existing.exists() and any(existing.iterdir()) and not overwrite:
            raise ValueError(f"{existing} already holds files: pass --overwrite to retrain {name} into {out}")
    commands = entry.commands(str(demos), str(run))
    if steps is not None:
        train = commands[1]
        train[train.index("--steps") + 1] = str(steps)
        train[train.index("--warmup-steps") + 1] = str(min(100, steps))
    if demos_from is not None:
        import shutil

        shutil.copytree(demos_from, demos, dirs_exist_ok=True)
        print(f"demonstrations copied from {demos_from} (same collect command)", flush=True)
        commands = commands[1:]
    for args in commands:
        print("embodia " + " ".join(args), flush=True)
        # A child process, as a user would run it (and no import of the command line from this package).
        status = subprocess.run([sys.executable, "-m", "embodia.cli", *args], check=False).returncode
        if status in (130, -signal.SIGINT):
            raise KeyboardInterrupt
        if status != 0:
            raise RecipeError(f"zoo recipe {name}: `embodia {' '.join(args)}` exited with status {status}")
    digest = data_digest(demos)
    recorded = records().get(name, {}).get("data_digest")
    return {"policy": str(run / "policy.pt"), "data_digest": digest, "recorded_digest": recorded, "commands": commands}
