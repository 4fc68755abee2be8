"""DeAOff: the exact two-phase placement solver (and its constraint relaxation).

Our reading of the paper (its full text is not available; see ``/work/shared/reference.md``
§3-4): phase 1 minimises the makespan T* over placements with every level at its highest
(fastest); phase 2 minimises the device energy over placements, DVFS levels and
transmit-power levels subject to makespan ≤ (1 + slack)·T* (or ≤ a deadline).

The model is exactly the cost engine's semantics (:mod:`core.cost`).  Because every
processor and the uplink serve their work in a fixed order, a placement's schedule is
determined, so no order binaries are needed; the MILP's optimum equals the minimum of
the engine over placements (checked: every solution is re-evaluated by the engine and
must match the MILP objective to 1e-6 relative, else ``RuntimeError``).

MILP (times relative to the end of the migration phase T_mig, scaled to ≈ [0, 100])
---------------------------------------------------------------------------------
Variables
  x[i,k]    binary, node i at location k (k in the node's allowed set: up, fits alone)
  y[i,v]    binary, DVFS level v of a device node        (Σ_v y[i,v] = x[i,0]; phase 2)
  t[i,q]    binary, tx level q of a device node's uploads (Σ_q t[i,q] = x[i,0]; phase 2)
  m[i,k,q]  binary, tx level of a KV migration device→server k (Σ_q = x[i,k]; phase 2)
  S[i]      start;  p_i = Σ_v dt[i,v]·y[i,v] + Σ_k st[i,k]·x[i,k] (linear)
  π[e,o,l]  ≥ 0 per edge e=(i,j), origin option o of i (a server, or the device at a tx
            level) and location l of j: the RLT / transportation linearisation of x_io·x_jl
            (Σ_l π = χ[i,o], Σ_o π = x[j,l]); integral whenever x is, and for a chain the
            LP is the shortest-path polytope
  a[i,l,q]  ≥ π[(i,j),(0,q),l] ∀ j: upload of i's output to server l (once per node and
            destination, not per edge), b[s,k]: upload of the token ids to server k for
            the first source s placed there
  G[e]      uplink free time after event e, for the uplink events in the engine's order
  d[i,k]    ≥ π[(i,j),k,0]: download of i's output from server k (energy, phase 2)
  R         relative makespan; C = T_mig + R with T_mig = Σ migration durations (linear)
Constraints
  assignment Σ_k x[i,k] = 1; memory Σ_i (weights + KV)_i·x[i,k] ≤ cap_k
  precedence S_j ≥ S_i + p_i + Σ_{o,l} c_i(o→l)·π[e,o,l]  (uncontended transfer times)
  uplink     G_e ≥ G_{e-1} + dur_e;  G_e ≥ S_i + p_i + dur_e − M(1 − Σ_q a[i,l,q]);
             S_j ≥ G_e − M(1 − Σ_q π[(i,j),(0,q),l])           (dur_e = Σ_q dur_q·a_q)
  input      S_s ≥ G_(in,s',k) − M(2 − b[s',k] − x[s,k]) for sources s' ≤ s
  processor  S_j ≥ S_i + p_i − M(2 − x[i,k] − x[j,k]) for i < j with no path i→j
  makespan   R ≥ S_i + p_i + Σ_k ret[i,k]·x[i,k] for sinks; R ≥ load of each processor;
             R ≥ last uplink free time (valid inequalities)
  phase 2    T_mig + R ≤ bound·(1 + 1e-9)
Objective: phase 1 min T_mig + R; phase 2 min device energy = compute Σ e[i,v]·y +
transmit Σ p_q·air·a (+ input, migrations) + receive Σ P_rx·air·d (+ returns,
migrations) + idle P_idle·(T_mig + R − Σ dt·y).
Big-M: from the horizon H = (incumbent makespan or the phase-2 bound) − min T_mig, with
per-node heads (longest path of fastest processing before a node) and tails (after it):
M = H − tail_i − head_j etc.  Time bounds S_i ∈ [head_i, H − tail_i − p_min,i].

Chains (``use_dp``): phase 1 is a shortest path over (node, location); phase 2 a bicriteria
(time, energy) Pareto label-setting DP over (node, location) with level options, returning
the minimum energy with time ≤ bound.  Both are exact for chains (no uplink contention,
additive migrations).  When no capacity can bind, :mod:`solvers.chain` does it on numpy
tables (:func:`_solve_chain_fast`): the unconstrained energy minimum when it meets the
bound, else a Lagrangian hull walk and a label search pruned by its completion bounds.
Otherwise (a capacity can bind) :func:`_dp_chain`: memory first stays out of the labels
(pruned by the fastest / cheapest completions, and by a Lagrangian bound when the fronts
grow); if that answer breaks a capacity and exactly one location can overflow, the labels
carry its memory use (still exact); otherwise, or past ``DP_LABEL_BUDGET`` labels, the
MILP takes over.

Relaxed mode (the paper's "constraint relaxation"): the LP relaxation of the same model,
rounded (argmax of x per node, plus ``RELAXED_SAMPLES`` seeded randomized roundings; most
confident nodes first, only memory-feasible locations; levels by argmax), repaired by list
scheduling (the engine's fixed-order schedule; the paper's LP-midpoint list order equals the
priority order on chains and could only reorder parallel branches, which the engine's fixed
service order does not allow): phase 1 keeps the fastest rounding (or the
greedy placement that set the big-M values, if faster); in phase 2 a rounding that breaks
the bound moves nodes back greedily towards the phase-1 placement, and the least-energy
result is kept (the phase-1 placement itself is a candidate); a phase-2 answer above the LP
bound is then polished by engine-costed single-node and swap moves (:func:`_polish`).  The
LP drops the big-M disjunctions (``RELAXED_LEAN``) and runs without presolve.
"""
from __future__ import annotations

import os
import sys

import bisect
import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from core.cost import DEVICE, Result, evaluate, location_allowed
from core.instance import Instance, Placement

from core.cost import allowed_locations
from .chain import ChainTables

__all__ = ["Solution", "solve", "is_chain"]

BOUND_RTOL = 1e-9
"""A latency bound B is met when makespan ≤ B·(1 + BOUND_RTOL) (also in brute force)."""
CHECK_RTOL = 1e-6
"""The engine's value of a MILP answer must match the MILP objective to this."""
_INF = float("inf")


# =========================================================================== result
@dataclass
class Solution:
    """A DeAOff answer; every figure comes from the cost engine's evaluation."""

    placement: Placement
    result: Result
    makespan_s: float
    energy_j: float
    phase1_makespan_s: float
    """T*: the phase-1 (minimum) makespan; in relaxed mode, that of the rounded phase 1."""
    latency_bound_s: float | None
    """The phase-2 bound (1 + slack)·T* or the deadline; None without phase 2."""
    status: str
    """"optimal" | "time_limit" | "relaxed" | "dp_optimal"."""
    mip_gap: float
    """Relative gap: HiGHS's (0 when proven); relaxed: against the LP relaxation's bound."""
    wall_time_s: float
    method: str
    """"exact-milp" | "exact-dp" | "relaxed"."""
    phase1_placement: Placement | None = None
    solver_status: list[str] = field(default_factory=list)
    """HiGHS model status of each MILP / LP solved ("dp" for the chain DP)."""
    gap_vs_exact: float | None = None
    """Relaxed mode with a reference exact answer: (objective − exact)/exact under the same bound."""
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"placement": self.placement.to_dict(), "makespan_s": self.makespan_s,
                "energy_j": self.energy_j, "phase1_makespan_s": self.phase1_makespan_s,
                "latency_bound_s": self.latency_bound_s, "status": self.status,
                "mip_gap": self.mip_gap, "wall_time_s": self.wall_time_s, "method": self.method,
                "phase1_placement": None if self.phase1_placement is None else self.phase1_placement.to_dict(),
                "solver_status": list(self.solver_status), "gap_vs_exact": self.gap_vs_exact,
                "info": dict(self.info), "result": self.result.to_dict()}


def is_chain(inst: Instance) -> bool:
    preds = inst.preds
    return not preds[0] and all(preds[i] == [i - 1] for i in range(1, inst.num_nodes))


