r"""Exact algorithms for n-player games in which every player has two actions.

A game is a payoff table ``U`` of shape ``(C, P, m)``: ``C`` independent games (cells),
``P = 2**m`` pure profiles and ``m`` players. Profile ``k`` gives player ``i`` the action
``(k >> i) & 1``; a mixed profile is the vector ``x`` of probabilities of action 1.

Definitions used throughout (Fudenberg & Tirole 1991, ch. 1; Weibull 1995 for dynamics):

* gain of player i at profile k:  ``D_i(k) = U_i(k | 1_i) - U_i(k | 0_i)``
  (it does not depend on i's own action);
* expected gain at x:            ``G_i(x) = sum_k Pr_x(k) D_i(k)``, multilinear in x_{-i};
* Nash equilibrium: ``x_i = 1 => G_i >= 0``, ``x_i = 0 => G_i <= 0``, ``0 < x_i < 1 => G_i = 0``;
* replicator dynamics:   ``dx_i/dt = x_i (1 - x_i) G_i(x)``;
* logit dynamics:        ``dx_i/dt = 1 / (1 + exp(-lambda G_i(x))) - x_i``, whose rest points
  are the logit quantal response equilibria (McKelvey & Palfrey 1995).

Everything is vectorised over cells; tolerances are explicit arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STABLE, NEUTRAL, CENTRE, UNSTABLE, NOT_REST_POINT = 0, 1, 2, 3, 4
STABILITY_NAMES = ("stable", "neutral", "centre", "unstable", "not a rest point")


def players(table: np.ndarray) -> int:
    return table.shape[-1]


def profile_bits(m: int) -> np.ndarray:
    """(P, m) array of 0/1: the action of each player in each profile."""
    k = np.arange(2 ** m)
    return ((k[:, None] >> np.arange(m)[None, :]) & 1).astype(np.float64)


def gains(table: np.ndarray) -> np.ndarray:
    """``D[c, k, i] = U_i(k with i playing 1) - U_i(k with i playing 0)``: shape (C, P, m)."""
    m = players(table)
    k = np.arange(table.shape[1])
    out = np.empty_like(table)
    for i in range(m):
        bit = 1 << i
        out[:, :, i] = table[:, k | bit, i] - table[:, k & ~bit, i]
    return out


def pure_nash_mask(table: np.ndarray, tol: float) -> np.ndarray:
    """``mask[c, k]``: profile k is a (weak, up to ``tol``) pure Nash equilibrium of cell c."""
    m = players(table)
    k = np.arange(table.shape[1])
    mask = np.ones(table.shape[:2], dtype=bool)
    for i in range(m):
        mask &= table[:, :, i] >= table[:, k ^ (1 << i), i] - tol
    return mask


def profile_probabilities(x: np.ndarray) -> np.ndarray:
    """``Pr_x(k)`` for independent mixed strategies x of shape (C, m): shape (C, 2**m).

    Built by doubling: profiles with bit i set are those without it times ``x_i``."""
    c, m = x.shape
    prob = np.empty((c, 2 ** m))
    prob[:, 0] = 1.0
    for i in range(m):  # profile index grows with player i as bit i
        half = 1 << i
        xi = x[:, i:i + 1]
        np.multiply(prob[:, :half], xi, out=prob[:, half:2 * half])
        prob[:, :half] *= 1.0 - xi
    return prob


def expected_gains(table_gains: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``G_i(x)`` for every player: shape (C, m)."""
    return np.einsum("cp,cpi->ci", profile_probabilities(x), table_gains)


