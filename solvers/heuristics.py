"""Classic placement heuristics, each scored by the one cost engine.

Every baseline is a function ``(inst, rng=None) -> Placement`` with every DVFS and
transmit-power level at the highest (the engine's default), registered in
:data:`HEURISTICS`; :func:`run_heuristic` builds a placement and evaluates it with
:func:`core.cost.evaluate`.  Whatever a heuristic estimates internally, the cost it
reports is ALWAYS the engine's.

* ``all-device``   every node on the device.
* ``all-edge``     every node on one server: the best by engine makespan among the servers
                   that are up and can hold the whole model.
* ``random``       per node in index order, a uniformly random location among those that
                   are feasible given what is already placed (seeded generator; default
                   seed 0).
* ``greedy-eft``   per node in index order, the location with the earliest finish time,
                   given what is placed so far, by an incremental list schedule that follows
                   the engine's rules (FIFO processors in index order, the one shared uplink
                   served in order, the token ids uploaded once per server, an output sent
                   once per destination, downlinks and backhaul uncontended, KV migrations
                   delaying the whole token).  A sink's finish is when its output is back on
                   the device.  Outputs are sent when a consumer is placed (the producer's
                   destinations are not known yet), so on a general DAG the uplink order can
                   differ from the engine's producer order; on a chain the estimate is exact.
* ``heft``         HEFT (Topcuoglu, Hariri & Wu, IEEE TPDS 2002): nodes by decreasing upward
                   rank (the instance's index order already is that order), each to the
                   processor with the earliest finish time, insertion disabled (processors
                   serve nodes in index order).  Classic HEFT's communication model: every
                   transfer costs its duration and links are contention-free (the shared
                   uplink is not modelled); the device is a processor like the others, and
                   a sink's finish includes returning its output to the device (a
                   device-pinned exit node).  On a chain it coincides with ``greedy-eft``.
* ``neurosurgeon`` Neurosurgeon (Kang et al., ASPLOS 2017): one split point, the first p
                   nodes in index order on the device and the rest on one server; the best
                   (p, server) by engine makespan over p = 0..n (both extremes included)
                   and every up server, among the splits that fit in memory.  Index order is
                   topological, so every prefix is a valid cut.

Memory and availability: every choice goes through :func:`core.cost.feasible_locations`
(a location is up and still has room for the node's weights + KV).  A node with no
feasible choice raises ``ValueError`` naming it; ``all-device`` / ``all-edge`` raise
``ValueError`` naming the memory problem when the model does not fit (callers catch it
and report "infeasible").
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from core.cost import DEVICE, Result, evaluate, feasible_locations, location_allowed
from core.instance import Instance, Placement

__all__ = ["HEURISTICS", "run_heuristic", "all_device", "all_edge", "random_placement",
           "greedy_eft", "heft", "neurosurgeon"]

_TOL = 1 + 1e-12  # the engine's memory tolerance


# --------------------------------------------------------------------------- helpers
def _placement(inst: Instance, loc: list[int]) -> Placement:
    """``loc`` with every level at the highest (explicit lists)."""
    n = inst.num_nodes
    return Placement([int(k) for k in loc], [len(inst.system.device.freqs_hz) - 1] * n,
                     [len(inst.system.device.tx_powers_w) - 1] * n)


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng(0)
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


def _gb(x: float) -> str:
    return f"{x / 1e9:.3f} GB"


def _up_servers(inst: Instance) -> list[int]:
    return [k for k in range(1, inst.num_locations) if location_allowed(inst, k)]


def _choices(inst: Instance, i: int, used: list[float], who: str) -> list[int]:
    """Feasible locations of node ``i`` given ``used``; ValueError naming the node if none."""
    ok = [k for k, fits in enumerate(feasible_locations(inst, i, used)) if fits]
    if not ok:
        cap = inst.system.mem_capacity_bytes
        free = ", ".join(f"{inst.location_names[k]} {_gb(max(cap[k] - used[k], 0.0))}"
                         for k in range(inst.num_locations) if location_allowed(inst, k))
        raise ValueError(f"{who}: node {inst.names[i]!r} has no feasible location: it needs "
                         f"{_gb(inst.mem_need[i])} (weights + KV); free memory at the locations "
                         f"that are up: {free}")
    return ok


# --------------------------------------------------------------------------- trivial ones
def all_device(inst: Instance, rng: np.random.Generator | int | None = None) -> Placement:
    """Every node on the device (ValueError if the model does not fit its memory)."""
    total = sum(inst.mem_need)
    cap = inst.system.mem_capacity_bytes[DEVICE]
    if total > cap * _TOL:
        raise ValueError(f"all-device infeasible: memory exceeded at device: the model needs "
                         f"{_gb(total)} (weights + KV), device capacity {_gb(cap)}")
    return _placement(inst, [DEVICE] * inst.num_nodes)


def all_edge(inst: Instance, rng: np.random.Generator | int | None = None) -> Placement:
    """Every node on the single server with the lowest engine makespan among the servers
    that are up and can hold the whole model (ties: the lowest index)."""
    total = sum(inst.mem_need)
    cap = inst.system.mem_capacity_bytes
    up = _up_servers(inst)
    fit = [k for k in up if total <= cap[k] * _TOL]
    if not fit:
        if not up:
            why = "every edge server is down"
        else:
            why = "no server that is up has the memory: " + ", ".join(
                f"{inst.location_names[k]} {_gb(cap[k])}" for k in up)
        raise ValueError(f"all-edge infeasible: the model needs {_gb(total)} (weights + KV); {why}")
    best: tuple[float, int] | None = None
    for k in fit:
        t = evaluate(inst, [k] * inst.num_nodes, record=False, check=False).makespan_s
        if best is None or t < best[0]:
            best = (t, k)
    assert best is not None
    return _placement(inst, [best[1]] * inst.num_nodes)


def random_placement(inst: Instance, rng: np.random.Generator | int | None = None) -> Placement:
    """Per node in index order, a uniform choice among its feasible locations."""
    gen = _as_rng(rng)
    used = [0.0] * inst.num_locations
    loc = []
    for i in range(inst.num_nodes):
        ok = _choices(inst, i, used, "random")
        k = ok[int(gen.integers(len(ok)))]
        used[k] += inst.mem_need[i]
        loc.append(k)
    return _placement(inst, loc)


# --------------------------------------------------------------------------- list scheduling
class _ListSchedule:
    """An incremental schedule of nodes placed in index order, at the highest levels.

    ``contention=True`` follows the engine's rules (see :mod:`core.cost`), with outputs sent
    when a consumer is placed; ``contention=False`` is HEFT's model: every transfer takes
    its duration and starts when its data is ready (no shared uplink).  Times are relative
    to the end of the KV-migration phase ``t_mig``, as in the engine."""

    def __init__(self, inst: Instance, contention: bool) -> None:
        n, K = inst.num_nodes, inst.num_locations
        self.inst = inst
        self.contention = contention
        self.v = len(inst.system.device.freqs_hz) - 1
        self.q = len(inst.system.device.tx_powers_w) - 1
        self.loc = [-1] * n
        self.finish = [0.0] * n
        self.arrival: list[dict[int, float]] = [{} for _ in range(n)]
        self.free = [0.0] * K
        self.uplink_free = 0.0
        self.input_at: dict[int, float] = {DEVICE: 0.0}
        self.t_mig = 0.0
        self.rel_makespan = 0.0
        self.used = [0.0] * K
        self.n_placed = 0

    def finish_time(self, i: int, k: int, commit: bool = False) -> float:
        """Absolute finish of node ``i`` at location ``k`` (a sink: its output back on the
        device); with ``commit`` the placement is recorded."""
        inst, q = self.inst, self.q
        if i != self.n_placed:
            raise ValueError(f"nodes must be placed in index order: expected {self.n_placed}, got {i}")
        t_mig = self.t_mig
        a, size = inst.kv_loc[i], inst.kv_move_bytes[i]
        if a >= 0 and a != k and size > 0.0:
            t_mig += inst.transfer(a, k, q, size)[0]
        uplink = self.uplink_free
        sends: list[tuple[int, float]] = []
        new_input = None
        preds = inst.preds[i]
        ready = 0.0
        if preds:
            for p in preds:
                t = self.arrival[p].get(k)
                if t is None:
                    src = self.loc[p]
                    dur = inst.transfer(src, k, q, inst.out_bytes[p])[0]
                    if src == DEVICE and self.contention:
                        s = uplink if uplink > self.finish[p] else self.finish[p]
                        t = uplink = s + dur
                    else:
                        t = self.finish[p] + dur
                    sends.append((p, t))
                if t > ready:
                    ready = t
        else:
            t = self.input_at.get(k)
            if t is None:  # the token ids, uploaded at the highest power level
                dur = inst.transfer(DEVICE, k, len(inst.system.device.tx_powers_w) - 1, inst.in_bytes)[0]
                if self.contention:
                    t = uplink = uplink + dur
                else:
                    t = dur
                new_input = t
            ready = t
        start = ready if ready > self.free[k] else self.free[k]
        fin = start + (inst.dev_time[i][self.v] if k == DEVICE else inst.srv_time[i][k - 1])
        done = fin
        is_sink = not inst.succs[i]
        if is_sink and k != DEVICE:
            done = fin + inst.transfer(k, DEVICE, q, inst.out_bytes[i])[0]
        if commit:
            self.t_mig = t_mig
            self.uplink_free = uplink
            for p, t in sends:
                self.arrival[p][k] = t
            if new_input is not None:
                self.input_at[k] = new_input
            self.free[k] = fin
            self.finish[i] = fin
            self.arrival[i] = {k: fin}
            self.loc[i] = k
            self.used[k] += inst.mem_need[i]
            if is_sink and done > self.rel_makespan:
                self.rel_makespan = done
            self.n_placed += 1
        return t_mig + done

    @property
    def makespan(self) -> float:
        """The schedule's own makespan estimate (all nodes placed)."""
        return self.t_mig + self.rel_makespan


