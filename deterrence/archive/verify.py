"""Verifying archives: checksums, then a re-run compared bit for bit."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

import numpy as np

from ..game.config import ConfigError
from ..simulate.rules import root_key
from ..sweep.execute import InProcessExecutor, execute
from ..sweep.spec import Plan
from .manifest import ArchiveError, check_files, read_manifest
from .read import open_dataset
from .write import Derive, archive_files, plan_file, start_staging


def verify(archive: str | Path, executor: Executor | None = None,
           derive: Derive | None = None,
           progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Re-run an archive's sweep and compare every array bit for bit.

    Returns what differs (empty: it reproduces). Raises ArchiveError if malformed.
    ``progress``, if given, is called with (chunks re-run, chunks) as the re-run goes on.
    """
    archive = Path(archive)
    manifest = read_manifest(archive)
    problems = check_files(archive, manifest)
    if problems:
        return problems
    try:
        plan = Plan.from_json(json.loads(plan_file(archive).read_text()), str(archive))
    except (OSError, json.JSONDecodeError) as exc:
        raise ArchiveError(f"{archive}: unreadable plan ({exc})") from None
    except ConfigError as exc:
        raise ArchiveError(str(exc)) from None
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
    for name, new in fresh.items():
        if isinstance(new, bytes):  # a figure: covered by its checksum
            continue
        try:
            stored = open_dataset(archive / name)
        except Exception as exc:  # unreadable data file
            raise ArchiveError(f"{archive / name}: unreadable ({exc})") from None
        for var in (*new.coords, *new.data_vars):
            if var not in stored:
                problems.append(f"{name}: {var} missing")
            elif stored[var].dims != new[var].dims or not np.array_equal(
                    stored[var].values, new[var].values, equal_nan=var in new.data_vars):
                problems.append(f"{name}: {var} differs")
    return problems
