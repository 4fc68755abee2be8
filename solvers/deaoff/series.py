"""Series DAGs (the ``sublayer`` granularity) as a chain of cut nodes with gadget hops.

The ``sublayer`` DAG is a series composition: the residual stream's nodes (``embed``, each
layer's two ``add`` nodes, ``head``) are cut nodes c_0 → c_1 → … → c_m, and between two
consecutive cut nodes sits at most one interior node a (``attn`` or ``mlp``) with
c_j → a → c_{j+1} and the skip edge c_j → c_{j+1}.  Under the engine's semantics
(:mod:`core.cost`) such a DAG costs a sum over its gadgets, exactly:

* every node before c_{j+1} in index order is its ancestor, and every transfer issued
  before c_j finishes carries data some node up to c_j needed, so when c_j finishes
  (time t_0) every processor and the uplink are free;
* from t_0 the gadget runs alone: c_j's output goes to the other locations of a and
  c_{j+1} (ascending; from the device over the shared uplink one after the other at
  c_j's power level), a starts when its input is there and runs, its output goes to
  c_{j+1}'s location (an upload waits for the uplink); c_{j+1} is ready when both
  inputs are there;
* so the gadget adds δ(X, Y, Z, levels) = (c_{j+1} ready) − t_0 to the makespan, with X,
  Y, Z the locations of c_j, a, c_{j+1}; the device energy is additive too (compute,
  transmit and receive energies, idle power during every moment the device does not
  compute); KV migrations are the engine's additive reconfiguration phase.

The cut nodes form a chain whose hops are the gadgets: a hop X → Z has options (Y, DVFS
level of a, power levels of c_j's and a's uploads) of (time, energy), each holding a's
memory at Y.  Such a chain is solved exactly by a path-flow MILP in which a periodic run
of cut positions (the layers: period 2, an attention gadget then an MLP gadget) is
aggregated into counts over states (phase in the period, location), as the identical
blocks of :mod:`.chain_runs`: an Euler trail of the state multigraph from the run's first
state to its last is a path, connectivity enforced by pair cuts up front and lazy cuts.
The tables are computed from the instance's own per-node figures and link coefficients
(``Instance.transfer_table``, the vectorised twin of ``Instance.transfer``); every
answer is re-evaluated by the cost engine by the caller, and the tests compare the
optima with brute force.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import NamedTuple

import numpy as np

from core.cost import DEVICE
from core.instance import Instance, Placement

from .chain import ChainAnswer
from .chain_build import build_costs, build_memory, build_static
from .milp import new_highs

__all__ = ["series_cuts", "SeriesTables"]

_INF = float("inf")
MAX_CUT_ROUNDS = 60


def series_cuts(inst: Instance) -> list[int] | None:
    """The cut nodes c_0 < … < c_m of a series DAG (see the module docstring), or None
    when ``inst`` is not one (a chain is one, with no interior nodes)."""
    n = inst.num_nodes
    preds, succs = inst.preds, inst.succs
    if n < 2 or preds[0] or succs[n - 1]:
        return None
    cuts, i = [0], 0
    while i < n - 1:
        s = succs[i]
        if s == [i + 1] and preds[i + 1] == [i]:  # a plain edge
            cuts.append(i + 1)
            i += 1
            continue
        a, c = i + 1, i + 2
        if (c < n and sorted(s) == [a, c] and preds[a] == [i] and succs[a] == [c]
                and sorted(preds[c]) == [i, a]):
            cuts.append(c)
            i = c
            continue
        return None
    return cuts


class _Hops(NamedTuple):
    """The options of one gadget hop: per option X, Z, the interior's location Y (−1: no
    interior), time, energy, whether every level is the highest, and the levels
    (v_a, q_c, q_a) to decode."""

    X: np.ndarray
    Z: np.ndarray
    Y: np.ndarray
    t: np.ndarray
    e: np.ndarray
    top: np.ndarray
    va: np.ndarray
    qc: np.ndarray
    qa: np.ndarray


class SeriesTables:
    """The cut chain of a series DAG: node tables of the cut nodes and the option lists of
    every gadget.  ValueError when ``inst`` is not a series DAG or a node fits nowhere."""

    def __init__(self, inst: Instance, levels: bool = True) -> None:
        cuts = series_cuts(inst)
        if cuts is None:
            raise ValueError("not a series DAG (cut nodes with at most one interior node between them)")
        self.inst, self.cuts = inst, cuts
        self.n, self.K = inst.num_nodes, inst.num_locations
        dev = inst.system.device
        self.nf, self.nq = len(dev.freqs_hz), len(dev.tx_powers_w)
        self.levels = levels
        st = build_static(inst, levels)
        mem = build_memory(inst)
        self.allowed, self.cap, self.need, self.binding = mem.allowed, mem.cap, mem.need, mem.binding
        self.vs, self.qs = st.vs, st.qs
        c = build_costs(inst, st, self.allowed)
        self.node_t, self.node_e, self.ret_t, self.ret_e = c.node_t, c.node_e, c.ret_t, c.ret_e
        cache: dict[tuple, _Hops] = {}  # the layers' gadgets are equal: one table each
        self.hops = []
        for j in range(len(cuts) - 1):
            key = self._gadget_key(cuts[j], cuts[j + 1])
            if key not in cache:
                cache[key] = self._gadget(cuts[j], cuts[j + 1])
            self.hops.append(cache[key])

    def _gadget_key(self, c: int, c2: int) -> tuple:
        """Everything a gadget's table reads (equal keys, equal tables)."""
        inst = self.inst
        key = [c2 - c, inst.out_bytes[c], tuple(self.allowed[c].tolist()), tuple(self.allowed[c2].tolist())]
        if c2 == c + 2:
            a = c + 1
            key += [inst.out_bytes[a], tuple(inst.dev_time[a]), tuple(inst.dev_energy[a]), tuple(inst.srv_time[a]),
                    inst.kv_loc[a], inst.kv_move_bytes[a], tuple(self.allowed[a].tolist()), self.need[a]]
        return tuple(key)

    # ------------------------------------------------------------------ gadget tables
    def _gadget(self, c: int, c2: int) -> _Hops:
        inst, K = self.inst, self.K
        pi = inst.system.device.idle_power_w
        qs, vs = self.qs, self.vs
        Q, V = len(qs), len(vs)
        out_c = inst.out_bytes[c]
        dur, dev_j = inst.transfer_table(out_c)  # (K, K, nq)
        dur, dev_j = dur[:, :, qs], dev_j[:, :, qs]
        top_q = Q - 1
        if c2 == c + 1:  # a plain edge: the chain hop c → c2
            X, Z, q = np.meshgrid(np.arange(K), np.arange(K), np.arange(Q), indexing="ij")
            t = dur[X, Z, q]
            e = dev_j[X, Z, q] + pi * t
            ok = self.allowed[c][X] & self.allowed[c2][Z] & ((X == DEVICE) | (q == top_q)) & ((X != Z) | (q == top_q))
            keep = ok.reshape(-1)
            f = lambda a: a.reshape(-1)[keep]  # noqa: E731
            return _Hops(f(X), f(Z), np.full(keep.sum(), -1), f(t), f(e), f(q == top_q), np.full(keep.sum(), V - 1),
                         f(q), np.full(keep.sum(), top_q))
        a = c + 1
        out_a = inst.out_bytes[a]
        dur_a, dev_ja = inst.transfer_table(out_a)
        dur_a, dev_ja = dur_a[:, :, qs], dev_ja[:, :, qs]
        # a's compute (K, V): device at its DVFS levels, server k at its one speed
        comp_t = np.empty((K, V))
        comp_e = np.empty((K, V))
        comp_t[DEVICE] = np.asarray(inst.dev_time[a], dtype=float)[vs]
        comp_e[DEVICE] = np.asarray(inst.dev_energy[a], dtype=float)[vs]
        if K > 1:
            comp_t[1:] = np.asarray(inst.srv_time[a], dtype=float)[:, None]
            comp_e[1:] = 0.0  # the idle power while a server computes is in pi·(ready − busy)
        # a's KV migration to Y at its power level q_a (additive, the reconfiguration phase)
        mig_t = np.zeros((K, Q))
        mig_e = np.zeros((K, Q))
        src, size = inst.kv_loc[a], inst.kv_move_bytes[a]
        if src >= 0 and size > 0.0:
            md, mj = inst.transfer_table(size)
            mig_t = md[src][:, qs]
            mig_e = mj[src][:, qs] + pi * mig_t
        X, Y, Z, v, qc, qa = np.meshgrid(np.arange(K), np.arange(K), np.arange(K), np.arange(V), np.arange(Q),
                                         np.arange(Q), indexing="ij")
        X, Y, Z, v, qc, qa = (m.reshape(-1) for m in (X, Y, Z, v, qc, qa))
        # c's output to the other locations of a and c2, ascending (device: one uplink, in order)
        up = X == DEVICE
        to_y = Y != X
        to_z = (Z != X) & (Z != Y)
        d_y = np.where(to_y, dur[X, Y, qc], 0.0)
        d_z = np.where(to_z, dur[X, Z, qc], 0.0)
        j_y = np.where(to_y, dev_j[X, Y, qc], 0.0)
        j_z = np.where(to_z, dev_j[X, Z, qc], 0.0)
        z_first = up & to_y & to_z & (Z < Y)  # the uplink sends to Z before Y
        arr_y = np.where(to_y, d_y + np.where(z_first, d_z, 0.0), 0.0)
        arr_z_c = np.where(Z == X, 0.0, np.where(Z == Y, arr_y, d_z + np.where(up & to_y & ~z_first, d_y, 0.0)))
        uplink_free = np.where(up, np.where(to_y, d_y, 0.0) + np.where(to_z, d_z, 0.0), 0.0)
        ct = comp_t[Y, v]
        f_a = arr_y + ct
        a_up = (Y == DEVICE) & (Z != Y)
        s_a = np.where(a_up, np.maximum(f_a, uplink_free), f_a)
        arr_z_a = np.where(Z == Y, f_a, s_a + dur_a[Y, Z, qa])
        ready = np.maximum(arr_z_c, arr_z_a)
        busy = np.where(Y == DEVICE, ct, 0.0)
        energy = (j_y + j_z + np.where(Z != Y, dev_ja[Y, Z, qa], 0.0) + comp_e[Y, v]
                  + pi * (ready - busy))
        # a's migration (the reconfiguration phase): its level is q_a
        t = ready + mig_t[Y, qa]
        e = energy + mig_e[Y, qa]
        # levels that cannot matter are kept at the highest only
        used_v = Y == DEVICE
        used_qc = up & (to_y | to_z)
        used_qa = (a_up | ((Y != DEVICE) & (src == DEVICE) & (size > 0.0))) if src >= 0 else a_up
        ok = ((used_v | (v == V - 1)) & (used_qc | (qc == top_q)) & (used_qa | (qa == top_q))
              & self.allowed[c][X] & self.allowed[a][Y] & self.allowed[c2][Z])
        top = (v == V - 1) & (qc == top_q) & (qa == top_q)
        k = ok
        return _Hops(X[k], Z[k], Y[k], t[k], e[k], top[k], v[k], qc[k], qa[k])

    # ------------------------------------------------------------------ the phases
    def _objective(self, what: str, w: tuple[float, float] | None):
        """(node obj (m+1, K, O), node time, hop obj list, hop time list, ret obj, ret time,
        hop option masks) of one phase."""
        cuts = self.cuts
        nt, ne = self.node_t[cuts], self.node_e[cuts]
        if what == "makespan":
            node_o, node_c = nt[..., -1:], None
            hop_o = [h.t for h in self.hops]
            masks = [h.top for h in self.hops]
            ret_o, ret_c = self.ret_t, None
            hop_c = None
        elif what == "energy":
            node_o, node_c = ne, nt
            hop_o, hop_c = [h.e for h in self.hops], [h.t for h in self.hops]
            masks = [np.ones(len(h.t), dtype=bool) for h in self.hops]
            ret_o, ret_c = self.ret_e, self.ret_t
        else:
            wt, we = w  # type: ignore[misc]
            combined: dict[int, np.ndarray] = {}

            def hop_comb(h: _Hops) -> np.ndarray:
                if id(h) not in combined:
                    combined[id(h)] = comb(h.t, h.e)
                return combined[id(h)]

            comb = lambda t, e: np.where(np.isfinite(t) & np.isfinite(e), wt * np.where(np.isfinite(t), t, 0.0)  # noqa: E731
                                         + we * np.where(np.isfinite(e), e, 0.0), _INF)
            node_o, node_c = comb(nt, ne), None
            hop_o, hop_c = [hop_comb(h) for h in self.hops], None
            masks = [np.ones(len(h.t), dtype=bool) for h in self.hops]
            ret_o, ret_c = comb(self.ret_t, self.ret_e), None
        return node_o, node_c, hop_o, hop_c, ret_o, ret_c, masks

    def fastest(self, **kw) -> ChainAnswer:
        return self._solve("makespan", _INF, None, **kw)

    def min_energy(self, bound_s: float, **kw) -> ChainAnswer:
        return self._solve("energy", bound_s, None, **kw)

    def min_weighted(self, w_time_per_s: float, w_energy_per_j: float, **kw) -> ChainAnswer:
        return self._solve("weighted", _INF, (w_time_per_s, w_energy_per_j), **kw)

    def _solve(self, what: str, B: float, w, *, upper: float = _INF, known: Placement | None = None,
               mip_rel_gap: float = 1e-9, time_limit_s: float | None = None, report_gap: bool = False) -> ChainAnswer:
        """One phase (``fastest`` / ``min_energy`` / ``min_weighted``): the MILP from the
        cut-off ``upper`` (the engine value of ``known``, a feasible placement returned when
        nothing beats it).  The answer's gap is 0 when HiGHS proves optimality within
        ``mip_rel_gap`` (the exact mode's reading, as the chain tables'), or the gap HiGHS
        reached when ``report_gap`` (relaxed mode, which stops at a looser gap)."""
        node_o, node_c, hop_o, hop_c, ret_o, ret_c, masks = self._objective(what, w)
        fronts, seen = [], {}
        for j in range(len(self.hops)):
            key = (id(self.hops[j]), id(hop_o[j]))
            if key not in seen:
                seen[key] = self._front(j, hop_o[j], None if hop_c is None else hop_c[j], masks[j])
            fronts.append(seen[key])
        model = _CutMilp(self, node_o, node_c, hop_o, hop_c, ret_o, ret_c, fronts, B, flow_connect=report_gap)
        status, sol = model.solve(upper, mip_rel_gap, time_limit_s)
        if sol is None:
            if known is not None:  # nothing better than the incumbent (proven unless stopped early)
                return ChainAnswer(upper, _INF, known, "series-milp", 0.0 if status == "Infeasible" else _INF)
            if status == "Infeasible":
                raise ValueError("no placement fits the memory budget: the nodes cannot be packed into "
                                 "the memory of the up locations")
            raise RuntimeError(f"HiGHS found no placement on the series model (status {status!r})")
        value, makespan, placement, gap = sol
        if status == "Optimal" and not report_gap:
            gap = 0.0
        if known is not None and upper < value:
            return ChainAnswer(upper, _INF, known, "series-milp", gap)
        return ChainAnswer(value, makespan, placement, "series-milp", gap)

    def _front(self, j: int, o: np.ndarray, tm: np.ndarray | None, mask: np.ndarray) -> np.ndarray:
        """Indices of the options of gadget j worth keeping: per (X, Y, Z) the Pareto
        options on (time, objective) (phase 1 / weighted: the least objective)."""
        h = self.hops[j]
        idx = np.flatnonzero(mask & np.isfinite(o))
        key = (h.X[idx] * self.K + h.Y[idx] + 1) * self.K + h.Z[idx]
        if tm is None:
            order = np.lexsort((idx, o[idx], key))
            k_sorted = key[order]
            first = np.r_[True, k_sorted[1:] != k_sorted[:-1]]
            return idx[order[first]]
        order = np.lexsort((idx, o[idx], tm[idx], key))
        keep = []
        cur, best = None, _INF
        for p in order:
            i = idx[p]
            if key[p] != cur:
                cur, best = key[p], _INF
            if o[i] < best:
                keep.append(i)
                best = o[i]
        return np.asarray(keep, dtype=np.int64)


