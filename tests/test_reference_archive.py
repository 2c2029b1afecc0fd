"""The committed reference archive reproduces bit for bit on this machine."""

from __future__ import annotations

from pathlib import Path

from deterrence.sweep.plan import read_manifest, verify

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference"


def test_reference_archive_reproduces_bit_for_bit():
    manifest = read_manifest(REFERENCE)
    assert manifest["sweep"] == "reference" and manifest["runs"] == 54
    assert set(manifest["files"]) == {"config/plan.json", "config/sweep.toml",
                                      "data/exact.nc", "data/simulation.nc"}
    assert verify(REFERENCE) == []
