"""Means and paired differences with normal-approximation 95% intervals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A mean with the half-width of its normal-approximation 95% interval."""

    mean: float
    half_width: float
    n: int

    def text(self, signed: bool = False) -> str:
        if not np.isfinite(self.mean):
            return "—"
        sign = "+" if signed else ""
        if not np.isfinite(self.half_width):
            return f"{self.mean:{sign}.4f}"
        low, high = self.mean - self.half_width, self.mean + self.half_width
        return f"{self.mean:{sign}.4f} [{low:{sign}.4f}, {high:{sign}.4f}]"

    @property
    def excludes_zero(self) -> bool:
        return bool(np.isfinite(self.half_width) and abs(self.mean) > self.half_width)


def mean_ci(values) -> Estimate:
    """Mean ± 1.96·sd/sqrt(n) over the finite values (NaN left out)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Estimate(float("nan"), float("nan"), 0)
    half = 1.96 * float(v.std(ddof=1)) / np.sqrt(v.size) if v.size > 1 else float("nan")
    return Estimate(float(v.mean()), half, int(v.size))


def paired_difference(values, reference) -> Estimate:
    """Mean difference over (cell, replicate) pairs, which share their random numbers across
    formats; pairs with a NaN on either side are left out."""
    a = np.asarray(values, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired arrays differ in shape: {a.shape} vs {b.shape}")
    return mean_ci(a - b)
