"""The chain's path-flow MILP with its runs of identical blocks aggregated (exact).

A decoder at ``block`` granularity is a chain whose middle is a run of identical blocks:
the same node options at every location, the same memory need, the same hop tables
between them.  The path-flow MILP of :mod:`.chain_milp` has one binary per block,
location and option, so its branch-and-bound wanders among the many placements that
differ only in which of the identical blocks go where.  Here a run r0..r1 keeps its two
end blocks as ordinary nodes and replaces the M = r1 − r0 − 1 blocks between them by
counts:

* U[k, o] ∈ {0..M}: how many of them run at location k with option o (Σ U = M);
* Z[k, l, q] ∈ {0..M+1}: how many of the M + 1 hops r0 → … → r1 go from k to l at level
  q (k = l: consecutive blocks at one location, a free hop);
* flow at every location k: [r0 at k] + U_k = Σ_l Z[k, l] (every visit but r1's is
  left once) and Σ_l Z[l, k] = U_k + [r1 at k] (every visit but r0's is entered once).

A count solution is a directed multigraph whose degrees admit an Euler trail from r0's
location to r1's; it is a real path when that graph is connected, which is enforced
lazily: a solution with a part the trail from r0 cannot reach gets the cut "arcs out of a
vertex m of that part ≤ (M + 1)·(arcs into the part + [r0 in the part])" (valid for every
path: a walk that starts outside the part and never enters it never leaves m) and is
solved again.  Since every block of the run has the same costs, any Euler trail of the
multigraph, with the counted options assigned to the visits in any order, is a path of
the same objective, time and memory use; conversely every path gives counts.  So the
model is exact, and its optima are the chain's optima.

Capacities, the Chvátal–Gomory rounding rows and phase 2's time row are those of
:func:`.chain_milp.flow_milp`, with a run's count U[k, ·] weighing need·U.
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from .chain_milp import FlowAnswer
from .milp import exact_mip

__all__ = ["identical_runs", "run_milp"]

_INF = float("inf")
MIN_RUN = 4
"""Runs of fewer nodes are left to the ordinary flow model (nothing to aggregate)."""
MAX_CUT_ROUNDS = 50
PAIR_CUTS = True
"""Connectivity cut rounds before giving up (then the ordinary flow model is used)."""


def identical_runs(T, obj, con) -> list[tuple[int, int]]:
    """Maximal runs r0..r1 (at least :data:`MIN_RUN` nodes) whose nodes have equal node
    tables (objective and time), memory needs and allowed locations, and whose hops
    r0 → r0+1 … r1−1 → r1 have equal tables."""
    ct = con if con is not None else obj
    n = T.n

    def same_node(i: int, j: int) -> bool:
        return (T.need[i] == T.need[j] and np.array_equal(T.allowed[i], T.allowed[j])
                and np.array_equal(obj.node[i], obj.node[j]) and np.array_equal(ct.node[i], ct.node[j]))

    def same_hop(i: int, j: int) -> bool:
        return np.array_equal(obj.hop[i], obj.hop[j]) and np.array_equal(ct.hop[i], ct.hop[j])

    runs, r0 = [], 0
    for i in range(1, n + 1):
        if i < n and same_node(i, r0) and (i == r0 + 1 or same_hop(i - 1, r0)):
            continue
        if i - r0 >= MIN_RUN:
            runs.append((r0, i - 1))
        r0 = i
    return runs


class _Model:
    """Columns and rows in triplet form, for one HiGHS model."""

    def __init__(self) -> None:
        self.cost: list[float] = []
        self.upper: list[float] = []
        self.rows_lo: list[float] = []
        self.rows_hi: list[float] = []
        self.r: list[int] = []
        self.c: list[int] = []
        self.v: list[float] = []
        self.integral: list[int] = []
        """Columns that are continuous after all (the name lists the exceptions)."""

    def col(self, cost: float, upper: float) -> int:
        self.cost.append(cost)
        self.upper.append(upper)
        return len(self.cost) - 1

    def row(self, lo: float, hi: float) -> int:
        self.rows_lo.append(lo)
        self.rows_hi.append(hi)
        return len(self.rows_lo) - 1

    def add(self, r: int, c: int, v: float) -> None:
        self.r.append(r)
        self.c.append(c)
        self.v.append(v)


def run_milp(T, obj, con, B: float, upper: float, mip_rel_gap: float, time_limit_s: float | None,
             runs: list[tuple[int, int]]) -> tuple[str, FlowAnswer] | None:
    """The chain's exact MILP with ``runs`` (from :func:`identical_runs`) aggregated (see
    the module docstring).  Arguments as :func:`.chain_milp.flow_milp`.  Returns (HiGHS
    status, the path found and its gap), or None when the connectivity cuts did not
    settle within :data:`MAX_CUT_ROUNDS` rounds."""
    import time


    t_end = None if time_limit_s is None else time.process_time() + time_limit_s
    n, K = T.n, T.K
    nodes, hops = T.fronts(obj, con)
    timed = con is not None
    ct = con if timed else obj
    bind = list(T.binding)
    finite = obj.node[np.isfinite(obj.node)]
    scale = max(abs(float(finite.min())) if finite.size else 1.0, 1e-300) * n
    interior = {}
    for j, (r0, r1) in enumerate(runs):
        for i in range(r0 + 1, r1):
            interior[i] = j
    m = _Model()
    row_start = m.row(1.0, 1.0)
    row_cap = {k: m.row(-_INF, 1.0) for k in bind}
    row_time = m.row(-_INF, 1.0) if timed else None
    sizes, counts = np.unique(T.need, return_counts=True)
    divisors = [float(d) for d, c in zip(sizes, counts) if c > 1 and d > 0.0][-3:]
    row_cg = {(k, d): m.row(-_INF, float(math.floor(T.cap[k] / d))) for k in bind for d in divisors}

    def node_entries(c: int, i: int, k: int, o: int, weight: float) -> None:
        """Capacity, rounding and time entries of ``weight`` node i's at (k, o)."""
        if k in row_cap:
            m.add(row_cap[k], c, weight * T.need[i] / T.cap[k])
            for d in divisors:
                if T.need[i] >= d:
                    m.add(row_cg[k, d], c, weight * float(math.floor(T.need[i] / d)))
        if timed:
            m.add(row_time, c, weight * (ct.node[i, k, o] + (ct.ret[k] if i == n - 1 else 0.0)) / B)

    # single nodes: binaries u[i, k, o]
    u: dict[int, dict[int, list[tuple[int, int]]]] = {}
    for i in range(n):
        if i in interior:
            continue
        u[i] = {}
        for k in range(K):
            for o in nodes[i][k]:
                c = m.col((obj.node[i, k, o] + (obj.ret[k] if i == n - 1 else 0.0)) / scale, 1.0)
                u[i].setdefault(k, []).append((o, c))
                if i == 0:
                    m.add(row_start, c, 1.0)
                node_entries(c, i, k, o, 1.0)
    # single hops i → i+1 (neither end inside a run): binaries z[i, k, l, q] and flow rows
    z: dict[int, list[tuple[int, int, int, int]]] = {}
    for i in range(n - 1):
        if i in interior or i + 1 in interior:
            continue
        out_row = {k: m.row(0.0, 0.0) for k in u[i]}
        in_row = {l: m.row(0.0, 0.0) for l in u[i + 1]}
        for k, cols in u[i].items():
            for _, c in cols:
                m.add(out_row[k], c, 1.0)
        for l, cols in u[i + 1].items():
            for _, c in cols:
                m.add(in_row[l], c, -1.0)
        z[i] = []
        for k in u[i]:
            for l in u[i + 1]:
                for q in hops[i][k][l]:
                    c = m.col(obj.hop[i, k, l, q] / scale, 1.0)
                    z[i].append((k, l, q, c))
                    m.add(out_row[k], c, -1.0)
                    m.add(in_row[l], c, 1.0)
                    if timed and ct.hop[i, k, l, q] > 0.0:
                        m.add(row_time, c, ct.hop[i, k, l, q] / B)
    # runs: counts U[j][k] = [(o, col)], Z[j] = [(k, l, q, col)]
    U: list[dict[int, list[tuple[int, int]]]] = []
    Z: list[list[tuple[int, int, int, int]]] = []
    for j, (r0, r1) in enumerate(runs):
        M = r1 - r0 - 1
        i_in = r0 + 1  # a representative interior node (all are equal)
        total = m.row(float(M), float(M))
        locs = [k for k in range(K) if nodes[i_in][k]]
        out_row = {k: m.row(0.0, 0.0) for k in locs}
        in_row = {k: m.row(0.0, 0.0) for k in locs}
        Uj: dict[int, list[tuple[int, int]]] = {}
        for k in locs:
            for o in nodes[i_in][k]:
                c = m.col(obj.node[i_in, k, o] / scale, float(M))
                Uj.setdefault(k, []).append((o, c))
                m.add(total, c, 1.0)
                m.add(out_row[k], c, 1.0)
                m.add(in_row[k], c, -1.0)
                node_entries(c, i_in, k, o, 1.0)
        for k, cols in u[r0].items():
            for _, c in cols:
                if k in out_row:
                    m.add(out_row[k], c, 1.0)
        for k, cols in u[r1].items():
            for _, c in cols:
                if k in in_row:
                    m.add(in_row[k], c, -1.0)
        Zj = []
        for k in locs:
            for l in locs:
                for q in (hops[r0][k][l] if k != l else hops[r0][k][l][:1]):
                    c = m.col(obj.hop[r0, k, l, q] / scale, float(M + 1))
                    Zj.append((k, l, q, c))
                    m.add(out_row[k], c, -1.0)
                    m.add(in_row[l], c, 1.0)
                    if timed and ct.hop[r0, k, l, q] > 0.0:
                        m.add(row_time, c, ct.hop[r0, k, l, q] / B)
        if PAIR_CUTS:
            # two locations that trade blocks between themselves only: cut up front
            for k in locs:
                for l in locs:
                    if l <= k:
                        continue
                    pair = {k, l}
                    into = [c for a_, b_, q, c in Zj if a_ not in pair and b_ in pair]
                    r0_in = [c for v in pair for _, c in u[r0].get(v, [])]
                    for v in pair:
                        lim = m.row(-_INF, 0.0)
                        for a_, b_, q, c in Zj:
                            if a_ == v:
                                m.add(lim, c, 1.0)
                        for c in into + r0_in:
                            m.add(lim, c, -(M + 1.0))
        U.append(Uj)
        Z.append(Zj)
    # r0 and r1 must sit where the run's blocks may (else the flow rows miss them)
    nc = len(m.cost)
    integrality = np.ones(nc, dtype=np.int32)
    integrality[m.integral] = 0
    # HiGHS's presolve (its probing on the counts) costs 2-10x the whole search on these
    # models (measured on 70B-class chains with 4-16 servers); the model is small already
    h = exact_mip(m.cost, m.upper, m.rows_lo, m.rows_hi, m.r, m.c, m.v, integrality, mip_rel_gap=mip_rel_gap,
                  upper=upper, scale=scale, presolve=False)
    for _ in range(MAX_CUT_ROUNDS):
        if t_end is not None:
            h.setOptionValue("time_limit", max(t_end - time.process_time(), 1e-3))
        h.run()
        status = h.modelStatusToString(h.getModelStatus())
        info = h.getInfo()
        if info.primal_solution_status != 2:
            return status, FlowAnswer(None, _INF)
        x = np.asarray(h.getSolution().col_value)
        loc = {i: next(k for k, cols in u[i].items() for _, c in cols if x[c] > 0.5) for i in u}
        cuts = 0
        for j, (r0, r1) in enumerate(runs):
            M = r1 - r0 - 1
            used = defaultdict(int)
            adj = defaultdict(set)
            for k, l, q, c in Z[j]:
                cnt = int(round(x[c]))
                if cnt:
                    used[k] += cnt
                    if k != l:
                        adj[k].add(l)
            seen, stack = {loc[r0]}, [loc[r0]]
            while stack:
                for l in adj[stack.pop()]:
                    if l not in seen:
                        seen.add(l)
                        stack.append(l)
            part = sorted(k for k in used if k not in seen)
            if not part:
                continue
            inside = set(part)
            into = [c for k, l, q, c in Z[j] if k not in inside and l in inside]
            r0_in = [c for k in part for _, c in u[r0].get(k, [])]
            for v in part:
                outs = [c for k, l, q, c in Z[j] if k == v]
                idx = outs + into + r0_in
                vals = [1.0] * len(outs) + [-(M + 1.0)] * (len(into) + len(r0_in))
                h.addRow(-_INF, 0.0, len(idx), np.asarray(idx, dtype=np.int32), np.asarray(vals))
                cuts += 1
        if cuts:
            continue
        return status, FlowAnswer(_path_of(T, runs, u, z, U, Z, x, loc), float(info.mip_gap)
                                  if math.isfinite(info.mip_gap) else _INF)
    return None


