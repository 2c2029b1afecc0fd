"""Means and paired differences with normal-approximation 95% intervals, means with
Student-t intervals, and paired t-tests per cell (SciPy's ``ttest_rel`` and
``false_discovery_control``)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

#: The two-sided 95% quantile of the standard normal, rounded as the report states it
#: (mean ± 1.96·sd/√n).
NORMAL_95 = 1.96


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
    half = NORMAL_95 * float(v.std(ddof=1)) / np.sqrt(v.size) if v.size > 1 else float("nan")
    return Estimate(float(v.mean()), half, int(v.size))


def mean_t_interval(values, confidence: float = 0.95
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, half-width, count) over the last axis of the finite values, the half-width
    that of the Student-t interval, t(n - 1, (1 + confidence) / 2) * sd / sqrt(n); NaN
    half-width with fewer than 2 values, NaN mean with none."""
    from scipy import stats

    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence = {confidence}: must lie in (0.5, 1)")
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    n = ok.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, v, 0.0).sum(axis=-1) / n
        square = np.where(ok, (v - mean[..., None]) ** 2, 0.0).sum(axis=-1)
        sd = np.sqrt(square / (n - 1))
        quantile = stats.t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1))
        half = np.where(n > 1, quantile * sd / np.sqrt(n), np.nan)
    return mean, half, n


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

    Each cell's interval and p-value are SciPy's paired t-test (``scipy.stats.ttest_rel``;
    Student, as replicates per cell are few) over the pairs with no NaN on either side.
    With zero spread the difference is exact: significant when it is not 0. Many cells are
    tested at once, so ``significant_fdr`` also controls the false discovery rate
    (Benjamini & Hochberg 1995)."""
    from scipy import stats

    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence = {confidence}: must lie in (0.5, 1)")
    a = np.asarray(values, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired arrays differ in shape: {a.shape} vs {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    n = ok.sum(axis=-1)
    cells, width = n.size, a.shape[-1] if a.ndim else 1
    flat_a, flat_b, flat_ok = (x.reshape(cells, width) for x in (a, b, ok))
    mean, low, high, p = (np.full(cells, np.nan) for _ in range(4))
    # cells with the same number of pairs are tested in one vectorised call: SciPy's own
    # NaN handling (nan_policy="omit") tests cell by cell, 100 times slower
    for pairs in np.unique(n[n > 0]):
        rows = np.flatnonzero(n.ravel() == pairs)
        x = flat_a[rows][flat_ok[rows]].reshape(rows.size, pairs)
        y = flat_b[rows][flat_ok[rows]].reshape(rows.size, pairs)
        mean[rows] = (x - y).mean(axis=-1)
        if pairs > 1:
            with warnings.catch_warnings():  # zero spread: t is infinite, or 0 / 0
                warnings.simplefilter("ignore", RuntimeWarning)
                test = stats.ttest_rel(x, y, axis=-1)
                interval = test.confidence_interval(confidence)
            low[rows], high[rows], p[rows] = interval.low, interval.high, test.pvalue
    exact = (n.ravel() > 1) & (low == high)
    p = np.where(exact, np.where(mean != 0, 0.0, 1.0), p)
    significant = (low > 0) | (high < 0)
    shape = n.shape
    return CellDifferences(mean.reshape(shape), ((high - low) / 2).reshape(shape), n,
                           p.reshape(shape), significant.reshape(shape),
                           benjamini_hochberg(p, 1 - confidence).reshape(shape), confidence)


def benjamini_hochberg(p_values, rate: float) -> np.ndarray:
    """Which tests are discoveries at false discovery rate ``rate``: the Benjamini-Hochberg
    adjusted p-value (``scipy.stats.false_discovery_control``) is at most ``rate``. A NaN
    p-value is no test: never a discovery, and not counted among the tests."""
    from scipy import stats

    p = np.asarray(p_values, dtype=np.float64)
    tested = np.isfinite(p)
    out = np.zeros(p.shape, dtype=bool)
    if tested.any():
        out[tested] = stats.false_discovery_control(p[tested], method="bh") <= rate
    return out
