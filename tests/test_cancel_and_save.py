"""Cancelling long work, and writing an archive from summaries already computed."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from deterrence import api
from deterrence.sweep import execute

#: Two formats and fewer runs than a chunk holds: one chunk per format.
FORMATS = ["nato_lite", "bilateral"]
AXES = {"format.commitment_bindingness": [0.2, 0.8], "russia.status_quo_value": [0.5, 1.5]}


def small_plan() -> api.Plan:
    return api.sweep_plan(api.SCENARIOS_DIR / "baseline.toml", AXES, formats=FORMATS,
                          replicates=2, steps=8, name="small")


@pytest.fixture
def scratch(tmp_path, monkeypatch) -> Path:
    """The system's temporary folder, redirected to an empty folder of the test's own."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def cancel_after_first_chunk() -> tuple[threading.Event, list[int], object]:
    """An event set once the first chunk is done, and a progress callback that sets it
    (recording the chunks done)."""
    event, seen = threading.Event(), []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done >= 1:
            event.set()
    return event, seen, progress


def no_chunk(task):
    raise AssertionError("a chunk was run")


def test_the_plan_has_two_chunks():
    assert len(small_plan().chunks()) == 2


def test_simulate_summaries_cancelled_after_the_first_chunk_leaves_no_folder(scratch):
    event, seen, progress = cancel_after_first_chunk()
    with pytest.raises(api.Cancelled):
        api.simulate_summaries(small_plan(), progress=progress, cancel=event)
    assert seen == [0, 1]  # the second chunk never finished
    assert list(scratch.iterdir()) == []


def test_simulate_plan_takes_a_callable_and_stops_before_any_chunk(scratch, monkeypatch):
    monkeypatch.setattr(execute, "run_chunk", no_chunk)
    with pytest.raises(api.Cancelled):
        api.simulate_plan(small_plan(), cancel=lambda: True)
    assert list(scratch.iterdir()) == []


def test_simulate_plan_is_the_dataset_of_the_summaries():
    plan = small_plan()
    summaries = api.simulate_summaries(plan)
    assert set(summaries) == set(api.SUMMARY_DESCRIPTIONS)
    for name, values in summaries.items():
        assert values.shape == (len(FORMATS), plan.runs_per_format), name
    xr.testing.assert_identical(api.simulate_plan(plan),
                                api.simulated_dataset(plan, summaries))


def test_run_sweep_cancelled_after_the_first_chunk_leaves_nothing(tmp_path):
    event, seen, progress = cancel_after_first_chunk()
    with pytest.raises(api.Cancelled):
        api.run_sweep(small_plan(), tmp_path / "results" / "a", progress=progress,
                      cancel=event)
    assert seen == [0, 1]
    assert list((tmp_path / "results").iterdir()) == []


def netcdf_arrays(archive: Path) -> dict[str, xr.Dataset]:
    return {p.relative_to(archive).as_posix(): xr.load_dataset(p, engine="scipy")
            for p in sorted(archive.rglob("*.nc"))}


def test_write_archive_from_summaries_runs_no_chunk_and_equals_run_sweep(tmp_path,
                                                                         monkeypatch):
    plan = small_plan()
    swept, failures = api.run_sweep(plan, tmp_path / "swept")
    assert failures == []
    summaries = api.simulate_summaries(plan)
    monkeypatch.setattr(execute, "run_chunk", no_chunk)
    written = api.write_archive(plan, summaries, tmp_path / "written")
    assert written == tmp_path / "written"
    assert sorted(p.relative_to(written).as_posix() for p in written.rglob("*")) == \
        sorted(p.relative_to(swept).as_posix() for p in swept.rglob("*"))
    ours, theirs = netcdf_arrays(written), netcdf_arrays(swept)
    assert list(ours) == list(theirs) and ours
    for name in ours:
        assert set(ours[name].variables) == set(theirs[name].variables), name
        for var in ours[name].variables:
            a, b = ours[name][var], theirs[name][var]
            assert a.dims == b.dims, (name, var)
            same = (np.array_equal(a.values, b.values, equal_nan=True)
                    if a.dtype.kind in "fc" else np.array_equal(a.values, b.values))
            assert same, (name, var)
    for file in ("config/plan.json",):
        assert (written / file).read_bytes() == (swept / file).read_bytes()
    monkeypatch.undo()  # verify re-runs the chunks
    assert api.verify(written) == []


def test_write_archive_cancelled_leaves_nothing(tmp_path):
    plan = small_plan()
    summaries = api.simulate_summaries(plan)
    results = tmp_path / "results"
    results.mkdir()
    with pytest.raises(api.Cancelled):
        api.write_archive(plan, summaries, results / "a", cancel=lambda: True)
    assert list(results.iterdir()) == []
    # cancelled after some files were staged
    calls = []

    def later() -> bool:
        calls.append(1)
        return len(calls) > 2
    with pytest.raises(api.Cancelled):
        api.write_archive(plan, summaries, results / "b", cancel=later)
    assert len(calls) == 3
    assert list(results.iterdir()) == []


def test_write_archive_refuses_summaries_of_another_plan(tmp_path):
    plan = small_plan()
    summaries = api.simulate_summaries(plan)
    name = next(iter(summaries))
    wrong = {**summaries, name: summaries[name][:, :-1]}
    with pytest.raises(api.ConfigError) as info:
        api.write_archive(plan, wrong, tmp_path / "a")
    message = str(info.value)
    assert "\n" not in message and name in message
    assert f"({len(FORMATS)}, {plan.runs_per_format})" in message
    missing = {k: v for k, v in summaries.items() if k != name}
    with pytest.raises(api.ConfigError, match=f"no '{name}'"):
        api.write_archive(plan, missing, tmp_path / "a")
    assert list(tmp_path.iterdir()) == []
