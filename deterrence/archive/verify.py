"""Verifying archives: checksums, then a re-run compared bit for bit."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

import numpy as np

from ..simulate.rules import root_key
from ..sweep.execute import InProcessExecutor, execute
from .manifest import PLAN_FILE, SWEEP_FILE, check_files, read_manifest, regular_files
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


def _same(stored, new, nan_is_a_value: bool) -> bool:
    """The same dimensions and values (a missing value equal to a missing value, for data
    variables); values of another kind (text for numbers) differ."""
    try:
        return stored.dims == new.dims and bool(np.array_equal(
            stored.values, new.values, equal_nan=nan_is_a_value))
    except (TypeError, ValueError):
        return False
