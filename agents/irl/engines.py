"""Two numeric engines for the MaxEnt passes: scaled linear space and log space.

Both hold a batch of B non-negative vectors ("values", one column per destination) and offer the
same operations, so ``maxent.py`` writes each recursion once:

* ``back(V)``: ``V'(s) = sum_{a in A(s)} exp(r[a]) V(dst[a])``  (successor sum, [n, B])
* ``fwd(V)``: ``V'(s') = sum_{a: dst[a]=s'} exp(r[a]) V(src[a])``  (predecessor sum)
* ``acc(S, A, B)``: ``S + A * B`` (elementwise), ``acc_actions``: ``S + A[src] * B[dst]``.

LinearEngine keeps a value as ``(m, ls)`` with ``value = m * exp(ls)`` per column and ``max m = 1``
after each step: one SciPy CSR product per step, no overflow, underflow only when one column spans
more than ~1e300. LogEngine keeps ``log value`` and uses a segment logsumexp: exact for any range.
"""

from __future__ import annotations

import numpy as np


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """exp(a - b) with exp(-inf - -inf) = 0."""
    with np.errstate(invalid="ignore"):
        r = np.exp(a - b)
    return np.where(np.isnan(r), 0.0, r)


class LinearEngine:
    name = "linear"

    def __init__(self, mdp, reward: np.ndarray):
        self.mdp = mdp
        fin = np.isfinite(reward)
        self.shift = float(reward[fin].max()) if fin.any() else 0.0
        w = np.exp(reward - self.shift)  # [n_actions] in [0, 1]
        self.underflow = bool(np.any((w == 0.0) & fin))
        self.M = mdp.out_matrix(w)  # [n, n] successor sums
        self.MT = mdp.in_matrix(w)  # [n, n] predecessor sums

    def from_log(self, L: np.ndarray):
        ls = np.max(L, axis=0)  # [B]
        ls = np.where(np.isfinite(ls), ls, -np.inf)
        return np.asfortranarray(_ratio(L, ls)), ls

    def to_log(self, V) -> np.ndarray:
        m, ls = V
        with np.errstate(divide="ignore"):
            return np.log(m) + ls

    def to_log_rows(self, V, rows: np.ndarray) -> np.ndarray:
        m, ls = V
        with np.errstate(divide="ignore"):
            return np.log(m[rows]) + ls

    def n_reached(self, V) -> int:
        return int(np.count_nonzero(V[0]))

    @staticmethod
    def _normalize(m: np.ndarray, ls: np.ndarray):
        c = m.max(axis=0)  # [B]
        pos = c > 0
        if pos.all():
            m /= c
        else:
            m[:, pos] /= c[pos]
        ls = ls.copy()
        ls[pos] += np.log(c[pos])
        # An all-zero column is exactly 0: scale -inf, so it cannot drift by +shift per step
        # (positive rewards) and later swamp an accumulator it is merged into.
        ls[~pos] = -np.inf
        return m, ls

    @staticmethod
    def _spmm(M, m: np.ndarray) -> np.ndarray:
        """M @ m for [n, B] m, one CSR mat-vec per column (SciPy's multi-vector kernel is
        several times slower than B single products on this layout)."""
        if m.shape[1] == 1:
            return M @ m
        out = np.empty(m.shape, order="F")
        for j in range(m.shape[1]):
            out[:, j] = M @ np.ascontiguousarray(m[:, j])
        return out

    def back(self, V):
        m, ls = V
        return self._normalize(self._spmm(self.M, m), ls + self.shift)

    def fwd(self, V):
        m, ls = V
        return self._normalize(self._spmm(self.MT, m), ls + self.shift)

    def set_log(self, V, rows, cols, value: float):
        m, ls = V  # m is a fresh array from back(): updated in place
        new = np.maximum(ls, value)
        if (new != ls).any():
            m *= _ratio(ls, new)
        m[rows, cols] = np.exp(value - new[cols])
        return m, new

    def zero(self, V, rows, cols):
        if rows is not None:
            V[0][rows, cols] = 0.0
        return V

    @staticmethod
    def _merge(S, tm: np.ndarray, tls: np.ndarray):
        """S + tm * exp(tls), kept in S's scale unless the term is larger (S is updated)."""
        sm, sls = S
        new = np.maximum(sls, tls)
        if (new != sls).any():
            sm = sm * _ratio(sls, new)
        sm += tm * _ratio(tls, new)
        return sm, new

    def acc(self, S, A, Bv):
        if Bv is None:
            return self._merge(S, A[0], A[1])
        return self._merge(S, A[0] * Bv[0], A[1] + Bv[1])

    def acc_actions(self, S, A, Bv):
        return self._merge(S, A[0][self.mdp.src] * Bv[0][self.mdp.dst], A[1] + Bv[1])

    def log_dot(self, A, Bv) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(np.sum(A[0] * Bv[0], axis=0)) + A[1] + Bv[1]


