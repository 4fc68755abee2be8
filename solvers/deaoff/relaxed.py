"""Relaxed DeAOff (the paper's "constraint relaxation"): LP relaxation, rounding, repair, polish.

Phase 1: the LP relaxation of the phase-1 model (without the big-M disjunctions, see
:mod:`.milp`), rounded (argmax of x per node, plus ``SAMPLES`` seeded randomized
roundings; most confident nodes first, only memory-feasible locations), with the greedy
incumbent as one more candidate; the fastest is improved by engine-costed single-node
moves (the list schedule is the engine's fixed-order schedule); on a chain the chain
tables' answer without their MILP (T*, or the best path their dual met) is one more candidate.  Phase 2: the LP
relaxation of the energy model, rounded the same way; a rounding that breaks the bound
moves nodes back towards the phase-1 placement; the least-energy answer meeting the bound
is kept (the phase-1 placement is always a candidate, so the bound is met whenever the
phase-1 placement meets it) and polished by engine-costed moves (:func:`polish`).

On a chain (with ``use_dp``) both phases instead take the chain tables' Lagrangian duals
(column generation on the makespan and the binding capacities) without their MILP, and
the label search only on small chains: the best feasible path each dual met is the
phase's answer, the dual its bound (:func:`_relaxed_chain`); when it finds none, or its
phase 1 misses a given bound, the general path above takes over.  The weighted-sum mode
rounds the LP relaxation of the weighted model the same way, with the weighted incumbent
and (chains) the chain tables' answer as candidates, polished on C.  On a series DAG (the
``sublayer`` granularity; at ``head`` granularity with each layer's heads and projection
placed together) both phases are the Lagrangian duals of the cut chain, polished
(:func:`_relaxed_series`).

Every option of the exact mode is honoured: ``levels=False`` keeps every level at the
highest in the roundings, the repair and the polish.  A deadline below the LP's lower
bound on T* is infeasible for every solver (ValueError); a bound the relaxed answer
cannot meet yields status ``"infeasible_bound"`` with its best answer.
"""
from __future__ import annotations

import math
import time

import numpy as np

from core.cost import DEVICE, evaluate, fits_memory, memory_use, weighted_cost
from core.instance import Instance, Placement

from .chain import ChainTables
from .exact import (Options, horizon_fallback, incumbent, phase2_horizon, solve_exact, weighted_horizon,
                    weighted_incumbent)
from .milp import Milp
from .prep import Problem, is_chain
from .series import SeriesTables, series_cuts
from .series_dual import series_dual
from .solution import BOUND_RTOL, Solution, phase2_bound

__all__ = ["solve_relaxed", "polish", "SAMPLES", "REPAIRS", "POLISH_GAP", "POLISH_SHARE"]

SAMPLES = 16
"""Randomized roundings tried besides the argmax rounding."""
REPAIRS = 3
"""Phase-2 roundings that break the bound and get repaired (the least-energy ones)."""
POLISH_GAP = 1e-4
"""Phase 2 polishes its answer when it is further than this (relative) above the LP bound."""
POLISH_SHARE = 0.25
"""Each polish may take this share of the CPU time the relaxed solve has taken before it
(measured on Llama-2-7B head DAGs with 4 servers: its moves rarely improve on the
rounded LP there, and a larger share only made relaxed mode slower)."""
_INF = float("inf")


def _phase2_bound(opts, exact, t1: float) -> float:
    """Phase 2's latency bound in relaxed mode: the user's deadline, else the exact answer's
    bound when one is compared against (the reference's constraint: comparable energies),
    else the slack rule on this phase 1's makespan."""
    if opts.deadline_s is not None:
        return opts.deadline_s
    if exact is not None and exact.latency_bound_s is not None:
        return exact.latency_bound_s
    return phase2_bound(t1, opts.slack, None)



