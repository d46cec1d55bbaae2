"""Pictures: the multi-goal Figure 1 (trajectories; Q contours with action samples) and
``softq compare`` learning curves. Matplotlib with the Agg backend, returned as RGB arrays."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from envs.atomic_files import atomic_write  # noqa: E402
from envs.multigoal import GOALS, MultiGoalEnv  # noqa: E402

# Figure 1 (right) shows Q at these states: unimodal, convex and bimodal regions.
FIXED_STATES = np.array([[-2.0, 0.0], [0.0, 0.0], [2.5, 2.5]], dtype=np.float32)  # [3, 2]


def save_figure(fig: plt.Figure, path: Path, **kwargs: Any) -> None:
    """``fig.savefig(path)`` through atomic_write: a crash mid-write leaves the previous figure
    whole. The format is the suffix's (savefig's own rule for a path)."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    atomic_write(Path(path), lambda f: fig.savefig(f, format=fmt, **kwargs))


def figure_to_rgb(fig: plt.Figure) -> np.ndarray:
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return rgba[..., :3].copy()


def multigoal_trajectories(trajectories: list[np.ndarray], env: MultiGoalEnv | None = None
                           ) -> plt.Figure:
    """Figure 1, left: evaluation paths over the reward's level curves, goals in red."""
    env = env or MultiGoalEnv()
    fig, ax = plt.subplots(figsize=(5, 5), dpi=80)
    grid = np.linspace(-env.bound, env.bound, 121)
    xx, yy = np.meshgrid(grid, grid)
    pos = np.stack([xx, yy], axis=-1)  # [121, 121, 2]
    reward = env.reward_at(pos, np.zeros_like(pos))
    ax.contour(xx, yy, reward, levels=12, cmap="viridis", linewidths=0.6)
    for path in trajectories:
        ax.plot(path[:, 0], path[:, 1], color="tab:blue", linewidth=0.9, alpha=0.8)
    ax.scatter(GOALS[:, 0], GOALS[:, 1], color="red", s=60, zorder=3)
    ax.set_xlim(-env.bound, env.bound)
    ax.set_ylim(-env.bound, env.bound)
    ax.set_aspect("equal")
    ax.set_title("evaluation trajectories")
    fig.tight_layout()
    return fig


def multigoal_q_panels(q_values: Callable[[np.ndarray, np.ndarray], np.ndarray],
                       sample_actions: Callable[[np.ndarray, int], np.ndarray],
                       num_samples: int = 50) -> plt.Figure:
    """Figure 1, right: Q(s, .) level curves over the action square and policy samples
    (``sample_actions(obs [N, 2], n) -> [N, n, 2]``; see policy_samples)."""
    grid = np.linspace(-1, 1, 41)
    ax_, ay_ = np.meshgrid(grid, grid)
    acts = np.stack([ax_.ravel(), ay_.ravel()], axis=-1).astype(np.float32)  # [P, 2]
    n = len(FIXED_STATES)
    q = q_values(FIXED_STATES, np.repeat(acts[None], n, axis=0))  # [3, P]
    samples = sample_actions(FIXED_STATES, num_samples)  # [3, S, 2]
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 4), dpi=80)
    for i, ax in enumerate(axes):
        ax.contour(ax_, ay_, q[i].reshape(ax_.shape), levels=15, cmap="coolwarm")
        one = samples.shape[1] == 1  # a deterministic actor's action: larger, drawn past the edge
        ax.scatter(samples[i, :, 0], samples[i, :, 1], marker="*", color="tab:blue",
                   s=150 if one else 20, clip_on=not one, zorder=3)
        ax.set_xlim(-1, 1)
        ax.set_ylim(-1, 1)
        ax.set_aspect("equal")
        ax.set_title(f"s = ({FIXED_STATES[i, 0]:g}, {FIXED_STATES[i, 1]:g})")
    fig.tight_layout()
    return fig


def policy_samples(learner: Any) -> Callable[[np.ndarray, int], np.ndarray] | None:
    """What Figure 1's Q panels scatter for ``learner``: SQL's sampler draws, or a deterministic
    actor's one action per state (DDPG); None for a learner without a Q(s, a) critic."""
    if learner is None or not hasattr(learner, "q_values"):
        return None
    if hasattr(learner, "sample_actions"):
        return learner.sample_actions
    if hasattr(learner, "policy_actions"):
        return lambda obs, n: learner.policy_actions(obs)[:, None, :]  # [N, 1, act_dim]
    return None


def make_multigoal_hook(run_dir: Path, prefix: str = ""
                        ) -> Callable[[Any, dict, int], dict[str, np.ndarray]]:
    """Image hook for the driver: writes PNGs into run_dir/plots and returns RGB arrays.
    ``prefix`` starts the file names (softq eval's "eval_" keeps the training's pictures)."""
    plot_dir = Path(run_dir) / "plots"

    def hook(learner: Any, result: dict, step: int) -> dict[str, np.ndarray]:
        plot_dir.mkdir(parents=True, exist_ok=True)
        images = {}
        fig = multigoal_trajectories(result.get("trajectories", []))
        save_figure(fig, plot_dir / f"{prefix}trajectories.png")
        images["multigoal/trajectories"] = figure_to_rgb(fig)
        plt.close(fig)
        actions = policy_samples(learner)
        if actions is not None:
            fig = multigoal_q_panels(learner.q_values, actions)
            save_figure(fig, plot_dir / f"{prefix}q_values.png")
            images["multigoal/q_and_actions"] = figure_to_rgb(fig)
            plt.close(fig)
        return images

    return hook


def curves_figure(curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, int]],
                  metric: str, threshold: float | None = None,
                  seeds: dict[str, list[tuple[np.ndarray, np.ndarray]]] | None = None
                  ) -> plt.Figure:
    """``curves[label] = (steps, mean, std, num_seeds)`` -> mean +- std bands; ``threshold``
    (Figure 3's success line) is drawn as a horizontal dashed line. With ``seeds[label]`` (one
    (steps, values) per run) every run is drawn as its own line instead, as in Figure 3."""
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for i, (label, (steps, mean, std, n)) in enumerate(curves.items()):
        color = f"C{i % 10}"
        if seeds is not None:
            for j, (run_steps, values) in enumerate(seeds[label]):
                ax.plot(run_steps, values, color=color, alpha=0.8, linewidth=1.2,
                        label=f"{label} (n={n})" if j == 0 else None)
            continue
        ax.plot(steps, mean, color=color, label=f"{label} (n={n})")
        ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.25)
    ax.set_title("one line per run" if seeds is not None
                 else "mean over seeds; band: \u00b11 std (population, ddof=0)", fontsize=9)
    if threshold is not None:
        ax.axhline(threshold, color="black", linestyle="--", linewidth=1.0,
                   label=f"threshold {threshold:g}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
