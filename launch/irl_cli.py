"""``softq irl ...``: MaxEnt IRL on road graphs (Ziebart et al. 2008).

    softq irl generate      synthetic city + synthetic drivers' train/test paths
    softq irl train         learn costs: MaxEnt (L-BFGS or exponentiated gradient), action-based
                            model (eq. 7), max margin planning
    softq irl evaluate      Table 1: distance match %, share >= 90% matched, mean log-probability
    softq irl destinations  Figure 5: destination posterior accuracy vs fraction of route seen

Each command writes into ``--out`` (default ``runs/irl-<timestamp>/``); see docs/irl.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import numpy as np

from envs.atomic_files import atomic_write_text
from envs.city_generator import PRESETS, generate_city
from envs.demonstrations import save_paths, synthetic_drivers
from envs.road_graph import FEATURE_NAMES, RoadGraph
from launch.arg_types import directory, float_at_least, int_at_least, probability_below_one
from launch.config import ConfigError
from launch.irl_files import (
    existing_costs,
    load_checked_paths,
    load_costs,
    load_graph,
    load_true_cost,
    open_log,
    out_dir,
    remove_other_graph,
)
from launch.run_dir import hold_run_dir

# hidden "true" costs of the synthetic drivers, in units of ~10 s (order of FEATURE_NAMES)
TRUE_COST = np.array([
    5.0, 6.5, 8.0, 10.0, 13.0,  # miles by road type: interstate .. local
    4.0, 3.0, 2.2, 1.5, 1.0, 0.6,  # miles by speed category: slow .. fast
    1.5, 0.9, 0.6, 0.4, 0.3, 0.3,  # miles by lanes: 1 .. 6+
    0.05, 1.2, 0.6, 2.5, 2.0,  # turns: straight, left, right, hard left, hard right
    0.14,  # per-edge constant
])


def _mdp(graph: RoadGraph):
    from agents.irl import GraphMDP

    return GraphMDP(graph.n_segments, graph.src, graph.dst), graph.action_features()


def _near(graph: RoadGraph, dests: np.ndarray, radius: float | None):
    """(segment, column) pairs within 1.5 ``radius`` miles of each column's destination (where
    the values must converge), or every segment in every column when ``radius`` is None."""
    if radius is None:
        return np.arange(graph.n_segments)
    rows, cols = [], []
    for b, g in enumerate(dests):
        r = np.nonzero(np.hypot(graph.x - graph.x[g], graph.y - graph.y[g]) <= radius * 1.5)[0]
        rows.append(r)
        cols.append(np.full(r.size, b))
    return np.concatenate(rows), np.concatenate(cols)


def cmd_generate(args: argparse.Namespace) -> int:
    from agents.irl.inference import log_partition
    from agents.irl.maxent import action_log_probs

    if (args.rows is None) != (args.cols is None):
        raise ConfigError("--rows and --cols go together (or neither: --size picks both)")
    rows, cols = (args.rows, args.cols) if args.rows else PRESETS[args.size]
    t0 = time.perf_counter()
    graph = generate_city(rows, cols, seed=args.seed)
    if args.n_destinations > graph.n_segments:
        raise ConfigError(f"--n-destinations {args.n_destinations} exceeds the city's "
                          f"{graph.n_segments} road segments")
    out = out_dir(args.out)
    remove_other_graph(out, args.format)
    graph.save(out / ("graph.npz" if args.format == "npz" else "graph"))
    mdp, phi = _mdp(graph)
    rng = np.random.default_rng(args.seed + 1)
    dests = rng.choice(graph.n_segments, size=args.n_destinations, replace=False)
    probs = 1.0 / np.arange(1, dests.size + 1)  # Zipf-like popularity (the Figure 5 prior)
    probs /= probs.sum()
    watch = _near(graph, dests, args.trip_miles)

    def policy_fn(cost: np.ndarray, d: np.ndarray) -> np.ndarray:
        r = -(phi @ cost)
        return action_log_probs(mdp, r, log_partition(mdp, r, d, watch, progress=True))

    demos = synthetic_drivers(graph, TRUE_COST, policy_fn, args.n_train + args.n_test, dests,
                              probs, seed=args.seed + 2, epsilon=args.epsilon,
                              driver_sigma=args.driver_sigma, n_drivers=args.n_drivers,
                              max_trip_miles=args.trip_miles)
    save_paths(out / "train_paths.csv", demos.paths[: args.n_train])
    save_paths(out / "test_paths.csv", demos.paths[args.n_train:])
    atomic_write_text(out / "true_cost.json", json.dumps(
        dict(zip(FEATURE_NAMES, TRUE_COST.tolist(), strict=True)), indent=1))
    info = {"segments": graph.n_segments, "transitions": graph.n_transitions,
            "destinations": dests.tolist(), "destination_probs": probs.tolist(),
            "mean_path_len": float(np.mean([p.size for p in demos.paths])),
            "seconds": time.perf_counter() - t0, "args": vars(args) | {"func": None}}
    atomic_write_text(out / "generate.json", json.dumps(info, indent=1, default=str))
    print(f"city {graph.n_segments} segments, {graph.n_transitions} transitions; "
          f"{args.n_train}+{args.n_test} paths (mean {info['mean_path_len']:.1f} segments) "
          f"in {info['seconds']:.1f} s -> {out}")
    if (out / "costs.json").exists():  # `train --out` keeps the models it does not retrain
        print(f"note: {out / 'costs.json'} holds costs learned from the data this call replaced; "
              f"retrain every model (`softq irl train --data {out} --out {out}`)")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as held:
        return _train(args, held)


def _train(args: argparse.Namespace, held: contextlib.ExitStack) -> int:
    """cmd_train with ``held`` keeping --out's lock until costs.json is written."""
    from tqdm import tqdm

    from agents.irl.baselines import ActionModelObjective, train_action_model, train_mmp
    from agents.irl.learning import (
        MaxEntObjective,
        feature_null_space,
        identifiable_correlation,
        serial_map,
        train_exponentiated_gradient,
        train_lbfgs,
    )

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = set(models) - {"maxent", "action", "mmp"}
    if unknown or not models:
        raise ConfigError(f"--models {args.models!r}: unknown entries {sorted(unknown)}; "
                          "choose from maxent, action, mmp")
    # every input is read (and Ray joined) before the output directory is made: a bad --data,
    # --init, path file or --address leaves nothing behind
    data = Path(args.data)
    graph = load_graph(data)
    mdp, phi = _mdp(graph)
    paths = load_checked_paths(data / "train_paths.csv", graph)[: args.max_paths]
    init_costs = load_costs(Path(args.init), need="maxent") if args.init else {}
    init_cost = init_costs.get("maxent")
    # costs.json already in --out (e.g. --out = --data, as docs/irl.md does): the models this
    # call does not train stay in it
    out_costs = existing_costs(Path(args.out)) if args.out else {}
    truth = load_true_cost(data)
    map_fn = serial_map
    if args.ray or args.address:
        from distributed.irl_tasks import init_ray, ray_map

        try:
            init_ray(args.address, args.num_cpus)
        except ConnectionError as exc:
            raise ConfigError(f"--address {args.address!r}: {str(exc).splitlines()[0]}") from exc
        map_fn = ray_map
    obj = None
    if "maxent" in models:  # refuses demonstrations longer than --horizon: before the out dir
        try:
            obj = MaxEntObjective(mdp, phi, paths, horizon=args.horizon,
                                  dest_batch=args.dest_batch, map_fn=map_fn)
        except ValueError as exc:
            raise ConfigError(f"{data / 'train_paths.csv'}: {exc}") from exc
    out = out_dir(args.out)
    # a second `irl train` into --out meanwhile would write its costs.json over this one's (or
    # this one over its): one at a time, and the costs.json to keep models from read under it
    held.enter_context(hold_run_dir(out))
    out_costs = existing_costs(out)
    # models not trained in this call: those --out's costs.json already holds are kept, and the
    # --init run's others come along, so that this run's costs.json evaluates them too
    # (precedence: this call's models > --out's costs.json > --init's)
    kept = {k: v for k, v in out_costs.items() if k not in models}
    carried = {k: v for k, v in init_costs.items() if k not in models and k not in kept}
    if kept:
        print(f"kept from {out / 'costs.json'} (not retrained): {', '.join(kept)}")
    if carried:
        print(f"carried over from --init {args.init}: {', '.join(carried)}")
    costs: dict[str, np.ndarray] = {**carried, **kept}
    log = open_log(out / "train_log.jsonl")
    t0 = time.perf_counter()
    if obj is not None:
        bar = tqdm(total=args.iters, desc=f"maxent ({args.method})", disable=None)  # a terminal

        def cb(rec: dict) -> None:
            bar.update(1)
            bar.set_postfix(nll=f"{rec['nll']:.4f}")
            log.write(json.dumps({"model": "maxent", **rec}, default=float) + "\n")

        c0 = np.ones(phi.shape[1])
        if init_cost is not None:  # warm start from an earlier run's costs.json
            c0 = np.maximum(init_cost, 1e-3)
        if args.method == "eg":
            res = train_exponentiated_gradient(obj, c0, args.iters, args.lr, args.l1, cb)
        else:
            res = train_lbfgs(obj, c0, args.iters, args.l1, callback=cb)
        bar.close()
        costs["maxent"] = res.cost
        print(f"maxent: {obj.evaluations} passes over {len(obj.items)} destination batches, "
              f"{time.perf_counter() - t0:.1f} s")
    if "action" in models:
        t1 = time.perf_counter()
        acts = [mdp.action_index(p) for p in paths]
        aobj = ActionModelObjective(mdp, phi, acts, np.array([p[-1] for p in paths]))
        with tqdm(total=args.iters, desc="action model (L-BFGS-B)", disable=None) as bar:
            costs["action"] = train_action_model(aobj, np.ones(phi.shape[1]), args.iters,
                                                 on_iteration=bar.update)
        print(f"action model: {time.perf_counter() - t1:.1f} s")
    if "mmp" in models:
        t1 = time.perf_counter()
        with tqdm(total=args.mmp_iters, desc="max margin planning", disable=None) as bar:
            costs["mmp"] = train_mmp(mdp, phi, paths, graph.length_miles, iters=args.mmp_iters,
                                     batch=min(args.mmp_batch, len(paths)),
                                     on_iteration=bar.update)
        print(f"max margin planning: {time.perf_counter() - t1:.1f} s")
    log.close()
    order = ("maxent", "action", "mmp")  # whichever call trained them: one stable order
    costs = dict(sorted(costs.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order
                        else len(order)))
    atomic_write_text(out / "costs.json", json.dumps(
        {k: dict(zip(FEATURE_NAMES, v.tolist(), strict=True)) for k, v in costs.items()},
        indent=1))
    if truth is not None:
        null = feature_null_space(phi)
        for k, v in costs.items():
            print(f"{k}: correlation with the hidden costs (identifiable part) "
                  f"{identifiable_correlation(v, truth, null):.4f}")
    trained = ", ".join(k for k in costs if k in models)
    print(f"trained {trained} in {time.perf_counter() - t0:.1f} s -> {out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from agents.irl.evaluation import table1

    data = Path(args.data)
    graph = load_graph(data)
    mdp, phi = _mdp(graph)
    costs = load_costs(Path(args.model or args.data))
    test = load_checked_paths(data / "test_paths.csv", graph)[: args.max_paths]
    out = out_dir(args.out)
    t0 = time.perf_counter()
    rows = table1(mdp, phi, graph.length_miles, graph.travel_time_s(), test, costs,
                  progress=True)
    atomic_write_text(out / "table1.json", json.dumps(rows, indent=1))
    lines = ["| model | matching % | 90% match % | log prob |", "|---|---|---|---|"]
    for name, r in rows.items():
        lp = "N/A" if np.isnan(r["log_prob"]) else f"{r['log_prob']:.2f}"
        lines.append(f"| {name} | {r['matching_pct']:.2f} | {r['match90_pct']:.2f} | {lp} |")
    atomic_write_text(out / "table1.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"{len(test)} test paths in {time.perf_counter() - t0:.1f} s -> {out / 'table1.md'}")
    return 0


def cmd_destinations(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from agents.irl.evaluation import destination_accuracy
    from agents.irl.inference import destination_prior
    from launch.plots import save_figure

    data = Path(args.data)
    graph = load_graph(data)
    mdp, phi = _mdp(graph)
    cost = load_costs(Path(args.model or args.data), need="maxent")["maxent"]
    train = load_checked_paths(data / "train_paths.csv", graph)
    test = load_checked_paths(data / "test_paths.csv", graph)
    train_dest = np.array([p[-1] for p in train])
    uniq, cnt = np.unique(train_dest, return_counts=True)
    cand = uniq[np.argsort(-cnt, kind="stable")[: args.n_dest]]  # the most frequent destinations
    prior = destination_prior(train_dest, cand)
    test = [p for p in test if p[-1] in set(cand.tolist())][: args.max_paths]
    if not test:
        raise ConfigError(f"no test path in {data} ends at the {cand.size} chosen destinations")
    out = out_dir(args.out)
    fr = np.linspace(0.0, 0.9, 10)
    acc, base = destination_accuracy(mdp, -(phi @ cost), cand, prior, test, fr, progress=True)
    atomic_write_text(out / "figure5.json", json.dumps(
        {"fractions": fr.tolist(), "accuracy": acc.tolist(), "prior_only": base.tolist(),
         "destinations": cand.tolist(), "prior": prior.tolist(), "n_test": len(test)}, indent=1))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(100 * fr, 100 * acc, "o-", label="MaxEnt posterior")
    ax.plot(100 * fr, 100 * base, "--", label="prior only")
    ax.set_xlabel("percentage of route observed")
    ax.set_ylabel("prediction accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Destination prediction ({cand.size} destinations)")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, out / "figure5.png", dpi=120)
    print(" ".join(f"{100 * f:.0f}%:{100 * a:.1f}" for f, a in zip(fr, acc, strict=True)))
    print(f"{len(test)} test paths -> {out / 'figure5.png'}")
    return 0


OUT_HELP = "output directory (default runs/irl-<timestamp>/)"


def add_irl_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``irl`` with sub-commands generate/train/evaluate/destinations (``args.func``)."""
    p = subparsers.add_parser("irl", help="maximum entropy IRL on road graphs",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="irl_command", required=True)
    count, side = int_at_least(1), int_at_least(3)  # a city has >= 3 x 3 intersections
    positive, non_negative = float_at_least(0, strictly=True), float_at_least(0)

    g = sub.add_parser("generate", help="synthetic city and drivers")
    g.add_argument("--size", choices=sorted(PRESETS), default="small",
                   help="the city's grid (default small; pittsburgh: docs/irl.md's results)")
    g.add_argument("--rows", type=side, default=None, help="grid rows (overrides --size)")
    g.add_argument("--cols", type=side, default=None, help="grid columns (overrides --size)")
    g.add_argument("--seed", type=int_at_least(0), default=0)
    g.add_argument("--n-train", type=count, default=2000, help="training paths (default 2000)")
    g.add_argument("--n-test", type=count, default=500, help="held-out paths (default 500)")
    g.add_argument("--n-destinations", type=count, default=20,
                   help="destinations the drivers head for (default 20)")
    g.add_argument("--trip-miles", type=positive, default=None,
                   help="max straight-line origin-destination distance (None: anywhere)")
    g.add_argument("--epsilon", type=probability_below_one, default=0.0,
                   help="imperfect drivers: random turns")
    g.add_argument("--driver-sigma", type=non_negative, default=0.0,
                   help="noisy drivers' cost noise")
    g.add_argument("--n-drivers", type=count, default=1,
                   help="drivers, each with its own noisy costs (--driver-sigma; default 1)")
    g.add_argument("--format", choices=("npz", "csv"), default="npz")
    g.add_argument("--out", type=directory, default=None, help=OUT_HELP)
    g.set_defaults(func=cmd_generate)

    t = sub.add_parser("train", help="learn MaxEnt, action-based and MMP costs")
    t.add_argument("--data", type=directory, required=True,
                   help="directory written by `irl generate`")
    t.add_argument("--out", type=directory, default=None,
                   help="where costs.json goes (default runs/irl-<timestamp>/; usually --data)")
    t.add_argument("--models", default="maxent,action,mmp",
                   help="comma-separated, of maxent, action, mmp (default all three)")
    t.add_argument("--method", choices=("lbfgs", "eg"), default="lbfgs")
    t.add_argument("--iters", type=count, default=50,
                   help="MaxEnt (and action model) iterations (default 50)")
    t.add_argument("--lr", type=positive, default=0.5, help="exponentiated gradient step")
    t.add_argument("--l1", type=non_negative, default=0.0)
    t.add_argument("--horizon", type=count, default=None, help="fixed horizon (None: converge)")
    t.add_argument("--init", type=directory, default=None,
                   help="warm-start MaxEnt from DIR/costs.json")
    t.add_argument("--dest-batch", type=count, default=16,
                   help="destinations per batched backward + forward pass (default 16)")
    t.add_argument("--max-paths", type=count, default=None,
                   help="train on the first N paths only (default all)")
    t.add_argument("--mmp-iters", type=count, default=30,
                   help="max margin planning iterations (default 30)")
    t.add_argument("--mmp-batch", type=count, default=64,
                   help="paths per max margin planning step (default 64)")
    t.add_argument("--ray", action="store_true", help="spread destination batches over Ray")
    t.add_argument("--address", default=None, help="Ray address ('auto' joins a cluster)")
    t.add_argument("--num-cpus", type=count, default=None)
    t.set_defaults(func=cmd_train)

    for name, fn, hlp in (("evaluate", cmd_evaluate, "Table 1 metrics"),
                          ("destinations", cmd_destinations, "Figure 5 plot")):
        e = sub.add_parser(name, help=hlp)
        e.add_argument("--data", type=directory, required=True)
        e.add_argument("--model", type=directory, default=None,
                       help="directory with costs.json (default --data)")
        e.add_argument("--out", type=directory, default=None, help=OUT_HELP)
        e.add_argument("--max-paths", type=count, default=None,
                       help="the first N test paths only (default all)")
        if name == "destinations":
            e.add_argument("--n-dest", type=count, default=5,
                           help="the N most frequent training destinations (default 5)")
        e.set_defaults(func=fn)
    return p