def _energy_gap_vs_exact(exact, bound: float, energy_j: float, meets: bool) -> float | None:
    """Relative energy gap to the exact answer compared against (None without one); inf
    when the two were not solved under the same latency bound or the bound was missed."""
    if exact is None:
        return None
    same = exact.latency_bound_s is not None and abs(bound - exact.latency_bound_s) <= 1e-12 * bound
    return (energy_j - exact.energy_j) / exact.energy_j if (meets and same) else _INF

def _first_fit(P: Problem, scores: list[dict[int, float]]) -> list[int] | None:
    """Round an assignment: most confident nodes first, each to its best-scored location
    that still fits; None if some node fits nowhere."""
    used = [0.0] * P.K
    cap, need = P.inst.system.mem_capacity_bytes, P.inst.mem_need
    loc = [-1] * P.n
    for i in sorted(range(P.n), key=lambda i: (-max(scores[i].values()), i)):
        for k in sorted(scores[i], key=lambda k: (-scores[i][k], k)):
            if fits_memory(used[k] + need[i], cap[k]):
                used[k] += need[i]
                loc[i] = k
                break
        else:
            return None
    return loc


def _roundings(P: Problem, model: Milp, col: list[float], samples: int) -> list[Placement]:
    """Rounded placements of an LP solution: argmax first, then ``samples`` randomized
    roundings (location drawn ∝ x, seeded, so deterministic); levels by argmax."""
    scores = model.lp_assignment(col)
    rounded = model.placement(col)
    dv0, tx0 = rounded.levels(P.inst)
    out, seen = [], set()

    def add(loc: list[int] | None) -> None:
        if loc is None or tuple(loc) in seen:
            return
        seen.add(tuple(loc))
        dv, tx = list(dv0), list(tx0)
        for i in range(P.n):
            if loc[i] != rounded.loc[i]:  # levels were chosen for another location
                dv[i], tx[i] = P.fmax, P.qmax
        out.append(Placement(loc, dv, tx))

    add(_first_fit(P, scores))
    uniforms = np.random.default_rng(12345).random((samples, P.n)).tolist()
    cum = []  # per node: its locations and the cumulative LP weights
    for i in range(P.n):
        ks = list(scores[i])
        cum.append((ks, np.cumsum([max(scores[i][k], 0.0) + 1e-12 for k in ks]).tolist()))
    for u in uniforms:
        drawn = []
        for i in range(P.n):
            ks, c = cum[i]
            r = u[i] * c[-1]
            pick = next((k for k, ck in zip(ks, c) if r < ck), ks[-1])
            drawn.append({k: (2.0 if k == pick else scores[i][k]) for k in ks})
        add(_first_fit(P, drawn))
    return out


def _repair_towards(P: Problem, cur: Placement, target: Placement, bound_s: float) -> Placement:
    """Move nodes (location and levels) back to ``target`` one at a time, the move that
    shortens the makespan most first (memory permitting), until the makespan meets
    ``bound_s`` (already inflated); ``target`` when no move is left."""
    loc, (dv, tx) = list(cur.loc), cur.levels(P.inst)
    tdv, ttx = target.levels(P.inst)
    t = P.evaluate(Placement(loc, dv, tx)).makespan_s
    cap = P.inst.system.mem_capacity_bytes
    while t > bound_s:
        best = None
        for i in range(P.n):
            if (loc[i], dv[i], tx[i]) == (target.loc[i], tdv[i], ttx[i]):
                continue
            old = (loc[i], dv[i], tx[i])
            loc[i], dv[i], tx[i] = target.loc[i], tdv[i], ttx[i]
            if all(fits_memory(u, c) for u, c in zip(memory_use(P.inst, loc), cap)):
                tt = P.evaluate(Placement(loc, dv, tx)).makespan_s
                if best is None or tt < best[0]:
                    best = (tt, i)
            loc[i], dv[i], tx[i] = old
        if best is None:
            return target
        t, i = best
        loc[i], dv[i], tx[i] = target.loc[i], tdv[i], ttx[i]
    return Placement(loc, dv, tx)


