"""The committed reference archive reproduces bit for bit on this machine."""

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
