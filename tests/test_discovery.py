"""Scenario discovery with PRIM: planted boxes are found, a box's statistics agree with a
count of the points inside its limits, the selection rule holds on the trajectory, bad
input is refused by name, and sweep datasets (grid and sample layouts) are read right."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import xarray as xr

from deterrence.analysis import discovery as dc

N = 3000


def inside(x: dict[str, np.ndarray], box: dc.Box) -> np.ndarray:
    """The points within the box's limits (both ends included), counted afresh."""
    mask = np.ones(next(iter(x.values())).size, dtype=bool)
    for name, (low, high) in box.limits.items():
        mask &= (x[name] >= low) & (x[name] <= high)
    return mask


def assert_statistics(x: dict[str, np.ndarray], y: np.ndarray, box: dc.Box) -> None:
    mask = inside(x, box)
    assert box.cases == mask.sum()
    assert box.mass == pytest.approx(mask.mean(), abs=1e-12)
    assert box.density == pytest.approx(y[mask].mean(), abs=1e-12)
    assert box.coverage == pytest.approx(y[mask].sum() / y.sum(), abs=1e-12)
    chosen = box.trajectory[box.selected]
    assert (chosen.coverage, chosen.density, chosen.mass) == (box.coverage, box.density,
                                                              box.mass)
    assert chosen.restricted == len(box.limits)


@pytest.fixture(scope="module")
def planted():
    """y = (a < 0.3) & (b > 0.6) on 4 uniform inputs, with 2% of the labels flipped."""
    rng = np.random.default_rng(20240611)
    x = dict(zip("abcd", rng.uniform(size=(4, N)), strict=True))
    y = (x["a"] < 0.3) & (x["b"] > 0.6)
    y ^= rng.uniform(size=N) < 0.02
    return x, y, dc.find_box(x, y, min_density=0.9, outcome_label="fails")


def test_planted_box_is_found(planted):
    x, y, box = planted
    assert list(box.limits) == ["a", "b"]
    (a_low, a_high), (b_low, b_high) = box.limits["a"], box.limits["b"]
    assert a_low == x["a"].min() and b_high == x["b"].max()  # one-sided restrictions
    assert abs(a_high - 0.3) < 0.03 and abs(b_low - 0.6) < 0.03
    assert box.density >= 0.9 and box.coverage >= 0.85
    assert box.ranges == {k: (v.min(), v.max()) for k, v in x.items()}
    assert re.fullmatch(r"fails when a < 0\.\d{1,3} and b > 0\.\d{1,3} "
                        r"\(coverage 0\.\d\d, density 0\.\d\d\)", box.describe())
    assert_statistics(x, y, box)


def test_selection_rule_on_the_trajectory(planted):
    _, _, box = planted
    dense = [t for t in box.trajectory if t.density >= 0.9]
    assert dense and box.density >= 0.9
    assert box.coverage == max(t.coverage for t in dense)
    assert box.trajectory[0].mass == 1.0 and box.trajectory[0].restricted == 0
    # a lower density wanted never gives a box with less coverage
    x, y, _ = planted
    looser = dc.find_box(x, y, min_density=0.6)
    assert looser.coverage >= box.coverage and looser.density >= 0.6
    assert_statistics(x, y, looser)
    # no box reaches the density asked for: the densest one
    densest = dc.find_box(x, y, min_density=1.0)
    assert densest.density == max(t.density for t in densest.trajectory) < 1.0


def test_deterministic(planted):
    x, y, box = planted
    again = dc.find_box({k: v.copy() for k, v in x.items()}, y.copy(), min_density=0.9,
                        outcome_label="fails")
    assert again == box


def test_between():
    rng = np.random.default_rng(7)
    x = dict(zip("abc", rng.uniform(size=(3, 1500)), strict=True))
    y = (x["c"] > 0.4) & (x["c"] < 0.7)
    box = dc.find_box(x, y, min_density=0.95)
    assert list(box.limits) == ["c"]
    low, high = box.limits["c"]
    assert abs(low - 0.4) < 0.03 and abs(high - 0.7) < 0.03
    assert re.fullmatch(r"y when c between 0\.\d{1,3} and 0\.\d{1,3} \(coverage 1\.00, "
                        r"density 0\.9\d\)", box.describe())
    assert_statistics(x, y, box)


def test_grid_ties_give_midpoints():
    """On a grid a peel removes whole grid lines: the limit falls between grid values."""
    g, h = np.meshgrid(np.linspace(0, 1, 11), np.linspace(0, 1, 7), indexing="ij")
    x = {"g": g.ravel(), "h": h.ravel()}
    y = (x["g"] < 0.4) & (x["h"] > 0.3)
    box = dc.find_box(x, y)
    assert box.limits == {"g": (0.0, pytest.approx(0.35)), "h": (pytest.approx(0.25), 1.0)}
    assert (box.coverage, box.density) == (1.0, 1.0)
    assert_statistics(x, y, box)