def polish(P: Problem, start: Placement, *, objective: str, bound_s: float = _INF, levels: bool = True,
           deadline: float = _INF, weights: tuple[float, float] | None = None) -> tuple[Placement, int]:
    """First-improvement local search on ``objective`` ("energy": device energy with makespan
    ≤ ``bound_s``, already inflated; "makespan"; "weighted": C = w_T·T + w_E·E with
    ``weights`` = (w_T, w_E)) under the capacities: move one node to
    another location (highest levels there), or (``levels`` only) change one device node's
    DVFS level or one node's transmit-power level; when none of those improves, let two
    nodes on different locations swap them; then move a node and a successor together.  Every candidate is costed by the engine.
    Stops at a local optimum or at ``deadline`` (a ``time.process_time()`` value: CPU
    time, so that a busy machine does not cut the search short).
    Returns (placement, accepted moves)."""
    if objective not in ("energy", "makespan", "weighted"):
        raise ValueError(f"objective must be 'energy', 'makespan' or 'weighted', got {objective!r}")
    if objective == "weighted" and weights is None:
        raise ValueError("objective='weighted' needs weights=(w_time_per_s, w_energy_per_j)")
    loc, (dv, tx) = list(start.loc), start.levels(P.inst)
    need, cap = P.inst.mem_need, P.inst.system.mem_capacity_bytes
    used = memory_use(P.inst, loc)

    def value(p: Placement) -> float:
        r = P.evaluate(p)
        if objective == "makespan":
            return r.makespan_s
        if r.makespan_s > bound_s:
            return _INF
        if objective == "weighted":
            return weighted_cost(r.makespan_s, r.energy_j, w_time_per_s=weights[0],  # type: ignore[index]
                                 w_energy_per_j=weights[1])  # type: ignore[index]
        return r.energy_j

    cur = value(Placement(loc, dv, tx))
    moves, improved = 0, True
    while improved and time.process_time() < deadline:
        improved = False
        for i in range(P.n):
            if time.process_time() >= deadline:
                break
            old = (loc[i], dv[i], tx[i])
            options = [(k, P.fmax, P.qmax) for k in P.allowed[i]
                       if k != old[0] and fits_memory(used[k] + need[i], cap[k])]
            if levels:
                if old[0] == DEVICE:
                    options += [(DEVICE, v, old[2]) for v in range(P.nf) if v != old[1]]
                options += [(old[0], old[1], q) for q in range(P.nq) if q != old[2]]
            for k, v, q in options:
                loc[i], dv[i], tx[i] = k, v, q
                val = value(Placement(loc, dv, tx))
                if val < cur * (1 - 1e-12):
                    used[old[0]] -= need[i]
                    used[k] += need[i]
                    cur, improved = val, True
                    moves += 1
                    break
                loc[i], dv[i], tx[i] = old
        if improved:
            continue
        # swaps keep each location's node count, so a split the memory pins down can move
        for i in range(P.n):
            if improved or time.process_time() >= deadline:
                break
            for j in range(i + 1, P.n):
                a, b = loc[i], loc[j]
                if a == b or b not in P.allowed[i] or a not in P.allowed[j]:
                    continue
                if not (fits_memory(used[a] - need[i] + need[j], cap[a])
                        and fits_memory(used[b] - need[j] + need[i], cap[b])):
                    continue
                old_i, old_j = (dv[i], tx[i]), (dv[j], tx[j])
                loc[i], loc[j] = b, a
                dv[i], tx[i], dv[j], tx[j] = P.fmax, P.qmax, P.fmax, P.qmax
                val = value(Placement(loc, dv, tx))
                if val < cur * (1 - 1e-12):
                    used[a] += need[j] - need[i]
                    used[b] += need[i] - need[j]
                    cur, improved = val, True
                    moves += 1
                    break
                loc[i], loc[j] = a, b
                (dv[i], tx[i]), (dv[j], tx[j]) = old_i, old_j
        if improved:
            continue
        # joint moves: a node and one of its successors to one location (highest levels),
        # which crosses the valley a transfer between them puts between two single moves
        for i in range(P.n):
            if improved or time.process_time() >= deadline:
                break
            for j in P.succs[i]:
                if improved:
                    break
                for k in P.allowed[i]:
                    if k not in P.allowed[j] or (loc[i] == k and loc[j] == k):
                        continue
                    extra = (need[i] if loc[i] != k else 0.0) + (need[j] if loc[j] != k else 0.0)
                    if not fits_memory(used[k] + extra, cap[k]):
                        continue
                    old = (loc[i], dv[i], tx[i], loc[j], dv[j], tx[j])
                    loc[i], dv[i], tx[i], loc[j], dv[j], tx[j] = k, P.fmax, P.qmax, k, P.fmax, P.qmax
                    val = value(Placement(loc, dv, tx))
                    if val < cur * (1 - 1e-12):
                        for node, was in ((i, old[0]), (j, old[3])):
                            used[was] -= need[node]
                            used[k] += need[node]
                        cur, improved = val, True
                        moves += 1
                        break
                    loc[i], dv[i], tx[i], loc[j], dv[j], tx[j] = old
    return Placement(loc, dv, tx), moves


