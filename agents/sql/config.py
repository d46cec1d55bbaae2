"""Hyperparameters of soft Q-learning; defaults are the paper's (Haarnoja et al. 2017, App. D.1).

Each field's docstring is its ``--help`` text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from agents.sql.svgd import BANDWIDTH_RULES

VALUE_TARGETS = ("importance", "policy_max")


@dataclass
class SQLConfig:
    # The soft target of eq. 11 bootstraps one step: an n-step return would leave out the entropy
    # bonus of the n - 1 states in between (the sampler's entropy has no closed form).
    ONE_STEP_TARGETS: ClassVar[bool] = True

    gamma: float = 0.99
    """Discount; the collector folds it into n-step returns (the learner reads 'discount')."""
    alpha: float = 0.1
    """Entropy coefficient of pi ~ exp(Q/alpha) (App. D.1: 0.1; multi-goal 10); anneal start."""
    alpha_final: float | None = None
    """Final alpha of a log-linear anneal (App. D.1 fine-tuning: 0.001); None: constant alpha."""
    alpha_anneal_updates: int = 200_000
    """Learner updates over which alpha goes log-linearly from alpha to alpha_final."""
    hidden_sizes: list[int] = field(default_factory=lambda: [200, 200])
    """Hidden layer widths of the soft Q network and of the sampling network (ReLU)."""
    q_lr: float = 1e-3
    """Adam learning rate of the soft Q network."""
    policy_lr: float = 1e-4
    """Adam learning rate of the sampling network f(xi; s)."""
    kernel_particles: int = 32
    """SVGD particles per state (App. C.1/D.1: K = M = 32; the multi-goal task uses 100)."""
    kernel_update_ratio: float | None = None
    """None: K = M = kernel_particles, the same particles score and move (paper), each particle's
    own term left out of its direction (svgd.py). A float in (0, 1):
    reference-code split, round(ratio * kernel_particles) particles move, the rest only score."""
    kernel_bandwidth: str = "paper"
    """RBF bandwidth rule: 'paper' h = med / (2 log(M + 1)) (App. D.1 as written) or 'reference'
    h = med / log(M), the authors' released code and Liu & Wang (2016): ~2x wider (svgd.py)."""
    value_particles: int = 50
    """K_V: action samples per next state for the target value (uniform ones for eq. 10)."""
    value_target: str = "importance"
    """V(s') in the Q target: 'importance' is eq. 10 with K_V uniform actions (paper);
    'policy_max' is max_k Q_target(s', f(xi_k; s')) over K_V sampler draws, the hard target
    (q_target_type="max") of the co-author's U-maze fine-tuning scripts, with no entropy term."""
    target_update_interval: int = 1000
    """Learner updates between hard copies of the Q network into the target network (tau = 1)."""
    exploration_noise: str = "none"
    """Extra exploration noise added by the acting policy: 'none' or 'ou' (Ornstein-Uhlenbeck)."""
    ou_theta: float = 0.15
    """OU mean-reversion rate theta (App. D.1)."""
    ou_sigma: float = 0.3
    """OU noise scale sigma (App. D.1)."""
    fixed_xi_start: int | None = None
    """Fine-tuning (App. D.1): act with xi drawn from a fixed set of this many samples, shrunk
    linearly to 1 over ``fixed_xi_anneal_steps`` env steps; None: fresh xi ~ N(0, I) each step."""
    fixed_xi_anneal_steps: int = 200_000
    """Environment steps (all workers together) over which the fixed xi set shrinks to 1."""
    compile: bool = False
    """torch.compile the loss function: ~1 min to compile on CPU for ~10% faster updates."""
    cuda_graphs: bool = False
    """Capture the whole update in a CUDA graph (CUDA only; ignored with a warning on CPU)."""

    def __post_init__(self) -> None:
        if self.alpha <= 0:
            raise ValueError(f"SQLConfig.alpha must be > 0, got {self.alpha}")
        if self.alpha_final is not None and self.alpha_final <= 0:
            raise ValueError(f"SQLConfig.alpha_final must be > 0 or None, got {self.alpha_final}")
        if self.alpha_anneal_updates <= 0:
            raise ValueError("SQLConfig.alpha_anneal_updates must be positive, "
                             f"got {self.alpha_anneal_updates}")
        if not self.hidden_sizes or any(int(h) <= 0 for h in self.hidden_sizes):
            raise ValueError(f"SQLConfig.hidden_sizes must be positive widths, got "
                             f"{self.hidden_sizes}")
        if self.kernel_particles < 3:  # with 2 the median squared distance (its zero diagonal
            # included, as in the authors' code) is 0: no repulsion at all
            raise ValueError("SQLConfig.kernel_particles must be >= 3, got "
                             f"{self.kernel_particles}")
        if self.kernel_update_ratio is not None:
            r = self.kernel_update_ratio
            n_up = round(r * self.kernel_particles)
            if not 0.0 < r < 1.0 or n_up < 1 or n_up > self.kernel_particles - 1:
                raise ValueError("SQLConfig.kernel_update_ratio must be None or in (0, 1) leaving "
                                 f">= 1 moving and >= 1 scoring particle, got {r}")
        if self.kernel_bandwidth not in BANDWIDTH_RULES:
            raise ValueError(f"SQLConfig.kernel_bandwidth must be one of {BANDWIDTH_RULES}, got "
                             f"{self.kernel_bandwidth!r}")
        if self.kernel_bandwidth == "reference" and self.particle_split()[0] < 2:
            raise ValueError("SQLConfig.kernel_bandwidth='reference' divides by log(M): it needs "
                             ">= 2 scoring particles (raise kernel_particles or lower "
                             "kernel_update_ratio)")
        if self.value_particles < 1:
            raise ValueError(f"SQLConfig.value_particles must be >= 1, got {self.value_particles}")
        if self.value_target not in VALUE_TARGETS:
            raise ValueError(f"SQLConfig.value_target must be one of {VALUE_TARGETS}, got "
                             f"{self.value_target!r}")
        if self.target_update_interval < 1:
            raise ValueError("SQLConfig.target_update_interval must be >= 1, got "
                             f"{self.target_update_interval}")
        if self.exploration_noise not in ("none", "ou"):
            raise ValueError("SQLConfig.exploration_noise must be 'none' or 'ou', got "
                             f"{self.exploration_noise!r}")
        if not 0.0 < self.ou_theta < 2.0:
            raise ValueError(f"SQLConfig.ou_theta must be in (0, 2) (stationary noise with "
                             f"dt = 1), got {self.ou_theta}")
        if self.ou_sigma < 0:
            raise ValueError(f"SQLConfig.ou_sigma must be >= 0, got {self.ou_sigma}")
        if self.fixed_xi_start is not None and self.fixed_xi_start < 1:
            raise ValueError("SQLConfig.fixed_xi_start must be >= 1 or None, got "
                             f"{self.fixed_xi_start}")
        if self.fixed_xi_anneal_steps <= 0:
            raise ValueError("SQLConfig.fixed_xi_anneal_steps must be positive, got "
                             f"{self.fixed_xi_anneal_steps}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"SQLConfig.gamma must be in [0, 1], got {self.gamma}")
        for name in ("q_lr", "policy_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SQLConfig.{name} must be > 0, got {getattr(self, name)}")

    def particle_split(self) -> tuple[int, int]:
        """(M score particles, K moving particles). Same set: (P, P). Split: the first P - K draws
        score, the last K move."""
        p = self.kernel_particles
        if self.kernel_update_ratio is None:
            return p, p
        k = round(self.kernel_update_ratio * p)
        return p - k, k
