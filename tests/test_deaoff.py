"""The exact DeAOff solver against brute force, the chain DP against the MILP, and the
relaxed mode, on seeded random small instances.

Instances: chains, diamonds, fork-joins, residual (skip-edge) chains and random DAGs (some
with two sources) of 3-7 nodes on 2-3 locations; device and server memories drawn so that
some placements (sometimes every placement) do not fit; 1 or 2 DVFS / transmit-power
levels (2 keeps brute force small); KV caches at random locations for some instances (so
migrations happen).  Every figure a Solution reports is the cost engine's.
"""
from __future__ import annotations

import json
import math
import time

import networkx as nx
import numpy as np
import pytest

from solvers.brute_force import brute_force
from solvers.deaoff import ChainTables, Problem, Solution, check_against_engine, is_chain, polish, solve
from core.cost import evaluate, memory_use
from core.instance import Instance, Placement, make_instance
from core.system import DeviceConfig, Scenario, ServerConfig, make_snapshot

REL = 1e-6
SHAPES = ("chain", "diamond", "forkjoin", "residual", "random")


# --------------------------------------------------------------------------- instances
def _edges(rng: np.random.Generator, n: int, shape: str) -> list[tuple[int, int]]:
    if shape == "chain":
        return [(i, i + 1) for i in range(n - 1)]
    if shape == "diamond":  # 0 -> 1..n-2 -> n-1 (parallel branches)
        return [(0, i) for i in range(1, n - 1)] + [(i, n - 1) for i in range(1, n - 1)]
    if shape == "forkjoin":  # 0 -> {1, 2} -> 3 -> {4, 5} -> 6 ..., cut at n
        edges, j = [], 0
        while j + 3 < n:
            edges += [(j, j + 1), (j, j + 2), (j + 1, j + 3), (j + 2, j + 3)]
            j += 3
        edges += [(j, k) for k in range(j + 1, n)]
        return edges
    if shape == "residual":  # chain + skip edges, like the sublayer DAG
        return [(i, i + 1) for i in range(n - 1)] + [(i, i + 2) for i in range(0, n - 2, 2)]
    edges = [(i, i + 1) for i in range(n - 1)]
    edges += [(i, j) for i in range(n) for j in range(i + 2, n) if rng.random() < 0.3]
    if n > 3 and rng.random() < 0.5:  # a second source
        edges = [e for e in edges if e[1] != 1]
    return edges


def random_instance(seed: int, *, n: int | None = None, shape: str | None = None,
                    servers: int | None = None, levels2: bool | None = None,
                    kv: bool | None = None, roomy: bool = False) -> Instance:
    """``roomy``: every location can hold the whole model (memory never binds)."""
    rng = np.random.default_rng(seed)
    levels2 = bool(seed % 2 == 0) if levels2 is None else levels2
    n = int(rng.integers(3, 7 if levels2 else 8)) if n is None else n
    shape = SHAPES[seed % len(SHAPES)] if shape is None else shape
    m = int(rng.integers(1, 3)) if servers is None else servers
    G = nx.DiGraph()
    names = [f"n{i}" for i in range(n)]
    for name in names:
        mem = float(10 ** rng.uniform(6, 9))
        G.add_node(name, kind="block", flops=float(mem * rng.uniform(0.5, 3.0)), mem_bytes=mem,
                   weight_bytes=float(mem * rng.uniform(0.5, 1.0)), out_bytes=float(10 ** rng.uniform(3, 5.5)),
                   kv_bytes=float(rng.choice([0.0, 1e7])))
    G.add_edges_from((names[a], names[b]) for a, b in _edges(rng, n, shape))
    total = sum(G.nodes[v]["weight_bytes"] + G.nodes[v]["kv_bytes"] for v in G)
    device = DeviceConfig(freqs_hz=(0.5e9, 1.3e9) if levels2 else (1.3e9,),
                          tx_powers_w=(0.1, 1.0) if levels2 else (1.0,),
                          mem_capacity_bytes=float(total * (rng.uniform(0.2, 1.2) + (2.0 if roomy else 0.0))))
    srv = [ServerConfig(distance_km=float(rng.uniform(0.05, 1.2)), load=float(rng.uniform(0.0, 0.9)),
                        mem_capacity_bytes=float(total * (rng.uniform(0.3, 1.5) + (2.0 if roomy else 0.0))),
                        latency_s=float(rng.uniform(0.0, 2e-3))) for _ in range(m)]
    snap = make_snapshot(Scenario(device=device, servers=srv), fading_power=list(rng.exponential(1.0, m)))
    kv_loc, kv_move = {}, {}
    if (rng.random() < 0.4) if kv is None else kv:
        for v in G:
            if rng.random() < 0.5:
                kv_loc[v] = int(rng.integers(0, m + 1))
                kv_move[v] = float(10 ** rng.uniform(4, 6.5))
    return make_instance(G, snap, kv_loc=kv_loc, kv_move_bytes=kv_move)


