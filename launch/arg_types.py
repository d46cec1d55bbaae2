"""argparse value types that refuse an out-of-range number (or an unknown device) by name.

argparse turns the ArgumentTypeError into one line, ``softq eval: error: argument --episodes:
must be >= 1, got 0``, and exit code 2, before the command has touched anything.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number(text: str, kind: type) -> float:
    try:
        return kind(text)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An integer >= ``minimum``."""
    def parse(text: str) -> int:
        value = int(_number(text, int))
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


def float_at_least(minimum: float, *, strictly: bool = False) -> Callable[[str], float]:
    """A finite number >= ``minimum`` (> with ``strictly``)."""
    def parse(text: str) -> float:
        value = _number(text, float)
        if not math.isfinite(value) or value < minimum or (strictly and value == minimum):
            rule = ">" if strictly else ">="
            raise argparse.ArgumentTypeError(f"must be a finite number {rule} {minimum}, "
                                             f"got {text}")
        return value
    return parse


def finite_float(text: str) -> float:
    """Any finite number (nan and inf refused)."""
    value = _number(text, float)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def int_list_at_least(minimum: int) -> Callable[[str], list[int]]:
    """Comma-separated integers, each >= ``minimum`` (``1000,5000``; empty items are skipped)."""
    one = int_at_least(minimum)

    def parse(text: str) -> list[int]:
        return [one(item) for item in text.split(",") if item.strip()]
    return parse


def directory(text: str) -> str:
    """A directory path; an empty one (an unset shell variable) is refused, not read as '.' or
    as the flag's default."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty (an unset shell variable?)")
    return text


def torch_device(text: str) -> str:
    """'cpu', 'cuda' or 'cuda:N', where a CUDA device must exist on this machine."""
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"expected 'cpu', 'cuda' or 'cuda:N', got {text!r}")
    count = missing_cuda_device(device)
    if count is not None:
        raise argparse.ArgumentTypeError(f"{text!r}: this machine has {count} CUDA device(s)")
    return text


def missing_cuda_device(device) -> int | None:
    """This machine's CUDA device count when ``device`` (a torch.device) names a CUDA device it
    lacks; None when the device is there or is no CUDA device."""
    import torch

    if device.type != "cuda":
        return None
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return count if (device.index or 0) >= count else None


def probability_below_one(text: str) -> float:
    """A number in [0, 1)."""
    value = _number(text, float)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value
