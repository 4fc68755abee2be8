"""Exact DeAOff: chains on the memory-aware chain tables (:mod:`.chain`), series DAGs (the
``sublayer`` granularity) on the cut-chain MILP (:mod:`.series`), every other DAG (or any
DAG with ``use_dp=False``) on the MILP (:mod:`.milp`)."""
from __future__ import annotations

import math
import time
from typing import NamedTuple

from core.cost import Result, evaluate, fits_memory, memory_use, placement_fits, weighted_cost
from core.instance import Instance, Placement

from .chain import ChainTables
from .milp import Milp
from .prep import Problem, check_total_memory, is_chain
from .series import SeriesTables, series_cuts
from .solution import BOUND_RTOL, Solution, check_against_engine, phase2_bound, relative_gap

__all__ = ["solve_exact", "solve_weighted", "incumbent", "weighted_incumbent", "DP_LABEL_BUDGET"]

DP_LABEL_BUDGET = 20_000
"""Labels the chain tables' label search may keep before their path-flow MILP takes over."""
_INF = float("inf")


class Options(NamedTuple):
    """The options of one exact solve (see :func:`solvers.deaoff.solve`)."""

    phase2: bool = True
    slack: float = 0.10
    deadline_s: float | None = None
    time_limit_s: float | None = None
    levels: bool = True
    use_dp: bool = True
    mip_rel_gap: float = 1e-9
    threads: int = 1
    objective: str = "lexicographic"
    w_time_per_s: float = 0.0
    w_energy_per_j: float = 0.0
    table_cache: object = None
    """A :class:`~.chain_build.TableCache` for the chain tables (or None)."""
    record: bool = True
    """Whether the answer's result carries the engine's schedule (start/finish lists, transfers)."""

    @property
    def weights(self) -> tuple[float, float]:
        return self.w_time_per_s, self.w_energy_per_j


class _Phase(NamedTuple):
    placement: Placement
    result: Result
    status: str  # "dp:<step>" (chain tables, see ChainAnswer.how) | HiGHS status
    timed_out: bool
    gap: float


def _tables(inst: Instance, opts: Options) -> ChainTables:
    """The chain tables of ``inst``, through the caller's table cache when it has one."""
    cache = opts.table_cache
    return ChainTables(inst, opts.levels) if cache is None else cache.tables(inst, opts.levels)


# --------------------------------------------------------------------------- incumbents
def _greedy_fill(P: Problem, prefer: int) -> list[int] | None:
    """Every node at ``prefer`` while it fits, else at the fastest location that still fits."""
    used = [0.0] * P.K
    cap, need = P.inst.system.mem_capacity_bytes, P.inst.mem_need
    loc = []
    for i in range(P.n):
        for k in sorted(P.allowed[i], key=lambda k: (k != prefer, P.ptime(i, k), k)):
            if fits_memory(used[k] + need[i], cap[k]):
                used[k] += need[i]
                loc.append(k)
                break
        else:
            return None
    return loc


SEQUENTIAL_ORDERS = 120
"""Location orders tried by :func:`_sequential_fills` (all of them up to 5 locations)."""


def _sequential_fills(P: Problem) -> list[list[int]]:
    """Contiguous-segment placements when memory binds: the nodes in index order fill one
    location until the next node does not fit, then the next location of an order, never
    going back (small nodes do not scatter); every order of the locations up to
    :data:`SEQUENTIAL_ORDERS`, else the locations by speed and its adjacent swaps."""
    import itertools

    cap, need = P.inst.system.mem_capacity_bytes, P.inst.mem_need
    if all(fits_memory(sum(need[i] for i in range(P.n) if k in P.allowed[i]), cap[k]) for k in range(P.K)):
        return []
    speed = sorted(range(P.K), key=lambda k: (sum(P.ptime(i, k) for i in range(P.n) if k in P.allowed[i]), k))
    if math.factorial(P.K) <= SEQUENTIAL_ORDERS:
        orders = [list(o) for o in itertools.permutations(speed)]
    else:
        orders = [speed] + [speed[:j] + [speed[j + 1], speed[j]] + speed[j + 2:] for j in range(P.K - 1)]
    out = []
    for order in orders:
        used = [0.0] * P.K
        loc, pos = [], 0
        for i in range(P.n):
            while pos < len(order) and (order[pos] not in P.allowed[i]
                                        or not fits_memory(used[order[pos]] + need[i], cap[order[pos]])):
                pos += 1
            if pos == len(order):
                break
            used[order[pos]] += need[i]
            loc.append(order[pos])
        if len(loc) == P.n:
            out.append(loc)
    return out