def _feasible(inst: Instance) -> bool:
    try:
        brute_force(inst, "makespan", levels=False)
        return True
    except ValueError:
        return False


def _close(a: float, b: float, rel: float = REL) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b))


def _assert_engine(inst: Instance, sol: Solution) -> None:
    """The reported figures are the engine's for the reported placement."""
    r = evaluate(inst, sol.placement)
    assert sol.makespan_s == r.makespan_s and sol.energy_j == r.energy_j
    assert sol.result.makespan_s == r.makespan_s and sol.result.energy_j == r.energy_j
    used = memory_use(inst, sol.placement.loc)
    assert all(u <= c * (1 + 1e-9) for u, c in zip(used, inst.system.mem_capacity_bytes))


def _uniform(inst: Instance, k: int) -> Placement | None:
    """Everything at location k (highest levels) if it fits."""
    p = Placement([k] * inst.num_nodes)
    if k and not inst.system.server_up[k - 1]:
        return None
    used = memory_use(inst, p.loc)
    return p if all(u <= c for u, c in zip(used, inst.system.mem_capacity_bytes)) else None


# --------------------------------------------------------------------------- exact vs brute force
@pytest.mark.parametrize("seed", range(200))
def test_exact_matches_brute_force(seed: int) -> None:
    inst = random_instance(seed)
    if not _feasible(inst):
        with pytest.raises(ValueError, match="memory budget|fits nowhere"):
            solve(inst, use_dp=False)
        return
    levels = inst.system.device.freqs_hz != (1.3e9,)
    sol = solve(inst, use_dp=False, levels=levels)
    assert sol.method == "exact-milp" and sol.status == "optimal"
    _, best_t = brute_force(inst, "makespan", levels=False)
    assert _close(sol.phase1_makespan_s, best_t.makespan_s), (sol.phase1_makespan_s, best_t.makespan_s)
    assert sol.latency_bound_s == pytest.approx(1.1 * sol.phase1_makespan_s, rel=1e-12)
    _, best_e = brute_force(inst, "energy", latency_bound_s=sol.latency_bound_s, levels=levels)
    assert _close(sol.energy_j, best_e.energy_j), (sol.energy_j, best_e.energy_j)
    assert sol.makespan_s <= sol.latency_bound_s * (1 + 1e-9)
    _assert_engine(inst, sol)
    # never worse than everything on one location, on its own objectives
    for k in range(inst.num_locations):
        p = _uniform(inst, k)
        if p is not None:
            r = evaluate(inst, p)
            assert sol.phase1_makespan_s <= r.makespan_s * (1 + REL)
            if r.makespan_s <= sol.latency_bound_s:
                assert sol.energy_j <= r.energy_j * (1 + REL)


@pytest.mark.parametrize("seed", range(200, 215))
def test_deadline_and_no_phase2(seed: int) -> None:
    inst = random_instance(seed, levels2=True, n=4)
    if not _feasible(inst):
        return
    s1 = solve(inst, phase2=False, use_dp=False)
    assert s1.latency_bound_s is None and s1.placement == s1.phase1_placement
    _, best = brute_force(inst, "makespan", levels=False)
    assert _close(s1.makespan_s, best.makespan_s)
    deadline = 1.5 * s1.makespan_s
    s2 = solve(inst, deadline_s=deadline, use_dp=False)
    _, best_e = brute_force(inst, "energy", latency_bound_s=deadline)
    assert s2.latency_bound_s == deadline and _close(s2.energy_j, best_e.energy_j)
    with pytest.raises(ValueError, match="below the minimum makespan"):
        solve(inst, deadline_s=0.5 * s1.makespan_s, use_dp=False)