def segment_logsumexp(vals: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Row-wise logsumexp of a CSR-ordered [nnz, B] array -> [n_rows, B] (-inf for empty rows)."""
    n = indptr.size - 1
    out = np.full((n, vals.shape[1]), -np.inf)
    counts = np.diff(indptr)
    nonempty = counts > 0
    if not nonempty.any():
        return out
    starts = indptr[:-1][nonempty]
    mx = np.maximum.reduceat(vals, starts, axis=0)  # [n_nonempty, B]
    mx = np.where(np.isfinite(mx), mx, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.add.reduceat(np.exp(vals - np.repeat(mx, counts[nonempty], axis=0)), starts, axis=0)
        out[nonempty] = np.log(s) + mx
    return out


class LogEngine:
    name = "log"
    underflow = False

    def __init__(self, mdp, reward: np.ndarray):
        self.mdp = mdp
        self.r_out = reward[mdp.out_order][:, None]  # [n_actions, 1], grouped by source
        self.dst_out = mdp.dst[mdp.out_order]
        self.r_in = reward[mdp.in_order][:, None]  # grouped by target
        self.src_in = mdp.src[mdp.in_order]

    def from_log(self, L: np.ndarray) -> np.ndarray:
        return np.array(L, dtype=np.float64)

    def to_log(self, V: np.ndarray) -> np.ndarray:
        return V

    def to_log_rows(self, V: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return V[rows]

    def n_reached(self, V: np.ndarray) -> int:
        return int(np.count_nonzero(np.isfinite(V)))

    def back(self, V: np.ndarray) -> np.ndarray:
        return segment_logsumexp(self.r_out + V[self.dst_out], self.mdp.out_indptr)

    def fwd(self, V: np.ndarray) -> np.ndarray:
        return segment_logsumexp(self.r_in + V[self.src_in], self.mdp.in_indptr)

    def set_log(self, V: np.ndarray, rows, cols, value: float) -> np.ndarray:
        V[rows, cols] = value
        return V

    def zero(self, V: np.ndarray, rows, cols) -> np.ndarray:
        if rows is not None:
            V[rows, cols] = -np.inf
        return V

    def acc(self, S: np.ndarray, A: np.ndarray, Bv) -> np.ndarray:
        return np.logaddexp(S, A if Bv is None else A + Bv)

    def acc_actions(self, S: np.ndarray, A: np.ndarray, Bv: np.ndarray) -> np.ndarray:
        return np.logaddexp(S, A[self.mdp.src] + Bv[self.mdp.dst])

    def log_dot(self, A: np.ndarray, Bv: np.ndarray) -> np.ndarray:
        L = A + Bv
        m = np.max(L, axis=0)
        ms = np.where(np.isfinite(m), m, 0.0)
        with np.errstate(divide="ignore"):
            return np.log(np.sum(np.exp(L - ms), axis=0)) + ms


def make_engine(space: str, mdp, reward: np.ndarray):
    if space == "linear":
        return LinearEngine(mdp, reward)
    if space == "log":
        return LogEngine(mdp, reward)
    raise ValueError(f"space must be 'linear' or 'log' (or 'auto' in visitation()), got {space!r}")