def incumbent(P: Problem, local_search_s: float = 0.0) -> tuple[Placement, float] | None:
    """A good memory-feasible placement at the highest levels and its makespan (for big-M
    values and cut-offs): everything at one location, greedy fills, sequential
    (contiguous-segment) fills when memory binds, then first-improvement
    single-node moves within ``local_search_s``.  None when none of these fits."""
    cands = [[k] * P.n for k in range(P.K) if all(k in a for a in P.allowed)]
    cands += [g for k in range(P.K) if (g := _greedy_fill(P, k)) is not None]
    cands += _sequential_fills(P)
    scored = [(P.evaluate(Placement(loc)).makespan_s, loc) for loc in cands if placement_fits(P.inst, loc)]
    if not scored:
        return None
    t_best, loc = min(scored, key=lambda x: x[0])
    loc = list(loc)
    deadline = time.perf_counter() + local_search_s
    cap, need = P.inst.system.mem_capacity_bytes, P.inst.mem_need
    used = memory_use(P.inst, loc)
    improved = local_search_s > 0
    while improved and time.perf_counter() < deadline:
        improved = False
        for i in range(P.n):
            for k in P.allowed[i]:
                if k == loc[i] or not fits_memory(used[k] + need[i], cap[k]):
                    continue
                old, loc[i] = loc[i], k
                t = P.evaluate(Placement(loc)).makespan_s
                if t < t_best * (1 - 1e-12):
                    t_best, improved = t, True
                    used[old] -= need[i]
                    used[k] += need[i]
                else:
                    loc[i] = old
            if time.perf_counter() > deadline:
                break
    return Placement(loc), t_best


def horizon_fallback(P: Problem, slowest: bool = False) -> float:
    """A crude makespan upper bound: every activity in sequence (``slowest``: each device
    node at its slowest DVFS level too, a bound for every choice of levels)."""
    A = P.allowed
    tot = sum(max(P.mig(i, k, q)[0] for k in A[i] for q in range(P.nq)) for i in range(P.n))
    tot += sum(P.inp(k)[0] for k in range(1, P.K))
    for i in range(P.n):
        tot += max(P.ptime(i, k, v) for k in A[i] for v in (range(P.nf) if slowest else [None]))
        tot += sum(max(P.trans(i, k, l, 0)[0] for k in A[i]) for l in range(P.K))
    return tot


# --------------------------------------------------------------------------- phases
def _chain_phase(inst: Instance, T: ChainTables, opts: Options, what: str, bound_s: float | None,
                 known, t_end: float | None) -> _Phase:
    """One phase on the chain tables, checked against the engine."""
    limit = None if t_end is None else max(t_end - time.perf_counter(), 1e-3)
    kw = dict(known=known, label_budget=DP_LABEL_BUDGET, mip_rel_gap=opts.mip_rel_gap, time_limit_s=limit)
    if what == "makespan":
        ans = T.fastest(**kw)
    else:
        ans = T.min_energy(bound_s * (1 + BOUND_RTOL), **kw)
    proven = ans.gap == 0.0
    res = check_against_engine(inst, ans.placement, ans.objective, what, proven=proven, record=opts.record)
    if what == "energy" and res.makespan_s > bound_s * (1 + 1e-7):
        raise RuntimeError(f"chain tables/engine mismatch: makespan {res.makespan_s!r} s > bound {bound_s!r} s")
    return _Phase(ans.placement, res, "dp:" + ans.how, not proven, ans.gap)