def _path_of(T, runs, u, z, U, Z, x, loc):
    """The chain path of a connected count solution: single nodes as solved, each run's
    blocks along an Euler trail of its hop multigraph (Hierholzer), options assigned
    from the counts."""
    n = T.n
    locs = np.zeros(n, dtype=np.int64)
    opt = np.zeros(n, dtype=np.int64)
    hq = np.zeros(max(n - 1, 0), dtype=np.int64)
    for i, by_k in u.items():
        for k, cols in by_k.items():
            for o, c in cols:
                if x[c] > 0.5:
                    locs[i], opt[i] = k, o
    for i, cols in z.items():
        for k, l, q, c in cols:
            if x[c] > 0.5:
                hq[i] = q
    for j, (r0, r1) in enumerate(runs):
        arcs = defaultdict(list)
        for k, l, q, c in Z[j]:
            arcs[k] += [(l, q)] * int(round(x[c]))
        # Hierholzer: an Euler trail from r0's location (it ends at r1's: the degrees)
        stack, trail = [(int(loc[r0]), -1)], []
        while stack:
            v, _ = stack[-1]
            if arcs[v]:
                stack.append(arcs[v].pop())
            else:
                trail.append(stack.pop())
        trail.reverse()
        if len(trail) != r1 - r0 + 1 or trail[-1][0] != loc[r1]:
            raise RuntimeError("run MILP: the hop counts do not form one trail (connectivity cut missed)")
        pool = {k: [o for o, c in cols for _ in range(int(round(x[c])))] for k, cols in U[j].items()}
        for step in range(1, len(trail)):
            v, q = trail[step]
            i = r0 + step
            hq[i - 1] = q
            if i < r1:
                locs[i] = v
                opt[i] = pool[v].pop()
    return T.path_type(locs, opt, hq)