def _phase1(P: Problem, opts: Options, t0: float, statuses: list[str]) -> tuple[Placement, float, dict]:
    """The relaxed phase 1: (placement at the highest levels, its makespan, info)."""
    inc = incumbent(P)
    ub = inc[1] if inc is not None else horizon_fallback(P)
    model = Milp(P, phase=1, levels=opts.levels, horizon_s=ub * (1 + 1e-6) - P.mig_min, lean=True)
    out = model.run(relax=True, threads=opts.threads)
    statuses.append("lp:" + out.status)
    if out.status == "infeasible":
        raise ValueError("no placement fits the memory budget (LP relaxation infeasible)")
    cands = [Placement(p.loc) for p in _roundings(P, model, out.col, SAMPLES)]  # highest levels
    if inc is not None:
        cands.append(inc[0])
    proven = None
    if P.chain:  # the chain tables' phase 1 (without their MILP): T* or a good incumbent
        found = ChainTables(P.inst, levels=False).fastest(known=None if inc is None else inc[0],
                                                           label_budget=2_000, flow_milp=False)
        if found is not None:
            cands.append(found.placement)
            if found.gap == 0.0:
                proven = found.placement
    if not cands:  # packing is the hard part: first-fit decreasing, then the exact model
        need = P.inst.mem_need
        ffd = _first_fit(P, [{k: need[i] + (P.K - k) * 1e-3 for k in P.allowed[i]} for i in range(P.n)])
        if ffd is not None:
            cands.append(Placement(ffd))
        else:
            statuses.append("packing:milp")
            cands.append(solve_exact(P.inst, Options(phase2=False, use_dp=False, mip_rel_gap=1e-4,
                                                     threads=opts.threads)).placement)
    p1, moves = min(cands, key=lambda c: P.evaluate(c).makespan_s), 0
    if proven is not None and P.evaluate(proven).makespan_s <= P.evaluate(p1).makespan_s:
        p1 = proven  # T* itself: nothing to polish
    else:
        budget = POLISH_SHARE * (time.process_time() - t0)
        p1, moves = polish(P, p1, objective="makespan", levels=False, deadline=time.process_time() + budget)
    return p1, out.objective, {"phase1_lp_bound_s": out.objective, "phase1_candidates": len(cands),
                               "phase1_polish_moves": moves}