# =========================================================================== constants
class _Prep:
    """Per-instance constants: the engine's durations and energies as MILP coefficients
    (transfers from ``Instance.transfer``); the engine re-evaluation guards the model."""

    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        n, K = inst.num_nodes, inst.num_locations
        self.n, self.K = n, K
        self.allowed = allowed_locations(inst)  # raises naming a node that fits nowhere
        caps = inst.system.mem_capacity_bytes
        up = [k for k in range(K) if location_allowed(inst, k)]
        total, budget = sum(inst.mem_need), sum(caps[k] for k in up)
        if total > budget * (1 + 1e-12):
            raise ValueError(f"no placement fits the memory budget: the nodes need {total / 1e9:.3f} GB "
                             f"(weights + KV) but the up locations hold {budget / 1e9:.3f} GB in total")
        dev = inst.system.device
        self.nf, self.nq = len(dev.freqs_hz), len(dev.tx_powers_w)
        self.fmax, self.qmax = self.nf - 1, self.nq - 1
        self.pidle = dev.idle_power_w
        self.chain = is_chain(inst)
        self.succs, self.preds = inst.succs, inst.preds
        # fastest processing time of each node over its allowed locations (top levels)
        self.pmin = [min(self.ptime(i, k) for k in self.allowed[i]) for i in range(n)]
        head = [0.0] * n
        for j in range(n):
            for i in self.preds[j]:
                head[j] = max(head[j], head[i] + self.pmin[i])
        tail = [0.0] * n
        for i in range(n - 1, -1, -1):
            for j in self.succs[i]:
                tail[i] = max(tail[i], self.pmin[j] + tail[j])
        self.head, self.tail = head, tail
        self.mig_min = sum(min(self.mig(i, k, q)[0] for k in self.allowed[i] for q in range(self.nq))
                           for i in range(n))

    # --- the engine's numbers as (duration_s, device_energy_j) MILP coefficients; every
    # transfer comes from Instance.transfer, the one place its cost is derived
    def ptime(self, i: int, k: int, v: int | None = None) -> float:
        if k == DEVICE:
            return self.inst.dev_time[i][self.fmax if v is None else v]
        return self.inst.srv_time[i][k - 1]

    def _move(self, src: int, dst: int, q: int, nbytes: float) -> tuple[float, float]:
        dur, tx_j, rx_j, _ = self.inst.transfer(src, dst, q, nbytes)
        return dur, tx_j + rx_j

    def up(self, i: int, l: int, q: int) -> tuple[float, float]:
        return self._move(DEVICE, l, q, self.inst.out_bytes[i])

    def down(self, i: int, k: int) -> tuple[float, float]:
        return self._move(k, DEVICE, self.qmax, self.inst.out_bytes[i])

    def trans(self, i: int, k: int, l: int, q: int) -> tuple[float, float]:
        if k == l:
            return 0.0, 0.0
        return self._move(k, l, q, self.inst.out_bytes[i])

    def inp(self, k: int) -> tuple[float, float]:
        return self._move(DEVICE, k, self.qmax, self.inst.in_bytes)

    def mig(self, i: int, k: int, q: int) -> tuple[float, float]:
        inst = self.inst
        a, size = inst.kv_loc[i], inst.kv_move_bytes[i]
        if a < 0 or a == k or size <= 0.0:
            return 0.0, 0.0
        return self._move(a, k, q, size)

    def migrates_up(self, i: int) -> bool:
        return self.inst.kv_loc[i] == DEVICE and self.inst.kv_move_bytes[i] > 0.0

    # --- placements
    def fits(self, loc: list[int]) -> bool:
        used = [0.0] * self.K
        for i, k in enumerate(loc):
            used[k] += self.inst.mem_need[i]
        cap = self.inst.system.mem_capacity_bytes
        return all(u <= c * (1 + 1e-12) for u, c in zip(used, cap))

    def evaluate(self, placement: Placement, record: bool = False) -> Result:
        return evaluate(self.inst, placement, record=record, check=False)


def _pareto(cands: list) -> list:
    """Keep the (t, e, ...) tuples that no other dominates (sorted by t, e strictly falling)."""
    cands.sort(key=lambda c: (c[0], c[1]))
    out = []
    best = _INF
    for c in cands:
        if c[1] < best:
            out.append(c)
            best = c[1]
    return out


# =========================================================================== chain DPs
def _binding_locations(P: _Prep) -> list[int]:
    """Locations whose capacity could be exceeded (the others never constrain)."""
    cap = P.inst.system.mem_capacity_bytes
    need = P.inst.mem_need
    return [k for k in range(P.K)
            if sum(need[i] for i in range(P.n) if k in P.allowed[i]) > cap[k] * (1 + 1e-12)]


def _pareto_mem(cands: list) -> list:
    """Pareto filter over (t, e, memory tuple) (tuples sorted by t, e, memory)."""
    if not cands:
        return cands
    cands.sort(key=lambda c: (c[0], c[1], c[2]))
    if len(cands[0][2]) == 1:
        # one memory dimension: a staircase of kept (e, m), e rising and m falling; a
        # candidate (arriving in t order) is dominated iff the kept pair with the largest
        # e ≤ its e has m ≤ its m
        es: list[float] = []
        ms: list[float] = []
        out = []
        for c in cands:
            e, m = c[1], c[2][0]
            j = bisect.bisect_right(es, e)
            if j and ms[j - 1] <= m:
                continue
            out.append(c)
            r = j
            while r < len(es) and ms[r] >= m:
                r += 1
            es[j:r] = [e]
            ms[j:r] = [m]
        return out
    kept: list = []
    for c in cands:
        e, mem = c[1], c[2]
        for d in kept:
            if d[1] <= e and all(x <= y for x, y in zip(d[2], mem)):
                break
        else:
            kept.append(c)
    return kept


_BUDGET = object()
"""Returned by :func:`_dp_chain` when its label budget is exhausted."""


def _lagrange(P: _Prep, nodeopt: list, trans: list, ret: dict, Bt: float, binding: list[int]):
    """Lagrangian dual of the chain's phase 2: maximise over λ, μ ≥ 0
        L(λ, μ) = min_path (e + λ·t + μ·m) − λ·B − μ·cap
    where m is the memory used at the binding location (only with exactly one; else μ = 0).
    Coordinate bisections on the subgradients t − B and m − cap.  Returns (λ, μ, W, best
    feasible energy, its placement, proven) where W[i][k] = min over completions after
    node i at k of (e + λ·t + μ·m); the paths met on the way are incumbents when they meet
    the bound and the capacities ("proven" when the unconstrained minimum is one)."""
    n, A = P.n, P.allowed
    need = P.inst.mem_need
    kb = binding[0] if len(binding) == 1 else None
    cap = P.inst.system.mem_capacity_bytes[kb] * (1 + 1e-12) if kb is not None else _INF
    best_place, best_e = None, _INF

    def solve_lam(lam: float, mu: float):
        nonlocal best_place, best_e
        W: list[dict[int, float]] = [dict() for _ in range(n)]
        arg: list[dict[int, tuple]] = [dict() for _ in range(n)]
        nb = [{k: min(opts, key=lambda o: o[1] + lam * o[0]) for k, opts in nodeopt[i].items()} for i in range(n)]
        nv = [{k: o[1] + lam * o[0] + (mu * need[i] if k == kb else 0.0) for k, o in nb[i].items()}
              for i in range(n)]
        for k in A[n - 1]:
            W[n - 1][k] = ret[k][1] + lam * ret[k][0]
        for i in range(n - 2, -1, -1):
            tr = trans[i]
            Wn = W[i + 1]
            nvn = nv[i + 1]
            for k in A[i]:
                bv, ba = _INF, None
                for l in A[i + 1]:
                    tb = min(tr[k, l], key=lambda o: o[1] + lam * o[0])
                    val = tb[1] + lam * tb[0] + nvn[l] + Wn[l]
                    if val < bv:
                        bv, ba = val, (l, tb)
                W[i][k], arg[i][k] = bv, ba
        k = min(A[0], key=lambda k: nv[0][k] + W[0][k])
        total = nv[0][k] + W[0][k]
        loc, dv, tx = [0] * n, [P.fmax] * n, [P.qmax] * n
        t = e = m = 0.0
        for i in range(n):
            o = nb[i][k]
            loc[i] = k
            t += o[0]
            e += o[1]
            if k == kb:
                m += need[i]
            if k == DEVICE:
                dv[i] = o[2]
            else:
                tx[i] = o[3]
            if i < n - 1:
                l, tb = arg[i][k]
                t += tb[0]
                e += tb[1]
                if k == DEVICE and l != DEVICE:
                    tx[i] = tb[2]
                k = l
        t += ret[k][0]
        e += ret[k][1]
        if t <= Bt and e < best_e and (not binding or P.fits(loc)):
            best_place, best_e = Placement(loc, dv, tx), e
        return W, total - lam * Bt - (mu * cap if kb is not None else 0.0), t, m

    W, L, t, m = solve_lam(0.0, 0.0)
    best = (L, 0.0, 0.0, W)
    if t <= Bt and m <= cap:  # the unconstrained minimum is feasible (memory checked in full)
        return 0.0, 0.0, W, best_e, best_place, best_place is not None

    def bisect_on(which: int, lam: float, mu: float):
        nonlocal best
        val = (lam, mu)
        viol = (lambda t, m: t > Bt) if which == 0 else (lambda t, m: m > cap)
        W, L, t, m = solve_lam(*val)
        if L > best[0]:
            best = (L, val[0], val[1], W)
        if not viol(t, m):
            return val[which]
        lo, hi = val[which], max(2.0 * val[which], 1.0 if which == 0 else 1e-9)
        for _ in range(80):
            cur = (hi, mu) if which == 0 else (lam, hi)
            W, L, t, m = solve_lam(*cur)
            if L > best[0]:
                best = (L, cur[0], cur[1], W)
            if not viol(t, m):
                break
            lo, hi = hi, hi * 4.0
        else:
            return None
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            cur = (mid, mu) if which == 0 else (lam, mid)
            W, L, t, m = solve_lam(*cur)
            if L > best[0]:
                best = (L, cur[0], cur[1], W)
            if viol(t, m):
                lo = mid
            else:
                hi = mid
            if hi - lo <= 1e-6 * hi:
                break
        return hi

    lam = mu = 0.0
    for _ in range(3 if kb is not None else 1):
        r = bisect_on(0, lam, mu)
        if r is None:
            return None
        lam = r
        if kb is None:
            break
        r = bisect_on(1, lam, mu)
        if r is None:
            break
        mu = r
    return best[1], best[2], best[3], best_e, best_place, False


