"""Tests of the classic heuristics (baselines/heuristics.py).

Golden cases use a toy system with round numbers (as in tests/test_cost.py), every level
at the highest: the device computes 1e12 FLOP/s, each server 4e12 FLOP/s; 1e6 bytes take
1 s up (the one shared uplink), 0.5 s down and 0.5 s over the backhaul; latencies 0.
So with T = 1e12 FLOPs and MB = 1e6 bytes every time below is exact in binary.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solvers.heuristics import HEURISTICS, eft_schedule, run_heuristic
from core.cost import check_memory, evaluate, memory_use
from core.dag import build_dag
from core.instance import Instance, Placement, make_instance
from core.system import DeviceConfig, SystemSnapshot, load_scenario, make_snapshot

T = 1e12
MB = 1e6
GB = 1e9
NAMES = list(HEURISTICS)


# --------------------------------------------------------------------------- helpers
def toy_system(*, server_up=(True, True), mem=(1e12, 1e12, 1e12)) -> SystemSnapshot:
    dev = DeviceConfig(freqs_hz=(0.5e9, 1e9), flops_per_cycle=1000.0, mem_bw_bytes_per_s=1e18,
                       mem_capacity_bytes=mem[0], kappa=1e-27, dram_j_per_byte=0.0,
                       tx_powers_w=(0.25, 0.5), rx_power_w=0.2, idle_power_w=0.1)
    return SystemSnapshot(
        device=dev, server_flops_per_s=[4e12, 4e12], server_mem_bw_bytes_per_s=[1e18, 1e18],
        server_load=[0.0, 0.0], server_power_w=[100.0, 50.0], mem_capacity_bytes=list(mem),
        uplink_bps=[[4e6, 8e6], [4e6, 8e6]], downlink_bps=[16e6, 16e6],
        link_latency_s=[0.0, 0.0], backhaul_bps=16e6, backhaul_latency_s=0.0,
        server_up=list(server_up))


def toy(names, flops, out_bytes, preds, *, in_bytes=MB, weight_bytes=None, system=None,
        kv_loc=None, kv_move_bytes=None) -> Instance:
    n = len(names)
    return Instance(names=list(names), kinds=["toy"] * n, flops=list(flops), mem_bytes=[0.0] * n,
                    weight_bytes=list(weight_bytes or [0.0] * n), out_bytes=list(out_bytes),
                    kv_bytes=[0.0] * n, preds=[list(p) for p in preds],
                    system=system or toy_system(), in_bytes=in_bytes,
                    kv_loc=list(kv_loc or []), kv_move_bytes=list(kv_move_bytes or []))


def chain(flops, out_bytes, **kw) -> Instance:
    n = len(flops)
    return toy([f"n{i}" for i in range(n)], flops, out_bytes, [[i - 1] if i else [] for i in range(n)], **kw)


def assert_valid(inst: Instance, p: Placement) -> None:
    assert len(p.loc) == inst.num_nodes
    p.validate(inst)
    check_memory(inst, p.loc)
    for k in p.loc:
        assert k == 0 or inst.system.server_up[k - 1]
    assert p.dvfs == [len(inst.system.device.freqs_hz) - 1] * inst.num_nodes
    assert p.tx == [len(inst.system.device.tx_powers_w) - 1] * inst.num_nodes


# --------------------------------------------------------------------------- golden cases
def test_golden_chain_edge_clearly_faster():
    # a, b, c: 4T each (4 s on the device, 1 s on a server), 1 MB between them, 1 MB input.
    # a: device 4 | edge1 = input up 1 + 1 = 2 (edge2 ties, the lower index wins)
    # b: edge1 2 + 1 = 3 | device 2 + 0.5 down + 4 = 6.5 | edge2 2 + 0.5 backhaul + 1 = 3.5
    # c: edge1 3 + 1 + 0.5 return = 4.5 | device 3.5 + 4 = 7.5 | edge2 3.5 + 1 + 0.5 = 5
    inst = chain([4 * T, 4 * T, 4 * T], [MB, MB, MB])
    for name in ("greedy-eft", "heft"):
        p, res = run_heuristic(name, inst)
        assert p.loc == [1, 1, 1], name
        assert res.makespan_s == 4.5
        # transmit: the input, 1 s at 0.5 W; receive: 0.5 s at 0.2 W; idle 0.1 W x 4.5 s
        assert res.energy_j == pytest.approx(0.5 + 0.1 + 0.45, rel=1e-12)
        assert res.edge_energy_j == pytest.approx(300.0)
    assert run_heuristic("all-edge", inst)[0].loc == [1, 1, 1]
    assert run_heuristic("neurosurgeon", inst)[0].loc == [1, 1, 1]
    assert run_heuristic("all-device", inst)[1].makespan_s == 12.0


def test_golden_chain_greedy_is_myopic_neurosurgeon_is_not():
    # a 1T, b 8T, c 0.5T.  greedy/HEFT:
    # a: device 1 | edge 1 (input up) + 0.25 = 1.25                      -> device, 1
    # b: device 1 + 8 = 9 | edge1 1 + 1 (up) + 2 = 4 (edge2 ties)         -> edge1, 4
    # c: edge1 4 + 0.125 + 0.5 = 4.625 | device 4.5 + 0.5 = 5 | edge2 5.125 -> edge1
    # neurosurgeon's p = 0 (all on edge1): 1 + 0.25 + 2 + 0.125 + 0.5 = 3.875; all-device 9.5
    inst = chain([1 * T, 8 * T, 0.5 * T], [MB, MB, MB])
    for name in ("greedy-eft", "heft"):
        p, res = run_heuristic(name, inst)
        assert p.loc == [0, 1, 1], name
        assert res.makespan_s == 4.625
    p, res = run_heuristic("neurosurgeon", inst)
    assert p.loc == [1, 1, 1] and res.makespan_s == 3.875
    assert run_heuristic("all-edge", inst)[1].makespan_s == 3.875
    assert run_heuristic("all-device", inst)[1].makespan_s == 9.5
    sched = eft_schedule(inst)
    assert sched.partial_cost()[0] == 4.625  # the greedy's own estimate is exact on a chain


def test_golden_uplink_contention_separates_greedy_from_heft():
    # a (device) -> b, c -> d.  The input is 8 MB (8 s up), so a stays on the device (1 s).
    # b 8T: edge1, a's output uploaded 1-2, b runs 2-4.
    # c 2T: device 1 + 2 = 3.  edge2: HEFT (no contention) 1 + 1 + 0.5 = 2.5 -> edge2;
    #       greedy: the uplink is busy until 2, so 3 + 0.5 = 3.5 -> device.
    # d (0 FLOPs, 0-byte output): edge1 at 4 in both (device 4.5, edge2 4.5).
    inst = toy(["a", "b", "c", "d"], [1 * T, 8 * T, 2 * T, 0.0], [MB, MB, MB, 0.0],
               [[], [0], [0], [1, 2]], in_bytes=8 * MB)
    pg, rg = run_heuristic("greedy-eft", inst)
    ph, rh = run_heuristic("heft", inst)
    assert pg.loc == [0, 1, 0, 1]
    assert ph.loc == [0, 1, 2, 1]
    # engine: greedy: c's output goes up 3-4 (uplink free at 2), d at 4 on edge1
    # HEFT: a's output up to edge1 1-2 then edge2 2-3, c 3-3.5, backhaul 3.5-4, d at 4
    assert rg.makespan_s == 4.0 and rh.makespan_s == 4.0
    assert eft_schedule(inst).partial_cost()[0] == 4.0
    assert eft_schedule(inst, shared_uplink=False).partial_cost()[0] == 4.0


def test_greedy_accounts_for_kv_migration():
    # The single node's cache (1 MB) lives on edge1: running it on the device costs a
    # 0.5 s download first; edge1 costs the input upload (1 s) + 0.25 + 0 return.
    # device: 0.5 + 1 = 1.5 vs edge1: 1.25 vs edge2: 0.5 backhaul + 1 + 0.25 = 1.75
    inst = toy(["x"], [1 * T], [0.0], [[]], kv_loc=[1], kv_move_bytes=[MB])
    for name in ("greedy-eft", "heft"):
        p, res = run_heuristic(name, inst)
        assert p.loc == [1] and res.makespan_s == 1.25


# --------------------------------------------------------------------------- feasibility
def test_infeasible_node_is_named():
    inst = chain([T, T, T], [MB, MB, MB], weight_bytes=[1.0, 5 * GB, 1.0],
                 system=toy_system(mem=(1 * GB, 2 * GB, 2 * GB)))
    for name in ("random", "greedy-eft", "heft", "neurosurgeon"):
        with pytest.raises(ValueError, match="'n1'"):
            HEURISTICS[name](inst)
    with pytest.raises(ValueError, match="memory exceeded at device"):
        HEURISTICS["all-device"](inst)
    with pytest.raises(ValueError, match="all-edge infeasible.*memory"):
        HEURISTICS["all-edge"](inst)


def test_dead_end_names_the_node_that_fits_nowhere():
    # each location holds exactly one 2 GB node: the fourth has nowhere to go
    inst = chain([T] * 4, [MB] * 4, weight_bytes=[2 * GB] * 4, system=toy_system(mem=(3 * GB,) * 3))
    for name in ("random", "greedy-eft", "heft"):
        with pytest.raises(ValueError, match="node 'n3' has no feasible location"):
            HEURISTICS[name](inst)
    with pytest.raises(ValueError, match="neurosurgeon infeasible"):
        HEURISTICS["neurosurgeon"](inst)


def test_servers_down():
    inst = chain([4 * T] * 3, [MB] * 3, system=toy_system(server_up=(False, False)))
    with pytest.raises(ValueError, match="down"):
        HEURISTICS["all-edge"](inst)
    for name in ("all-device", "random", "greedy-eft", "heft", "neurosurgeon"):
        assert HEURISTICS[name](inst).loc == [0, 0, 0], name
    # edge1 down: the clearly faster edge is edge2
    inst = chain([4 * T] * 3, [MB] * 3, system=toy_system(server_up=(False, True)))
    for name in ("all-edge", "greedy-eft", "heft", "neurosurgeon"):
        assert HEURISTICS[name](inst).loc == [2, 2, 2], name
    for seed in range(10):
        assert 1 not in HEURISTICS["random"](inst, np.random.default_rng(seed)).loc


def test_memory_pushes_nodes_off_the_device():
    # 100 MB activations (100 s up) keep the greedy on the device, which holds only two
    # of the three 1 GB nodes: the third must go to a server
    inst = chain([T, T, T], [100 * MB] * 3, in_bytes=100 * MB, weight_bytes=[GB] * 3,
                 system=toy_system(mem=(2.5 * GB, 40 * GB, 40 * GB)))
    for name in ("greedy-eft", "heft"):
        assert run_heuristic(name, inst)[0].loc == [0, 0, 1], name
    p, _ = run_heuristic("neurosurgeon", inst)
    assert memory_use(inst, p.loc)[0] <= 2.5 * GB
    with pytest.raises(ValueError, match="memory"):
        HEURISTICS["all-device"](inst)


def test_unknown_heuristic():
    with pytest.raises(ValueError, match="unknown heuristic 'nope'"):
        run_heuristic("nope", chain([T], [0.0]))


# --------------------------------------------------------------------------- random
def test_random_is_reproducible():
    n = 30
    inst = chain([T] * n, [MB] * n)
    a = HEURISTICS["random"](inst, np.random.default_rng(7))
    b = HEURISTICS["random"](inst, np.random.default_rng(7))
    assert a.loc == b.loc
    assert HEURISTICS["random"](inst, 7).loc == a.loc  # an int seed works too
    assert HEURISTICS["random"](inst).loc == HEURISTICS["random"](inst, np.random.default_rng(0)).loc
    assert any(HEURISTICS["random"](inst, np.random.default_rng(s)).loc != a.loc for s in range(3))
    assert set(a.loc) == {0, 1, 2}
    _, r1 = run_heuristic("random", inst, np.random.default_rng(3))
    _, r2 = run_heuristic("random", inst, np.random.default_rng(3))
    assert r1.makespan_s == r2.makespan_s and r1.energy_j == r2.energy_j


# --------------------------------------------------------------------------- properties
@st.composite
def instances(draw):
    n = draw(st.integers(1, 7))
    is_chain = draw(st.booleans())
    preds = []
    for i in range(n):
        if is_chain:
            preds.append([i - 1] if i else [])
        else:
            preds.append(sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else [])
    flops = [draw(st.sampled_from([0.0, 0.25, 1.0, 4.0, 9.0])) * T for _ in range(n)]
    out = [draw(st.sampled_from([0.0, 0.1, 1.0, 3.0])) * MB for _ in range(n)]
    weights = [draw(st.sampled_from([0.0, 1.0, 2.0, 3.0])) * GB for _ in range(n)]
    mem = tuple(draw(st.sampled_from([1.0, 3.0, 6.0, 40.0])) * GB for _ in range(3))
    up = (draw(st.booleans()), draw(st.booleans()))
    kv_loc = [draw(st.integers(-1, 2)) for _ in range(n)]
    kv_move = [draw(st.sampled_from([0.0, 0.5 * MB])) for _ in range(n)]
    return toy([f"v{i}" for i in range(n)], flops, out, preds, weight_bytes=weights,
               in_bytes=draw(st.sampled_from([4.0, MB])), system=toy_system(server_up=up, mem=mem),
               kv_loc=kv_loc, kv_move_bytes=kv_move), is_chain


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(), st.integers(0, 2**32 - 1))
def test_properties(case, seed):
    inst, is_chain = case
    total = sum(inst.mem_need)
    device_fits = total <= inst.system.mem_capacity_bytes[0]
    results = {}
    for name in NAMES:
        try:
            p, res = run_heuristic(name, inst, np.random.default_rng(seed))
        except ValueError as exc:
            msg = str(exc)
            assert ("memory" in msg or "no feasible location" in msg or "down" in msg), msg
            if name != "all-edge":  # if the whole model fits the device, nothing dead-ends
                assert not device_fits, (name, msg)
            continue
        assert_valid(inst, p)
        again = evaluate(inst, p)
        assert again.makespan_s == res.makespan_s and again.energy_j == res.energy_j
        assert math.isfinite(res.makespan_s) and res.makespan_s >= 0
        results[name] = (p, res)
    if device_fits:
        assert {"all-device", "neurosurgeon", "greedy-eft", "heft", "random"} <= set(results)
    if "neurosurgeon" in results:
        t = results["neurosurgeon"][1].makespan_s
        for extreme in ("all-device", "all-edge"):
            if extreme in results:
                assert t <= results[extreme][1].makespan_s * (1 + 1e-12), extreme
    else:  # no split fits: then neither extreme does
        assert "all-device" not in results and "all-edge" not in results
    if is_chain and "greedy-eft" in results:
        # on a chain the uplink never contends: greedy == HEFT, and the greedy's own
        # estimate (the engine's probes, outputs sent lazily) is the engine's cost exactly
        assert results["heft"][0].loc == results["greedy-eft"][0].loc
        res = results["greedy-eft"][1]
        assert eft_schedule(inst).partial_cost() == pytest.approx((res.makespan_s, res.energy_j), rel=1e-12)


# --------------------------------------------------------------------------- real models
@pytest.mark.parametrize("gran", ["block", "sublayer", "head"])
def test_real_model_two_servers(gran):
    inst = make_instance(build_dag("llama-3.2-1b", gran, "decode", prompt_len=64),
                         make_snapshot(load_scenario("two-edge")))
    res = {}
    for name in NAMES:
        p, r = run_heuristic(name, inst, np.random.default_rng(0))
        assert_valid(inst, p)
        res[name] = r.makespan_s
    assert res["neurosurgeon"] <= min(res["all-device"], res["all-edge"]) * (1 + 1e-12)
    assert res["greedy-eft"] <= res["all-device"]
    if gran == "block":
        assert eft_schedule(inst).partial_cost()[0] == pytest.approx(res["greedy-eft"], rel=1e-12)


def test_real_model_too_big_for_the_device():
    inst = make_instance(build_dag("llama-2-7b", "block", "decode", prompt_len=64),
                         make_snapshot(load_scenario("urban-5g")))
    with pytest.raises(ValueError, match="memory exceeded at device"):
        run_heuristic("all-device", inst)
    for name in ("all-edge", "random", "greedy-eft", "heft", "neurosurgeon"):
        p, _ = run_heuristic(name, inst)
        assert_valid(inst, p)
        assert memory_use(inst, p.loc)[0] <= inst.system.mem_capacity_bytes[0]
