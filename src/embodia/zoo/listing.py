"""``embodia zoo list``: every recipe with the figures recorded for its shipped checkpoint."""

from __future__ import annotations

from typing import Any

from embodia.zoo.recipes import RECIPES, Recipe
from embodia.zoo_store import records

__all__ = ["format_figures", "format_zoo"]


def format_figures(recipe: Recipe, record: dict[str, Any] | None) -> str:
    """One line of recorded figures: the headline metric with its 95 % CI, ms per chunk, evaluations per chunk."""
    if record is None:
        return "not shipped (train it with `embodia zoo train " + recipe.name + "`)"
    if "figures" not in record:
        return (
            "shipped without recorded figures (its build was interrupted: rerun bench/zoo_build.py " + recipe.name + ")"
        )
    fig = record["figures"]
    head = fig[recipe.metric]
    low, high = head["ci95"]
    parts = [f"{recipe.metric} {head['mean']:.3f} [{low:.2f}, {high:.2f}] on {record['eval']['episodes']} episodes"]
    if fig.get("plan_ms") is not None:
        parts.append(f"{fig['plan_ms']:.1f} ms/chunk")
    if fig.get("nfe") is not None:
        parts.append(f"NFE {fig['nfe']:.2f}")
    if fig.get("act_ms") is not None:
        parts.append(f"{fig['act_ms']:.2f} ms/action")
    trained = record.get("trained", {})
    if trained:
        parts.append(f"{trained['steps']} steps in {trained['elapsed_s']:.0f} s")
    return ", ".join(parts)


def format_zoo(recipes: bool = False) -> str:
    """The listing: name, env, what it is, recorded figures (and the commands with ``recipes``)."""
    shipped = records()
    lines = []
    for name, recipe in RECIPES.items():
        record = shipped.get(name)
        lines.append(f"zoo:{name}  ({recipe.env_id})")
        lines.append(f"    {recipe.summary}")
        lines.append(f"    {format_figures(recipe, record)}")
        if recipe.claim:
            lines.append(f"    note: {recipe.claim}")
        eval_args = recipe.eval_args(f"zoo:{name}", f"runs/eval/{name}")
        lines.append("    measured by: embodia " + " ".join(eval_args))
        if recipes:
            lines.extend("    $ " + line for line in recipe.shell().splitlines())
    return "\n".join(lines)
