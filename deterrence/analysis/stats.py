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


@dataclass(frozen=True)
class CellDifferences:
    """Paired differences per cell over the last axis (replicates): arrays of the cells'
    shape."""

    mean: np.ndarray
    half_width: np.ndarray   # of the Student-t interval at ``confidence``
    pairs: np.ndarray        # pairs counted (NaN on either side left out)
    p_value: np.ndarray      # two-sided paired t-test; NaN with fewer than 2 pairs
    significant: np.ndarray  # the interval excludes 0
    significant_fdr: np.ndarray  # Benjamini-Hochberg at 1 - confidence over the cells
    confidence: float


def paired_cells(values, reference, confidence: float = 0.95) -> CellDifferences:
    """Per-cell paired differences ``values - reference`` over the last axis, which holds
    replicates that share their random numbers (common random numbers).

    The interval is mean ± t(n-1)·sd/√n (Student, as replicates per cell are few). With
    zero spread the difference is exact: significant when it is not 0. Many cells are
    tested at once, so ``significant_fdr`` also controls the false discovery rate
    (Benjamini & Hochberg 1995)."""
    from scipy import stats

    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence = {confidence}: must lie in (0.5, 1)")
    a = np.asarray(values, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired arrays differ in shape: {a.shape} vs {b.shape}")
    d = a - b
    ok = np.isfinite(d)
    n = ok.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.where(ok, d, 0.0).sum(axis=-1) / n, np.nan)
        dev = np.where(ok, d - mean[..., None], 0.0)
        sd = np.sqrt((dev ** 2).sum(axis=-1) / (n - 1))
        se = sd / np.sqrt(n)
        half = np.where(n > 1, stats.t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1)) * se,
                        np.nan)
        t = np.abs(mean) / se
        p = np.where(n > 1, 2 * stats.t.sf(t, np.maximum(n - 1, 1)), np.nan)
    exact = (n > 1) & (se == 0)
    p = np.where(exact, np.where(mean != 0, 0.0, 1.0), p)
    significant = (n > 1) & (np.abs(mean) > half)
    significant = np.where(exact, mean != 0, significant)
    return CellDifferences(mean, half, n, p, significant,
                           benjamini_hochberg(p, 1 - confidence), confidence)


def benjamini_hochberg(p_values, rate: float) -> np.ndarray:
    """Which tests are discoveries at false discovery rate ``rate`` (NaN: never)."""
    p = np.asarray(p_values, dtype=np.float64)
    flat = p.ravel()
    tested = np.flatnonzero(np.isfinite(flat))
    out = np.zeros(flat.shape, dtype=bool)
    if tested.size:
        order = tested[np.argsort(flat[tested], kind="stable")]
        ranks = np.arange(1, order.size + 1)
        passed = flat[order] <= rate * ranks / order.size
        if passed.any():
            out[order[:np.flatnonzero(passed).max() + 1]] = True
    return out.reshape(p.shape)
