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
                   given what is placed so far, as the cost engine itself computes it
                   (:meth:`core.cost.Simulator.probe`: FIFO processors in index order, the
                   one shared uplink served in order, the token ids uploaded once per
                   server, an output sent once per destination, downlinks and backhaul
                   uncontended, KV migrations delaying the whole token).  A sink's finish
                   is when its output is back on the device.  Outputs are sent when a
                   consumer is placed (the producer's destinations are not known yet), so on
                   a general DAG the uplink order can differ from the engine's producer
                   order; on a chain the estimate is exact.
* ``heft``         HEFT (Topcuoglu, Hariri & Wu, IEEE TPDS 2002): nodes by decreasing upward
                   rank (the instance's index order already is that order), each to the
                   processor with the earliest finish time, insertion disabled (processors
                   serve nodes in index order).  Classic HEFT's communication model: every
                   transfer costs its duration and links are contention-free (the shared
                   uplink is not modelled); the device is a processor like the others, and
                   a sink's finish includes returning its output to the device (a
                   device-pinned exit node).  Its estimate is the engine's with the shared
                   uplink switched off (``Simulator(shared_uplink=False)``).  On a chain it
                   coincides with ``greedy-eft``.
* ``neurosurgeon`` Neurosurgeon (Kang et al., ASPLOS 2017): one split point, the first p
                   nodes in index order on the device and the rest on one server; the best
                   (p, server) by engine makespan over p = 0..n (both extremes included)
                   and every up server, among the splits that fit in memory.  Index order is
                   topological, so every prefix is a valid cut.

Solver baselines (:data:`SOLVER_BASELINES`, also accepted by :func:`run_heuristic`; kept out
of :data:`HEURISTICS` because they solve an optimisation problem per call):

* ``latency-optimal`` the minimum-makespan placement alone, EdgeShard-style (Zhang et al.,
                   arXiv 2405.14371: a dynamic programme over layers and devices for the
                   lowest latency): DeAOff's phase 1 (``solvers.deaoff.solve(...,
                   phase2=False)``), every level at the highest, no energy phase.  Beside
                   DeAOff it shows what the energy phase buys.  Ties between placements of
                   equal makespan are broken by the solver, not by energy.

