"""The dashboard's archive browser (``dashboard/archive_view.py``): it lists the archives
of a results folder made by :func:`deterrence.api.run_sweep`, newest first, skips staging
folders and folders without a manifest, reports a corrupt archive in one line, opens an
archive into the datasets :func:`deterrence.api.load_archive` reads, and its panel
(AppTest) shows the archive's provenance, its report and verifies it."""

from __future__ import annotations

import json
import shutil

import pytest
import xarray as xr
from streamlit.testing.v1 import AppTest

from deterrence import api
from deterrence.dashboard import archive_view

FORMATS = ["bilateral", "coalition", "nato_lite"]
TIMEOUT = 120


def small_plan(name: str):
    scenario = api.load_scenario(api.SCENARIOS_DIR / "baseline.toml")
    return api.sweep_plan(scenario, {"russia.war_cost": {"low": 0.5, "high": 2.0, "count": 3},
                                     "russia.war_aims_value": {"low": 0.5, "high": 2.0,
                                                               "count": 3}},
                          formats=FORMATS, replicates=2, steps=20, name=name)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A results folder: two archives (the second made later), a staging folder, a folder
    without a manifest and a corrupt archive (its manifest edited)."""
    root = tmp_path_factory.mktemp("results")
    for name in ("first", "second"):
        archive, failures = api.run_sweep(small_plan(name), root / name)
        assert failures == [] and archive is not None
    api.write_report(root / "second")
    shutil.copytree(root / "first", root / ".first.partial")
    (root / "notes").mkdir()
    shutil.copytree(root / "first", root / "edited")
    manifest = json.loads((root / "edited" / "manifest.json").read_text())
    manifest["seed"] = 1  # an edit the manifest's digest catches
    (root / "edited" / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_the_list_finds_the_archives_newest_first(results):
    entries, problems = archive_view.archive_list(results)
    # newest first: by the manifests' own times (the second archive finished later or at
    # the same second as the first)
    created = {e.name: json.loads((results / e.name / "manifest.json").read_text())["finished"]
               for e in entries}
    assert sorted(created) == ["first", "second"]
    assert [e.created for e in entries] == sorted(created.values(), reverse=True)
    for entry in entries:
        plan = api.load_archive(entry.path).plan
        assert entry.scenario == plan.scenario.name == "baseline"
        assert entry.formats == tuple(FORMATS)
        assert entry.complete
        assert entry.size_bytes == sum(p.stat().st_size for p in entry.path.rglob("*")
                                       if p.is_file())
    # the corrupt one in one line naming it; the staging and plain folders not at all
    assert len(problems) == 1 and problems[0].startswith("edited: ")
    assert "\n" not in problems[0] and "digest" in problems[0]


def test_an_archive_missing_a_file_is_incomplete(results, tmp_path):
    shutil.copytree(results / "first", tmp_path / "partial")
    (tmp_path / "partial" / "data" / "exact.nc").unlink()
    (entry,), problems = archive_view.archive_list(tmp_path)
    assert not entry.complete and problems == []


def test_a_missing_folder_lists_nothing(tmp_path):
    assert archive_view.archive_list(tmp_path / "absent") == ([], [])


def test_open_archive_gives_load_archives_datasets(results):
    plan, exact, sim, summary = archive_view.open_archive(results / "second")
    loaded = api.load_archive(results / "second")
    xr.testing.assert_identical(exact, loaded.exact)
    xr.testing.assert_identical(sim, loaded.sim)
    assert plan.spec == loaded.plan.spec and plan.seed == loaded.plan.seed
    # the datasets are those of the live sweep of the same plan
    xr.testing.assert_equal(sim, api.simulate_plan(small_plan("second")))
    assert summary["seed"] == loaded.manifest["seed"]
    assert summary["runs"] == len(FORMATS) * 9 * 2
    assert [a["parameter"] for a in summary["axes"]] == ["russia.war_cost",
                                                         "russia.war_aims_value"]
    assert [(a["from"], a["to"], a["points"]) for a in summary["axes"]] == [(0.5, 2.0, 3)] * 2
    assert summary["report"] == results / "second.report" / "index.html"
    assert archive_view.open_archive(results / "first")[3]["report"] is None


def test_open_archive_refuses_a_corrupt_one(results):
    with pytest.raises(api.ArchiveError, match="digest"):
        archive_view.open_archive(results / "edited")


def panel_script(folder: str):
    from deterrence.dashboard import archive_view as view

    chosen = view.archive_panel(folder, "a_")
    if chosen is not None:
        import streamlit as st

        st.session_state["chosen_formats"] = [str(f) for f in chosen[1]["format"].values]


def test_panel_shows_the_provenance(results):
    at = AppTest.from_function(panel_script, args=(str(results),),
                               default_timeout=TIMEOUT).run()
    assert not at.exception
    assert [w.value for w in at.warning] == [archive_view.archive_list(results)[1][0]]
    box = at.selectbox(key="a_choice")
    newest = archive_view.archive_list(results)[0][0]
    assert box.value == newest.name
    box.set_value("second").run()
    manifest = api.read_manifest(results / "second")
    text = " ".join(m.value for m in at.markdown)
    for shown in (manifest["finished"], f"seed {manifest['seed']}", "scenario baseline",
                  ", ".join(FORMATS), str(results / "second.report" / "index.html"),
                  manifest["code"]["version"]):
        assert shown in text, shown
    assert at.session_state["chosen_formats"] == FORMATS
    at.button(key="a_verify").click().run()
    assert not at.exception
    assert [s.value for s in at.success][0].startswith("Reproduces bit for bit")


def test_panel_says_when_there_is_nothing(tmp_path):
    at = AppTest.from_function(panel_script, args=(str(tmp_path),),
                               default_timeout=TIMEOUT).run()
    assert not at.exception and "No archives" in at.info[0].value


def test_panel_shows_an_unreadable_archive_in_one_line(results, tmp_path):
    """Its manifest and plan read, its data do not: one error line, no traceback."""
    shutil.copytree(results / "first", tmp_path / "broken")
    (tmp_path / "broken" / "data" / "simulation.nc").write_bytes(b"not netCDF")
    with pytest.raises(api.ArchiveError) as caught:
        api.load_archive(tmp_path / "broken")
    at = AppTest.from_function(panel_script, args=(str(tmp_path),),
                               default_timeout=TIMEOUT).run()
    assert not at.exception
    assert [e.value for e in at.error] == [f"Archive broken: cannot be opened: {caught.value}"]
    assert "chosen_formats" not in at.session_state
