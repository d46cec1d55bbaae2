"""Atomic file writes: a temporary file beside the target, fsynced, renamed over it.

In ``envs`` (the bottom layer, with ``agents``) because the road-graph and path files are
written with them too; checkpoints (distributed/checkpoint.py) and the CLI's reports use them
from here. Imports point down only: envs never imports distributed or launch.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (os.umask can only
    set it: setting and restoring would briefly affect files other threads create)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, fsync, rename over ``path``: a crash or
    a full disk leaves the previous ``path`` whole. The file gets the mode an ordinary write
    would (mkstemp's 0600 would hide it from other users of a shared run directory); temporary
    files a killed process left behind are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """``path.write_text(text)`` through :func:`atomic_write`."""
    atomic_write(path, lambda f: f.write(text.encode()))
