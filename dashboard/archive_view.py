"""The archives on disk: list them, open one, show its provenance, verify it.

Use from the page::

    from deterrence.dashboard import archive_view
    chosen = archive_view.archive_panel(api.results_dir(), "archive_")
    if chosen is not None:
        plan, exact, sim = chosen   # the same datasets as a live sweep's: draw its maps

``archive_list(results_dir)`` returns ``(entries, problems)``: the archives, newest first,
and one line for each folder that looks like an archive but cannot be read (so the page can
show them without a second walk of the folder).

:func:`archive_list` and :func:`open_archive` are pure (no Streamlit); the panel caches
:func:`open_archive` by (path, modification time), so a re-written archive is read again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import streamlit as st

from deterrence import api

#: The file whose presence makes a folder look like an archive (the archive layer's
#: ``MANIFEST``); a folder without one is not listed.
MANIFEST = "manifest.json"
#: Archives opened kept in the server's cache (each holds its datasets).
OPENED_KEPT = 8


@dataclass(frozen=True)
class ArchiveEntry:
    """One archive under the results folder, from its manifest and plan (data not read).

    ``complete``: every file the manifest lists is present (their checksums are checked by
    :func:`open_archive` and Verify)."""

    path: Path
    name: str
    created: str          # the manifest's ``finished`` time (UTC, ISO 8601)
    scenario: str
    formats: tuple[str, ...]
    size_bytes: int
    complete: bool


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def archive_list(results_dir: str | Path) -> tuple[list[ArchiveEntry], list[str]]:
    """The archives in ``results_dir`` (folders with a manifest), newest first, and one line
    for each folder that has a manifest but cannot be read as an archive. Staging folders
    (their names start with a dot) and folders without a manifest are skipped without a
    word."""
    root = Path(results_dir)
    entries, problems = [], []
    folders = sorted(root.iterdir()) if root.is_dir() else []
    for folder in folders:
        if folder.name.startswith(".") or not folder.is_dir() \
                or not (folder / MANIFEST).is_file():
            continue
        try:
            manifest = api.read_manifest(folder)
            plan = api.read_plan(folder)
            size = _size(folder)
        except (api.ArchiveError, api.ConfigError) as exc:
            problems.append(f"{folder.name}: not readable as an archive: {exc}")
            continue
        except OSError as exc:
            problems.append(f"{folder.name}: not readable ({exc.strerror or exc})")
            continue
        entries.append(ArchiveEntry(
            path=folder, name=folder.name, created=str(manifest["finished"]),
            scenario=plan.scenario.name, formats=tuple(plan.formats), size_bytes=size,
            complete=all((folder / name).is_file() for name in manifest["files"])))
    entries.sort(key=lambda e: e.created, reverse=True)
    return entries, problems


def open_archive(path: str | Path):
    """(plan, exact dataset, simulated dataset, provenance) of the archive at ``path``,
    read with :func:`deterrence.api.load_archive` (raises :class:`api.ArchiveError`).
    The provenance is a dict: created, code version, seed, scenario, formats, axes (path,
    unit, range, points), runs, replicates, steps, files that differ from the manifest, and
    the report's path if one is beside the archive (else None)."""
    loaded = api.load_archive(path)
    plan, manifest = loaded.plan, loaded.manifest
    code = manifest.get("code", {})
    report = api.report_location(path)
    summary = {
        "archive": Path(path).name,
        "created": manifest["finished"],
        "code version": f"{code.get('version', 'unknown')} (git "
                        f"{code.get('git_commit') or 'not recorded'}"
                        f"{', modified' if code.get('git_dirty') else ''})",
        "seed": plan.seed,
        "scenario": plan.scenario.name,
        "formats": ", ".join(plan.formats),
        "axes": [{"parameter": a.path, "unit": api.parameter_attributes(a.path)["units"],
                  "from": float(plan.points[:, j].min()),
                  "to": float(plan.points[:, j].max()),
                  "points": len(set(plan.points[:, j].tolist()))}
                 for j, a in enumerate(plan.spec.axes)],
        "runs": manifest["runs"],
        "replicates": plan.spec.replicates,
        "steps": plan.spec.steps,
        "problems": list(loaded.problems),
        "report": report if report.is_file() else None,
    }
    return plan, loaded.exact, loaded.sim, summary


@st.cache_resource(max_entries=OPENED_KEPT, show_spinner=False)
def _opened(path: str, mtime_ns: int):
    """:func:`open_archive`, kept per (path, modification time of its manifest)."""
    return open_archive(path)


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def archive_panel(results_dir: str | Path, key_prefix: str = "archive_"):
    """Choose an archive of ``results_dir``, show its provenance and report, verify it on
    request; its (plan, exact, sim), or None (nothing to open, or it cannot be read: one
    error line)."""
    entries, problems = archive_list(results_dir)
    for problem in problems:
        st.warning(problem)
    if not entries:
        st.info(f"No archives under `{results_dir}`. Save a sweep, or run "
                f"`deterrence sweep`, to make one.")
        return None
    by_name = {e.name: e for e in entries}
    name = st.selectbox(
        "Archive", list(by_name), key=f"{key_prefix}choice",
        format_func=lambda n: f"{n} — {by_name[n].scenario}, {len(by_name[n].formats)} "
                              f"formats, {by_name[n].created}, "
                              f"{_megabytes(by_name[n].size_bytes)}"
                              f"{'' if by_name[n].complete else ' (incomplete)'}")
    entry = by_name[name]
    try:
        stamp = (entry.path / MANIFEST).stat().st_mtime_ns
        plan, exact, sim, summary = _opened(str(entry.path), stamp)
    except (api.ArchiveError, api.ConfigError, OSError) as exc:
        st.error(f"Archive {name}: cannot be opened: {exc}")
        return None
    st.markdown(f"**{name}** — created {summary['created']}, code {summary['code version']}, "
                f"seed {summary['seed']}, scenario {summary['scenario']}, "
                f"{summary['runs']:,} runs ({summary['replicates']} replicates of "
                f"{summary['steps']} rounds)")
    st.markdown(f"Formats: {summary['formats']}")
    st.dataframe(summary["axes"], hide_index=True)
    if summary["problems"]:
        st.error(f"Archive {name}: its files differ from its manifest: "
                 + "; ".join(summary["problems"]))
    if summary["report"] is not None:
        st.markdown(f"Report: `{summary['report']}`")
    else:
        st.caption(f"No report beside it; `deterrence report {entry.path}` writes one.")
    if st.button("Verify", key=f"{key_prefix}verify",
                 help="Re-run the archive's sweep and compare every array bit for bit."):
        verify(entry.path)
    return plan, exact, sim


def verify(path: Path) -> None:
    """Re-run the archive with a progress bar; the result in one line."""
    bar = st.progress(0.0, text="Verifying…")
    try:
        differences = api.verify(path, progress=lambda done, total: bar.progress(
            done / total, text=f"Verifying: chunk {done} of {total}"))
    except api.ArchiveError as exc:
        bar.empty()
        st.error(f"Not verified: {exc}")
        return
    bar.empty()
    when = datetime.now(UTC).isoformat(timespec="seconds")
    if differences:
        st.error(f"Does not reproduce ({when}): " + "; ".join(differences))
    else:
        st.success(f"Reproduces bit for bit ({when}).")
