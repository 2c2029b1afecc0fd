"""Archive manifests: checksums, provenance (code, packages, platform), and reading an
archive's files safely.

An archive is read as untrusted input: its folder is walked once without following links
(:func:`regular_files`) and a symbolic link, fifo, device or socket anywhere in it is
refused before any file is opened; every path the manifest names is a plain relative path
inside it; the manifest carries the SHA-256 of its own canonical form, checked before
anything it says is used; and the files read whole (the manifest, the plan, the sweep file)
are refused above a size limit before they are read.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any


def sha256(path: Path) -> str:
    """SHA-256 of a regular file, read in blocks."""
    digest = hashlib.sha256()
    with open_regular(path) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def code_version() -> dict[str, Any]:
    """The installed version of the package and, when it is imported from the git work tree
    it belongs to (an editable install or a clone), the commit and whether deterrence/ or
    configs/ have uncommitted changes. Git is not run anywhere else: an installed wheel
    records ``git_commit: null``."""
    try:
        version = metadata.version("deterrence")
    except metadata.PackageNotFoundError:
        version = None
    commit = dirty = None
    root = Path(__file__).resolve().parents[2]  # the folder that holds deterrence/
    if (root / ".git").exists():  # a folder in a clone, a file in a linked work tree
        def git(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                                  timeout=10)
        try:
            if git("ls-files", "--error-unmatch", "--", "deterrence/__init__.py").returncode == 0:
                commit = git("rev-parse", "HEAD").stdout.strip() or None
                dirty = bool(git("status", "--porcelain", "--", "deterrence", "configs")
                             .stdout.strip()) if commit else None
        except (OSError, subprocess.SubprocessError):
            commit, dirty = None, None
    return {"version": version, "git_commit": commit, "git_dirty": dirty}


#: The installed packages whose versions can change an archive's numbers or bytes: the
#: engine and solver (numpy, scipy, and numba, which compiles the solver's kernels),
#: validation (pydantic), the reference engine (mesa),
#: the NetCDF files (xarray, written with scipy's NetCDF 3 writer; pandas for its indexes),
#: the sensitivity indices (SALib) and tornado figure (matplotlib), and scenario discovery
#: in the report (ema_workbench).
PACKAGES = ("deterrence", "numpy", "scipy", "numba", "pydantic", "mesa", "xarray", "pandas",
            "SALib", "matplotlib", "ema_workbench")


def packages() -> dict[str, str]:
    """The version of each of :data:`PACKAGES`, or "not installed"."""
    names = PACKAGES
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def simd_features() -> list[str]:
    """The CPU features numpy dispatches to here. Transcendental functions (exp, tanh) may
    round differently in the last bit on a CPU with other features, which ``verify`` would
    report; basic arithmetic is the same everywhere."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:
        return []
    return [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]


class ArchiveError(ValueError):
    """An archive is malformed or unsafe to read (a missing, edited or oversized manifest,
    a link or special file in it, an unreadable plan or data file)."""


#: The manifest's name in an archive.
MANIFEST = "manifest.json"
#: The manifest's key holding the SHA-256 of its own canonical form (:func:`manifest_digest`).
DIGEST_KEY = "manifest_sha256"
#: Largest files read whole, refused unread above it: the manifest (a few kB: provenance
#: and one checksum per file), the resolved plan (its points; about 25 bytes per number,
#: so some 2.5 million numbers: a sample of 800 000 points of 3 parameters) and the sweep
#: file (a few hundred bytes). A sweep whose plan would exceed its limit is refused before
#: it starts, so every archive written can be read.
MANIFEST_LIMIT = 1 << 20
PLAN_LIMIT = 64 << 20
SWEEP_FILE_LIMIT = 1 << 20
#: Where an archive keeps its resolved plan and the copy of its sweep file.
PLAN_FILE = "config/plan.json"
SWEEP_FILE = "config/sweep.toml"
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_COMMIT = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?\Z")  # SHA-1 or SHA-256 object names


def shown(path: str | Path) -> str:
    """A path for a one-line message: as it is, or quoted with escapes if it holds a line
    break or another character that does not print."""
    text = str(path)
    return text if text.isprintable() else repr(text)


def _kind(mode: int) -> str | None:
    """What a file that is neither a folder nor a regular file is, for a message."""
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a fifo"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) or stat.S_ISDIR(mode) else "not a regular file"


def _refuse(path: Path, mode: int) -> ArchiveError:
    kind = _kind(mode)
    if stat.S_ISLNK(mode):
        try:
            kind += f" (to {shown(os.readlink(path))})"
        except OSError:
            pass
    return ArchiveError(f"{shown(path)}: {kind}; an archive holds only regular files and "
                        "folders, and nothing is read through a link or from a special file")