def _phase2(P: Problem, opts: Options, p1: Placement, bound: float, t0: float,
            statuses: list[str]) -> tuple[Placement, float, int]:
    """The relaxed phase 2: (placement, LP bound on the energy (−inf without one), polish moves)."""
    B = bound * (1 + BOUND_RTOL)
    r1 = P.evaluate(p1)
    model = Milp(P, phase=2, levels=opts.levels, horizon_s=max(phase2_horizon(P, opts, bound), r1.makespan_s) * (1 + 1e-6) - P.mig_min,
                 bound_s=bound, energy_unit_j=max(r1.energy_j, 1e-30) / 100.0, lean=True)
    out = model.run(relax=True, threads=opts.threads)
    statuses.append("lp:" + out.status)
    best = (r1.energy_j if r1.makespan_s <= B else _INF, r1.makespan_s, p1)
    lp2 = -_INF
    if out.status != "infeasible":
        lp2 = out.objective
        late = []
        for c in _roundings(P, model, out.col, SAMPLES):
            r = P.evaluate(c)
            if r.makespan_s > B:
                late.append((r.energy_j, c))
            elif (r.energy_j, r.makespan_s) < best[:2]:
                best = (r.energy_j, r.makespan_s, c)
        late.sort(key=lambda x: x[0])
        for e, c in late[:REPAIRS]:  # the cheapest roundings that break the bound
            if e >= best[0]:
                break
            c = _repair_towards(P, c, p1, B)
            r = P.evaluate(c)
            if r.makespan_s <= B and (r.energy_j, r.makespan_s) < best[:2]:
                best = (r.energy_j, r.makespan_s, c)
    p2, moves = best[2], 0
    if best[1] <= B and math.isfinite(lp2) and best[0] - lp2 > POLISH_GAP * best[0]:
        budget = POLISH_SHARE * (time.process_time() - t0)
        p2, moves = polish(P, p2, objective="energy", bound_s=B, levels=opts.levels,
                           deadline=time.process_time() + budget)
    return p2, lp2, moves


def _relaxed_weighted(inst: Instance, opts: Options, exact: Solution | None) -> Solution:
    """The relaxed weighted-sum mode: the LP relaxation of the weighted model rounded as in
    phase 2, the weighted incumbent and (chains) the chain tables' answer without their
    MILP as candidates; the cheapest is polished on C by engine-costed moves."""
    t0, t0_cpu = time.perf_counter(), time.process_time()
    P = Problem(inst)
    w = opts.weights
    statuses: list[str] = []

    def cost(p: Placement) -> float:
        r = P.evaluate(p)
        return weighted_cost(r.makespan_s, r.energy_j, w_time_per_s=w[0], w_energy_per_j=w[1])

    inc = weighted_incumbent(P, opts)
    c_ub = inc[1] if inc is not None else _INF
    unit = max(c_ub, 1e-30) / 100.0 if math.isfinite(c_ub) else 1.0
    model = Milp(P, phase=3, levels=opts.levels, horizon_s=weighted_horizon(P, opts, c_ub) * (1 + 1e-6) - P.mig_min,
                 energy_unit_j=unit, weights=w, lean=True)
    out = model.run(relax=True, threads=opts.threads)
    statuses.append("lp:" + out.status)
    if out.status == "infeasible":
        raise ValueError("no placement fits the memory budget (LP relaxation infeasible)")
    cands = _roundings(P, model, out.col, SAMPLES)
    if inc is not None:
        cands.append(inc[0])
    proven = None
    if P.chain:
        found = ChainTables(inst, levels=opts.levels).min_weighted(
            w[0], w[1], known=None if inc is None else inc[0], label_budget=2_000, flow_milp=False)
        if found is not None:
            cands.append(found.placement)
            if found.gap == 0.0:
                proven = found.placement
    if not cands:
        statuses.append("packing:milp")
        cands.append(solve_exact(inst, Options(phase2=False, use_dp=False, mip_rel_gap=1e-4,
                                               threads=opts.threads)).placement)
    best = min(cands, key=cost)
    moves = 0
    if proven is not None and cost(proven) <= cost(best):
        best = proven
    elif cost(best) - out.objective > POLISH_GAP * cost(best):
        budget = POLISH_SHARE * (time.process_time() - t0_cpu)
        best, moves = polish(P, best, objective="weighted", levels=opts.levels, weights=w,
                             deadline=time.process_time() + budget)
    res = evaluate(inst, best, record=True, check=True)
    c = weighted_cost(res.makespan_s, res.energy_j, w_time_per_s=w[0], w_energy_per_j=w[1])
    gap = max(0.0, (c - out.objective) / c) if c > 0 else 0.0
    gve = None
    if exact is not None and exact.weighted_cost is not None:
        gve = (c - exact.weighted_cost) / exact.weighted_cost if exact.weighted_cost > 0 else 0.0
    info = {"lp_bound": out.objective, "candidates": len(cands), "polish_moves": moves}
    return Solution(best, res, res.makespan_s, res.energy_j, res.makespan_s, None, "relaxed", gap,
                    time.perf_counter() - t0, "relaxed", None, statuses, gve, info,
                    objective="weighted", weighted_cost=c)