def _dp_chain(P: _Prep, phase: int, bound_s: float = _INF, levels: bool = True,
              upper: float = _INF, lagrange: bool = False, label_budget: float = _INF,
              memory: bool = True):
    """Exact DP on a chain.  Phase 1: minimum makespan (highest levels).  Phase 2: minimum
    device energy with makespan ≤ ``bound_s``, over locations, DVFS and tx levels.

    Label setting over (node, location): a label is a partial path's (time, energy[,
    memory used at each location whose capacity can bind]); time and energy are additive
    on a chain (no uplink contention, migrations serial and additive), with the idle
    power folded into every step that is not device computation (energy = Σ step
    energies + P_idle·(C − device busy time)).  Labels dominated in every criterion are
    dropped, as are labels whose fastest completion breaks the bound or whose cheapest
    completion exceeds ``upper`` (a known solution's value: time in phase 1, energy in
    phase 2).  With memory in the label the answer is exact under the capacities too."""
    n, A = P.n, P.allowed
    e_on = phase == 2
    pi = P.pidle if e_on else 0.0
    V = range(P.nf) if (e_on and levels) else (P.fmax,)
    Q = range(P.nq) if (e_on and levels) else (P.qmax,)
    qmax, fmax = P.qmax, P.fmax
    dev_energy = P.inst.dev_energy
    # node options: (dt, de, v, q_migration), Pareto-pruned
    nodeopt: list[dict[int, list]] = []
    for i in range(n):
        opts = {}
        for k in A[i]:
            c = []
            base_t = base_e = 0.0
            if i == 0 and k != DEVICE:
                t_in, e_in = P.inp(k)
                base_t, base_e = t_in, e_in + pi * t_in
            qs = Q if (k != DEVICE and P.migrates_up(i)) else (qmax,)
            for q in qs:
                mt, me = P.mig(i, k, q)
                if k == DEVICE:
                    for v in V:
                        c.append((base_t + mt + P.ptime(i, k, v),
                                  (base_e + me + pi * mt + dev_energy[i][v]) if e_on else 0.0, v, q))
                else:
                    st = P.ptime(i, k)
                    c.append((base_t + mt + st, (base_e + me + pi * (mt + st)) if e_on else 0.0, fmax, q))
            opts[k] = _pareto(c)
        nodeopt.append(opts)
    # transfer options i -> i+1: (dt, de, q)
    trans: list[dict[tuple[int, int], list]] = []
    for i in range(n - 1):
        tr = {}
        for k in A[i]:
            for l in A[i + 1]:
                qs = Q if (k == DEVICE and l != DEVICE) else (qmax,)
                c = []
                for q in qs:
                    t, e = P.trans(i, k, l, q)
                    c.append((t, (e + pi * t) if e_on else 0.0, q))
                tr[k, l] = _pareto(c)
        trans.append(tr)
    ret = {}
    for k in A[n - 1]:
        t, e = P.down(n - 1, k) if k != DEVICE else (0.0, 0.0)
        ret[k] = (t, (e + pi * t) if e_on else 0.0)
    # fastest and cheapest completions after node i at k (for pruning)
    tail_t = [dict.fromkeys(A[i], 0.0) for i in range(n)]
    tail_e = [dict.fromkeys(A[i], 0.0) for i in range(n)]
    for k in A[n - 1]:
        tail_t[n - 1][k], tail_e[n - 1][k] = ret[k]
    for i in range(n - 2, -1, -1):
        for k in A[i]:
            tail_t[i][k] = min(trans[i][k, l][0][0] + nodeopt[i + 1][l][0][0] + tail_t[i + 1][l] for l in A[i + 1])
            tail_e[i][k] = min(min(c[1] for c in trans[i][k, l]) + min(c[1] for c in nodeopt[i + 1][l])
                               + tail_e[i + 1][l] for l in A[i + 1])
    binding = _binding_locations(P) if memory else []
    ub_place = None
    lam, mu, W = 0.0, 0.0, None
    if e_on:
        Bt = bound_s * (1 + BOUND_RTOL)
        if binding or lagrange:
            # Lagrangian bounding (resource-constrained shortest path): for λ ≥ 0 a completion
            # within the time left costs at least W_λ(i,k) − λ·(B − t) in energy
            lg = _lagrange(P, nodeopt, trans, ret, Bt, binding)
            if lg is not None:
                lam, mu, W, ub_e, ub_place, proven = lg
                if proven:
                    return ub_place
                if ub_place is not None and ub_e < upper:
                    upper = ub_e
        Be = upper * (1 + 1e-9)
    else:
        Bt, Be = upper * (1 + 1e-9), _INF
    pos = {k: j for j, k in enumerate(binding)}
    cap = [P.inst.system.mem_capacity_bytes[k] * (1 + 1e-12) for k in binding]
    need = P.inst.mem_need
    pareto = _pareto_mem if binding else _pareto

    def grow(mem: tuple, i: int, l: int) -> tuple | None:
        j = pos.get(l)
        if j is None:
            return mem
        u = mem[j] + need[i]
        if u > cap[j]:
            return None
        return mem[:j] + (u,) + mem[j + 1:]

    zero = tuple(0.0 for _ in binding)
    jb = pos[binding[0]] if (len(binding) == 1 and mu > 0.0) else None
    capb = cap[jb] if jb is not None else 0.0
    # labels: (t, e, memory, prev_k, prev_index, v, q_mig, q_in)
    n_labels = 0
    labels: list[dict[int, list]] = [{}]
    for k in A[0]:
        mem = grow(zero, 0, k)
        tk, ek = tail_t[0][k], tail_e[0][k]
        wk = -_INF if W is None else W[0][k] - lam * Bt - mu * capb
        mk = 0.0 if (mem is None or jb is None) else mu * mem[jb]
        labels[0][k] = [] if mem is None else pareto(
            [(t, e, mem, -1, -1, v, qm, qmax) for (t, e, v, qm) in nodeopt[0][k]
             if t + tk <= Bt and e + max(wk + lam * t + mk, ek) <= Be])
    for i in range(1, n):
        cur: dict[int, list] = {}
        prev = labels[i - 1]
        tr = trans[i - 1]
        nodes_i = nodeopt[i]
        for l in A[i]:
            tl, el = tail_t[i][l], tail_e[i][l]
            # energy test: e + max(cheapest completion, W_λ − λ·(B − t)) ≤ upper
            wl = -_INF if W is None else W[i][l] - lam * Bt - mu * capb
            opts = nodes_i[l]
            cand = []
            for k, labs in prev.items():
                for (ct, ce, q) in tr[k, l]:
                    for idx, lab in enumerate(labs):
                        mem = grow(lab[2], i, l) if binding else zero
                        if mem is None:
                            continue
                        t0 = lab[0] + ct
                        e0 = lab[1] + ce
                        wm = wl if jb is None else wl + mu * mem[jb]
                        for (ot, oe, v, qm) in opts:
                            t = t0 + ot
                            e = e0 + oe
                            if t + tl <= Bt and e + max(wm + lam * t, el) <= Be:
                                cand.append((t, e, mem, k, idx, v, qm, q))
            if len(cand) > label_budget:
                return _BUDGET
            cur[l] = pareto(cand) if len(cand) > 1 else cand
            n_labels += len(cur[l])
        labels.append(cur)
        if n_labels > label_budget:
            return _BUDGET
    best = None
    for k, labs in labels[n - 1].items():
        rt, re_ = ret[k]
        for idx, lab in enumerate(labs):
            t, e = lab[0] + rt, lab[1] + re_
            if e_on:
                if t <= Bt and (best is None or (e, t) < best[:2]):
                    best = (e, t, k, idx)
            elif best is None or t < best[1]:
                best = (0.0, t, k, idx)
    if best is None:
        return ub_place
    if ub_place is not None and P.evaluate(ub_place).energy_j < best[0] * (1 - 1e-12):
        return ub_place
    loc, dv, tx = [0] * n, [fmax] * n, [qmax] * n
    k, idx = best[2], best[3]
    for i in range(n - 1, -1, -1):
        lab = labels[i][k][idx]
        loc[i] = k
        if k == DEVICE:
            dv[i] = lab[5]
        else:
            tx[i] = lab[6]
        if i:
            pk = lab[3]
            if pk == DEVICE and k != DEVICE:
                tx[i - 1] = lab[7]
            k, idx = pk, lab[4]
    return Placement(loc, dv, tx)


# =========================================================================== MILP
class _Model:
    """A sparse row-wise LP/MILP for HiGHS."""

    def __init__(self) -> None:
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.cost: list[float] = []
        self.integer: list[int] = []
        self.rlb: list[float] = []
        self.rub: list[float] = []
        self.start = [0]
        self.index: list[int] = []
        self.value: list[float] = []

    def var(self, lb: float = 0.0, ub: float = _INF, cost: float = 0.0, integer: bool = False) -> int:
        self.lb.append(lb)
        self.ub.append(ub)
        self.cost.append(cost)
        self.integer.append(1 if integer else 0)
        return len(self.lb) - 1

    def row(self, lb: float, ub: float, terms: dict[int, float]) -> None:
        for j, c in terms.items():
            if c != 0.0:
                self.index.append(j)
                self.value.append(c)
        self.start.append(len(self.index))
        self.rlb.append(lb)
        self.rub.append(ub)


def _add(d: dict[int, float], terms: dict[int, float], scale: float = 1.0) -> dict[int, float]:
    for j, c in terms.items():
        d[j] = d.get(j, 0.0) + scale * c
    return d



def _new_highs():
    """A HiGHS instance; the banner HiGHS writes to the C-level stdout when the first one
    is made would land in the middle of evaluate.py's Markdown table, so it is dropped."""
    import highspy

    global _HIGHS_BANNER_DONE
    if _HIGHS_BANNER_DONE:
        return highspy.Highs()
    _HIGHS_BANNER_DONE = True
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):
        return highspy.Highs()
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        return highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


