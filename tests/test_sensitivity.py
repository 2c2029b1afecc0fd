"""Global sensitivity: our SALib wrapper against functions whose indices are known in closed
form (Ishigami for Sobol, a linear function for Morris), and a sweep's sensitivity design
run through the archive: the right points, the same runs as alone, verified bit for bit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from deterrence import api
from deterrence.analysis.sensitivity import analyse, figure, indices_dataset
from deterrence.archive import manifest as archive_manifest
from deterrence.archive import read
from deterrence.game.config import SCENARIOS_DIR, ConfigError, read_toml
from deterrence.game.payoffs import build_game
from deterrence.solve.equilibrium import REGIME_NAMES, solve_grid
from deterrence.sweep import datasets, execute
from deterrence.sweep.design import SensitivitySpec, design

ROOT = Path(__file__).resolve().parent.parent
PI = np.pi
NAMES = ["x1", "x2", "x3"]


def ishigami(x: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


def ishigami_indices(a: float = 7.0, b: float = 0.1):
    """Closed form (Ishigami & Homma 1990; Sobol' & Levitan 1999)."""
    v1 = 0.5 * (1 + b * PI**4 / 5) ** 2
    v2 = a**2 / 8
    v13 = b**2 * PI**8 * (1 / 18 - 1 / 50)
    var = v1 + v2 + v13
    s1 = np.array([v1, v2, 0.0]) / var
    st = np.array([v1 + v13, v2, v13]) / var
    return s1, st


def test_ishigami_closed_form_is_the_published_one():
    s1, st = ishigami_indices()
    np.testing.assert_allclose(s1, [0.3139, 0.4424, 0.0], atol=1e-4)
    np.testing.assert_allclose(st, [0.5576, 0.4424, 0.2437], atol=1e-4)


def test_sobol_indices_of_ishigami_match_the_closed_form():
    spec = SensitivitySpec(method="sobol", samples=4096, resamples=200)
    low, high = [-PI] * 3, [PI] * 3
    points = design(spec, NAMES, low, high, seed=11)
    assert points.shape == (4096 * 5, 3)
    assert points.min() >= -PI and points.max() <= PI
    result = analyse(spec, NAMES, low, high, points, ishigami(points), seed=11)
    s1, st = ishigami_indices()
    np.testing.assert_allclose(result["S1"], s1, atol=0.03)
    np.testing.assert_allclose(result["ST"], st, atol=0.03)
    assert np.all(result["S1_conf"] > 0) and np.all(result["S1_conf"] < 0.05)
    # the true value lies within a few half-widths of the estimate
    assert np.all(np.abs(result["ST"] - st) < 3 * result["ST_conf"] + 0.01)


def test_sobol_interval_shrinks_with_the_sample():
    low, high = [-PI] * 3, [PI] * 3
    widths = []
    for n in (256, 4096):
        spec = SensitivitySpec(method="sobol", samples=n, resamples=200)
        points = design(spec, NAMES, low, high, seed=3)
        widths.append(analyse(spec, NAMES, low, high, points, ishigami(points), 3)["ST_conf"])
    assert np.all(widths[1] < widths[0])


def test_morris_of_a_linear_function_is_its_slope_times_the_range():
    """An elementary effect of y = Σ a_i x_i over [low_i, high_i] is a_i (high_i - low_i) in
    SALib's unit-scaled steps: mu* is exactly that and sigma is 0."""
    spec = SensitivitySpec(method="morris", samples=30, levels=4, resamples=100)
    slopes = np.array([2.0, -0.5, 0.0])
    low, high = np.array([0.0, 1.0, -1.0]), np.array([1.0, 5.0, 1.0])
    points = design(spec, NAMES, low, high, seed=5)
    assert points.shape == (30 * 4, 3)
    result = analyse(spec, NAMES, low, high, points, points @ slopes, seed=5)
    np.testing.assert_allclose(result["mu_star"], np.abs(slopes) * (high - low), atol=1e-9)
    np.testing.assert_allclose(result["sigma"], 0.0, atol=1e-9)


def test_designs_and_bootstrap_are_seeded():
    spec = SensitivitySpec(method="sobol", samples=64)
    low, high = [-PI] * 3, [PI] * 3
    a, b = design(spec, NAMES, low, high, 7), design(spec, NAMES, low, high, 7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, design(spec, NAMES, low, high, 8))
    y = ishigami(a)
    one, two = analyse(spec, NAMES, low, high, a, y, 7), analyse(spec, NAMES, low, high, a, y, 7)
    for key in one:
        np.testing.assert_array_equal(one[key], two[key])
    m = SensitivitySpec(method="morris", samples=10)
    np.testing.assert_array_equal(design(m, NAMES, low, high, 1), design(m, NAMES, low, high, 1))


def test_a_constant_outcome_has_no_indices():
    spec = SensitivitySpec(method="sobol", samples=64)
    points = design(spec, NAMES, [0] * 3, [1] * 3, 1)
    result = analyse(spec, NAMES, [0] * 3, [1] * 3, points, np.zeros(len(points)), 1)
    assert all(np.isnan(v).all() for v in result.values())


@pytest.mark.parametrize("fields, message", [
    ({"samples": 100}, "power of 2"),
    ({"samples": 64, "method": "fast"}, "method"),
    ({"samples": 10, "method": "morris", "levels": 5}, "even"),
    ({"samples": 64, "outputs": ["escalation_frequency", "escalation_frequency"]}, "repeat"),
    ({"samples": 64, "outputs": ["war"]}, "escalation_frequency"),
    ({"samples": 64, "bins": 3}, "bins"),
])
def test_bad_sensitivity_tables_are_named(fields, message, tmp_path):
    path = tmp_path / "s.toml"
    text = (ROOT / "configs" / "sweeps" / "quickstart.toml").read_text()
    text = text.replace('"../scenarios/baseline.toml"',
                        json.dumps(str(SCENARIOS_DIR / "baseline.toml")))
    text = text.split("[sensitivity]")[0]
    table = "\n".join(f"{k} = {json.dumps(v)}" for k, v in fields.items())
    path.write_text(f"{text}\n[sensitivity]\n{table}\n")
    with pytest.raises(ConfigError, match=message) as info:
        api.load_plan(path)
    assert "sensitivity" in str(info.value)


def test_a_values_axis_cannot_be_sampled(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(f"""name = "v"
scenario = {json.dumps(str(SCENARIOS_DIR / "baseline.toml"))}
replicates = 1
steps = 2
[[axes]]
path = "russia.war_cost"
values = [0.1, 0.2]
[sensitivity]
samples = 8
""")
    with pytest.raises(ConfigError, match="russia.war_cost.*range"):
        api.load_plan(path)


# ---------------------------------------------------------------------------------------
# Through a sweep archive


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("sensitivity")
    sweep_file = folder / "sweep.toml"
    sweep_file.write_text(f"""name = "sens"
scenario = {json.dumps(str(SCENARIOS_DIR / "baseline.toml"))}
formats = ["budapest", "nato_lite"]
replicates = 2
steps = 15
chunk_runs = 7
[[axes]]
path = "russia.status_quo_value"
low = 0.1
high = 0.7
count = 2
[[axes]]
path = "format.commitment_bindingness"
low = 0.0
high = 1.0
count = 2
[sensitivity]
samples = 16
resamples = 50
""")
    plan = api.load_plan(sweep_file)
    target, failures = api.run_sweep(plan, folder / "archive", execute.InProcessExecutor(),
                                    "inprocess", sweep_file)
    assert failures == []
    return sweep_file, target


def _load(path: Path) -> xr.Dataset:
    with xr.open_dataset(path, engine="scipy") as ds:
        return ds.load()


def test_the_design_is_salibs_over_the_axes_ranges(archive):
    sweep_file, target = archive
    plan = api.load_plan(sweep_file)
    spec = plan.spec
    expected = design(spec.sensitivity, [a.path for a in spec.axes],
                      [a.low for a in spec.axes], [a.high for a in spec.axes], plan.seed)
    np.testing.assert_array_equal(plan.sensitivity_points, expected)
    data = _load(target / datasets.SENSITIVITY_DESIGN_FILE)
    for j, axis in enumerate(spec.axes):
        np.testing.assert_array_equal(data[datasets.dim_name(axis.path)].values,
                                      expected[:, j])
    assert data.escalation_frequency.shape == (2, 16 * 4, 2)
    # the sweep's own grid is unchanged by the design
    sim = _load(target / "data" / "simulation.nc")
    assert sim.escalation_frequency.shape == (2, 2, 2, 2)


def test_design_runs_are_the_runs_of_their_index_alone(archive):
    """Design point i is cell (grid cells + i): its runs and exact regime are what a run of
    that index and a solve of that point give by themselves."""
    sweep_file, target = archive
    plan = api.load_plan(sweep_file)
    data = _load(target / datasets.SENSITIVITY_DESIGN_FILE)
    reps = plan.spec.replicates
    for f, fid in enumerate(plan.formats):
        for i in (0, 5, 63):
            for r in range(reps):
                run = (plan.cells + i) * reps + r
                alone = execute.run_chunk(execute.chunk_task(plan, fid, run, run + 1))
                for name in datasets.OUTPUTS:
                    value = alone[name][0]
                    if "_FillValue" in datasets.SUMMARY_DESCRIPTIONS[name] and value == -1:
                        value = np.nan  # a missing code reads back as missing
                    np.testing.assert_array_equal(data[name].values[f, i, r], value)
            point = {a.path: plan.sensitivity_points[i:i + 1, j]
                     for j, a in enumerate(plan.spec.axes)}
            solved = solve_grid(build_game(plan.scenario, plan.formats[fid], point),
                                deterred_below=0.5, defended_below=0.5, threads=1)
            assert data.regime.values[f, i] == solved.regime[0]
            assert data.escalation_probability.values[f, i] == \
                solved.escalation_probability[0]


def test_stored_indices_are_the_wrapper_applied_to_the_stored_data(archive):
    sweep_file, target = archive
    plan = api.load_plan(sweep_file)
    data = _load(target / datasets.SENSITIVITY_DESIGN_FILE)
    stored = _load(target / read.INDICES_FILE)
    spec = plan.spec.sensitivity
    names = [a.path for a in plan.spec.axes]
    low, high = [a.low for a in plan.spec.axes], [a.high for a in plan.spec.axes]
    for fid in plan.formats:
        one = data.sel(format=fid)
        # the outcomes computed here by hand, independently of sensitivity.outcomes
        escalation = one.escalation_frequency.values.mean(axis=1)
        abandoned = np.where(np.isnan(one.abandoned_given_escalation.values), 0.0,
                             one.abandoned_given_escalation.values
                             * one.escalation_frequency.values).mean(axis=1)
        deterred = (one.regime.values == REGIME_NAMES.index("deterred")).astype(float)
        outputs = (("escalation_frequency", escalation), ("abandoned_frequency", abandoned),
                   ("regime_deterred", deterred),
                   ("escalation_probability", one.escalation_probability.values))
        assert [name for name, _ in outputs] == list(spec.outputs)  # every default output
        for output, values in outputs:
            mine = analyse(spec, names, low, high, plan.sensitivity_points, values, plan.seed)
            for key, value in mine.items():
                np.testing.assert_array_equal(
                    stored[key].sel(format=fid, output=output).values, value,
                    err_msg=f"{fid} {output} {key}")
    assert np.isfinite(stored.ST.sel(output="escalation_frequency").values).all()
    # the exact P(escalate) varies along both axes: it has indices for every format
    assert np.isfinite(stored.ST.sel(output="escalation_probability").values).all()
    assert stored.attrs["design_points"] == 64


def test_the_archive_verifies_and_catches_changed_indices(archive, tmp_path):
    _, target = archive
    assert api.verify(target) == []
    copy = tmp_path / "copy"
    shutil.copytree(target, copy)
    stored = _load(copy / read.INDICES_FILE)
    stored["ST"] = stored.ST + 0.01
    stored.to_netcdf(copy / read.INDICES_FILE, engine="scipy")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"][read.INDICES_FILE] = archive_manifest.sha256(copy / read.INDICES_FILE)
    archive_manifest.write_manifest(copy, manifest)
    assert any("analysis/sensitivity.nc: ST differs" in p for p in api.verify(copy))


def test_the_figure_is_a_png_in_the_archive(archive):
    _, target = archive
    png = (target / read.FIGURE_FILE).read_bytes()
    assert png.startswith(b"\x89PNG")
    assert figure(_load(target / read.INDICES_FILE)) == figure(
        _load(target / read.INDICES_FILE))  # same bytes every time


def test_a_sweep_without_a_design_keeps_its_plan_and_files(tmp_path):
    """Archives written before sensitivity designs existed still read and verify."""
    plan = api.load_plan(ROOT / "configs" / "sweeps" / "reference.toml")
    assert plan.sensitivity_points is None
    assert "sensitivity" not in plan.to_json()["spec"]
    stored = json.loads((ROOT / "results" / "reference" / "config" / "plan.json").read_text())
    assert json.loads(json.dumps(api.Plan.from_json(stored, "reference").to_json())) == stored


def test_indices_dataset_labels(archive):
    sweep_file, target = archive
    plan = api.load_plan(sweep_file)
    data = _load(target / datasets.SENSITIVITY_DESIGN_FILE)
    spec = plan.spec.sensitivity.model_copy(update={"outputs": ["escalation_frequency"]})
    names = [a.path for a in plan.spec.axes]
    ds = indices_dataset(spec, names, [0.1, 0.0], [0.7, 1.0], plan.sensitivity_points,
                         data, data, plan.seed)
    assert ds.ST.dims == ("format", "output", "parameter")
    assert list(ds.parameter.values) == names
    assert list(ds.format.values) == list(plan.formats)


def test_sensitivity_command_overrides_the_file(tmp_path):
    from typer.testing import CliRunner

    from deterrence.cli import app

    src = read_toml(ROOT / "configs" / "sweeps" / "quickstart.toml")
    assert "sensitivity" in src, "the quickstart sweep carries the demo's design"
    sweep_file = tmp_path / "q.toml"
    sweep_file.write_text(f"""name = "cli"
scenario = {json.dumps(str(SCENARIOS_DIR / "baseline.toml"))}
formats = ["nato_lite"]
replicates = 1
steps = 5
[[axes]]
path = "russia.war_cost"
low = 0.05
high = 0.5
count = 2
""")
    result = CliRunner().invoke(app, ["sensitivity", str(sweep_file), "--method", "morris",
                                      "--samples", "6", "--out", str(tmp_path / "a"),
                                      "--no-report"])
    assert result.exit_code == 0, result.output
    assert "morris sensitivity, 12 design points" in result.output
    plan = json.loads((tmp_path / "a" / "config" / "plan.json").read_text())
    assert plan["spec"]["sensitivity"]["method"] == "morris"
    assert len(plan["sensitivity_points"]) == 12
    bad = CliRunner().invoke(app, ["sensitivity", str(sweep_file), "--samples", "100",
                                   "--out", str(tmp_path / "b")])
    assert bad.exit_code == 2 and "power of 2" in bad.output


def test_report_shows_the_design_its_indices_and_how_to_rerun_it(archive):
    import base64
    import re

    from deterrence.analysis.report import write_report

    sweep_file, target = archive
    page = write_report(target).read_text(encoding="utf-8")
    png = (target / read.FIGURE_FILE).read_bytes()
    assert base64.b64encode(png).decode("ascii") in page  # the archive's tornado chart
    stored = _load(target / read.INDICES_FILE)
    for fid in ("budapest", "nato_lite"):
        st = stored.ST.sel(format=fid, output="escalation_frequency").values
        conf = stored.ST_conf.sel(format=fid, output="escalation_frequency").values
        best = int(np.nanargmax(st))
        row = re.search(rf"<tr><td><code>{fid}</code></td><td>escalation_frequency</td>"
                        r"(.*?)</tr>", page).group(1)
        assert f"<strong>ST {st[best]:.2f} ± {conf[best]:.2f}</strong>" in row
    assert "sobol design of 64 points" in page
    assert (f"deterrence sensitivity {(target / 'config' / 'sweep.toml').resolve()} "
            "--method sobol --samples 16 --output escalation_frequency "
            "--output abandoned_frequency --output regime_deterred "
            "--output escalation_probability") in page


def test_discover_uses_the_design_and_its_box_statistics_hold(archive):
    """`deterrence discover` on the design's 64 points: coverage and density recomputed
    from the stored data and the box limits."""
    from typer.testing import CliRunner

    from deterrence.cli import app

    _, target = archive
    result = CliRunner().invoke(app, ["discover", str(target), "--outcome",
                                      "escalation_frequency", "--threshold", "0.3",
                                      "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["points"] == "the 64 points of the sensitivity design"
    data = _load(target / datasets.SENSITIVITY_DESIGN_FILE)
    found = 0
    for box in report["boxes"]:
        fails = data.escalation_frequency.sel(format=box["format"]).values.mean(axis=1) > 0.3
        if not box["found"]:
            assert not fails.any()
            continue
        found += 1
        inside = np.ones(fails.size, dtype=bool)
        for name, (low, high) in box["limits"].items():
            values = data[datasets.dim_name(name)].values  # limits are by parameter path
            inside &= (values >= low) & (values <= high)
        assert box["points"] == inside.sum()
        assert box["coverage"] == pytest.approx(fails[inside].sum() / fails.sum())
        assert box["density"] == pytest.approx(fails[inside].mean())
    assert found >= 1


def test_cli_compare_and_discover_name_bad_input(archive):
    from typer.testing import CliRunner

    from deterrence.cli import app

    _, target = archive
    runner = CliRunner()
    same = runner.invoke(app, ["compare", str(target), "nato_lite", "nato_lite", "--json"])
    assert same.exit_code == 0
    for row in json.loads(same.output)["outcomes"]:
        assert row["difference"] == 0 and row["points_lower"] == row["points_higher"] == 0
    bad = runner.invoke(app, ["compare", str(target), "nato_lite", "natoo"])
    assert bad.exit_code == 2 and "second = 'natoo'" in bad.output
    bad = runner.invoke(app, ["discover", str(target), "-f", "natoo"])
    assert bad.exit_code == 2 and "natoo" in bad.output and "allowed" in bad.output
    bad = runner.invoke(app, ["discover", str(target), "--outcome", "war"])
    assert bad.exit_code == 2 and "'war' is not one of" in bad.output
    small = runner.invoke(app, ["discover", str(ROOT / "results" / "reference")])
    assert small.exit_code == 2 and "at least 10" in small.output  # 9 cells
