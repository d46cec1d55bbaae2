"""Synthetic cities: a jittered street grid with a road hierarchy, diagonals and closed blocks.

Intersections sit on a ``rows x cols`` grid (lines 0.4-1.6 ``block_miles`` apart, jittered). Every
grid line has a road type (a few interstates, highways every 12 lines, arterials every 4,
collectors every 2, local streets otherwise) with matching speed and lane distributions; a
fraction of cells gets a diagonal local street (these create hard turns) and a fraction of local
streets is removed. Every street is two-way: two directed segments. Transitions join a segment
ending at an intersection to every segment leaving it except the U-turn; the turn type follows the
heading change. The graph is restricted to its largest strongly connected component so every
destination is reachable.

``pittsburgh`` size (280 x 280) gives > 300,000 segments and > 900,000 transitions.
"""

from __future__ import annotations

import numpy as np

from envs.road_graph import RoadGraph

PRESETS = {"tiny": (8, 8), "small": (30, 30), "medium": (100, 100), "pittsburgh": (280, 280)}

# per road type: speeds (mph) to draw from, lane counts to draw from
_SPEEDS = ((55, 60, 65), (45, 50, 55), (35, 40, 45), (25, 30, 35), (20, 25, 30))
_LANES = ((3, 4, 6), (2, 3, 4), (2, 3), (1, 2), (1,))


def _line_type(k: np.ndarray, n_lines: int) -> np.ndarray:
    """Road type of grid line k (0 interstate ... 4 local)."""
    t = np.full(k.shape, 4)
    t[k % 2 == 0] = 3
    t[k % 4 == 0] = 2
    t[k % 12 == 6] = 1
    inter = {n_lines // 3, (2 * n_lines) // 3} if n_lines >= 24 else {n_lines // 2}
    t[np.isin(k, list(inter))] = 0
    return t


def classify_turns(heading_in: np.ndarray, heading_out: np.ndarray) -> np.ndarray:
    """Turn type (index into envs.road_graph.TURNS) from headings in radians (y axis up):
    |change| < 30 deg straight, up to 120 deg left (+) / right (-), beyond: hard left / right."""
    d = np.angle(np.exp(1j * (heading_out - heading_in)))  # wrapped to (-pi, pi]
    a = np.abs(np.degrees(d))
    turn = np.where(d > 0, 1, 2)
    turn = np.where(a > 120.0, np.where(d > 0, 3, 4), turn)
    return np.where(a < 30.0, 0, turn)


def generate_city(rows: int = 30, cols: int = 30, seed: int = 0, block_miles: float = 0.1,
                  jitter: float = 0.2, diagonal_frac: float = 0.05,
                  removal_frac: float = 0.02) -> RoadGraph:
    """Build a synthetic city (see module doc). All work is vectorized over edges."""
    if rows < 3 or cols < 3:
        raise ValueError(f"a city needs at least 3 x 3 intersections, got {rows} x {cols}")
    if not (0 <= diagonal_frac <= 1 and 0 <= removal_frac < 0.5):
        raise ValueError("diagonal_frac must be in [0, 1] and removal_frac in [0, 0.5)")
    rng = np.random.default_rng(seed)
    node = np.arange(rows * cols).reshape(rows, cols)
    ii, jj = np.divmod(np.arange(rows * cols), cols)
    # irregular blocks: grid-line spacings vary 0.4x..1.6x (so miles and segment counts differ)
    gx = np.concatenate([[0.0], np.cumsum(rng.uniform(0.4, 1.6, cols - 1))])
    gy = np.concatenate([[0.0], np.cumsum(rng.uniform(0.4, 1.6, rows - 1))])
    px = (gx[jj] + jitter * rng.uniform(-0.5, 0.5, jj.size)) * block_miles
    py = (gy[ii] + jitter * rng.uniform(-0.5, 0.5, ii.size)) * block_miles
    row_type, col_type = _line_type(np.arange(rows), rows), _line_type(np.arange(cols), cols)
    # undirected streets: horizontal (type of the row), vertical (type of the column), diagonals
    hu, hv = node[:, :-1].ravel(), node[:, 1:].ravel()
    ht = np.repeat(row_type, cols - 1)
    vu, vv = node[:-1, :].ravel(), node[1:, :].ravel()
    vt = np.tile(col_type, rows - 1)
    cells = rng.random((rows - 1, cols - 1)) < diagonal_frac
    flip = rng.random((rows - 1, cols - 1)) < 0.5
    du = np.where(flip, node[:-1, 1:], node[:-1, :-1])[cells]
    dv = np.where(flip, node[1:, :-1], node[1:, 1:])[cells]
    u = np.concatenate([hu, vu, du])
    v = np.concatenate([hv, vv, dv])
    rtype = np.concatenate([ht, vt, np.full(du.size, 4)])
    keep = ~((rtype == 4) & (rng.random(u.size) < removal_frac))
    u, v, rtype = u[keep], v[keep], rtype[keep]
    # road attributes per street (shared by both directions)
    speed = np.empty(u.size)
    lanes = np.empty(u.size, dtype=np.int64)
    for t in range(5):
        sel = rtype == t
        speed[sel] = rng.choice(_SPEEDS[t], sel.sum())
        lanes[sel] = rng.choice(_LANES[t], sel.sum())
    # directed segments: both directions
    a = np.concatenate([u, v])
    b = np.concatenate([v, u])
    rtype, speed, lanes = np.tile(rtype, 2), np.tile(speed, 2), np.tile(lanes, 2)
    length = np.hypot(px[b] - px[a], py[b] - py[a])
    heading = np.arctan2(py[b] - py[a], px[b] - px[a])
    # transitions: segment s = (a -> b) to every segment t = (b -> c) with c != a
    order = np.argsort(a, kind="stable")
    ptr = np.concatenate([[0], np.cumsum(np.bincount(a, minlength=rows * cols))])
    cnt = ptr[b + 1] - ptr[b]  # [n_seg] out-degree at the end node
    s_rep = np.repeat(np.arange(a.size), cnt)
    off = np.arange(s_rep.size) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    t_rep = order[ptr[b[s_rep]] + off]
    ok = b[t_rep] != a[s_rep]  # no U-turns
    src, dst = s_rep[ok], t_rep[ok]
    turn = classify_turns(heading[src], heading[dst])
    # largest strongly connected component of the segment graph
    n_seg = a.size
    from scipy.sparse import csr_matrix  # here: `softq` loads this module for its --help
    from scipy.sparse.csgraph import connected_components

    G = csr_matrix((np.ones(src.size), (src, dst)), shape=(n_seg, n_seg))
    _, label = connected_components(G, directed=True, connection="strong")
    big = label == np.bincount(label).argmax()
    new_id = np.full(n_seg, -1)
    new_id[big] = np.arange(big.sum())
    keep_t = big[src] & big[dst]
    return RoadGraph(length_miles=length[big], speed_mph=speed[big], road_type=rtype[big],
                     lanes=lanes[big], x=(px[a] + px[b])[big] / 2, y=(py[a] + py[b])[big] / 2,
                     src=new_id[src[keep_t]], dst=new_id[dst[keep_t]], turn=turn[keep_t])


def generate_preset(name: str, seed: int = 0) -> RoadGraph:
    if name not in PRESETS:
        raise ValueError(f"unknown city size {name!r}; known: {', '.join(PRESETS)}")
    r, c = PRESETS[name]
    return generate_city(r, c, seed=seed)
