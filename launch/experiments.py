"""The papers' experiments as run plans: which presets to train, for which seeds, which run
starts from which pretrained run, and which ``softq compare`` draws each figure.
``softq reproduce`` (launch/reproduce_cmd.py) executes a plan.

| experiment | paper, figure | runs per seed | comparison |
|---|---|---|---|
| ``multigoal`` | Haarnoja, Fig. 1 | SQL, DDPG | goals reached (mode coverage) |
| ``swimmer`` | Haarnoja, Fig. 3a | SQL, DDPG | seeds past the finish line in training |
| ``maze`` | Haarnoja, Fig. 3b | SQL, DDPG | seeds below the upper passage's distance |
| ``finetune`` | Haarnoja, Fig. 5, 7 | 2 pretraining + 3 x 3 fine-tuning | directions, return |
| ``atari-fig1`` | Schulman, Fig. 1 | A2C naive, proper entropy, per game | raw score |
| ``atari-fig2`` | Schulman, Fig. 2 | DQN, soft DQN (KL, entropy, 5-step), per game | raw score |
| ``atari-fig3`` | Schulman, Fig. 3 | A2C naive, A2C-style soft Q, per game | raw score |
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym

from launch.config import ConfigError, load_config

FINETUNE_TASKS = ("hallway-wide", "hallway-narrow", "umaze")


@dataclass(frozen=True)
class PlannedRun:
    """One ``softq train`` run; ``name`` is its directory under the plan's root."""

    preset: str
    seed: int
    init_from: str | None = None  # the name of the run whose weights this one starts from

    @property
    def name(self) -> str:
        return f"{self.preset}-s{self.seed}"


@dataclass(frozen=True)
class PlannedComparison:
    """One ``softq compare`` over finished runs, written to ``<name>.png`` / ``<name>.json``."""

    name: str
    runs: tuple[str, ...]
    flags: tuple[str, ...] = ()


@dataclass
class Plan:
    runs: list[PlannedRun] = field(default_factory=list)
    comparisons: list[PlannedComparison] = field(default_factory=list)

    def add(self, other: Plan) -> None:
        """Append ``other``; a run both plans share (e.g. A2C in Figures 1 and 3) is kept once."""
        have = {r.name for r in self.runs}
        self.runs += [r for r in other.runs if r.name not in have]
        self.comparisons += other.comparisons


def _preset(name: str, quick: bool) -> str:
    return f"{name}-quick" if quick else name


def _pair(sql: str, ddpg: str, quick: bool, seeds: list[int], comparison: str,
          flags: tuple[str, ...]) -> Plan:
    """SQL and DDPG side by side, each seed, compared in one figure."""
    runs = [PlannedRun(_preset(p, quick), s) for p in (sql, ddpg) for s in seeds]
    return Plan(runs, [PlannedComparison(comparison, tuple(r.name for r in runs), flags)])


def swimmer_finish_line(quick: bool, overrides: list[str] | None = None) -> float:
    """The finish line (m) of the swimmer preset after ``overrides`` (``--set`` values):
    Figure 3a's threshold."""
    from envs.swimmer_finish_line import FINISH_LINE_X

    cfg = load_config(_preset("swimmer-finish-line-sql", quick), overrides)
    return float(cfg.env.kwargs.get("finish_line_x", FINISH_LINE_X))


def maze_threshold(quick: bool, overrides: list[str] | None = None) -> float:
    """The target distance that only the open passage gets below (Figure 3b), for the maze
    preset's task after ``overrides``."""
    cfg = load_config(_preset("ant-maze-sql", quick), overrides)
    import envs  # noqa: F401  (registers softq/ ids)

    env_class = gym.envs.registration.load_env_creator(gym.spec(cfg.env.id).entry_point)
    return float(env_class.reach_radius)


def multigoal_plan(quick: bool, seeds: list[int], overrides: list[str]) -> Plan:
    sql = "multigoal-quick" if quick else "multigoal"  # the SQL quick preset has no -sql infix
    ddpg = _preset("multigoal-ddpg", quick)
    runs = [PlannedRun(p, s) for p in (sql, ddpg) for s in seeds]
    return Plan(runs, [PlannedComparison("multigoal", tuple(r.name for r in runs))])


def swimmer_plan(quick: bool, seeds: list[int], overrides: list[str]) -> Plan:
    line = swimmer_finish_line(quick, overrides)  # e.g. --set env.kwargs.finish_line_x=2.0
    return _pair("swimmer-finish-line-sql", "swimmer-finish-line-ddpg", quick, seeds, "swimmer",
                 ("--metric", "train/max_com_x", "--above", f"{line:g}", "--per-seed",
                  "--mode", "forward"))


def maze_plan(quick: bool, seeds: list[int], overrides: list[str]) -> Plan:
    radius = maze_threshold(quick, overrides)
    return _pair("ant-maze-sql", "ant-maze-ddpg", quick, seeds, "maze",
                 ("--metric", "train/min_distance_to_target", "--below", f"{radius:.4f}",
                  "--per-seed", "--mode", "target"))


