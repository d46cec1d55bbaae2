"""Road graphs, the city generator, synthetic drivers and the plain file formats."""

from __future__ import annotations

import numpy as np
import pytest

from agents.irl import GraphMDP
from agents.irl.inference import maxent_policy
from envs.city_generator import classify_turns, generate_city
from envs.demonstrations import load_paths, sample_paths, save_paths, synthetic_drivers
from envs.road_graph import FEATURE_NAMES, N_FEATURES, RoadGraph, RoadGraphError
from tests.test_irl_maxent import brute_force


def test_turn_classification_by_heading_change():
    east = 0.0
    headings = np.radians([0, 20, 90, -90, 150, -150, 179])
    turns = classify_turns(np.full(7, east), headings)
    # straight, straight, left, right, hard left, hard right, hard left
    np.testing.assert_array_equal(turns, [0, 0, 1, 2, 3, 4, 3])


def test_generated_city_structure_and_features():
    g = generate_city(12, 12, seed=3)
    phi = g.action_features()
    assert phi.shape == (g.n_transitions, N_FEATURES) and N_FEATURES == 23
    assert len(FEATURE_NAMES) == 23
    seg_len = g.length_miles[g.dst]
    # road type, speed and lane miles each partition the entered segment's length
    for lo, hi in [(0, 5), (5, 11), (11, 17)]:
        np.testing.assert_allclose(phi[:, lo:hi].sum(axis=1), seg_len)
    np.testing.assert_array_equal(phi[:, 17:22].sum(axis=1), 1.0)  # one turn per transition
    np.testing.assert_array_equal(phi[:, 22], 1.0)
    # segments are directed street halves: the transitions never U-turn onto the reverse half
    mid = np.stack([g.x, g.y], axis=1)
    assert not np.any(np.all(np.isclose(mid[g.src], mid[g.dst]), axis=1))
    assert np.bincount(g.turn, minlength=5)[[0, 1, 2]].min() > 0
    assert np.bincount(g.turn, minlength=5)[[3, 4]].min() > 0  # diagonals give hard turns


@pytest.mark.parametrize("fmt", ["graph.npz", "graph_csv"])
def test_road_graph_roundtrip(tmp_path, fmt):
    g = generate_city(6, 7, seed=1)
    path = g.save(tmp_path / fmt)
    h = RoadGraph.load(path)
    for name in ("src", "dst", "turn", "road_type", "lanes"):
        np.testing.assert_array_equal(getattr(h, name), getattr(g, name))
    np.testing.assert_allclose(h.length_miles, g.length_miles, rtol=1e-8)
    np.testing.assert_allclose(h.action_features(), g.action_features(), rtol=1e-8)


def test_bad_road_graph_files_name_the_problem(tmp_path):
    g = generate_city(5, 5, seed=0)
    d = g.save(tmp_path / "g")
    (d / "transitions.csv").write_text("src,dst\n0,1\n")
    with pytest.raises(RoadGraphError, match="turn"):
        RoadGraph.load(d)
    with pytest.raises(RoadGraphError, match="length_miles"):
        RoadGraph(**{**{k: getattr(g, k) for k in ("speed_mph", "road_type", "lanes", "x", "y",
                                                   "src", "dst", "turn")},
                     "length_miles": -g.length_miles})
    # .npz: integral floats load as the integers they are, anything else is named
    cols = {k: getattr(g, k) for k in ("length_miles", "speed_mph", "road_type", "lanes", "x",
                                       "y", "src", "dst", "turn")}
    np.savez(tmp_path / "f.npz", **{**cols, "road_type": cols["road_type"].astype(float)})
    h = RoadGraph.load(tmp_path / "f.npz")
    np.testing.assert_allclose(h.action_features(), g.action_features())
    np.savez(tmp_path / "h.npz", **{**cols, "lanes": cols["lanes"] + 0.5})
    with pytest.raises(RoadGraphError, match="h.npz: lanes' must hold integers"):
        RoadGraph.load(tmp_path / "h.npz")


def _a_loop(g: RoadGraph, b: int) -> list[int]:
    """Segments b, s1, ..., sk with a transition from sk back to b (breadth-first search)."""
    succ: dict[int, list[int]] = {}
    for a, d in zip(g.src.tolist(), g.dst.tolist()):
        succ.setdefault(a, []).append(d)
    parent, frontier = {b: -1}, [b]
    while frontier:
        nxt = []
        for s in frontier:
            if b in succ.get(s, []) and s != b:
                path = [s]
                while parent[path[0]] != -1:
                    path.insert(0, parent[path[0]])
                return path
            for d in succ.get(s, []):
                if d not in parent:
                    parent[d] = s
                    nxt.append(d)
        frontier = nxt
    raise AssertionError(f"no loop through segment {b}")


