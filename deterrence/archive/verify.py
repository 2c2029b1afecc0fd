"""Verifying archives: checksums, then a re-run compared bit for bit.

numpy picks its SIMD kernels for exp, log, tanh ... when it is imported, from the CPU
features it finds, and kernels for other features may round differently in the last bit:
the same numpy build gives other bits on a CPU with AVX-512 than on one without. The
archive records the features its numpy dispatched to (``platform.numpy_simd``);
:func:`dispatch_environment` gives the environment in which numpy dispatches to exactly
those (``NPY_DISABLE_CPU_FEATURES`` naming the extra ones), for a re-run in a new process.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

import numpy as np

from ..simulate.rules import root_key
from ..sweep.execute import InProcessExecutor, execute
from .manifest import (
    PLAN_FILE,
    SWEEP_FILE,
    check_files,
    read_manifest,
    regular_files,
    simd_features,
)
from .read import open_dataset, read_plan
from .write import Derive, archive_files, start_staging


def verify(archive: str | Path, executor: Executor | None = None,
           derive: Derive | None = None,
           progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Re-run an archive's sweep and compare every array bit for bit.

    Returns what differs (empty: it reproduces). Raises ArchiveError if malformed: the
    manifest's digest is checked first, then the checksums, the plan and every data file,
    all before the re-run. ``progress``, if given, is called with (chunks re-run, chunks)
    as the re-run goes on.
    """
    archive = Path(archive)
    files = regular_files(archive)
    manifest = read_manifest(archive, files)
    problems = check_files(archive, manifest, files)
    if problems:
        return problems
    plan = read_plan(archive, files)
    stored = {name: open_dataset(archive / name) for name in manifest["files"]
              if name.endswith(".nc")}
    # scratch space outside the archive: verify works on a read-only archive
    scratch = Path(tempfile.mkdtemp(prefix="deterrence-verify-"))
    try:
        start_staging(plan, None, scratch)
        failures = execute(plan, scratch, executor or InProcessExecutor(), progress=progress)
        if failures:
            return [f"re-run failed: {f}" for f in failures]
        fresh = archive_files(plan, scratch, derive)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    # the key is stored as text (it exceeds the integers of JSON readers); older archives
    # hold a JSON number
    if (manifest.get("seed") != plan.seed
            or str(manifest.get("random_key")) != str(root_key(plan.seed))):
        problems.append("manifest.json: seed or random key does not match the plan")
    made = {PLAN_FILE, SWEEP_FILE, *fresh}
    problems += [f"{name}: not a file the sweep makes" for name in sorted(manifest["files"])
                 if name not in made]
    for name, new in fresh.items():
        if name not in manifest["files"]:
            problems.append(f"{name}: missing")
        elif isinstance(new, bytes):  # a figure: covered by its checksum
            continue
        else:
            for var in (*new.coords, *new.data_vars):
                if var not in stored[name]:
                    problems.append(f"{name}: {var} missing")
                elif not _same(stored[name][var], new[var], var in new.data_vars):
                    problems.append(f"{name}: {var} differs")
    return problems


def dispatch_environment(archive: str | Path) -> dict[str, str] | None:
    """The environment of a process whose numpy dispatches to the SIMD features the
    archive's did, when this one dispatches to more (None: it dispatches to the same, or
    to fewer, which no setting can add; :func:`dispatch_note` then explains a difference).
    The archive is checked as :func:`verify` checks it."""
    archive = Path(archive)
    stored = _stored_features(archive)
    extra = [f for f in simd_features() if f not in stored]
    if not extra:
        return None
    return {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(extra)}


def dispatch_note(archive: str | Path) -> str | None:
    """One line on why a re-run here may differ in the last bit from the archive's run
    (numpy here lacks SIMD features that the archive's machine had), or None."""
    archive = Path(archive)
    stored = _stored_features(archive)
    here = simd_features()
    missing = [f for f in stored if f not in here]
    if not missing:
        return None
    return (f"numpy here does not dispatch to {' '.join(missing)}, which the archive's "
            f"machine had: exp, log and tanh may round differently in the last bit; verify "
            f"on a CPU with those features")


def _stored_features(archive: Path) -> list[str]:
    files = regular_files(archive)
    return list((read_manifest(archive, files).get("platform") or {}).get("numpy_simd", []))


def _same(stored, new, nan_is_a_value: bool) -> bool:
    """The same dimensions and values (a missing value equal to a missing value, for data
    variables); values of another kind (text for numbers) differ."""
    try:
        return stored.dims == new.dims and bool(np.array_equal(
            stored.values, new.values, equal_nan=nan_is_a_value))
    except (TypeError, ValueError):
        return False
