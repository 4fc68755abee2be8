"""The exact MILP of one DeAOff phase on HiGHS (and its LP relaxation for relaxed mode).

Times are relative to the end of the migration phase T_mig and scaled so that the horizon
is 100.  Variables and constraints (one method each below):

* ``x[i,k]`` binary, node i at location k (k in the node's allowed set); ``y[i,v]`` DVFS
  level of a device node, ``t[i,q]`` transmit-power level of its uploads, ``m[i,k,q]``
  power level of a KV migration device → server k (phase 2 with levels only).
* ``S[i]`` start, ``p_i`` its processing time (linear in x, y); ``R`` the relative
  makespan; the makespan is T_mig + R with T_mig the (linear) sum of migration durations.
* ``π[e,o,l] ≥ 0`` per edge e = (i, j), origin option o of i (a server, or the device at
  a power level) and location l of j: the transportation linearisation of x_io·x_jl
  (Σ_l π = χ[i,o], Σ_o π = x[j,l]); integral whenever x is, and for a chain the LP is
  the shortest-path polytope.  Precedence: S_j ≥ S_i + p_i + Σ c_i(o→l)·π.
* Uplink: events (token-id uploads, output uploads) in the engine's order; ``G[e]`` the
  uplink free time after event e, chained, each after its data is ready (big-M), and a
  consumer waits for its upload.  Processors: S_j ≥ S_i + p_i − M(2 − x_ik − x_jk) for
  i < j with no path i → j.  Makespan rows for sinks (plus their return to the device),
  processor loads and the last uplink event (valid inequalities).  Memory:
  Σ need_i·x[i,k] ≤ cap_k·MEM_TOL where some placement could exceed it.
* Phase 1 minimises T_mig + R; phase 2 minimises device energy (compute + transmit +
  receive + idle P_idle·(makespan − device compute)) with T_mig + R ≤ bound; "phase" 3
  (the weighted-sum mode) minimises C = w_T·(T_mig + R) + w_E·energy over the same
  placements and levels (optionally with the same bound row).

* Interchangeable nodes (:func:`.prep.identical_groups`: the heads of one layer at ``head``
  granularity): symmetry breaking (locations non-decreasing within a run) and, for a run
  with one common predecessor a and successor b, the valid inequality
  S_b ≥ S_a + p_a + Σ_{i in run} p_i·x[i,k] for every processor k (they run one at a time
  there), which the LP relaxation of the big-M processor rows does not see.

Big-M values come from the horizon H and per-node heads and tails (longest paths of
fastest processing before and after a node).  ``lean=True`` (relaxed mode's LP) leaves
out the big-M disjunctions (processor pairs, uplink sequencing), keeping only the
resources' total loads: with fractional x they are slack anyway.
"""
from __future__ import annotations

import math

import numpy as np

from core.cost import DEVICE, MEM_TOL, fits_memory
from core.instance import Placement

from .prep import Problem
from .solution import BOUND_RTOL

__all__ = ["Milp", "MilpResult", "new_highs"]

_INF = float("inf")
_HS = 100.0
"""The scaled horizon."""


_THREADS: list[int] = []
"""The thread count HiGHS's global scheduler was last started with."""


def new_highs(threads: int = 1):
    """A HiGHS instance with its logging off (``output_flag``, ``log_to_console``) and
    ``threads`` threads.  HiGHS's task scheduler is global and refuses a run whose thread
    count differs from the one it started with (the run ends with model status "Not
    Set"), so the scheduler is reset when the count changes.

    highspy ≥ 1.12 prints a version banner to the C-level stdout when the first instance
    of a process is constructed, before any option can be set (HiGHS issue #1702: output
    is controlled by options set after construction).  This library does not redirect
    the process's stdout to hide it: a caller that prints a table to stdout constructs
    one ``highspy.Highs()`` up front (or redirects its own stdout)."""
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("log_to_console", False)
    if _THREADS and _THREADS[0] != threads:
        highspy.Highs.resetGlobalScheduler(True)
    _THREADS[:] = [threads]
    h.setOptionValue("threads", int(threads))
    return h


