"""``softq compare RUN_DIR...``: mean +- std learning curves over seeds from TensorBoard events.

Runs are grouped by preset (from each run's config.yaml): every group becomes one curve, its
seeds aligned on the union of logged steps by linear interpolation over their common range.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from launch.config import ConfigError, read_config


def add_compare_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="plot mean +- std over seeds from TensorBoard events")
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--metric", default="eval/return_mean")
    p.add_argument("--out", default="compare.png")
    p.add_argument("--label", choices=["preset", "algo", "dir"], default="preset",
                   help="how runs are grouped into curves")
    p.set_defaults(func=run_compare)


def read_scalars(run_dir: Path, metric: str) -> tuple[np.ndarray, np.ndarray]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb_dir = run_dir / "tb"
    if not tb_dir.is_dir():
        raise ConfigError(f"{run_dir} has no TensorBoard events (tb/)")
    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    acc.Reload()
    if metric not in acc.Tags().get("scalars", []):
        known = ", ".join(sorted(acc.Tags().get("scalars", [])))
        raise ConfigError(f"metric {metric!r} not logged in {run_dir}; logged: {known}")
    events = acc.Scalars(metric)
    steps = np.array([e.step for e in events], dtype=np.float64)
    values = np.array([e.value for e in events], dtype=np.float64)
    order = np.argsort(steps, kind="stable")
    return steps[order], values[order]


def aggregate(series: list[tuple[np.ndarray, np.ndarray]]
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Interpolate every seed onto the union of steps within the common range -> mean, std."""
    lo = max(s[0] for s, _ in series)
    hi = min(s[-1] for s, _ in series)
    grid = np.unique(np.concatenate([s for s, _ in series]))
    grid = grid[(grid >= lo) & (grid <= hi)]
    stacked = np.stack([np.interp(grid, s, v) for s, v in series])  # [seeds, G]
    return grid, stacked.mean(axis=0), stacked.std(axis=0)


def run_compare(args: argparse.Namespace) -> int:
    import matplotlib.pyplot as plt

    from launch.plots import curves_figure

    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for d in args.run_dirs:
        run_dir = Path(d)
        cfg = read_config(run_dir / "config.yaml")
        label = {"preset": cfg.preset or cfg.algo, "algo": cfg.algo, "dir": run_dir.name}[
            args.label]
        groups[label].append(read_scalars(run_dir, args.metric))
    curves = {}
    for label, series in groups.items():
        steps, mean, std = aggregate(series)
        curves[label] = (steps, mean, std, len(series))
        final = f"{mean[-1]:.2f} +- {std[-1]:.2f}" if len(mean) else "n/a"
        print(f"{label}: {len(series)} run(s), final {args.metric} = {final}")
    fig = curves_figure(curves, args.metric)
    fig.savefig(args.out)
    plt.close(fig)
    print(f"wrote {args.out}")
    return 0
