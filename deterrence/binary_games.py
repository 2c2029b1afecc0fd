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
    """``Pr_x(k)`` for independent mixed strategies x of shape (C, m): shape (C, 2**m)."""
    c, m = x.shape
    prob = np.ones((c, 1))
    for i in range(m):  # profile index grows with player i as bit i
        xi = x[:, i:i + 1]
        prob = np.concatenate([prob * (1.0 - xi), prob * xi], axis=1)
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
    slope = rationality * _sigmoid(rationality * expected_gains(table_gains, x))
    slope = slope * (1.0 - _sigmoid(rationality * expected_gains(table_gains, x)))
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
                      steps: int | None = None, newton_iter: int = 30) -> Solution:
    """The logit QRE on the principal branch at precision ``rationality``.

    Follows the branch from the uniform profile at lambda = 0 (McKelvey & Palfrey 1995;
    Turocy 2005) with a geometric lambda schedule and Newton corrections in log-odds
    coordinates z = logit(x), solving ``z = lambda G(sigmoid(z))``. A cell is flagged as not
    converged if a correction fails (e.g. a turning point of the branch in lambda).
    """
    c, P, m = table_gains.shape
    z = np.zeros((c, m))
    converged = np.ones(c, dtype=bool)
    if rationality == 0 or m == 0:
        return Solution(_sigmoid(z), converged)
    if steps is None:
        steps = int(40 + 30 * np.log10(1.0 + rationality))
    schedule = np.geomspace(min(1e-2, rationality), rationality, steps)
    eye = np.eye(m)[None]
    for lam in schedule:
        for _ in range(newton_iter):
            x = _sigmoid(z)
            residual = z - lam * expected_gains(table_gains, x)
            dxdz = x * (1.0 - x)
            jac = eye - lam * gain_jacobian(table_gains, x) * dxdz[:, None, :]
            step = _safe_solve(jac, -residual)
            z = z + step
            if np.all(np.abs(step) < 1e-12 + 1e-10 * np.abs(z)):
                break
        x = _sigmoid(z)
        ok = np.all(np.abs(z - lam * expected_gains(table_gains, x)) < tol * (1 + np.abs(z)),
                    axis=1)
        converged &= ok
    return Solution(_sigmoid(z), converged)


def _sigmoid(z: np.ndarray) -> np.ndarray:
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