def exact_mip(cost, col_upper, rows_lo, rows_hi, rows_r, rows_c, rows_v, integrality, *,
              mip_rel_gap: float, upper: float | None = None, scale: float = 1.0, presolve: bool = True):
    """A one-thread HiGHS minimisation of ``cost · x`` (columns in [0, col_upper], rows
    rows_lo <= A x <= rows_hi with A given as (row, column, value) triplets) at the tight
    tolerances every exact model of this package uses (seeded, absolute gap 1e-12,
    feasibility 1e-9).  ``upper`` (native units; the objective is ``scale`` times the
    model's) becomes HiGHS's objective bound: a known incumbent prunes the search."""
    import numpy as np

    nc, nr = len(cost), len(rows_lo)
    order = np.lexsort((np.asarray(rows_c), np.asarray(rows_r)))
    rr = np.asarray(rows_r, dtype=np.int64)[order]
    start = np.searchsorted(rr, np.arange(nr + 1)).astype(np.int32)
    h = new_highs(1)
    h.setOptionValue("random_seed", 0)
    if not presolve:
        h.setOptionValue("presolve", "off")
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    h.setOptionValue("mip_abs_gap", 1e-12)
    h.setOptionValue("mip_feasibility_tolerance", 1e-9)
    h.setOptionValue("primal_feasibility_tolerance", 1e-9)
    h.passModel(nc, nr, len(rr), 2, 1, 0.0, np.asarray(cost, dtype=float), np.zeros(nc),
                np.asarray(col_upper, dtype=float), np.asarray(rows_lo, dtype=float), np.asarray(rows_hi, dtype=float),
                start, np.asarray(rows_c, dtype=np.int32)[order], np.asarray(rows_v, dtype=float)[order],
                np.asarray(integrality, dtype=np.int32))
    if upper is not None and math.isfinite(upper):
        h.setOptionValue("objective_bound", upper / scale * (1 + 1e-7) + 1e-12)
    return h


class MilpResult(tuple):
    """(status, column values, objective in native units, gap) of :meth:`Milp.run`."""

    __slots__ = ()

    def __new__(cls, status: str, col: list[float], objective: float, gap: float) -> "MilpResult":
        return super().__new__(cls, (status, col, objective, gap))

    status = property(lambda self: self[0])
    col = property(lambda self: self[1])
    objective = property(lambda self: self[2])
    gap = property(lambda self: self[3])


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