Memory and availability: every choice goes through :func:`core.cost.feasible_locations`
(a location is up and still has room for the node's weights + KV).  A node with no
feasible choice raises ``ValueError`` naming it; ``all-device`` / ``all-edge`` raise
``ValueError`` naming the memory problem when the model does not fit (callers catch it
and report "infeasible").
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from core.cost import (DEVICE, Result, Simulator, evaluate, feasible_locations, fits_memory, location_allowed,
                       split_fits)
from core.instance import Instance, Placement

__all__ = ["HEURISTICS", "SOLVER_BASELINES", "TRADITIONAL", "run_heuristic", "all_device", "all_edge",
           "random_placement", "greedy_eft", "heft", "neurosurgeon", "latency_optimal", "eft_schedule"]

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
    if not fits_memory(total, cap):
        raise ValueError(f"all-device infeasible: memory exceeded at device: the model needs "
                         f"{_gb(total)} (weights + KV), device capacity {_gb(cap)}")
    return _placement(inst, [DEVICE] * inst.num_nodes)


def all_edge(inst: Instance, rng: np.random.Generator | int | None = None) -> Placement:
    """Every node on the single server with the lowest engine makespan among the servers
    that are up and can hold the whole model (ties: the lowest index)."""
    total = sum(inst.mem_need)
    cap = inst.system.mem_capacity_bytes
    up = _up_servers(inst)
    fit = [k for k in up if fits_memory(total, cap[k])]
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
def eft_schedule(inst: Instance, *, shared_uplink: bool = True, who: str = "greedy-eft") -> Simulator:
    """The list schedule behind ``greedy-eft`` (``shared_uplink=True``, the engine's rules)
    and ``heft`` (``False``: HEFT's contention-free communication): each node in index
    order, at the highest levels, goes to the feasible location where it is done earliest
    (a sink: its output back on the device), ties to the lowest location index.  The
    candidates are scored with :meth:`core.cost.Simulator.probe`, i.e. by the engine itself
    with outputs sent lazily (when a consumer is placed).  Returns the simulator: ``.loc``
    is the placement and ``.partial_cost()`` the schedule's own (makespan, energy)
    estimate, exact on a chain."""
    v = len(inst.system.device.freqs_hz) - 1
    q = len(inst.system.device.tx_powers_w) - 1
    sim = Simulator(inst, shared_uplink=shared_uplink)
    used = [0.0] * inst.num_locations
    for i in range(inst.num_nodes):
        best = min(_choices(inst, i, used, who), key=lambda k: (sim.probe(i, k, v, q).done_s, k))
        sim.place(i, best, v, q)
        used[best] += inst.mem_need[i]
    return sim


def greedy_eft(inst: Instance, rng: np.random.Generator | int | None = None) -> Placement:
    """Each node, in index order, at the feasible location where it finishes earliest
    (contention-aware list schedule following the engine's rules)."""
    return _placement(inst, eft_schedule(inst, shared_uplink=True, who="greedy-eft").loc)


def heft(inst: Instance, rng: np.random.Generator | int | None = None) -> Placement:
    """HEFT: upward-rank order (= index order), earliest finish time, no insertion,
    contention-free communication."""
    return _placement(inst, eft_schedule(inst, shared_uplink=False, who="heft").loc)


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
    total = sum(inst.mem_need)
    best: tuple[float, list[int]] | None = None

    def consider(loc: list[int]) -> None:
        nonlocal best
        t = evaluate(inst, loc, record=False, check=False).makespan_s
        if best is None or t < best[0]:
            best = (t, loc)

    fits = split_fits(inst)
    for k in _up_servers(inst):
        for p in range(n):  # p = n is the all-device placement, the same for every server
            if fits[p][k - 1]:
                consider([DEVICE] * p + [k] * (n - p))
    if fits_memory(total, cap[DEVICE]):
        consider([DEVICE] * n)
    if best is None:
        raise ValueError(f"neurosurgeon infeasible: no split point fits in memory (the model "
                         f"needs {_gb(total)} (weights + KV); device {_gb(cap[DEVICE])}, up servers: "
                         + (", ".join(f"{inst.location_names[k]} {_gb(cap[k])}" for k in _up_servers(inst))
                            or "none") + ")")
    return _placement(inst, best[1])


# --------------------------------------------------------------------------- solver baselines
def latency_optimal(inst: Instance, rng: np.random.Generator | int | None = None, *,
                    time_limit_s: float | None = None) -> Placement:
    """The minimum-makespan placement (DeAOff's phase 1 alone, every level at the highest);
    ``time_limit_s`` caps the solve (then the best incumbent, see ``solvers.deaoff.solve``).
    ValueError when no placement fits in memory."""
    from solvers.deaoff import solve  # local: solvers.deaoff is the heavier package

    return solve(inst, mode="exact", phase2=False, time_limit_s=time_limit_s).phase1_placement


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


SOLVER_BASELINES: dict[str, Heuristic] = {
    "latency-optimal": latency_optimal,
}
"""Baselines that solve an optimisation problem (not in :data:`HEURISTICS`)."""

TRADITIONAL: dict[str, Heuristic] = {**HEURISTICS, **SOLVER_BASELINES}
"""Every traditional method DeAOff is compared against in ``evaluate.py static``."""


def run_heuristic(name: str, inst: Instance,
                  rng: np.random.Generator | int | None = None) -> tuple[Placement, Result]:
    """Build the placement of heuristic ``name`` and evaluate it with the cost engine
    (which also validates it and checks memory)."""
    if name not in TRADITIONAL:
        raise ValueError(f"unknown heuristic {name!r}; known: {sorted(TRADITIONAL)}")
    placement = TRADITIONAL[name](inst, rng)
    return placement, evaluate(inst, placement)
