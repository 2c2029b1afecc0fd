"""An archive a colleague can read without the package: every NetCDF file, read with netCDF4
(as R's ncdf4 and Julia's NCDatasets read it, not through xarray), follows the CF
conventions: identifier names, long_name and UDUNITS units, flags for codes, fill values
for what is missing, the global attributes; the manifest's random key survives JSON readers
and names its sweep file inside the archive."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import cf_units
import netCDF4
import numpy as np
import pytest

from deterrence import api
from deterrence.archive import manifest as archive_manifest
from deterrence.game.config import (
    SCENARIOS_DIR,
    ConfigError,
    Scenario,
    load_catalogue,
    member_ids,
)
from deterrence.game.payoffs import parameter_paths
from deterrence.sweep import datasets, execute

BASELINE = SCENARIOS_DIR / "baseline.toml"
FILES = ("data/simulation.nc", "data/exact.nc", "data/sensitivity.nc",
         "analysis/sensitivity.nc")
#: CF 2.3: names begin with a letter and hold letters, digits and underscores.
IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
#: CF 3.5: the words of flag_meanings (alphanumerics, _ - . + @).
FLAG_WORD = re.compile(r"[A-Za-z0-9_.+@-]+\Z")
SWEEP = f"""name = "cf_test"
description = "CF conventions"
scenario = "{BASELINE.as_posix()}"
formats = ["budapest", "nato"]
replicates = 2
steps = 12
chunk_runs = 16

[[axes]]
path = "guarantors.*.honouring_cost"
low = 0.1
high = 0.5
count = 2

[[axes]]
path = "format.response_delay_days"
low = 0.0
high = 30.0
count = 3

