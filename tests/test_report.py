"""The HTML report of a sweep archive: contents, numbers, placement outside the archive, CLI."""

from __future__ import annotations

import base64
import html
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from deterrence import api
from deterrence.analysis.report import write_report
from deterrence.analysis.stats import mean_ci, paired_difference
from deterrence.archive import manifest as archive_manifest
from deterrence.game.config import ConfigError
from deterrence.sweep import execute

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "configs" / "scenarios" / "baseline.toml"
FORMATS = ["bilateral", "nato_lite", "neutrality"]  # reference: nato_lite, not the first
DESCRIPTION = 'Report test <grid> & "quotes"'
PNG = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")
MAP_PNG = re.compile(r"<figure id='map-([^']+)'><img[^>]*src='data:image/png;base64,"
                     r"([A-Za-z0-9+/=]+)'")
#: The maps of the report: the exact solver's, then the simulated escalation frequency.
MAPS = ["regime", "escalation_probability", "response_probability", "defended_probability",
        "mean_credibility", "equilibrium_count", "escalation_frequency"]
STABILITY_PNG = re.compile(r"<figure id='stability-([^']+)'><img[^>]*src='data:image/png;"
                           r"base64,([A-Za-z0-9+/=]+)'")
#: The maps of the stability section: erosion time and three end-state shares.
STABILITY_MAPS = ["erosion_years", "ongoing_deterred_share", "defeated_share",
                  "settled_share"]


def make_archive(folder: Path, axes: str, formats=FORMATS, method: str = "grid",
                 samples: int | None = None) -> Path:
    toml = folder / "sweep.toml"
    toml.write_text(
        f'name = "report_test"\ndescription = {DESCRIPTION!r}\n'
        f'scenario = "{BASELINE.as_posix()}"\nformats = {formats!r}\n'
        f'method = "{method}"\nreplicates = 2\nsteps = 15\n'
        + (f"samples = {samples}\n" if samples else "") + axes)
    plan = api.load_plan(toml)
    archive, failures = api.run_sweep(plan, folder / "archive", execute.InProcessExecutor(),
                                     "inprocess", source=toml)
    assert not failures
    return archive