def regular_files(archive: Path) -> dict[str, int]:
    """Every file in the folder ``archive`` by its path relative to it (``data/exact.nc``),
    with its size in bytes. The folder is walked once with ``lstat``, following no link
    (``archive`` itself may be one: it is the caller's name for the archive).

    Raises ArchiveError if ``archive`` is not a folder, and naming the first symbolic
    link, fifo, socket or device in it, before any file is opened: a link can lead out of
    the archive, a fifo blocks its reader, a device reads without end."""
    archive = Path(archive)
    if not archive.is_dir():
        problem = "not a folder" if archive.exists() else "no such folder"
        raise ArchiveError(f"{shown(archive)}: not an archive ({problem})")
    found: dict[str, int] = {}
    pending = [""]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(archive / folder) as listing:
                entries = sorted(listing, key=lambda e: e.name, reverse=True)
            for entry in entries:
                name = f"{folder}/{entry.name}" if folder else entry.name
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    pending.append(name)
                elif stat.S_ISREG(info.st_mode):
                    found[name] = info.st_size
                else:
                    raise _refuse(archive / name, info.st_mode)
        except OSError as exc:  # a folder that cannot be listed
            raise ArchiveError(f"{shown(archive / folder)}: unreadable "
                               f"({exc.strerror or exc})") from None
    return dict(sorted(found.items()))


def open_regular(path: Path):
    """``path`` opened for reading in binary, if it is a regular file: opened without
    following a link and without blocking (a fifo), then checked. Raises ArchiveError for
    anything else, OSError if it cannot be opened."""
    flags = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
             | getattr(os, "O_CLOEXEC", 0))
    try:
        descriptor = os.open(path, flags)
    except OSError:
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            mode = None
        if mode is not None and _kind(mode):
            raise _refuse(Path(path), mode) from None
        raise
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        raise _refuse(Path(path), mode)
    return os.fdopen(descriptor, "rb")


def _limits() -> dict[str, int]:
    """The files of an archive read whole, and their limits (read at each call)."""
    return {MANIFEST: MANIFEST_LIMIT, PLAN_FILE: PLAN_LIMIT, SWEEP_FILE: SWEEP_FILE_LIMIT}


def _too_large(archive: Path, name: str, size: int) -> ArchiveError:
    limit = _limits()[name]
    return ArchiveError(f"{shown(archive / name)}: {size:,} bytes, above the limit of "
                        f"{limit:,} bytes ({limit / (1 << 20):g} MiB) for this file; not read")


def check_sizes(archive: Path, files: dict[str, int]) -> None:
    """Refuse the archive if a file read whole (manifest, plan, sweep file) is above its
    limit, whether or not the command at hand reads it: every command accepts the same
    archives."""
    for name, limit in _limits().items():
        if files.get(name, 0) > limit:
            raise _too_large(archive, name, files[name])


def read_limited(archive: Path, files: dict[str, int], name: str) -> bytes:
    """The bytes of the archive's file ``name`` (one of ``files``, :func:`regular_files`),
    one of the files read whole; refused unread above its limit."""
    path = archive / name
    if name not in files:
        raise ArchiveError(f"{shown(path)}: missing")
    limit = _limits()[name]
    if files[name] > limit:
        raise _too_large(archive, name, files[name])
    try:
        with open_regular(path) as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise ArchiveError(f"{shown(path)}: unreadable ({exc.strerror or exc})") from None
    if len(data) > limit:  # it grew since the walk
        raise _too_large(archive, name, len(data))
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = next(key for key in keys if keys.count(key) > 1)
        raise ValueError(f"key {twice!r} appears twice")
    return dict(pairs)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def parse_json(data: bytes) -> Any:
    """Strict JSON: UTF-8, no key twice in an object (readers differ on which one wins),
    no NaN or Infinity. Raises ValueError."""
    return json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates,
                      parse_constant=_no_constant)


