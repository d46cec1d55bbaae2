"""``softq eval RUN_DIR``: evaluate a run's checkpoint, print and write eval.json."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from agents.registry import get_algorithm
from distributed.checkpoint import load_checkpoint
from distributed.evaluation import evaluate_policy
from distributed.learner import LearnerRunner, probe_spaces
from launch.arg_types import int_at_least
from launch.config import read_config


def add_eval_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a run's checkpoint (writes eval.json)")
    p.add_argument("run_dir")
    p.add_argument("--episodes", type=int_at_least(1), default=20)
    p.add_argument("--seed", type=int_at_least(0), default=12345)
    p.add_argument("--explore", action="store_true", help="act with exploration noise")
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    cfg = read_config(run_dir / "config.yaml")
    state = load_checkpoint(run_dir)
    obs_space, act_space = probe_spaces(cfg)
    cfg.runtime.device = "cpu"
    runner = LearnerRunner(cfg, obs_space, act_space)
    runner.load_state_dict(state["runner"])
    policy = get_algorithm(cfg.algo).make_policy(cfg.agent, obs_space, act_space,
                                                 seed=args.seed)
    policy.set_weights(runner.learner.get_weights())
    multigoal = cfg.env.id == "softq/MultiGoal-v0"
    result = evaluate_policy(policy, cfg.env.id, args.episodes, seed=args.seed,
                             max_episode_steps=cfg.env.max_episode_steps,
                             env_kwargs=cfg.env.kwargs, explore=args.explore,
                             record_positions=multigoal, gamma=getattr(cfg.agent, "gamma", None))
    report = {
        "run_dir": str(run_dir),
        "env_steps": state["counters"]["env_steps"],
        "episodes": args.episodes,
        "return_mean": result["return_mean"],
        "return_std": result["return_std"],
        "returns": [float(r) for r in result["returns"]],
        "lengths": result["lengths"],
        "length_mean": result["length_mean"],
        "terminated_share": result["terminated_share"],
    }
    print(f"{cfg.env.id}: return {result['return_mean']:.2f} +- {result['return_std']:.2f} "
          f"over {args.episodes} episodes (checkpoint at {report['env_steps']} env steps)")
    print(f"episode length {result['length_mean']:.1f} steps; ended by the env (not the time "
          f"limit): {result['terminated_share']:.0%}")
    if "discounted_return_mean" in result:
        gamma = cfg.agent.gamma
        report.update(gamma=gamma, discounted_return_mean=result["discounted_return_mean"],
                      discounted_return_std=result["discounted_return_std"],
                      discounted_returns=[float(r) for r in result["discounted_returns"]])
        print(f"discounted return (gamma {gamma:g}): {result['discounted_return_mean']:.2f} "
              f"+- {result['discounted_return_std']:.2f}")
    if "goal_shares" in result:
        report["goal_shares"] = result["goal_shares"]
        report["goals_reached"] = result["goals_reached"]
        shares = ", ".join(f"goal {k}: {v:.0%}" for k, v in result["goal_shares"].items())
        print(f"episodes ending at each goal: {shares}")
        from launch.plots import make_multigoal_hook

        make_multigoal_hook(run_dir)(runner.learner, result, report["env_steps"])
        print(f"pictures: {run_dir / 'plots'}")
    if "mode_shares" in result:
        report["mode_shares"] = result["mode_shares"]
        report["modes_covered"] = result["modes_covered"]
        shares = ", ".join(f"{k}: {v:.0%}" for k, v in result["mode_shares"].items())
        print(f"behaviour modes at episode end: {shares}")
    (run_dir / "eval.json").write_text(json.dumps(report, indent=2, default=_json_default))
    print(f"wrote {run_dir / 'eval.json'}")
    return 0


def _json_default(x: object) -> object:
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(type(x).__name__)
