"""Writing archives: a sweep's staging folder, assembled and renamed into place.

When every chunk is there the archive is assembled in the staging folder and renamed into
place, so an archive is complete or absent.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..game.config import ConfigError
from ..simulate.rules import root_key
from ..sweep.datasets import OUTPUTS, datasets
from ..sweep.execute import Cancel, Cancelled, Summaries, cancel_check, execute, read_summaries
from ..sweep.spec import Plan
from .manifest import (
    PLAN_FILE,
    PLAN_LIMIT,
    SWEEP_FILE,
    SWEEP_FILE_LIMIT,
    code_version,
    packages,
    sha256,
    simd_features,
    write_manifest,
)
from .storage import cannot_create, check_new_folder, make_folders, remove_empty

#: Environment variable naming the folder where new archives go.
RESULTS_ENV = "DETERRENCE_RESULTS_DIR"


def results_dir(folder: str | Path | None = None) -> Path:
    """Where new archives go: ``folder`` if given, else the folder named by the environment
    variable ``DETERRENCE_RESULTS_DIR``, else ``results`` in the working directory. Read at
    each call, as an absolute path."""
    return Path(folder or os.environ.get(RESULTS_ENV) or "results").absolute()

#: Files computed from an archive's datasets by a higher layer (the analysis), written into
#: the archive with them and re-computed by ``verify``: {name: Dataset or bytes}.
Derive = Callable[[Plan, Mapping[str, Any]], Mapping[str, Any]]


def plan_file(staging: Path) -> Path:
    return staging / PLAN_FILE


def start_staging(plan: Plan, source: Path | None, staging: Path) -> None:
    """Write the plan and the sweep file into ``staging``; refused, before anything is
    written, if either is larger than an archive's reader accepts."""
    # keys in their own order: the order of formats is part of the plan
    text = json.dumps(plan.to_json(), indent=1)
    if len(text) > PLAN_LIMIT:  # JSON of numbers and ASCII text: a byte a character
        raise ConfigError(f"sweep {plan.spec.name!r}: its plan, {len(text):,} bytes of "
                          f"{PLAN_FILE} for {len(plan.all_points):,} points, is above the "
                          f"limit of {PLAN_LIMIT:,} bytes that archives are read with; "
                          "sweep fewer points")
    if source is not None and source.stat().st_size > SWEEP_FILE_LIMIT:
        raise ConfigError(f"{source}: {source.stat().st_size:,} bytes, above the limit of "
                          f"{SWEEP_FILE_LIMIT:,} bytes for the sweep file of an archive")
    made: list[Path] = []
    try:
        make_folders(staging / "config", made)
    except OSError as exc:
        remove_empty(made)
        raise cannot_create(staging, exc) from None
    plan_file(staging).write_text(text)
    if source is not None:
        shutil.copyfile(source, staging / SWEEP_FILE)


def archive_files(plan: Plan, staging: Path, derive: Derive | None = None,
                  summaries: Summaries | None = None) -> dict[str, Any]:
    """Every data file of a sweep: labelled arrays (and figures, as bytes) by their name in
    the archive, from ``summaries`` or else from the chunk files staged in ``staging``."""
    if summaries is None:
        summaries = read_summaries(plan, staging)
    out: dict[str, Any] = datasets(plan, summaries)
    if derive is not None:
        out.update(derive(plan, out))
    return out


def finish_archive(plan: Plan, staging: Path, target: Path, started: str,
                   executor_name: str, source: Path | None = None,
                   derive: Derive | None = None, summaries: Summaries | None = None,
                   cancel: Cancel | None = None) -> Path:
    """Write the data, provenance and checksums into ``staging`` and rename it to
    ``target``. The data comes from ``summaries`` if given, else from the staged chunk
    files; ``cancel`` is looked at before each data file (:class:`Cancelled`)."""
    stop = cancel_check(cancel)
    stop()
    for name, data in archive_files(plan, staging, derive, summaries).items():
        stop()
        (staging / name).parent.mkdir(exist_ok=True)
        if isinstance(data, bytes):
            (staging / name).write_bytes(data)
        else:
            data.to_netcdf(staging / name, engine="scipy")
    stop()
    shutil.rmtree(staging / "chunks", ignore_errors=True)  # none when given the summaries
    files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*")
                   if p.is_file())
    manifest = {
        "archive": target.name,
        "sweep": plan.spec.name,
        "started": started,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": plan.seed,
        # as text: the 64-bit key exceeds the integers that JSON readers in R or
        # JavaScript hold exactly (2^53) and R's integers (2^31)
        "random_key": str(root_key(plan.seed)),
        "runs": plan.runs_per_format * len(plan.formats),
        "executor": executor_name,
        # the archive's copy of the sweep file, relative to the archive (its scenario
        # path is relative to where the original lay)
        "sweep_file": SWEEP_FILE if source is not None else None,
        "code": code_version(),
        "packages": packages(),
        "platform": {"python": sys.version.split()[0], "system": platform.platform(),
                     "machine": platform.machine(), "numpy_simd": simd_features()},
        "files": {f: sha256(staging / f) for f in files},
    }
    write_manifest(staging, manifest)
    os.rename(staging, target)
    return target