@pytest.mark.parametrize("seed", range(215, 230))
def test_huge_deadline_is_the_unconstrained_energy_optimum(seed: int) -> None:
    """A deadline far above any schedule (1e9 s) must not blow up the MILP's big-M constants:
    the answer is brute force's minimum energy at any latency, re-costed by the engine
    (before the fix the model's energy drifted from the engine's and solve raised)."""
    inst = random_instance(seed, levels2=True, n=4)
    if not _feasible(inst):
        return
    sol = solve(inst, deadline_s=1e9, use_dp=False)
    _, best_e = brute_force(inst, "energy", latency_bound_s=1e9)
    assert _close(sol.energy_j, best_e.energy_j), (sol.energy_j, best_e.energy_j)
    _assert_engine(inst, sol)


# --------------------------------------------------------------------------- chain DP vs MILP
@pytest.mark.parametrize("seed", range(300, 370))
def test_chain_dp_equals_milp(seed: int) -> None:
    rng = np.random.default_rng(seed)
    inst = random_instance(seed, shape="chain", n=int(rng.integers(3, 10)), servers=int(rng.integers(1, 4)))
    assert is_chain(inst)
    levels = seed % 3 != 0
    try:
        milp = solve(inst, use_dp=False, levels=levels)
    except ValueError:
        with pytest.raises(ValueError):
            solve(inst, use_dp=True, levels=levels)
        return
    dp = solve(inst, use_dp=True, levels=levels)
    # the chain tables are exact under the capacities too: no hand-over on small chains
    assert dp.method == "exact-dp" and dp.status == "dp_optimal"
    assert _close(dp.phase1_makespan_s, milp.phase1_makespan_s, 1e-9)
    assert _close(dp.energy_j, milp.energy_j, 1e-9), (dp.energy_j, milp.energy_j)
    assert dp.makespan_s <= dp.latency_bound_s * (1 + 1e-9)
    _assert_engine(inst, dp)


def _chain_instance(seed: int) -> Instance:
    rng = np.random.default_rng(seed)
    return random_instance(seed, shape="chain", levels2=True, n=int(rng.integers(3, 7)),
                           servers=int(rng.integers(1, 3)), kv=bool(seed % 2), roomy=seed % 3 != 0)


@pytest.mark.parametrize("seed", range(500, 560))
def test_chain_tables_match_brute_force(seed: int) -> None:
    """The chain tables: phase 1 = the minimum makespan, the energy minimum with an
    unbounded latency and with a bound between the fastest and the cheapest makespan =
    brute force's, memory binding or not; every answer re-evaluates to its figures."""
    inst = _chain_instance(seed)
    if not _feasible(inst):
        return
    T = ChainTables(inst)
    fast = T.fastest()
    _, best_t = brute_force(inst, "makespan", levels=False)
    assert _close(fast.objective, best_t.makespan_s, 1e-9)
    assert _close(evaluate(inst, fast.placement).makespan_s, fast.objective, 1e-9)
    cheap = T.min_energy(1e9)
    _, best_e = brute_force(inst, "energy", latency_bound_s=1e9)
    assert _close(cheap.objective, best_e.energy_j, 1e-9), (cheap.objective, best_e.energy_j)
    r = evaluate(inst, cheap.placement)
    assert _close(r.energy_j, cheap.objective, 1e-9) and _close(r.makespan_s, cheap.makespan_s, 1e-9)
    if cheap.makespan_s > fast.makespan_s * (1 + 1e-9):
        B = fast.makespan_s + 0.5 * (cheap.makespan_s - fast.makespan_s)
        _, best_b = brute_force(inst, "energy", latency_bound_s=B)
        mid = T.min_energy(B * (1 + 1e-9), known=fast.placement)
        r2 = evaluate(inst, mid.placement)
        assert _close(mid.objective, best_b.energy_j, 1e-9) and _close(r2.energy_j, mid.objective, 1e-9)
        assert r2.makespan_s <= B * (1 + 1e-9)