def _milp_phase1(P: Problem, opts: Options, t_end: float | None) -> _Phase:
    budget = None if t_end is None else (t_end - time.perf_counter()) * (0.5 if opts.phase2 else 1.0)
    inc = incumbent(P, local_search_s=0.5 if budget is None else min(0.5, 0.1 * budget))
    ub = inc[1] if inc is not None else horizon_fallback(P)
    model = Milp(P, phase=1, levels=opts.levels, horizon_s=ub * (1 + 1e-6) - P.mig_min)
    out = model.run(time_limit_s=None if budget is None else max(budget, 1e-3), mip_rel_gap=opts.mip_rel_gap,
                    threads=opts.threads, cutoff=None if inc is None else inc[1])
    if out.status == "infeasible":
        raise ValueError("no placement fits the memory budget: the nodes cannot be packed into the "
                         "memory of the up locations")
    if out.status == "time_limit_no_solution":
        if inc is None:
            raise RuntimeError("HiGHS hit the time limit in phase 1 without a feasible placement")
        res = evaluate(P.inst, inc[0], record=opts.record, check=True)
        return _Phase(inc[0], res, out.status, True, relative_gap(res.makespan_s, model.dual_bound))
    p = model.placement(out.col)
    res = check_against_engine(P.inst, p, out.objective, "makespan", out.status == "optimal", record=opts.record)
    return _Phase(p, res, out.status, out.status == "time_limit", out.gap if out.status == "time_limit" else 0.0)


def _milp_phase2(P: Problem, opts: Options, p1: Placement, bound: float, t_end: float | None) -> _Phase:
    start = P.evaluate(p1)
    model = Milp(P, phase=2, levels=opts.levels, horizon_s=phase2_horizon(P, opts, bound) * (1 + 1e-6) - P.mig_min,
                 bound_s=bound,
                 energy_unit_j=max(start.energy_j, 1e-30) / 100.0)
    remaining = None if t_end is None else max(t_end - time.perf_counter(), 1e-3)
    out = model.run(time_limit_s=remaining, mip_rel_gap=opts.mip_rel_gap, threads=opts.threads,
                    cutoff=start.energy_j)
    if out.status == "infeasible":
        raise RuntimeError("HiGHS reports phase 2 infeasible although the phase-1 placement meets the bound")
    if out.status == "time_limit_no_solution":
        res = evaluate(P.inst, p1, record=opts.record, check=True)
        return _Phase(p1, res, out.status, True, relative_gap(res.energy_j, model.dual_bound))
    p = model.placement(out.col)
    res = check_against_engine(P.inst, p, out.objective, "energy", out.status == "optimal", record=opts.record)
    if res.makespan_s > bound * (1 + 1e-7):
        raise RuntimeError(f"phase 2 answer breaks the bound: makespan {res.makespan_s!r} s > {bound!r} s")
    return _Phase(p, res, out.status, out.status == "time_limit", out.gap if out.status == "time_limit" else 0.0)


def weighted_incumbent(P: Problem, opts: Options, extra: list[Placement] = ()) -> tuple[Placement, float] | None:
    """The cheapest (C = w_T·T + w_E·E) of: the makespan incumbent at the highest levels,
    and ``extra`` placements; None when none fits."""
    inc = incumbent(P)
    cands = ([inc[0]] if inc is not None else []) + [p for p in extra if placement_fits(P.inst, p.loc)]
    if not cands:
        return None
    scored = [(weighted_cost(r.makespan_s, r.energy_j, w_time_per_s=opts.w_time_per_s,
                             w_energy_per_j=opts.w_energy_per_j), p) for p in cands for r in [P.evaluate(p)]]
    c, p = min(scored, key=lambda x: x[0])
    return p, c


def phase2_horizon(P: Problem, opts: Options, bound: float) -> float:
    """The big-M horizon of phase 2: the latency bound, or the every-activity-in-sequence
    bound when that is smaller (a huge deadline such as 1e9 s would otherwise make the
    big-M constants dwarf the schedule, and HiGHS's feasibility tolerance then lets the
    model's times drift from the engine's).  Valid: the engine never leaves every resource
    idle while work remains, so no placement's makespan exceeds the sum of its activities."""
    return min(bound, horizon_fallback(P, slowest=opts.levels))


def weighted_horizon(P: Problem, opts: Options, cost_ub: float) -> float:
    """An upper bound on the makespan of a weighted optimum: w_T·T ≤ C ≤ ``cost_ub`` (the
    energy is ≥ 0), and every activity in sequence at the slowest levels."""
    ub = horizon_fallback(P, slowest=opts.levels)
    if opts.w_time_per_s > 0 and math.isfinite(cost_ub):
        ub = min(ub, cost_ub / opts.w_time_per_s)
    return ub


