"""The chain model (the ``block`` DAG): exact shortest paths on numpy tables, memory-aware.

On a chain the engine's cost of a placement is additive along the path (no uplink
contention, KV migrations serial and additive), so with T the makespan and E the device
energy (idle power folded into every step that is not device computation):

* phase 1 (minimum T, highest levels) is a shortest path over (node, location);
* phase 2 (minimum E with T ≤ B, over locations, DVFS and transmit-power levels) is a
  resource-constrained shortest path.

The weighted-sum mode C = w_T·T + w_E·E is additive too: a shortest path on the combined
tables (:meth:`ChainTables.min_weighted`), with the memory steps below when capacities bind.

Memory capacities add one resource per location whose capacity some placement could
exceed (``binding``).  The tables solve both phases exactly in this order, stopping at the
first step that proves its answer: (1) the unconstrained shortest path (phase 2: each
node and hop at its cheapest level) when it meets the bound and the capacities; (2) phase
2 without binding memory: the Lagrangian dual on T by a walk of the lower convex hull of
the (T, E) paths; (3) the Lagrangian dual on T and on the binding capacities, solved
by column generation (a master LP over paths, priced by one shortest path on
``E + λ·T + Σ_k μ_k·memory_k``), whose feasible paths are incumbents; (4) a label search over (node, location) whose
labels carry (objective, time, memory used at each binding location), dropping dominated
labels and every label whose fastest completion breaks B, whose memory overflows, or
whose Lagrangian completion bound reaches the best objective known.  The label search is
exact; past ``label_budget`` labels it gives up and a MILP settles the phase: the chain's
MILP with its runs of identical blocks aggregated into counts (:mod:`.chain_runs`) when
the chain has such runs (a decoder's blocks), else the path-flow MILP
(:mod:`.chain_milp`).  Every answer is re-evaluated by the cost engine by the caller.

The tables come from ``Instance.transfer_table`` (``Instance.transfer`` for every link and
many byte counts at once: same coefficients, same formula), the instance's compute times,
:func:`core.cost.allowed_locations` (the placement rule) and :data:`core.cost.MEM_TOL`.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Union

import numpy as np

from core.cost import DEVICE, weighted_cost
from core.instance import Instance, Placement

from . import chain_milp, chain_runs
from .chain_build import TableCache, build_costs, build_memory, build_static

__all__ = ["ChainTables", "ChainAnswer"]

_INF = float("inf")
Known = Union[Placement, Callable[[], Union[Placement, None]], None]
"""A feasible placement at the highest levels, or a function making one (called only when
the unconstrained shortest path does not settle the phase)."""
MULTI_RESOURCE_LABEL_BUDGET = 2_000
"""Label budget when more than one capacity binds (measured on 70B-class chains: past a few
thousand labels the path-flow MILP is faster)."""


class ChainAnswer(NamedTuple):
    """An answer of the chain tables: its objective (makespan in phase 1, device energy in
    phase 2), makespan, placement, the step that settled it ("path", "hull", "dual",
    "labels", "runs-milp": the MILP with runs of identical blocks aggregated, "flow-milp")
    and its relative gap (0 when proven optimal)."""

    objective: float
    makespan_s: float
    placement: Placement
    how: str = "path"
    gap: float = 0.0


class _Costs(NamedTuple):
    """One criterion's tables: node (n, K, O), hop (n−1, K, K, Q), return (K,)."""

    node: np.ndarray
    hop: np.ndarray
    ret: np.ndarray


class _Path(NamedTuple):
    """A path of the tables: per node its location, node option and hop option."""

    loc: np.ndarray
    opt: np.ndarray
    hq: np.ndarray