def _tight_chain(seed: int) -> Instance:
    """A chain of 4-8 nodes on 3 locations whose memories force a split: each location holds
    30-70% of the model (at least its largest node), so every capacity can bind."""
    rng = np.random.default_rng(seed)
    inst = random_instance(seed, shape="chain", levels2=seed % 2 == 0, n=int(rng.integers(5, 9) if seed % 2 else
                                                                               rng.integers(4, 7)),
                           servers=2, kv=bool(seed % 3 == 0), roomy=True)
    total = sum(inst.mem_need)
    caps = [max(float(total * rng.uniform(0.3, 0.7)), 1.01 * max(inst.mem_need)) for _ in range(3)]
    return Instance.from_dict(inst.to_dict() | {"system": inst.system.to_dict() | {"mem_capacity_bytes": caps}})


@pytest.mark.parametrize("seed", range(700, 740))
def test_memory_binding_chain_matches_brute_force(seed: int) -> None:
    """Chains where every location's capacity binds: the chain tables (label search with the
    memory of each binding location in the label, pruned by the Lagrangian bound on time and
    memory) prove the same optima as brute force, without the MILP."""
    inst = _tight_chain(seed)
    assert len(ChainTables(inst).binding) == inst.num_locations
    if not _feasible(inst):
        with pytest.raises(ValueError, match="memory budget|fits nowhere"):
            solve(inst)
        return
    levels = len(inst.system.device.freqs_hz) > 1
    sol = solve(inst, levels=levels)
    assert sol.method == "exact-dp" and sol.status == "dp_optimal"
    _, best_t = brute_force(inst, "makespan", levels=False)
    assert _close(sol.phase1_makespan_s, best_t.makespan_s, 1e-9)
    _, best_e = brute_force(inst, "energy", latency_bound_s=sol.latency_bound_s, levels=levels)
    assert _close(sol.energy_j, best_e.energy_j, 1e-9), (sol.energy_j, best_e.energy_j)
    _assert_engine(inst, sol)


def test_chain_solve_uses_both_fast_branches() -> None:
    """On random chains the exact solve settles phase 2 by the unconstrained minimum when it
    meets the bound and by the Lagrangian search when it does not; both equal brute force."""
    settled = handed_over = 0
    for seed in range(500, 600):
        inst = _chain_instance(seed)
        if not _feasible(inst):
            continue
        sol = solve(inst)
        _, best_e = brute_force(inst, "energy", latency_bound_s=sol.latency_bound_s)
        assert _close(sol.energy_j, best_e.energy_j, 1e-9), (seed, sol.energy_j, best_e.energy_j)
        _assert_engine(inst, sol)
        if ChainTables(inst).min_energy(1e9).makespan_s <= sol.latency_bound_s * (1 + 1e-9):
            settled += 1
        else:
            handed_over += 1
    assert settled >= 10 and handed_over >= 3, (settled, handed_over)


# --------------------------------------------------------------------------- relaxed mode
@pytest.mark.parametrize("seed", range(400, 430))
def test_relaxed_feasible_with_nonnegative_gap(seed: int) -> None:
    inst = random_instance(seed, n=6)
    if not _feasible(inst):
        return
    rx = solve(inst, mode="relaxed")
    assert rx.status == "relaxed" and rx.method == "relaxed"
    _assert_engine(inst, rx)
    assert rx.makespan_s <= rx.latency_bound_s * (1 + 1e-9)  # its own bound, from its phase 1
    assert rx.mip_gap >= 0.0  # against its LP relaxation's bound
    ex = solve(inst, use_dp=False)
    cmp = solve(inst, mode="relaxed", exact=ex)
    assert cmp.phase1_makespan_s >= ex.phase1_makespan_s * (1 - REL)
    assert cmp.info["phase1_gap"] >= -REL
    assert cmp.latency_bound_s == ex.latency_bound_s  # same constraint as the reference
    assert cmp.gap_vs_exact is not None and cmp.gap_vs_exact >= -REL
    if cmp.info["meets_bound"]:
        assert math.isfinite(cmp.gap_vs_exact)


