"""Hyperparameter dataclasses of the discrete-action algorithms (one per algorithm).

Defaults follow the paper's Atari setups (Nature DQN for §6.2, standard A2C for §6.1/§6.3);
CartPole presets override a few fields. Every field's docstring is its ``--help`` text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DQN_TARGETS = ("hard", "kl", "entropy")
EXPLORATIONS = ("epsilon", "boltzmann")
ENTROPY_MODES = ("naive", "proper")
BONUSES = ("kl", "entropy")


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def _shared_checks(cfg) -> None:
    """Checks every discrete config needs: the discount, the torso, the optimizer's clipping."""
    if not 0.0 <= cfg.gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {cfg.gamma!r}")
    if not cfg.hidden_sizes or any(int(h) <= 0 for h in cfg.hidden_sizes):
        raise ValueError(f"hidden_sizes must be positive widths, got {cfg.hidden_sizes}")
    if not cfg.grad_clip >= 0:
        raise ValueError(f"grad_clip must be >= 0 (0 disables it), got {cfg.grad_clip!r}")


@dataclass
class DQNConfig:
    gamma: float = 0.99
    """Discount factor (batch's ``discount`` already holds gamma^m or 0; the learner uses it)."""
    target: str = "hard"
    """Backup: 'hard' max (eq. 81), 'kl' soft with KL penalty vs uniform (eq. 82), 'entropy' soft
    with entropy bonus (eq. 83)."""
    tau: float = 0.1
    """Temperature of the soft targets and of Boltzmann exploration (paper §6.2: 0.1)."""
    n_step: int = 1
    """n of the n-step return (the collector/replay folds it; paper: 1 and 5)."""
    lr: float = 1e-4
    """Adam learning rate."""
    adam_eps: float = 1.5e-4
    """Adam epsilon."""
    grad_clip: float = 10.0
    """Max global gradient norm (0 disables clipping)."""
    loss: str = "huber"
    """TD loss: 'huber' (Nature DQN) or 'mse' (eq. 44)."""
    target_update_interval: int = 2500
    """Learner updates between hard copies of the online net into the target net."""
    double_q: bool = False
    """Double DQN action selection (online argmax, target evaluation); 'hard' target only."""
    exploration: str = "epsilon"
    """Behaviour policy: 'epsilon' greedy (as in the paper) or 'boltzmann' pi ∝ exp(Q/tau)."""
    eps_start: float = 1.0
    """Initial epsilon of the linear schedule."""
    eps_end: float = 0.1
    """Final epsilon of the linear schedule."""
    eps_decay_steps: int = 1_000_000
    """Env steps (as given to the policy's ``set_env_steps``) of the linear epsilon decay."""
    eval_epsilon: float = 0.0
    """Epsilon when acting with explore=False (Nature DQN evaluation used 0.05)."""
    per_worker_epsilon: bool = False
    """Ape-X exploration: worker i of N uses the fixed eps_i = apex_epsilon^(1 + apex_alpha*i/(N-1))
    instead of the schedule."""
    apex_epsilon: float = 0.4
    """Base epsilon of the Ape-X per-worker rates."""
    apex_alpha: float = 7.0
    """Exponent spread of the Ape-X per-worker rates."""
    hidden_sizes: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden layer widths of the MLP torso (vector observations; images use the Nature conv)."""

    def __post_init__(self) -> None:
        _shared_checks(self)
        _positive("adam_eps", self.adam_eps)
        _choice("target", self.target, DQN_TARGETS)
        _choice("exploration", self.exploration, EXPLORATIONS)
        _choice("loss", self.loss, ("huber", "mse"))
        _positive("tau", self.tau)
        _positive("lr", self.lr)
        if self.n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {self.n_step}")
        if self.target_update_interval < 1:
            raise ValueError(f"target_update_interval must be >= 1, got "
                             f"{self.target_update_interval}")
        if self.eps_decay_steps < 0:
            raise ValueError(f"eps_decay_steps must be >= 0 (0: eps_end from the start), got "
                             f"{self.eps_decay_steps}")
        if self.double_q and self.target != "hard":
            raise ValueError("double_q applies to the 'hard' target only "
                             f"(target={self.target!r})")
        for name in ("eps_start", "eps_end", "eval_epsilon", "apex_epsilon"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")


@dataclass
class OnPolicyConfig:
    """What the synchronous A2C family shares (standard A2C settings)."""

    gamma: float = 0.99
    """Discount factor."""
    n_steps: int = 5
    """Rollout length T between updates (the runtime steps every env T times, then updates; the
    n of the n-step returns and of the soft Q target, eq. 46)."""
    lr: float = 7e-4
    """RMSProp learning rate (standard A2C's value, kept constant). The optimizer is PyTorch's
    RMSprop: OpenAI baselines' A2C used TensorFlow's, whose epsilon sits inside the square root
    (a floor of sqrt(1e-5) ~ 3e-3 under the denominator) and whose squared-gradient average
    starts at 1, and decayed lr linearly to 0. Per-parameter steps here are larger; A2C and
    soft-Q A2C share the optimizer, so Figure 3's comparison is like for like."""
    rms_alpha: float = 0.99
    """RMSProp smoothing constant."""
    rms_eps: float = 1e-5
    """RMSProp epsilon."""
    grad_clip: float = 0.5
    """Max global gradient norm (0 disables clipping)."""
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden layer widths of the MLP torso (vector observations; images use the Nature conv)."""

    def __post_init__(self) -> None:
        _shared_checks(self)
        _positive("lr", self.lr)
        _positive("rms_eps", self.rms_eps)
        if not 0.0 <= self.rms_alpha < 1.0:
            raise ValueError(f"rms_alpha must be in [0, 1), got {self.rms_alpha!r}")
        if self.n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {self.n_steps}")


@dataclass
class A2CConfig(OnPolicyConfig):
    value_coef: float = 0.5
    """c, the weight of the value loss (eq. 86)."""
    entropy_mode: str = "naive"
    """'naive' one-step KL bonus (eq. 79) or 'proper' KL inside the returns (eq. 80)."""
    tau: float = 0.01
    """Temperature of the KL penalty against the uniform policy (paper: 0.01)."""
    bonus: str = "kl"
    """What tau weighs in the returns: 'kl' the penalty -tau KL[pi || uniform] (eqs. 79/80), or
    'entropy' the bonus +tau H(pi) (Fig. 1's EntRL). They differ by tau log|A| per step, which
    only 'proper' sees (it favours shorter episodes under 'kl')."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _choice("entropy_mode", self.entropy_mode, ENTROPY_MODES)
        _choice("bonus", self.bonus, BONUSES)
        if self.tau < 0:
            raise ValueError(f"tau must be >= 0, got {self.tau}")


@dataclass
class SoftQA2CConfig(OnPolicyConfig):
    tau: float = 0.01
    """Temperature: Q = V + tau log(pi / pi_bar) (paper: 0.01)."""
    bonus: str = "kl"
    """Reference pi_bar: 'kl' uniform (eq. 57, returns penalised by tau KL[pi || uniform]) or
    'entropy' pi_bar = 1, i.e. Q = V + tau log pi as §6.3 writes it (returns get +tau H(pi))."""
    value_grad_scale: float = 0.5
    """c: gradient into the value stream is scaled by c (§6.3: 0.5)."""
    advantage_grad_scale: float | None = None
    """Gradient scale of the advantage stream tau*log pi; None means 1/tau (§6.3)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive("tau", self.tau)
        _choice("bonus", self.bonus, BONUSES)

    @property
    def adv_scale(self) -> float:
        return 1.0 / self.tau if self.advantage_grad_scale is None else self.advantage_grad_scale