CHAIN_LABELS = 2_000
"""Label budget of the relaxed chain path on small chains (n·K ≤ :data:`CHAIN_LABELS_SIZE`);
larger chains keep only the column generation's paths (measured on the 70B-class chains
with 4-16 binding servers: there the labels cost about 0.5 s and gain under 0.3% energy)."""
CHAIN_LABELS_SIZE = 300


def _relaxed_chain(inst: Instance, opts: Options, exact: Solution | None) -> Solution | None:
    """Relaxed mode on a chain: the chain tables' Lagrangian duals (column generation on
    the makespan and the binding capacities) without their label search and MILP; the best
    feasible path each dual met is the phase's answer and the dual its bound (the LP bound
    of the path-flow model).  None when a phase finds no feasible path (the general
    relaxed mode takes over)."""
    t0 = time.perf_counter()
    T = ChainTables(inst, opts.levels)
    P = Problem(inst)
    inc = incumbent(P)
    budget = CHAIN_LABELS if T.n * T.K <= CHAIN_LABELS_SIZE else 0
    a1 = T.fastest(known=None if inc is None else inc[0], label_budget=budget, flow_milp=False)
    if a1 is None:
        return None
    p1 = a1.placement
    res1 = evaluate(inst, p1, record=True, check=True)
    t1 = res1.makespan_s
    lb1 = t1 * (1.0 - a1.gap) if math.isfinite(a1.gap) else 0.0
    if opts.deadline_s is not None and opts.deadline_s < lb1 * (1 - BOUND_RTOL):
        raise ValueError(f"deadline {opts.deadline_s!r} s is below the minimum makespan "
                         f"(T* >= {lb1!r} s by the chain tables' dual)")
    info: dict = {"phase1_lp_bound_s": lb1, "chain": True, "polish_moves": 0}
    if exact is not None:
        info["phase1_gap"] = (t1 - exact.phase1_makespan_s) / exact.phase1_makespan_s
    statuses = ["dp:" + a1.how]
    if not opts.phase2:
        gve = None if exact is None else (t1 - exact.makespan_s) / exact.makespan_s
        return Solution(p1, res1, t1, res1.energy_j, t1, None, "relaxed", a1.gap, time.perf_counter() - t0,
                        "relaxed", p1, statuses, gve, info)
    bound = _phase2_bound(opts, exact, t1)
    if t1 > bound * (1 + BOUND_RTOL):
        return None  # the general mode's phase 1 may do better
    a2 = T.min_energy(bound * (1 + BOUND_RTOL), known=p1, label_budget=budget, flow_milp=False)
    p2, gap = (p1, _INF) if a2 is None else (a2.placement, a2.gap)
    if a2 is not None:
        info["phase2_lp_bound_j"] = a2.objective * (1.0 - a2.gap) if math.isfinite(a2.gap) else -_INF
    statuses.append("dp:" + ("none" if a2 is None else a2.how))
    res2 = evaluate(inst, p2, record=True, check=True)
    if res2.makespan_s > bound * (1 + BOUND_RTOL):
        raise RuntimeError(f"chain tables/engine mismatch: makespan {res2.makespan_s!r} s > bound {bound!r} s")
    info["meets_bound"] = True
    gve = _energy_gap_vs_exact(exact, bound, res2.energy_j, True)
    return Solution(p2, res2, res2.makespan_s, res2.energy_j, t1, bound, "relaxed", gap,
                    time.perf_counter() - t0, "relaxed", p1, statuses, gve, info)


