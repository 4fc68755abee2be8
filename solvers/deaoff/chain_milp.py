"""The two LPs/MILPs of the chain tables (:mod:`.chain`) on HiGHS.

* :func:`master_lp`: the restricted master of the column generation that solves the chain's
  Lagrangian dual on the makespan and the binding capacities exactly (Dantzig–Wolfe
  decomposition; its duals are the multipliers).
* :func:`flow_milp`: the chain as a path-flow MILP, the exact fallback when the label search
  exceeds its budget.  Its LP relaxation equals that Lagrangian dual, far tighter than the
  general DAG model of :mod:`.milp`.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .milp import exact_mip, new_highs

__all__ = ["master_lp", "flow_milp", "FlowAnswer"]

_INF = float("inf")


class FlowAnswer(NamedTuple):
    path: object  # chain._Path | None
    gap: float


def master_lp(cols: list, timed: bool) -> tuple[float, np.ndarray]:
    """The restricted master LP: (its value, the duals (λ', μ'_k) ≥ 0 of its time and
    capacity rows, normalised).  An artificial column (cost 10× the largest) keeps it
    feasible."""
    import highspy

    obj = np.array([c[0] for c in cols] + [10.0 * max(abs(c[0]) for c in cols) + 1.0])
    mem = np.array([c[1] for c in cols] + [np.zeros_like(cols[0][1])]).T  # (d, P)
    rows = [np.ones(len(obj))]
    if timed:
        rows.append(np.array([c[2] for c in cols] + [0.0]))
    rows += list(mem)
    A = np.array(rows)
    nr, nc = A.shape
    h = new_highs(1)
    lower = np.r_[1.0, np.full(nr - 1, -highspy.kHighsInf)]
    upper = np.ones(nr)
    cs = A.T.reshape(-1)  # column-wise dense
    start = np.arange(0, nr * nc + 1, nr, dtype=np.int32)
    h.passModel(nc, nr, nr * nc, 1, 1, 0.0, obj, np.zeros(nc), np.full(nc, highspy.kHighsInf),
                lower, upper, start, np.tile(np.arange(nr, dtype=np.int32), nc), cs,
                np.zeros(nc, dtype=np.int32))
    h.run()
    sol = h.getSolution()
    duals = -np.asarray(sol.row_dual)[1:]
    return float(h.getInfo().objective_function_value), np.maximum(duals, 0.0)


def flow_milp(T, obj, con, B: float, upper: float, mip_rel_gap: float, time_limit_s: float | None,
              keep: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[str, FlowAnswer]:
    """The chain as a path-flow MILP on HiGHS: binaries u[i,k,o] (node i at k with option
    o) and z[i,k,l,q] (hop i → i+1 from k to l at level q), flow conservation, one row per
    binding capacity and (phase 2) one time row.  Its LP relaxation is the Lagrangian
    dual solved by :func:`master_lp`, far tighter than the general model.  ``T``: the
    :class:`~.chain.ChainTables`; ``obj`` / ``con``: its objective and time tables (``con``
    None in phase 1); ``keep``: the node and hop options that may be on a path better than
    ``upper`` (:meth:`~.chain.ChainTables.lagrangian_keep`), the others are left out.  Returns (HiGHS status, the path found (None if none) and its gap)."""
    import highspy

    n, K = T.n, T.K
    nodes, hops = T.fronts(obj, con)
    if keep is not None:
        kn, kh = keep
        nodes = [[[o for o in nodes[i][k] if kn[i, k, o]] for k in range(K)] for i in range(n)]
        hops = [[[[q for q in hops[i][k][l] if kh[i, k, l, q]] for l in range(K)] for k in range(K)]
                for i in range(n - 1)]
    timed = con is not None
    ct = con if timed else obj
    bind = list(T.binding)
    scale = max(abs(float(np.nanmin(np.where(np.isfinite(obj.node), obj.node, np.nan)))), 1e-300) * n
    cost, rows_r, rows_c, rows_v = [], [], [], []
    u_idx: dict[tuple[int, int], list[tuple[int, int]]] = {}
    z_list: list[tuple[int, int, int, int, int]] = []
    # row ids: 0 = start; out(i,k) = 1 + i*K + k; in(i,l) = 1 + n*K + i*K + l; then caps, time
    r_cap = {k: 1 + 2 * n * K + j for j, k in enumerate(bind)}
    r_time = 1 + 2 * n * K + len(bind)
    # Chvátal–Gomory rounding of each capacity row by a node size d that recurs (the
    # identical blocks): Σ floor(need_i / d)·u[i,k] ≤ floor(cap_k / d), valid for integral u;
    # it cuts off the fractional block the LP would otherwise squeeze into a location
    sizes, counts = np.unique(T.need, return_counts=True)
    divisors = [float(d) for d, c in zip(sizes, counts) if c > 1 and d > 0.0][-3:]
    r_cg = {}
    for k in bind:
        for d in divisors:
            r_cg[k, d] = r_time + (1 if timed else 0) + len(r_cg)
    nrows = r_time + (1 if timed else 0) + len(r_cg)

    def entry(r: int, c: int, v: float) -> None:
        rows_r.append(r)
        rows_c.append(c)
        rows_v.append(v)

    for i in range(n):
        for k in range(K):
            for o in nodes[i][k]:
                c = len(cost)
                u_idx.setdefault((i, k), []).append((o, c))
                val = obj.node[i, k, o] + (obj.ret[k] if i == n - 1 else 0.0)
                cost.append(val / scale)
                if i == 0:
                    entry(0, c, 1.0)
                if i < n - 1:
                    entry(1 + i * K + k, c, 1.0)
                if i > 0:
                    entry(1 + n * K + i * K + k, c, -1.0)
                if k in r_cap:
                    entry(r_cap[k], c, T.need[i] / T.cap[k])
                    for d in divisors:
                        if T.need[i] >= d:
                            entry(r_cg[k, d], c, float(math.floor(T.need[i] / d)))
                if timed:
                    entry(r_time, c, (ct.node[i, k, o] + (ct.ret[k] if i == n - 1 else 0.0)) / B)
    for i in range(n - 1):
        for k in range(K):
            if not nodes[i][k]:
                continue
            for l in range(K):
                if not nodes[i + 1][l]:
                    continue
                for q in hops[i][k][l]:
                    c = len(cost)
                    z_list.append((c, i, k, l, q))
                    cost.append(obj.hop[i, k, l, q] / scale)
                    entry(1 + i * K + k, c, -1.0)
                    entry(1 + n * K + (i + 1) * K + l, c, 1.0)
                    if timed and ct.hop[i, k, l, q] > 0.0:
                        entry(r_time, c, ct.hop[i, k, l, q] / B)
    nc = len(cost)
    integrality = np.ones(nc, dtype=np.int32)  # (continuous hops, integral by flow, measured slower)
    lo = np.zeros(nrows)
    hi = np.zeros(nrows)
    lo[0] = hi[0] = 1.0
    for r in list(r_cap.values()) + ([r_time] if timed else []):
        lo[r], hi[r] = -highspy.kHighsInf, 1.0
    for (k, d), r in r_cg.items():
        lo[r], hi[r] = -highspy.kHighsInf, float(math.floor(T.cap[k] / d))
    h = exact_mip(cost, np.ones(nc), lo, hi, rows_r, rows_c, rows_v, integrality, mip_rel_gap=mip_rel_gap,
                  upper=upper, scale=scale)
    if time_limit_s is not None:
        h.setOptionValue("time_limit", max(float(time_limit_s), 1e-3))
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    info = h.getInfo()
    if info.primal_solution_status != 2:
        return status, FlowAnswer(None, _INF)
    x = np.asarray(h.getSolution().col_value)
    loc, opt, hq = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), np.zeros(max(n - 1, 0), dtype=np.int64)
    for (i, k), cols in u_idx.items():
        for o, c in cols:
            if x[c] > 0.5:
                loc[i], opt[i] = k, o
    for c, i, k, l, q in z_list:
        if x[c] > 0.5:
            hq[i] = q
    gap = float(info.mip_gap) if math.isfinite(info.mip_gap) else _INF
    return status, FlowAnswer(T.path_type(loc, opt, hq), gap)
