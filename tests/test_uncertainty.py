"""Assumptions carried as uncertainty: distributions in place of values, the joint prior's
sample, the table of each format's answer, and the archived study.

Oracles: closed-form quantiles and medians of the distributions; Wilson's interval in
closed form at 0 successes; the one-point solver (``api.solve_formats`` on a scenario with
the sampled values written in) as a second computation of every sampled point; and model
properties over the prior (a costlier war never makes escalation likelier, point by point,
under common random numbers).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from deterrence import api
from deterrence.analysis.uncertainty import wilson_interval
from deterrence.cli import app
from deterrence.game import config as C
from deterrence.solve.equilibrium import DETERRED
from deterrence.sweep.datasets import solve as solve_points
from deterrence.sweep.spec import Plan

BASELINE = C.SCENARIOS_DIR / "baseline.toml"
runner = CliRunner()


def scenario_file(tmp_path: Path, russia: str, name: str = "uncertain", extra: str = "") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'extends = "{BASELINE}"\nname = "{name}"\n{extra}\n[russia]\n{russia}\n')
    return path


# ---------------------------------------------------------------------------------------
# Distributions


@pytest.mark.parametrize(("low", "mode", "high"), [(0.1, 0.2, 0.4), (0.0, 0.9, 1.0),
                                                   (2.0, 2.0, 5.0)])
def test_triangular_median_is_the_closed_form(low, mode, high):
    d = C.Distribution(distribution="triangular", low=low, mode=mode, high=high)
    if mode >= (low + high) / 2:
        median = low + math.sqrt((high - low) * (mode - low) / 2)
    else:
        median = high - math.sqrt((high - low) * (high - mode) / 2)
    assert d.point() == pytest.approx(median, rel=1e-12)


def test_quantiles_of_each_kind_match_their_definitions():
    u = np.linspace(0.01, 0.99, 99)
    uniform = C.Distribution(distribution="uniform", low=2.0, high=6.0)
    np.testing.assert_allclose(uniform.quantile(u), 2.0 + 4.0 * u, rtol=1e-15)
    flat = C.Distribution(distribution="beta", alpha=1.0, beta=1.0, low=1.0, high=3.0)
    np.testing.assert_allclose(flat.quantile(u), 1.0 + 2.0 * u, rtol=1e-12)
    lognormal = C.Distribution(distribution="lognormal", median=0.1, sigma=0.5)
    # untruncated: exp(log(median) + sigma * z_u)
    np.testing.assert_allclose(lognormal.quantile(u), 0.1 * np.exp(0.5 * stats.norm.ppf(u)),
                               rtol=1e-9)
    normal = C.Distribution(distribution="normal", mean=0.5, sd=0.2)
    x = normal.quantile(u, 0.0, 1.0)  # truncated to [0, 1], symmetric about 0.5
    assert x.min() > 0 and x.max() < 1
    np.testing.assert_allclose(x + x[::-1], 1.0, atol=1e-12)
    # the truncated cdf at the quantile is the level
    a, b = (0 - 0.5) / 0.2, (1 - 0.5) / 0.2
    z = (stats.norm.cdf((x - 0.5) / 0.2) - stats.norm.cdf(a)) / (stats.norm.cdf(b)
                                                                  - stats.norm.cdf(a))
    np.testing.assert_allclose(z, u, atol=1e-12)


def test_a_distribution_in_a_file_sets_the_value_to_its_median(tmp_path):
    path = scenario_file(tmp_path, 'war_cost = { distribution = "triangular", low = 0.1, '
                                   'mode = 0.2, high = 0.4, source = "assumption" }\n'
                                   'resolve_scale = { distribution = "lognormal", median = '
                                   '0.08, sigma = 0.4 }')
    s = C.load_scenario(path)
    assert s.russia.war_cost == pytest.approx(0.4 - math.sqrt(0.3 * 0.2 / 2), rel=1e-12)
    assert s.russia.resolve_scale == pytest.approx(0.08, rel=1e-6)  # truncation barely moves it
    assert sorted(s.prior) == ["russia.resolve_scale", "russia.war_cost"]
    assert s.prior["russia.resolve_scale"].source == "assumption"


@pytest.mark.parametrize(("russia", "extra", "words"), [
    ('war_cost = { distribution = "triangular", low = -0.1, mode = 0.2, high = 0.4 }', "",
     ["russia.war_cost", "[-0.1, 0.4]", ">= 0"]),
    ('war_cost = { distribution = "lognormal", median = 0.1 }', "",
     ["russia.war_cost", "sigma"]),
    ('war_cost = { distribution = "gamma", low = 1, high = 2 }', "",
     ["russia.war_cost.distribution", "gamma"]),
    ('war_cost = { distribution = "uniform", low = 0.1, high = 0.3, mean = 2 }', "",
     ["russia.war_cost", "mean", "low, high"]),
    ('war_cost = { distribution = "uniform", low = 0.3, high = 0.1 }', "",
     ["russia.war_cost.high", "0.1"]),
    ('war_cost = { distribution = "normal", mean = -50, sd = 1 }', "",
     ["russia.war_cost", "probability"]),
    ("war_cost = 0.2", '[dynamics]\nbelief_memory = { distribution = "uniform", low = 0.1, '
                       'high = 0.4 }', ["dynamics.belief_memory", "may not be a distribution"]),
    ("war_cost = 0.2", '[prior]\n"russia.war_cost" = { distribution = "uniform", low = 0.1, '
                       'high = 0.4 }', ["prior", "in place of"]),
])
def test_a_bad_distribution_is_one_clear_line(tmp_path, russia, extra, words):
    path = scenario_file(tmp_path, russia, extra=extra)
    with pytest.raises(C.ConfigError) as err:
        C.load_scenario(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message, message
    result = runner.invoke(app, ["uncertainty", str(path), "--samples", "4"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_a_format_file_takes_distributions(tmp_path):
    text = (C.FORMATS_DIR / "nato_lite.toml").read_text()
    lines = [line for line in text.splitlines()
             if not line.startswith("commitment_bindingness")]
    lines.insert(lines.index(next(x for x in lines if x.startswith("id"))) + 1,
                 'commitment_bindingness = { distribution = "beta", alpha = 4, beta = 4 }')
    path = tmp_path / "nato_lite.toml"
    path.write_text("\n".join(lines) + "\n")
    fmt = C.load_format(path)
    assert fmt.commitment_bindingness == pytest.approx(0.5, abs=1e-12)  # symmetric beta
    assert list(fmt.prior) == ["format.commitment_bindingness"]


# ---------------------------------------------------------------------------------------
# The table under the prior


def test_wilson_interval_at_zero_and_all_successes_is_the_closed_form():
    n, z = 256, 1.96
    low, high = wilson_interval(np.float64(0), n, z)
    assert low == pytest.approx(0.0, abs=1e-15)
    assert high == pytest.approx(z * z / (n + z * z), rel=1e-12)
    low, high = wilson_interval(np.float64(n), n, z)
    assert low == pytest.approx(n / (n + z * z), rel=1e-12)


def test_every_sampled_point_matches_the_one_point_solver(tmp_path):
    path = scenario_file(tmp_path, 'war_cost = { distribution = "uniform", low = 0.05, high '
                                   '= 0.6 }\nresolve_scale = { distribution = "lognormal", '
                                   'median = 0.1, sigma = 0.6 }')
    scenario = C.load_scenario(path)
    study = api.prior_study(scenario, ["bilateral", "budapest"], samples=8, seed=7)
    table = api.uncertainty_table(scenario, ["bilateral", "budapest"], samples=8, seed=7)
    for fid in ("bilateral", "budapest"):
        values = study.values[fid]
        p = []
        for k in range(8):
            point = api.with_parameters(scenario, {name: float(v[k])
                                                   for name, v in values.items()})
            (result,) = api.solve_formats(point, [fid])
            p.append(1.0 - result.escalation_probability)
        assert table.loc[fid, "p_deterred"] == pytest.approx(np.mean(p), abs=1e-12)
        assert table.loc[fid, "p_deterred_q05"] <= np.mean(p) <= table.loc[fid,
                                                                              "p_deterred_q95"]
    # common random numbers: both formats see the same sampled values
    for name in study.values["bilateral"]:
        np.testing.assert_array_equal(study.values["bilateral"][name],
                                      study.values["budapest"][name])


def test_without_distributions_every_point_is_the_scenario():
    table = api.uncertainty_table(BASELINE, ["nato_lite"], samples=4, calibrated=False)
    (result,) = api.solve_formats(BASELINE, ["nato_lite"])
    row = table.loc["nato_lite"]
    assert row["p_deterred"] == pytest.approx(1 - result.escalation_probability, abs=1e-15)
    assert row["p_deterred_low"] == row["p_deterred_high"] == row["p_deterred"]


def test_a_costlier_war_never_raises_escalation_point_by_point(tmp_path):
    """Under common random numbers the two priors' k-th points share their quantiles; the
    costlier prior's war cost is higher at every quantile, so P(escalate) is not higher."""
    cheap = C.load_scenario(scenario_file(
        tmp_path, 'war_cost = { distribution = "uniform", low = 0.05, high = 0.2 }\n'
                  'failed_war_value = { distribution = "uniform", low = 0.1, high = 0.5 }',
        "cheap"))
    dear = C.load_scenario(scenario_file(
        tmp_path, 'war_cost = { distribution = "uniform", low = 0.25, high = 0.6 }\n'
                  'failed_war_value = { distribution = "uniform", low = 0.1, high = 0.5 }',
        "dear"))
    formats = ["bilateral", "budapest", "three_tier"]
    a = api.prior_study(cheap, formats, samples=32, seed=3)
    b = api.prior_study(dear, formats, samples=32, seed=3)
    for fid in formats:
        np.testing.assert_array_equal(a.values[fid]["russia.failed_war_value"],
                                      b.values[fid]["russia.failed_war_value"])
        assert np.all(b.solutions[fid].escalation_probability
                      <= a.solutions[fid].escalation_probability + 1e-12)
    tables = [api.uncertainty_table(s, formats, samples=32, seed=3) for s in (cheap, dear)]
    assert np.all(tables[1]["p_deterred"] >= tables[0]["p_deterred"])