def _eft_schedule(inst: Instance, contention: bool, who: str) -> _ListSchedule:
    sched = _ListSchedule(inst, contention)
    for i in range(inst.num_nodes):
        ok = _choices(inst, i, sched.used, who)
        best = min(ok, key=lambda k: (sched.finish_time(i, k), k))
        sched.finish_time(i, best, commit=True)
    return sched


def greedy_eft(inst: Instance, rng: np.random.Generator | int | None = None) -> Placement:
    """Each node, in index order, at the feasible location where it finishes earliest
    (contention-aware list schedule following the engine's rules)."""
    return _placement(inst, _eft_schedule(inst, True, "greedy-eft").loc)


def heft(inst: Instance, rng: np.random.Generator | int | None = None) -> Placement:
    """HEFT: upward-rank order (= index order), earliest finish time, no insertion,
    contention-free communication."""
    return _placement(inst, _eft_schedule(inst, False, "heft").loc)


# --------------------------------------------------------------------------- neurosurgeon
def neurosurgeon(inst: Instance, rng: np.random.Generator | int | None = None) -> Placement:
    """The best single split: nodes 0..p-1 on the device, p..n-1 on one server, by engine
    makespan over every p = 0..n and every up server (ties: the first in the order
    servers ascending, p ascending; p = n, all on the device, comes last)."""
    n = inst.num_nodes
    cap = inst.system.mem_capacity_bytes
    empty = [0.0] * inst.num_locations
    for i in range(n):  # a node that fits nowhere even alone: name it
        _choices(inst, i, empty, "neurosurgeon")
    prefix = [0.0]
    for need in inst.mem_need:
        prefix.append(prefix[-1] + need)
    total = prefix[-1]
    best: tuple[float, list[int]] | None = None

    def consider(loc: list[int]) -> None:
        nonlocal best
        t = evaluate(inst, loc, record=False, check=False).makespan_s
        if best is None or t < best[0]:
            best = (t, loc)

    for k in _up_servers(inst):
        for p in range(n):  # p = n is the all-device placement, the same for every server
            if prefix[p] <= cap[DEVICE] * _TOL and total - prefix[p] <= cap[k] * _TOL:
                consider([DEVICE] * p + [k] * (n - p))
    if total <= cap[DEVICE] * _TOL:
        consider([DEVICE] * n)
    if best is None:
        raise ValueError(f"neurosurgeon infeasible: no split point fits in memory (the model "
                         f"needs {_gb(total)} (weights + KV); device {_gb(cap[DEVICE])}, up servers: "
                         + (", ".join(f"{inst.location_names[k]} {_gb(cap[k])}" for k in _up_servers(inst))
                            or "none") + ")")
    return _placement(inst, best[1])


# --------------------------------------------------------------------------- registry
Heuristic = Callable[..., Placement]

HEURISTICS: dict[str, Heuristic] = {
    "all-device": all_device,
    "all-edge": all_edge,
    "random": random_placement,
    "greedy-eft": greedy_eft,
    "heft": heft,
    "neurosurgeon": neurosurgeon,
}


def run_heuristic(name: str, inst: Instance,
                  rng: np.random.Generator | int | None = None) -> tuple[Placement, Result]:
    """Build the placement of heuristic ``name`` and evaluate it with the cost engine
    (which also validates it and checks memory)."""
    if name not in HEURISTICS:
        raise ValueError(f"unknown heuristic {name!r}; known: {sorted(HEURISTICS)}")
    placement = HEURISTICS[name](inst, rng)
    return placement, evaluate(inst, placement)
