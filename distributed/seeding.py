"""Seeds of random streams derived from the run's seed, each a stream of its own."""

from __future__ import annotations

import numpy as np


def derived_seeds(*keys: int, count: int = 1) -> list[int]:
    """``count`` 32-bit seeds, a function of ``keys`` (integers >= 0; end them with a tag naming
    the use) only. Mixed through NumPy's SeedSequence: seeds such as ``run_seed + i`` would give
    related streams, and Gymnasium's reset(seed=s), NumPy's default_rng(s) and
    action_space.seed(s) are one PCG64 stream for one s."""
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(count)
    return [int(s) for s in state]