@pytest.mark.parametrize("seed", range(430, 450))
def test_polish_never_worsens_and_keeps_the_bound(seed: int) -> None:
    """The relaxed mode's local search only accepts engine-costed improvements that meet the
    latency bound and the capacities; started from the phase-1 optimum it never goes below
    the exact phase-2 optimum (nothing can)."""
    inst = random_instance(seed, n=6, levels2=True)
    if not _feasible(inst):
        return
    ex = solve(inst, use_dp=False)
    start = ex.phase1_placement
    e0 = evaluate(inst, start).energy_j
    B = ex.latency_bound_s * (1 + 1e-9)
    p, moves = polish(Problem(inst), start, objective="energy", bound_s=B, deadline=time.process_time() + 5.0)
    r = evaluate(inst, p)  # validates memory and servers
    assert r.makespan_s <= B and r.energy_j <= e0 * (1 + 1e-12)
    assert r.energy_j >= ex.energy_j * (1 - 1e-9)
    assert (moves == 0) == (p.loc == start.loc and p.levels(inst) == start.levels(inst))


def test_relaxed_compare_exact_computes_reference() -> None:
    inst = random_instance(7, n=5, levels2=True, shape="chain", servers=1)
    rx = solve(inst, mode="relaxed", compare_exact=True)
    assert rx.gap_vs_exact is not None and rx.gap_vs_exact >= -REL


# --------------------------------------------------------------------------- status, errors
def test_time_limit_status() -> None:
    inst = random_instance(1000, n=40, shape="random", servers=3, levels2=True, kv=True)
    sol = solve(inst, time_limit_s=0.05)
    assert sol.status == "time_limit" and sol.method == "exact-milp"
    assert sol.mip_gap > 0.0
    _assert_engine(inst, sol)
    assert sol.makespan_s <= sol.latency_bound_s * (1 + 1e-9)


def _tiny(device_mem: float, server_mem: float, big: float = 1e9) -> nx.DiGraph:
    G = nx.DiGraph()
    for name, w in (("embed", 1e6), ("giant", big), ("head", 1e6)):
        G.add_node(name, kind="block", flops=1e9, mem_bytes=w, weight_bytes=w, out_bytes=1e4, kv_bytes=0.0)
    G.add_edges_from([("embed", "giant"), ("giant", "head")])
    return G


def test_node_that_fits_nowhere_is_named() -> None:
    sc = Scenario(device=DeviceConfig(mem_capacity_bytes=5e8), servers=[ServerConfig(mem_capacity_bytes=5e8)])
    inst = make_instance(_tiny(5e8, 5e8), make_snapshot(sc))
    for kwargs in ({}, {"use_dp": False}, {"mode": "relaxed"}):
        with pytest.raises(ValueError, match="'giant' fits nowhere"):
            solve(inst, **kwargs)
    with pytest.raises(ValueError, match="'giant' fits nowhere"):
        brute_force(inst)


def test_memory_budget_is_named() -> None:
    sc = Scenario(device=DeviceConfig(mem_capacity_bytes=7e8), servers=[ServerConfig(mem_capacity_bytes=7e8)])
    G = _tiny(7e8, 7e8, big=6e8)
    G.add_node("giant2", kind="block", flops=1e9, mem_bytes=6e8, weight_bytes=6e8, out_bytes=1e4, kv_bytes=0.0)
    G.add_node("giant3", kind="block", flops=1e9, mem_bytes=6e8, weight_bytes=6e8, out_bytes=1e4, kv_bytes=0.0)
    G.remove_edge("giant", "head")
    G.add_edges_from([("giant", "giant2"), ("giant2", "giant3"), ("giant3", "head")])
    inst = make_instance(G, make_snapshot(sc))
    for kwargs in ({}, {"use_dp": False}):
        with pytest.raises(ValueError, match="memory budget"):
            solve(inst, **kwargs)


def test_down_server_is_excluded() -> None:
    sc = Scenario(servers=[ServerConfig(distance_km=0.1), ServerConfig(distance_km=0.1)])
    G = _tiny(6e9, 40e9, big=1e8)
    inst = make_instance(G, make_snapshot(sc, server_up=[False, True]))
    for use_dp in (True, False):
        sol = solve(inst, use_dp=use_dp)
        assert 1 not in sol.placement.loc