_HIGHS_BANNER_DONE = False

class _Milp:
    """The exact model of one phase (see the module docstring); ``lean=True`` leaves out the
    big-M disjunctions (processor pairs, uplink sequencing) for relaxed mode's LP."""

    def __init__(self, P: _Prep, phase: int, levels: bool, horizon_s: float,
                 bound_s: float | None, energy_unit_j: float = 1.0, lean: bool = False) -> None:
        self.P, self.phase = P, phase
        n, A, inst = P.n, P.allowed, P.inst
        lv = levels and phase == 2
        H = horizon_s
        tau = H / 100.0  # time unit: the horizon is 100
        self.tau = tau
        eps = energy_unit_j
        self.eps = eps
        m = _Model()
        self.m = m
        fmax, qmax, pi = P.fmax, P.qmax, P.pidle
        succs, preds = P.succs, P.preds
        # ---------------------------------------------------------- location and levels
        X: list[dict[int, int]] = []
        for i in range(n):
            one = len(A[i]) == 1
            X.append({k: m.var(1.0 if one else 0.0, 1.0, integer=True) for k in A[i]})
            m.row(1.0, 1.0, {X[i][k]: 1.0 for k in A[i]})
        self.X = X
        Y: list[dict[int, int] | None] = [None] * n
        TQ: list[dict[int, int] | None] = [None] * n
        MQ: list[dict[int, dict[int, int]] | None] = [None] * n
        may_up = [DEVICE in A[i] and any(l != DEVICE for j in succs[i] for l in A[j]) for i in range(n)]
        for i in range(n):
            if lv and DEVICE in A[i] and P.nf > 1:
                Y[i] = {v: m.var(integer=True, ub=1.0) for v in range(P.nf)}
                m.row(0.0, 0.0, _add({X[i][DEVICE]: -1.0}, {c: 1.0 for c in Y[i].values()}))
            if lv and may_up[i] and P.nq > 1:
                TQ[i] = {q: m.var(integer=True, ub=1.0) for q in range(P.nq)}
                m.row(0.0, 0.0, _add({X[i][DEVICE]: -1.0}, {c: 1.0 for c in TQ[i].values()}))
            if lv and P.migrates_up(i) and P.nq > 1:
                MQ[i] = {}
                for k in A[i]:
                    if k != DEVICE:
                        MQ[i][k] = {q: m.var(integer=True, ub=1.0) for q in range(P.nq)}
                        m.row(0.0, 0.0, _add({X[i][k]: -1.0}, {c: 1.0 for c in MQ[i][k].values()}))
        self.Y, self.TQ, self.MQ = Y, TQ, MQ
        dev_q = [list(TQ[i]) if TQ[i] is not None else [qmax] for i in range(n)]

        def chi(i: int, k: int, q: int) -> dict[int, float]:
            if k == DEVICE and TQ[i] is not None:
                return {TQ[i][q]: 1.0}
            return {X[i][k]: 1.0}

        def p_part(i: int, k: int) -> dict[int, float]:
            if k == DEVICE and Y[i] is not None:
                return {Y[i][v]: P.ptime(i, DEVICE, v) / tau for v in Y[i]}
            return {X[i][k]: P.ptime(i, k) / tau}

        p_expr = []
        for i in range(n):
            d: dict[int, float] = {}
            for k in A[i]:
                _add(d, p_part(i, k))
            p_expr.append(d)
        # migrations (the serial reconfiguration phase before the token's computation)
        mig_t: dict[int, float] = {}
        mig_e: dict[int, float] = {}
        for i in range(n):
            for k in A[i]:
                if MQ[i] is not None and k in MQ[i]:
                    for q, c in MQ[i][k].items():
                        t, e = P.mig(i, k, q)
                        mig_t[c] = mig_t.get(c, 0.0) + t / tau
                        mig_e[c] = mig_e.get(c, 0.0) + e / eps
                else:
                    t, e = P.mig(i, k, qmax)
                    if t > 0.0:
                        c = X[i][k]
                        mig_t[c] = mig_t.get(c, 0.0) + t / tau
                        mig_e[c] = mig_e.get(c, 0.0) + e / eps
        # ---------------------------------------------------------- times
        Hs = 100.0
        head = [h / tau for h in P.head]
        tail = [t / tau for t in P.tail]
        pmin = [p / tau for p in P.pmin]
        S = [m.var(head[i], max(head[i], Hs - tail[i] - pmin[i])) for i in range(n)]
        self.S = S
        R = m.var(max(head[i] + pmin[i] for i in range(n)), Hs)
        self.R = R
        energy: dict[int, float] = {}

        def f_expr(i: int) -> dict[int, float]:  # finish time S_i + p_i
            return _add({S[i]: 1.0}, p_expr[i])

        # ---------------------------------------------------------- edges: π, precedence
        PI: dict[tuple[int, int], dict[tuple[int, int, int], int]] = {}
        for j in range(n):
            for i in preds[j]:
                origins = [(DEVICE, q) for q in dev_q[i]] if DEVICE in A[i] else []
                origins += [(k, qmax) for k in A[i] if k != DEVICE]
                pv = {}
                for (k, q) in origins:
                    for l in A[j]:
                        pv[k, q, l] = m.var(0.0, 1.0)
                PI[i, j] = pv
                for (k, q) in origins:
                    m.row(0.0, 0.0, _add({pv[k, q, l]: 1.0 for l in A[j]}, chi(i, k, q), -1.0))
                for l in A[j]:
                    m.row(0.0, 0.0, _add({pv[k, q, l]: 1.0 for (k, q) in origins}, {X[j][l]: -1.0}))
                row = _add({S[j]: 1.0}, f_expr(i), -1.0)
                for (k, q, l), c in pv.items():
                    t = P.trans(i, k, l, q)[0]
                    if t > 0.0:
                        row[c] = row.get(c, 0.0) - t / tau
                m.row(0.0, _INF, row)
        self.PI = PI
        # ---------------------------------------------------------- uplink events
        sources = [i for i in range(n) if not preds[i]]
        events = []  # (kind, node, server)
        for i in range(n):
            if not preds[i]:
                events += [("in", i, k) for k in A[i] if k != DEVICE]
            if may_up[i]:
                dests = sorted({l for j in succs[i] for l in A[j] if l != DEVICE})
                events += [("out", i, l) for l in dests]
        # upper bounds of the uplink free time: an active upload ends before its consumer starts
        consumer = []
        for kind, i, k in events:
            if kind == "out":
                consumer.append(min(P.pmin[j] + P.tail[j] for j in succs[i] if k in A[j]))
            else:
                consumer.append(min(P.pmin[s] + P.tail[s] for s in sources if s >= i))
        ubg, run = [], -_INF
        for c in consumer:
            run = max(run, Hs - c / tau)
            ubg.append(max(run, 0.0))
        G_prev = None
        b_col: dict[tuple[int, int], dict[int, float]] = {}
        G_in: dict[tuple[int, int], int] = {}
        self.events = events
        uplink_load: dict[int, float] = {R: 1.0}
        for e_idx, (kind, i, k) in enumerate(events):
            if kind == "in":
                earlier = [s for s in sources if s < i and k in A[s]]
                if not earlier:
                    act = {X[i][k]: 1.0}
                else:
                    b = m.var(0.0, 1.0)
                    m.row(0.0, _INF, _add({b: 1.0, X[i][k]: -1.0}, {X[s][k]: 1.0 for s in earlier}))
                    act = {b: 1.0}
                b_col[i, k] = act
                t_in, e_in = P.inp(k)
                dur = {c: t_in / tau * v for c, v in act.items()}
                _add(energy, act, e_in / eps)
            else:
                l = k
                aq = {q: m.var(0.0, 1.0) for q in dev_q[i]}
                for j in succs[i]:
                    if l in A[j]:
                        for q, c in aq.items():
                            m.row(0.0, _INF, {c: 1.0, PI[i, j][DEVICE, q, l]: -1.0})
                dur = {}
                for q, c in aq.items():
                    t, e = P.up(i, l, q)
                    dur[c] = t / tau
                    energy[c] = energy.get(c, 0.0) + e / eps
                act = {c: 1.0 for c in aq.values()}
            if lean:  # no sequencing on the uplink, only its total busy time (below)
                _add(uplink_load, dur, -1.0)
                continue
            G = m.var(0.0, ubg[e_idx])
            if kind == "in":
                G_in[i, k] = G
            else:
                # the upload starts when i has finished (and the uplink is free)
                M = max(Hs - tail[i], 0.0)
                row = _add(_add({G: 1.0}, f_expr(i), -1.0), dur, -1.0)
                _add(row, act, -M)
                m.row(-M, _INF, row)
                # a successor at l waits for the upload's end
                for j in succs[i]:
                    if l in A[j]:
                        M2 = max(ubg[e_idx] - head[j], 0.0)
                        row = {S[j]: 1.0, G: -1.0}
                        for q in dev_q[i]:
                            row[PI[i, j][DEVICE, q, l]] = -M2
                        m.row(-M2, _INF, row)
            # uplink chain in the engine's order
            row = _add({G: 1.0}, dur, -1.0)
            if G_prev is not None:
                row[G_prev] = -1.0
            m.row(0.0, _INF, row)
            G_prev = G
        if G_prev is not None:
            m.row(0.0, _INF, {R: 1.0, G_prev: -1.0})
        if lean and len(uplink_load) > 1:  # the uplink's total busy time (valid)
            m.row(0.0, _INF, uplink_load)
        # the token ids: a source at server k waits for the first upload of them to k
        for s in sources:
            servers = [k for k in A[s] if k != DEVICE]
            if servers:
                m.row(0.0, _INF, _add({S[s]: 1.0}, {X[s][k]: -P.inp(k)[0] / tau for k in servers}))
            if lean:
                continue
            for k in servers:
                for s2 in sources:
                    if s2 > s or (s2, k) not in G_in:
                        continue
                    M = max(ubg[events.index(("in", s2, k))] - head[s], 0.0)
                    row = {S[s]: 1.0, G_in[s2, k]: -1.0}
                    _add(row, b_col[s2, k], -M)
                    if s2 == s:
                        m.row(-M, _INF, row)
                    else:
                        row[X[s][k]] = row.get(X[s][k], 0.0) - M
                        m.row(-2 * M, _INF, row)
        # ---------------------------------------------------------- processors
        desc = [0] * n
        for i in range(n - 1, -1, -1):
            for j in succs[i]:
                desc[i] |= (1 << j) | desc[j]
        for j in range(n) if not lean else ():  # lean: the load rows below only
            for i in range(j):
                if (desc[i] >> j) & 1:
                    continue
                for k in A[i]:
                    if k in X[j]:
                        M = max(Hs - tail[i] - head[j], 0.0)
                        row = _add({S[j]: 1.0}, f_expr(i), -1.0)
                        row[X[i][k]] = row.get(X[i][k], 0.0) - M
                        row[X[j][k]] = row.get(X[j][k], 0.0) - M
                        m.row(-2 * M, _INF, row)
        # processor loads (valid)
        for k in range(P.K):
            nodes = [i for i in range(n) if k in A[i]]
            if len(nodes) > 1:
                row = {R: 1.0}
                for i in nodes:
                    _add(row, p_part(i, k), -1.0)
                m.row(0.0, _INF, row)
        # ---------------------------------------------------------- makespan and energy
        for i in range(n):
            if not succs[i]:
                row = _add({R: 1.0}, f_expr(i), -1.0)
                for k in A[i]:
                    if k != DEVICE:
                        row[X[i][k]] = row.get(X[i][k], 0.0) - P.down(i, k)[0] / tau
                m.row(0.0, _INF, row)
        cap = inst.system.mem_capacity_bytes
        for k in range(P.K):
            nodes = [i for i in range(n) if k in A[i]]
            if sum(inst.mem_need[i] for i in nodes) > cap[k] * (1 + 1e-12):
                m.row(-_INF, cap[k] * (1 + 1e-12) / 1e9, {X[i][k]: inst.mem_need[i] / 1e9 for i in nodes})
        makespan = _add({R: 1.0}, mig_t)
        if phase == 1:
            for c, v in makespan.items():
                m.cost[c] += v
        else:
            m.row(-_INF, bound_s * (1 + BOUND_RTOL) / tau, makespan)
            # device compute, idle P_idle·(C − busy)
            for i in range(n):
                if DEVICE in A[i]:
                    if Y[i] is not None:
                        for v, c in Y[i].items():
                            energy[c] = energy.get(c, 0.0) + (inst.dev_energy[i][v] - pi * P.ptime(i, DEVICE, v)) / eps
                    else:
                        c = X[i][DEVICE]
                        energy[c] = energy.get(c, 0.0) + (inst.dev_energy[i][fmax] - pi * P.ptime(i, DEVICE)) / eps
            _add(energy, makespan, pi * tau / eps)
            _add(energy, mig_e)
            # downloads: once per (node, server) whose output some successor on the device needs
            for i in range(n):
                if not succs[i]:
                    for k in A[i]:
                        if k != DEVICE:
                            c = X[i][k]
                            energy[c] = energy.get(c, 0.0) + P.down(i, k)[1] / eps
                    continue
                users = [j for j in succs[i] if DEVICE in A[j]]
                if not users:
                    continue
                for k in A[i]:
                    if k == DEVICE:
                        continue
                    dcol = m.var(0.0, 1.0, cost=P.down(i, k)[1] / eps)
                    for j in users:
                        m.row(0.0, _INF, {dcol: 1.0, PI[i, j][k, qmax, DEVICE]: -1.0})
            for c, v in energy.items():
                m.cost[c] += v
        self.obj_unit = tau if phase == 1 else eps

    # ------------------------------------------------------------------ solving
    def run(self, *, relax: bool = False, time_limit_s: float | None = None, mip_rel_gap: float = 1e-9,
            threads: int = 1, cutoff: float | None = None) -> tuple[str, list[float], float, float]:
        """Solve; return (HiGHS status string, column values, objective (native units), gap).

        ``cutoff``: the objective of a known solution (native units), passed as HiGHS's
        ``objective_bound`` (slightly inflated) so that B&B prunes against it.  (HiGHS 1.16's
        MIP start, ``setSolution``, is not used: when presolve improves the start, the
        returned columns are the start's while the objective is the improved one.)"""
        import highspy

        m = self.m
        h = _new_highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", int(threads))
        h.setOptionValue("random_seed", 0)
        h.setOptionValue("primal_feasibility_tolerance", 1e-9)
        h.setOptionValue("dual_feasibility_tolerance", 1e-9)
        if relax:  # measured on bench_solver's LPs: presolve costs more than it saves
            h.setOptionValue("presolve", "off")
        else:
            h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
            h.setOptionValue("mip_abs_gap", 1e-12)
            h.setOptionValue("mip_feasibility_tolerance", 1e-9)
        if time_limit_s is not None:
            h.setOptionValue("time_limit", max(float(time_limit_s), 1e-3))
        nc, nr = len(m.lb), len(m.rlb)
        inf = highspy.kHighsInf
        clip = lambda a: np.clip(np.array(a, dtype=float), -inf, inf)  # noqa: E731
        integrality = np.zeros(nc, dtype=np.int32) if relax else np.array(m.integer, dtype=np.int32)
        st = h.passModel(nc, nr, len(m.index), 2, 1, 0.0, np.array(m.cost, dtype=float), clip(m.lb),
                         clip(m.ub), clip(m.rlb), clip(m.rub), np.array(m.start, dtype=np.int32),
                         np.array(m.index, dtype=np.int32), np.array(m.value, dtype=float), integrality)
        if st == highspy.HighsStatus.kError:
            raise RuntimeError("HiGHS rejected the model (passModel error)")
        if cutoff is not None and not relax and math.isfinite(cutoff):
            h.setOptionValue("objective_bound", cutoff / self.obj_unit * (1 + 1e-7) + 1e-9)
        h.run()
        ms = h.getModelStatus()
        status = h.modelStatusToString(ms)
        info = h.getInfo()
        has_sol = info.primal_solution_status == 2  # kSolutionStatusFeasible
        self.dual_bound = float(info.mip_dual_bound) * self.obj_unit if not relax else _INF
        if ms == highspy.HighsModelStatus.kInfeasible:
            if cutoff is not None and not relax:
                raise RuntimeError("HiGHS found no solution as good as the known incumbent "
                                   f"(model status {status!r}): the model is wrong")
            return "infeasible", [], _INF, _INF
        if ms not in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kTimeLimit,
                      highspy.HighsModelStatus.kInterrupt, highspy.HighsModelStatus.kSolutionLimit) or not has_sol:
            if ms == highspy.HighsModelStatus.kTimeLimit:
                return "time_limit_no_solution", [], _INF, _INF
            raise RuntimeError(f"HiGHS failed: model status {status!r}")
        col = list(h.getSolution().col_value)
        obj = info.objective_function_value * self.obj_unit
        if not relax:  # guard against a HiGHS answer whose columns do not match its objective
            val = float(np.dot(m.cost, col)) * self.obj_unit
            if abs(val - obj) > 1e-7 * max(abs(val), 1e-300):
                raise RuntimeError(f"HiGHS returned columns of objective {val!r} for objective {obj!r}")
        gap = 0.0 if relax else float(info.mip_gap)
        if not math.isfinite(gap):
            gap = _INF
        if ms == highspy.HighsModelStatus.kOptimal:
            return "optimal", col, obj, (gap if math.isfinite(gap) else 0.0)
        return "time_limit", col, obj, gap

    def placement(self, col: list[float]) -> Placement:
        """Read (round) a placement from column values: argmax per node (ties: lower location,
        higher level); levels that cannot matter stay at the highest."""
        P = self.P
        n = P.n
        loc = []
        for i in range(n):
            loc.append(max(self.X[i], key=lambda k: (col[self.X[i][k]], -k)))
        dv, tx = [P.fmax] * n, [P.qmax] * n
        for i in range(n):
            k = loc[i]
            if k == DEVICE:
                if self.Y[i] is not None:
                    dv[i] = max(self.Y[i], key=lambda v: (col[self.Y[i][v]], v))
                if self.TQ[i] is not None and any(loc[j] != DEVICE for j in P.succs[i]):
                    tx[i] = max(self.TQ[i], key=lambda q: (col[self.TQ[i][q]], q))
            elif self.MQ[i] is not None and k in self.MQ[i]:
                tx[i] = max(self.MQ[i][k], key=lambda q: (col[self.MQ[i][k][q]], q))
        return Placement(loc, dv, tx)

    def lp_assignment(self, col: list[float]) -> list[dict[int, float]]:
        return [{k: col[c] for k, c in xs.items()} for xs in self.X]


