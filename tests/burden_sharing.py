r"""Voluntary contributions to a shared good: the Olson-Zeckhauser burden-sharing model.

Each ally i with income y_i chooses a contribution x_i >= 0 to a public good X = sum_i x_i
(aid to Ukraine, say) with Cobb-Douglas utility::

    u_i = (y_i - x_i)^(1 - alpha) * X^alpha

A contributor's first-order condition gives ``y_i - x_i = beta * X`` with
``beta = (1 - alpha) / alpha``; allies whose income is at most ``beta * X`` contribute
nothing. The Nash equilibrium is unique (Bergstrom, Blume & Varian 1986): with the k richest
allies contributing, ``X = sum_{top k} y / (1 + k * beta)``, and k is the largest number for
which the k-th richest still wants to contribute. Olson & Zeckhauser (1966) read from this
that large allies carry a disproportionate share of the burden; the efficient (Samuelson)
level is ``alpha * sum_i y_i``, which exceeds the equilibrium level.
"""

from __future__ import annotations

import numpy as np


def cobb_douglas_contributions(incomes, alpha: float) -> np.ndarray:
    """Nash equilibrium contributions ``x_i`` (same order as ``incomes``)."""
    incomes = np.asarray(incomes, dtype=np.float64)
    if incomes.ndim != 1 or incomes.size == 0 or np.any(incomes <= 0):
        raise ValueError("incomes must be a non-empty 1-d array of positive numbers")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha = {alpha!r}: must be strictly between 0 and 1")
    beta = (1.0 - alpha) / alpha
    order = np.argsort(-incomes, kind="stable")
    richest = incomes[order]
    total = 0.0
    for k in range(1, incomes.size + 1):
        candidate = richest[:k].sum() / (1.0 + k * beta)
        if richest[k - 1] <= beta * candidate:
            break  # the k-th richest would not contribute: keep k - 1
        total = candidate
    contributions = np.maximum(incomes - beta * total, 0.0)
    return contributions


def samuelson_provision(incomes, alpha: float) -> float:
    """The efficient level of the good with transferable income: ``alpha * sum(y)``."""
    return float(alpha * np.sum(incomes))