def _milp_weighted(P: Problem, opts: Options, t_end: float | None) -> _Phase:
    inc = weighted_incumbent(P, opts)
    c_ub = inc[1] if inc is not None else _INF
    unit = max(c_ub, 1e-30) / 100.0 if math.isfinite(c_ub) else 1.0
    model = Milp(P, phase=3, levels=opts.levels, horizon_s=weighted_horizon(P, opts, c_ub) * (1 + 1e-6) - P.mig_min,
                 energy_unit_j=unit, weights=opts.weights)
    limit = None if t_end is None else max(t_end - time.perf_counter(), 1e-3)
    out = model.run(time_limit_s=limit, mip_rel_gap=opts.mip_rel_gap, threads=opts.threads,
                    cutoff=None if inc is None else c_ub)
    if out.status == "infeasible":
        raise ValueError("no placement fits the memory budget: the nodes cannot be packed into the "
                         "memory of the up locations")
    if out.status == "time_limit_no_solution":
        if inc is None:
            raise RuntimeError("HiGHS hit the time limit without a feasible placement")
        res = evaluate(P.inst, inc[0], record=opts.record, check=True)
        return _Phase(inc[0], res, out.status, True, relative_gap(c_ub, model.dual_bound))
    p = model.placement(out.col)
    res = check_against_engine(P.inst, p, out.objective, "weighted", out.status == "optimal", opts.weights,
                               record=opts.record)
    return _Phase(p, res, out.status, out.status == "time_limit", out.gap if out.status == "time_limit" else 0.0)


def _series_phase(inst: Instance, S: SeriesTables, what: str, known: Placement, known_value: float,
                  opts: Options, t_end: float | None, bound_s: float | None = None) -> _Phase:
    """One phase on the series cut chain, from a known feasible placement (its engine
    value ``known_value`` is the MILP's cut-off), checked against the engine."""
    limit = None if t_end is None else max(t_end - time.perf_counter(), 1e-3)
    kw = dict(upper=known_value, known=known, mip_rel_gap=opts.mip_rel_gap, time_limit_s=limit)
    if what == "makespan":
        ans = S.fastest(**kw)
    elif what == "energy":
        ans = S.min_energy(bound_s * (1 + BOUND_RTOL), **kw)
    else:
        ans = S.min_weighted(opts.w_time_per_s, opts.w_energy_per_j, **kw)
    proven = ans.gap == 0.0
    res = check_against_engine(inst, ans.placement, ans.objective, what, proven,
                               opts.weights if what == "weighted" else None, record=opts.record)
    if what == "energy" and res.makespan_s > bound_s * (1 + 1e-7):
        raise RuntimeError(f"series model/engine mismatch: makespan {res.makespan_s!r} s > bound {bound_s!r} s")
    gap = ans.gap if math.isfinite(ans.gap) else 1.0
    return _Phase(ans.placement, res, "series:" + ("optimal" if proven else "time_limit"), not proven, gap)


def _series_exact(inst: Instance, opts: Options, t0: float, t_end: float | None) -> Solution:
    """Both phases (or the weighted mode) on the series cut chain."""
    S = SeriesTables(inst, opts.levels)  # raises naming a node that fits nowhere
    check_total_memory(inst)
    P = Problem(inst)
    if opts.objective == "weighted":
        inc = weighted_incumbent(P, opts)
        if inc is None:
            raise ValueError("no placement fits the memory budget: the nodes cannot be packed into the "
                             "memory of the up locations")
        ph = _series_phase(inst, S, "weighted", inc[0], inc[1], opts, t_end)
        r = ph.result
        c = weighted_cost(r.makespan_s, r.energy_j, w_time_per_s=opts.w_time_per_s,
                          w_energy_per_j=opts.w_energy_per_j)
        return Solution(ph.placement, r, r.makespan_s, r.energy_j, r.makespan_s, None,
                        "time_limit" if ph.timed_out else "optimal", ph.gap, time.perf_counter() - t0,
                        "exact-milp", None, [ph.status], objective="weighted", weighted_cost=c)
    inc = incumbent(P)
    if inc is None:
        raise ValueError("no placement fits the memory budget: the nodes cannot be packed into the "
                         "memory of the up locations")
    ph1 = _series_phase(inst, S, "makespan", inc[0], inc[1], opts, t_end)
    phases = [ph1]
    t_star = ph1.result.makespan_s
    bound = None
    if opts.phase2:
        bound = phase2_bound(t_star, opts.slack, opts.deadline_s)
        p1 = ph1.placement
        phases.append(_series_phase(inst, S, "energy", p1, P.evaluate(p1).energy_j, opts, t_end, bound))
    last = phases[-1]
    timed_out = any(ph.timed_out for ph in phases)
    return Solution(last.placement, last.result, last.result.makespan_s, last.result.energy_j, t_star, bound,
                    "time_limit" if timed_out else "optimal", max(ph.gap for ph in phases),
                    time.perf_counter() - t0, "exact-milp", ph1.placement, [ph.status for ph in phases])