# =========================================================================== heuristics
def _greedy_fill(P: _Prep, prefer: int) -> list[int] | None:
    """Every node at ``prefer`` while it fits, else at the fastest location that still fits."""
    used = [0.0] * P.K
    cap = P.inst.system.mem_capacity_bytes
    need = P.inst.mem_need
    loc = []
    for i in range(P.n):
        order = sorted(P.allowed[i], key=lambda k: (k != prefer, P.ptime(i, k), k))
        for k in order:
            if used[k] + need[i] <= cap[k] * (1 + 1e-12):
                used[k] += need[i]
                loc.append(k)
                break
        else:
            return None
    return loc


def _first_fit(P: _Prep, scores: list[dict[int, float]]) -> list[int] | None:
    """Round an assignment: most confident nodes first, each to its best-scored location
    that still fits (feasible_locations semantics); None if some node fits nowhere."""
    used = [0.0] * P.K
    cap = P.inst.system.mem_capacity_bytes
    need = P.inst.mem_need
    loc = [-1] * P.n
    order = sorted(range(P.n), key=lambda i: (-max(scores[i].values()), i))
    for i in order:
        for k in sorted(scores[i], key=lambda k: (-scores[i][k], k)):
            if used[k] + need[i] <= cap[k] * (1 + 1e-12):
                used[k] += need[i]
                loc[i] = k
                break
        else:
            return None
    return loc


