"""Ctrl-C and SIGTERM end a training run as KeyboardInterrupt, but never in the middle of a step
whose half would be checkpointed.

An inline run checkpoints right after the interrupt. Raised at an arbitrary bytecode, it could
land between DDPG's critic step and its actor step, or between a replay insert and the env-step
count that goes with it, and the checkpoint then held half a step. Around such steps
``uninterrupted()`` holds a signal back and raises it when the step is whole. Without
``signals_as_interrupt()`` installed (a test calling a runtime directly, a thread other than the
main one) Python's own Ctrl-C handling applies and ``uninterrupted()`` holds nothing back.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class _Held:
    depth = 0  # nesting of uninterrupted() blocks now running
    pending: int | None = None  # a signal that arrived inside one
    received: list[int] | None = None  # every signal since signals_as_interrupt() began


def _on_signal(signum: int, frame: Any) -> None:
    if _Held.received is not None:
        _Held.received.append(signum)
    if _Held.depth:
        _Held.pending = signum
        return
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def signals_as_interrupt() -> Iterator[list[int]]:
    """While the run trains, SIGINT (Ctrl-C) and SIGTERM (``kill``, ``ray job stop``, a
    scheduler's preemption) raise KeyboardInterrupt outside ``uninterrupted()`` blocks and at the
    end of one inside them. Without this SIGTERM killed an inline run at once, losing every step
    since its last checkpoint, and a Ray run (ray.init turns SIGTERM into sys.exit) wrote no
    summary and aborted; install it after Ray started, which sets its own handlers. Yields the
    list of signals received (the exit code tells SIGTERM from Ctrl-C)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received  # signal handlers belong to the main thread
        return
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    _Held.received, _Held.pending = received, None
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _Held.received, _Held.pending = None, None


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back until the block has run; then raise KeyboardInterrupt."""
    with held_back():
        yield
    raise_pending("held until the step was whole")


@contextlib.contextmanager
def held_back() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back while the block runs and leave one that arrived pending, for
    :func:`raise_pending` where the caller can handle it (a runtime's setup: the handler that
    writes the final checkpoint needs the components the setup builds)."""
    _Held.depth += 1
    try:
        yield
    finally:
        _Held.depth -= 1


def raise_pending(why: str = "held until the run was set up") -> None:
    """Raise a signal that :func:`held_back` held as KeyboardInterrupt (none pending, or still
    inside a held block: return)."""
    if not _Held.depth and _Held.pending is not None:
        signum, _Held.pending = _Held.pending, None
        raise KeyboardInterrupt(f"signal {signum} ({why})")
