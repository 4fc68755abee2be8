"""Symmetry breaking for interchangeable nodes (the attention heads of one layer at
``head`` granularity): the groups are found, the engine's cost is invariant under
permuting placements within a group (the claim the MILP's ordering rows rest on), and the
exact solver with those rows equals brute force on small head-shaped DAGs, in both
objectives."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from core.cost import evaluate, placement_fits, weighted_cost
from core.dag import build_dag
from core.instance import Instance, Placement, make_instance
from core.models import load_model_spec
from core.system import DeviceConfig, Scenario, ServerConfig, make_snapshot
from solvers.brute_force import brute_force
from solvers.deaoff import Problem, solve
from solvers.deaoff.prep import identical_groups
from tests.test_deaoff import _assert_engine, _close


def head_instance(seed: int, heads: int = 3, layers: int = 1, servers: int = 2, levels2: bool = True,
                  tight: bool = True) -> Instance:
    """embed → ``heads`` identical heads → o_proj → mlp, ``layers`` times (a small copy of the
    head DAG); memories drawn so that some placements do not fit when ``tight``."""
    rng = np.random.default_rng(seed)
    G = nx.DiGraph()
    prev = "embed"

    def node(name: str, mem: float, kv: float = 0.0) -> None:
        G.add_node(name, kind="block", flops=float(mem * rng.uniform(0.5, 3.0)), mem_bytes=mem,
                   weight_bytes=mem * 0.8, out_bytes=float(10 ** rng.uniform(3, 5)), kv_bytes=kv)

    node(prev, float(10 ** rng.uniform(6, 8)))
    for layer in range(layers):
        head_mem, head_out = float(10 ** rng.uniform(6, 8.5)), float(10 ** rng.uniform(3, 5))
        head_flops = float(head_mem * rng.uniform(0.5, 3.0))
        for h in range(heads):
            G.add_node(f"L{layer}.h{h}", kind="heads", flops=head_flops, mem_bytes=head_mem,
                       weight_bytes=head_mem * 0.8, out_bytes=head_out, kv_bytes=1e6)
            G.add_edge(prev, f"L{layer}.h{h}")
        node(f"L{layer}.o", float(10 ** rng.uniform(6, 8)))
        for h in range(heads):
            G.add_edge(f"L{layer}.h{h}", f"L{layer}.o")
        node(f"L{layer}.mlp", float(10 ** rng.uniform(6, 8.5)))
        G.add_edge(f"L{layer}.o", f"L{layer}.mlp")
        prev = f"L{layer}.mlp"
    total = sum(G.nodes[v]["weight_bytes"] + G.nodes[v]["kv_bytes"] for v in G)
    share = (lambda: float(rng.uniform(0.35, 1.0))) if tight else (lambda: 3.0)
    device = DeviceConfig(freqs_hz=(0.5e9, 1.3e9) if levels2 else (1.3e9,),
                          tx_powers_w=(0.1, 1.0) if levels2 else (1.0,), mem_capacity_bytes=total * share())
    srv = [ServerConfig(distance_km=float(rng.uniform(0.05, 1.2)), load=float(rng.uniform(0.0, 0.9)),
                        mem_capacity_bytes=total * share(), latency_s=float(rng.uniform(0.0, 2e-3)))
           for _ in range(servers)]
    snap = make_snapshot(Scenario(device=device, servers=srv), fading_power=list(rng.exponential(1.0, servers)))
    return make_instance(G, snap)


def test_groups_of_the_head_dag() -> None:
    """Llama-2-7B at head granularity: each layer's 4 head nodes form one group (32 layers)."""
    from core.system import load_scenario
    g = build_dag(load_model_spec("llama-2-7b"), "head", "decode", context_len=512)
    inst = make_instance(g, make_snapshot(load_scenario("two-edge")))
    groups = identical_groups(inst)
    assert len(groups) == 32 and all(len(r) == 4 for r in groups)
    names = list(g.nodes)
    assert [names[i] for i in groups[0]] == ["L0.heads0", "L0.heads1", "L0.heads2", "L0.heads3"]
    assert Problem(inst).groups == groups


@pytest.mark.parametrize("seed", range(30))
def test_engine_cost_is_invariant_within_a_group(seed: int) -> None:
    inst = head_instance(seed, heads=3, layers=2, servers=2, tight=False)
    groups = identical_groups(inst)
    assert len(groups) == 2
    rng = np.random.default_rng(seed)
    nf, nq = len(inst.system.device.freqs_hz), len(inst.system.device.tx_powers_w)
    loc = [int(x) for x in rng.integers(0, inst.num_locations, inst.num_nodes)]
    dv = [int(x) for x in rng.integers(0, nf, inst.num_nodes)]
    tx = [int(x) for x in rng.integers(0, nq, inst.num_nodes)]
    base = evaluate(inst, Placement(loc, dv, tx))
    for run in groups:
        perm = [int(p) for p in rng.permutation(run)]
        loc2, dv2, tx2 = list(loc), list(dv), list(tx)
        for a, b in zip(run, perm):
            loc2[a], dv2[a], tx2[a] = loc[b], dv[b], tx[b]
        r = evaluate(inst, Placement(loc2, dv2, tx2))
        assert r.makespan_s == pytest.approx(base.makespan_s, rel=1e-12)
        assert r.energy_j == pytest.approx(base.energy_j, rel=1e-12)


@pytest.mark.parametrize("seed", range(40))
def test_head_groups_exact_matches_brute_force(seed: int) -> None:
    inst = head_instance(seed, heads=3 if seed % 2 else 4, servers=1 + seed % 2, levels2=seed % 3 != 0)
    levels = seed % 3 != 0
    try:
        _, best_t = brute_force(inst, "makespan", levels=False)
    except ValueError:
        with pytest.raises(ValueError):
            solve(inst)
        return
    assert identical_groups(inst)
    sol = solve(inst, levels=levels)
    assert sol.status == "optimal"
    assert _close(sol.phase1_makespan_s, best_t.makespan_s), (sol.phase1_makespan_s, best_t.makespan_s)
    _, best_e = brute_force(inst, "energy", latency_bound_s=sol.latency_bound_s, levels=levels)
    assert _close(sol.energy_j, best_e.energy_j), (sol.energy_j, best_e.energy_j)
    _assert_engine(inst, sol)
    # the answer respects the ordering rows: locations non-decreasing within each group
    for run in identical_groups(inst):
        locs = [sol.phase1_placement.loc[i] for i in run]
        assert locs == sorted(locs)
    w = (1.0, 0.5)
    wsol = solve(inst, levels=levels, objective="weighted", w_time_per_s=w[0], w_energy_per_j=w[1])
    _, best_w = brute_force(inst, "weighted", levels=levels, w_time_per_s=w[0], w_energy_per_j=w[1])
    assert _close(wsol.weighted_cost, weighted_cost(best_w.makespan_s, best_w.energy_j, w_time_per_s=w[0],
                                                    w_energy_per_j=w[1]))
    assert placement_fits(inst, wsol.placement.loc)