def _incumbent(P: _Prep, local_search_s: float) -> tuple[Placement, float] | None:
    """A good memory-feasible placement at the highest levels (for big-M and warm starts)."""
    cands: list[list[int]] = []
    for k in range(P.K):
        if all(k in a for a in P.allowed):
            cands.append([k] * P.n)
        g = _greedy_fill(P, k)
        if g is not None:
            cands.append(g)
    if P.chain and not _binding_locations(P):
        p = _dp_chain(P, 1)
        if p is not None:
            cands.append(p.loc)
    best: tuple[float, list[int]] | None = None
    for loc in cands:
        if P.fits(loc):
            t = P.evaluate(Placement(loc)).makespan_s
            if best is None or t < best[0]:
                best = (t, loc)
    if best is None:
        return None
    t_best, loc = best[0], list(best[1])
    if local_search_s > 0:
        # first-improvement single-node moves, within a time budget
        deadline = time.perf_counter() + local_search_s
        cap = P.inst.system.mem_capacity_bytes
        need = P.inst.mem_need
        used = [0.0] * P.K
        for i, k in enumerate(loc):
            used[k] += need[i]
        improved = True
        while improved and time.perf_counter() < deadline:
            improved = False
            for i in range(P.n):
                for k in P.allowed[i]:
                    if k == loc[i] or used[k] + need[i] > cap[k] * (1 + 1e-12):
                        continue
                    old = loc[i]
                    loc[i] = k
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


def _horizon_fallback(P: _Prep) -> float:
    """A crude makespan upper bound: every activity in sequence."""
    n, A = P.n, P.allowed
    tot = sum(max(P.mig(i, k, q)[0] for k in A[i] for q in range(P.nq)) for i in range(n))
    tot += sum(P.inp(k)[0] for k in range(1, P.K))
    for i in range(n):
        tot += max(P.ptime(i, k) for k in A[i])
        tot += sum(max(P.trans(i, k, l, 0)[0] for k in A[i]) for l in range(P.K))
    return tot


def _check(P: _Prep, placement: Placement, milp_value: float, what: str, proven: bool) -> Result:
    """Re-evaluate with the engine; it must equal the MILP's objective."""
    res = evaluate(P.inst, placement, record=True, check=True)
    val = res.makespan_s if what == "makespan" else res.energy_j
    tol = CHECK_RTOL * max(abs(milp_value), abs(val), 1e-300)
    if val > milp_value + tol or (proven and val < milp_value - tol):
        raise RuntimeError(f"solver/engine mismatch on {what}: MILP {milp_value!r}, engine {val!r} "
                           f"(rel. diff {abs(val - milp_value) / max(abs(val), 1e-300):.3e})")
    return res


# =========================================================================== solve
def _remaining(t_end: float | None) -> float | None:
    return None if t_end is None else max(t_end - time.perf_counter(), 1e-3)


def solve(inst: Instance, *, mode: Literal["exact", "relaxed"] = "exact", phase2: bool = True,
          slack: float = 0.10, deadline_s: float | None = None, time_limit_s: float | None = None,
          levels: bool = True, use_dp: bool = True, mip_rel_gap: float = 1e-9, threads: int = 1,
          compare_exact: bool = False, exact: Solution | None = None) -> Solution:
    """DeAOff on ``inst``: phase 1 (minimum makespan T*), then phase 2 (minimum device energy
    with makespan ≤ (1 + slack)·T*, or ≤ ``deadline_s``) unless ``phase2=False``.

    ``mode="exact"``: chains by DP when ``use_dp`` (memory-exact; hands over to the MILP
    only when capacities bind and the DP cannot settle them, see :func:`_dp_phase1`),
    otherwise the MILP (HiGHS, relative gap ``mip_rel_gap``, ``threads`` threads).
    ``time_limit_s`` caps the whole solve (half for phase 1 at most); on expiry the best
    incumbent is returned with status "time_limit" and HiGHS's gap.
    ``mode="relaxed"``: LP relaxation + rounding + repair.  With ``exact`` (a reference
    exact Solution) or ``compare_exact=True`` (computed here with the same arguments, not
    counted in ``wall_time_s``) the relaxed phase 2 uses the reference's latency bound and
    ``gap_vs_exact`` is filled in (inf when the relaxed placement cannot meet that bound).
    ``levels=False``: every DVFS and transmit-power level stays at the highest.
    Raises ValueError when no placement is feasible (naming the node or the budget) or the
    deadline is below T*; RuntimeError when HiGHS fails or the engine disagrees with it.
    """
    if mode not in ("exact", "relaxed"):
        raise ValueError(f"mode must be 'exact' or 'relaxed', got {mode!r}")
    if not (slack >= 0 and math.isfinite(slack)):
        raise ValueError(f"slack must be a finite number >= 0, got {slack!r}")
    if deadline_s is not None and not (deadline_s > 0 and math.isfinite(deadline_s)):
        raise ValueError(f"deadline_s must be a finite number > 0, got {deadline_s!r}")
    if time_limit_s is not None and not (time_limit_s > 0):
        raise ValueError(f"time_limit_s must be > 0, got {time_limit_s!r}")
    if mode == "relaxed" and (compare_exact or exact is not None):
        if exact is None:
            exact = solve(inst, mode="exact", phase2=phase2, slack=slack, deadline_s=deadline_s,
                          time_limit_s=time_limit_s, levels=levels, use_dp=use_dp,
                          mip_rel_gap=mip_rel_gap, threads=threads)
        return _solve_relaxed(inst, phase2, slack, deadline_s, levels, threads, exact)
    if mode == "relaxed":
        return _solve_relaxed(inst, phase2, slack, deadline_s, levels, threads, None)
    return _solve_exact(inst, phase2, slack, deadline_s, time_limit_s, levels, use_dp, mip_rel_gap, threads)


DP_LABEL_BUDGET = 20_000
"""Labels a chain DP may keep before the solver falls back to the MILP."""


def _dp_phase1(P: _Prep) -> Placement | None:
    """Chain phase 1 by DP; None (use the MILP) when the memory-free DP's answer breaks a
    capacity and the memory-aware DP cannot settle it (more than one location can overflow,
    or the labels exceed ``DP_LABEL_BUDGET``)."""
    p = _dp_chain(P, 1, memory=False)
    if p is not None and P.fits(p.loc):
        return Placement(p.loc)
    if len(_binding_locations(P)) != 1:  # memory vectors barely dominate each other: MILP
        return None
    inc = _incumbent(P, local_search_s=0.0)  # its makespan prunes the memory-carrying labels
    p = _dp_chain(P, 1, upper=_INF if inc is None else inc[1], label_budget=DP_LABEL_BUDGET)
    if p is _BUDGET:
        return None
    if p is None:
        raise ValueError("no placement fits the memory budget: the nodes cannot be packed into the "
                         "memory of the up locations")
    return Placement(p.loc)


def _dp_phase2(P: _Prep, p1: Placement, bound: float, levels: bool) -> Placement | None:
    """Chain phase 2 by DP (``p1`` meets the bound and the capacities); None (use the MILP)
    in the same cases as :func:`_dp_phase1`."""
    r1 = P.evaluate(p1)
    upper = r1.energy_j if r1.makespan_s <= bound * (1 + BOUND_RTOL) else _INF
    for lagrange in (False, True):
        p = _dp_chain(P, 2, bound, levels, upper=upper, lagrange=lagrange, memory=False,
                      label_budget=DP_LABEL_BUDGET)
        if p is not _BUDGET:
            break
    else:
        p = None
    if p is None and upper < _INF:  # pruned to nothing: p1 is optimal
        return p1
    if p is not None and p is not _BUDGET and P.fits(p.loc):
        return p
    if len(_binding_locations(P)) != 1:
        return None
    p = _dp_chain(P, 2, bound, levels, upper=upper, lagrange=True, label_budget=DP_LABEL_BUDGET)
    if p is _BUDGET:
        return None
    return p1 if p is None else p


def _gap(value: float, dual_bound: float) -> float:
    """Relative gap of an incumbent against a dual bound (inf without a usable bound)."""
    if not math.isfinite(dual_bound) or value <= 0:
        return _INF
    return max(0.0, (value - dual_bound) / value)


def _phase2_bound(t_star: float, slack: float, deadline_s: float | None) -> float:
    if deadline_s is None:
        return (1.0 + slack) * t_star
    if deadline_s < t_star * (1 - BOUND_RTOL):
        raise ValueError(f"deadline {deadline_s!r} s is below the minimum makespan T* = {t_star!r} s")
    return deadline_s


