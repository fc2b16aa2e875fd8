"""The learned observation encoder of UrbanNav agents: rays, instruction (and optional rgb) -> embedding ``v_t``.

* Rays: the depth image ``(E, A)`` as proximity ``1 - depth / max_range`` (one channel per elevation row) and the
  semantic image as a per-azimuth class histogram over the rows (``C + 1`` channels), stacked to
  ``(E + C + 1, A)`` channels and read by circular 1-D convolutions over azimuth (the fan wraps around 360
  degrees), pooled to 8 sectors.
* Instruction: token ids ``(L,)`` (``embodia.agents.tokenizer``) embedded with learned word and position tables,
  mean-pooled over real tokens, then an MLP; word order reaches the pool through the position table.
* rgb (optional): a small strided CNN, globally pooled.

The parts are concatenated and mapped by an MLP to ``v_t`` ``(d,)``, squashed by ``tanh`` into (-1, 1) so the
policy and the memory see bounded features.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class ObservationEncoder(nn.Module):
    """Observation -> embedding (see the module docstring).

    Args:
        elevations: E, rows of the ray images.
        azimuths: A, columns of the ray images.
        max_range: Ray cutoff, metres.
        num_classes: C, semantic classes (ids 1..C; 0 is "none").
        vocab_size: Rows of the word table.
        max_tokens: L, tokens per instruction.
        embed_dim: d, width of the output.
        width: Hidden width of every part.
        rgb_size: Side of the square rgb image, or 0 for no rgb input.
    """

    SECTORS = 8

    def __init__(
        self,
        *,
        elevations: int,
        azimuths: int,
        max_range: float,
        num_classes: int,
        vocab_size: int,
        max_tokens: int,
        embed_dim: int,
        width: int = 64,
        rgb_size: int = 0,
    ) -> None:
        super().__init__()
        self.elevations, self.azimuths, self.max_range = elevations, azimuths, float(max_range)
        self.num_classes, self.max_tokens, self.rgb_size = num_classes, max_tokens, rgb_size
        channels = elevations + num_classes + 1
        self.rays = nn.Sequential(
            nn.Conv1d(channels, width, 5, padding=2, padding_mode="circular"),
            nn.GELU(),
            nn.Conv1d(width, width, 5, stride=2, padding=2, padding_mode="circular"),
            nn.GELU(),
            nn.AdaptiveAvgPool1d(self.SECTORS),
            nn.Flatten(),
            nn.Linear(width * self.SECTORS, width),
            nn.GELU(),
        )
        self.words = nn.Embedding(vocab_size, width, padding_idx=0)
        self.positions = nn.Parameter(torch.randn(max_tokens, width) * 0.02)
        self.instruction = nn.Sequential(nn.Linear(width, width), nn.GELU())
        parts = 2 * width
        if rgb_size:
            self.rgb = nn.Sequential(
                nn.Conv2d(3, 16, 5, stride=2, padding=2),
                nn.GELU(),
                nn.Conv2d(16, 32, 3, stride=2, padding=1),
                nn.GELU(),
                nn.Conv2d(32, width, 3, stride=2, padding=1),
                nn.GELU(),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
            )
            parts += width
        self.fuse = nn.Sequential(nn.Linear(parts, width), nn.GELU(), nn.Linear(width, embed_dim))

    def forward(self, depth: Tensor, semantic: Tensor, tokens: Tensor, rgb: Tensor | None = None) -> Tensor:
        """Embeds a batch of observations.

        Args:
            depth: ``(B, E, A)`` ranges, metres.
            semantic: ``(B, E, A)`` class ids (any numeric dtype; rounded).
            tokens: ``(B, L)`` token ids (any numeric dtype; rounded), 0 = padding.
            rgb: ``(B, S, S, 3)`` pixel values in [0, 255], required iff ``rgb_size > 0``.

        Returns:
            ``(B, d)`` embeddings in (-1, 1).
        """
        proximity = 1.0 - depth / self.max_range  # (B, E, A)
        classes = semantic.round().long().clamp(0, self.num_classes)  # (B, E, A)
        histogram = F.one_hot(classes, self.num_classes + 1).float().mean(dim=1)  # (B, A, C+1)
        rays = self.rays(torch.cat([proximity, histogram.transpose(1, 2)], dim=1))  # (B, width)
        ids = tokens.round().long().clamp(0, self.words.num_embeddings - 1)  # (B, L)
        real = (ids > 0).float().unsqueeze(-1)  # (B, L, 1)
        words = (self.words(ids) + self.positions) * real  # (B, L, width)
        pooled = words.sum(1) / real.sum(1).clamp(min=1.0)  # (B, width)
        parts = [rays, self.instruction(pooled)]
        if self.rgb_size:
            if rgb is None:
                raise ValueError(f"this encoder expects an rgb image ({self.rgb_size}x{self.rgb_size}x3)")
            parts.append(self.rgb(rgb.permute(0, 3, 1, 2) / 255.0))
        return torch.tanh(self.fuse(torch.cat(parts, dim=-1)))  # (B, d)
