"""Joint placement of every active user's token in one step, and the multi-user baselines.

The decision space is the environment's (``MultiUserOffload-v0``): each user picks a split
``(p, k)`` (:mod:`core.multi`), every level at its highest.  The objective is the total
cost Σ_u ω_u·C_u of the step under the system's objective (``weighted`` or ``slo``) from the engine
(:meth:`core.multi.MultiUserSystem.evaluate`), ω_u a per-user weight (1 by default; the
environment's reward uses 1/scale_u).

Exact joint reference (:func:`solve_joint`): a MILP on HiGHS (highspy).  For a chain (block
granularity) user u's result under option o = (p, k) splits into a part that depends on the
others only through the number U of users at k (device nodes, migrations, transfers on the
cell's uplink share; on a time-sliced server its (1 − ρ)/U share of the server too) and
its batched server times t_i, which depend on who shares each layer's batch step:
T_u = T0_u(o, U) + Σ_i t_i and E_u = E0_u(o, U) + P_idle·Σ_i t_i (:func:`_parts`).  So:

* x[u,o] ∈ {0,1}, Σ_o x[u,o] = 1 (the options of :meth:`~core.multi.MultiUserSystem.options`);
  y[u,k,i] = Σ_{o=(p,k), p ≤ i} x[u,o] says u runs layer i at k;
* one-hot t[k,U] with Σ_U U·t = Σ_{u,o at k} x; continuous z[u,o,U] ∈ [0,1] split x[u,o]
  over U (Σ_U z = x, Σ_{o at k} z[u,o,U] ≤ t[k,U]) and carry T0, E0: with x, t integral
  exactly the z of the actual U equals x;
* batched servers: u's time of layer i at k is G·max_r (own_r + Σ_v a_v,r·y[v,k,i]) / rate_r
  over the FLOPs (rate: peak) and the bytes (rate: bandwidth; own bytes W + U·(B+1), a
  mate's :func:`core.load.member_bytes`), v over the other users of u's model — the
  engine's batch step of :mod:`core.load` exactly — written G·own_i + ε[u,i] with own_i =
  max_r own_r / rate_r.  G·own is charged on the option: x[u,o] is split over the one-hot
  group count h[k,g] (G = Σ_m e[k,m], e[k,m] ≥ x of model m's users at k) by continuous
  xg[u,o,g] (Σ_g xg = x, Σ_{o at k} xg[u,o,g] ≤ h[k,g]), each costing g·S_u(o); the mates'
  extra ε[u,i] ≥ g·(Σ_v a_v,r·y[v,k,i] − room_r) − big·(1 − Σ_{o, p ≤ i} xg[u,o,g]), room_r =
  own_i − own_r / rate_r, one row per (g, r) that can bind; tight at the optimum because
  cost grows with ε.  Valid inequalities per (server, model, layer): the pair work of
  a batch is at least φ(s) = (s − 1)·(the s smallest a) in its size s, convex, so its
  secants bound Σ_u c_u·ε[u,i] from below (c_u the cost of a ms).  The replaced model
  (one τ[u,i] per user and layer, with big-M terms for u absent and for G ≠ g) had the
  same optima and a weaker LP bound;
* objective: ``weighted`` Σ ω_u·(w_T·T_u + w_E·E_u); ``slo`` Σ ω_u·(E_u + penalty·v_u) with a
  violation binary per user, T_u − M·v_u ≤ target_u;
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

from core.cost import evaluate
from core.multi import ALL_DEVICE, Decision, JointResult, MultiUserSystem, fairness, placement_of

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
            total += w[u] * system.option_cost(u, d, combo)
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


def _parts(system: MultiUserSystem, u: int, d: Decision, others: int) -> tuple[float, float, float]:
    """(T0, E0, S) of user u's option d = (p, k) with ``others`` other users at k, no batch
    member and G = 1: the engine's makespan and energy less the server part, S = Σ_{i≥p}
    t_i its server time (0 on a time-sliced server, whose time stays in T0 and E0).  A
    chain's makespan is T0 + Σ t_i and its energy E0 + P_idle·Σ t_i exactly (the server
    nodes run back to back between the upload and the download; the device idles)."""
    user, K = system.users[u], system.K
    coupling = [(0, 1)] * K
    p, k = d
    if k != ALL_DEVICE:
        coupling[k - 1] = (others, 1)
    inst = user.view_instance(coupling)
    res = evaluate(inst, placement_of(user.n, d), record=False, check=False)
    if k == ALL_DEVICE or inst.system.server_load_model[k - 1] != "batched":
        return res.makespan_s, res.energy_j, 0.0
    srv = float(sum(inst.srv_time[i][k - 1] for i in range(p, user.n)))
    return res.makespan_s - srv, res.energy_j - inst.system.device.idle_power_w * srv, srv


def _check_chains(system: MultiUserSystem) -> None:
    for u, user in enumerate(system.users):
        preds = user.token.preds
        if any(list(preds[i]) != ([i - 1] if i else []) for i in range(user.n)):
            raise ValueError(f"the joint MILP needs chain DAGs (block granularity); user {u}'s "
                             f"{user.cfg.model} at {user.cfg.granularity!r} granularity is not a chain")


MS = 1e3
"""Server times are MILP columns in milliseconds (HiGHS's absolute feasibility tolerance
is then far below the engine check's)."""


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
    dominated by (p', k) with p' > p (fewer layers at k: no more memory, no more batch
    work for the others, a subset of its own server times) whose T0 and E0 (``slo``) or
    weighted T0, E0 (``weighted``) are no higher for every number of users at k.  The
    greedy joint assignment is passed to HiGHS as its first incumbent when none of its
    options was pruned."""
    import highspy

    from solvers.deaoff.milp import new_highs

    t0 = time.perf_counter()
    if mode not in ("exact", "relaxed"):
        raise ValueError(f"mode must be 'exact' or 'relaxed', got {mode!r}")
    if time_limit_s is not None and not time_limit_s > 0:
        raise ValueError(f"time_limit_s must be > 0, got {time_limit_s!r}")
    _check_chains(system)
    w = _weights(system, weights)
    users, K = system.users, system.K
    nu = len(users)
    slo = system.objective == "slo"
    wT, wE = (0.0, 1.0) if slo else (system.w_time_per_s, system.w_energy_per_j)
    all_opts = [system.options(u) for u in range(nu)]
    models = sorted({u.cfg.model_key for u in users})
    mi = {m: j for j, m in enumerate(models)}
    model_of = [mi[u.cfg.model_key] for u in users]
    idle = [u.view_instance([(0, 1)] * K).system.device.idle_power_w for u in users]
    batched = [users[0].nominal.server_load_model[k] == "batched" for k in range(K)]
    cand = [[u for u in range(nu) if any(d[1] == k for d in all_opts[u])] for k in range(1, K + 1)]
    # base tables per (user, option at k): rows over U = 1..|candidates at k|; dominance
    opts: list[list[Decision]] = []
    table: dict[tuple[int, Decision], tuple[np.ndarray, np.ndarray]] = {}
    pruned = 0
    for u in range(nu):
        kept = [d for d in all_opts[u] if d[1] == ALL_DEVICE]
        for d in kept:
            T, E, _ = _parts(system, u, d, 0)
            table[u, d] = (np.array([T]), np.array([E]))
        for k in range(1, K + 1):
            at_k = sorted((d for d in all_opts[u] if d[1] == k), key=lambda d: -d[0])
            here: list[Decision] = []
            for d in at_k:  # p descending: a dominator is always seen first
                T = np.empty(len(cand[k - 1]))
                E = np.empty(len(cand[k - 1]))
                for U in range(1, len(cand[k - 1]) + 1):
                    T[U - 1], E[U - 1], _ = _parts(system, u, d, U - 1)
                if any((np.all(table[u, e][0] <= T) and np.all(table[u, e][1] <= E)) if slo
                       else np.all(wT * table[u, e][0] + wE * table[u, e][1] <= wT * T + wE * E) for e in here):
                    pruned += 1
                    continue
                table[u, d] = (T, E)
                here.append(d)
            kept += here
        opts.append(kept)
    mdl = _Model()
    inf = highspy.kHighsInf
    x: dict[tuple[int, Decision], int] = {}
    t_rows: list[list[tuple[int, float]]] = [[] for _ in range(nu)]  # slo: T_u in ms
    base_bound = [0.0] * nu  # upper bounds (ms) of u's T0 (below: own server time, Σ ε)
    for u in range(nu):
        for d in opts[u]:
            if d[1] == ALL_DEVICE:
                T, E = table[u, d][0][0], table[u, d][1][0]
                x[u, d] = mdl.col(w[u] * (wT * T + wE * E))
                t_rows[u].append((x[u, d], T * MS))
                base_bound[u] = max(base_bound[u], T * MS)
            else:
                x[u, d] = mdl.col(0.0)
        mdl.row(1.0, 1.0, [(x[u, d], 1.0) for d in opts[u]])
    starts: dict[int, dict] = {}
    own_bound, eps_bound = [0.0] * nu, [0.0] * nu
    xg: dict[tuple[int, Decision, int], int] = {}  # x[u, d] split over the group count G_k = g
    eps: dict[tuple[int, int], int] = {}  # ε[u, i]: the mates' extra of u's layer i (ms)
    for k in range(1, K + 1):
        at = {u: [d for d in opts[u] if d[1] == k] for u in range(nu)}
        at = {u: ds for u, ds in at.items() if ds}
        total = len(cand[k - 1])
        t = {c: mdl.col(0.0) for c in range(total + 1)}  # one-hot U_k
        mdl.row(1.0, 1.0, [(col, 1.0) for col in t.values()])
        mdl.row(0.0, 0.0, [(t[c], float(c)) for c in range(1, total + 1)]
                + [(x[u, d], -1.0) for u, ds in at.items() for d in ds])
        present = sorted({model_of[u] for u in at})
        e, h = {}, {}
        if batched[k - 1] and len(present) > 1:  # G_k = Σ_m e[k,m], one-hot h
            for m in present:
                e[m] = mdl.col(0.0)
                for u, ds in at.items():
                    if model_of[u] == m:
                        mdl.row(-inf, 0.0, [(x[u, d], 1.0) for d in ds] + [(e[m], -1.0)])
            h = {g: mdl.col(0.0) for g in range(len(present) + 1)}
            mdl.row(1.0, 1.0, [(col, 1.0) for col in h.values()])
            mdl.row(0.0, 0.0, [(h[g], float(g)) for g in range(1, len(present) + 1)] + [(e[m], -1.0) for m in present])
        y: dict[tuple[int, int], int] = {}
        zcol: dict[tuple[int, Decision, int], int] = {}
        starts[k] = {"t": t, "e": e, "h": h}
        # memory: shared weights once per (model, layer), caches per user (only where it can bind)
        slack = system.fits_all(k, [[d for d in all_opts[u] if d[1] == k] for u in range(nu)])
        mem_entries: list[tuple[int, float]] = []
        for u, ds in ([] if slack else at.items()):
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
        # base cost columns z[u, d, U]: they split x[u, d] over U, each bounded by t[k, U]
        for u, ds in at.items():
            by_U: dict[int, list[int]] = {}
            for d in ds:
                T, E = table[u, d]
                zs = []
                for U in range(1, total + 1):
                    z = zcol[u, d, U] = mdl.col(w[u] * (wT * T[U - 1] + wE * E[U - 1]), integer=False)
                    zs.append(z)
                    by_U.setdefault(U, []).append(z)
                    t_rows[u].append((z, T[U - 1] * MS))
                    base_bound[u] = max(base_bound[u], T[U - 1] * MS)
                mdl.row(0.0, 0.0, [(z, 1.0) for z in zs] + [(x[u, d], -1.0)])
            for U, zs in by_U.items():
                mdl.row(-inf, 0.0, [(z, 1.0) for z in zs] + [(t[U], -1.0)])
        if not batched[k - 1]:
            continue
        # batched server times of u's layer i at k (ms): G·(own + Σ_v mates' work)/rate,
        # split into G·own (on the option, exact through xg) and the mates' extra ε ≥ 0
        snap = users[0].view_instance([(0, 1)] * K).system
        rates = (snap.server_flops_per_s[k - 1], snap.server_mem_bw_bytes_per_s[k - 1])
        bg = snap.server_background_users[k - 1]
        gs = list(h)[1:] if h else [1]
        own_ms: dict[int, list[tuple[float, float, float]]] = {}  # (FLOP ms, byte ms, max) per layer
        for u in at:
            tok = users[u].token
            rows_u = []
            for i in range(users[u].n):
                shared = min(tok.weight_bytes[i], tok.mem_bytes[i])
                f = MS * tok.flops[i] * (bg + 1) / rates[0]
                b = MS * (shared + (tok.mem_bytes[i] - shared) * (bg + 1)) / rates[1]
                rows_u.append((f, b, max(f, b)))
            own_ms[u] = rows_u
        yg: dict[tuple[int, int], list[tuple[int, int, float]]] = {}  # (u, g): [(col, p, own S ms)]
        for u, ds in at.items():
            c_time = w[u] * (wT + wE * idle[u]) / MS
            for d in ds:
                s_ms = sum(own_ms[u][i][2] for i in range(d[0], users[u].n))
                if not h:
                    mdl.cost[x[u, d]] += c_time * s_ms
                    t_rows[u].append((x[u, d], s_ms))
                    own_bound[u] = max(own_bound[u], s_ms)
                    yg.setdefault((u, 1), []).append((x[u, d], d[0], s_ms))
                    continue
                cols = []
                for g in gs:
                    c = xg[u, d, g] = mdl.col(c_time * g * s_ms, integer=False)
                    cols.append(c)
                    t_rows[u].append((c, g * s_ms))
                    yg.setdefault((u, g), []).append((c, d[0], g * s_ms))
                own_bound[u] = max(own_bound[u], gs[-1] * s_ms)
                mdl.row(0.0, 0.0, [(c, 1.0) for c in cols] + [(x[u, d], -1.0)])
            if h:
                for g in gs:
                    mdl.row(-inf, 0.0, [(c, 1.0) for c, _, _ in yg[u, g]] + [(h[g], -1.0)])
        work = {u: system.member_work(u) for u in at}
        for u, ds in at.items():
            m = model_of[u]
            mates = [v for v in at if v != u and model_of[v] == m]
            if not mates:
                continue
            for i in range(min(d[0] for d in ds), users[u].n):
                own = own_ms[u][i]
                worst = 0.0
                rows_i = []
                for r in (0, 1):
                    cr = MS / rates[r]
                    others = [(v, cr * work[v][r][i]) for v in mates if work[v][r][i] > 0]
                    osum = sum(a for _, a in others)
                    room = own[2] - own[r]  # u's own time left before resource r binds
                    for g in gs:
                        big = g * (osum - room)  # the row's right side at most
                        if big <= 0:
                            continue
                        worst = max(worst, big)
                        rows_i.append((r, g, others, room, big))
                if not rows_i:
                    continue
                col = eps[u, i] = mdl.col(w[u] * (wT + wE * idle[u]) / MS, ub=inf, integer=False)
                t_rows[u].append((col, 1.0))
                eps_bound[u] += worst
                for r, g, others, room, big in rows_i:
                    # ε ≥ g·(Σ_v a_v·y_v − room) − big·(1 − [u runs layer i at k with G = g])
                    entries = [(col, 1.0)] + [(c, -big) for c, p, _ in yg[u, g] if p <= i]
                    for v, a in others:
                        entries += [(x[v, d], -g * a) for d in at[v] if d[0] <= i]
                    mdl.row(-g * room - big, inf, entries)
        # valid inequalities per (model, layer) at k: whoever runs layer i there pays at least
        # the others' work, so Σ_u c_u·ε_u ≥ c_min·Σ_u y_u·(Σ_{v≠u} a_v·y_v − room_u), and with
        # s = Σ_u y_u the pair sum Σ_u Σ_{v≠u} a_v·y_u·y_v ≥ φ(s) = (s − 1)·(the s smallest a);
        # φ is convex in s, so its secants through consecutive integers bound it (G ≥ 1)
        for m in {model_of[u] for u in at}:
            group = [u for u in at if model_of[u] == m]
            if len(group) < 2:
                continue
            for i in range(users[group[0]].n):
                here = [u for u in group if min(d[0] for d in at[u]) <= i]
                c_min = min(w[u] * (wT + wE * idle[u]) / MS for u in here) if len(here) > 1 else 0.0
                if c_min <= 0:
                    continue
                for r in (0, 1):
                    a = sorted(MS * work[v][r][i] / rates[r] for v in here)
                    phi = [(q - 1) * sum(a[:q]) if q else 0.0 for q in range(len(here) + 1)]
                    for q in range(1, len(here)):
                        slope = phi[q + 1] - phi[q]
                        if slope <= 0:
                            continue
                        entries = [(eps[u, i], w[u] * (wT + wE * idle[u]) / MS) for u in here if (u, i) in eps]
                        for u in here:
                            room = own_ms[u][i][2] - own_ms[u][i][r]
                            entries += [(x[u, d], c_min * (room - slope)) for d in at[u] if d[0] <= i]
                        mdl.row(c_min * (phi[q] - slope * q), inf, entries)
    v_col: dict[int, int] = {}
    if slo:  # violation indicators: T_u − bigT·v_u ≤ target_u (ms)
        for u in range(nu):
            big = base_bound[u] + own_bound[u] + eps_bound[u]
            v_col[u] = mdl.col(w[u] * system.slo_penalty_j)
            target = system.target_s(u) * MS
            if big > target:
                mdl.row(-inf, target, t_rows[u] + [(v_col[u], -(big - target))])
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
    warm = _warm_start(system, opts, x, starts, v_col, w) if mode == "exact" else None
    if warm is not None:
        hs.setSolution(len(warm[0]), warm[0], warm[1])
    hs.run()
    status = hs.modelStatusToString(hs.getModelStatus())
    info = hs.getInfo()
    if info.primal_solution_status != 2:
        if status == "Infeasible":
            raise ValueError("no joint decision fits the servers' memory")
        raise RuntimeError(f"HiGHS found no joint solution (status {status})")
    col = np.asarray(hs.getSolution().col_value)
    decisions = [max(opts[u], key=lambda d: col[x[u, d]]) for u in range(nu)]
    stats = {"columns": nc, "rows": nr, "build_s": t_build, "pruned_options": pruned}
    if mode == "relaxed":
        bound = float(info.objective_function_value)
        sol = _finish(system, _repair(system, decisions), w, t0, status="relaxed", stats={**stats, "lp_bound": bound})
        sol.gap = max(sol.objective - bound, 0.0) / sol.objective if sol.objective > 0 else 0.0
        if bound > sol.objective * (1 + 1e-6) + 1e-12:
            raise RuntimeError(f"joint LP bound {bound!r} exceeds the engine's cost {sol.objective!r} of a feasible answer")
        return sol
    sol = _finish(system, decisions, w, t0, status="optimal" if status == "Optimal" else "time_limit",
                  gap=float(info.mip_gap) if math.isfinite(info.mip_gap) else math.inf, stats=stats)
    milp_obj = float(info.objective_function_value)
    if abs(milp_obj - sol.objective) > 1e-6 * max(1.0, abs(sol.objective)):
        raise RuntimeError(f"joint MILP objective {milp_obj!r} disagrees with the engine's {sol.objective!r}")
    return sol


def _warm_start(system: MultiUserSystem, opts: list[list[Decision]], x: dict, starts: dict, v_col: dict,
                w: list[float]) -> tuple[np.ndarray, np.ndarray] | None:
    """The greedy joint assignment as a partial solution of HiGHS (index, value) for every
    integer column (x, the one-hot U_k and G_k, e, the slo violations); HiGHS completes
    the continuous columns by an LP.  None if a pruned option is in it (it then is no
    better than a kept one, and HiGHS starts without an incumbent)."""
    try:
        greedy = greedy_joint(system, w)
    except ValueError:
        return None
    dec = greedy.decisions
    if any(d not in opts[u] for u, d in enumerate(dec)):
        return None
    vals: dict[int, float] = {c: 0.0 for c in x.values()}
    for u, d in enumerate(dec):
        vals[x[u, d]] = 1.0
    users = system.users
    mkeys = sorted({u.cfg.model_key for u in users})
    for k, cols in starts.items():
        here = [u for u, d in enumerate(dec) if d[1] == k]
        models = {users[u].cfg.model_key for u in here}
        vals.update({c: float(U == len(here)) for U, c in cols["t"].items()})
        vals.update({c: float(g == len(models)) for g, c in cols["h"].items()})
        vals.update({c: float(mkeys[m] in models) for m, c in cols["e"].items()})
    vals.update({c: float(greedy.result.violations[u]) for u, c in v_col.items()})
    idx = np.fromiter(vals, dtype=np.int32)
    return idx, np.array([vals[int(i)] for i in idx])


# --------------------------------------------------------------------------- baselines
def best_response(system: MultiUserSystem, u: int, decisions: list[Decision | None],
                   alone: bool = False) -> Decision:
    """User u's cheapest option given ``decisions`` of the others (None: absent); ``alone``
    ignores the others entirely (cost and memory).  Ties: first in ``options`` order."""
    best: tuple[float, Decision] | None = None
    for d in system.options(u):
        trial = list(decisions)
        trial[u] = d
        if not alone and not system.fits(u, d, trial):
            continue
        c = system.alone_cost(u, d) if alone else system.option_cost(u, d, trial)
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
