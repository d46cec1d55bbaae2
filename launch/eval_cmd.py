"""``softq eval RUN_DIR``: evaluate a run's checkpoint, print and write eval.json."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from distributed.checkpoint import load_checkpoint
from distributed.evaluation import evaluate_policy, evaluation_policy
from distributed.learner import probe_spaces
from distributed.rollout import own_streams
from envs.atomic_files import atomic_write_text
from launch.arg_types import directory, int_at_least
from launch.config import read_config
from launch.run_checks import build_cpu_learner, load_run_state
from launch.train_cmd import check_env, check_episode_ends


def add_eval_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a run's checkpoint (writes eval.json)")
    p.add_argument("run_dir", type=directory, help="a run directory of softq train")
    p.add_argument("--episodes", type=int_at_least(1), default=20,
                   help="evaluation episodes (default 20)")
    p.add_argument("--seed", type=int_at_least(0), default=12345,
                   help="seeds the episodes' envs, and the policy's noise through its own stream "
                   "(default 12345)")
    p.add_argument("--explore", action="store_true", help="act with exploration noise")
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    cfg = read_config(run_dir / "config.yaml")
    state = load_checkpoint(run_dir)
    check_env(cfg)
    obs_space, act_space = probe_spaces(cfg)
    cfg.runtime.device = "cpu"
    runner = build_cpu_learner(cfg)
    load_run_state(runner, state, run_dir)
    check_episode_ends(cfg)
    # as the run's own evaluation at that step acts (fixed xi set, schedules). --seed seeds the
    # envs; the policy's noise gets a stream of its own (a policy seeded with the envs' seed
    # would replay env 0's reset draws: one PCG64 stream)
    policy = evaluation_policy(cfg, obs_space, act_space, state["counters"]["env_steps"],
                               runner.learner.get_weights(), seed=own_streams(args.seed)[0])
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
        check = critic_check(runner.learner, result, gamma)
        if check:
            report.update(check)
            print(f"critic at the reset states: Q(s0, a0) {check['critic_q0_mean']:.2f} "
                  f"+- {check['critic_q0_std']:.2f} against that measured return"
                  + (f" (a soft Q also counts the entropy bonus: at most "
                     f"{check['critic_entropy_bound']:.2f} more here)"
                     if "critic_entropy_bound" in check else "")
                  + (f"; {check['critic_time_limit_share']:.0%} of the episodes ended at the "
                     f"time limit, where the critic bootstraps: it also counts gamma^T = "
                     f"{check['critic_time_limit_weight']:.2f} of the value there"
                     if "critic_time_limit_share" in check else ""))
    if "goal_shares" in result:
        report["goal_shares"] = result["goal_shares"]
        report["goals_reached"] = result["goals_reached"]
        shares = ", ".join(f"goal {k}: {v:.0%}" for k, v in result["goal_shares"].items())
        print(f"episodes ending at each goal: {shares}")
        from launch.plots import make_multigoal_hook

        # eval_*.png: the training's own pictures (its last evaluation) stay
        make_multigoal_hook(run_dir, prefix="eval_")(runner.learner, result, report["env_steps"])
        print(f"pictures: {run_dir / 'plots' / 'eval_trajectories.png'}, eval_q_values.png")
    if "mode_shares" in result:
        report["mode_shares"] = result["mode_shares"]
        report["modes_covered"] = result["modes_covered"]
        shares = ", ".join(f"{k}: {v:.0%}" for k, v in result["mode_shares"].items())
        print(f"behaviour modes at episode end: {shares}")
    atomic_write_text(run_dir / "eval.json", json.dumps(report, indent=2, default=_json_default))
    print(f"wrote {run_dir / 'eval.json'}")
    return 0


def critic_check(learner: Any, result: dict[str, Any], gamma: float) -> dict[str, Any]:
    """The critic's Q(s0, a0) at each episode's reset state and first action, to set beside the
    measured discounted return from there (an over- or under-estimating critic shows).

    Only for learners with a continuous-action ``q_values`` (SQL, DDPG); {} otherwise. A soft Q
    (SQL) also counts the policy's future entropy bonus, alpha H(pi) <= alpha d log 2 per step on
    [-1, 1]^d, so it may exceed the return by up to gamma alpha d log 2 / (1 - gamma). An
    episode the time limit cut at step T is bootstrapped by the critic (truncation is not a
    terminal), which so also counts gamma^T times the value there: ``critic_time_limit_share``
    and ``critic_time_limit_weight`` (that gamma^T, averaged over the cut episodes) say how much.
    """
    if not hasattr(learner, "q_values"):
        return {}
    actions = np.asarray(result["first_actions"], np.float32)
    q0 = learner.q_values(result["first_obs"], actions[:, None, :])[:, 0]  # [E]
    out = {"critic_q0_mean": float(q0.mean()), "critic_q0_std": float(q0.std()),
           "critic_q0": [float(q) for q in q0]}
    if hasattr(learner, "alpha_at") and gamma < 1.0:
        alpha = learner.alpha_at(learner.num_updates)
        out["critic_entropy_bound"] = (gamma * alpha * actions.shape[1] * math.log(2.0)
                                       / (1.0 - gamma))
    lengths, ended = result.get("lengths", []), result.get("terminated", [])
    cut = [n for n, done in zip(lengths, ended) if not done]  # steps of the episodes cut
    if cut:
        out["critic_time_limit_share"] = len(cut) / len(lengths)
        out["critic_time_limit_weight"] = float(np.mean([gamma ** n for n in cut]))
    return out


def _json_default(x: object) -> object:
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(type(x).__name__)
