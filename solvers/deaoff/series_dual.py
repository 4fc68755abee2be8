"""Relaxed mode on a series DAG: the Lagrangian dual of the cut chain (:mod:`.series`).

As the chain tables' dual (:meth:`.chain.ChainTables._dual`): the makespan bound and the
binding capacities are priced into the objective, and each price vector gives one
shortest path over (cut position, location), every gadget hop at its cheapest priced
option; the prices come from a master LP over the paths met so far (Dantzig–Wolfe column
generation, :func:`.chain_milp.master_lp`).  The best feasible path met (or the known
placement) is the answer, the best Lagrangian value its lower bound: a few dozen shortest
paths instead of a MILP.
"""
from __future__ import annotations

import numpy as np

from core.cost import memory_use
from core.instance import Placement

from .chain_milp import master_lp

__all__ = ["series_dual"]

_INF = float("inf")
ITERATIONS = 80


def series_dual(S, what: str, B: float, w, known: Placement, known_value: float, known_time_s: float):
    """(best placement, its objective, the Lagrangian lower bound) of one phase of the series
    tables ``S`` (``what``: "makespan", "energy" with bound ``B``, or "weighted" with ``w``),
    from a feasible ``known`` placement of objective ``known_value`` and makespan
    ``known_time_s``."""
    node_o, node_c, hop_o, hop_c, ret_o, ret_c, masks = S._objective(what, w)
    timed = node_c is not None
    K, m = S.K, len(S.cuts)
    bind = np.asarray(S.binding, dtype=np.int64)
    cap_b = S.cap[bind]
    cut_need = S.need[S.cuts]
    inter_need = S.inter_need.tolist()
    opts = {}  # per distinct hop table: its usable options
    for j in range(m - 1):
        key = (id(S.hops[j]), id(hop_o[j]))
        if key not in opts:
            opts[key] = np.flatnonzero(masks[j] & np.isfinite(hop_o[j]))
    cols: list[tuple[float, np.ndarray, float]] = []

    def share(mem: np.ndarray, t: float) -> tuple[np.ndarray, float]:
        return mem[bind] / cap_b, (t / B if timed else 0.0)

    used = np.asarray(memory_use(S.inst, known.loc), dtype=float)
    ms, ts = share(used, known_time_s)
    cols.append((known_value, ms, ts))
    best = (known_value, known)
    lam, mu = 0.0, np.zeros(K)
    dual = -_INF
    for _ in range(ITERATIONS):
        # priced node values and hop tables
        nc = node_o if not (timed and lam) else node_o + lam * node_c
        no = nc.argmin(axis=2)
        nv = nc.min(axis=2) + cut_need[:, None] * mu[None, :]
        rv = ret_o if not (timed and lam) else ret_o + lam * ret_c
        tables = {}
        hv, hf = [], []
        for j in range(m - 1):
            h = S.hops[j]
            key = (id(h), id(hop_o[j]), inter_need[j])
            if key not in tables:
                f = opts[(id(h), id(hop_o[j]))]
                val = hop_o[j][f] + (lam * hop_c[j][f] if timed and lam else 0.0)
                if inter_need[j] > 0.0:
                    val = val + mu[np.maximum(h.Y[f], 0)] * np.where(h.Y[f] >= 0, inter_need[j], 0.0)
                order = np.lexsort((f, val, h.X[f] * K + h.Z[f]))
                xz = (h.X[f] * K + h.Z[f])[order]
                first = np.r_[True, xz[1:] != xz[:-1]]
                table = np.full(K * K, _INF)
                pick = np.zeros(K * K, dtype=np.int64)
                table[xz[first]] = val[order][first]
                pick[xz[first]] = f[order][first]
                tables[key] = (table.reshape(K, K), pick.reshape(K, K))
            hv.append(tables[key][0])
            hf.append(tables[key][1])
        # shortest path over (cut position, location)
        D = nv[0]
        back = np.empty((m - 1, K), dtype=np.int64)
        for j in range(m - 1):
            tot = D[:, None] + hv[j]
            arg = tot.argmin(axis=0)
            back[j] = arg
            D = tot[arg, np.arange(K)] + nv[j + 1]
        end = D + rv
        k = int(end.argmin())
        val = float(end[k])
        loc = [0] * m
        loc[-1] = k
        for j in range(m - 2, -1, -1):
            k = int(back[j][k])
            loc[j] = k
        cut_opt = [int(no[p, loc[p]]) for p in range(m)]
        hop_opt = [int(hf[j][loc[j], loc[j + 1]]) for j in range(m - 1)]
        placement, obj, t = S.placement_of(loc, cut_opt, hop_opt, node_o, hop_o, ret_o)
        mem = np.asarray(memory_use(S.inst, placement.loc), dtype=float)
        L = val - (lam * B if timed else 0.0) - float((mu[bind] * cap_b).sum())
        dual = max(dual, L)
        if (mem <= S.cap).all() and (not timed or t <= B) and obj < best[0]:
            best = (obj, placement)
        ms, ts = share(mem, t)
        cols.append((obj, ms, ts))
        if not bind.size and not timed:
            break  # the unpriced shortest path is the optimum
        master, duals = master_lp(cols, timed)
        if master - dual <= 1e-9 * max(abs(master), 1e-300):
            break
        lam = duals[0] / B if timed else 0.0
        mu = np.zeros(K)
        mu[bind] = duals[int(timed):] / cap_b
    return best[1], best[0], dual
