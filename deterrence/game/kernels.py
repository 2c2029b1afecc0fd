"""Compiled loops of the expectations over members who honour independently.

The formulas are those of :class:`deterrence.game.payoffs.Expectation`,
:func:`deterrence.game.payoffs.honouring_gain`, :func:`deterrence.game.payoffs.gain_jacobian`
and :func:`deterrence.game.payoffs.interaction_bounds`, and of the solver's best response
``Phi`` and its clipped iteration (:mod:`deterrence.solve.equilibrium`); this module only
evaluates them in one pass per box, without the (boxes, nodes, members) temporaries that
numpy needs for the same sums. Every product is formed in the order of the prefix and
suffix products of ``payoffs`` (left to right, and right to left), every sum over nodes runs
node by node in increasing order and every other expression keeps numpy's order of
operations, so a box's numbers are those of the numpy expressions (but for the sum over
members inside the interaction bound, :func:`interaction_sums`) and depend on that box
alone.

Compiled by numba on first use and cached on disk (``cache=True``) in the user's cache
folder (:data:`CACHE_DIR`, unless ``NUMBA_CACHE_DIR`` says otherwise or numba was imported
first), not next to the installed source: files numba wrote into site-packages would outlive
an uninstall and shadow the next install of the package. The kernels release the GIL
(``nogil=True``) so that the threads of :func:`deterrence.solve.equilibrium.solve_grid` run
them in parallel. Inputs: ``q`` (B, n) honouring probabilities; box b integrates over the
nodes ``start[b] : start[b] + count[b]`` of ``weight`` (K,) and ``y`` (K, n), the prepared
rule of :class:`deterrence.game.payoffs.Quadrature`.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Where the compiled kernels are cached: ``$XDG_CACHE_HOME/deterrence/numba`` (default
#: ``~/.cache/deterrence/numba``); numba keeps each source file's kernels apart there.
CACHE_DIR = (Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
             / "deterrence" / "numba")
os.environ.setdefault("NUMBA_CACHE_DIR", str(CACHE_DIR))

import numba  # noqa: E402  (reads NUMBA_CACHE_DIR when first imported)
import numpy as np  # noqa: E402


@numba.njit(cache=True, nogil=True, inline="always")
def _success_terms(q, first, nodes, weight, y, sums, product, prefix,
                   factor):
    """One box (``q`` (n,)): ``sums[i, 0] = sum_k w_k prod_{j != i} f_j(t_k)`` and
    ``sums[i, 1]`` the same times ``y_i(t_k)``, with ``f_i = 1 - q_i + q_i y_i``, over the
    nodes ``first : first + nodes``; ``product[k] = prod_i f_i(t_k)``. ``prefix`` and
    ``factor`` (n, 2) are scratch space.

    Nodes are taken two at a time (their chains of products are independent, which the
    processor overlaps); each sum still adds node after node."""
    n = q.size
    for i in range(n):
        sums[i, 0] = 0.0
        sums[i, 1] = 0.0
    for k in range(first, first + nodes - 1, 2):
        run0, run1 = 1.0, 1.0
        for i in range(n):
            f0 = 1.0 - q[i] + q[i] * y[k, i]
            f1 = 1.0 - q[i] + q[i] * y[k + 1, i]
            factor[i, 0], factor[i, 1] = f0, f1
            prefix[i, 0], prefix[i, 1] = run0, run1
            run0 *= f0
            run1 *= f1
        w0, w1 = weight[k], weight[k + 1]
        suffix0, suffix1 = 1.0, 1.0
        for i in range(n - 1, -1, -1):
            others0 = prefix[i, 0] * suffix0
            others1 = prefix[i, 1] * suffix1
            sums[i, 0] = sums[i, 0] + w0 * others0 + w1 * others1
            sums[i, 1] = sums[i, 1] + w0 * (others0 * y[k, i]) + w1 * (others1 * y[k + 1, i])
            suffix0 *= factor[i, 0]
            suffix1 *= factor[i, 1]
        product[k - first] = suffix0
        product[k + 1 - first] = suffix1
    if nodes % 2:
        k = first + nodes - 1
        running = 1.0
        for i in range(n):
            f = 1.0 - q[i] + q[i] * y[k, i]
            factor[i, 0] = f
            prefix[i, 0] = running
            running *= f
        w = weight[k]
        suffix = 1.0
        for i in range(n - 1, -1, -1):
            others = prefix[i, 0] * suffix
            sums[i, 0] += w * others
            sums[i, 1] += w * (others * y[k, i])
            suffix *= factor[i, 0]
        product[k - first] = suffix


@numba.njit(cache=True, nogil=True, inline="always")
def _risk_terms(q, e, risk_if, prefix):
    """One box: ``risk_if[i, 0] = 1 - prod_{j != i} (1 - q_j e_j)``, ``risk_if[i, 1] = 1 -
    (1 - e_i) prod_{j != i} (1 - q_j e_j)``; returns ``1 - prod_i (1 - q_i e_i)`` and
    ``1 - prod_i (1 - q_i)``."""
    n = q.size
    running = 1.0
    none = 1.0
    for i in range(n):
        prefix[i, 0] = running
        running *= 1.0 - q[i] * e[i]
        none *= 1.0 - q[i]
    suffix = 1.0
    for i in range(n - 1, -1, -1):
        others = prefix[i, 0] * suffix
        risk_if[i, 0] = 1.0 - others
        risk_if[i, 1] = 1.0 - others * (1.0 - e[i])
        suffix *= 1.0 - q[i] * e[i]
    return 1.0 - suffix, 1.0 - none


@numba.njit(cache=True, nogil=True)
def expectation_sums(q, e, start, count, weight, y, product, success_if, risk_if,
                     risk_respond):
    """The sums of an expectation, written into the arrays given: ``success_if`` and
    ``risk_if`` (B, n, 2) as in :class:`deterrence.game.payoffs.Expectation`, ``product``
    (B, max count) the product of the factors at each node of the box, which the caller
    sums with the weights, and ``risk_respond`` (B, 2): E[risk] and P(some member honours)."""
    boxes, n = q.shape
    prefix = np.empty((n, 2))
    factor = np.empty((n, 2))
    for b in range(boxes):
        _success_terms(q[b], start[b], count[b], weight, y, success_if[b], product[b],
                       prefix, factor)
        risk_respond[b, 0], risk_respond[b, 1] = _risk_terms(q[b], e[b], risk_if[b], prefix)


@numba.njit(cache=True, nogil=True, inline="always")
def _gain(fixed, stake, catastrophe, success_if, risk_if, i):
    """Member i's gain ``fixed_i - stake_i (E[P | a_i = 1] - E[P | a_i = 0]) - catastrophe_i
    (E[risk | a_i = 1] - E[risk | a_i = 0])`` from the conditional sums ``success_if`` and
    ``risk_if`` (n, 2): :func:`deterrence.game.payoffs.honouring_gain`, the same operations
    in the same order."""
    return (fixed[i] + -stake[i] * (success_if[i, 1] - success_if[i, 0])
            + -catastrophe[i] * (risk_if[i, 1] - risk_if[i, 0]))


@numba.njit(cache=True, nogil=True, inline="always")
def _respond(q, e, first, nodes, weight, y, fixed, stake, catastrophe, sigma, engaged, out,
             scratch):
    """One box: ``out[i] = Phi_i(q)``, each member's gain (:func:`_gain`) through the
    logistic of scale ``sigma_i`` (:func:`deterrence.solve.equilibrium.logistic`, the same
    operations in the same order); 1 for engaged members, whose ``q`` must be 1 already.
    ``scratch`` is :func:`_scratch`."""
    prefix, factor, sums, risk_if, product = scratch
    _success_terms(q, first, nodes, weight, y, sums, product, prefix, factor)
    _risk_terms(q, e, risk_if, prefix)
    for i in range(q.size):
        if engaged[i]:
            out[i] = 1.0
            continue
        z = _gain(fixed, stake, catastrophe, sums, risk_if, i) / sigma[i]
        tail = np.exp(-abs(z))
        out[i] = 1.0 / (1.0 + tail) if z >= 0 else tail / (1.0 + tail)


@numba.njit(cache=True, nogil=True)
def _scratch(n, count):
    """Work arrays of :func:`_respond` for n members and boxes with ``count`` nodes."""
    most = 0
    for nodes in count:
        most = max(most, nodes)
    return (np.empty((n, 2)), np.empty((n, 2)), np.empty((n, 2)), np.empty((n, 2)),
            np.empty(most))


@numba.njit(cache=True, nogil=True)
def gain_ranges(lo, hi, e, start, count, weight, y, fixed, stake, catastrophe, gmin,
                gmax):
    """Each member's gain (:func:`_gain`) with the denial part at ``hi`` and the risk part
    at ``lo`` into ``gmin``, the other way round into ``gmax`` (B, n): the extremes over the
    box [lo, hi] (the denial part falls in every other q_j, the risk part rises)."""
    boxes, n = lo.shape
    prefix, factor, _, _, product = _scratch(n, count)
    success, risk = np.empty((2, n, 2)), np.empty((2, n, 2))  # at lo, at hi
    for b in range(boxes):
        for corner in range(2):
            q = lo[b] if corner == 0 else hi[b]
            _success_terms(q, start[b], count[b], weight, y, success[corner], product, prefix,
                           factor)
            _risk_terms(q, e[b], risk[corner], prefix)
        for i in range(n):
            gmin[b, i] = _gain(fixed[b], stake[b], catastrophe[b], success[1], risk[0], i)
            gmax[b, i] = _gain(fixed[b], stake[b], catastrophe[b], success[0], risk[1], i)


@numba.njit(cache=True, nogil=True, inline="always")
def _largest_change(a, b):
    """``max_i |a_i - b_i|`` (0 for none) as np.max takes it: a NaN anywhere gives NaN."""
    largest = 0.0
    for i in range(a.size):
        change = abs(a[i] - b[i])
        if change > largest or change != change:
            largest = change
    return largest


@numba.njit(cache=True, nogil=True)
def settle(q, lo, hi, e, start, count, weight, y, fixed, stake, catastrophe, sigma, engaged,
           iterations, width, residual):
    """``q <- clip(Phi(q), lo, hi)`` in place, box by box (:func:`_respond`), until a step
    moves the box by at most ``width`` (max norm; a NaN step never settles), at most
    ``iterations`` steps. One step between 0 and 1 is Phi itself. Unless ``residual`` is
    empty, ``residual[b] = max_i |Phi_i(q) - q_i|`` at the last q."""
    boxes, n = q.shape
    scratch = _scratch(n, count)
    response, last = np.empty(n), np.empty(n)
    for b in range(boxes):
        for _ in range(iterations):
            _respond(q[b], e[b], start[b], count[b], weight, y, fixed[b], stake[b],
                     catastrophe[b], sigma[b], engaged[b], response, scratch)
            for i in range(n):
                last[i] = q[b, i]
                clipped = response[i]  # np.clip: NaN stays NaN
                if clipped < lo[b, i]:
                    clipped = lo[b, i]
                if clipped > hi[b, i]:
                    clipped = hi[b, i]
                q[b, i] = clipped
            if _largest_change(q[b], last) <= width:
                break
        if residual.size:
            _respond(q[b], e[b], start[b], count[b], weight, y, fixed[b], stake[b],
                     catastrophe[b], sigma[b], engaged[b], response, scratch)
            residual[b] = _largest_change(response, q[b])


@numba.njit(cache=True, nogil=True)
def interaction_sums(free, start, count, weight, y, bound):
    """``bound[b, i] = sum_k w_k (1 - y_i(t_k)) sum_{j free, j != i} (1 - y_j(t_k))``
    (B, n): the denial part of :func:`deterrence.game.payoffs.interaction_bounds`. The sum
    over members runs member by member, where numpy's sums pairwise: the two can differ in
    the last bits, far inside the bound's relative slack."""
    boxes, n = free.shape
    gap = np.empty(n)
    for b in range(boxes):
        for i in range(n):
            bound[b, i] = 0.0
        for k in range(start[b], start[b] + count[b]):
            total = 0.0
            for i in range(n):
                gap[i] = 1.0 - y[k, i]
                if free[b, i]:
                    total += gap[i]
            w = weight[k]
            for i in range(n):
                bound[b, i] += w * (gap[i] * (total - gap[i] if free[b, i] else total))


@numba.njit(cache=True, nogil=True)
def pair_sums(q, start, count, weight, y, second):
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