class _CutMilp:
    """The path-flow MILP of the cut chain, its periodic runs aggregated (module docstring)."""

    def __init__(self, S: SeriesTables, node_o, node_c, hop_o, hop_c, ret_o, ret_c, fronts, B: float,
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
        a = S.cuts[j] + 1 if S.cuts[j + 1] == S.cuts[j] + 2 else -1
        need = S.need[a] if a >= 0 else 0.0
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
        import highspy

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
                mem(c, int(h.Y[f]), S.need[S.cuts[j] + 1], weight)
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
        nc, nr = len(cols_cost), len(rlo)
        order = np.lexsort((np.asarray(ec), np.asarray(er)))
        rr = np.asarray(er, dtype=np.int64)[order]
        start = np.searchsorted(rr, np.arange(nr + 1)).astype(np.int32)
        h = new_highs(1)
        h.setOptionValue("random_seed", 0)
        h.setOptionValue("presolve", "off")  # see chain_runs: its probing dominates on count models
        h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
        h.setOptionValue("mip_abs_gap", 1e-12)
        h.setOptionValue("mip_feasibility_tolerance", 1e-9)
        h.setOptionValue("primal_feasibility_tolerance", 1e-9)
        h.passModel(nc, nr, len(rr), 2, 1, 0.0, np.asarray(cols_cost), np.zeros(nc), np.asarray(cols_ub),
                    np.asarray(rlo), np.asarray(rhi), start, np.asarray(ec, dtype=np.int32)[order],
                    np.asarray(ev, dtype=float)[order], np.asarray(integral, dtype=np.int32))
        if upper < _INF:
            h.setOptionValue("objective_bound", upper / scale * (1 + 1e-7) + 1e-12)
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
        S, m = self.S, self.m
        n, K = S.n, S.K
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
        # the placement
        vs, qs = S.vs, S.qs
        locs, dv, tx = [0] * n, [S.nf - 1] * n, [S.nq - 1] * n
        value = makespan = 0.0
        full = self.node_o.shape[2] > 1
        for p in range(m):
            i, k, o = S.cuts[p], cut_loc[p], cut_opt[p]
            value += float(self.node_o[p, k, o])
            if not full:  # phase 1's tables: the one option is the highest level
                o = S.node_t.shape[2] - 1
            makespan += float(S.node_t[i, k, o])
            locs[i] = k
            if k == DEVICE:
                dv[i] = int(vs[min(o, len(vs) - 1)])
            elif S.inst.kv_loc[i] == DEVICE and S.inst.kv_move_bytes[i] > 0.0:
                tx[i] = int(qs[min(o, len(qs) - 1)])
        value += float(self.ret_o[cut_loc[-1]])
        makespan += float(S.ret_t[cut_loc[-1]])
        for j in range(m - 1):
            h, f = S.hops[j], hop_opt[j]
            c = S.cuts[j]
            if int(h.X[f]) != cut_loc[j] or int(h.Z[f]) != cut_loc[j + 1]:
                raise RuntimeError("series MILP: a hop option does not join its cut nodes")
            if cut_loc[j] == DEVICE:
                tx[c] = int(qs[h.qc[f]])
            if h.Y[f] >= 0:
                a, y = c + 1, int(h.Y[f])
                locs[a] = y
                if y == DEVICE:
                    dv[a] = int(vs[h.va[f]])
                    tx[a] = int(qs[h.qa[f]])
                elif S.inst.kv_loc[a] == DEVICE and S.inst.kv_move_bytes[a] > 0.0:
                    tx[a] = int(qs[h.qa[f]])
            value += float(self.hop_o[j][f])
            makespan += float(h.t[f])
        return Placement(locs, dv, tx), value, makespan