GRID_2D = """
[[axes]]
path = "format.commitment_bindingness"
low = 0.0
high = 1.0
count = 3

[[axes]]
path = "russia.status_quo_value"
values = [0.1, 0.4, 0.7]
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    archive = make_archive(folder, GRID_2D)
    path = write_report(archive)
    return archive, path, path.read_text(encoding="utf-8")


def _row(page: str, fid: str) -> str:
    match = re.search(rf"<tr id='format-{fid}'>(.*?)</tr>", page)
    assert match, f"no table row for {fid}"
    return match.group(1)


def test_report_is_written_beside_the_archive_and_self_contained(built):
    archive, path, page = built
    assert path == archive.parent / "archive.report" / "index.html"
    assert page.startswith("<!DOCTYPE html>")
    for outside in ("<script", "<link", "src='http", 'src="http', "url("):
        assert outside not in page
    assert [p.name for p in archive.parent.iterdir() if p.name.startswith(".")] == []


def test_one_embedded_png_per_quantity(built):
    _, _, page = built
    assert [name for name, _ in MAP_PNG.findall(page)] == MAPS
    # and one of the paired differences against the reference format, and the stability
    # section's maps
    assert [name for name, _ in STABILITY_PNG.findall(page)] == STABILITY_MAPS
    assert len(PNG.findall(page)) == len(MAPS) + 1 + len(STABILITY_MAPS)
    for data in PNG.findall(page):
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")
    for fid in FORMATS:
        assert f"<code>{fid}</code>" in page


def test_map_captions_give_each_formats_range(built):
    archive, _, page = built
    with xr.open_dataset(archive / "data" / "exact.nc", engine="scipy") as exact:
        values = exact.escalation_probability.load()
        credibility = exact.mean_credibility.load()
    caption = re.search(r"<figure id='map-escalation_probability'>.*?<figcaption>(.*?)"
                        r"</figcaption>", page).group(1)
    for fid in FORMATS:
        one = values.sel(format=fid).values
        assert f"{fid}: {one.min():.3g} to {one.max():.3g}" in caption
    # neutrality binds no guarantor: it has no credibility anywhere
    assert np.isnan(credibility.sel(format="neutrality").values).all()
    caption = re.search(r"<figure id='map-mean_credibility'>.*?<figcaption>(.*?)"
                        r"</figcaption>", page).group(1)
    assert "neutrality: none (no members)" in caption


def test_stability_table_counts_the_end_states_of_the_data(built):
    archive, _, page = built
    with xr.open_dataset(archive / "data" / "simulation.nc", engine="scipy") as sim:
        state = sim.end_state.load()
        first = sim.first_escalation.load()
    for fid in FORMATS:
        codes = state.sel(format=fid).values
        never = np.isnan(first.sel(format=fid).values)
        ongoing = codes == 0  # the codes' order: ongoing, defeated, settled
        shares = [(ongoing & never).mean(), (ongoing & ~never).mean(), (codes == 1).mean(),
                  (codes == 2).mean()]
        cells = re.findall(r"<td>(.*?)</td>", re.search(
            rf"<tr id='stability-{fid}'>(.*?)</tr>", page).group(1))
        assert cells[3:] == [f"{v:.3f}" for v in shares]
        # runs end only through an escalation, so a run without one is censored at the
        # horizon: the median is reached where at most half the runs never escalated
        reached = int((never.mean(axis=-1) <= 0.5).sum())
        assert cells[1] == f"{reached} of {never[..., 0].size}"


def test_provenance_and_reproduction(built):
    archive, _, page = built
    manifest = archive_manifest.read_manifest(archive)
    assert f"deterrence verify {archive.resolve()}" in page
    assert manifest["finished"] in page and manifest["started"] in page
    assert str(manifest["seed"]) in page
    assert f"{manifest['runs']} in all" in page
    assert f"numpy {manifest['packages']['numpy']}" in page
    assert DESCRIPTION in html.unescape(page) and "<grid>" not in page
    # the test's sweep file names its scenario by an absolute path: the copy runs as is
    assert f"deterrence sweep {(archive / 'config' / 'sweep.toml').resolve()}" in page


def test_comparison_table_matches_the_data(built):
    archive, _, page = built
    with xr.open_dataset(archive / "data" / "simulation.nc", engine="scipy") as sim, \
            xr.open_dataset(archive / "data" / "exact.nc", engine="scipy") as exact:
        sim.load()
        exact.load()
    ref = sim.sel(format="nato_lite")
    assert "<td>reference</td>" in _row(page, "nato_lite")
    for fid in FORMATS:
        row = _row(page, fid)
        one = sim.sel(format=fid)
        esc = one.escalation_frequency.values.ravel()
        half = 1.96 * esc.std(ddof=1) / np.sqrt(esc.size)
        assert f"{esc.mean():.4f} [{esc.mean() - half:.4f}, {esc.mean() + half:.4f}]" in row
        assert f"{float(one.abandoned_given_escalation.mean(skipna=True)):.4f}" in row
        assert f"{float(one.deterred_share.mean()):.4f}" in row
        deterred = int((exact.regime.sel(format=fid) == 0).sum())
        assert f"{deterred} of 9" in row
        assert f"<td>{float(exact.escalation_probability.sel(format=fid).mean()):.3f}</td>" \
            in row
        if fid != "nato_lite":
            diff = (one.escalation_frequency - ref.escalation_frequency).values.ravel()
            assert f"{diff.mean():+.4f} [" in row
            dhalf = 1.96 * diff.std(ddof=1) / np.sqrt(diff.size)
            assert f"{diff.mean() + dhalf:+.4f}]" in row


def test_config_is_shown_escaped(built):
    archive, _, page = built
    text = (archive / "config" / "sweep.toml").read_text()
    shown = re.search(r"<h2 id=\"config\">.*?<pre>(.*?)</pre>", page, re.DOTALL).group(1)
    assert html.unescape(shown) == text
    assert "<grid>" not in page


ATTACK = "<img src=x onerror=alert(1)>"


def test_values_read_from_the_archive_are_escaped(built, tmp_path):
    """Text from plan.json and manifest.json (a description, a format's and the scenario's
    names, the executor) is shown as text, never as markup."""
    import json
    import shutil

    archive = Path(shutil.copytree(built[0], tmp_path / "archive"))
    plan_file = archive / "config" / "plan.json"
    plan = json.loads(plan_file.read_text())
    plan["spec"]["description"] = ATTACK
    plan["scenario"]["name"] = ATTACK
    plan["formats"]["bilateral"]["name"] = ATTACK
    plan_file.write_text(json.dumps(plan))
    manifest = json.loads((archive / "manifest.json").read_text())
    manifest["executor"] = ATTACK
    archive_manifest.write_manifest(archive, manifest)  # with a digest that matches
    page = write_report(archive, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<img src=x" not in page and "onerror=alert(1)>" not in page
    assert html.unescape(page).count(ATTACK) >= 4
    assert "config/plan.json: changed (checksum differs)" in page  # and it is reported


def test_an_axis_path_that_is_no_parameter_is_refused(built, tmp_path):
    """An axis path no sweep accepts (markup, say) makes the archive malformed: exit 2,
    one line, no report."""
    import json
    import shutil

    archive = Path(shutil.copytree(built[0], tmp_path / "archive"))
    plan_file = archive / "config" / "plan.json"
    plan = json.loads(plan_file.read_text())
    plan["spec"]["axes"][0]["path"] = ATTACK
    plan_file.write_text(json.dumps(plan))
    done = _cli(str(archive), "--out", str(tmp_path / "report"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"key 'spec.axes.0.path' = {ATTACK!r}: not a parameter" in " ".join(
        done.stderr.split())
    assert not (tmp_path / "report").exists()


def test_verify_still_passes_after_the_report(built):
    archive, path, _ = built
    assert not path.is_relative_to(archive)
    assert archive_manifest.check_files(archive, archive_manifest.read_manifest(archive)) == []
    assert api.verify(archive) == []


def test_out_option_and_rewriting(built, tmp_path):
    archive, path, _ = built
    assert write_report(archive) == path  # a second report replaces the first
    assert sorted(p.name for p in path.parent.iterdir()) == ["index.html"]
    one_file = tmp_path / "nested" / "r.html"
    assert write_report(archive, one_file) == one_file and one_file.is_file()
    assert write_report(archive, tmp_path / "dir") == tmp_path / "dir" / "index.html"
    with pytest.raises(ConfigError, match="inside the archive"):
        write_report(archive, archive / "report.html")
    assert not (archive / "report.html").exists()
    (tmp_path / "occupied").write_text("a file where the report folder would go")
    with pytest.raises(ConfigError, match="cannot write"):
        write_report(archive, tmp_path / "occupied" / "index.html")


def test_paired_difference_helper():
    rng = np.random.default_rng(1)
    values = rng.random((3, 3, 2))
    values[0, 0, 0] = np.nan
    same = paired_difference(values, values)
    assert (same.mean, same.half_width, same.n) == (0.0, 0.0, 17)
    shifted = paired_difference(values + 0.25, values)
    assert shifted.mean == pytest.approx(0.25) and shifted.half_width == pytest.approx(0.0)
    other = rng.random((3, 3, 2))
    d = (other - values).ravel()
    d = d[np.isfinite(d)]
    got = paired_difference(other, values)
    assert got.mean == pytest.approx(d.mean())
    assert got.half_width == pytest.approx(1.96 * d.std(ddof=1) / np.sqrt(d.size))
    assert mean_ci([np.nan]).n == 0
    with pytest.raises(ValueError, match="shape"):
        paired_difference(values, values[0])


@pytest.mark.parametrize("axes, method, samples, note", [
    ('[[axes]]\npath = "russia.status_quo_value"\nvalues = [0.7, 0.1, 0.4]\n', "grid",
     None, "the faint dots are single replicates"),
    ('[[axes]]\npath = "russia.status_quo_value"\nlow = 0.1\nhigh = 0.7\n'
     '[[axes]]\npath = "russia.war_cost"\nlow = 0.05\nhigh = 0.3\n'
     '[[axes]]\npath = "format.commitment_bindingness"\nlow = 0.0\nhigh = 1.0\n',
     "lhs", 6, "Scatter of the first two parameters:</strong> each dot is one lhs sample"),
    (GRID_2D + '[[axes]]\npath = "russia.war_cost"\nvalues = [0.1, 0.2]\n', "grid", None,
     "cells that differ only in russia.war_cost lie on top of each other"),
])
def test_other_layouts(tmp_path, axes, method, samples, note):
    archive = make_archive(tmp_path, axes, ["bilateral", "neutrality"], method, samples)
    page = write_report(archive).read_text(encoding="utf-8")
    assert [name for name, _ in MAP_PNG.findall(page)] == MAPS
    assert "<figure id='differences'><img" in page
    assert note in page


#: A grid where Budapest-style assurances whose response is decisive make a volunteer's
#: dilemma between the US and UK: several equilibria where the stake is high enough.
VOLUNTEERS = """
[[axes]]
path = "format.response.decisive_probability"
values = [0.0, 0.95]