class Milp:
    """The model of one phase (see the module docstring)."""

    def __init__(self, problem: Problem, *, phase: int, levels: bool, horizon_s: float,
                 bound_s: float | None = None, energy_unit_j: float = 1.0, lean: bool = False,
                 weights: tuple[float, float] | None = None) -> None:
        if phase not in (1, 2, 3):
            raise ValueError(f"phase must be 1, 2 or 3 (weighted), got {phase!r}")
        if phase == 2 and bound_s is None:
            raise ValueError("phase 2 needs bound_s")
        if phase == 3 and weights is None:
            raise ValueError("phase 3 (weighted) needs weights=(w_time_per_s, w_energy_per_j)")
        P = problem
        self.P, self.phase, self.lean = P, phase, lean
        self.levels = levels and phase >= 2
        self.tau = horizon_s / _HS  # time unit: the horizon is 100
        # phase 3: energy_unit_j is the unit of the weighted cost; energies enter as w_E·E
        w_t, w_e = weights if weights is not None else (0.0, 1.0)
        self.eps = energy_unit_j if phase != 3 else (energy_unit_j / w_e if w_e > 0 else 1.0)
        self.m = _Model()
        self.head = [h / self.tau for h in P.head]
        self.tail = [t / self.tau for t in P.tail]
        self.pmin = [p / self.tau for p in P.pmin]
        self.energy: dict[int, float] = {}
        self._add_assignment()
        self._add_migrations()
        self._add_times()
        self._add_edges()
        self._add_uplink()
        self._add_sources()
        self._add_processors()
        self._add_makespan_and_memory()
        self._add_symmetry()
        if phase == 1:
            for c, v in self.makespan.items():
                self.m.cost[c] += v
        else:
            if bound_s is not None:
                self.m.row(-_INF, bound_s * (1 + BOUND_RTOL) / self.tau, self.makespan)
            if phase == 2 or w_e > 0:
                self._add_energy()
            if phase == 3 and w_t > 0:  # C = w_T·T + w_E·E in units of energy_unit_j
                for c, v in self.makespan.items():
                    self.m.cost[c] += v * w_t * self.tau / energy_unit_j
        self.obj_unit = self.tau if phase == 1 else (self.eps if phase == 2 else energy_unit_j)
        self.dual_bound = _INF

    # ------------------------------------------------------------------ variables
    def _add_assignment(self) -> None:
        """x (Σ_k x = 1) and the level choices y, t, m of phase 2."""
        P, m, A, lv = self.P, self.m, self.P.allowed, self.levels
        n = P.n
        self.X = X = []
        for i in range(n):
            one = len(A[i]) == 1
            X.append({k: m.var(1.0 if one else 0.0, 1.0, integer=True) for k in A[i]})
            m.row(1.0, 1.0, {X[i][k]: 1.0 for k in A[i]})
        self.Y: list[dict[int, int] | None] = [None] * n
        self.TQ: list[dict[int, int] | None] = [None] * n
        self.MQ: list[dict[int, dict[int, int]] | None] = [None] * n
        self.may_up = [DEVICE in A[i] and any(l != DEVICE for j in P.succs[i] for l in A[j]) for i in range(n)]

        def choice(count: int, of: int) -> dict[int, int]:
            cols = {v: m.var(integer=True, ub=1.0) for v in range(count)}
            m.row(0.0, 0.0, _add({of: -1.0}, {c: 1.0 for c in cols.values()}))
            return cols

        for i in range(n):
            if lv and DEVICE in A[i] and P.nf > 1:
                self.Y[i] = choice(P.nf, X[i][DEVICE])
            if lv and self.may_up[i] and P.nq > 1:
                self.TQ[i] = choice(P.nq, X[i][DEVICE])
            if lv and P.migrates_up(i) and P.nq > 1:
                self.MQ[i] = {k: choice(P.nq, X[i][k]) for k in A[i] if k != DEVICE}
        self.dev_q = [list(self.TQ[i]) if self.TQ[i] is not None else [P.qmax] for i in range(n)]
        self.p_expr = [_add({}, {c: v for k in A[i] for c, v in self._p_part(i, k).items()}) for i in range(n)]

    def _chi(self, i: int, k: int, q: int) -> dict[int, float]:
        """Node i at k (at power level q for its uploads, on the device)."""
        if k == DEVICE and self.TQ[i] is not None:
            return {self.TQ[i][q]: 1.0}
        return {self.X[i][k]: 1.0}

    def _p_part(self, i: int, k: int) -> dict[int, float]:
        """Node i's processing time at k (scaled), as columns."""
        P = self.P
        if k == DEVICE and self.Y[i] is not None:
            return {self.Y[i][v]: P.ptime(i, DEVICE, v) / self.tau for v in self.Y[i]}
        return {self.X[i][k]: P.ptime(i, k) / self.tau}

    def _f_expr(self, i: int) -> dict[int, float]:
        """Finish time S_i + p_i."""
        return _add({self.S[i]: 1.0}, self.p_expr[i])

    def _add_migrations(self) -> None:
        """T_mig and the migrations' energy: the serial reconfiguration phase."""
        P, tau, eps = self.P, self.tau, self.eps
        self.mig_t: dict[int, float] = {}
        self.mig_e: dict[int, float] = {}

        def put(c: int, t: float, e: float) -> None:
            self.mig_t[c] = self.mig_t.get(c, 0.0) + t / tau
            self.mig_e[c] = self.mig_e.get(c, 0.0) + e / eps

        for i in range(P.n):
            for k in P.allowed[i]:
                if self.MQ[i] is not None and k in self.MQ[i]:
                    for q, c in self.MQ[i][k].items():
                        put(c, *P.mig(i, k, q))
                else:
                    t, e = P.mig(i, k, P.qmax)
                    if t > 0.0:
                        put(self.X[i][k], t, e)

    def _add_times(self) -> None:
        n, head, tail, pmin = self.P.n, self.head, self.tail, self.pmin
        self.S = [self.m.var(head[i], max(head[i], _HS - tail[i] - pmin[i])) for i in range(n)]
        self.R = self.m.var(max(head[i] + pmin[i] for i in range(n)), _HS)

    # ------------------------------------------------------------------ constraints
    def _add_edges(self) -> None:
        """π per edge (transportation rows) and the precedence rows."""
        P, m, A, X = self.P, self.m, self.P.allowed, self.X
        self.PI: dict[tuple[int, int], dict[tuple[int, int, int], int]] = {}
        for j in range(P.n):
            for i in P.preds[j]:
                origins = [(DEVICE, q) for q in self.dev_q[i]] if DEVICE in A[i] else []
                origins += [(k, P.qmax) for k in A[i] if k != DEVICE]
                pv = {(k, q, l): m.var(0.0, 1.0) for (k, q) in origins for l in A[j]}
                self.PI[i, j] = pv
                for (k, q) in origins:
                    m.row(0.0, 0.0, _add({pv[k, q, l]: 1.0 for l in A[j]}, self._chi(i, k, q), -1.0))
                for l in A[j]:
                    m.row(0.0, 0.0, _add({pv[k, q, l]: 1.0 for (k, q) in origins}, {X[j][l]: -1.0}))
                row = _add({self.S[j]: 1.0}, self._f_expr(i), -1.0)
                for (k, q, l), c in pv.items():
                    t = P.trans(i, k, l, q)[0]
                    if t > 0.0:
                        row[c] = row.get(c, 0.0) - t / self.tau
                m.row(0.0, _INF, row)

    def _uplink_events(self) -> None:
        """The uplink's events in the engine's order, and upper bounds of its free time
        (an active upload ends before its consumer starts)."""
        P, A = self.P, self.P.allowed
        self.sources = [i for i in range(P.n) if not P.preds[i]]
        self.events = events = []  # (kind, node, server)
        for i in range(P.n):
            if not P.preds[i]:
                events += [("in", i, k) for k in A[i] if k != DEVICE]
            if self.may_up[i]:
                events += [("out", i, l) for l in sorted({l for j in P.succs[i] for l in A[j] if l != DEVICE})]
        self.ubg, run = [], -_INF
        for kind, i, k in events:
            if kind == "out":
                c = min(P.pmin[j] + P.tail[j] for j in P.succs[i] if k in A[j])
            else:
                c = min(P.pmin[s] + P.tail[s] for s in self.sources if s >= i)
            run = max(run, _HS - c / self.tau)
            self.ubg.append(max(run, 0.0))

    def _event_columns(self, kind: str, i: int, k: int) -> tuple[dict[int, float], dict[int, float]]:
        """(activity columns, duration expression) of one uplink event; adds its energy."""
        P, m, A, X = self.P, self.m, self.P.allowed, self.X
        if kind == "in":
            earlier = [s for s in self.sources if s < i and k in A[s]]
            if not earlier:
                act = {X[i][k]: 1.0}
            else:  # the first source placed at k uploads the token ids
                b = m.var(0.0, 1.0)
                m.row(0.0, _INF, _add({b: 1.0, X[i][k]: -1.0}, {X[s][k]: 1.0 for s in earlier}))
                act = {b: 1.0}
            self.b_col[i, k] = act
            t_in, e_in = P.inp(k)
            _add(self.energy, act, e_in / self.eps)
            return act, {c: t_in / self.tau * v for c, v in act.items()}
        aq = {q: m.var(0.0, 1.0) for q in self.dev_q[i]}
        for j in P.succs[i]:
            if k in A[j]:
                for q, c in aq.items():
                    m.row(0.0, _INF, {c: 1.0, self.PI[i, j][DEVICE, q, k]: -1.0})
        dur = {}
        for q, c in aq.items():
            t, e = P.up(i, k, q)
            dur[c] = t / self.tau
            self.energy[c] = self.energy.get(c, 0.0) + e / self.eps
        return {c: 1.0 for c in aq.values()}, dur

    def _add_uplink(self) -> None:
        """The uplink serves its events one at a time, in the engine's order."""
        m, P = self.m, self.P
        self._uplink_events()
        self.b_col: dict[tuple[int, int], dict[int, float]] = {}
        self.G_in: dict[tuple[int, int], int] = {}
        load: dict[int, float] = {self.R: 1.0}
        G_prev = None
        for e_idx, (kind, i, k) in enumerate(self.events):
            act, dur = self._event_columns(kind, i, k)
            if self.lean:  # no sequencing, only the total busy time (below)
                _add(load, dur, -1.0)
                continue
            G = m.var(0.0, self.ubg[e_idx])
            if kind == "in":
                self.G_in[i, k] = G
            else:
                # the upload starts when i has finished (and the uplink is free)
                M = max(_HS - self.tail[i], 0.0)
                row = _add(_add({G: 1.0}, self._f_expr(i), -1.0), dur, -1.0)
                m.row(-M, _INF, _add(row, act, -M))
                # a successor at k waits for the upload's end
                for j in P.succs[i]:
                    if k in P.allowed[j]:
                        M2 = max(self.ubg[e_idx] - self.head[j], 0.0)
                        row = {self.S[j]: 1.0, G: -1.0}
                        for q in self.dev_q[i]:
                            row[self.PI[i, j][DEVICE, q, k]] = -M2
                        m.row(-M2, _INF, row)
            row = _add({G: 1.0}, dur, -1.0)
            if G_prev is not None:
                row[G_prev] = -1.0
            m.row(0.0, _INF, row)
            G_prev = G
        if G_prev is not None:
            m.row(0.0, _INF, {self.R: 1.0, G_prev: -1.0})
        if self.lean and len(load) > 1:
            m.row(0.0, _INF, load)

    def _add_sources(self) -> None:
        """A source at server k waits for the token ids (the first upload of them to k)."""
        P, m, X = self.P, self.m, self.X
        for s in self.sources:
            servers = [k for k in P.allowed[s] if k != DEVICE]
            if servers:
                m.row(0.0, _INF, _add({self.S[s]: 1.0}, {X[s][k]: -P.inp(k)[0] / self.tau for k in servers}))
            if self.lean:
                continue
            for k in servers:
                for s2 in self.sources:
                    if s2 > s or (s2, k) not in self.G_in:
                        continue
                    M = max(self.ubg[self.events.index(("in", s2, k))] - self.head[s], 0.0)
                    row = _add({self.S[s]: 1.0, self.G_in[s2, k]: -1.0}, self.b_col[s2, k], -M)
                    if s2 == s:
                        m.row(-M, _INF, row)
                    else:
                        row[X[s][k]] = row.get(X[s][k], 0.0) - M
                        m.row(-2 * M, _INF, row)

    def _add_processors(self) -> None:
        """One node at a time per location, in index order (lean: the load rows only)."""
        P, m, X, A, n = self.P, self.m, self.X, self.P.allowed, self.P.n
        if not self.lean:
            desc = [0] * n
            for i in range(n - 1, -1, -1):
                for j in P.succs[i]:
                    desc[i] |= (1 << j) | desc[j]
            for j in range(n):
                for i in range(j):
                    if (desc[i] >> j) & 1:
                        continue
                    for k in A[i]:
                        if k in X[j]:
                            M = max(_HS - self.tail[i] - self.head[j], 0.0)
                            row = _add({self.S[j]: 1.0}, self._f_expr(i), -1.0)
                            row[X[i][k]] = row.get(X[i][k], 0.0) - M
                            row[X[j][k]] = row.get(X[j][k], 0.0) - M
                            m.row(-2 * M, _INF, row)
        for k in range(P.K):  # processor loads (valid)
            nodes = [i for i in range(n) if k in A[i]]
            if len(nodes) > 1:
                row = {self.R: 1.0}
                for i in nodes:
                    _add(row, self._p_part(i, k), -1.0)
                m.row(0.0, _INF, row)

    def _add_symmetry(self) -> None:
        """Symmetry breaking for interchangeable nodes (:func:`.prep.identical_groups`, e.g.
        the heads of one layer): within a run, a node's location index is at most the next
        one's, as cumulative rows Σ_{k≤t} x[i,k] ≥ Σ_{k≤t} x[i+1,k] for every threshold t.
        Every placement has a permutation within the runs that satisfies them at the same
        cost, so the optimum is kept."""
        m, X, P = self.m, self.X, self.P
        for run in P.groups:
            ks = sorted(X[run[0]])
            for i, j in zip(run, run[1:]):
                for t in range(len(ks) - 1):
                    m.row(0.0, _INF, _add({X[i][k]: 1.0 for k in ks[:t + 1]}, {X[j][k]: 1.0 for k in ks[:t + 1]}, -1.0))
            # valid inequalities: the run's members start after their common predecessor a
            # finishes and end before their common successor b starts, one at a time on
            # each processor k, so S_b ≥ S_a + p_a + Σ_{i in run} p_i·[i at k] for every k
            # (the big-M processor rows say this only for integral x)
            preds, succs = P.preds[run[0]], P.succs[run[0]]
            if len(preds) == 1 and len(succs) == 1:
                a, b = preds[0], succs[0]
                for k in ks:
                    row = _add({self.S[b]: 1.0}, self._f_expr(a), -1.0)
                    for i in run:
                        _add(row, self._p_part(i, k), -1.0)
                    m.row(0.0, _INF, row)

    def _add_makespan_and_memory(self) -> None:
        P, m, X, A, inst = self.P, self.m, self.X, self.P.allowed, self.P.inst
        for i in range(P.n):
            if not P.succs[i]:
                row = _add({self.R: 1.0}, self._f_expr(i), -1.0)
                for k in A[i]:
                    if k != DEVICE:
                        row[X[i][k]] = row.get(X[i][k], 0.0) - P.down(i, k)[0] / self.tau
                m.row(0.0, _INF, row)
        cap = inst.system.mem_capacity_bytes
        for k in range(P.K):
            nodes = [i for i in range(P.n) if k in A[i]]
            if not fits_memory(sum(inst.mem_need[i] for i in nodes), cap[k]):
                m.row(-_INF, cap[k] * MEM_TOL / 1e9, {X[i][k]: inst.mem_need[i] / 1e9 for i in nodes})
        self.makespan = _add({self.R: 1.0}, self.mig_t)

    def _add_energy(self) -> None:
        """Phase 2's objective: device compute, idle P_idle·(C − busy), transfers."""
        P, m, X, A, inst = self.P, self.m, self.X, self.P.allowed, self.P.inst
        energy, eps, pi = self.energy, self.eps, P.pidle
        for i in range(P.n):
            if DEVICE in A[i]:
                levels = self.Y[i].items() if self.Y[i] is not None else [(P.fmax, X[i][DEVICE])]
                for v, c in levels:
                    energy[c] = energy.get(c, 0.0) + (inst.dev_energy[i][v] - pi * P.ptime(i, DEVICE, v)) / eps
        _add(energy, self.makespan, pi * self.tau / eps)
        _add(energy, self.mig_e)
        # downloads: once per (node, server) whose output some successor on the device needs
        for i in range(P.n):
            if not P.succs[i]:
                for k in A[i]:
                    if k != DEVICE:
                        energy[X[i][k]] = energy.get(X[i][k], 0.0) + P.down(i, k)[1] / eps
                continue
            users = [j for j in P.succs[i] if DEVICE in A[j]]
            for k in A[i] if users else ():
                if k != DEVICE:
                    dcol = m.var(0.0, 1.0, cost=P.down(i, k)[1] / eps)
                    for j in users:
                        m.row(0.0, _INF, {dcol: 1.0, self.PI[i, j][k, P.qmax, DEVICE]: -1.0})
        for c, v in energy.items():
            m.cost[c] += v

    # ------------------------------------------------------------------ solving
    def run(self, *, relax: bool = False, time_limit_s: float | None = None, mip_rel_gap: float = 1e-9,
            threads: int = 1, cutoff: float | None = None) -> MilpResult:
        """Solve; (HiGHS status string, column values, objective (native units), gap).

        ``cutoff``: the objective of a known solution (native units), passed as HiGHS's
        ``objective_bound`` (slightly inflated) so that B&B prunes against it.  (HiGHS 1.16's
        MIP start, ``setSolution``, is not used: when presolve improves the start, the
        returned columns are the start's while the objective is the improved one.)"""
        import highspy

        m = self.m
        h = new_highs(int(threads))
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
        MS = highspy.HighsModelStatus
        if ms == MS.kInfeasible:
            if cutoff is not None and not relax:
                raise RuntimeError("HiGHS found no solution as good as the known incumbent "
                                   f"(model status {status!r}): the model is wrong")
            return MilpResult("infeasible", [], _INF, _INF)
        if ms not in (MS.kOptimal, MS.kTimeLimit, MS.kInterrupt, MS.kSolutionLimit) or not has_sol:
            if ms == MS.kTimeLimit:
                return MilpResult("time_limit_no_solution", [], _INF, _INF)
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
        if ms == MS.kOptimal:
            return MilpResult("optimal", col, obj, gap if math.isfinite(gap) else 0.0)
        return MilpResult("time_limit", col, obj, gap)

    def placement(self, col: list[float]) -> Placement:
        """Read (round) a placement from column values: argmax per node (ties: lower location,
        higher level); levels that cannot matter stay at the highest."""
        P = self.P
        loc = [max(xs, key=lambda k: (col[xs[k]], -k)) for xs in self.X]
        dv, tx = [P.fmax] * P.n, [P.qmax] * P.n
        for i, k in enumerate(loc):
            if k == DEVICE:
                if self.Y[i] is not None:
                    dv[i] = max(self.Y[i], key=lambda v: (col[self.Y[i][v]], v))
                if self.TQ[i] is not None and any(loc[j] != DEVICE for j in P.succs[i]):
                    tx[i] = max(self.TQ[i], key=lambda q: (col[self.TQ[i][q]], q))
            elif self.MQ[i] is not None and k in self.MQ[i]:
                tx[i] = max(self.MQ[i][k], key=lambda q: (col[self.MQ[i][k][q]], q))
        return Placement(loc, dv, tx)

    def lp_assignment(self, col: list[float]) -> list[dict[int, float]]:
        """Per node, the (fractional) x value of each allowed location."""
        return [{k: col[c] for k, c in xs.items()} for xs in self.X]