def _solve_exact(inst: Instance, phase2: bool, slack: float, deadline_s: float | None,
                 time_limit_s: float | None, levels: bool, use_dp: bool, mip_rel_gap: float,
                 threads: int) -> Solution:
    t0 = time.perf_counter()
    t_end = None if time_limit_s is None else t0 + time_limit_s
    fast_p1 = None
    if use_dp and is_chain(inst):
        sol, fast_p1 = _solve_chain_fast(inst, phase2, slack, deadline_s, levels, t0)
        if sol is not None:
            return sol
    P = _Prep(inst)
    statuses: list[str] = []
    timed_out = False
    gap = 0.0
    used_milp = False
    # ------------------------------------------------------------------ phase 1
    p1 = None
    if fast_p1 is not None:
        p1, res1 = fast_p1
        statuses.append("dp")
    elif use_dp and P.chain:
        p1 = _dp_phase1(P)
        if p1 is not None:
            res1 = evaluate(inst, p1, record=not phase2, check=True)
            statuses.append("dp")
    if p1 is None:
        used_milp = True
        budget = None if t_end is None else (t_end - time.perf_counter()) * (0.5 if phase2 else 1.0)
        ls = 0.5 if budget is None else min(0.5, 0.1 * budget)
        inc = _incumbent(P, local_search_s=ls)
        ub = inc[1] if inc is not None else _horizon_fallback(P)
        H = ub * (1 + 1e-6) - P.mig_min
        model = _Milp(P, 1, levels, H, None)
        status, col, obj, g = model.run(time_limit_s=None if budget is None else max(budget, 1e-3),
                                        mip_rel_gap=mip_rel_gap, threads=threads,
                                        cutoff=None if inc is None else inc[1])
        statuses.append(status)
        if status == "infeasible":
            raise ValueError("no placement fits the memory budget: the nodes cannot be packed into the "
                             "memory of the up locations")
        if status == "time_limit_no_solution":
            if inc is None:
                raise RuntimeError("HiGHS hit the time limit in phase 1 without a feasible placement")
            p1, timed_out = inc[0], True
            res1 = evaluate(inst, p1, record=True, check=True)
            gap = max(gap, _gap(res1.makespan_s, model.dual_bound))
        else:
            p1 = model.placement(col)
            res1 = _check(P, p1, obj, "makespan", status == "optimal")
            if status == "time_limit":
                timed_out, gap = True, max(gap, g)
    t_star = res1.makespan_s
    if not phase2:
        status = "time_limit" if timed_out else ("optimal" if used_milp else "dp_optimal")
        return Solution(p1, res1, res1.makespan_s, res1.energy_j, t_star, None, status, gap,
                        time.perf_counter() - t0, "exact-milp" if used_milp else "exact-dp", p1, statuses)
    # ------------------------------------------------------------------ phase 2
    bound = _phase2_bound(t_star, slack, deadline_s)
    p2 = None
    if use_dp and P.chain:
        p2 = _dp_phase2(P, p1, bound, levels)
        if p2 is not None:
            res2 = evaluate(inst, p2, record=True, check=True)
            statuses.append("dp")
    if p2 is None:
        used_milp = True
        res_start = evaluate(inst, p1, record=False, check=False)
        model = _Milp(P, 2, levels, bound * (1 + 1e-6) - P.mig_min, bound,
                      energy_unit_j=max(res_start.energy_j, 1e-30) / 100.0)
        status, col, obj, g = model.run(time_limit_s=_remaining(t_end), mip_rel_gap=mip_rel_gap,
                                        threads=threads, cutoff=res_start.energy_j)
        statuses.append(status)
        if status == "infeasible":
            raise RuntimeError("HiGHS reports phase 2 infeasible although the phase-1 placement meets the bound")
        if status == "time_limit_no_solution":
            p2, timed_out = p1, True
            res2 = evaluate(inst, p2, record=True, check=True)
            gap = max(gap, _gap(res2.energy_j, model.dual_bound))
        else:
            p2 = model.placement(col)
            res2 = _check(P, p2, obj, "energy", status == "optimal")
            if status == "time_limit":
                timed_out, gap = True, max(gap, g)
        if res2.makespan_s > bound * (1 + 1e-7):
            raise RuntimeError(f"phase 2 answer breaks the bound: makespan {res2.makespan_s!r} s > {bound!r} s")
    status = "time_limit" if timed_out else ("optimal" if used_milp else "dp_optimal")
    return Solution(p2, res2, res2.makespan_s, res2.energy_j, t_star, bound, status, gap,
                    time.perf_counter() - t0, "exact-milp" if used_milp else "exact-dp", p1, statuses)


def _solve_chain_fast(inst: Instance, phase2: bool, slack: float, deadline_s: float | None, levels: bool,
                      t0: float) -> tuple[Solution | None, tuple[Placement, Result] | None]:
    """The chain path on numpy tables (:mod:`solvers.chain`): phase 1 by one shortest
    path; phase 2 by the unconstrained energy minimum when it meets the bound (then it is
    the constrained optimum), else by the Lagrangian hull walk and a pruned label search.
    Returns (Solution, None) when that settles both phases, (None, (p1, its result)) when
    phase 2 needs the memory-aware DP or the MILP (a capacity binds, or the label budget
    runs out), (None, None) when memory binds in phase 1 (the general path decides).  A node
    that fits nowhere raises ValueError naming it, as on the general path."""
    T = ChainTables(inst, levels)
    t_dp, p1 = T.fastest()
    if T.binding and not T.fits(p1.loc):
        return None, None
    res1 = evaluate(inst, p1, record=not phase2, check=not phase2)  # p2 below is checked in full
    if abs(res1.makespan_s - t_dp) > CHECK_RTOL * res1.makespan_s:
        raise RuntimeError(f"chain DP/engine mismatch on makespan: DP {t_dp!r}, engine {res1.makespan_s!r}")
    t_star = res1.makespan_s
    if not phase2:
        return Solution(p1, res1, t_star, res1.energy_j, t_star, None, "dp_optimal", 0.0,
                        time.perf_counter() - t0, "exact-dp", p1, ["dp"]), None
    bound = _phase2_bound(t_star, slack, deadline_s)
    B = bound * (1 + BOUND_RTOL)
    e_dp, t_e, p2 = T.cheapest()
    if t_e > B and not T.binding:  # the energy minimum is too slow: hull + label search
        out = T.constrained(B, label_budget=DP_LABEL_BUDGET)
        if out == "budget":
            return None, (p1, res1)
        e_dp, t_e, p2 = out
    if t_e > B or (T.binding and not T.fits(p2.loc)):
        return None, (p1, res1)
    res2 = evaluate(inst, p2, record=True, check=True)
    if abs(res2.energy_j - e_dp) > CHECK_RTOL * max(res2.energy_j, 1e-300) or res2.makespan_s > bound * (1 + 1e-7):
        raise RuntimeError(f"chain DP/engine mismatch on energy: DP {e_dp!r} J / {t_e!r} s, "
                           f"engine {res2.energy_j!r} J / {res2.makespan_s!r} s")
    return Solution(p2, res2, res2.makespan_s, res2.energy_j, t_star, bound, "dp_optimal", 0.0,
                    time.perf_counter() - t0, "exact-dp", p1, ["dp", "dp"]), None


def _roundings(P: _Prep, model: _Milp, col: list[float], samples: int) -> list[Placement]:
    """Rounded placements of an LP solution: argmax first, then ``samples`` randomized
    roundings (location drawn ∝ x, seeded, so deterministic); all memory-feasible
    (most confident nodes first, only locations that still fit); levels by argmax."""
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
    rng = np.random.default_rng(12345)
    uniforms = rng.random((samples, P.n)).tolist()
    # per node: its locations and the cumulative LP weights (location drawn ∝ x)
    cum = []
    for i in range(P.n):
        ks = list(scores[i])
        acc, c = 0.0, []
        for k in ks:
            acc += max(scores[i][k], 0.0) + 1e-12
            c.append(acc)
        cum.append((ks, c))
    for u in uniforms:
        drawn = []
        for i in range(P.n):
            ks, c = cum[i]
            r = u[i] * c[-1]
            pick = ks[-1]
            for k, ck in zip(ks, c):
                if r < ck:
                    pick = k
                    break
            drawn.append({k: (2.0 if k == pick else scores[i][k]) for k in ks})
        add(_first_fit(P, drawn))
    return out


def _repair_towards(P: _Prep, cur: Placement, target: Placement, bound: float) -> Placement:
    """Move nodes (location and levels) back to ``target`` one at a time, the move that
    shortens the makespan most first (memory permitting), until the makespan meets
    ``bound`` (``target`` itself meets it)."""
    B = bound * (1 + BOUND_RTOL)
    loc, (dv, tx) = list(cur.loc), cur.levels(P.inst)
    tdv, ttx = target.levels(P.inst)
    t = P.evaluate(Placement(loc, dv, tx)).makespan_s
    while t > B:
        best = None
        for i in range(P.n):
            if (loc[i], dv[i], tx[i]) == (target.loc[i], tdv[i], ttx[i]):
                continue
            old = (loc[i], dv[i], tx[i])
            loc[i], dv[i], tx[i] = target.loc[i], tdv[i], ttx[i]
            if P.fits(loc):
                tt = P.evaluate(Placement(loc, dv, tx)).makespan_s
                if best is None or tt < best[0]:
                    best = (tt, i)
            loc[i], dv[i], tx[i] = old
        if best is None:  # nothing left to move, or every move overflows memory
            return target
        t, i = best
        loc[i], dv[i], tx[i] = target.loc[i], tdv[i], ttx[i]
    return Placement(loc, dv, tx)


