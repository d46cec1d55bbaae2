"""Maximum entropy inverse RL on deterministic graph MDPs (Ziebart et al. 2008).

Pure NumPy/SciPy: the road graph arrives as arrays (``GraphMDP(n_states, src, dst)``) and per-action
feature matrices; nothing here imports ``envs``, ``distributed`` or Ray.
"""

from agents.irl.maxent import (
    Backward,
    GraphMDP,
    Visitation,
    action_log_probs,
    backward_pass,
    forward_pass,
    visitation,
)

__all__ = [
    "Backward",
    "GraphMDP",
    "Visitation",
    "action_log_probs",
    "backward_pass",
    "forward_pass",
    "visitation",
]