COMPOSITE_MIN_NODES = 60
"""Relaxed mode places each composite interior (a layer's heads and projection) as a whole
only on DAGs of at least this many nodes; smaller ones take the general path, whose LP
rounding explores every split and is fast there."""


def _relaxed_series(inst: Instance, opts: Options, exact: Solution | None, composite: bool) -> Solution | None:
    """Relaxed mode on a series DAG (the ``sublayer`` granularity, and the ``head``
    granularity with each layer's heads and projection placed as a whole, a restriction
    the polish then lifts): each phase is the Lagrangian dual of the cut chain
    (:mod:`.series_dual`), from the greedy incumbent
    (phase 1) and the phase-1 placement (phase 2, so the bound is met whenever the
    phase-1 placement meets it), polished by engine-costed moves (:func:`polish`) within
    the CPU time the dual took when it is not proven; the gaps are against the dual
    bounds.  None when phase 1 misses a given bound (the general relaxed mode takes over)."""
    t0 = time.perf_counter()
    S = SeriesTables(inst, opts.levels, composite=composite)
    P = Problem(inst)
    inc = incumbent(P)
    # placing interiors as a whole restricts the placements: the dual bounds hold only for
    # the restriction, so the phase-1 bound is then the critical path at the fastest
    # locations, and phase 2 reports no bound
    restricted = any(S.cuts[j + 1] - S.cuts[j] > 2 for j in range(len(S.cuts) - 1))
    if inc is None:
        return None
    c0 = time.process_time()
    p1, t1, lb1 = series_dual(S, "makespan", _INF, None, inc[0], inc[1], inc[1])
    moves = 0
    if restricted or t1 > lb1 * (1 + POLISH_GAP):  # engine-costed moves, within a share of the time so far
        p1, moves = polish(P, p1, objective="makespan", levels=False,
                           deadline=time.process_time() + POLISH_SHARE * (time.process_time() - c0))
    res1 = evaluate(inst, p1, record=True, check=True)
    t1 = res1.makespan_s
    if restricted:
        lb1 = max(P.head[i] + P.pmin[i] + P.tail[i] for i in range(P.n))
    gap1 = max(0.0, (t1 - lb1) / t1) if t1 > 0 else 0.0
    if opts.deadline_s is not None and opts.deadline_s < lb1 * (1 - BOUND_RTOL):
        raise ValueError(f"deadline {opts.deadline_s!r} s is below the minimum makespan "
                         f"(T* >= {lb1!r} s by the series model's Lagrangian bound)")
    info: dict = {"phase1_lp_bound_s": lb1, "series": True, "polish_moves": moves}
    if exact is not None:
        info["phase1_gap"] = (t1 - exact.phase1_makespan_s) / exact.phase1_makespan_s
    statuses = ["series:dual"]
    if not opts.phase2:
        gve = None if exact is None else (t1 - exact.makespan_s) / exact.makespan_s
        return Solution(p1, res1, t1, res1.energy_j, t1, None, "relaxed", gap1, time.perf_counter() - t0,
                        "relaxed", p1, statuses, gve, info)
    bound = _phase2_bound(opts, exact, t1)
    if t1 > bound * (1 + BOUND_RTOL):
        return None
    c1 = time.process_time()
    p2, e2, lb2 = series_dual(S, "energy", bound * (1 + BOUND_RTOL), None, p1, res1.energy_j, t1)
    if restricted or e2 > lb2 * (1 + POLISH_GAP):
        p2, more = polish(P, p2, objective="energy", bound_s=bound * (1 + BOUND_RTOL), levels=opts.levels,
                          deadline=time.process_time() + POLISH_SHARE * (time.process_time() - c1))
        moves += more
    info.update(phase2_lp_bound_j=lb2, polish_moves=moves)
    statuses.append("series:dual")
    res2 = evaluate(inst, p2, record=True, check=True)
    if res2.makespan_s > bound * (1 + BOUND_RTOL):
        raise RuntimeError(f"series model/engine mismatch: makespan {res2.makespan_s!r} s > bound {bound!r} s")
    info["meets_bound"] = True
    gve = _energy_gap_vs_exact(exact, bound, res2.energy_j, True)
    if restricted:
        lb2 = -_INF
        info["phase2_lp_bound_j"] = lb2
    gap2 = max(0.0, (res2.energy_j - lb2) / res2.energy_j) if res2.energy_j > 0 and lb2 > -_INF else _INF
    return Solution(p2, res2, res2.makespan_s, res2.energy_j, t1, bound, "relaxed", gap2,
                    time.perf_counter() - t0, "relaxed", p1, statuses, gve, info)