def finetune_plan(quick: bool, seeds: list[int], overrides: list[str]) -> Plan:
    """§5.3: pretrain SQL and DDPG on the any-direction task, then fine-tune each task three
    ways (SQL from SQL's pretraining, DDPG from DDPG's, DDPG from scratch), seed by seed."""
    plan = _pair("ant-pretrain-sql", "ant-pretrain-ddpg", quick, seeds, "pretrain", ())
    pre_sql = {s: PlannedRun(_preset("ant-pretrain-sql", quick), s).name for s in seeds}
    pre_ddpg = {s: PlannedRun(_preset("ant-pretrain-ddpg", quick), s).name for s in seeds}
    for task in FINETUNE_TASKS:
        runs = []
        for s in seeds:
            runs += [PlannedRun(_preset(f"ant-{task}-sql-finetune", quick), s, pre_sql[s]),
                     PlannedRun(_preset(f"ant-{task}-ddpg-pretrained", quick), s, pre_ddpg[s]),
                     PlannedRun(_preset(f"ant-{task}-ddpg-scratch", quick), s)]
        # Figure 5's y-axis is the average discounted return
        plan.add(Plan(runs, [PlannedComparison(task, tuple(r.name for r in runs),
                                               ("--metric", "eval/discounted_return_mean"))]))
    return plan


# Schulman et al. 2017: the games of Figures 1-3 and each figure's variants (presets
# <game>-<variant>; README, "Reproducing the Atari figures")
ATARI_GAMES = ("pong", "breakout", "beamrider", "enduro", "qbert", "seaquest", "spaceinvaders")
ATARI_FIGURES = {
    "atari-fig1": ("a2c-naive", "a2c-proper"),
    "atari-fig2": ("dqn", "soft-dqn-kl", "soft-dqn-entropy", "soft-dqn-5step"),
    "atari-fig3": ("a2c-naive", "soft-q-a2c"),
}


def atari_plan(figure: str, games: list[str], seeds: list[int]) -> Plan:
    plan = Plan()
    for game in games:
        runs = [PlannedRun(f"{game}-{v}", s) for v in ATARI_FIGURES[figure] for s in seeds]
        plan.add(Plan(runs, [PlannedComparison(f"{figure[len('atari-'):]}-{game}",
                                               tuple(r.name for r in runs))]))
    return plan


EXPERIMENTS = {
    "multigoal": multigoal_plan,
    "swimmer": swimmer_plan,
    "maze": maze_plan,
    "finetune": finetune_plan,
}
ALL_EXPERIMENTS = "all"  # every Haarnoja experiment; the Atari figures are named one by one


def build_plan(names: list[str], quick: bool, seeds: list[int],
               games: list[str] | None = None, overrides: list[str] | None = None) -> Plan:
    """The runs and comparisons of the named experiments, in an order where every run comes
    after the run it starts from. ``games`` picks the Atari figures' games (default: all 7);
    ``overrides`` (every run's ``--set`` values) move the figures' thresholds with the task."""
    if ALL_EXPERIMENTS in names:
        names = [*EXPERIMENTS, *(n for n in names if n in ATARI_FIGURES)]
    unknown = [n for n in names if n not in EXPERIMENTS and n not in ATARI_FIGURES]
    if unknown:
        raise ConfigError(f"unknown experiment {unknown[0]!r}; choose from "
                          f"{', '.join([*EXPERIMENTS, *ATARI_FIGURES, ALL_EXPERIMENTS])}")
    if not seeds:
        raise ConfigError("--seeds: no seed given")
    games = list(ATARI_GAMES) if not games else games
    bad_games = [g for g in games if g not in ATARI_GAMES]
    if bad_games:
        raise ConfigError(f"--games: unknown game {bad_games[0]!r}; choose from "
                          f"{', '.join(ATARI_GAMES)}")
    plan = Plan()
    for name in dict.fromkeys(names):  # each once, in the order given
        if name in ATARI_FIGURES:
            if quick:
                raise ConfigError(f"{name} has no -quick presets; shorten the runs with "
                                  f"--set run.total_env_steps=N")
            plan.add(atari_plan(name, games, seeds))
        else:
            plan.add(EXPERIMENTS[name](quick, seeds, overrides or []))
    return plan


def parse_seeds(text: str) -> list[int]:
    """'0,1,2', '0-9' or a mix ('0-2,7') -> sorted distinct seeds."""
    seeds: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                if int(hi) < int(lo):
                    raise ValueError
                seeds.update(range(int(lo), int(hi) + 1))
            else:
                seeds.add(int(part))
        except ValueError:
            raise ConfigError(f"--seeds: {part!r} is not a seed or a range like 0-9") from None
    return sorted(seeds)
