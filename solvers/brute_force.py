"""Exhaustive search over placements (and levels): the oracle the exact solver is tested against.

Every candidate is scored by the cost engine (:func:`core.cost.evaluate`); memory and
server availability are checked first with the engine's own helpers.  Enumeration order
(which decides ties: the first best candidate wins): locations as an odometer over
nodes in index order (node 0 slowest, locations ascending), then the DVFS levels of the
device nodes, then the transmit-power levels of the nodes that upload (their output to
a server, or their KV cache to a server), each ascending.  Levels that cannot matter
stay at the highest (the engine's default).
"""
from __future__ import annotations

import itertools
from typing import Literal

import math

from core.cost import DEVICE, Result, allowed_locations, evaluate, location_allowed, placement_fits, weighted_cost
from core.instance import Instance, Placement

__all__ = ["brute_force"]


def brute_force(inst: Instance, objective: Literal["makespan", "energy", "weighted"] = "makespan",
                latency_bound_s: float | None = None, levels: bool = True,
                max_nodes: int = 12, max_locations: int = 3, *, w_time_per_s: float | None = None,
                w_energy_per_j: float | None = None) -> tuple[Placement, Result]:
    """The best placement by exhaustive enumeration.

    ``objective="makespan"``: minimum makespan.  ``objective="energy"``: minimum device
    energy among placements whose makespan is at most ``latency_bound_s``·(1 + 1e-9).
    ``levels``: also enumerate the DVFS level of every device node and the transmit-power
    level of every node that uploads; otherwise every level is the highest.
    ``objective="weighted"``: minimum C = w_T·T + w_E·E (:func:`core.cost.weighted_cost`)
    with ``w_time_per_s`` and ``w_energy_per_j`` (both needed, finite, >= 0), among the
    placements meeting ``latency_bound_s`` when it is given.
    """
    if objective not in ("makespan", "energy", "weighted"):
        raise ValueError(f"objective must be 'makespan', 'energy' or 'weighted', got {objective!r}")
    if objective == "energy" and latency_bound_s is None:
        raise ValueError("objective='energy' needs latency_bound_s")
    if objective == "weighted":
        for name, w in (("w_time_per_s", w_time_per_s), ("w_energy_per_j", w_energy_per_j)):
            if w is None or not (w >= 0 and math.isfinite(w)):
                raise ValueError(f"objective='weighted' needs {name} as a finite number >= 0, got {w!r}")
    n, m = inst.num_nodes, inst.num_locations
    if n > max_nodes or m > max_locations:
        raise ValueError(f"brute force refuses an instance of {n} nodes x {m} locations "
                         f"(limit {max_nodes} nodes x {max_locations} locations)")
    allowed = allowed_locations(inst)
    nf = len(inst.system.device.freqs_hz)
    nq = len(inst.system.device.tx_powers_w)
    fmax, qmax = nf - 1, nq - 1
    bound = None if latency_bound_s is None else latency_bound_s * (1 + 1e-9)
    succs, kv_loc, kv_move = inst.succs, inst.kv_loc, inst.kv_move_bytes

    best: tuple[float, Placement] | None = None
    any_fit = False
    for loc in itertools.product(*allowed):
        if not placement_fits(inst, loc):
            continue
        any_fit = True
        dev_nodes = [i for i in range(n) if loc[i] == DEVICE] if levels else []
        uploaders = [i for i in range(n) if levels and (
            (loc[i] == DEVICE and any(loc[j] != DEVICE for j in succs[i]))
            or (loc[i] != DEVICE and kv_loc[i] == DEVICE and kv_move[i] > 0.0))]
        for dv_choice in itertools.product(range(nf), repeat=len(dev_nodes)):
            dv = [fmax] * n
            for i, v in zip(dev_nodes, dv_choice):
                dv[i] = v
            for tx_choice in itertools.product(range(nq), repeat=len(uploaders)):
                tx = [qmax] * n
                for i, q in zip(uploaders, tx_choice):
                    tx[i] = q
                p = Placement(list(loc), dv, tx)
                r = evaluate(inst, p, record=False, check=False)
                if bound is not None and r.makespan_s > bound:
                    continue
                if objective == "makespan":
                    val = r.makespan_s
                elif objective == "energy":
                    val = r.energy_j
                else:
                    val = weighted_cost(r.makespan_s, r.energy_j, w_time_per_s=w_time_per_s,  # type: ignore[arg-type]
                                        w_energy_per_j=w_energy_per_j)  # type: ignore[arg-type]
                if best is None or val < best[0]:
                    best = (val, p)
    if not any_fit:
        caps = ", ".join(f"{inst.location_names[k]} {inst.system.mem_capacity_bytes[k] / 1e9:.3f} GB"
                         for k in range(m) if location_allowed(inst, k))
        raise ValueError(f"no placement fits the memory budget ({caps}; the nodes need "
                         f"{sum(inst.mem_need) / 1e9:.3f} GB in total)")
    if best is None:
        raise ValueError(f"no placement meets the latency bound {latency_bound_s!r} s")
    return best[1], evaluate(inst, best[1], record=True, check=False)
