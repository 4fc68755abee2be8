"""Joint placement of every active user's token in one step, and the multi-user baselines.

The decision space is the environment's (``MultiUserOffload-v0``): each user picks a split
``(p, k)`` (:mod:`core.multi`), every level at its highest.  The objective is the total
weighted cost Σ_u ω_u·C_u of the step, C_u = w_T·T_u + w_E·E_u from the engine
(:meth:`core.multi.MultiUserSystem.evaluate`), ω_u a per-user weight (1 by default; the
environment's reward uses 1/scale_u).

Exact joint reference (:func:`solve_joint`): a MILP on HiGHS (highspy).  User u's cost
under decision o = (p, k) depends on the others only through the *coupling* at server k
(:meth:`core.multi.MultiUserSystem.coupling`): the number s of same-model users at k, the
number U of users at k and the number G of model groups at k (each counting u).  So:

* x[u,o] ∈ {0,1}, Σ_o x[u,o] = 1 (the options of :meth:`~core.multi.MultiUserSystem.options`);
* counts as integer linear forms of x: N[m,k] = Σ_{u of model m} Σ_{o at k} x[u,o];
  one-hot binaries a[k,m,j] (Σ_j a = 1, Σ_j j·a = N[m,k]), t[k,j] for U_k = Σ_m N[m,k]
  and h[k,j] for G_k = Σ_m (1 − a[k,m,0]);
* cost: continuous z[u,o,c] ∈ [0,1] per reachable coupling c = (s,U,G), which split x:
  Σ_c z[u,o,c] = x[u,o]; and for each value v, Σ_{o at k, c: s_c = v} z[u,o,c] ≤ a[k,m(u),v]
  (likewise U with t, G with h).  With x, a, t, h integral exactly one z — the one of the
  actual coupling — equals x, so the objective Σ ω_u·C_u(o | c)·z + Σ ω_u·C_u(all-device)·x
  is the engine's total exactly (a disaggregated, LP-tighter form of the product of
  binaries x·a·t·h), with one enumerated cost per (user, option, reachable coupling);
* memory: y[k,m,i] ≥ Σ_{o at k, p ≤ i} x[u,o] for each user u of model m (layer i of model m
  resident at k), and Σ_{m,i} W[m,i]·y[k,m,i] + Σ_{u,o at k} KV_u(o)·x[u,o] ≤ capacity_k.

The MILP's answer is re-costed by the engine and must match its objective (else
RuntimeError).  With a time limit, the incumbent and HiGHS's gap are reported.

Baselines: :func:`selfish` (each user's best as if alone, then costed together),
:func:`all_edge` (nearest or least-loaded server, split 0), :func:`all_device`, and
:func:`greedy_joint` (users in index order, each best-responding to those already placed).
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from core.multi import ALL_DEVICE, Decision, JointResult, MultiUserSystem, fairness

__all__ = ["JointSolution", "best_response", "solve_joint", "brute_force_joint", "selfish", "all_edge", "all_device",
           "greedy_joint", "METHODS", "run_method"]


@dataclass
class JointSolution:
    decisions: list[Decision]
    result: JointResult
    objective: float
    """Σ_u ω_u·C_u."""
    status: str = "optimal"
    gap: float = 0.0
    wall_time_s: float = 0.0
    stats: dict = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        return {"total_cost": self.result.total_cost, **fairness(self.result.costs)}


def _weights(system: MultiUserSystem, weights: Sequence[float] | None) -> list[float]:
    n = len(system.users)
    if weights is None:
        return [1.0] * n
    w = [float(x) for x in weights]
    if len(w) != n or not all(math.isfinite(x) and x >= 0 for x in w):
        raise ValueError(f"user weights must be {n} finite numbers >= 0, got {weights!r}")
    return w


def _finish(system: MultiUserSystem, decisions: list[Decision], w: list[float], t0: float, **kw) -> JointSolution:
    res = system.evaluate(decisions)
    obj = float(sum(wi * c for wi, c in zip(w, res.costs)))
    return JointSolution(decisions, res, obj, wall_time_s=time.perf_counter() - t0, **kw)


# --------------------------------------------------------------------------- exhaustive
def brute_force_joint(system: MultiUserSystem, weights: Sequence[float] | None = None,
                      max_combinations: int = 200_000) -> JointSolution:
    """The exact joint optimum by enumerating every combination of options (the test oracle).
    Ties: the first in odometer order (user 0 slowest, options in ``options`` order)."""
    t0 = time.perf_counter()
    w = _weights(system, weights)
    opts = [system.options(u) for u in range(len(system.users))]
    count = math.prod(len(o) for o in opts)
    if count > max_combinations:
        raise ValueError(f"brute force refuses {count} joint combinations (limit {max_combinations})")
    best: tuple[float, list[Decision]] | None = None
    for combo in itertools.product(*opts):
        combo = list(combo)
        if not all(system.fits(u, d, combo) for u, d in enumerate(combo)):
            continue
        total = 0.0
        for u, d in enumerate(combo):
            total += w[u] * system.option_cost(u, d, system.coupling(u, combo))
        if best is None or total < best[0]:
            best = (total, combo)
    if best is None:
        raise ValueError("no joint decision fits the servers' memory")
    return _finish(system, best[1], w, t0)


# --------------------------------------------------------------------------- MILP
class _Model:
    """Columns and sparse rows for highspy."""

    def __init__(self) -> None:
        self.cost: list[float] = []
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.integer: list[int] = []
        self.rows: list[tuple[float, float, list[tuple[int, float]]]] = []

    def col(self, cost: float, ub: float = 1.0, integer: bool = True) -> int:
        self.cost.append(cost)
        self.lb.append(0.0)
        self.ub.append(ub)
        self.integer.append(1 if integer else 0)
        return len(self.cost) - 1

    def row(self, lo: float, hi: float, entries: list[tuple[int, float]]) -> None:
        self.rows.append((lo, hi, entries))


def _couplings(nm_m: int, other_users: int, other_models: int) -> list[tuple[int, int, int]]:
    """Reachable (s, U, G) at a server for a user whose model has ``nm_m`` candidate users
    there (itself included) beside ``other_users`` candidates of ``other_models`` other models."""
    out = []
    for s in range(1, nm_m + 1):
        for U in range(s, s + other_users + 1):
            # G = 1 exactly when no other model is there; else 2..1 + min(models, users)
            for G in ([1] if U == s else range(2, 2 + min(other_models, U - s))):
                out.append((s, U, G))
    return out


def solve_joint(system: MultiUserSystem, weights: Sequence[float] | None = None, *,
                time_limit_s: float | None = None, mip_rel_gap: float = 1e-9,
                mode: str = "exact") -> JointSolution:
    """The joint MILP (module docstring).  Status "optimal" or "time_limit" (with gap).

    ``mode="relaxed"`` (for large N): the LP relaxation of the same model; each user takes
    its option of largest x, users in index order keep it if it fits beside those kept
    (else best-respond to them), and the answer is costed by the engine; status "relaxed",
    ``gap`` = (answer − LP bound) / answer, a certified bound on its distance from the
    joint optimum.

    Options dominated at their own server are dropped before the model is built: (p, k) is
    dominated by (p', k) with p' > p (fewer layers, hence no more memory at k, and the same
    presence at k for the others) whose cost is no higher under every reachable coupling.
    The greedy joint assignment is passed to HiGHS as its first incumbent when none of its
    options was pruned."""
    import highspy

    from solvers.deaoff.milp import new_highs

    t0 = time.perf_counter()
    if mode not in ("exact", "relaxed"):
        raise ValueError(f"mode must be 'exact' or 'relaxed', got {mode!r}")
    if time_limit_s is not None and not time_limit_s > 0:
        raise ValueError(f"time_limit_s must be > 0, got {time_limit_s!r}")
    w = _weights(system, weights)
    users, K = system.users, system.K
    nu = len(users)
    all_opts = [system.options(u) for u in range(nu)]
    models = sorted({u.cfg.model_key for u in users})
    mi = {m: j for j, m in enumerate(models)}
    M = len(models)
    model_of = [mi[u.cfg.model_key] for u in users]
    # candidates per server and model, reachable couplings, cost tables, dominance pruning
    nm = [[sum(1 for u in range(nu) if model_of[u] == m and any(d[1] == k for d in all_opts[u]))
           for m in range(M)] for k in range(1, K + 1)]
    # a server whose memory cannot bind (every candidate at split 0 fits at once) lets any
    # option with a cost no lower everywhere go, whatever its split
    slack = [system.fits_all(k, [[d for d in all_opts[u] if d[1] == k] for u in range(nu)])
             for k in range(1, K + 1)]
    opts: list[list[Decision]] = []
    table: dict[tuple[int, int], tuple[list[tuple[int, int, int]], dict[Decision, np.ndarray]]] = {}
    pruned = 0
    for u in range(nu):
        kept = [d for d in all_opts[u] if d[1] == ALL_DEVICE]
        m = model_of[u]
        for k in range(1, K + 1):
            at_k = sorted((d for d in all_opts[u] if d[1] == k), key=lambda d: -d[0])
            if not at_k:
                continue
            counts = nm[k - 1]
            cps = _couplings(counts[m], sum(counts) - counts[m], sum(1 for q in range(M) if q != m and counts[q]))
            costs: dict[Decision, np.ndarray] = {}
            for d in at_k:  # p descending: a dominator is always seen first
                row = np.empty(len(cps))
                for c, (s, U, G) in enumerate(cps):
                    coupling = [(0, 0, 1)] * K
                    coupling[k - 1] = (s - 1, U - 1, G)
                    row[c] = w[u] * system.option_cost(u, d, coupling)
                if any(np.all(other <= row) for other in costs.values()):
                    pruned += 1
                    continue
                if slack[k - 1]:
                    beaten = [e for e, other in costs.items() if np.all(row <= other)]
                    for e in beaten:
                        del costs[e]
                    pruned += len(beaten)
                costs[d] = row
            table[u, k] = (cps, costs)
            kept += list(costs)
        opts.append(kept)
    mdl = _Model()
    inf = highspy.kHighsInf
    starts: dict[int, tuple] = {}
    x: dict[tuple[int, Decision], int] = {}
    for u in range(nu):
        for d in opts[u]:
            x[u, d] = mdl.col(w[u] * system.alone_cost(u, d) if d[1] == ALL_DEVICE else 0.0)
        mdl.row(1.0, 1.0, [(x[u, d], 1.0) for d in opts[u]])
    for k in range(1, K + 1):
        at = {u: [d for d in opts[u] if d[1] == k] for u in range(nu)}
        at = {u: ds for u, ds in at.items() if ds}
        counts = nm[k - 1]
        total = sum(counts)
        a = {(m, c): mdl.col(0.0) for m in range(M) for c in range(counts[m] + 1)}
        t = {c: mdl.col(0.0) for c in range(total + 1)}
        h = {g: mdl.col(0.0) for g in range(M + 1)}
        y: dict[tuple[int, int], int] = {}
        zcol: dict[tuple[int, Decision, tuple[int, int, int]], int] = {}
        starts[k] = (a, t, h, y, zcol)
        for m in range(M):  # one-hot count of model m's users at k
            mdl.row(1.0, 1.0, [(a[m, c], 1.0) for c in range(counts[m] + 1)])
            mdl.row(0.0, 0.0, [(a[m, c], float(c)) for c in range(1, counts[m] + 1)]
                    + [(x[u, d], -1.0) for u, ds in at.items() if model_of[u] == m for d in ds])
        mdl.row(1.0, 1.0, [(col, 1.0) for col in t.values()])  # one-hot U_k
        mdl.row(0.0, 0.0, [(t[c], float(c)) for c in range(1, total + 1)]
                + [(x[u, d], -1.0) for u, ds in at.items() for d in ds])
        mdl.row(1.0, 1.0, [(col, 1.0) for col in h.values()])  # one-hot G_k = Σ_m (1 − a[m,0])
        mdl.row(float(M), float(M), [(h[g], float(g)) for g in range(1, M + 1)]
                + [(a[m, 0], 1.0) for m in range(M)])
        # memory: shared weights once per (model, layer), caches per user
        mem_entries: list[tuple[int, float]] = []
        for u, ds in ([] if slack[k - 1] else at.items()):  # memory rows only where memory can bind
            user, m = users[u], model_of[u]
            inst = user.token
            for i in range(min(d[0] for d in ds), user.n):
                if (m, i) not in y:
                    y[m, i] = mdl.col(0.0, integer=False)
                    mem_entries.append((y[m, i], inst.weight_bytes[i]))
                mdl.row(-inf, 0.0, [(x[u, d], 1.0) for d in ds if d[0] <= i] + [(y[m, i], -1.0)])
            for d in ds:
                kv = float(sum(inst.kv_bytes[d[0]:]))
                if kv:
                    mem_entries.append((x[u, d], kv))
        if mem_entries:
            cap = system.capacity_bytes[k - 1]
            scale = max(cap, 1.0)
            mdl.row(-inf, cap / scale * (1 + 1e-12), [(col, v / scale) for col, v in mem_entries])
        # cost columns z[u, d, c] (disaggregated: they split x[u, d] over the couplings and
        # each coupling value is bounded by its one-hot binary)
        for u in at:
            m = model_of[u]
            cps, costs = table[u, k]
            by_s: dict[int, list[int]] = {}
            by_U: dict[int, list[int]] = {}
            by_G: dict[int, list[int]] = {}
            for d, row in costs.items():
                zs = []
                for c, (s, U, G) in enumerate(cps):
                    z = zcol[u, d, (s, U, G)] = mdl.col(float(row[c]), integer=False)
                    zs.append(z)
                    by_s.setdefault(s, []).append(z)
                    by_U.setdefault(U, []).append(z)
                    by_G.setdefault(G, []).append(z)
                mdl.row(0.0, 0.0, [(z, 1.0) for z in zs] + [(x[u, d], -1.0)])
            links = [(by_s, lambda v: a[m, v])]
            if M > 1:  # one model: U = s and G = 1, these rows would repeat the first
                links += [(by_U, lambda v: t[v]), (by_G, lambda v: h[v])]
            for tab, ind in links:
                for v, zs in tab.items():
                    mdl.row(-inf, 0.0, [(z, 1.0) for z in zs] + [(ind(v), -1.0)])
    t_build = time.perf_counter() - t0
    nc, nr = len(mdl.cost), len(mdl.rows)
    start, idx, val, lo, hi = [], [], [], [], []
    for rlo, rhi, entries in mdl.rows:
        start.append(len(idx))
        lo.append(rlo)
        hi.append(rhi)
        for col, v in entries:
            idx.append(col)
            val.append(v)
    hs = new_highs(1)
    hs.setOptionValue("random_seed", 0)
    hs.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    if time_limit_s is not None:
        hs.setOptionValue("time_limit", max(float(time_limit_s) - t_build, 1e-3))
    hs.passModel(nc, nr, len(idx), 2, 1, 0.0, np.asarray(mdl.cost), np.asarray(mdl.lb), np.asarray(mdl.ub),
                 np.asarray(lo), np.asarray(hi), np.asarray(start, dtype=np.int32),
                 np.asarray(idx, dtype=np.int32), np.asarray(val, dtype=float),
                 np.asarray(mdl.integer, dtype=np.int32) * (mode == "exact"))
    start_cols = _warm_start(system, opts, x, starts, w, nc) if mode == "exact" else None
    if start_cols is not None:
        hs.setSolution(start_cols)
    hs.run()
    status = hs.modelStatusToString(hs.getModelStatus())
    info = hs.getInfo()
    if info.primal_solution_status != 2:
        if status == "Infeasible":
            raise ValueError("no joint decision fits the servers' memory")
        raise RuntimeError(f"HiGHS found no joint solution (status {status})")
    col = np.asarray(hs.getSolution().col_value)
    decisions = [max(opts[u], key=lambda d: col[x[u, d]]) for u in range(nu)]
    if mode == "relaxed":
        bound = float(info.objective_function_value)
        sol = _finish(system, _repair(system, decisions), w, t0, status="relaxed",
                      stats={"columns": nc, "rows": nr, "build_s": t_build, "pruned_options": pruned,
                             "lp_bound": bound})
        sol.gap = max(sol.objective - bound, 0.0) / sol.objective if sol.objective > 0 else 0.0
        if bound > sol.objective * (1 + 1e-6) + 1e-12:
            raise RuntimeError(f"joint LP bound {bound!r} exceeds the engine's cost {sol.objective!r} of a feasible answer")
        return sol
    sol = _finish(system, decisions, w, t0,
                  status="optimal" if status == "Optimal" else "time_limit",
                  gap=float(info.mip_gap) if math.isfinite(info.mip_gap) else math.inf,
                  stats={"columns": nc, "rows": nr, "build_s": t_build, "pruned_options": pruned})
    milp_obj = float(info.objective_function_value)
    if abs(milp_obj - sol.objective) > 1e-6 * max(1.0, abs(sol.objective)):
        raise RuntimeError(f"joint MILP objective {milp_obj!r} disagrees with the engine's {sol.objective!r}")
    return sol


def _warm_start(system: MultiUserSystem, opts: list[list[Decision]], x: dict, starts: dict,
                w: list[float], nc: int):
    """Every column's value for the greedy joint assignment, or None if a pruned option is
    in it (it then is no better than a kept one, and HiGHS starts without an incumbent)."""
    import highspy

    try:
        greedy = greedy_joint(system, w).decisions
    except ValueError:
        return None
    if any(d not in opts[u] for u, d in enumerate(greedy)):
        return None
    col = np.zeros(nc)
    for u, d in enumerate(greedy):
        col[x[u, d]] = 1.0
    users = system.users
    models = sorted({u.cfg.model_key for u in users})
    for k, (a, t, h, y, zcol) in starts.items():
        here = [u for u, d in enumerate(greedy) if d[1] == k]
        per_model = [sum(1 for u in here if users[u].cfg.model_key == m) for m in models]
        U, G = len(here), sum(1 for c in per_model if c)
        for m, c in enumerate(per_model):
            col[a[m, c]] = 1.0
        col[t[U]] = 1.0
        col[h[G]] = 1.0
        for u in here:
            m = models.index(users[u].cfg.model_key)
            for i in range(greedy[u][0], users[u].n):
                if (m, i) in y:
                    col[y[m, i]] = 1.0
            col[zcol[u, greedy[u], (per_model[m], U, G)]] = 1.0
    sol = highspy.HighsSolution()
    sol.col_value = list(col)
    sol.value_valid = True
    return sol


# --------------------------------------------------------------------------- baselines
def best_response(system: MultiUserSystem, u: int, decisions: list[Decision | None],
                   alone: bool = False) -> Decision:
    """User u's cheapest option given ``decisions`` of the others (None: absent); ``alone``
    ignores the others entirely (cost and memory).  Ties: first in ``options`` order."""
    best: tuple[float, Decision] | None = None
    coupling = [(0, 0, 1)] * system.K if alone else None
    for d in system.options(u):
        trial = list(decisions)
        trial[u] = d
        if not alone and not system.fits(u, d, trial):
            continue
        c = system.option_cost(u, d, coupling if alone else system.coupling(u, trial))
        if best is None or c < best[0]:
            best = (c, d)
    if best is None:
        raise ValueError(f"user {u} has no option that fits beside the users already placed")
    return best[1]


def _repair(system: MultiUserSystem, decisions: list[Decision]) -> list[Decision]:
    """Users in index order keep their decision if it fits beside those kept so far, else
    best-respond to them (the memory admission rule of the environment)."""
    out: list[Decision | None] = [None] * len(decisions)
    for u, d in enumerate(decisions):
        out[u] = d
        if not system.fits(u, d, out):
            out[u] = None
            out[u] = best_response(system, u, out)
    return out  # type: ignore[return-value]


def selfish(system: MultiUserSystem, weights: Sequence[float] | None = None) -> JointSolution:
    """Each user's optimum as if the edge were its own (the selfish optimum)."""
    t0 = time.perf_counter()
    n = len(system.users)
    decisions = [best_response(system, u, [None] * n, alone=True) for u in range(n)]
    return _finish(system, _repair(system, decisions), _weights(system, weights), t0)


def all_edge(system: MultiUserSystem, rule: str = "nearest", weights: Sequence[float] | None = None) -> JointSolution:
    """Every user sends every layer (split 0) to its nearest server, or to the server with
    the fewest users so far (``least-loaded``, users in index order, ties nearest)."""
    if rule not in ("nearest", "least-loaded"):
        raise ValueError(f"rule must be 'nearest' or 'least-loaded', got {rule!r}")
    t0 = time.perf_counter()
    decisions: list[Decision] = []
    count = [0] * system.K
    for u, user in enumerate(system.users):
        up = [k for k in range(1, system.K + 1) if user.nominal.server_up[k - 1]]
        if not up:
            raise ValueError(f"user {u}: no server is up")
        key = (lambda k: user.distances_km[k - 1]) if rule == "nearest" else \
            (lambda k: (count[k - 1], user.distances_km[k - 1]))
        k = min(up, key=key)
        count[k - 1] += 1
        decisions.append((0, k))
    return _finish(system, _repair(system, decisions), _weights(system, weights), t0)


def all_device(system: MultiUserSystem, weights: Sequence[float] | None = None) -> JointSolution:
    t0 = time.perf_counter()
    return _finish(system, [(u.n, ALL_DEVICE) for u in system.users], _weights(system, weights), t0)


def greedy_joint(system: MultiUserSystem, weights: Sequence[float] | None = None) -> JointSolution:
    """Users in index order, each choosing its best option given the users already placed."""
    t0 = time.perf_counter()
    out: list[Decision | None] = [None] * len(system.users)
    for u in range(len(system.users)):
        out[u] = best_response(system, u, out)
    return _finish(system, out, _weights(system, weights), t0)  # type: ignore[arg-type]


METHODS = ("joint", "joint-relaxed", "selfish", "greedy", "all-edge-nearest", "all-edge-least-loaded", "all-device")


def run_method(system: MultiUserSystem, method: str, weights: Sequence[float] | None = None,
               time_limit_s: float | None = None) -> JointSolution:
    """One of :data:`METHODS` by name."""
    if method == "joint":
        return solve_joint(system, weights, time_limit_s=time_limit_s)
    if method == "joint-relaxed":
        return solve_joint(system, weights, time_limit_s=time_limit_s, mode="relaxed")
    if method == "selfish":
        return selfish(system, weights)
    if method == "greedy":
        return greedy_joint(system, weights)
    if method == "all-edge-nearest":
        return all_edge(system, "nearest", weights)
    if method == "all-edge-least-loaded":
        return all_edge(system, "least-loaded", weights)
    if method == "all-device":
        return all_device(system, weights)
    raise ValueError(f"unknown method {method!r}; known: {list(METHODS)}")
