"""``softq reproduce``: train every run of a paper experiment (launch/experiments.py), a few at a
time, then draw its figures with ``softq compare``.

Each run is its own ``softq train`` process writing ``ROOT/<preset>-s<seed>/`` and
``ROOT/logs/<preset>-s<seed>.log``. Running the command again picks up where it stopped: a run
that reached its step budget is skipped, one with a checkpoint (e.g. interrupted) continues with
``--resume``, one that died before its first checkpoint is moved aside (kept, as
``ROOT/.incomplete/<run>-<time>``) and started again. A run whose pretraining run failed is skipped.
A later call may raise the step budget (``--set run.total_env_steps=N``): finished runs then
continue. Any other setting must match the runs already there, or nothing starts.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from distributed.checkpoint import CHECKPOINT_NAME
from launch.arg_types import int_at_least
from launch.config import Config, ConfigError, config_differences, load_config, read_config
from launch.experiments import (
    ATARI_FIGURES,
    ATARI_GAMES,
    EXPERIMENTS,
    Plan,
    PlannedRun,
    build_plan,
    parse_seeds,
)
from launch.run_dir import run_dir_in_use

EXTENDABLE_KEYS = ("run.total_env_steps",)  # what a later call may change in an existing run
POLL_S = 0.5
HEARTBEAT_S = 60.0  # how often the runs in progress are listed with their step counts
# softq train's plain progress line: "[12000/30000 steps] ret=5.9 sps=112 eval=5.0"
PROGRESS_LINE = re.compile(rb"\[(\d+)/(\d+) steps\](?:[^\n]*? sps=(\d+))?")
RATE_LINES = 5  # progress lines whose steps/s are averaged for the time left


def add_reproduce_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reproduce", help="run a paper experiment's runs and draw its figures")
    p.add_argument("experiments", nargs="+", metavar="EXPERIMENT",
                   help=f"{', '.join([*EXPERIMENTS, *ATARI_FIGURES])}; all: the first four")
    p.add_argument("--games", help="the Atari figures' games, comma-separated (default: "
                   f"{','.join(ATARI_GAMES)})")
    p.add_argument("--quick", action="store_true", help="the -quick presets (minutes per run)")
    p.add_argument("--seeds", default="0,1,2", help="e.g. 0,1,2 or 0-9 (default 0,1,2)")
    p.add_argument("--out", default="runs/reproduce",
                   help="root directory of the runs (default runs/reproduce)")
    p.add_argument("--jobs", type=int_at_least(1), default=1,
                   help="runs at the same time (default 1)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="SECTION.KEY=VALUE", help="override a config value in every run")
    p.add_argument("--set-for", nargs=2, action="append", default=[],
                   metavar=("ALGO", "SECTION.KEY=VALUE"),
                   help="override a config value in the runs of one algorithm (e.g. sql)")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.set_defaults(func=run_reproduce)


@dataclass
class RunState:
    run: PlannedRun
    status: str = "pending"  # pending | running | done | failed | skipped
    seconds: float = 0.0


def overrides_by_run(plan: Plan, common: list[str], per_algo: list[list[str]]
                     ) -> dict[str, list[str]]:
    """Run name -> its ``--set`` values: ``common`` for all, ``[algo, value]`` pairs for the
    runs of that algorithm (an algorithm-specific key would be unknown to the others)."""
    algos = {run.name: load_config(run.preset).algo for run in plan.runs}
    for algo, _ in per_algo:
        if algo not in algos.values():
            raise ConfigError(f"--set-for {algo}: no run of this plan trains {algo!r} "
                              f"(here: {', '.join(sorted(set(algos.values())))})")
    return {name: [*common, *(v for a, v in per_algo if a == algo)]
            for name, algo in algos.items()}


def planned_config(run: PlannedRun, overrides: list[str]) -> Config:
    """The config ``softq train`` resolves for ``run``: preset, ``--set`` values, seed."""
    try:
        return load_config(run.preset, [*overrides, f"run.seed={run.seed}"])
    except ConfigError as exc:
        hint = ("; --set-for ALGO KEY=VALUE sets a key only one algorithm has"
                if "unknown config key" in str(exc) else "")
        raise ConfigError(f"{run.name}: {exc}{hint}") from None


def check_existing_run(run_dir: Path, wanted: Config) -> None:
    """A resumable run from an earlier call must be the run this call asks for: the same
    settings, except those in EXTENDABLE_KEYS (raising the budget continues a finished run)."""
    if not (run_dir / CHECKPOINT_NAME).exists():
        return  # nothing to resume: it starts afresh (see _set_aside_incomplete)
    differ = config_differences(read_config(run_dir / "config.yaml"), wanted, EXTENDABLE_KEYS)
    if differ:
        raise ConfigError(f"{run_dir} was started with other settings than this call's: "
                          f"{'; '.join(differ)}. Repeat that call's --set values, choose "
                          f"another --out, or move the run away")


def train_command(run: PlannedRun, root: Path, overrides: list[str],
                  total_env_steps: int | None = None) -> list[str]:
    """The ``softq train`` command line that starts or continues ``run``; a resumed run
    continues to ``total_env_steps`` when that differs from its own budget."""
    run_dir = root / run.name
    if (run_dir / CHECKPOINT_NAME).exists():
        cmd = ["train", "--resume", str(run_dir)]  # its config.yaml keeps the overrides
        own_budget = read_config(run_dir / "config.yaml").run.total_env_steps
        if total_env_steps is not None and total_env_steps != own_budget:
            cmd += ["--set", f"run.total_env_steps={total_env_steps}"]
        return cmd
    cmd = ["train", run.preset, "--seed", str(run.seed), "--out", str(run_dir)]
    if run.init_from is not None:
        cmd += ["--init-from", str(root / run.init_from)]
    for override in overrides:
        cmd += ["--set", override]
    return cmd


def is_finished(run_dir: Path, total_env_steps: int | None = None) -> bool:
    """The run reached ``total_env_steps`` (default: its own budget) and is not marked
    interrupted or diverged: an interrupted run also writes a summary.json, at the budget's end
    too when its final evaluation was cut short (a resume makes it), and so does a learner found
    non-finite at the last checkpoint (``softq train`` exits 1: the run failed)."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
        if total_env_steps is None:
            total_env_steps = read_config(run_dir / "config.yaml").run.total_env_steps
    except (OSError, ValueError, ConfigError):
        return False
    return (summary.get("env_steps", 0) >= total_env_steps and not summary.get("interrupted")
            and "diverged_at_step" not in summary)