def solve_relaxed(inst: Instance, opts: Options, exact: Solution | None) -> Solution:
    """Relaxed DeAOff (module docstring).  With a reference ``exact`` the phase-2 bound is
    the reference's (unless a deadline is given), so that ``gap_vs_exact`` compares
    energies under the same constraint."""
    if opts.objective == "weighted":
        return _relaxed_weighted(inst, opts, exact)
    if opts.use_dp and is_chain(inst):
        sol = _relaxed_chain(inst, opts, exact)
        if sol is not None:
            return sol
    elif opts.use_dp and series_cuts(inst) is not None:
        sol = _relaxed_series(inst, opts, exact, composite=False)
        if sol is not None:
            return sol
    elif (opts.use_dp and inst.num_nodes >= COMPOSITE_MIN_NODES
          and series_cuts(inst, composite=True) is not None):
        sol = _relaxed_series(inst, opts, exact, composite=True)
        if sol is not None:
            return sol
    t0, t0_cpu = time.perf_counter(), time.process_time()
    P = Problem(inst)
    statuses: list[str] = []
    p1, lp1, info = _phase1(P, opts, t0_cpu, statuses)
    res1 = evaluate(inst, p1, record=True, check=True)
    t1 = res1.makespan_s
    if exact is not None:
        info["phase1_gap"] = (t1 - exact.phase1_makespan_s) / exact.phase1_makespan_s
    if not opts.phase2:
        gve = None if exact is None else (t1 - exact.makespan_s) / exact.makespan_s
        return Solution(p1, res1, t1, res1.energy_j, t1, None, "relaxed", max(0.0, (t1 - lp1) / t1),
                        time.perf_counter() - t0, "relaxed", p1, statuses, gve, info)
    if opts.deadline_s is not None and opts.deadline_s < lp1 * (1 - BOUND_RTOL):
        # below a lower bound on T*: nothing meets it
        raise ValueError(f"deadline {opts.deadline_s!r} s is below the minimum makespan "
                         f"(T* >= {lp1!r} s by the LP relaxation)")
    bound = _phase2_bound(opts, exact, t1)
    p2, lp2, moves = _phase2(P, opts, p1, bound, t0_cpu, statuses)
    res2 = evaluate(inst, p2, record=True, check=True)
    meets = res2.makespan_s <= bound * (1 + BOUND_RTOL)
    info.update(polish_moves=moves, phase2_lp_bound_j=lp2, meets_bound=meets)
    gap = max(0.0, (res2.energy_j - lp2) / res2.energy_j) if meets and math.isfinite(lp2) else _INF
    gve = _energy_gap_vs_exact(exact, bound, res2.energy_j, meets)
    return Solution(p2, res2, res2.makespan_s, res2.energy_j, t1, bound, "relaxed" if meets else "infeasible_bound",
                    gap, time.perf_counter() - t0, "relaxed", p1, statuses, gve, info)
