"""Series DAGs (the ``sublayer`` granularity) as a chain of cut nodes with gadget hops.

The ``sublayer`` DAG is a series composition (series-parallel digraphs: Valdes, Tarjan &
Lawler, "The recognition of series parallel digraphs", SIAM J. Comput. 11(2):298–313,
1982): the residual stream's nodes (``embed``, each
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

from typing import NamedTuple

import numpy as np

from core.cost import DEVICE
from core.instance import Instance, Placement

from .chain import ChainAnswer
from .chain_build import build_costs, build_memory, build_static

__all__ = ["series_cuts", "SeriesTables"]

_INF = float("inf")


def series_cuts(inst: Instance, composite: bool = False) -> list[int] | None:
    """The cut nodes c_0 < … < c_m of a series DAG (see the module docstring), or None
    when ``inst`` is not one (a chain is one, with no interior nodes).

    ``composite``: a gadget's interior may be several nodes (the ``head`` DAG's heads and
    their output projection) with one exit node feeding c_{j+1}; :class:`SeriesTables`
    then places each interior as a whole (one location, one DVFS level, one power level:
    a restriction, used by relaxed mode)."""
    n = inst.num_nodes
    preds, succs = inst.preds, inst.succs
    if n < 2 or preds[0] or succs[n - 1]:
        return None
    cuts, i = [0], 0
    while i < n - 1:
        nxt = None
        for c in range(i + 1, n):  # the first node that closes everything opened after i
            inner = range(i + 1, c)
            if len(inner) > (n if composite else 1):
                break
            if not set(succs[i]) <= set(range(i + 1, c + 1)):
                continue
            inside = set(inner)
            if not (set(preds[c]) <= inside | {i}
                    and all(set(preds[a]) <= inside | {i} and set(succs[a]) <= inside | {c} for a in inner)):
                continue
            exits = [a for a in inner if c in succs[a]]
            if (inner and len(exits) != 1) or (not inner and preds[c] != [i]):
                continue
            nxt = c
            break
        if nxt is None:
            return None
        cuts.append(nxt)
        i = nxt
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

    def __init__(self, inst: Instance, levels: bool = True, composite: bool = False) -> None:
        cuts = series_cuts(inst, composite)
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
        self.inter_need = np.array([float(self.need[cuts[j] + 1:cuts[j + 1]].sum()) for j in range(len(cuts) - 1)])
        """Memory of each gadget's interior (placed as a whole)."""
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
        key = [c2 - c, inst.out_bytes[c], tuple(self.allowed[c].tolist()), tuple(self.allowed[c2].tolist()),
               c in inst.preds[c2]]
        for a in range(c + 1, c2):
            key += [inst.out_bytes[a], tuple(inst.dev_time[a]), tuple(inst.dev_energy[a]), tuple(inst.srv_time[a]),
                    inst.kv_loc[a], inst.kv_move_bytes[a], tuple(self.allowed[a].tolist()), self.need[a],
                    c2 in inst.succs[a]]
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
        inner = range(c + 1, c2)
        exit_ = next(a for a in inner if c2 in inst.succs[a])
        out_a = inst.out_bytes[exit_]
        dur_a, dev_ja = inst.transfer_table(out_a)
        dur_a, dev_ja = dur_a[:, :, qs], dev_ja[:, :, qs]
        # the interior's compute (K, V), its nodes one after another at one location: device
        # at its DVFS levels, server k at its one speed
        comp_t = np.zeros((K, V))
        comp_e = np.zeros((K, V))
        mig_t = np.zeros((K, Q))
        mig_e = np.zeros((K, Q))
        up_mig = False
        for a in inner:
            comp_t[DEVICE] += np.asarray(inst.dev_time[a], dtype=float)[vs]
            comp_e[DEVICE] += np.asarray(inst.dev_energy[a], dtype=float)[vs]
            if K > 1:  # the idle power while a server computes is in pi·(ready − busy)
                comp_t[1:] += np.asarray(inst.srv_time[a], dtype=float)[:, None]
            # KV migrations to Y at the interior's power level q_a (the reconfiguration phase)
            src, size = inst.kv_loc[a], inst.kv_move_bytes[a]
            if src >= 0 and size > 0.0:
                md, mj = inst.transfer_table(size)
                mig_t = mig_t + md[src][:, qs]
                mig_e = mig_e + mj[src][:, qs] + pi * md[src][:, qs]
                up_mig = up_mig or src == DEVICE
        allowed_a = np.logical_and.reduce([self.allowed[a] for a in inner])
        X, Y, Z, v, qc, qa = np.meshgrid(np.arange(K), np.arange(K), np.arange(K), np.arange(V), np.arange(Q),
                                         np.arange(Q), indexing="ij")
        X, Y, Z, v, qc, qa = (m.reshape(-1) for m in (X, Y, Z, v, qc, qa))
        # c's output to the other locations of a and c2, ascending (device: one uplink, in order)
        up = X == DEVICE
        to_y = Y != X
        skip = c in inst.preds[c2]  # the residual edge c → c2 (absent: c2 waits for the interior only)
        to_z = (Z != X) & (Z != Y) & skip
        d_y = np.where(to_y, dur[X, Y, qc], 0.0)
        d_z = np.where(to_z, dur[X, Z, qc], 0.0)
        j_y = np.where(to_y, dev_j[X, Y, qc], 0.0)
        j_z = np.where(to_z, dev_j[X, Z, qc], 0.0)
        z_first = up & to_y & to_z & (Z < Y)  # the uplink sends to Z before Y
        arr_y = np.where(to_y, d_y + np.where(z_first, d_z, 0.0), 0.0)
        arr_z_c = np.where(Z == X, 0.0, np.where(Z == Y, arr_y, d_z + np.where(up & to_y & ~z_first, d_y, 0.0)))
        if not skip:
            arr_z_c = np.zeros_like(arr_z_c)
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
        used_qa = (a_up | (Y != DEVICE)) if up_mig else a_up
        ok = ((used_v | (v == V - 1)) & (used_qc | (qc == top_q)) & (used_qa | (qa == top_q))
              & self.allowed[c][X] & allowed_a[Y] & self.allowed[c2][Z])
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
        from .series_milp import CutMilp

        model = CutMilp(self, node_o, node_c, hop_o, hop_c, ret_o, ret_c, fronts, B, flow_connect=report_gap)
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

    def placement_of(self, cut_loc: list[int], cut_opt: list[int], hop_opt: list[int], node_o: np.ndarray,
                     hop_o: list[np.ndarray], ret_o: np.ndarray) -> tuple[Placement, float, float]:
        """The engine's placement of a cut-chain path (each cut position's location and node
        option, each hop's option), with its objective on ``node_o`` / ``hop_o`` / ``ret_o``
        and its makespan from the tables.  A one-option ``node_o`` (phase 1) means the
        highest levels."""
        n, m = self.n, len(self.cuts)
        vs, qs = self.vs, self.qs
        locs, dv, tx = [0] * n, [self.nf - 1] * n, [self.nq - 1] * n
        value = makespan = 0.0
        full = node_o.shape[2] > 1
        for p in range(m):
            i, k, o = self.cuts[p], cut_loc[p], cut_opt[p]
            value += float(node_o[p, k, o])
            if not full:
                o = self.node_t.shape[2] - 1
            makespan += float(self.node_t[i, k, o])
            locs[i] = k
            if k == DEVICE:
                dv[i] = int(vs[min(o, len(vs) - 1)])
            elif self.inst.kv_loc[i] == DEVICE and self.inst.kv_move_bytes[i] > 0.0:
                tx[i] = int(qs[min(o, len(qs) - 1)])
        value += float(ret_o[cut_loc[-1]])
        makespan += float(self.ret_t[cut_loc[-1]])
        for j in range(m - 1):
            h, f = self.hops[j], hop_opt[j]
            c = self.cuts[j]
            if int(h.X[f]) != cut_loc[j] or int(h.Z[f]) != cut_loc[j + 1]:
                raise RuntimeError("series model: a hop option does not join its cut nodes")
            if cut_loc[j] == DEVICE:
                tx[c] = int(qs[h.qc[f]])
            if h.Y[f] >= 0:
                y = int(h.Y[f])
                for a in range(c + 1, self.cuts[j + 1]):  # the interior as a whole
                    locs[a] = y
                    if y == DEVICE:
                        dv[a] = int(vs[h.va[f]])
                        tx[a] = int(qs[h.qa[f]])
                    elif self.inst.kv_loc[a] == DEVICE and self.inst.kv_move_bytes[a] > 0.0:
                        tx[a] = int(qs[h.qa[f]])
            value += float(hop_o[j][f])
            makespan += float(h.t[f])
        return Placement(locs, dv, tx), value, makespan