def manifest_digest(manifest: dict[str, Any]) -> str:
    """The SHA-256 of a manifest's canonical form: its JSON without :data:`DIGEST_KEY`,
    keys sorted, no whitespace, non-ASCII characters as ``\\u`` escapes (Python's
    ``json.dumps(m, sort_keys=True, separators=(",", ":"))``)."""
    body = {key: value for key, value in manifest.items() if key != DIGEST_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest`` as ``folder/manifest.json`` with its digest (:data:`DIGEST_KEY`)."""
    sealed = {**manifest, DIGEST_KEY: manifest_digest(manifest)}
    path = Path(folder) / MANIFEST
    path.write_text(json.dumps(sealed, indent=1, sort_keys=True))
    return path


def _inside(name: Any) -> bool:
    """Whether a name in the manifest is a plain relative path: non-empty segments joined
    by ``/``, none ``.`` or ``..``, no backslash and no NUL."""
    return (isinstance(name, str) and "\\" not in name and "\0" not in name
            and all(part not in ("", ".", "..") for part in name.split("/")))


def _is(value: Any, kinds: tuple[type, ...]) -> bool:
    return isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)


#: The types of the manifest's provenance, where present: {key: types} and, for a table,
#: {key: {inner key: types}}.
_TEXT = (str,)
_MAYBE_TEXT = (str, type(None))
_PROVENANCE: dict[str, Any] = {
    "archive": _TEXT, "sweep": _TEXT, "started": _TEXT, "finished": _TEXT,
    "executor": _TEXT, "sweep_file": _MAYBE_TEXT, "seed": (int,), "runs": (int,),
    "random_key": (str, int),  # text; a JSON number in archives of earlier versions
    "code": {"version": _MAYBE_TEXT, "git_commit": _MAYBE_TEXT,
             "git_dirty": (bool, type(None))},
    "platform": {"python": _TEXT, "system": _TEXT, "machine": _TEXT, "numpy_simd": (list,)},
}


def _check_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """The manifest's files table and provenance have the form the writer gives them."""
    def bad(key: str, value: Any, allowed: str) -> ArchiveError:
        return ArchiveError(f"{shown(path)}: malformed manifest: key '{key}' = "
                            f"{value!r:.200}: {allowed}")

    files = manifest.get("files")
    if not isinstance(files, dict):
        raise bad("files", files, "must be a table of file paths and their SHA-256")
    for name, digest in files.items():
        if not _inside(name):
            raise bad("files", name, "not a path inside the archive (a relative path of "
                      "names joined by '/', without '..', '.', empty names, backslashes "
                      "or NUL)")
        if not (isinstance(digest, str) and _SHA256.match(digest)):
            raise bad(f"files.{name}", digest, "must be a SHA-256 (64 hexadecimal digits)")
    for key, kinds in _PROVENANCE.items():
        if key not in manifest:
            continue
        value = manifest[key]
        if isinstance(kinds, dict):
            if not isinstance(value, dict):
                raise bad(key, value, "must be a table")
            for inner, inner_kinds in kinds.items():
                if inner in value and not _is(value[inner], inner_kinds):
                    raise bad(f"{key}.{inner}", value[inner], "has the wrong type")
        elif not _is(value, kinds):
            raise bad(key, value, "has the wrong type")
    commit = (manifest.get("code") or {}).get("git_commit")
    if commit is not None and not _COMMIT.match(commit):
        raise bad("code.git_commit", commit, "must be null or a git commit (40 or 64 "
                  "hexadecimal digits)")
    packages = manifest.get("packages", {})
    if not (isinstance(packages, dict)
            and all(isinstance(v, str) for v in packages.values())):
        raise bad("packages", packages, "must be a table of package names and versions")
    simd = (manifest.get("platform") or {}).get("numpy_simd", [])
    if not all(isinstance(feature, str) for feature in simd):
        raise bad("platform.numpy_simd", simd, "must be a list of CPU feature names")


def read_manifest(archive: Path, files: dict[str, int] | None = None) -> dict[str, Any]:
    """The manifest of ``archive``, checked: the sizes of the files read whole first
    (:func:`check_sizes`), then the manifest's digest (an edit after it was written, the
    provenance included, is caught), then its form; every file it names is a plain path
    inside the archive. ``files``: the archive's :func:`regular_files` (walked here if not
    given). Raises ArchiveError."""
    archive = Path(archive)
    if files is None:
        files = regular_files(archive)
    path = archive / MANIFEST
    if MANIFEST not in files:
        raise ArchiveError(f"{shown(archive)}: not an archive (no {MANIFEST})")
    check_sizes(archive, files)
    try:
        manifest = parse_json(read_limited(archive, files, MANIFEST))
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, ArchiveError):
            raise
        raise ArchiveError(f"{shown(path)}: malformed manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise ArchiveError(f"{shown(path)}: malformed manifest (not a JSON object)")
    if DIGEST_KEY not in manifest:
        raise ArchiveError(f"{shown(path)}: no {DIGEST_KEY} (the digest of the manifest "
                           "itself): written before archives recorded it, or edited; re-run "
                           "the archive's sweep to make an archive that can be checked")
    if manifest[DIGEST_KEY] != manifest_digest(manifest):
        raise ArchiveError(f"{shown(path)}: edited after it was written (digest differs)")
    _check_manifest(path, manifest)
    return manifest


def check_files(archive: Path, manifest: dict[str, Any],
                files: dict[str, int] | None = None) -> list[str]:
    """Files that are missing, changed or not listed, by their path in the archive.
    ``files``: the archive's :func:`regular_files` (walked here if not given)."""
    archive = Path(archive)
    if files is None:
        files = regular_files(archive)
    problems = []
    for name, digest in sorted(manifest["files"].items()):
        if name not in files:
            problems.append(f"{shown(name)}: missing")
            continue
        try:
            changed = sha256(archive / name) != digest
        except OSError as exc:
            raise ArchiveError(f"{shown(archive / name)}: unreadable "
                               f"({exc.strerror or exc})") from None
        if changed:
            problems.append(f"{shown(name)}: changed (checksum differs)")
    listed = set(manifest["files"]) | {MANIFEST}
    problems += [f"{shown(name)}: not in the manifest" for name in files if name not in listed]
    return problems
