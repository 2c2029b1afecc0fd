"""The simulations' reinforcement when deterrence is never tested: readiness erodes.

Where Russia never escalates, no member ever experiences a crisis, so its attraction of
honouring only pays for staying ready: each round it falls by ``(1 - m) rho``
(``m`` = ``attraction_memory``, ``rho`` its readiness cost). After enough untested rounds a
member deciding alone would no longer honour. Without a readiness cost nothing moves it.
The start value is checked against the member's expected gain of honouring, worked out here
from the payoff equations for a single member.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from deterrence.simulate import engine
from deterrence.simulate import rules as dyn

from helpers import fmt, guarantor, scenario

ROUNDS = 300
RUNS = 50
#: Russia's payoff of refraining: far above anything a war can bring it (at most its war
#: aims, worth 1), so that with its resolve scale of 0.1 it escalates with a probability
#: below Lambda(-20), about 2e-9, each round.
SECURE_STATUS_QUO = 3.0
STATIC = {"war_damage": 0.0, "aid_persistence": 0.0, "sanctions_drag": 0.0}


def single_ally(readiness: float):
    ally = guarantor("A", military_spending_usd_bn=300.0, stake_in_ukraine=1.0,
                     honouring_cost=0.3, audience_cost=0.3, readiness_cost=readiness)
    spec = fmt(commitment_bindingness=1.0, response_delay_days=0.0,
               response={"denial_share": 0.5, "cost_share": 1.0})
    sc = scenario([ally], russia={"status_quo_value": SECURE_STATUS_QUO}, dynamics=STATIC)
    return sc, spec


def expected_gain_alone(sc, spec) -> float:
    """The ally's gain of honouring, from the payoff equations: it is the only member, so
    ``G = r - h + stake (P(0) - P(1)) - catastrophe (risk(1) - risk(0))``."""
    ally = sc.guarantors[0]
    m = sc.russia.military_spending_usd_bn
    ukraine = sc.ukraine.military_spending_usd_bn + sc.ukraine.baseline_military_aid_usd_bn
    added = spec.response.denial_share * ally.military_spending_usd_bn  # no delay: tau = 1
    success_alone = m / (m + ukraine)
    success_helped = m / (m + ukraine + added) * (1.0 - spec.response.decisive_probability)
    risk = (spec.response.direct_combat * ally.nuclear_armed
            * sc.russia.nuclear_escalation_probability)
    return (spec.commitment_bindingness * ally.audience_cost
            - spec.response.cost_share * ally.honouring_cost
            + ally.stake_in_ukraine * (success_alone - success_helped)
            - ally.catastrophe_cost * risk)


@pytest.mark.parametrize("readiness", [0.05, 0.0])
def test_untested_readiness_erodes_and_without_a_readiness_cost_stays(readiness):
    sc, spec = single_ally(readiness)
    setup = dyn.Setup.from_config(sc, spec)
    start = dyn.initial_attraction(setup.base, setup.params)[0, 0]
    assert start == pytest.approx(expected_gain_alone(sc, spec), rel=1e-12)
    assert start > 0.1  # the ally starts ready to honour
    sim = engine.simulate(setup, RUNS, ROUNDS, keep_series=True)
    assert not sim.series["escalated"].any()  # never tested
    attraction = sim.series["attraction"][:, :, 0]
    # the same path in every run: start - (t + 1) (1 - m) rho after round t
    step = (1.0 - sc.dynamics.attraction_memory) * readiness
    expected = start - step * np.arange(1, ROUNDS + 1)
    np.testing.assert_allclose(attraction, np.broadcast_to(expected, attraction.shape),
                               rtol=0, atol=1e-12)
    final = attraction[:, -1]
    sigma = sc.guarantors[0].resolve_scale
    alone = dyn.alone_probability(final, np.full_like(final, sigma))
    if readiness > 0:
        assert np.all(final < 0)
        # deciding alone, the ally would no longer honour
        assert np.all(alone < 0.01)
        assert math.isclose(float(alone[0]), 1.0 / (1.0 + math.exp(-final[0] / sigma)))
    else:
        assert np.all(final == start)
        assert np.all(alone > 0.9)
