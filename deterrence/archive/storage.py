"""Writing results to disk: all or nothing."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..game.config import ConfigError

#: Characters of a target's name that its staging folder's name keeps (with a dot before
#: and a random suffix after), so that the staging name fits wherever the target's does.
STAGING_NAME_CHARACTERS = 32


def cannot_create(folder: Path, exc: OSError) -> ConfigError:
    """The error for a folder the system refuses to create, naming it and the reason."""
    return ConfigError(f"{folder}: cannot create the folder ({exc.strerror or exc})")


def check_new_folder(target: str | Path) -> None:
    """Raise :class:`ConfigError` unless the folder ``target`` can be made: it does not
    exist, its name and place are allowed, and a folder can be created beside it (tried,
    then removed: nothing is left behind)."""
    with _staging(Path(target)):
        pass


def write_directory(target: str | Path, fill: Callable[[Path], None]) -> Path:
    """Create ``target`` by filling a temporary folder beside it and renaming it into place.

    ``target`` must not exist yet. If ``fill`` fails, nothing is left behind; a folder that
    cannot be created is a :class:`ConfigError` naming it and the system's reason.
    """
    target = Path(target)
    with _staging(target) as staging:
        fill(staging)
        try:
            os.rename(staging, target)
        except OSError as exc:
            raise cannot_create(target, exc) from None
    return target


@contextmanager
def _staging(target: Path) -> Iterator[Path]:
    """A new empty folder beside ``target`` (made with ``target``'s missing parents). On
    leaving, whatever of it was not renamed to ``target`` is removed, and so are the
    parents made for it unless ``target`` now exists."""
    try:
        os.stat(target)
    except FileNotFoundError:
        pass
    except OSError as exc:  # a parent is a file, the name is too long, ...
        raise cannot_create(target, exc) from None
    else:
        raise ConfigError(f"{target}: already exists; choose a new output folder")
    made: list[Path] = []
    try:
        make_folders(target.parent, made)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name[:STAGING_NAME_CHARACTERS]}.",
                                        dir=target.parent))
    except OSError as exc:
        remove_empty(made)
        raise cannot_create(target, exc) from None
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it private; results are for sharing
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not target.exists():
            remove_empty(made)


def make_folders(folder: Path, made: list[Path]) -> None:
    """Create ``folder`` and its missing parents, appending each one made to ``made`` (so
    that a caller can remove them again if what follows fails)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        new.mkdir()
        made.append(new)


def remove_empty(made: list[Path]) -> None:
    """Remove the folders of :func:`make_folders`, innermost first, where still empty."""
    for folder in reversed(made):
        try:
            folder.rmdir()
        except OSError:
            break
