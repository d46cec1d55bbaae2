"""Run directories: ``runs/<preset>-<timestamp>/`` with config.yaml, tb/, checkpoint.pt, plots/."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from distributed.checkpoint import CHECKPOINT_NAME
from launch.config import ConfigError

# a run killed (SIGKILL, out of memory, power loss) before it wrote its first checkpoint
STOPPED_BEFORE_CHECKPOINT = ("holds the config.yaml of a run that stopped before its first "
                             "checkpoint: there is nothing to resume; remove the directory to "
                             "start that run again, or use another --out")


def new_run_dir(preset: str, out: str | None) -> Path:
    """The directory of a new run: ``out``, or ``runs/<preset>-<timestamp>``. Only checked and
    chosen here; the caller makes it (mkdir) once nothing else can fail first. ``~`` and
    ``$VARS`` in ``out`` are expanded here: ``ray job submit`` hands the command to the head
    shell-quoted, so ``--out '$HOME/runs/x'`` reaches softq unexpanded."""
    if out is not None:
        path = Path(os.path.expandvars(os.path.expanduser(out)))
        unset = re.search(r"\$(\w+|\{[^}]*\})", str(path))
        if unset:  # expandvars leaves an unset variable as it is: a directory named "$X"
            raise ConfigError(f"--out {out}: the variable {unset.group(0)} is not set")
        if path.exists() and not path.is_dir():
            raise ConfigError(f"--out {path} is a file, not a directory")
        check_no_file_in_the_way(path)
        if (path / CHECKPOINT_NAME).exists():
            raise ConfigError(f"run directory {path} already holds a run; "
                              f"use --resume {path} or another --out")
        if (path / "config.yaml").exists():  # --resume would find no checkpoint either
            raise ConfigError(f"run directory {path} {STOPPED_BEFORE_CHECKPOINT}")
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path("runs") / f"{preset}-{stamp}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = Path("runs") / f"{preset}-{stamp}-{suffix}"
    return path


def check_no_file_in_the_way(out: Path) -> None:
    """``--out`` ``out`` can be made: neither it nor a parent is a file (mkdir would fail)."""
    blocked = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise ConfigError(f"--out {out}: {blocked} is a file, not a directory")


def claim_run_dir(path: Path) -> Path:
    """Create ``path``, or ``path-2``, ``path-3``, ... if another run (started in the same
    second) created it first: mkdir either makes the directory or fails, so two runs never
    share one."""
    base, suffix = path, 1
    while True:
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            suffix += 1
            path = base.with_name(f"{base.name}-{suffix}")


LOCK_NAME = ".lock"  # flock'ed by the process training in the directory; the OS drops it on exit


def open_own_file(path: Path, flags: int, refusal: str) -> int:
    """``os.open(path, flags | O_CREAT | O_NOFOLLOW)``: a symbolic link planted at ``path`` (in a
    shared run or data directory) would have softq create, lock or append to the file it names,
    anywhere; it is refused as a ConfigError naming ``path`` and ``refusal`` (what to do)."""
    try:
        return os.open(path, flags | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise ConfigError(f"{path} is a symbolic link, {refusal}") from None


@contextlib.contextmanager
def hold_run_dir(path: Path) -> Iterator[None]:
    """Hold ``path``'s lock while a run trains there: a second ``--resume`` of the same run, or
    a second ``softq reproduce`` moving it aside, is refused instead of writing beside it."""
    fd = open_own_file(path / LOCK_NAME, os.O_RDWR, "not softq's lock file; remove it")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{path} is in use: another softq process is training there") \
                from None
        yield
    finally:
        os.close(fd)  # releases the lock


def run_dir_in_use(path: Path) -> bool:
    """Whether a softq process holds ``path``'s lock now."""
    try:
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