[sensitivity]
method = "sobol"
samples = 4
"""
#: The two axes' names in the files: "." as "__", the wildcard "*" as "all".
NAMES = {"guarantors.*.honouring_cost": "guarantors__all__honouring_cost",
         "format.response_delay_days": "format__response_delay_days"}


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cf")
    sweep_file = folder / "sweep.toml"
    sweep_file.write_text(SWEEP)
    target, failures = api.run_sweep(api.load_plan(sweep_file), folder / "archive",
                                     execute.InProcessExecutor(), "inprocess",
                                     source=sweep_file)
    assert failures == []
    return target


def check_cf(path: Path) -> None:
    """The CF rules every file of the package follows, checked by hand."""
    with netCDF4.Dataset(path) as nc:
        assert nc.Conventions == "CF-1.10", path
        for key in ("title", "history", "references"):
            assert getattr(nc, key).strip(), (path, key)
        assert nc.source.startswith("deterrence "), path
        for name in nc.dimensions:
            assert IDENTIFIER.match(name), (path, name)
        coordinates = set(nc.dimensions) | {
            c for var in nc.variables.values() if "coordinates" in var.ncattrs()
            for c in var.getncattr("coordinates").split()}
        for name, var in nc.variables.items():
            attrs = var.ncattrs()
            assert IDENTIFIER.match(name), (path, name)
            assert var.getncattr("long_name").strip(), (path, name)
            if var.dtype.kind != "S":  # labels (char arrays) have no unit
                cf_units.Unit(var.getncattr("units"))  # UDUNITS parses it
            for text in ("long_name", "comment"):
                if text in attrs:
                    assert "codes:" not in var.getncattr(text), (path, name)
            if "flag_values" in attrs:
                codes = np.atleast_1d(var.getncattr("flag_values"))
                words = var.getncattr("flag_meanings").split()
                assert codes.dtype == var.dtype and len(words) == codes.size, (path, name)
                assert all(FLAG_WORD.match(w) for w in words), (path, name)
                assert np.isin(np.asarray(var[...]), codes).all(), (path, name)
            if name in coordinates:  # coordinates are never missing (CF 5)
                assert "_FillValue" not in attrs and "missing_value" not in attrs, name
            elif var.dtype.kind == "f":
                assert var.getncattr("_FillValue") == netCDF4.default_fillvals["f8"], name


def test_every_file_follows_the_cf_conventions(archive):
    assert sorted(f for f in archive_manifest.read_manifest(archive)["files"]
                  if f.endswith(".nc")) == sorted(FILES)
    for name in FILES:
        check_cf(archive / name)


def test_a_single_simulation_file_follows_them_too(tmp_path):
    sim = api.simulate_scenario(BASELINE, "nato_lite", runs=4, steps=10, keep_series=True)
    dataset = api.simulation_dataset(sim, {"scenario": "baseline"})
    out = api.write_simulation(tmp_path / "run", dataset, {})
    check_cf(out / "simulation.nc")
    with netCDF4.Dataset(out / "simulation.nc") as nc:
        assert nc["outcome"].flag_meanings == "deterred defended abandoned ended"
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00 deterrence ", nc.history)


def test_swept_parameters_are_identifier_dimensions_with_their_path_and_unit(archive):
    with netCDF4.Dataset(archive / "data" / "simulation.nc") as nc:
        assert nc["escalation_frequency"].dimensions == (
            "format", *NAMES.values(), "replicate")
        for path, name in NAMES.items():
            assert nc[name].parameter_path == path
        # the schema gives the delay in days (a UDUNITS unit) and the cost in utility
        # (none): "1", the unit in words in the comment
        assert cf_units.Unit(nc["format__response_delay_days"].units).is_convertible("s")
        assert nc["guarantors__all__honouring_cost"].units == "1"
        assert "utility" in nc["guarantors__all__honouring_cost"].comment
        np.testing.assert_array_equal(nc["format__response_delay_days"][:], [0, 15, 30])
    with netCDF4.Dataset(archive / "data" / "sensitivity.nc") as nc:
        for path, name in NAMES.items():
            assert nc[name].dimensions == ("sample",) and nc[name].parameter_path == path
        assert set(nc["escalation_frequency"].coordinates.split()) == set(NAMES.values())


def test_codes_carry_their_meanings(archive):
    # the regimes of docs/model.md, in code order
    with netCDF4.Dataset(archive / "data" / "exact.nc") as nc:
        assert nc["regime"].flag_meanings == "deterred defended abandoned mixed"
        np.testing.assert_array_equal(nc["regime"].flag_values, [0, 1, 2, 3])
        assert nc["equilibrium_set_complete"].flag_meanings == "no yes"
        coded = {name for name, var in nc.variables.items() if "flag_values" in var.ncattrs()}
        assert coded == {"regime", "equilibrium_set_complete"}


def test_credibility_is_missing_for_the_guarantors_that_are_not_members(archive):
    """Read without the package: the credibility of a guarantor is masked (its fill value)
    exactly where the format does not bind it; of a member, a probability."""
    scenario = api.load_scenario(BASELINE)
    members = {fid: set(member_ids(fmt, scenario)) for fid, fmt in load_catalogue().items()}
    with netCDF4.Dataset(archive / "data" / "exact.nc") as nc:
        credibility = nc["credibility"]
        assert credibility.dimensions == ("format", *NAMES.values(), "guarantor")
        assert credibility._FillValue == netCDF4.default_fillvals["f8"]
        formats = list(nc["format"][:])
        guarantors = list(nc["guarantor"][:])
        assert guarantors == [g.id for g in scenario.guarantors]
        values = credibility[:]
        for f, fid in enumerate(formats):
            for g, gid in enumerate(guarantors):
                cell = values[f, ..., g]
                if gid in members[fid]:
                    assert not np.ma.getmaskarray(cell).any(), (fid, gid)
                    assert ((0 <= cell) & (cell <= 1)).all(), (fid, gid)
                else:
                    assert np.ma.getmaskarray(cell).all(), (fid, gid)
        assert set(members["budapest"]) < set(guarantors)  # some are missing


def test_what_is_missing_reads_as_missing(archive):
    """A run without escalation has no first escalation and no share abandoned: both read
    as missing (masked) exactly where the escalation frequency is 0."""
    for name in ("data/simulation.nc", "data/sensitivity.nc"):
        with netCDF4.Dataset(archive / name) as nc:
            never = nc["escalation_frequency"][:] == 0
            assert never.any() and not never.all(), "the test needs both kinds of run"
            first = nc["first_escalation"][:]
            assert nc["first_escalation"]._FillValue == -1
            assert nc["first_escalation"].dtype == np.int32
            np.testing.assert_array_equal(np.ma.getmaskarray(first), never)
            assert first.min() >= 0 and first.max() < 12
            abandoned = nc["abandoned_given_escalation"][:]
            np.testing.assert_array_equal(np.ma.getmaskarray(abandoned), never)
    # xarray (through the package) reads the same cells as NaN
    loaded = api.load_archive(archive)
    first = loaded.sim["first_escalation"].values
    np.testing.assert_array_equal(np.isnan(first), loaded.sim.escalation_frequency.values == 0)


def test_regime_codes_decode_to_labels(archive):
    exact = api.load_archive(archive).exact
    labels = api.decode_flags(exact["regime"])
    assert labels.dims == exact["regime"].dims
    assert labels.attrs["categories"] == ["deterred", "defended", "abandoned", "mixed"]
    codes = exact["regime"].values
    for code, label in enumerate(labels.attrs["categories"]):
        assert (labels.values[codes == code] == label).all()
    complete = api.decode_flags(exact["equilibrium_set_complete"])
    assert complete.attrs["categories"] == ["no", "yes"]
    np.testing.assert_array_equal(complete.values == "yes",
                                  exact["equilibrium_set_complete"].values == 1)
    with pytest.raises(ValueError, match="not a coded variable"):
        api.decode_flags(api.load_archive(archive).sim["escalation_frequency"])
    with pytest.raises(ValueError, match="values 7 are not among the flag_values"):
        api.decode_flags(exact["regime"].where(False, 7).astype(np.int8).assign_attrs(
            exact["regime"].attrs))


def test_the_manifest_is_readable_outside_python(archive):
    text = (archive / "manifest.json").read_text()
    manifest = json.loads(text)
    key = manifest["random_key"]
    # a 64-bit key: above 2^53 a JSON number is rounded by R's jsonlite or JavaScript
    assert isinstance(key, str) and int(key) > 2**53
    assert f'"random_key": "{key}"' in text
    assert manifest["sweep_file"] == "config/sweep.toml"
    assert (archive / manifest["sweep_file"]).read_text() == SWEEP
    packages = manifest["packages"]
    for name in ("numpy", "scipy", "xarray", "pandas", "SALib", "ema_workbench",
                 "matplotlib"):
        assert re.match(r"\d", packages[name]), name


def test_verify_checks_the_random_key_as_text(archive, tmp_path):
    copy = Path(shutil.copytree(archive, tmp_path / "archive"))
    manifest = json.loads((copy / "manifest.json").read_text())
    key = int(manifest["random_key"])
    manifest["random_key"] = key  # as archives wrote it before: a JSON number
    archive_manifest.write_manifest(copy, manifest)
    assert api.verify(copy) == []
    manifest["random_key"] = str(key + 1)
    archive_manifest.write_manifest(copy, manifest)
    assert api.verify(copy) == ["manifest.json: seed or random key does not match the plan"]


def test_every_parameter_path_has_a_name_that_reads_back():
    scenario = api.load_scenario(BASELINE)
    for fmt in load_catalogue().values():
        for path in parameter_paths(scenario, fmt):
            name = datasets.dim_name(path)
            assert IDENTIFIER.match(name) and datasets.parameter_path(name) == path


def test_a_guarantor_named_like_the_wildcard_cannot_be_swept():
    data = api.load_scenario(BASELINE).model_dump(mode="json")
    data["guarantors"][0]["id"] = "all"
    scenario = Scenario.model_validate(data)
    spec = api.SweepSpec.model_validate({
        "name": "x", "scenario": "x.toml", "formats": ["bilateral"], "replicates": 1,
        "steps": 1, "axes": [{"path": "guarantors.all.honouring_cost", "values": [0.2]}]})
    with pytest.raises(ConfigError, match="guarantors.all.honouring_cost.*must not be 'all'"):
        api.resolve(spec, scenario)
