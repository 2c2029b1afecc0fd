"""Compiled loops of the expectations over members who honour independently.

The formulas are those of :class:`deterrence.game.payoffs.Expectation` and
:func:`deterrence.game.payoffs.gain_jacobian`; this module only evaluates their sums over
quadrature nodes in one pass per box, without the (boxes, nodes, members) temporaries that
the same sums cost in numpy. Every product is formed in the order of the prefix and suffix
products of ``payoffs`` (left to right, and right to left), and every sum over nodes runs
node by node in increasing order, so a box's numbers depend on that box alone.

Compiled by numba on first use and cached on disk (``cache=True``), releasing the GIL
(``nogil=True``) so that the threads of :func:`deterrence.solve.equilibrium.solve_grid` run
them in parallel. Inputs: ``q`` (B, n) honouring probabilities; box b integrates over the
nodes ``start[b] : start[b] + count[b]`` of ``weight`` (K,) and ``y`` (K, n), the prepared
rule of :class:`deterrence.game.payoffs.Quadrature`.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def success_sums(q, start, count, weight, y, product, success_if):  # pragma: no cover
    """``success_if[b, i, 0] = sum_k w_k prod_{j != i} f_j(t_k)`` and ``success_if[b, i, 1]``
    the same times ``y_i(t_k)``, with ``f_i = 1 - q_i + q_i y_i``, written into
    ``success_if`` (B, n, 2); ``product[b, k] = prod_i f_i(t_k)`` at the box's k-th node
    (``product`` (B, max count)), which the caller sums with the weights."""
    boxes, n = q.shape
    prefix = np.empty(n)
    factor = np.empty(n)
    for b in range(boxes):
        for i in range(n):
            success_if[b, i, 0] = 0.0
            success_if[b, i, 1] = 0.0
        for k in range(start[b], start[b] + count[b]):
            running = 1.0
            for i in range(n):
                f = 1.0 - q[b, i] + q[b, i] * y[k, i]
                factor[i] = f
                prefix[i] = running
                running *= f
            w = weight[k]
            suffix = 1.0
            for i in range(n - 1, -1, -1):
                others = prefix[i] * suffix
                success_if[b, i, 0] += w * others
                success_if[b, i, 1] += w * (others * y[k, i])
                suffix *= factor[i]
            product[b, k - start[b]] = suffix


@numba.njit(cache=True, nogil=True)
def pair_sums(q, start, count, weight, y, second):  # pragma: no cover
    """``second[b, i, j] = sum_k w_k prod_{l != i, j} f_l(t_k) (y_i - 1)(y_j - 1)`` for
    i != j (the diagonal is left as computed with f_i taken as 1; the caller masks it),
    written into ``second`` (B, n, n)."""
    boxes, n = q.shape
    factor = np.empty(n)
    gap = np.empty(n)
    prefix = np.empty(n)
    for b in range(boxes):
        for i in range(n):
            for j in range(n):
                second[b, i, j] = 0.0
        for k in range(start[b], start[b] + count[b]):
            for i in range(n):
                factor[i] = 1.0 - q[b, i] + q[b, i] * y[k, i]
                gap[i] = y[k, i] - 1.0
            w = weight[k]
            for i in range(n):
                # prod over l != j of the factors with f_i replaced by 1
                running = 1.0
                for j in range(n):
                    prefix[j] = running
                    running *= 1.0 if j == i else factor[j]
                suffix = 1.0
                for j in range(n - 1, -1, -1):
                    second[b, i, j] += w * (prefix[j] * suffix * gap[i] * gap[j])
                    suffix *= 1.0 if j == i else factor[j]