def test_no_positives_all_positives_and_constant_inputs():
    x = {"a": np.linspace(0, 1, 20), "k": np.full(20, 3.0)}
    assert dc.find_box(x, np.zeros(20, dtype=bool)) is None
    whole = dc.find_box(x, np.ones(20, dtype=bool), outcome_label="bad")
    assert (whole.limits, whole.coverage, whole.density, whole.mass, whole.cases) == (
        {}, 1.0, 1.0, 1.0, 20)
    assert whole.describe() == "bad over the whole sampled range (coverage 1.00, density 1.00)"
    box = dc.find_box(x, x["a"] < 0.5)
    assert list(box.ranges) == ["a"]  # the constant one is left out
    assert box.limits == {"a": (0.0, pytest.approx((9 / 19 + 10 / 19) / 2))}


@pytest.mark.parametrize(("x", "y", "names"), [
    ({"a": np.arange(12.0)}, np.ones(11, dtype=bool), "x['a']"),
    ({"a": np.r_[np.arange(11.0), np.nan]}, np.ones(12, dtype=bool), "x['a']"),
    ({"a": np.arange(12.0)}, np.ones(12), "y"),
    ({"a": np.arange(5.0)}, np.ones(5, dtype=bool), "y: 5 points"),
    ({}, np.ones(12, dtype=bool), "x:"),
    ({"a": ["p"] * 12}, np.ones(12, dtype=bool), "x['a']"),
])
def test_bad_input_is_named(x, y, names):
    with pytest.raises(ValueError, match="^" + re.escape(names)):
        dc.find_box(x, y)


@pytest.mark.parametrize("option", ["min_density", "mass_min", "peel_alpha", "paste_alpha"])
@pytest.mark.parametrize("value", [0.0, 1.5, float("nan")])
def test_bad_options_are_named(option, value):
    with pytest.raises(ValueError, match=rf"^{option} = "):
        dc.find_box({"a": np.arange(12.0)}, np.arange(12) < 3, **{option: value})


def test_describe_format():
    box = dc.Box(limits={"format.commitment_bindingness": (0.0, 0.2),
                         "russia.war_cost": (0.05, 0.35)},
                 coverage=0.8149, density=0.7666, mass=0.2, cases=40,
                 outcome_label="escalation frequency > 0.5",
                 ranges={"format.commitment_bindingness": (0.0, 1.0),
                         "russia.war_cost": (0.05, 0.5), "russia.other": (0.0, 1.0)})
    assert box.describe() == ("escalation frequency > 0.5 when format.commitment_bindingness "
                              "< 0.2 and russia.war_cost < 0.35 (coverage 0.81, density 0.77)")
    box = dc.Box(limits={"a": (0.612345, 1.0), "b": (0.4, 0.7), "c": (-np.inf, 1234.5)},
                 coverage=1.0, density=0.995, mass=0.1, cases=5,
                 ranges={"a": (0.0, 1.0), "b": (0.0, 1.0)})
    assert box.describe() == ("y when a > 0.612 and b between 0.4 and 0.7 and c < 1.23e+03 "
                              "(coverage 1.00, density 0.99)")


