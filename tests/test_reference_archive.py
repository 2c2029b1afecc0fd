"""The committed reference archive reproduces bit for bit on this machine.

``results/reference`` was made from ``configs/sweeps/reference.toml`` by this version of the
code (``deterrence sweep configs/sweeps/reference.toml --out results/reference
--no-report``, docs/sweeps.md): it is a regression fixture, so passing says that the code
computes the same numbers as when it was made, not that they are right, and an archive made
on one machine is checked on another."""

from __future__ import annotations

from pathlib import Path

from deterrence import api
from deterrence.archive.manifest import read_manifest

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference"


def test_reference_archive_reproduces_bit_for_bit():
    manifest = read_manifest(REFERENCE)
    assert manifest["sweep"] == "reference" and manifest["runs"] == 54
    assert set(manifest["files"]) == {"config/plan.json", "config/sweep.toml",
                                      "data/exact.nc", "data/simulation.nc"}
    assert api.verify(REFERENCE) == []
    # it holds the exact solver's outputs of this version
    exact = api.load_archive(REFERENCE).exact
    assert {*api.MAP_VARIABLES, "credibility"} <= set(exact.data_vars)