def solve_weighted(inst: Instance, opts: Options) -> Solution:
    """The exact weighted-sum mode: minimum C = w_T·T + w_E·E over placements and levels,
    on the chain tables (a chain with ``opts.use_dp``) or the MILP."""
    t0 = time.perf_counter()
    t_end = None if opts.time_limit_s is None else t0 + opts.time_limit_s
    if opts.use_dp and is_chain(inst):
        T = _tables(inst, opts)
        if T.binding:  # else every node fits wherever it may go
            check_total_memory(inst)

        def known() -> Placement | None:
            inc = weighted_incumbent(Problem(inst), opts)
            return None if inc is None else inc[0]

        limit = None if t_end is None else max(t_end - time.perf_counter(), 1e-3)
        ans = T.min_weighted(opts.w_time_per_s, opts.w_energy_per_j, known=known, label_budget=DP_LABEL_BUDGET,
                             mip_rel_gap=opts.mip_rel_gap, time_limit_s=limit)
        proven = ans.gap == 0.0
        res = check_against_engine(inst, ans.placement, ans.objective, "weighted", proven, opts.weights,
                                   record=opts.record)
        ph = _Phase(ans.placement, res, "dp:" + ans.how, not proven, ans.gap)
        method, ok = "exact-dp", "dp_optimal"
    elif opts.use_dp and series_cuts(inst) is not None:
        return _series_exact(inst, opts, t0, t_end)
    else:
        ph = _milp_weighted(Problem(inst), opts, t_end)
        method, ok = "exact-milp", "optimal"
    r = ph.result
    c = weighted_cost(r.makespan_s, r.energy_j, w_time_per_s=opts.w_time_per_s, w_energy_per_j=opts.w_energy_per_j)
    return Solution(ph.placement, r, r.makespan_s, r.energy_j, r.makespan_s, None,
                    "time_limit" if ph.timed_out else ok, ph.gap, time.perf_counter() - t0, method, None,
                    [ph.status], objective="weighted", weighted_cost=c)


def solve_exact(inst: Instance, opts: Options) -> Solution:
    """Phase 1 then (unless ``opts.phase2`` is False) phase 2, each on the chain tables when
    the DAG is a chain and ``opts.use_dp`` (exact, memory-aware), else on the MILP."""
    if opts.objective == "weighted":
        return solve_weighted(inst, opts)
    t0 = time.perf_counter()
    t_end = None if opts.time_limit_s is None else t0 + opts.time_limit_s
    T = P = None
    if opts.use_dp and is_chain(inst):
        T = _tables(inst, opts)  # raises naming a node that fits nowhere
        check_total_memory(inst)

        def known() -> Placement | None:  # only when the shortest path breaks a capacity
            inc = incumbent(Problem(inst))
            return None if inc is None else inc[0]

        ph1 = _chain_phase(inst, T, opts, "makespan", None, known, t_end)
    elif opts.use_dp and series_cuts(inst) is not None:
        return _series_exact(inst, opts, t0, t_end)
    else:
        P = Problem(inst)
        ph1 = _milp_phase1(P, opts, t_end)
    phases = [ph1]
    t_star = ph1.result.makespan_s
    bound = None
    if opts.phase2:
        bound = phase2_bound(t_star, opts.slack, opts.deadline_s)
        if T is not None:
            ph2 = _chain_phase(inst, T, opts, "energy", bound, ph1.placement, t_end)
        else:
            ph2 = _milp_phase2(P, opts, ph1.placement, bound, t_end)
        phases.append(ph2)
    else:
        phases[0] = ph1._replace(result=evaluate(inst, ph1.placement, record=opts.record, check=True))
    last = phases[-1]
    used_milp = T is None
    timed_out = any(ph.timed_out for ph in phases)
    status = "time_limit" if timed_out else ("optimal" if used_milp else "dp_optimal")
    return Solution(last.placement, last.result, last.result.makespan_s, last.result.energy_j, t_star, bound,
                    status, max(ph.gap for ph in phases), time.perf_counter() - t0,
                    "exact-milp" if used_milp else "exact-dp", ph1.placement, [ph.status for ph in phases])