def test_quiet_and_lazy(planted, caplog):
    x, y, _ = planted
    caplog.set_level(logging.DEBUG)
    level = logging.getLogger("EMA").level
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dc.find_box({k: v[:500] for k, v in x.items()}, y[:500])
    assert caught == []
    assert not [r for r in caplog.records if r.name.startswith("EMA")]
    assert logging.getLogger("EMA").level == level  # restored
    code = ("import sys, deterrence.analysis.discovery; "
            "assert 'ema_workbench' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------
# Sweep datasets


WAR = "russia.war_cost"
BIND = "format.commitment_bindingness"


def grid_datasets():
    """Two formats on an 11 x 6 grid (plus a one-value axis), 3 replicates. Under "weak"
    Russia escalates where war_cost < 0.4; its exact regime is "abandoned" where
    bindingness < 0.3. "strong" never fails."""
    war, bind, aid = np.linspace(0, 1, 11), np.linspace(0, 1, 6), np.array([2.0])
    w = war[:, None, None, None]
    b = bind[None, :, None, None]
    replicate_noise = np.array([-0.1, 0.0, 0.1])
    weak = np.where(w < 0.4, 0.9, 0.1) + replicate_noise + 0 * b
    esc = np.stack([weak, np.zeros_like(weak)])
    regime = np.stack([np.where(bind[None, :, None] < 0.3, 2, 0) + 0 * war[:, None, None],
                       np.zeros((11, 6, 1), dtype=int)])
    coords = {"format": ["weak", "strong"], WAR: war, BIND: bind, "aid.level": aid}
    sim = xr.Dataset({"escalation_frequency": (("format", WAR, BIND, "aid.level",
                                                "replicate"), esc)},
                     coords={**coords, "replicate": np.arange(3)})
    exact = xr.Dataset({"regime": (("format", WAR, BIND, "aid.level"),
                                   regime.astype(np.int8))}, coords=coords)
    return sim, exact


def test_failure_box_on_a_grid():
    sim, exact = grid_datasets()
    box = dc.find_failure_box(sim, exact, "weak")
    assert box.limits == {WAR: (0.0, pytest.approx(0.35))}
    assert (box.coverage, box.density) == (1.0, 1.0)
    assert list(box.ranges) == [WAR, BIND]  # aid.level does not vary
    assert box.describe() == ("escalation frequency > 0.5 when russia.war_cost < 0.35 "
                              "(coverage 1.00, density 1.00)")
    assert dc.find_failure_box(sim, exact, "strong") is None

    regime = dc.find_failure_box(None, exact, "weak", "regime_not_deterred")
    assert regime.limits == {BIND: (0.0, pytest.approx(0.3))}
    assert regime.describe().startswith("regime not deterred when format.commitment_")


def test_failure_box_on_samples():
    rng = np.random.default_rng(3)
    war, bind = rng.uniform(0, 1, 400), rng.uniform(0.2, 0.9, 400)
    esc = np.where(war < 0.4, 0.8, 0.2)[None, :, None] + np.zeros((1, 1, 2))
    esc[0, :5, :] = np.nan  # undefined everywhere: left out
    sim = xr.Dataset({"abandoned_given_escalation": (("format", "sample", "replicate"), esc)},
                     coords={"format": ["f"], "sample": np.arange(400),
                             WAR: ("sample", war), BIND: ("sample", bind),
                             "replicate": np.arange(2)})
    box = dc.find_failure_box(sim, None, "f", "abandoned_given_escalation", threshold=0.6,
                              min_density=0.95)
    assert list(box.limits) == [WAR]
    assert abs(box.limits[WAR][1] - 0.4) < 0.03
    x, y = {WAR: war[5:], BIND: bind[5:]}, war[5:] < 0.4
    assert_statistics(x, y, box)
    assert box.describe().startswith("abandoned given escalation > 0.6 when")


def test_failure_box_errors():
    sim, exact = grid_datasets()
    with pytest.raises(ValueError, match=r"outcome = 'regime'.*allowed:.*escalation_frequency"):
        dc.find_failure_box(sim, exact, "weak", "regime")
    with pytest.raises(ValueError, match=r"format_id = 'nato'.*allowed: weak, strong"):
        dc.find_failure_box(sim, exact, "nato")
    with pytest.raises(ValueError, match=r"sim has no variable 'deterred_share'"):
        dc.find_failure_box(sim, exact, "weak", "deterred_share")
    with pytest.raises(ValueError, match=r"read from exact, which is None"):
        dc.find_failure_box(sim, None, "weak", "regime_not_deterred")


def test_failure_box_on_a_real_sweep():
    """The layout the sweep module writes: its grid and its Latin hypercube datasets."""
    from deterrence import api
    from deterrence.game.config import SCENARIOS_DIR, load_scenario

    scenario = load_scenario(SCENARIOS_DIR / "baseline.toml")
    axes = [{"path": BIND, "low": 0.0, "high": 1.0}, {"path": "russia.status_quo_value",
                                                      "low": 0.1, "high": 0.7}]
    common = {"name": "t", "scenario": "-", "formats": ["budapest"], "replicates": 2,
              "steps": 20}
    for extra, counts in (({"method": "grid"}, 8), ({"method": "lhs", "samples": 80}, None)):
        spec = api.SweepSpec.model_validate(
            {**common, **extra, "axes": [{**a, "count": counts} if counts else a
                                         for a in axes]})
        plan = api.resolve(spec, scenario)
        exact, sim = api.exact_dataset(plan), api.simulate_plan(plan)
        params = plan.points.T
        x = {a.path: params[j] for j, a in enumerate(spec.axes)}  # point order of the plan
        for outcome in ("regime_not_deterred", "escalation_frequency"):
            box = dc.find_failure_box(sim, exact, "budapest", outcome)
            if outcome == "regime_not_deterred":
                y = exact["regime"].sel(format="budapest").values.ravel() != 0
            else:
                y = sim[outcome].sel(format="budapest").mean("replicate").values.ravel() > 0.5
            assert box is not None and box.limits
            assert_statistics(x, y, box)
