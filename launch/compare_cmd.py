"""``softq compare RUN_DIR...``: mean +- std learning curves over seeds from TensorBoard events.

Runs are grouped by preset (from each run's config.yaml): every group becomes one curve, its
seeds aligned on the union of logged steps by linear interpolation over their common range (no
smoothing). The std is the population std over seeds (numpy's ddof=0; the sample std, ddof=1, is
sqrt(n / (n - 1)) times larger: 1.22x with 3 seeds, 1.07x with 8). The "final" mean and std are at
the last step every run logged: a run that goes on past it is named on stderr, and ``--report``
lists each run's range. A run listed twice (``good ./good/``, overlapping globs) counts once, with
a warning.

Runs whose env labels behaviour (``eval/mode_share/<label>``, ``eval/modes_covered``, written by
the driver) also get a mode report per group: the share of seeds that found ``--mode`` (majority
of the final evaluation's episodes end in it; "ever": at any evaluation), and the modes covered.

``--above X`` / ``--below X`` add Figure 3's threshold (Haarnoja et al. 2017): per group, the share
of seeds whose ``--metric`` curve reached >= X (<= X) at some logged step and each seed's first
such env step (None if never), printed, drawn as a dashed line, and in ``--report`` under
"threshold". Meant for the driver's best-so-far training curves, ``train/max_com_x`` (swimmer,
``--above 2.0``, the finish line) and ``train/min_distance_to_target`` (maze, ``--below
3.354``, ``envs.ant_tasks.MAZE_UPPER_PASSAGE_MIN_DISTANCE``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from envs.atomic_files import atomic_write_text
from launch.arg_types import finite_float
from launch.config import ConfigError, config_differences, read_config


def add_compare_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="plot mean +- std over seeds from TensorBoard events "
                       "(population std, ddof=0)")
    p.add_argument("run_dirs", nargs="+", help="run directories of softq train")
    p.add_argument("--metric", default="eval/return_mean",
                   help="a TensorBoard scalar tag (default eval/return_mean)")
    p.add_argument("--out", type=figure_path, default="compare.png",
                   help="the figure; its suffix picks the format (none: .png)")
    p.add_argument("--label", choices=["preset", "algo", "dir"], default="preset",
                   help="how runs are grouped into curves")
    p.add_argument("--mode", help="the better mode's label (e.g. 'forward' for the swimmer, "
                   "'target' for the maze): report the share of seeds that found it")
    p.add_argument("--report", help="also write the per-group numbers to this JSON file")
    p.add_argument("--per-seed", action="store_true",
                   help="draw every run as its own line (Figure 3) instead of mean +- std")
    threshold = p.add_mutually_exclusive_group()
    threshold.add_argument("--above", type=finite_float, metavar="X",
                           help="report the share of seeds whose --metric reached >= X "
                           "(and the first step), draw X as a dashed line")
    threshold.add_argument("--below", type=finite_float, metavar="X",
                           help="as --above, for <= X (e.g. a distance to the goal)")
    p.set_defaults(func=run_compare)


THRESHOLD_FLAGS = ("--above", "--below")


def attach_threshold_values(argv: list[str]) -> list[str]:
    """``compare ... --below -1e-3`` as ``--below=-1e-3``: argparse takes a value that starts with
    '-' for an option unless it looks like ``-2`` or ``-0.5``, so ``-1e-3`` or ``-inf`` would be
    "expected one argument" instead of a threshold (or finite_float's message)."""
    if argv[:1] != ["compare"]:
        return list(argv)
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in THRESHOLD_FLAGS and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            try:
                float(argv[i + 1])
            except ValueError:
                pass
            else:
                out.append(f"{argv[i]}={argv[i + 1]}")
                i += 2
                continue
        out.append(argv[i])
        i += 1
    return out


def figure_path(text: str) -> str:
    """``--out`` as the file matplotlib will write: a format it supports, named by the suffix
    (none: its default, appended as ``savefig`` does), checked before any run is read."""
    import os

    from matplotlib.backend_bases import FigureCanvasBase

    if not text.strip() or text.endswith(("/", os.sep)) or Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is no figure file name (a directory or "
                                         "empty); name the file, e.g. compare.png")
    suffix = os.path.splitext(text)[1][1:]
    if not suffix:
        return text.rstrip(".") + "." + FigureCanvasBase.get_default_filetype()
    formats = FigureCanvasBase.get_supported_filetypes()
    if suffix.lower() not in formats:
        raise argparse.ArgumentTypeError(f"cannot write a {suffix!r} figure; use one of "
                                         f"{', '.join('.' + f for f in sorted(formats))}")
    return text


def _accumulator(run_dir: Path):  # noqa: ANN202 - tensorboard's EventAccumulator
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb_dir = run_dir / "tb"
    if not tb_dir.is_dir():
        raise ConfigError(f"{run_dir} has no TensorBoard events (tb/)")
    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return acc


def read_modes(run_dir: Path) -> dict[str, dict[str, float]]:
    """Per evaluation step (those of eval/return_mean): label -> share (0 where not logged), plus
    ``_covered`` -> eval/modes_covered. {} when the run logged no mode shares."""
    acc = _accumulator(run_dir)
    tags = acc.Tags().get("scalars", [])
    prefix = "eval/mode_share/"
    labels = [t[len(prefix):] for t in tags if t.startswith(prefix)]
    if not labels or "eval/return_mean" not in tags:
        return {}
    steps = sorted({e.step for e in acc.Scalars("eval/return_mean")})
    table: dict[int, dict[str, float]] = {s: {lab: 0.0 for lab in labels} for s in steps}
    for lab in labels:
        for e in acc.Scalars(prefix + lab):
            if e.step in table:
                table[e.step][lab] = float(e.value)
    if "eval/modes_covered" in tags:
        for e in acc.Scalars("eval/modes_covered"):
            if e.step in table:
                table[e.step]["_covered"] = float(e.value)
    return {str(s): table[s] for s in steps}


def read_metric(run_dir: Path, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """``read_scalars``, except that a mode share is 0 at every evaluation that did not log it
    (the driver logs a label from the first evaluation an episode ended in it, and 0 at later
    ones without it; runs of earlier revisions logged only the labels some episode ended in)."""
    prefix = "eval/mode_share/"
    if not metric.startswith(prefix):
        return read_scalars(run_dir, metric)
    table = read_modes(run_dir)
    if not table:
        raise ConfigError(f"{run_dir} logged no mode shares ({prefix}*)")
    steps = np.array([int(s) for s in table], dtype=np.float64)
    values = np.array([row.get(metric[len(prefix):], 0.0) for row in table.values()])
    order = np.argsort(steps, kind="stable")
    return steps[order], values[order]


def mode_report(runs: list[dict[str, dict[str, float]]], mode: str | None) -> dict:
    """Group summary of ``read_modes`` results (one per seed). A seed *found* ``mode`` when more
    than half of its final evaluation's episodes ended in it; *ever* when that held at any
    evaluation (the paper's Figure 3 counts a run once it crossed the threshold)."""
    runs = [r for r in runs if r]
    if not runs:
        return {}
    finals = [r[max(r, key=int)] for r in runs]
    out: dict = {"seeds": len(runs)}
    covered = [f.get("_covered", float(sum(v > 0 for k, v in f.items()
                                            if k not in ("none", "_covered")))) for f in finals]
    out["modes_covered_mean"] = float(np.mean(covered))
    out["modes_covered_std"] = float(np.std(covered))
    union = {k for f in finals for k, v in f.items() if v > 0 and k not in ("none", "_covered")}
    out["modes_union"] = sorted(union)
    out["final_shares_mean"] = {k: float(np.mean([f.get(k, 0.0) for f in finals]))
                                for k in sorted({k for f in finals for k in f}) if k != "_covered"}
    if mode is not None:
        found = [f.get(mode, 0.0) > 0.5 for f in finals]
        ever = [any(ev.get(mode, 0.0) > 0.5 for ev in r.values()) for r in runs]
        out["mode"] = mode
        out["found_share"] = float(np.mean(found))
        out["found_ever_share"] = float(np.mean(ever))
    return out


def threshold_report(series: list[tuple[np.ndarray, np.ndarray]], value: float, above: bool,
                     runs: list[str] | None = None) -> dict:
    """Which seeds' curves reached ``value`` (>= if ``above``, else <=) at some logged step, and
    the first env step each did (None if never); Figure 3 counts a run once it crossed.
    TensorBoard stores float32, so the comparison is at that precision (a value logged as
    exactly the threshold reached it)."""
    level = float(np.float32(value))
    first: list[int | None] = []
    for steps, values in series:
        hit = values >= level if above else values <= level
        first.append(int(steps[int(np.argmax(hit))]) if hit.any() else None)
    reached = sum(f is not None for f in first)
    out: dict = {"value": float(value), "direction": ">=" if above else "<=",
                 "seeds": len(series), "reached": reached,
                 "share": reached / len(series) if series else 0.0, "first_steps": first}
    if runs is not None:
        out["runs"] = list(runs)
    return out


def read_scalars(run_dir: Path, metric: str) -> tuple[np.ndarray, np.ndarray]:
    acc = _accumulator(run_dir)
    if metric not in acc.Tags().get("scalars", []):
        known = ", ".join(sorted(acc.Tags().get("scalars", [])))
        raise ConfigError(f"metric {metric!r} not logged in {run_dir}; logged: {known}")
    events = acc.Scalars(metric)
    if not events:  # e.g. every event was purged by a resume from before they were logged
        raise ConfigError(f"metric {metric!r} has no events left in {run_dir}")
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


def run_ranges(names: list[str], series: list[tuple[np.ndarray, np.ndarray]],
               final_step: float | None) -> list[dict]:
    """Per run: its first and last logged step, its last value, and the value that entered the
    group's final mean (interpolated at ``final_step``; None when no step is common)."""
    out = []
    for name, (steps, values) in zip(names, series):
        at_final = None if final_step is None else float(np.interp(final_step, steps, values))
        out.append({"run": name, "first_step": float(steps[0]), "last_step": float(steps[-1]),
                    "last_value": float(values[-1]), "value_at_final_step": at_final})
    return out


def _warn_if_runs_go_on(label: str, final_step: float, runs: list[dict]) -> None:
    """The group's curve ends where its shortest run ends: name the runs cut off there."""
    longer = [r for r in runs if r["last_step"] > final_step]
    if longer:
        cut = ", ".join(f"{r['run']} (to step {r['last_step']:g}, last value "
                        f"{r['last_value']:.2f})" for r in longer)
        print(f"warning: '{label}': mean and std end at step {final_step:g}, where its shortest "
              f"run ends; cut off there: {cut} (--per-seed draws every step; --report lists "
              "each run's range)", file=sys.stderr)


def _parent_made(path: str) -> Path:
    """``path`` with its directory created (``--out figures/new/x.png`` just works)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _warn_if_settings_differ(label: str, first: tuple[str, Any], run: tuple[str, Any]) -> None:
    """Seeds of one preset are averaged as one curve: say so when a run of the group was
    trained with other settings (a --set) than the group's first, beyond its seed, budget,
    bookkeeping and runtime."""
    from launch.run_checks import RESUME_MAY_CHANGE

    differ = config_differences(first[1], run[1], (*RESUME_MAY_CHANGE, "run.seed"))
    if differ:
        print(f"warning: '{label}' averages runs trained with different settings: {run[0]} vs "
              f"{first[0]}: {'; '.join(differ)} (--label dir draws one curve per run)",
              file=sys.stderr)


def _warn_if_seed_repeats(label: str, earlier: list[tuple[str, Any]], run: tuple[str, Any]) -> None:
    """A group's std is over seeds: say so when a run repeats the seed and settings of an
    earlier run of the group (the same preset trained twice without --seed), whose curve is
    then the same experiment again, not another seed."""
    from launch.run_checks import RESUME_MAY_CHANGE

    cfg = run[1]
    for name, other in earlier:
        if other.run.seed == cfg.run.seed and not config_differences(other, cfg,
                                                                       RESUME_MAY_CHANGE):
            print(f"warning: '{label}' counts {run[0]} and {name} as two seeds, but both were "
                  f"trained with run.seed {cfg.run.seed} and the same settings (train with "
                  f"--seed N for another seed; --label dir draws one curve per run)",
                  file=sys.stderr)
            return


def _distinct_runs(run_dirs: list[str]) -> list[str]:
    """``run_dirs`` with each run once (first listing kept, in order): ``good ./good/`` or
    overlapping globs would otherwise count one run as two seeds. Says what it dropped."""
    first: dict[Path, str] = {}
    dropped: list[str] = []
    for d in run_dirs:
        key = Path(d).resolve()
        if key in first:
            dropped.append(d if d == first[key] else f"{d} (= {first[key]})")
        else:
            first[key] = d
    if dropped:
        print(f"warning: counting each run once; dropped repeated {', '.join(dropped)}",
              file=sys.stderr)
    return list(first.values())


def _dir_labels(run_dirs: list[str]) -> dict[str, str]:
    """``--label dir``: each run's directory name, or its path as given where two runs share a
    name (``old/x-s0`` and ``new/x-s0`` are two curves, not two seeds of one)."""
    names = [Path(d).name for d in run_dirs]
    return {d: name if names.count(name) == 1 else d for d, name in zip(run_dirs, names)}


def run_compare(args: argparse.Namespace) -> int:
    import matplotlib.pyplot as plt

    from launch.plots import curves_figure, save_figure

    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    names: dict[str, list[str]] = defaultdict(list)
    modes: dict[str, list[dict]] = defaultdict(list)
    first_cfg: dict[str, tuple[str, Any]] = {}
    configs: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    run_dirs = _distinct_runs(args.run_dirs)
    dir_labels = _dir_labels(run_dirs)
    for d in run_dirs:
        run_dir = Path(d)
        cfg = read_config(run_dir / "config.yaml", builds_env=False)
        label = {"preset": cfg.preset or cfg.algo, "algo": cfg.algo, "dir": dir_labels[d]}[
            args.label]
        if args.label == "preset":
            _warn_if_settings_differ(label, first_cfg.setdefault(label, (str(run_dir), cfg)),
                                     (str(run_dir), cfg))
            _warn_if_seed_repeats(label, configs[label], (str(run_dir), cfg))
            configs[label].append((str(run_dir), cfg))
        groups[label].append(read_metric(run_dir, args.metric))
        names[label].append(str(run_dir))
        modes[label].append(read_modes(run_dir))
    curves = {}
    per_run: dict[str, list[dict]] = {}
    for label, series in groups.items():
        steps, mean, std = aggregate(series)
        curves[label] = (steps, mean, std, len(series))
        per_run[label] = run_ranges(names[label], series, steps[-1] if len(steps) else None)
        if len(mean):
            print(f"{label}: {len(series)} run(s), final {args.metric} = {mean[-1]:.2f} +- "
                  f"{std[-1]:.2f} at step {steps[-1]:g}")
            _warn_if_runs_go_on(label, steps[-1], per_run[label])
            continue
        # aggregate() averages only over the steps every run covers: say why there are none
        ranges = "; ".join(f"{name}: steps {st[0]:g}..{st[-1]:g}, final {v[-1]:.2f}"
                           for name, (st, v) in zip(names[label], series))
        print(f"{label}: {len(series)} run(s), final {args.metric} = n/a: no step is common to "
              f"all runs ({ranges})")
    reports = {label: mode_report(runs, args.mode) for label, runs in modes.items()}
    for label, rep in reports.items():
        if not rep:
            continue
        line = (f"{label}: modes covered per seed (final eval) {rep['modes_covered_mean']:.2f} "
                f"+- {rep['modes_covered_std']:.2f}; over all seeds {rep['modes_union']}")
        if "found_share" in rep:
            line += (f"; found {rep['mode']!r}: {rep['found_share']:.0%} of seeds at the end, "
                     f"{rep['found_ever_share']:.0%} at some evaluation")
        print(line)
    above = getattr(args, "above", None)
    below = getattr(args, "below", None)
    threshold = above if above is not None else below
    crossings: dict[str, dict] = {}
    if threshold is not None:
        for label, series in groups.items():
            rep = threshold_report(series, threshold, above is not None, names[label])
            crossings[label] = rep
            firsts = ", ".join("never" if f is None else str(f) for f in rep["first_steps"])
            print(f"{label}: {rep['reached']}/{rep['seeds']} seeds reached {args.metric} "
                  f"{rep['direction']} {threshold:g} (first at steps {firsts})")
    if args.report:
        summary = {label: {"seeds": n, "final_mean": float(m[-1]) if len(m) else None,
                           "final_std": float(sd[-1]) if len(sd) else None,
                           "final_step": float(st[-1]) if len(st) else None,
                           "std_ddof": 0,  # final_std, modes_covered_std: population std
                           "runs": per_run[label], "modes": reports[label]}
                   for label, (st, m, sd, n) in curves.items()}
        for label, rep in crossings.items():
            summary[label]["threshold"] = rep
        atomic_write_text(_parent_made(args.report), json.dumps(summary, indent=2))
        print(f"wrote {args.report}")
    fig = curves_figure(curves, args.metric, threshold=threshold,
                        seeds=groups if getattr(args, "per_seed", False) else None)
    save_figure(fig, _parent_made(args.out))  # figure_path named the format (and added .png)
    plt.close(fig)
    print(f"wrote {args.out}")
    return 0
