"""Writing results to disk: all or nothing."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..game.config import ConfigError


def write_directory(target: str | Path, fill: Callable[[Path], None]) -> Path:
    """Create ``target`` by filling a temporary folder beside it and renaming it into place.

    ``target`` must not exist yet. If ``fill`` fails, nothing is left behind.
    """
    target = Path(target)
    if target.exists():
        raise ConfigError(f"{target}: already exists; choose a new output folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it private; results are for sharing
    try:
        fill(staging)
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
