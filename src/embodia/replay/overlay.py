"""Text overlays for replay frames: the instruction, the step and running metrics, drawn with Pillow."""

from __future__ import annotations

import textwrap

import numpy as np

from embodia.data.episodes import Episode

__all__ = ["draw_overlay", "overlay_lines"]

_INFO_LABELS = {"distance_to_goal": "to goal {:.1f} m", "phase": "phase {:.0f}", "collision": "contact {:.0f}"}


def overlay_lines(episode: Episode, t: int) -> list[str]:
    """The overlay text of stored state ``t`` (0 = the reset state): instruction, step, return so far, infos.

    The instruction is the one observed at ``t`` when the episode stores it per step (UrbanNav changes it between
    phases), else the episode's. At the last state the episode's final metrics are added.
    """
    obs = episode.observations
    instruction = episode.instruction
    if isinstance(obs, dict) and "instruction" in obs:
        instruction = str(obs["instruction"][t])
    steps = len(episode.actions)
    lines = textwrap.wrap(instruction, width=60)[:3] if instruction else []
    reward = float(np.sum(episode.rewards[:t])) if t else 0.0
    status = [f"step {t}/{steps}", f"return {reward:+.2f}"]
    if t:
        for key, label in _INFO_LABELS.items():
            if key in episode.infos:
                status.append(label.format(float(np.asarray(episode.infos[key])[t - 1])))
    lines.append("  ".join(status))
    if t == steps and episode.metrics:
        shown = [k for k in ("tc", "success", "spd", "ndtw", "coverage") if k in episode.metrics]
        lines.append("  ".join(f"{k} {episode.metrics[k]:.3g}" for k in shown))
    return lines


def draw_overlay(frame: np.ndarray, lines: list[str]) -> np.ndarray:
    """``frame`` ``(H, W, 3)`` uint8 with ``lines`` written top-left on a translucent band; returns a new array."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(frame)
    font = ImageFont.load_default()
    line_h = 12
    band = Image.new("RGBA", image.size, (0, 0, 0, 0))
    ImageDraw.Draw(band).rectangle([0, 0, image.width, 4 + line_h * len(lines)], fill=(0, 0, 0, 140))
    image = Image.alpha_composite(image.convert("RGBA"), band)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((4, 2 + line_h * i), line, fill=(255, 255, 255, 255), font=font)
    return np.asarray(image.convert("RGB"))
