"""How every zoo entry is made: the exact ``embodia collect`` / ``embodia train`` commands and how it is measured.

A recipe's commands are ``embodia`` argument lists with two placeholders, ``{demos}`` (the demonstrations'
directory) and ``{run}`` (the training run's directory); :func:`embodia.zoo.train.train_entry` fills them in and
runs them. The figures each shipped checkpoint scored, and the digests of its file and its demonstrations, are in
``records/NAME.json`` (:mod:`embodia.zoo_store`), written by ``bench/zoo_build.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["RECIPES", "Recipe", "recipe"]

NAV_ENV = "embodia/UrbanNav-Return-v0"
EVAL_SEED = 1_000_000
"""First held-out seed of every entry's recorded evaluation (demonstrations use seeds from 0)."""


@dataclass(frozen=True)
class Recipe:
    """One zoo entry's recipe.

    Attributes:
        name: The entry's name (``zoo:NAME``).
        summary: One line: what it is.
        env_id: The environment it is trained and evaluated on.
        collect: ``embodia collect`` arguments (with ``{demos}``).
        train: ``embodia train`` arguments (with ``{demos}`` and ``{run}``), ending in the policy's subcommand
            and flags (``policy:NAME --policy.FIELD VALUE ...``, from :attr:`policy` and :attr:`policy_fields`).
        metric: The headline metric of its evaluation (``"tc"`` for navigation, ``"success"`` otherwise).
        eval_episodes: Episodes of the recorded evaluation (seeds ``EVAL_SEED`` on).
        claim: Where the policy is expected to work and where not (shown by ``embodia zoo list``).
        policy: The policy trained (registry name).
        policy_fields: The policy's config fields the recipe sets, as ``(name, value)`` pairs.
    """

    name: str
    summary: str
    env_id: str
    collect: tuple[str, ...]
    train: tuple[str, ...]
    metric: str
    eval_episodes: int
    claim: str = ""
    policy: str = ""
    policy_fields: tuple[tuple[str, Any], ...] = ()

    def policy_config(self) -> Any:
        """The config of the policy the train command trains (``embodia.policies.factory.policy_config``)."""
        from embodia.policies.factory import policy_config

        return policy_config(self.policy, **dict(self.policy_fields))

    def commands(self, demos: str, run: str) -> list[list[str]]:
        """The ``embodia`` argument lists with the placeholders filled in: collect, then train."""
        fill = {"{demos}": demos, "{run}": run}
        return [[fill.get(arg, arg) for arg in self.collect], [fill.get(arg, arg) for arg in self.train]]

    def eval_args(self, checkpoint: str, out: str) -> list[str]:
        """``embodia eval`` arguments that reproduce the recorded figures."""
        return [
            "eval", "--checkpoint", checkpoint, "--env", self.env_id, "--episodes", str(self.eval_episodes),
            "--seed", str(EVAL_SEED), "--out", out,
        ]  # fmt: skip

    def train_steps(self) -> int:
        """The ``--steps`` budget of the train command."""
        return int(self.train[self.train.index("--steps") + 1])

    def shell(self) -> str:
        """The recipe as shell commands (for the README, ``embodia zoo list --recipes`` and reports)."""
        lines = []
        for args in self.commands("runs/zoo/" + self.name + "/demos", "runs/zoo/" + self.name + "/run"):
            lines.append("embodia " + " ".join(_quote(a) for a in args))
        return "\n".join(lines)


def _quote(arg: str) -> str:
    return f"'{arg}'" if any(c in arg for c in ' {}"[],') else arg


def _collect(env_id: str, episodes: int, workers: int = 2) -> tuple[str, ...]:
    return (
        "collect", "--env", env_id, "--episodes", str(episodes), "--seed", "0", "--out", "{demos}",
        "--workers", str(workers), "--overwrite", "--no-progress",
    )  # fmt: skip


def _train(policy: str, steps: int, fields: dict[str, Any] | None = None) -> tuple[str, ...]:
    args = [
        "train", "--data", "{demos}", "--run", "{run}", "--steps", str(steps), "--batch-size", "64", "--lr", "1e-3",
        "--warmup-steps", "100", "--seed", "0", "--overwrite", "--no-progress", f"policy:{policy}",
    ]  # fmt: skip
    for name, value in (fields or {}).items():
        args += [f"--policy.{name.replace('_', '-')}", *_flag_values(value)]
    return tuple(args)


def _flag_values(value: Any) -> list[str]:
    """A config value as command-line words (a tuple: one word per item)."""
    if isinstance(value, tuple | list):
        return [str(v) for v in value]
    return [str(value)]


def _navigator(name: str, memory: str, summary: str, claim: str) -> Recipe:
    fields = {"memory": memory, "act_from_phase": 1}  # the inner policy: EBT-Policy with the navigator's defaults
    train = _train("navigator", 3000, fields)
    return Recipe(
        name, summary, NAV_ENV, _collect(NAV_ENV, 40), train, "tc", 40, claim, "navigator", tuple(fields.items())
    )


_DDIM10 = {"inference": "ddim", "num_inference_steps": 10}
_MANIPULATION = {
    "sided": ("embodia/DetourReach-Sided-v0", "DetourReach-Sided (one side per start)"),
    "detour": ("embodia/DetourReach-v0", "DetourReach-v0 (both sides from every start, 50/50)"),
    "pusht": ("embodia/PushT-v0", "PushT-v0 (95 % coverage of the goal T)"),
}
_POLICIES = {
    # name: (policy, steps, kwargs, what)
    "ebt": ("ebt", 2000, None, "EBT-Policy (K = 2)"),
    "diffusion": ("diffusion", 4000, _DDIM10, "Diffusion Policy (DDIM-10)"),
    "mlp": ("mlp", 4000, None, "MLP-BC"),
}
_CLAIMS = {
    "sided": "the demonstrations are unimodal per start: every policy's claim applies",
    "detour": "bimodal demonstrations: EBT-Policy and MLP-BC learn the mean (head-on) and fail; Diffusion keeps both",
    "pusht": "not learned at this budget by any policy (0.00 up to 8k steps in bench/policy_compare.py; see README)",
}

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in [
        _navigator(
            "memory-agent-ebt",
            "full",
            "Learned navigator: Mem4Nav memory + street planner + EBT-Policy controller (hand-over protocol)",
            "returns to a landmark it passed, out of view: needs memory",
        ),
        _navigator(
            "memory-agent-ebt-no-memory",
            "none",
            "The same navigator retrained without memory (the baseline)",
            "without memory the goal is only known when in view: expected to fail",
        ),
        *[
            Recipe(
                f"{env}-{key}",
                f"{what} on {label}",
                env_id,
                _collect(env_id, 200),
                _train(policy, steps, kwargs),
                "success",
                50,
                _CLAIMS[env],
                policy,
                tuple((kwargs or {}).items()),
            )
            for env, (env_id, label) in _MANIPULATION.items()
            for key, (policy, steps, kwargs, what) in _POLICIES.items()
        ],
    ]
}


def recipe(name: str) -> Recipe:
    """The recipe of ``name``.

    Raises:
        ValueError: An unknown name (the message lists the known ones).
    """
    if name not in RECIPES:
        raise ValueError(f"unknown zoo entry {name!r}; known: {', '.join(sorted(RECIPES))}")
    return RECIPES[name]
