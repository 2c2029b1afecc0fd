"""The compiled paths of the expectations (deterrence.game.kernels) and the prepared rule.

* ``honour_response`` (Phi: the gain through the logistic, in one compiled pass) against the
  gains summed over all 2^n pure profiles (tests/test_oracles.py) through scipy's logistic.
* ``settle_response`` (the clipped iteration of Phi, compiled) against the same iteration
  written out here, one cell at a time with numpy.
* A :class:`Quadrature` prepared for a game and taken to some of its cells gives the same
  numbers as the rule prepared for those cells alone, also where the cells use different
  rules (Laguerre rules of several sizes and the composite rule).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit
from test_oracles import ROUNDING, _case, _draw_q, _scale, enumerated

from deterrence.game import payoffs as pay
from deterrence.game.payoffs import (
    LAGUERRE_NODES,
    QUADRATURE_TOLERANCE,
    build_game,
    expectation,
    honour_response,
    prepare_quadrature,
    settle_response,
)

from helpers import random_case

#: Random instances per number of members, and honouring probabilities drawn per instance.
INSTANCES, DRAWS = 4, 6


@pytest.mark.parametrize("n", range(1, 9))
def test_the_response_agrees_with_the_enumeration_of_all_profiles(n):
    for k in range(INSTANCES):
        game, _, _ = _case((20, n, k), n)
        cells, q = _draw_q(np.random.default_rng((21, n, k)), game, DRAWS)
        sigma = cells.resolve_scale
        want = np.where(cells.engaged, 1.0, expit(enumerated(cells, q)["gain"] / sigma))
        # the logistic's slope is at most 1 / (4 sigma): the gain's error through it
        gain_tol = _scale(cells) * (2 * QUADRATURE_TOLERANCE + 2 * ROUNDING)
        np.testing.assert_allclose(honour_response(cells, q), want, rtol=0,
                                   atol=gain_tol / (4 * sigma.min()) + ROUNDING)


def _iterate_one_cell(game, q, lo, hi, iterations, width):
    """q <- clip(Phi(q), lo, hi) until a step moves q by at most ``width``: one cell."""
    for _ in range(iterations):
        new = np.clip(honour_response(game, q), lo, hi)
        moved = np.max(np.abs(new - q))
        q = new
        if moved <= width:
            break
    return q


@pytest.mark.parametrize("iterations", [1, 3, 2000])
def test_settling_iterates_the_clipped_response_in_each_cell_alone(iterations):
    rng = np.random.default_rng((22, iterations))
    sc, f = random_case(rng, 5)
    game = build_game(sc, f, {"format.commitment_bindingness": np.linspace(0.0, 1.0, 7)})
    lo = np.where(game.engaged, 1.0, rng.uniform(0.0, 0.4, (game.cells, game.n)))
    hi = np.where(game.engaged, 1.0, rng.uniform(0.6, 1.0, (game.cells, game.n)))
    width = 1e-12
    got, residual = settle_response(game, (lo + hi) / 2.0, lo, hi, iterations, width,
                                    residual=True)
    for c in range(game.cells):
        one = game.take([c])
        want = _iterate_one_cell(one, (lo[c:c + 1] + hi[c:c + 1]) / 2.0, lo[c:c + 1],
                                 hi[c:c + 1], iterations, width)
        np.testing.assert_array_equal(got[c:c + 1], want)
        assert residual[c] == np.max(np.abs(honour_response(one, want) - want))


def test_a_prepared_rule_taken_to_some_cells_is_the_rule_of_those_cells():
    rng = np.random.default_rng(23)
    sc, f = random_case(rng, 4)
    # military budgets from small to far beyond the largest Laguerre rule's limit
    factor = np.geomspace(0.05, 40.0, 12)
    game = build_game(sc, f, {
        f"guarantors.G{i}.military_spending_usd_bn":
            sc.guarantor(f"G{i}").military_spending_usd_bn * factor for i in range(4)})
    rule = prepare_quadrature(game)
    nodes = set(rule.count.tolist())
    assert len(nodes & set(LAGUERRE_NODES)) >= 2 and nodes - set(LAGUERRE_NODES), nodes
    index = rng.permutation(game.cells)[:8]
    sub = game.take(index)
    q = rng.uniform(0.0, 1.0, (index.size, game.n))
    taken, alone = expectation(sub, q, rule.take(index)), expectation(sub, q)
    for name in ("success", "success_if", "sanctions", "risk", "risk_if", "respond"):
        np.testing.assert_array_equal(getattr(taken, name), getattr(alone, name), err_msg=name)
    np.testing.assert_array_equal(pay.gain_jacobian(sub, q, rule.take(index)),
                                  pay.gain_jacobian(sub, q))