def gain_jacobian(table_gains: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``J[c, i, j] = dG_i / dx_j`` (zero on the diagonal): shape (C, m, m)."""
    c, P, m = table_gains.shape
    prob = profile_probabilities(x)
    k = np.arange(P)
    jac = np.zeros((c, m, m))
    for j in range(m):
        bit = 1 << j
        second = table_gains[:, k | bit, :] - table_gains[:, k & ~bit, :]
        jac[:, :, j] = np.einsum("cp,cpi->ci", prob, second)
    idx = np.arange(m)
    jac[:, idx, idx] = 0.0
    return jac


def replicator_jacobian(table_gains: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Jacobian of the multi-population replicator dynamics at x: shape (C, m, m)."""
    g = expected_gains(table_gains, x)
    jac = (x * (1.0 - x))[:, :, None] * gain_jacobian(table_gains, x)
    idx = np.arange(x.shape[1])
    jac[:, idx, idx] += (1.0 - 2.0 * x) * g
    return jac


def logit_jacobian(table_gains: np.ndarray, x: np.ndarray, rationality: float) -> np.ndarray:
    """Jacobian of the logit dynamics at x (a quantal response equilibrium): (C, m, m)."""
    m = x.shape[1]
    slope = rationality * sigmoid(rationality * expected_gains(table_gains, x))
    slope = slope * (1.0 - sigmoid(rationality * expected_gains(table_gains, x)))
    return slope[:, :, None] * gain_jacobian(table_gains, x) - np.eye(m)[None]


def is_replicator_rest_point(table_gains: np.ndarray, x: np.ndarray, tol: float) -> np.ndarray:
    """Whether x is a rest point of the replicator dynamics (C,): ``x_i (1-x_i) G_i = 0``."""
    velocity = x * (1.0 - x) * expected_gains(table_gains, x)
    return np.all(np.abs(velocity) <= tol, axis=1)


def classify(eigenvalues: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Stability code per cell from the eigenvalues (C, m) of a Jacobian.

    ``stable``: every real part < -tol (asymptotically stable); ``unstable``: some real part
    > tol; otherwise ``centre`` if an eigenvalue with zero real part has a nonzero imaginary
    part (closed orbits around the point in the linearisation), else ``neutral`` (a zero
    eigenvalue: drift along a set of rest points). Returns (codes, largest real part).
    """
    if eigenvalues.shape[-1] == 0:
        return np.full(eigenvalues.shape[0], NEUTRAL, dtype=np.int8), np.zeros(
            eigenvalues.shape[0])
    real = eigenvalues.real
    top = real.max(axis=-1)
    on_axis = np.abs(real) <= tol
    rotating = np.any(on_axis & (np.abs(eigenvalues.imag) > tol), axis=-1)
    codes = np.where(top > tol, UNSTABLE,
                     np.where(top < -tol, STABLE, np.where(rotating, CENTRE, NEUTRAL)))
    return codes.astype(np.int8), top


@dataclass(frozen=True)
class Solution:
    """Mixed profiles found by an iterative method, with a per-cell success flag."""

    x: np.ndarray
    converged: np.ndarray


def totally_mixed_equilibrium(table_gains: np.ndarray, tol: float, max_iter: int = 60,
                              start: np.ndarray | None = None) -> Solution:
    """A totally mixed Nash equilibrium: a root of ``G(x) = 0`` inside the open cube.

    Newton's method from the centre of the cube (or ``start``). The indifference conditions
    are multilinear, so for two players they are linear and one step is exact. For more
    players other totally mixed equilibria may exist; this returns the one Newton reaches.
    ``converged`` is False where no interior root was found.
    """
    c, P, m = table_gains.shape
    x = np.full((c, m), 0.5) if start is None else start.copy()
    for _ in range(max_iter):
        g = expected_gains(table_gains, x)
        jac = gain_jacobian(table_gains, x)
        step = _safe_solve(jac, -g)
        x = x + step
        if np.all(np.abs(step) < tol * 1e-2):
            break
    g = expected_gains(table_gains, np.clip(x, 0.0, 1.0))
    inside = np.all((x > tol) & (x < 1.0 - tol), axis=1)
    converged = inside & np.all(np.abs(g) < tol * 10, axis=1) & np.all(np.isfinite(x), axis=1)
    return Solution(np.where(converged[:, None], x, np.nan), converged)


def logit_equilibrium(table_gains: np.ndarray, rationality: float, tol: float,
                      max_steps: int = 20000) -> Solution:
    """The logit QRE at precision ``rationality``: the first point at that precision on the
    principal branch.

    The branch starts at the uniform profile at lambda = 0 (McKelvey & Palfrey 1995) and is
    traced by pseudo-arclength continuation in ``(z, lambda)``, with ``z = logit(x)`` solving
    ``H(z, lambda) = z - lambda G(sigmoid(z)) = 0`` (Turocy 2005). Arclength rather than
    lambda as the parameter lets the tracer follow the branch round folds, where lambda
    turns back, instead of jumping to another sheet. Each cell keeps its own step size: a
    step is accepted only if Newton's corrector converges close to the predicted point and
    the branch turns by less than 30 degrees, otherwise it is halved. When lambda first
    passes ``rationality`` the point is refined at exactly that lambda. ``converged`` is
    False for cells whose step size collapsed or that ran out of steps.
    """
    c, P, m = table_gains.shape
    target = float(rationality)
    if target == 0 or m == 0 or c == 0:
        return Solution(np.full((c, m), 0.5), np.ones(c, dtype=bool))

    def residual_and_jacobian(z, lam, gains):
        x = sigmoid(z)
        g = expected_gains(gains, x)
        jz = np.eye(m)[None] - lam[:, None, None] * gain_jacobian(gains, x) * (
            x * (1.0 - x))[:, None, :]
        return z - lam[:, None] * g, jz, -g  # H, dH/dz, dH/dlambda

    def tangent(z, lam, gains, previous):
        _, jz, jl = residual_and_jacobian(z, lam, gains)
        top = np.concatenate([jz, jl[:, :, None]], axis=2)
        system = np.concatenate([top, previous[:, None, :]], axis=1)
        rhs = np.zeros((z.shape[0], m + 1))
        rhs[:, m] = 1.0
        t = _safe_solve(system, rhs)
        return t / np.linalg.norm(t, axis=1, keepdims=True)

    z = np.zeros((c, m))
    lam = np.zeros(c)
    step = np.full(c, 0.1)
    direction = np.zeros((c, m + 1))
    direction[:, m] = 1.0
    direction = tangent(z, lam, table_gains, direction)
    result = np.full((c, m), np.nan)
    converged = np.zeros(c, dtype=bool)
    active = np.ones(c, dtype=bool)
    for _ in range(max_steps):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        gains, t = table_gains[idx], direction[idx]
        u0 = np.concatenate([z[idx], lam[idx, None]], axis=1)
        predicted = u0 + step[idx, None] * t
        u = predicted.copy()
        ok = np.zeros(idx.size, dtype=bool)
        for _ in range(8):  # corrector: H(u) = 0 on the hyperplane normal to t
            h, jz, jl = residual_and_jacobian(u[:, :m], u[:, m], gains)
            system = np.concatenate(
                [np.concatenate([jz, jl[:, :, None]], axis=2), t[:, None, :]], axis=1)
            rhs = np.concatenate([h, np.einsum("ci,ci->c", t, u - predicted)[:, None]], axis=1)
            delta = _safe_solve(system, -rhs)
            u = u + delta
            ok = np.all(np.abs(delta) <= 1e-11 * (1.0 + np.abs(u)), axis=1)
            if ok.all():
                break
        h, _, _ = residual_and_jacobian(u[:, :m], u[:, m], gains)
        ok &= np.all(np.abs(h) <= tol * (1.0 + np.abs(u[:, :m])), axis=1)
        ok &= np.linalg.norm(u - predicted, axis=1) <= 0.25 * step[idx]
        new_t = np.where(ok[:, None], tangent(u[:, :m], u[:, m], gains, t), t)
        ok &= np.einsum("ci,ci->c", new_t, t) >= np.cos(np.pi / 6)
        ok &= np.all(np.isfinite(u), axis=1)

        crossed = ok & (u[:, m] >= target)
        if crossed.any():  # refine at lambda = target from the chord between the two points
            j = idx[crossed]
            old, new = u0[crossed], u[crossed]
            share = (target - old[:, m]) / (new[:, m] - old[:, m])
            zt = old[:, :m] + share[:, None] * (new[:, :m] - old[:, :m])
            at = np.full(j.size, target)
            for _ in range(30):
                hz, jz, _ = residual_and_jacobian(zt, at, table_gains[j])
                delta = _safe_solve(jz, -hz)
                zt = zt + delta
                if np.all(np.abs(delta) <= 1e-12 * (1.0 + np.abs(zt))):
                    break
            hz, _, _ = residual_and_jacobian(zt, at, table_gains[j])
            good = np.all(np.abs(hz) <= tol * (1.0 + np.abs(zt)), axis=1)
            result[j] = sigmoid(zt)
            converged[j] = good
            active[j] = False
        moving = ok & ~crossed
        j = idx[moving]
        z[j], lam[j], direction[j] = u[moving, :m], u[moving, m], new_t[moving]
        step[j] = np.minimum(step[j] * 1.5, 0.25 * (1.0 + np.abs(u[moving]).max(axis=1)))
        j = idx[~ok]
        step[j] *= 0.5
        collapsed = j[step[j] < 1e-9]
        active[collapsed] = False
    return Solution(result, converged)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function ``1 / (1 + exp(-z))``, written with tanh so it cannot overflow."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _safe_solve(jac: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Batched solve; singular systems give NaN steps rather than an exception."""
    try:
        return np.linalg.solve(jac, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        out = np.full_like(rhs, np.nan)
        for c in range(jac.shape[0]):
            try:
                out[c] = np.linalg.solve(jac[c], rhs[c])
            except np.linalg.LinAlgError:
                pass
        return out
