"""Archive manifests: checksums, provenance (code, packages, platform) and reading them."""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any


def sha256(path: Path) -> str:
    """SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
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
#: engine and solver (numpy, scipy), validation (pydantic), the reference engine (mesa),
#: the NetCDF files (xarray, written with scipy's NetCDF 3 writer; pandas for its indexes),
#: the sensitivity indices (SALib) and tornado figure (matplotlib), and scenario discovery
#: in the report (ema_workbench).
PACKAGES = ("deterrence", "numpy", "scipy", "pydantic", "mesa", "xarray", "pandas", "SALib",
            "matplotlib", "ema_workbench")


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
    """An archive is malformed (missing or unreadable manifest, plan or data)."""


def read_manifest(archive: Path) -> dict[str, Any]:
    path = archive / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not a table")
    except FileNotFoundError:
        raise ArchiveError(f"{archive}: not an archive (no manifest.json)") from None
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"{path}: malformed manifest ({exc})") from None
    except OSError as exc:  # not a folder, unreadable
        raise ArchiveError(f"{archive}: not an archive ({exc.strerror or exc})") from None
    return manifest


def check_files(archive: Path, manifest: dict[str, Any]) -> list[str]:
    """Files that are missing, changed or not listed."""
    problems = []
    for name, digest in sorted(manifest["files"].items()):
        path = archive / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256(path) != digest:
            problems.append(f"{name}: changed (checksum differs)")
    listed = set(manifest["files"]) | {"manifest.json"}
    extra = sorted(p.relative_to(archive).as_posix() for p in archive.rglob("*")
                   if p.is_file() and p.relative_to(archive).as_posix() not in listed)
    problems += [f"{name}: not in the manifest" for name in extra]
    return problems