def test_study_arguments_are_checked():
    for kwargs, word in [({"samples": 6}, "power of 2"), ({"samples": 1}, "samples"),
                         ({"method": "grid"}, "method"), ({"seed": -1}, "seed")]:
        with pytest.raises(C.ConfigError, match=word):
            api.uncertainty_table(BASELINE, ["nato_lite"], **kwargs)


# ---------------------------------------------------------------------------------------
# The archived study


def test_an_uncertainty_study_runs_end_to_end_and_verifies(tmp_path):
    path = scenario_file(tmp_path, 'war_cost = { distribution = "triangular", low = 0.1, '
                                   'mode = 0.2, high = 0.4 }\nresolve_scale = { distribution '
                                   '= "lognormal", median = 0.1, sigma = 0.5 }')
    out = tmp_path / "study"
    result = runner.invoke(app, ["uncertainty", str(path), "--format", "nato_lite",
                                 "--format", "budapest", "--samples", "8", "--voi-samples",
                                 "4", "--replicates", "2", "--steps", "6", "--out", str(out),
                                 "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    rows = {r["format"]: r for r in printed["uncertainty"]}
    assert set(rows) == {"nato_lite", "budapest"}
    assert 0 <= rows["budapest"]["p_deterred"] <= rows["nato_lite"]["p_deterred"] <= 1
    plan = Plan.from_json(json.loads((out / "config" / "plan.json").read_text()), "plan")
    # the scenario's two distributions and the guarantors' calibrated scale
    assert [a.path for a in plan.spec.axes] == ["guarantors.*.resolve_scale",
                                                "russia.resolve_scale", "russia.war_cost"]
    assert plan.scenario.prior["russia.war_cost"].mode == 0.2
    assert api.verify(out) == []
    page = Path(printed["report"]).read_text()
    assert 'id="uncertainty"' in page and "P(deterrence holds)" in page
    assert "deterrence uncertainty" in page  # how to reproduce it
    table = api.uncertainty_summary(out)
    assert table.loc["nato_lite", "p_deterred"] == pytest.approx(
        rows["nato_lite"]["p_deterred"], abs=1e-15)


def test_a_stored_prior_plan_must_keep_its_axes(tmp_path):
    path = scenario_file(tmp_path, 'war_cost = { distribution = "uniform", low = 0.1, high '
                                   '= 0.3 }')
    plan = api.uncertainty_plan(path, ["budapest"], samples=4, voi_samples=0, replicates=1,
                                steps=2)
    data = plan.to_json()
    assert Plan.from_json(json.loads(json.dumps(data)), "plan").points.tolist() == \
        plan.points.tolist()
    data["spec"]["axes"] = [{"path": "russia.war_aims_value", "low": 0.0, "high": 1.0}]
    with pytest.raises(C.ConfigError, match="must be the uncertain parameters"):
        Plan.from_json(data, "plan")


def test_a_plan_without_distributions_stores_no_prior():
    plan = api.load_plan("quickstart")
    data = plan.to_json()
    assert "prior" not in data["scenario"]
    assert all("prior" not in f for f in data["formats"].values())


def test_a_sweep_gives_a_prior_for_every_format(tmp_path):
    """A prior sweep's own axis replaces the scenario's and the formats' distributions of
    its parameter, for every format alike."""
    scenario = scenario_file(tmp_path, 'war_cost = { distribution = "uniform", low = 0.1, '
                                       'high = 0.3 }')
    sweep = tmp_path / "study.toml"
    sweep.write_text(f'name = "study"\nscenario = "{scenario}"\nformats = ["budapest", '
                     '"bilateral"]\nmethod = "prior"\nsamples = 8\nreplicates = 1\n'
                     'steps = 2\n[[axes]]\npath = "russia.war_cost"\nprior = { distribution '
                     '= "uniform", low = 0.4, high = 0.5 }\n[[axes]]\npath = '
                     '"russia.status_quo_value"\nprior = { distribution = "triangular", low '
                     '= 0.2, mode = 0.4, high = 0.5 }\n')
    plan = api.load_plan(sweep)
    assert [a.path for a in plan.spec.axes] == ["russia.status_quo_value", "russia.war_cost"]
    for fid in plan.formats:
        values = plan.overrides(fid, plan.points)
        np.testing.assert_allclose(values["russia.war_cost"], 0.4 + 0.1 * plan.points[:, 1],
                                   rtol=1e-12)
        assert np.all((values["russia.status_quo_value"] >= 0.2)
                      & (values["russia.status_quo_value"] <= 0.5))
    restored = Plan.from_json(json.loads(json.dumps(plan.to_json())), "plan")
    assert restored.spec.axes == plan.spec.axes
    bad = sweep.read_text().replace("low = 0.4, high = 0.5", "low = -1, high = 0.5")
    sweep.write_text(bad)
    with pytest.raises(C.ConfigError, match=r"axes\.\d\.prior"):
        api.load_plan(sweep)
    sweep.write_text(bad.replace('prior = { distribution = "uniform", low = -1, high = 0.5 }',
                                 "low = 0.1\nhigh = 0.2"))
    with pytest.raises(C.ConfigError, match="prior"):
        api.load_plan(sweep)


# ---------------------------------------------------------------------------------------
# Maps integrated over the prior


def _map_unit_points(samples: int, dimensions: int, seed: int) -> np.ndarray:
    from scipy.stats import qmc

    from deterrence.analysis.uncertainty import PRIOR_MAP_STREAM
    from deterrence.sweep.design import stream_generator

    return qmc.Sobol(d=dimensions, scramble=True,
                     rng=stream_generator(seed, PRIOR_MAP_STREAM)).random(samples)


def test_a_map_cell_is_the_mean_over_the_prior_at_that_cell(tmp_path):
    """Each cell against the one-point solver at every prior point, with the mapped
    parameters written in; the mapped war cost's own distribution is set aside."""
    path = scenario_file(tmp_path, 'war_cost = { distribution = "uniform", low = 0.1, high '
                                   '= 0.3 }\nresolve_scale = { distribution = "lognormal", '
                                   'median = 0.1, sigma = 0.5 }')
    scenario = C.load_scenario(path)
    xs, ys = [0.1, 0.5], [0.2, 0.8]
    maps = api.prior_map(scenario, ["bilateral"], x=("russia.war_cost", xs),
                         y=("format.commitment_bindingness", ys), samples=4, seed=11,
                         calibrated=False)
    dist = scenario.prior["russia.resolve_scale"]
    unit = _map_unit_points(4, 1, 11)  # one column: resolve_scale (war_cost is mapped)
    scales = C.prior_values(dist, "russia.resolve_scale", unit[:, 0])
    for i, x in enumerate(xs):
        for j, y in enumerate(ys):
            held, kept = [], []
            for scale in scales:
                point, fmt = api.with_parameters(
                    scenario, {"russia.war_cost": x, "russia.resolve_scale": float(scale),
                               "format.commitment_bindingness": y}, "bilateral")
                r = solve_points(point, fmt)  # one cell, this point alone
                held.append(r.regime[0] == DETERRED)
                kept.append(1.0 - r.escalation_probability[0])
            cell = maps.sel(format="bilateral").isel(russia__war_cost=i,
                                                     format__commitment_bindingness=j)
            assert float(cell["holds"]) == pytest.approx(np.mean(held), abs=1e-12)
            assert float(cell["p_deterred"]) == pytest.approx(np.mean(kept), abs=1e-12)


def test_a_prior_sweep_with_a_map_archives_it_and_reports_it(tmp_path):
    path = scenario_file(tmp_path, 'war_cost = { distribution = "uniform", low = 0.1, high '
                                   '= 0.3 }')
    plan = api.uncertainty_plan(path, ["budapest", "nato_lite"], samples=4, voi_samples=0,
                                replicates=1, steps=2, prior_map={
                                    "x": {"path": "russia.war_aims_value", "low": 0.6,
                                          "high": 1.4, "count": 3},
                                    "y": {"path": "format.commitment_bindingness",
                                          "values": [0.0, 1.0]}, "samples": 4})
    archive, failed = api.run_sweep(plan, tmp_path / "study")
    assert failed == []
    assert (archive / "analysis" / "prior_map.nc").is_file()
    assert api.verify(archive) == []
    loaded = api.load_archive(archive)
    direct = api.prior_map(path, ["budapest", "nato_lite"],
                           x=("russia.war_aims_value", [0.6, 1.0, 1.4]),
                           y=("format.commitment_bindingness", [0.0, 1.0]), samples=4)
    np.testing.assert_array_equal(loaded.prior_map["holds"].values, direct["holds"].values)
    page = api.write_report(archive).read_text()
    assert page.count("class='prior-map'") == 2


@pytest.mark.parametrize(("chart", "word"), [
    ({"x": {"path": "russia.war_cost", "low": 0, "high": 1, "count": 3},
      "y": {"path": "russia.war_cost", "low": 0, "high": 1, "count": 3}}, "differ"),
    ({"x": {"path": "russia.war_cost", "low": 0, "high": 1},
      "y": {"path": "russia.status_quo_value", "low": 0, "high": 1, "count": 3}}, "grid"),
    ({"x": {"path": "russia.war_cost", "low": 0, "high": 1, "count": 3},
      "y": {"path": "russia.status_quo_value", "low": 0, "high": 1, "count": 3},
      "samples": 3}, "power of 2"),
    ({"x": {"path": "russia.war_cost", "low": 0, "high": 1, "count": 1000},
      "y": {"path": "russia.status_quo_value", "low": 0, "high": 1, "count": 1000},
      "samples": 2}, "at most"),
    ({"x": {"path": "russia.war_cost", "low": -1, "high": 1, "count": 3},
      "y": {"path": "russia.status_quo_value", "low": 0, "high": 1, "count": 3}},
     "russia.war_cost"),
])
def test_a_bad_map_is_refused_before_any_work(tmp_path, chart, word):
    path = scenario_file(tmp_path, 'war_cost = { distribution = "uniform", low = 0.1, high '
                                   '= 0.3 }')
    with pytest.raises(C.ConfigError, match=word):
        api.uncertainty_plan(path, ["budapest"], samples=4, replicates=1, steps=2,
                             prior_map=chart)


# ---------------------------------------------------------------------------------------
# The calibrated priors


def test_studies_give_the_calibrated_priors_to_the_scales_left_at_their_defaults(tmp_path):
    fitted = C.calibrated_priors()
    plain = C.with_calibrated_priors(C.load_scenario(BASELINE))
    assert plain.prior["guarantors.*.resolve_scale"] == fitted["guarantors.*.resolve_scale"]
    assert plain.prior["russia.resolve_scale"] == fitted["russia.resolve_scale"]
    # a scale the scenario sets, or gives its own distribution, keeps it
    own = C.load_scenario(scenario_file(tmp_path, 'resolve_scale = { distribution = '
                                                  '"uniform", low = 0.05, high = 0.2 }'))
    assert C.with_calibrated_priors(own).prior["russia.resolve_scale"].distribution == \
        "uniform"
    base = C.load_scenario(BASELINE)
    one = base.model_copy(update={"guarantors": [
        base.guarantors[0].model_copy(update={"resolve_scale": 0.2}), *base.guarantors[1:]]})
    assert "guarantors.*.resolve_scale" not in C.with_calibrated_priors(one).prior


def test_the_calibrated_guarantor_prior_moves_every_member_alike():
    study = api.prior_study(BASELINE, ["bilateral"], samples=8, seed=5)
    assert sorted(study.paths) == ["guarantors.*.resolve_scale", "russia.resolve_scale"]
    table = api.uncertainty_table(BASELINE, ["bilateral"], samples=8, seed=5)
    fixed = api.uncertainty_table(BASELINE, ["bilateral"], samples=8, seed=5,
                                  calibrated=False)
    assert fixed.loc["bilateral", "p_deterred_low"] == fixed.loc["bilateral",
                                                                 "p_deterred_high"]
    assert table.loc["bilateral", "p_deterred_low"] < table.loc["bilateral",
                                                                "p_deterred_high"]
    # each sample's scale applies to every member: the solver sees one scale per cell
    scales = study.values["bilateral"]["guarantors.*.resolve_scale"]
    from deterrence.game.payoffs import build_game

    game = build_game(C.load_scenario(BASELINE), C.load_catalogue()["bilateral"],
                      {"guarantors.*.resolve_scale": scales})
    np.testing.assert_array_equal(game.resolve_scale, np.repeat(scales[:, None], game.n, 1))