def staging_for(target: Path) -> Path:
    return target.parent / f".{target.name}.partial"


def run_sweep(plan: Plan, target: Path, executor: Executor, executor_name: str,
              source: Path | None = None, resume: bool = False, retries: int = 2,
              progress=None, derive: Derive | None = None,
              cancel: Cancel | None = None) -> tuple[Path | None, list[str]]:
    """Run a sweep into the archive folder ``target`` (which must not exist).

    Returns (archive path, []) on success, or (None, failures) if chunks failed; the
    staging folder is then kept so that ``resume=True`` continues where it stopped.
    Once ``cancel`` is set (looked at between chunks and between data files) the chunks
    in flight are abandoned, the staging folder is removed (kept when resuming: it holds
    the chunks of an earlier run) and :class:`Cancelled` is raised.
    """
    check_new_folder(target)
    staging = staging_for(target)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    if resume:
        if not plan_file(staging).exists():
            raise ConfigError(f"{staging}: no interrupted sweep to resume")
        stored = Plan.from_json(json.loads(plan_file(staging).read_text()), str(staging))
        if stored.to_json() != plan.to_json():
            raise ConfigError(f"{staging}: was started with a different sweep; remove it or "
                              "run under a new name")
    else:
        if staging.exists():
            raise ConfigError(f"{staging}: an interrupted sweep is there; resume it "
                              "(--resume) or remove it")
        start_staging(plan, source, staging)
    try:
        failures = execute(plan, staging, executor, retries, progress, cancel)
        if failures:
            return None, failures
        return finish_archive(plan, staging, target, started, executor_name, source,
                              derive, cancel=cancel), []
    except Cancelled:
        if not resume:
            shutil.rmtree(staging, ignore_errors=True)
        raise


def check_summaries(plan: Plan, summaries: Summaries) -> None:
    """Raise ConfigError unless ``summaries`` holds every output of ``plan``'s runs: an
    array (format, runs) for each, as :func:`read_summaries` returns them."""
    shape = (len(plan.formats), plan.runs_per_format)
    for name in OUTPUTS:
        if name not in summaries:
            raise ConfigError(f"summaries: no {name!r}; allowed: the outputs of the sweep "
                              f"{plan.spec.name!r}, {', '.join(OUTPUTS)}")
        got = getattr(summaries[name], "shape", None)
        if got != shape:
            raise ConfigError(f"summaries[{name!r}]: shape {got}; allowed: {shape} "
                              f"(formats, runs) for the sweep {plan.spec.name!r}")


def write_archive(plan: Plan, summaries: Summaries, target: Path, executor_name: str,
                  source: Path | None = None, derive: Derive | None = None,
                  cancel: Cancel | None = None) -> Path:
    """Write the archive ``target`` (which must not exist) of ``plan`` from its computed
    ``summaries`` (:func:`deterrence.sweep.execute.simulate_summaries`) without running
    any chunk: the same files as :func:`run_sweep`, staged and renamed into place. Once
    ``cancel`` is set (looked at between files) the staging folder is removed and
    :class:`Cancelled` raised: an archive is complete or absent."""
    check_summaries(plan, summaries)
    check_new_folder(target)
    staging = staging_for(target)
    if staging.exists():
        raise ConfigError(f"{staging}: an interrupted sweep is there; remove it or save "
                          "under a new name")
    started = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        start_staging(plan, source, staging)
        return finish_archive(plan, staging, target, started, executor_name, source,
                              derive, summaries, cancel)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
