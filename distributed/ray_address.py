"""Fail fast on a Ray cluster address where nothing listens (``ray.init`` retries for minutes)."""

from __future__ import annotations

import socket


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Raise ConnectionError at once when nothing listens at a HOST:PORT (or ray://HOST:PORT)
    address. 'auto' and other forms are left to Ray."""
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConnectionError(f"no Ray head answers at {address} ({exc})") from exc
