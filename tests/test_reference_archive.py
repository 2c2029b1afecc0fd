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


def test_verify_dispatches_numpy_as_the_archives_machine_did(monkeypatch):
    """numpy's SIMD kernels for exp, log and tanh round differently in the last bit under
    AVX-512: where this machine has features the archive's lacked, the re-run runs in a new
    process with those features disabled; where it lacks some, a difference says why."""
    from deterrence.archive import verify

    stored = read_manifest(REFERENCE)["platform"]["numpy_simd"]
    monkeypatch.setattr(verify, "simd_features", lambda: [*stored, "AVX512F", "AVX512_SKX"])
    environment = verify.dispatch_environment(REFERENCE)
    assert environment["NPY_DISABLE_CPU_FEATURES"] == "AVX512F AVX512_SKX"
    assert verify.dispatch_note(REFERENCE) is None
    monkeypatch.setattr(verify, "simd_features", lambda: stored[:-1])
    assert verify.dispatch_environment(REFERENCE) is None
    note = verify.dispatch_note(REFERENCE)
    assert stored[-1] in note and "\n" not in note
    monkeypatch.setattr(verify, "simd_features", lambda: list(stored))
    assert verify.dispatch_environment(REFERENCE) is None
    assert verify.dispatch_note(REFERENCE) is None