def test_a_path_file_that_fails_to_save_leaves_the_previous_one_whole(tmp_path):
    """A path that cannot be written (here a segment id that is no integer) used to leave the
    CSV truncated: the file was opened for writing before the first row was formatted."""
    g = generate_city(5, 5, seed=0)
    p = np.array([g.src[0], g.dst[0]])
    f = save_paths(tmp_path / "p.csv", [p, p])
    before = f.read_bytes()
    with pytest.raises(TypeError):
        save_paths(f, [p, np.array([g.src[0], None], dtype=object)])
    assert f.read_bytes() == before and len(load_paths(f, g)) == 2
    assert [q.name for q in tmp_path.iterdir()] == ["p.csv"]  # no temporary file left


def test_paths_roundtrip_and_validation(tmp_path):
    g = generate_city(5, 5, seed=0)
    p = np.array([g.src[0], g.dst[0]])
    f = save_paths(tmp_path / "p.csv", [p, p])
    got = load_paths(f, g)
    assert len(got) == 2 and np.array_equal(got[1], p)
    bad = tmp_path / "bad.csv"
    bad.write_text(f"path_id,segments\n0,{g.dst[0]} {g.src[0]} {g.src[0]}\n")
    with pytest.raises(ValueError, match="not a transition"):
        load_paths(bad, g)
    loop = _a_loop(g, int(g.src[0]))  # b -> ... (back to b)
    b = loop[0]
    # the destination absorbs: a path that starts there and comes back has probability 0
    bad.write_text("path_id,segments\n0," + " ".join(map(str, [*loop, b])) + "\n")
    with pytest.raises(ValueError, match=f"path 0 reaches its destination {b} at step 0"):
        load_paths(bad, g)
    f = save_paths(tmp_path / "q.csv", [np.array([*loop[1:], b])])  # the loop's last part fits
    assert np.array_equal(load_paths(f, g)[0], [*loop[1:], b])


def test_sampled_paths_follow_the_maxent_distribution():
    """Empirical path frequencies of the vectorized sampler match eq. 2 probabilities."""
    from tests.test_irl_maxent import random_graph

    n = 7
    src, dst, reward = random_graph(n, 2, 31, dag=True)
    mdp = GraphMDP(n, src, dst)
    g = RoadGraph(length_miles=np.ones(n), speed_mph=np.full(n, 30.0),
                  road_type=np.zeros(n, int), lanes=np.ones(n, int), x=np.zeros(n),
                  y=np.zeros(n), src=src, dst=dst, turn=np.zeros(src.size, int))
    logp, _ = maxent_policy(mdp, reward, [n - 1])
    rng = np.random.default_rng(0)
    W = 20000
    paths = sample_paths(g, logp, np.zeros(W, int), np.zeros(W, int), np.array([n - 1]), rng)
    _, _, _, by_actions = brute_force(n, src, dst, reward, 0, n - 1, n)
    probs: dict[tuple, float] = {}  # parallel actions give the same state path
    for acts, pr in by_actions.items():
        key = (0, *dst[list(acts)].tolist())
        probs[key] = probs.get(key, 0.0) + pr
    counts: dict[tuple, int] = {}
    for p in paths:
        counts[tuple(p.tolist())] = counts.get(tuple(p.tolist()), 0) + 1
    assert set(counts) <= set(probs)
    for key, pr in probs.items():
        se = np.sqrt(pr * (1 - pr) / W)
        assert abs(counts.get(key, 0) / W - pr) < 5 * se + 1e-4


def test_synthetic_drivers_respect_length_and_trip_radius():
    g = generate_city(15, 15, seed=2)
    mdp = GraphMDP(g.n_segments, g.src, g.dst)
    phi = g.action_features()
    dests = np.array([10, 200, 400])

    def policy(c, d):
        return maxent_policy(mdp, -(phi @ c), d)[0]

    demo = synthetic_drivers(g, np.ones(23), policy, 60, dests, seed=0, min_length=5,
                             max_trip_miles=0.6, epsilon=0.1, driver_sigma=0.3, n_drivers=3)
    assert len(demo.paths) == 60 and set(demo.driver.tolist()) == {0, 1, 2}
    for p in demo.paths:
        assert p.size >= 5 and p[-1] in dests
        mdp.action_index(p)  # every step is a transition
        assert np.hypot(g.x[p[0]] - g.x[p[-1]], g.y[p[0]] - g.y[p[-1]]) <= 0.6