def _set_aside_incomplete(run_dir: Path) -> None:
    """A directory with a config but no checkpoint cannot be resumed; keep it in the hidden
    ``.incomplete`` folder beside it, out of the runs that ``softq compare ROOT/<preset>-*``
    (a shell glob skips dot-folders) would take for one more seed."""
    if run_dir.exists() and not (run_dir / CHECKPOINT_NAME).exists() and any(run_dir.iterdir()):
        if run_dir_in_use(run_dir):  # still training towards its first checkpoint
            raise ConfigError(f"{run_dir} is in use: another softq process is training there "
                              "(a second `softq reproduce` with the same --out?)")
        aside = run_dir.parent / ".incomplete" / f"{run_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        aside.parent.mkdir(exist_ok=True)
        run_dir.rename(aside)
        print(f"moved the unfinished {run_dir} (no checkpoint) to {aside}")


def progress_of(log: Path) -> str | None:
    """'12000/30000, ~3 min left' from the last progress lines in a run's log (the time left
    at their mean steps/s), None before the first."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            matches = PROGRESS_LINE.findall(f.read())
    except OSError:
        return None
    if not matches:
        return None
    step, total = int(matches[-1][0]), int(matches[-1][1])
    rates = [int(m[2]) for m in matches[-RATE_LINES:] if m[2] and int(m[2]) > 0]
    if not rates or step >= total:
        return f"{step}/{total}"
    left_min = (total - step) / (sum(rates) / len(rates)) / 60.0
    left = f"{left_min / 60:.1f} h" if left_min >= 120 else f"{max(1, round(left_min))} min"
    return f"{step}/{total}, ~{left} left"


class Scheduler:
    """Starts runs as processes, at most ``jobs`` at once, each after the run it starts from."""

    def __init__(self, plan: Plan, root: Path, overrides: dict[str, list[str]],
                 budget: dict[str, int], jobs: int):
        if jobs < 1:
            raise ConfigError(f"--jobs must be >= 1, got {jobs}")
        # per run name: its --set values and its step budget
        self.root, self.overrides, self.budget, self.jobs = root, overrides, budget, jobs
        self.states = {r.name: RunState(r) for r in plan.runs}
        for state in self.states.values():
            if is_finished(root / state.run.name, self.budget[state.run.name]):
                state.status = "done"
        # refused before any run starts (found at a run's turn, the error left the runs already
        # started training with nothing to watch them or forward a Ctrl-C)
        busy = [s.run.name for s in self.states.values()
                if s.status != "done" and run_dir_in_use(root / s.run.name)]
        if busy:
            raise ConfigError(f"{root}: {', '.join(busy)} in use: another softq process is "
                              "training there (a second `softq reproduce` with the same --out?)")
        self.running: dict[str, tuple[subprocess.Popen, float]] = {}
        self.last_heartbeat = time.perf_counter()

    def _ready(self) -> list[RunState]:
        ready = []
        for state in self.states.values():
            if state.status != "pending":
                continue
            source = self.states.get(state.run.init_from) if state.run.init_from else None
            if source is not None and source.status in ("failed", "skipped"):
                state.status = "skipped"
                print(f"skipped {state.run.name}: its pretraining run {source.run.name} "
                      f"{source.status}")
            elif source is None or source.status == "done":
                ready.append(state)
        return ready

    def _start(self, state: RunState) -> None:
        _set_aside_incomplete(self.root / state.run.name)
        name = state.run.name
        cmd = train_command(state.run, self.root, self.overrides[name], self.budget[name])
        log = self.root / "logs" / f"{state.run.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as f:
            # own session: a Ctrl-C reaches the runs once, forwarded by run() below
            proc = subprocess.Popen([sys.executable, "-m", "launch.cli", *cmd], stdout=f,
                                    stderr=subprocess.STDOUT, env={**os.environ, "CI": "true"},
                                    start_new_session=True)
        self.running[state.run.name] = (proc, time.perf_counter())
        state.status = "running"
        print(f"[{self._counts()}] started  {state.run.name}: softq {shlex.join(cmd)}",
              flush=True)

    def _reap(self) -> None:
        for name, (proc, started) in list(self.running.items()):
            rc = proc.poll()
            if rc is None:
                continue
            del self.running[name]
            state = self.states[name]
            state.seconds = time.perf_counter() - started
            ok = rc == 0 and is_finished(self.root / name, self.budget[name])
            state.status = "done" if ok else "failed"
            verdict = "finished" if ok else f"FAILED (exit {rc}; {self.root}/logs/{name}.log)"
            print(f"[{self._counts()}] {verdict} {name} in {state.seconds:.0f} s", flush=True)

    def _heartbeat(self) -> None:
        if not self.running or time.perf_counter() - self.last_heartbeat < HEARTBEAT_S:
            return
        self.last_heartbeat = time.perf_counter()
        parts = [f"{name} {progress_of(self.root / 'logs' / f'{name}.log') or 'starting'}"
                 for name in self.running]
        print(f"[{self._counts()}] running: {'; '.join(parts)}", flush=True)

    def _counts(self) -> str:
        done = sum(s.status == "done" for s in self.states.values())
        return f"{done}/{len(self.states)} done"

    def run(self) -> dict[str, RunState]:
        try:
            while True:
                self._reap()
                for state in self._ready()[:self.jobs - len(self.running)]:
                    self._start(state)
                if not self.running:
                    break
                self._heartbeat()
                time.sleep(POLL_S)
        except KeyboardInterrupt:
            print("interrupted: each run writes a final checkpoint; run the same command to "
                  "continue", flush=True)
            for proc, _ in self.running.values():
                proc.send_signal(signal.SIGINT)
            for proc, _ in self.running.values():
                proc.wait()
            raise
        return self.states


def run_reproduce(args: argparse.Namespace) -> int:
    games = [g.strip() for g in args.games.split(",")] if args.games else None
    plan = build_plan(args.experiments, args.quick, parse_seeds(args.seeds), games,
                      args.overrides)
    root = Path(args.out)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"--out {root} is a file, not a directory")
    overrides = overrides_by_run(plan, args.overrides, args.set_for)
    # every run's settings are checked before any starts: first the keys, then the runs there
    wanted = {run.name: planned_config(run, overrides[run.name]) for run in plan.runs}
    for name, cfg in wanted.items():
        check_existing_run(root / name, cfg)
    budget = {name: cfg.run.total_env_steps for name, cfg in wanted.items()}
    if args.dry_run:
        for run in plan.runs:
            cmd = train_command(run, root, overrides[run.name], budget[run.name])
            print("softq " + shlex.join(cmd))
        for comp in plan.comparisons:
            print("softq " + shlex.join(compare_command(comp.name, comp.runs, comp.flags, root)))
        return 0
    root.mkdir(parents=True, exist_ok=True)
    scheduler = Scheduler(plan, root, overrides, budget, args.jobs)
    finished = sum(s.status == "done" for s in scheduler.states.values())
    print(f"{len(plan.runs)} runs under {root} ({finished} finished before), {args.jobs} at a time")
    states = scheduler.run()
    from launch.cli import main

    failed_figures = []
    for comp in plan.comparisons:
        missing = [name for name in comp.runs if states[name].status != "done"]
        if missing:
            print(f"no {comp.name} figure: {len(missing)} run(s) did not finish")
            continue
        print(f"--- {comp.name}")
        if main(compare_command(comp.name, comp.runs, comp.flags, root)) != 0:
            failed_figures.append(comp.name)
    bad = [s.run.name for s in states.values() if s.status != "done"]
    if bad:
        print(f"{len(bad)} run(s) did not finish: {', '.join(bad)}")
    if failed_figures:
        print(f"figures that failed: {', '.join(failed_figures)}")
    return 1 if bad or failed_figures else 0


def compare_command(name: str, runs: tuple[str, ...], flags: tuple[str, ...],
                    root: Path) -> list[str]:
    return ["compare", *(str(root / r) for r in runs), *flags,
            "--out", str(root / f"{name}.png"), "--report", str(root / f"{name}.json")]