def test_mismatch_between_milp_and_engine_raises() -> None:
    inst = random_instance(3, n=4)
    p = solve(inst, phase2=False).placement
    true = evaluate(inst, p).makespan_s
    with pytest.raises(RuntimeError, match="mismatch"):
        check_against_engine(inst, p, true * 0.5, "makespan", proven=True)
    check_against_engine(inst, p, true, "makespan", proven=True)


def test_brute_force_refuses_large_instances() -> None:
    inst = random_instance(11, n=7, levels2=False)
    with pytest.raises(ValueError, match="7 nodes x"):
        brute_force(inst, max_nodes=6)


def test_solution_to_dict_is_json() -> None:
    inst = random_instance(5, n=4, shape="diamond", servers=2)
    if not _feasible(inst):
        pytest.skip("infeasible draw")
    d = solve(inst).to_dict()
    text = json.dumps(d)
    assert json.loads(text)["status"] in ("optimal", "dp_optimal")


def test_levels_false_keeps_highest_levels() -> None:
    inst = random_instance(6, n=5, levels2=True, shape="chain", servers=2)
    if not _feasible(inst):
        pytest.skip("infeasible draw")
    for use_dp in (True, False):
        sol = solve(inst, levels=False, use_dp=use_dp)
        dv, tx = sol.placement.levels(inst)
        assert set(dv) == {len(inst.system.device.freqs_hz) - 1}
        assert set(tx) == {len(inst.system.device.tx_powers_w) - 1}


@pytest.mark.parametrize("seed", range(740, 770))
def test_chain_flow_milp_matches_brute_force(seed: int) -> None:
    """With no label budget the chain tables settle a binding chain on their path-flow MILP
    (after Lagrangian variable fixing against the best path met): the same optima as brute
    force, phase 1 and phase 2."""
    inst = _tight_chain(seed)
    if not _feasible(inst):
        return
    T = ChainTables(inst)
    fast = T.fastest(label_budget=0)
    _, best_t = brute_force(inst, "makespan", levels=False)
    assert fast.gap == 0.0 and _close(fast.objective, best_t.makespan_s, 1e-9)
    B = 1.1 * fast.objective
    slow = T.min_energy(B * (1 + 1e-9), known=fast.placement, label_budget=0)
    _, best_e = brute_force(inst, "energy", latency_bound_s=B)
    assert slow.gap == 0.0 and _close(slow.objective, best_e.energy_j, 1e-9), (slow, best_e.energy_j)
    r = evaluate(inst, slow.placement)
    assert _close(r.energy_j, slow.objective, 1e-9) and r.makespan_s <= B * (1 + 1e-9)


@pytest.mark.parametrize("seed", range(770, 790))
def test_chain_flow_milp_with_identical_blocks_matches_brute_force(seed: int) -> None:
    """Identical middle blocks (as in a real model) switch on the flow MILP's rounded
    capacity rows (Σ_blocks u[i,k] ≤ floor(cap_k / block)); the optima stay brute force's."""
    base = _tight_chain(seed)
    d = base.to_dict()
    n = base.num_nodes
    block = float(np.median(base.mem_need))
    d["weight_bytes"] = [d["weight_bytes"][0]] + [block] * (n - 2) + [d["weight_bytes"][-1]]
    d["kv_bytes"] = [0.0] * n
    caps = [max(c, 1.01 * max(d["weight_bytes"])) for c in base.system.mem_capacity_bytes]
    inst = Instance.from_dict(d | {"system": base.system.to_dict() | {"mem_capacity_bytes": caps}})
    if not _feasible(inst):
        return
    T = ChainTables(inst)
    fast = T.fastest(label_budget=0)
    _, best_t = brute_force(inst, "makespan", levels=False)
    assert _close(fast.objective, best_t.makespan_s, 1e-9)
    B = 1.1 * fast.objective
    slow = T.min_energy(B * (1 + 1e-9), known=fast.placement, label_budget=0)
    _, best_e = brute_force(inst, "energy", latency_bound_s=B)
    assert _close(slow.objective, best_e.energy_j, 1e-9), (slow, best_e.energy_j)