class ChainTables:
    """Per-node and per-hop (time, device energy) options of a chain instance.

    A node that fits nowhere raises ValueError naming it (``allowed_locations``).
    ``binding`` lists the locations whose capacity some placement could exceed."""

    path_type = _Path

    def __init__(self, inst: Instance, levels: bool = True, cache: "TableCache | None" = None) -> None:
        n, K = inst.num_nodes, inst.num_locations
        dev = inst.system.device
        self.n, self.K, self.nf, self.nq = n, K, len(dev.freqs_hz), len(dev.tx_powers_w)
        self.inst = inst
        st = build_static(inst, levels) if cache is None else cache.static(inst, levels)
        mem = build_memory(inst) if cache is None else cache.memory(inst)  # names a node that fits nowhere
        self.allowed, self.cap, self.need, self.binding = mem.allowed, mem.cap, mem.need, mem.binding
        self.qs, self.vs = st.qs, st.vs
        c = build_costs(inst, st, self.allowed)
        self.node_t, self.node_e, self.hop_t, self.hop_e, self.ret_t, self.ret_e = c
        self.time = _Costs(self.node_t, self.hop_t, self.ret_t)
        self.energy = _Costs(self.node_e, self.hop_e, self.ret_e)
        self.time_top = _Costs(self.node_t[..., -1:], self.hop_t[..., -1:], self.ret_t)
        self._idx = np.arange(n)

    # ------------------------------------------------------------------ shortest paths
    def _path(self, nv: np.ndarray, hv: np.ndarray, rv: np.ndarray) -> tuple[float, np.ndarray]:
        """Shortest path through node values nv (n, K), hop values hv (n−1, K, K) and return
        values rv (K,): (its value, locations).  (Plain lists for a few locations, numpy rows
        for many: measured faster on each side of about 8 locations.)"""
        n = self.n
        if self.K <= 8:
            return self._path_lists(nv.tolist(), hv.tolist(), rv.tolist())
        D = nv[0]
        back = np.empty((n - 1, self.K), dtype=np.int64)
        for i in range(1, n):
            tot = D[:, None] + hv[i - 1]
            arg = tot.argmin(axis=0)
            back[i - 1] = arg
            D = tot[arg, np.arange(self.K)] + nv[i]
        end = D + rv
        k = int(end.argmin())
        loc = np.empty(n, dtype=np.int64)
        loc[-1] = k
        for i in range(n - 1, 0, -1):
            k = int(back[i - 1][k])
            loc[i - 1] = k
        return float(end[loc[-1]]), loc

    def _path_lists(self, nv: list, hv: list, rv: list) -> tuple[float, np.ndarray]:
        if self.K == 2:
            return self._path_two(nv, hv, rv)
        rng = range(self.K)
        D = nv[0]
        back = []
        for i in range(1, self.n):
            h, nd = hv[i - 1], nv[i]
            newD, arg = [_INF] * self.K, [0] * self.K
            for l in rng:
                best, bk = _INF, 0
                for k in rng:
                    v = D[k] + h[k][l]
                    if v < best:
                        best, bk = v, k
                newD[l], arg[l] = best + nd[l], bk
            back.append(arg)
            D = newD
        k = min(rng, key=lambda l: D[l] + rv[l])
        val = D[k] + rv[k]
        loc = [k] * self.n
        for i in range(self.n - 1, 0, -1):
            k = back[i - 1][k]
            loc[i - 1] = k
        return val, np.asarray(loc, dtype=np.int64)

    def _path_two(self, nv: list, hv: list, rv: list) -> tuple[float, np.ndarray]:
        """:meth:`_path_lists` unrolled for two locations (one server: the environment's
        default): the same sums in the same order, ties to the lower location."""
        d0, d1 = nv[0]
        back = []
        for (h0, h1), (n0, n1) in zip(hv, nv[1:]):
            a, b = d0 + h0[0], d1 + h1[0]
            c, d = d0 + h0[1], d1 + h1[1]
            k0 = 0 if a <= b or b != b else 1
            k1 = 0 if c <= d or d != d else 1
            back.append((k0, k1))
            d0 = (a if k0 == 0 else b) + n0
            d1 = (c if k1 == 0 else d) + n1
        e0, e1 = d0 + rv[0], d1 + rv[1]
        k = 0 if e0 <= e1 else 1
        val = e0 if k == 0 else e1
        loc = [k] * self.n
        for i in range(self.n - 1, 0, -1):
            k = back[i - 1][k]
            loc[i - 1] = k
        return val, np.asarray(loc, dtype=np.int64)

    def _weighted(self, obj: _Costs, con: _Costs | None, lam: float, mu: np.ndarray | None):
        """Per node and hop the best option under obj + λ·con (+ μ_k·need at k): values
        (n, K), options, hop values (n−1, K, K), hop options, return values (K,)."""
        nc = obj.node if con is None or not lam else obj.node + lam * con.node
        hc = obj.hop if con is None or not lam else obj.hop + lam * con.hop
        rv = obj.ret if con is None or not lam else obj.ret + lam * con.ret
        no, ho = nc.argmin(axis=2), hc.argmin(axis=3)
        nv = nc.min(axis=2)  # = the entries at the argmins
        if mu is not None:
            nv = nv + self.need[:, None] * mu[None, :]
        return nv, no, hc.min(axis=3), ho, rv

    def _sum(self, c: _Costs, p: _Path) -> float:
        idx = self._idx
        return (float(c.node[idx, p.loc, p.opt].sum()) + float(c.hop[idx[:-1], p.loc[:-1], p.loc[1:], p.hq].sum())
                + float(c.ret[p.loc[-1]]))

    def _lam_path(self, obj: _Costs, con: _Costs | None, lam: float, mu: np.ndarray | None = None):
        """The path minimising obj + λ·con (+ μ·memory): (path, its weighted value)."""
        nv, no, hv, ho, rv = self._weighted(obj, con, lam, mu)
        val, loc = self._path(nv, hv, rv)
        idx = self._idx
        return _Path(loc, no[idx, loc], ho[idx[:-1], loc[:-1], loc[1:]]), val

    def _mem(self, loc: np.ndarray) -> np.ndarray:
        return np.bincount(loc, weights=self.need, minlength=self.K)

    def _fits(self, loc: np.ndarray) -> bool:
        if not self.binding:  # no location can overflow, whatever goes where
            return True
        return bool((self._mem(loc) <= self.cap).all())

    def placement(self, p: _Path) -> Placement:
        """The engine's placement of a path (levels that cannot matter at the highest)."""
        n, vs, qs = self.n, self.vs.tolist(), self.qs.tolist()
        loc, opt, hq = p.loc.tolist(), p.opt.tolist(), p.hq.tolist()
        dv, tx = [self.nf - 1] * n, [self.nq - 1] * n
        kv_loc, kv_move = self.inst.kv_loc, self.inst.kv_move_bytes
        for i in range(n):
            k = loc[i]
            if k == DEVICE:
                dv[i] = int(vs[min(opt[i], len(vs) - 1)])
                if i + 1 < n and loc[i + 1] != DEVICE:
                    tx[i] = int(qs[min(hq[i], len(qs) - 1)])
            elif kv_loc[i] == DEVICE and kv_move[i] > 0.0:
                tx[i] = int(qs[min(opt[i], len(qs) - 1)])
        return Placement(loc, dv, tx)

    def _answer(self, obj: _Costs, con: _Costs | None, p: _Path) -> ChainAnswer:
        t = self._sum(con if con is not None else (obj if obj is self.time_top else self.time), p)
        top = p
        if obj.node.shape[2] == 1:  # the top-level tables: option 0 is the highest level
            top = _Path(p.loc, np.full(self.n, self.node_t.shape[2] - 1), np.full(self.n - 1, len(self.qs) - 1))
        return ChainAnswer(self._sum(obj, p), t, self.placement(top))

    # ------------------------------------------------------------------ the two phases
    def fastest(self, *, known: Known = None, label_budget: int = 20_000,
                mip_rel_gap: float = 1e-9, time_limit_s: float | None = None,
                flow_milp: bool = True) -> ChainAnswer | None:
        """Phase 1: the minimum makespan at the highest levels under the capacities
        (``known``: a feasible placement at the highest levels, for pruning).  Past
        ``label_budget`` labels the path-flow MILP settles it (``mip_rel_gap``,
        ``time_limit_s``; on expiry the answer's gap is HiGHS's); with ``flow_milp=False``
        the best feasible path met is returned instead ("incumbent", its gap to the
        Lagrangian dual bound, inf without one, never 0; None if none).  ValueError when nothing fits."""
        return self._solve(self.time_top, None, _INF, known, label_budget, mip_rel_gap, time_limit_s, flow_milp)

    def min_energy(self, bound_s: float, *, known: Known = None, label_budget: int = 20_000,
                   mip_rel_gap: float = 1e-9, time_limit_s: float | None = None,
                   flow_milp: bool = True) -> ChainAnswer | None:
        """Phase 2: the minimum device energy with makespan ≤ ``bound_s`` (already inflated
        by the caller's tolerance) under the capacities (``known``: a feasible placement at
        the highest levels, e.g. phase 1's); the other arguments as in :meth:`fastest`."""
        return self._solve(self.energy, self.time, bound_s, known, label_budget, mip_rel_gap, time_limit_s,
                           flow_milp)

    def weighted_costs(self, w_time_per_s: float, w_energy_per_j: float) -> _Costs:
        """The tables of C = w_T·T + w_E·E (:func:`core.cost.weighted_cost` per step: both
        criteria are additive along the chain, so C is too); a location a node may not use
        stays at +inf whatever the weights."""
        def comb(t: np.ndarray, e: np.ndarray) -> np.ndarray:
            if w_time_per_s > 0 and w_energy_per_j > 0:  # inf stays inf: no 0·inf to guard
                return weighted_cost(t, e, w_time_per_s=w_time_per_s, w_energy_per_j=w_energy_per_j)
            out = weighted_cost(np.where(np.isfinite(t), t, 0.0), np.where(np.isfinite(e), e, 0.0),
                                w_time_per_s=w_time_per_s, w_energy_per_j=w_energy_per_j)
            return np.where(np.isfinite(t) & np.isfinite(e), out, _INF)

        return _Costs(comb(self.node_t, self.node_e), comb(self.hop_t, self.hop_e), comb(self.ret_t, self.ret_e))

    def min_weighted(self, w_time_per_s: float, w_energy_per_j: float, *, known: Known = None,
                     label_budget: int = 20_000, mip_rel_gap: float = 1e-9,
                     time_limit_s: float | None = None, flow_milp: bool = True) -> ChainAnswer | None:
        """The minimum weighted cost C = w_T·T + w_E·E over locations and levels under the
        capacities: one shortest path on the combined tables when memory does not bind,
        else the memory-aware steps (dual, labels, flow MILP) of :meth:`fastest` on them.
        The answer's objective is C, its ``makespan_s`` the path's makespan; ``flow_milp``
        as in :meth:`fastest`."""
        obj = self.weighted_costs(w_time_per_s, w_energy_per_j)
        return self._solve(obj, None, _INF, known, label_budget, mip_rel_gap, time_limit_s, flow_milp)

    def _path_of(self, placement: Placement, top_only: bool) -> _Path:
        """The tables' path of a placement at the highest levels."""
        loc = np.asarray(placement.loc, dtype=np.int64)
        top_o = 0 if top_only else self.node_t.shape[2] - 1
        top_q = 0 if top_only else len(self.qs) - 1
        return _Path(loc, np.full(self.n, top_o), np.full(self.n - 1, top_q))

    def _solve(self, obj: _Costs, con: _Costs | None, B: float, known: Known,
               budget: int, mip_rel_gap: float, time_limit_s: float | None, flow_milp: bool = True) -> ChainAnswer | None:
        p, _ = self._lam_path(obj, con, 0.0)
        first = self._answer(obj, con, p)
        if first.makespan_s <= B and self._fits(p.loc):  # the unconstrained minimum is feasible
            return first
        best: ChainAnswer | None = None
        upper = _INF
        if callable(known):
            known = known()

        def offer(q: _Path) -> None:
            nonlocal best, upper
            a = self._answer(obj, con, q)
            if a.makespan_s <= B and self._fits(q.loc) and (best is None or a.objective < best.objective):
                best = a
                upper = min(upper, a.objective)

        if known is not None:
            offer(self._path_of(known, obj is self.time_top))
        lam, dual = 0.0, -_INF
        if con is not None:
            lam, dual = self._hull(obj, con, B, offer)
            if not self.binding and best is not None and dual >= best.objective * (1 - 1e-12):
                return best._replace(how="hull")
        mu = None
        if self.binding:
            known_paths = [self._path_of(known, obj is self.time_top)] if known is not None else []
            lam, mu, dual = self._dual(obj, con, B, offer, known_paths)
            if best is not None and dual >= best.objective * (1 - 1e-12):
                return best._replace(how="dual")
        if len(self.binding) > 1:  # memory vectors rarely dominate each other: the flow MILP sooner
            budget = min(budget, MULTI_RESOURCE_LABEL_BUDGET)
        found = self._labels(obj, con, B, upper, lam, mu, budget)
        if found == "none":  # nothing beats the incumbent (or nothing is feasible)
            if best is None:
                raise ValueError("no placement fits the memory budget: the nodes cannot be packed into "
                                 "the memory of the up locations")
            return best._replace(how="labels")
        if found is not None:
            return found._replace(how="labels")
        if not flow_milp:  # the best feasible path met, with its gap to the Lagrangian dual
            if best is None:
                return None
            gap = max(0.0, (best.objective - dual) / best.objective) if math.isfinite(dual) and best.objective > 0 else _INF
            return best._replace(how="incumbent", gap=gap if gap > 0.0 else 1e-300)
        runs = chain_runs.identical_runs(self, obj, con)
        out = chain_runs.run_milp(self, obj, con, B, upper, mip_rel_gap, time_limit_s, runs) if runs else None
        how = "runs-milp"
        if out is None:
            how = "flow-milp"
            keep = self.lagrangian_keep(obj, con, B, lam, mu, upper) if upper < _INF else None
            out = chain_milp.flow_milp(self, obj, con, B, upper, mip_rel_gap, time_limit_s, keep)
        status, x = out
        ans = None if x.path is None else self._answer(obj, con, x.path)
        gap = x.gap
        if status == "Infeasible":
            if best is None:
                raise ValueError("no placement fits the memory budget: the nodes cannot be packed into "
                                 "the memory of the up locations")
            return best._replace(how=how)  # nothing beats the incumbent
        if ans is None or (best is not None and best.objective < ans.objective):
            if best is None:
                raise RuntimeError(f"HiGHS found no placement on the chain flow model (status {status!r})")
            ans = best
        return ans._replace(how=how, gap=0.0 if status == "Optimal" else max(gap, 0.0))

    def _hull(self, obj: _Costs, con: _Costs, B: float, offer) -> tuple[float, float]:
        """Lagrangian dual on the makespan without memory: walk the lower convex hull of the
        (T, E) paths between the fastest and the cheapest; (λ*, dual bound)."""
        pc, _ = self._lam_path(obj, con, 0.0)
        pf, _ = self._lam_path(self.time_top, None, 0.0)
        pf = _Path(pf.loc, np.full(self.n, self.node_t.shape[2] - 1), np.full(self.n - 1, len(self.qs) - 1))
        offer(pf)
        left = (self._sum(con, pf), self._sum(obj, pf))
        right = (self._sum(con, pc), self._sum(obj, pc))
        if left[0] > B:
            raise ValueError("the latency bound is below the fastest path's makespan")
        lam, dual = 0.0, -_INF
        for _ in range(64):
            if right[0] <= left[0]:
                break
            lam = (left[1] - right[1]) / (right[0] - left[0])
            p, val = self._lam_path(obj, con, lam)
            offer(p)
            t, e = self._sum(con, p), self._sum(obj, p)
            dual = max(dual, val - lam * B)
            if val >= (left[1] + lam * left[0]) * (1 - 1e-12) - 1e-300:
                break
            if t <= B:
                left = (t, e)
            else:
                right = (t, e)
        return lam, dual

    def _dual(self, obj: _Costs, con: _Costs | None, B: float, offer, known: list[_Path],
              iterations: int = 300) -> tuple[float, np.ndarray, float]:
        """The Lagrangian dual on the makespan (phase 2) and the binding capacities, solved
        exactly by column generation (Dantzig–Wolfe; Kelley's cutting planes on the dual):
        a master LP over the paths met so far (convexity, Σ memory_k·w ≤ cap_k, Σ T·w ≤ B),
        priced by one shortest path on ``obj + λ·T + Σ_k μ_k·memory_k`` with the master's
        duals.  Returns (λ, μ per location in objective units per byte, the best dual
        bound); every path priced is offered as an incumbent."""
        K, bind = self.K, np.asarray(self.binding, dtype=np.int64)
        cap_b = self.cap[bind]
        timed = con is not None
        cols: list[tuple[float, np.ndarray, float]] = []  # (objective, memory share, time share)

        def add(p: _Path) -> None:
            cols.append((self._sum(obj, p), self._mem(p.loc)[bind] / cap_b,
                         self._sum(con, p) / B if timed else 0.0))

        for p in known:
            add(p)
        best = (-_INF, 0.0, np.zeros(K))
        lam, mu = 0.0, np.zeros(K)
        for _ in range(iterations):
            p, val = self._lam_path(obj, con, lam, mu)
            offer(p)
            L = val - (lam * B if timed else 0.0) - float((mu[bind] * cap_b).sum())
            if L > best[0]:
                best = (L, lam, mu.copy())
            add(p)
            master, duals = chain_milp.master_lp(cols, timed)
            if master - best[0] <= 1e-9 * max(abs(master), 1e-300):
                break
            lam = duals[0] / B if timed else 0.0
            mu = np.zeros(K)
            mu[bind] = duals[int(timed):] / cap_b
        return best[1], best[2], best[0]

    # ------------------------------------------------------------------ label search
    @staticmethod
    def _front_mask(ts: np.ndarray, os_: np.ndarray) -> np.ndarray:
        """Pareto options along the last axis: an option is kept unless another one comes
        before it in the (time, objective, index) order with an objective no higher (so of
        equal options the first is kept); options of infinite objective are dropped."""
        O = ts.shape[-1]
        t, o = ts[..., :, None], os_[..., :, None]  # candidate j on axis -2
        t2, o2 = ts[..., None, :], os_[..., None, :]  # rival j' on axis -1
        idx = np.arange(O)
        before = (t2 < t) | ((t2 == t) & ((o2 < o) | ((o2 == o) & (idx[None, :] < idx[:, None]))))
        return ~(before & (o2 <= o)).any(axis=-1) & np.isfinite(os_)

    def front_masks(self, obj: _Costs, con: _Costs | None) -> tuple[np.ndarray, np.ndarray]:
        """Pareto (time, objective) options of every node (n, K, O) and hop (n−1, K, K, Q)
        as boolean masks; a node at a location it may not use has none."""
        tn = con.node if con is not None else obj.node
        th = con.hop if con is not None else obj.hop
        nm = self._front_mask(tn, obj.node) & np.isfinite(obj.node[..., :1])
        return nm, self._front_mask(th, obj.hop)

    def fronts(self, obj: _Costs, con: _Costs | None):
        """The Pareto options of :meth:`front_masks` as lists of option indices."""
        nm, hm = self.front_masks(obj, con)
        opts_n = [np.flatnonzero(r).tolist() for r in nm.reshape(-1, nm.shape[-1])]
        opts_h = [np.flatnonzero(r).tolist() for r in hm.reshape(-1, hm.shape[-1])] if hm.size else []
        n, K = self.n, self.K
        nodes = [opts_n[i * K:(i + 1) * K] for i in range(n)]
        hops = [[opts_h[(i * K + k) * K:(i * K + k + 1) * K] for k in range(K)] for i in range(n - 1)]
        return nodes, hops

    def _labels(self, obj: _Costs, con: _Costs | None, B: float, upper: float, lam: float,
                mu: np.ndarray | None, budget: int):
        """Exact label search (see the module docstring): a ChainAnswer better than
        ``upper``, "none" when nothing is, None past ``budget`` labels."""
        n, K = self.n, self.K
        ct = con if con is not None else obj
        bind = np.asarray(self.binding, dtype=np.int64)
        cap_b = self.cap[bind]
        nmask, hmask = self.front_masks(obj, con)
        # completions after node i at k: fastest (con), cheapest (obj), Lagrangian (W)
        tail_t = self._completion(ct.node.min(axis=2), ct.hop.min(axis=3), ct.ret)
        tail_o = self._completion(obj.node.min(axis=2), obj.hop.min(axis=3), obj.ret)
        nv, _, hv, _, rv = self._weighted(obj, con, lam, mu)
        W = self._completion(nv, hv, rv)
        mu_b = mu[bind] if mu is not None else np.zeros(len(bind))
        const = (lam * B if con is not None else 0.0) + float((mu_b * cap_b).sum())
        U = upper * (1 + 1e-12) if upper < _INF else _INF
        d = len(bind)
        pos = {int(k): j for j, k in enumerate(bind)}
        # a level's labels: columns o, t, then d memory columns; plus loc, parent, option, hop option
        levels = []
        ks, os_ = np.nonzero(nmask[0])
        lab = np.zeros((len(ks), 2 + d))
        lab[:, 0], lab[:, 1] = obj.node[0, ks, os_], ct.node[0, ks, os_]
        for k, j in pos.items():
            lab[ks == k, 2 + j] = self.need[0]
        meta = np.stack([ks, np.full(len(ks), -1), os_, np.full(len(ks), -1)], axis=1).astype(np.int64)
        lab, meta = self._prune(lab, meta, 0, tail_t, tail_o, W, lam, mu_b, const, B, U, cap_b, con is not None)
        levels.append((lab, meta))
        total = len(lab)
        for i in range(1, n):
            parts, pmeta = [], []
            pk = meta[:, 0]
            for l in range(K):
                no = np.flatnonzero(nmask[i, l])
                if not len(no):
                    continue
                hm = hmask[i - 1][pk, l, :]  # (L, Q)
                jj, qq = np.nonzero(hm)
                if not len(jj):
                    continue
                J = np.repeat(jj, len(no))
                Qv = np.repeat(qq, len(no))
                Ov = np.tile(no, len(jj))
                kk = pk[J]
                add = lab[J].copy()
                add[:, 0] += obj.hop[i - 1, kk, l, Qv] + obj.node[i, l, Ov]
                add[:, 1] += ct.hop[i - 1, kk, l, Qv] + ct.node[i, l, Ov]
                if l in pos:
                    add[:, 2 + pos[l]] += self.need[i]
                parts.append(add)
                pmeta.append(np.stack([np.full(len(J), l), J, Ov, Qv], axis=1).astype(np.int64))
            if not parts:
                return "none"
            lab, meta = self._prune(np.vstack(parts), np.vstack(pmeta), i, tail_t, tail_o, W, lam, mu_b,
                                    const, B, U, cap_b, con is not None)
            total += len(lab)
            if total > budget:
                return None
            if not len(lab):
                return "none"
            levels.append((lab, meta))
        fin_o = lab[:, 0] + obj.ret[meta[:, 0]]
        fin_t = lab[:, 1] + ct.ret[meta[:, 0]]
        ok = (fin_t <= B) & (fin_o < U)
        if not ok.any():
            return "none"
        cand = np.nonzero(ok)[0]
        j = int(cand[np.lexsort((fin_t[cand], fin_o[cand]))[0]])
        loc, opt, hq = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64), np.zeros(max(n - 1, 0), dtype=np.int64)
        for i in range(n - 1, -1, -1):
            row = levels[i][1][j]
            loc[i], opt[i] = row[0], row[2]
            if i:
                hq[i - 1] = row[3]
            j = int(row[1])
        return self._answer(obj, con, _Path(loc, opt, hq))

    def lagrangian_keep(self, obj: _Costs, con: _Costs | None, B: float, lam: float, mu: np.ndarray | None,
                        upper: float) -> tuple[np.ndarray, np.ndarray]:
        """Lagrangian variable fixing: which node options (n, K, O) and hop options
        (n−1, K, K, Q) lie on some path whose Lagrangian bound
        (best prefix + option + best completion, all on obj + λ·T + μ·memory, minus
        λ·B + μ·cap) stays below ``upper``; every other option is on no path better than
        ``upper`` (exact)."""
        mu_k = np.zeros(self.K) if mu is None else mu
        nv, _, hv, _, rv = self._weighted(obj, con, lam, mu_k)
        W = self._completion(nv, hv, rv)
        n, K = self.n, self.K
        F = np.empty((n, K))
        pin = np.zeros((n, K))
        F[0] = nv[0]
        for i in range(1, n):
            pin[i] = (F[i - 1][:, None] + hv[i - 1]).min(axis=0)
            F[i] = pin[i] + nv[i]
        bind = list(self.binding)
        const = (lam * B if con is not None else 0.0) + float((mu_k[bind] * self.cap[bind]).sum())
        cut = upper * (1 + 1e-9) + 1e-300 + const
        wn = obj.node + (lam * con.node if con is not None and lam else 0.0) + (self.need[:, None] * mu_k)[:, :, None]
        keep_n = pin[:, :, None] + wn + W[:, :, None] <= cut
        wh = obj.hop + (lam * con.hop if con is not None and lam else 0.0)
        keep_h = F[:-1, :, None, None] + wh + (nv[1:] + W[1:])[:, None, :, None] <= cut
        return keep_n, keep_h

    def _completion(self, nv: np.ndarray, hv: np.ndarray, rv: np.ndarray) -> np.ndarray:
        """C[i, k]: the least value of the rest of the chain after node i at k."""
        C = np.empty((self.n, self.K))
        C[-1] = rv
        for i in range(self.n - 2, -1, -1):
            C[i] = (hv[i] + (nv[i + 1] + C[i + 1])[None, :]).min(axis=1)
        return C

    def _prune(self, lab, meta, i, tail_t, tail_o, W, lam, mu_b, const, B, U, cap_b, timed):
        """Drop the labels that overflow memory, cannot meet B, cannot beat U (cheapest or
        Lagrangian completion), or are dominated at their location."""
        if not len(lab):
            return lab, meta
        k = meta[:, 0]
        keep = np.ones(len(lab), dtype=bool)
        if cap_b.size:
            keep &= (lab[:, 2:] <= cap_b).all(axis=1)
        if timed:
            keep &= lab[:, 1] + tail_t[i, k] <= B
        keep &= lab[:, 0] + tail_o[i, k] < U
        if U < _INF:
            # obj ≥ prefix (obj + λ·t + μ·m) + W(i, k) − λB − μ·cap for a feasible completion
            lag = lab[:, 0] + W[i, k] - const
            if timed:
                lag = lag + lam * lab[:, 1]
            if mu_b.size:
                lag = lag + lab[:, 2:] @ mu_b
            keep &= lag < U
        lab, meta = lab[keep], meta[keep]
        if len(lab) < 2:
            return lab, meta
        cols = lab if timed else lab[:, [0] + list(range(2, lab.shape[1]))]
        order = np.lexsort(tuple(cols[:, c] for c in range(cols.shape[1] - 1, -1, -1)) + (k[keep],))
        lab, meta, cols = lab[order], meta[order], cols[order]
        kept = np.ones(len(lab), dtype=bool)
        for loc in np.unique(meta[:, 0]):
            idx = np.nonzero(meta[:, 0] == loc)[0]
            if len(idx) < 2:
                continue
            c = cols[idx]
            for s in range(0, len(idx), 512):
                blk = c[s:s + 512]
                # dom[a, b]: earlier row a ≤ row b in every column
                dom = (c[None, :s + len(blk), :] <= blk[:, None, :]).all(axis=2)
                tri = np.arange(s + len(blk))[None, :] < (s + np.arange(len(blk)))[:, None]
                kept[idx[s:s + len(blk)]] = ~(dom & tri).any(axis=1)
        return lab[kept], meta[kept]
