"""Interleaved benchmark rounds (launch/bench/rounds.py): every system once per round, in order,
and each ratio taken within its round, so a slow round moves neither the median nor the ratio."""

from __future__ import annotations

import numpy as np
import pytest

from launch.bench.rounds import round_ratios, run_rounds, spread


def test_rounds_interleave_the_systems_and_keep_each_rounds_figures():
    calls: list[str] = []
    # the machine runs at half speed in round 2: both systems see it
    speed = iter([1.0, 1.0, 0.5, 0.5, 1.0, 1.0])

    def system(name: str, rate: float):
        def measure() -> float:
            calls.append(name)
            return rate * next(speed)
        return measure

    lines: list[str] = []
    rates = run_rounds({"ours": system("ours", 300.0), "ref": system("ref", 200.0)}, 3,
                       report=lines.append)
    assert calls == ["ours", "ref"] * 3
    assert rates == {"ours": [300.0, 150.0, 300.0], "ref": [200.0, 100.0, 200.0]}
    assert lines[2] == "  round 2/3: ours 150.0"
    # the slow round slows both systems, so every round's ratio is still 1.5
    np.testing.assert_allclose(round_ratios(rates["ours"], rates["ref"]), [1.5, 1.5, 1.5])
    assert (spread(round_ratios([300.0, 100.0, 280.0], [200.0, 100.0, 200.0]), "x")
            == "1.40x (rounds 1.00-1.50)")
    assert spread([1.234], "x") == "1.23x"


def test_one_round_reports_nothing_per_round_and_ratios_need_matching_rounds():
    lines: list[str] = []
    assert run_rounds({"a": lambda: 2.0}, 1, report=lines.append) == {"a": [2.0]}
    assert lines == []
    with pytest.raises(ValueError, match="2 rates against 1 reference"):
        round_ratios([1.0, 2.0], [1.0])