[[axes]]
path = "guarantors.*.stake_in_ukraine"
values = [0.2, 1.0, 3.0]
"""


def test_the_multiplicity_section_counts_the_equilibria_of_the_data(tmp_path):
    archive = make_archive(tmp_path, VOLUNTEERS, ["budapest"])
    page = write_report(archive).read_text(encoding="utf-8")
    with xr.open_dataset(archive / "data" / "exact.nc", engine="scipy") as exact:
        count = exact.equilibrium_count.sel(format="budapest").values
        complete = exact.equilibrium_set_complete.sel(format="budapest").values
        regime = exact.regime.sel(format="budapest").values
    assert (count > 1).any() and (count == 1).any()  # the grid has both
    row = re.search(r"<tr id='multiplicity-budapest'>(.*?)</tr>", page).group(1)
    cells = re.findall(r"<td>(.*?)</td>", row)
    assert cells[1] == f"{int((count > 1).sum())} of 6"
    assert cells[2] == str(int(count.max()))
    several = np.argwhere(count > 1)
    decisive = [0.0, 0.95][several[:, 0].min()]
    assert f"format.response.decisive_probability {decisive:.3g} to 0.95" in cells[3]
    assert cells[4] == str(int((regime == api.REGIME_NAMES.index("mixed")).sum()))
    assert cells[6] == f"{int((complete == 0).sum())} of 6"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deterrence", "report", *args],
                          capture_output=True, text=True, timeout=300)


def test_cli_report(built, tmp_path):
    archive, _, _ = built
    target = tmp_path / "cli-report"
    done = _cli(str(archive), "--out", str(target))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(target / "index.html")
    assert PNG.search((target / "index.html").read_text(encoding="utf-8"))


@pytest.mark.parametrize("damage, message", [("file", "not a folder"),
                                             ("no_manifest", "no manifest.json"),
                                             ("bad_data", "exact.nc: unreadable")])
def test_cli_malformed_archive_exits_2(built, tmp_path, damage, message):
    import shutil

    archive, _, _ = built
    broken = tmp_path / "broken"
    if damage == "file":
        broken.write_text("not a folder")
    else:
        shutil.copytree(archive, broken)
        if damage == "no_manifest":
            (broken / "manifest.json").unlink()
        else:
            (broken / "data" / "exact.nc").write_bytes(b"not netcdf")
    done = _cli(str(broken))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "error" in done.stderr and message in " ".join(done.stderr.split())
    assert not (tmp_path / "broken.report").exists()


def test_paired_section_counts_match_scipy(built):
    """Points lower / higher than the reference: recounted with scipy's paired t-test."""
    from scipy import stats

    from deterrence.analysis.report import reference_format

    archive, _, page = built
    sim = xr.open_dataset(archive / "data" / "simulation.nc", engine="scipy").load()
    reference = reference_format(FORMATS)
    ref = sim.escalation_frequency.sel(format=reference).values.reshape(-1, 2)
    for fid in FORMATS:
        if fid == reference:
            continue
        one = sim.escalation_frequency.sel(format=fid).values.reshape(-1, 2)
        lower = higher = 0
        for a, b in zip(one, ref, strict=True):
            d = a - b
            if np.all(d == d[0]):  # no spread: the difference is exact
                lower += d[0] < 0
                higher += d[0] > 0
                continue
            low, high = stats.ttest_rel(a, b).confidence_interval(0.95)
            lower += high < 0
            higher += low > 0
        row = re.search(rf"<tr><td><code>{fid}</code></td><td>[^<]*points</td>"
                        r"<td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>", page)
        assert row, fid
        assert (int(row.group(1)), int(row.group(3))) == (lower, higher)
        assert int(row.group(1)) + int(row.group(2)) + int(row.group(3)) == one.shape[0]
    assert "This sweep has no sensitivity design" in page
