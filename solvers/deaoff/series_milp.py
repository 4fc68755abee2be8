"""The path-flow MILP of a series DAG's cut chain (:mod:`.series`), its periodic run of
layers aggregated into counts over states (phase in the period, location).

Cut positions outside the run and the hops between them are binaries (as in
:func:`.chain_milp.flow_milp`); inside the run r0..r1 (period P: an attention gadget then
an MLP gadget) the interior cut nodes become counts U[phase, k, option] and the hops
counts Z[(phase, X) → (phase + 1, Z), option], with flow conservation at every state.
An Euler trail of the state multigraph from r0's state to r1's is a path with the same
objective, time and memory use (the run's positions of one phase are interchangeable);
connectivity is enforced by pair cuts up front and lazy cuts on disconnected parts
("arcs out of a state of the part ≤ (r1 − r0 + 1)·(arcs into the part + [r0 in it])",
valid for every path), as in :mod:`.chain_runs`.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict

import numpy as np

from .milp import exact_mip

__all__ = ["CutMilp", "MAX_CUT_ROUNDS"]

_INF = float("inf")
MAX_CUT_ROUNDS = 60
"""Connectivity cut rounds before the model gives up (status "cut rounds exhausted")."""


class CutMilp:
    """The path-flow MILP of the cut chain, its periodic runs aggregated (module docstring)."""

    def __init__(self, S, node_o, node_c, hop_o, hop_c, ret_o, ret_c, fronts, B: float,
                 flow_connect: bool = False) -> None:
        self.S, self.node_o, self.node_c = S, node_o, node_c
        self.flow_connect = flow_connect
        self.hop_o, self.hop_c, self.ret_o, self.ret_c, self.fronts, self.B = hop_o, hop_c, ret_o, ret_c, fronts, B
        self.m = len(S.cuts)
        self._sigs: dict[tuple, tuple] = {}
        self.run = self._periodic_run()

    def _hop_sig(self, j: int) -> tuple:
        key = (id(self.S.hops[j]), id(self.hop_o[j]), id(self.fronts[j]))
        if key not in self._sigs:
            self._sigs[key] = self._hop_sig_value(j)
        return self._sigs[key]

    def _hop_sig_value(self, j: int) -> tuple:
        S, f = self.S, self.fronts[j]
        h = S.hops[j]
        need = float(S.inter_need[j])
        parts = [h.X[f], h.Y[f], h.Z[f], self.hop_o[j][f], h.va[f], h.qc[f], h.qa[f]]
        if self.hop_c is not None:
            parts.append(self.hop_c[j][f])
        return (need, tuple(np.concatenate(parts).tolist()))

    def _node_sig(self, p: int) -> tuple:
        S = self.S
        i = S.cuts[p]
        parts = [self.node_o[p].reshape(-1)] + ([] if self.node_c is None else [self.node_c[p].reshape(-1)])
        return (S.need[i], tuple(S.allowed[i].tolist()), tuple(np.concatenate(parts).tolist()))

    def _periodic_run(self):
        """The longest stretch of cut positions r0..r1 whose hops and interior positions
        repeat with period P (1 or 2): (r0, r1, P), or None when none is long enough."""
        m = self.m
        if m < 8:
            return None
        nsig = [self._node_sig(p) for p in range(m)]
        hsig = [self._hop_sig(j) for j in range(m - 1)]
        best = None
        for P in (1, 2):
            r0 = 0
            while r0 < m - 1:
                r1 = r0 + 1
                while r1 + 1 < m:
                    if r1 - P >= r0 and hsig[r1] != hsig[r1 - P]:  # the hop r1 → r1 + 1
                        break
                    if r1 - P >= r0 + 1 and nsig[r1] != nsig[r1 - P]:  # r1 becomes interior
                        break
                    r1 += 1
                if r1 - r0 - 1 >= 2 * P + 2 and (best is None or r1 - r0 > best[1] - best[0]):
                    best = (r0, r1, P)
                r0 = max(r1 - 1, r0 + 1)
        return best

    def solve(self, upper: float, mip_rel_gap: float, time_limit_s: float | None):
        """(HiGHS status, (objective, makespan, placement, gap) or None)."""
        S, K, m, B = self.S, self.S.K, self.m, self.B
        t_end = None if time_limit_s is None else time.process_time() + time_limit_s
        timed = self.node_c is not None
        bind = list(S.binding)
        # objective scale: a lower bound of the optimum (each node, hop and the return at its least)
        nmin = np.where(np.isfinite(self.node_o), self.node_o, _INF).min(axis=(1, 2))
        scale = float(nmin.sum()) + float(np.min(self.ret_o)) + sum(float(np.min(o[f])) for o, f in
                                                                    zip(self.hop_o, self.fronts) if len(f))
        scale = max(scale, 1e-300)
        run = self.run
        interior = set(range(run[0] + 1, run[1])) if run else set()
        cols_cost, cols_ub, integral = [], [], []
        rlo, rhi, er, ec, ev = [], [], [], [], []

        def col(cost: float, ub: float, is_int: bool = True) -> int:
            cols_cost.append(cost / scale)
            cols_ub.append(ub)
            integral.append(1 if is_int else 0)
            return len(cols_cost) - 1

        def row(lo: float, hi: float) -> int:
            rlo.append(lo)
            rhi.append(hi)
            return len(rlo) - 1

        def add(r: int, c: int, v: float) -> None:
            er.append(r)
            ec.append(c)
            ev.append(v)

        r_start = row(1.0, 1.0)
        r_cap = {k: row(-_INF, 1.0) for k in bind}
        r_time = row(-_INF, 1.0) if timed else None

        # Chvátal–Gomory rounding of each capacity row by a node size d that recurs (the
        # layers' attention and MLP nodes): Σ floor(need / d)·x ≤ floor(cap_k / d), valid
        # for integral x (as in chain_milp)
        sizes, counts = np.unique(S.need[S.need > 0.0], return_counts=True)
        divisors = [float(d) for d, c in zip(sizes, counts) if c > 1][-3:]
        r_cg = {(k, d): row(-_INF, float(math.floor(S.cap[k] / d))) for k in bind for d in divisors}

        def mem(c: int, k: int, need: float, weight: float = 1.0) -> None:
            if k in r_cap and need > 0.0:
                add(r_cap[k], c, weight * need / S.cap[k])
                for d in divisors:
                    if need >= d:
                        add(r_cg[k, d], c, weight * float(math.floor(need / d)))

        # cut nodes outside the run's interior: binaries u[p][k] = [(o, col)]
        u: dict[int, dict[int, list[tuple[int, int]]]] = {}
        for p in range(m):
            if p in interior:
                continue
            i = S.cuts[p]
            u[p] = {}
            for k in range(K):
                for o in range(self.node_o.shape[2]):
                    val = self.node_o[p, k, o]
                    if not math.isfinite(val):
                        continue
                    if timed and o and np.any((self.node_c[p, k, :o] <= self.node_c[p, k, o])
                                              & (self.node_o[p, k, :o] <= val)):
                        continue  # dominated by an earlier option
                    if not timed and o and np.any(self.node_o[p, k, :o] <= val):
                        continue
                    last = p == m - 1
                    c = col(val + (self.ret_o[k] if last else 0.0), 1.0)
                    u[p].setdefault(k, []).append((o, c))
                    if p == 0:
                        add(r_start, c, 1.0)
                    mem(c, k, S.need[i])
                    if timed:
                        add(r_time, c, (self.node_c[p, k, o] + (self.ret_c[k] if last else 0.0)) / B)

        def hop_entries(c: int, j: int, f: int, weight: float = 1.0) -> None:
            h = S.hops[j]
            if h.Y[f] >= 0:
                mem(c, int(h.Y[f]), float(S.inter_need[j]), weight)
            if timed and self.hop_c[j][f] > 0.0:
                add(r_time, c, weight * self.hop_c[j][f] / B)

        # hops between two single positions: binaries
        z: dict[int, list[tuple[int, int]]] = {}
        for j in range(m - 1):
            if j in interior or j + 1 in interior:
                continue
            out_row = {k: row(0.0, 0.0) for k in u[j]}
            in_row = {l: row(0.0, 0.0) for l in u[j + 1]}
            for k, cols in u[j].items():
                for _, c in cols:
                    add(out_row[k], c, 1.0)
            for l, cols in u[j + 1].items():
                for _, c in cols:
                    add(in_row[l], c, -1.0)
            h = S.hops[j]
            z[j] = []
            for f in self.fronts[j]:
                X, Z = int(h.X[f]), int(h.Z[f])
                if X not in out_row or Z not in in_row:
                    continue
                c = col(self.hop_o[j][f], 1.0)
                z[j].append((f, c))
                add(out_row[X], c, -1.0)
                add(in_row[Z], c, 1.0)
                hop_entries(c, j, f)
        # the periodic run: counts over states (phase, location)
        U: dict[tuple[int, int], list[tuple[int, int]]] = {}
        Zc: list[tuple[tuple[int, int], tuple[int, int], int, int, int]] = []  # (from, to, hop j, option, col)
        if run:
            r0, r1, P = run
            phase = lambda p: (p - r0) % P  # noqa: E731
            counts = defaultdict(int)
            for p in range(r0 + 1, r1):
                counts[phase(p)] += 1
            out_row, in_row = {}, {}
            for ph in range(P):
                rep = r0 + 1 + ((ph - 1) % P)  # an interior position of this phase
                if phase(rep) != ph:
                    rep = next(p for p in range(r0 + 1, r1) if phase(p) == ph)
                total = row(float(counts[ph]), float(counts[ph]))
                for k in range(K):
                    out_row[ph, k] = row(0.0, 0.0)
                    in_row[ph, k] = row(0.0, 0.0)
                    for o in range(self.node_o.shape[2]):
                        val = self.node_o[rep, k, o]
                        if not math.isfinite(val):
                            continue
                        if o and np.any(self.node_o[rep, k, :o] <= val) and (
                                not timed or np.any((self.node_c[rep, k, :o] <= self.node_c[rep, k, o])
                                                    & (self.node_o[rep, k, :o] <= val))):
                            continue
                        c = col(val, float(counts[ph]))
                        U.setdefault((ph, k), []).append((o, c))
                        add(total, c, 1.0)
                        add(out_row[ph, k], c, 1.0)
                        add(in_row[ph, k], c, -1.0)
                        mem(c, k, S.need[S.cuts[rep]])
                        if timed:
                            add(r_time, c, self.node_c[rep, k, o] / B)
            for k, cols in u[r0].items():
                for _, c in cols:
                    add(out_row[phase(r0), k], c, 1.0)
            for k, cols in u[r1].items():
                for _, c in cols:
                    add(in_row[phase(r1), k], c, -1.0)
            bound = float(r1 - r0)
            for ph in range(P):
                j = r0 + ph  # the hop from phase ph to phase ph + 1
                h = S.hops[j]
                for f in self.fronts[j]:
                    X, Z = int(h.X[f]), int(h.Z[f])
                    a, b = (ph, X), ((ph + 1) % P, Z)
                    c = col(self.hop_o[j][f], bound)
                    Zc.append((a, b, j, int(f), c))
                    add(out_row[a], c, -1.0)
                    add(in_row[b], c, 1.0)
                    hop_entries(c, j, int(f))
            # two states that trade among themselves only: cut up front
            arcs_from = defaultdict(list)
            for a, b, j, f, c in Zc:
                arcs_from[a].append(c)
            states = sorted(out_row)
            for a in states:
                for b in states:
                    if b <= a or (P > 1 and a[0] == b[0]):
                        continue
                    pair = {a, b}
                    into = [c for s, t, _, _, c in Zc if s not in pair and t in pair]
                    r0_in = [c for s in pair if s[0] == phase(r0) for _, c in u[r0].get(s[1], [])]
                    for v in pair:
                        lim = row(-_INF, 0.0)
                        for c in arcs_from[v]:
                            add(lim, c, 1.0)
                        for c in into + r0_in:
                            add(lim, c, -(bound + 1.0))
            if self.flow_connect:
                # single-commodity connectivity: the run's arcs carry (r1 − r0) units out of
                # r0's state, one left at each later state visit; flow only on used arcs
                bal = {st: row(0.0, 0.0) for st in states}
                for (ph, k), cols in U.items():
                    for _, c in cols:
                        add(bal[ph, k], c, -1.0)
                for k, cols in u[r1].items():
                    for _, c in cols:
                        add(bal[phase(r1), k], c, -1.0)
                for k, cols in u[r0].items():
                    for _, c in cols:
                        add(bal[phase(r0), k], c, bound)
                arc_cols = defaultdict(list)
                for a, b, j, f, c in Zc:
                    if a != b:
                        arc_cols[a, b].append(c)
                for (a, b), cs in arc_cols.items():
                    g = col(0.0, bound, is_int=False)
                    add(bal[b], g, 1.0)
                    add(bal[a], g, -1.0)
                    lim = row(-_INF, 0.0)
                    add(lim, g, 1.0)
                    for c in cs:
                        add(lim, c, -bound)
        h = exact_mip(cols_cost, cols_ub, rlo, rhi, er, ec, ev, integral, mip_rel_gap=mip_rel_gap,
                      upper=upper, scale=scale, presolve=False)  # see chain_runs: probing dominates
        for _ in range(MAX_CUT_ROUNDS):
            if t_end is not None:
                h.setOptionValue("time_limit", max(t_end - time.process_time(), 1e-3))
            h.run()
            status = h.modelStatusToString(h.getModelStatus())
            info = h.getInfo()
            if info.primal_solution_status != 2:
                return status, None
            x = np.asarray(h.getSolution().col_value)
            loc = {p: next(k for k, cols in u[p].items() for _, c in cols if x[c] > 0.5) for p in u}
            if run:
                r0, r1, P = run
                start_state = ((r0 - r0) % P, loc[r0])
                adj, used = defaultdict(set), set()
                for a, b, j, f, c in Zc:
                    if round(x[c]):
                        used.add(a)
                        adj[a].add(b)
                seen, stack = {start_state}, [start_state]
                while stack:
                    for b in adj[stack.pop()]:
                        if b not in seen:
                            seen.add(b)
                            stack.append(b)
                part = sorted(s for s in used if s not in seen)
                if part:
                    inside = set(part)
                    into = [c for s, t, _, _, c in Zc if s not in inside and t in inside]
                    r0_in = [c for s in part if s[0] == 0 for _, c in u[r0].get(s[1], [])]
                    for v in part:
                        outs = [c for s, t, _, _, c in Zc if s == v]
                        idx = outs + into + r0_in
                        vals = [1.0] * len(outs) + [-(r1 - r0 + 1.0)] * (len(into) + len(r0_in))
                        h.addRow(-_INF, 0.0, len(idx), np.asarray(idx, dtype=np.int32), np.asarray(vals))
                    continue
            gap = float(info.mip_gap) if math.isfinite(info.mip_gap) else _INF
            placement, value, makespan = self._decode(x, u, z, U, Zc, loc)
            return status, (value, makespan, placement, gap)
        return "cut rounds exhausted", None

    def _decode(self, x, u, z, U, Zc, loc):
        """The placement of a solution: cut nodes, interior nodes and levels; with its
        objective and time recomputed from the tables along the path."""
        m = self.m
        cut_loc = [0] * m
        cut_opt = [0] * m
        hop_opt: list[int] = [0] * (m - 1)
        for p, by_k in u.items():
            for k, cols in by_k.items():
                for o, c in cols:
                    if x[c] > 0.5:
                        cut_loc[p], cut_opt[p] = k, o
        for j, cols in z.items():
            for f, c in cols:
                if x[c] > 0.5:
                    hop_opt[j] = f
        if self.run:
            r0, r1, P = self.run
            arcs = defaultdict(list)
            for a, b, j, f, c in Zc:
                arcs[a] += [(b, f)] * int(round(x[c]))
            stack, trail = [((0, loc[r0]), -1)], []
            while stack:
                v, _ = stack[-1]
                if arcs[v]:
                    stack.append(arcs[v].pop())
                else:
                    trail.append(stack.pop())
            trail.reverse()
            if len(trail) != r1 - r0 + 1 or trail[-1][0] != ((r1 - r0) % P, loc[r1]):
                raise RuntimeError("series MILP: the hop counts do not form one trail (connectivity cut missed)")
            pool = {s: [o for o, c in cols for _ in range(int(round(x[c])))] for s, cols in U.items()}
            for step in range(1, len(trail)):
                (ph, k), f = trail[step]
                p = r0 + step
                hop_opt[p - 1] = f
                if p < r1:
                    cut_loc[p] = k
                    cut_opt[p] = pool[ph, k].pop()
        return self.S.placement_of(cut_loc, cut_opt, hop_opt, self.node_o, self.hop_o, self.ret_o)
