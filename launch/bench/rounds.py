"""Interleaved benchmark rounds: robust ratios on a machine whose speed drifts.

A shared or virtual machine's speed drifts over minutes (other tenants, thermal limits), so one
run of system A followed by one of system B can put the drift into their ratio. ``run_rounds``
runs every system once per round, in the same order each round, and ``round_ratios`` takes each
round's ratio from figures measured minutes apart at most; the median over rounds then discards
a round that a burst of load hit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def run_rounds(systems: dict[str, Callable[[], float]], repeats: int,
               report: Callable[[str], None] = print) -> dict[str, list[float]]:
    """Rates per system, one per round: rounds r = 1..repeats each run every system in order."""
    rates: dict[str, list[float]] = {name: [] for name in systems}
    for r in range(repeats):
        for name, measure in systems.items():
            rates[name].append(measure())
            if repeats > 1:
                report(f"  round {r + 1}/{repeats}: {name} {rates[name][-1]:.1f}")
    return rates


def round_ratios(rates: list[float], reference: list[float]) -> np.ndarray:
    """Per-round ratios rates[r] / reference[r]: [repeats]."""
    if len(rates) != len(reference):
        raise ValueError(f"{len(rates)} rates against {len(reference)} reference rates")
    return np.asarray(rates, float) / np.asarray(reference, float)


def spread(values: list[float] | np.ndarray, unit: str = "") -> str:
    """'<median><unit>', then '(rounds <min>-<max>)' when there are several values."""
    v = np.asarray(values, float)
    text = f"{float(np.median(v)):.2f}{unit}"
    return text if v.size == 1 else f"{text} (rounds {v.min():.2f}-{v.max():.2f})"