RELAXED_POLISH_GAP = 1e-4
"""Relaxed phase 2 polishes its answer when it is further than this (relative) above the
LP bound (otherwise it is already within it of the optimum)."""
RELAXED_POLISH_SHARE = 1.0
"""The polish may take this share of the time the relaxed solve has taken before it."""
RELAXED_LEAN = True
"""Relaxed mode drops the big-M disjunctions (processor pairs, uplink sequencing) from its
LP: with fractional x they are slack anyway; load rows keep the resources' totals."""
def _polish(P: _Prep, cur: Placement, energy: float, bound: float, t_end: float) -> tuple[Placement, int]:
    """First-improvement local search on device energy under the latency bound ``bound``
    (already inflated) and the capacities: move one node to another location (highest
    levels there), or change one device node's DVFS level or one node's transmit-power
    level; when none of those improves, let two nodes on different locations swap them.
    Every candidate is costed by the engine.  Stops at a local optimum or at ``t_end``.
    Returns (placement, accepted moves)."""
    loc, (dv, tx) = list(cur.loc), cur.levels(P.inst)
    need = P.inst.mem_need
    cap = P.inst.system.mem_capacity_bytes
    used = [0.0] * P.K
    for i, k in enumerate(loc):
        used[k] += need[i]
    moves, improved = 0, True
    while improved and time.perf_counter() < t_end:
        improved = False
        for i in range(P.n):
            if time.perf_counter() >= t_end:
                break
            old = (loc[i], dv[i], tx[i])
            options = [(k, P.fmax, P.qmax) for k in P.allowed[i] if k != old[0]
                       and used[k] + need[i] <= cap[k] * (1 + 1e-12)]
            if old[0] == DEVICE:
                options += [(DEVICE, v, old[2]) for v in range(P.nf) if v != old[1]]
            options += [(old[0], old[1], q) for q in range(P.nq) if q != old[2]]
            for k, v, q in options:
                loc[i], dv[i], tx[i] = k, v, q
                r = P.evaluate(Placement(loc, dv, tx))
                if r.makespan_s <= bound and r.energy_j < energy * (1 - 1e-12):
                    used[old[0]] -= need[i]
                    used[k] += need[i]
                    energy, improved = r.energy_j, True
                    moves += 1
                    break
                loc[i], dv[i], tx[i] = old
        if improved:
            continue
        # swaps: two nodes exchange locations (highest levels), which keeps each location's
        # node count, so a split the memory pins down can still move
        for i in range(P.n):
            if improved or time.perf_counter() >= t_end:
                break
            for j in range(i + 1, P.n):
                a, b = loc[i], loc[j]
                if a == b or b not in P.allowed[i] or a not in P.allowed[j]:
                    continue
                if (used[a] - need[i] + need[j] > cap[a] * (1 + 1e-12)
                        or used[b] - need[j] + need[i] > cap[b] * (1 + 1e-12)):
                    continue
                old_i, old_j = (dv[i], tx[i]), (dv[j], tx[j])
                loc[i], loc[j] = b, a
                dv[i], tx[i], dv[j], tx[j] = P.fmax, P.qmax, P.fmax, P.qmax
                r = P.evaluate(Placement(loc, dv, tx))
                if r.makespan_s <= bound and r.energy_j < energy * (1 - 1e-12):
                    used[a] += need[j] - need[i]
                    used[b] += need[i] - need[j]
                    energy, improved = r.energy_j, True
                    moves += 1
                    break
                loc[i], loc[j] = a, b
                (dv[i], tx[i]), (dv[j], tx[j]) = old_i, old_j
    return Placement(loc, dv, tx), moves


RELAXED_SAMPLES = 16
"""Randomized roundings tried besides the argmax rounding (relaxed mode)."""
RELAXED_REPAIRS = 3
"""Phase-2 roundings that break the bound and get repaired (the least-energy ones)."""


def _solve_relaxed(inst: Instance, phase2: bool, slack: float, deadline_s: float | None,
                   levels: bool, threads: int, exact: Solution | None) -> Solution:
    """LP relaxation → roundings → repair (the engine's fixed-order list schedule).

    Phase 1 keeps the fastest of the roundings and of the cheap greedy placement that
    sets the big-M values; phase 2 the least-energy rounding that meets the bound after
    the repair towards the phase-1 placement (which meets it).  With a reference ``exact``
    the phase-2 bound is the reference's (unless ``deadline_s`` is given), so that
    ``gap_vs_exact`` compares energies under the same constraint; if the relaxed phase 1
    cannot meet that bound, the answer breaks it and ``gap_vs_exact`` is inf."""
    t0 = time.perf_counter()
    P = _Prep(inst)
    statuses = []
    inc = _incumbent(P, local_search_s=0.0)
    ub = inc[1] if inc is not None else _horizon_fallback(P)
    model = _Milp(P, 1, levels, ub * (1 + 1e-6) - P.mig_min, None, lean=RELAXED_LEAN)
    status, col, lp1, _ = model.run(relax=True, threads=threads)
    statuses.append("lp:" + status)
    if status == "infeasible":
        raise ValueError("no placement fits the memory budget (LP relaxation infeasible)")
    cands = [Placement(p.loc) for p in _roundings(P, model, col, RELAXED_SAMPLES)]  # highest levels
    if inc is not None:
        cands.append(inc[0])
    if not cands:  # packing is the hard part: first-fit decreasing, then the exact model
        need = P.inst.mem_need
        ffd = _first_fit(P, [{k: need[i] + (P.K - k) * 1e-3 for k in P.allowed[i]} for i in range(P.n)])
        if ffd is not None:
            cands.append(Placement(ffd))
        else:
            statuses.append("packing:milp")
            cands.append(_solve_exact(inst, False, slack, None, None, levels, False, 1e-4, threads).placement)
    p1, t1 = None, _INF
    for c in cands:
        t = P.evaluate(c).makespan_s
        if t < t1:
            p1, t1 = c, t
    assert p1 is not None
    res1 = evaluate(inst, p1, record=not phase2, check=True)
    t1 = res1.makespan_s
    info: dict[str, Any] = {"phase1_lp_bound_s": lp1, "phase1_candidates": len(cands)}
    if exact is not None:
        info["phase1_gap"] = (t1 - exact.phase1_makespan_s) / exact.phase1_makespan_s
    if not phase2:
        gap = max(0.0, (t1 - lp1) / t1)
        gve = None if exact is None else (t1 - exact.makespan_s) / exact.makespan_s
        return Solution(p1, res1, t1, res1.energy_j, t1, None, "relaxed", gap, time.perf_counter() - t0,
                        "relaxed", p1, statuses, gve, info)
    if deadline_s is None and exact is not None and exact.latency_bound_s is not None:
        bound = exact.latency_bound_s  # the reference's constraint: comparable energies
    else:
        bound = _phase2_bound(t1, slack, deadline_s)
    B = bound * (1 + BOUND_RTOL)
    res_p1 = P.evaluate(p1)
    model2 = _Milp(P, 2, levels, max(bound, t1) * (1 + 1e-6) - P.mig_min, bound,
                   energy_unit_j=max(res_p1.energy_j, 1e-30) / 100.0, lean=RELAXED_LEAN)
    status, col, lp2, _ = model2.run(relax=True, threads=threads)
    statuses.append("lp:" + status)
    best = (res_p1.energy_j if t1 <= B else _INF, t1, p1)
    if status != "infeasible":
        late = []
        for c in _roundings(P, model2, col, RELAXED_SAMPLES):
            r = P.evaluate(c)
            if r.makespan_s > B:
                late.append((r.energy_j, c))
            elif (r.energy_j, r.makespan_s) < best[:2]:
                best = (r.energy_j, r.makespan_s, c)
        late.sort(key=lambda x: x[0])
        for e, c in late[:RELAXED_REPAIRS]:  # the cheapest roundings that break the bound
            if e >= best[0]:
                break
            c = _repair_towards(P, c, p1, bound)
            r = P.evaluate(c)
            if r.makespan_s <= B and (r.energy_j, r.makespan_s) < best[:2]:
                best = (r.energy_j, r.makespan_s, c)
    else:
        lp2 = -_INF
    p2 = best[2]
    polished = 0
    if best[1] <= B and math.isfinite(lp2) and best[0] - lp2 > RELAXED_POLISH_GAP * best[0]:
        budget = RELAXED_POLISH_SHARE * (time.perf_counter() - t0)
        p2, polished = _polish(P, p2, best[0], B, time.perf_counter() + budget)
    info["polish_moves"] = polished
    res2 = evaluate(inst, p2, record=True, check=True)
    meets = res2.makespan_s <= B
    info.update(phase2_lp_bound_j=lp2, meets_bound=meets)
    gap = max(0.0, (res2.energy_j - lp2) / res2.energy_j) if meets and math.isfinite(lp2) else _INF
    gve = None
    if exact is not None:
        same = exact.latency_bound_s is not None and abs(bound - exact.latency_bound_s) <= 1e-12 * bound
        gve = (res2.energy_j - exact.energy_j) / exact.energy_j if (meets and same) else _INF
    return Solution(p2, res2, res2.makespan_s, res2.energy_j, t1, bound, "relaxed", gap,
                    time.perf_counter() - t0, "relaxed", p1, statuses, gve, info)
