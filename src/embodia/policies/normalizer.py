"""Per-feature min-max normalisation to [-1, 1], stored as module buffers so it travels in checkpoints.

For each key (``"obs"``, ``"action"``, ...) and each feature ``i`` the normaliser keeps ``lo_i`` and ``hi_i``
and maps ``x -> 2 (x - lo) / (hi - lo) - 1``, so the fitted data lands in ``[-1, 1]`` (Diffusion Policy's
``LinearNormalizer`` in ``limits`` mode). ``unnormalize`` is the algebraic inverse; numerically it round-trips
to within float32 round-off of the feature's range.

**Constant features.** A feature whose fitted range ``hi - lo`` is below ``range_eps`` (default 1e-4) would
otherwise be divided by ~0. Such a feature gets ``lo = mid - 1``, ``hi = mid + 1`` around its midpoint ``mid``:
the constant value maps to 0 and any other value moves one-for-one (``x = mid + d`` maps to ``d``), so a value
never seen in training is not blown up. (Diffusion Policy maps constants to -1 with unit scale; 0 is the centre
of the target range, which is the neutral input for a network.)

Statistics are float32 buffers named ``<key>_lo`` and ``<key>_hi`` plus a ``fitted`` flag, so
``state_dict()`` holds tensors only. Normalising before :meth:`fit` (or before loading fitted buffers) raises
``RuntimeError``: an identity map would silently train on raw data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["MinMaxNormalizer"]

_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


class MinMaxNormalizer(nn.Module):
    """Min-max normaliser of several named arrays, each to [-1, 1] per feature.

    Args:
        shapes: ``{key: feature shape}``, e.g. ``{"obs": (Do,), "action": (Da,)}``. Keys are alphanumeric
            (they become buffer names). Data for a key has shape ``(..., *shape)``: statistics are per feature,
            taken over all leading axes.
        range_eps: Features whose fitted range is below this are "constant" (see the module docstring).
    """

    def __init__(self, shapes: Mapping[str, tuple[int, ...] | int], *, range_eps: float = 1e-4) -> None:
        super().__init__()
        if not shapes:
            raise ValueError("MinMaxNormalizer needs at least one key")
        if not range_eps > 0:
            raise ValueError(f"range_eps must be > 0, got {range_eps!r}")
        self.range_eps = float(range_eps)
        self.shapes: dict[str, tuple[int, ...]] = {}
        for key, shape in shapes.items():
            if not isinstance(key, str) or not _KEY_RE.match(key):
                raise ValueError(f"normaliser key {key!r} must be alphanumeric, starting with a letter")
            shape = (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)
            if any(s < 1 for s in shape):
                raise ValueError(f"normaliser shape for {key!r} must be positive, got {shape}")
            self.shapes[key] = shape
            # Unfitted placeholders: lo = -1, hi = 1 (the identity), guarded by `fitted`.
            self.register_buffer(f"{key}_lo", -torch.ones(shape))
            self.register_buffer(f"{key}_hi", torch.ones(shape))
        self.register_buffer("fitted", torch.tensor(False))

    @property
    def is_fitted(self) -> bool:
        """Whether the statistics come from :meth:`fit` or a loaded fitted state."""
        return bool(self.fitted)

    def fit(self, data: Mapping[str, np.ndarray | Tensor]) -> MinMaxNormalizer:
        """Set the statistics of every key from ``data`` (``{key: (..., *shape)}``, finite); returns self.

        Raises:
            ValueError: A key missing or unknown, a shape mismatch, no rows, or non-finite values.
        """
        if set(data) != set(self.shapes):
            raise ValueError(f"fit needs exactly the keys {sorted(self.shapes)}, got {sorted(data)}")
        stats = {}
        for key, shape in self.shapes.items():
            arr = data[key]
            arr = arr.detach().cpu().double().numpy() if isinstance(arr, Tensor) else np.asarray(arr, np.float64)
            if arr.ndim <= len(shape) or arr.shape[arr.ndim - len(shape) :] != shape:
                raise ValueError(f"fit data for {key!r} must have shape (N, ..., {shape}), got {arr.shape}")
            rows = arr.reshape(-1, *shape)  # (N, *shape)
            if len(rows) == 0:
                raise ValueError(f"fit data for {key!r} has no rows")
            if not np.isfinite(rows).all():
                raise ValueError(f"fit data for {key!r} contains NaN or inf")
            lo, hi = rows.min(axis=0), rows.max(axis=0)  # (*shape,)
            const = (hi - lo) < self.range_eps
            mid = 0.5 * (lo + hi)
            stats[key] = (np.where(const, mid - 1.0, lo), np.where(const, mid + 1.0, hi))
        for key, (lo, hi) in stats.items():
            getattr(self, f"{key}_lo").copy_(torch.from_numpy(lo))
            getattr(self, f"{key}_hi").copy_(torch.from_numpy(hi))
        self.fitted.fill_(True)
        return self

    def bounds(self, key: str) -> tuple[Tensor, Tensor]:
        """``(lo, hi)`` float32 tensors of shape ``shapes[key]``."""
        self._check_key(key)
        return getattr(self, f"{key}_lo"), getattr(self, f"{key}_hi")

    def normalize(self, key: str, x: np.ndarray | Tensor) -> np.ndarray | Tensor:
        """Map ``x`` (``(..., *shape)``, numpy or torch) to [-1, 1] on the fitted data; same type out.

        Torch inputs keep their dtype, device and autograd graph; numpy inputs come back as float32 unless they
        are float64.
        """
        x, lo, hi = self._prepare(key, x)
        return (x - lo) / (hi - lo) * 2.0 - 1.0

    def unnormalize(self, key: str, y: np.ndarray | Tensor) -> np.ndarray | Tensor:
        """Inverse of :meth:`normalize`: ``x = lo + (y + 1) / 2 * (hi - lo)``."""
        y, lo, hi = self._prepare(key, y)
        return lo + (y + 1.0) * 0.5 * (hi - lo)

    def extra_repr(self) -> str:
        """Keys, shapes and whether the statistics are fitted (shown in ``repr``)."""
        return f"shapes={self.shapes}, range_eps={self.range_eps}, fitted={self.is_fitted}"

    # -------------------------------------------------------------------------------------------- helpers

    def _check_key(self, key: str) -> None:
        if key not in self.shapes:
            raise KeyError(f"normaliser has no key {key!r} (keys: {sorted(self.shapes)})")

    def _prepare(self, key: str, x: np.ndarray | Tensor) -> tuple:
        """Check ``x`` and return ``(x, lo, hi)`` in one float dtype (and device, for torch)."""
        self._check_key(key)
        if not self.is_fitted:
            raise RuntimeError("MinMaxNormalizer used before fit(); fit it on the training data or load a fitted one")
        if not isinstance(x, Tensor):
            x = np.asarray(x)
            x = x.astype(np.float64 if x.dtype == np.float64 else np.float32, copy=False)
        shape = self.shapes[key]
        if x.ndim < len(shape) or tuple(x.shape[x.ndim - len(shape) :]) != shape:
            raise ValueError(f"{key!r} data must end in shape {shape}, got {tuple(x.shape)}")
        lo, hi = self.bounds(key)
        if isinstance(x, Tensor):
            if not x.is_floating_point():
                x = x.float()
            return x, lo.to(x.device, x.dtype), hi.to(x.device, x.dtype)
        return x, lo.cpu().numpy().astype(x.dtype), hi.cpu().numpy().astype(x.dtype)
