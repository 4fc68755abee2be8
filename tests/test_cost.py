"""Tests of the cost engine (core/cost.py) and of the instances and scenarios it reads.

Golden schedules use a toy system with round numbers (``toy_system``):

* device: DVFS levels 0.5 GHz / 1 GHz, 1000 FLOPs per cycle -> 0.5e12 / 1e12 FLOP/s,
  κ = 1e-27 so that 1e12 FLOPs at 1 GHz cost κ·f²·cycles = 1e-27·1e18·1e9 = 1 J
  (at 0.5 GHz: 1e-27·0.25e18·1e9 = 0.25 J per 1e12 FLOPs), DRAM energy 0, memory
  bandwidth 1e18 B/s (so every node is compute-bound);
  transmit-power levels 0.25 W / 0.5 W with uplink 4e6 / 8e6 bit/s to both servers;
  receive 0.2 W, idle 0.1 W.
* edge1 and edge2: 4e12 FLOP/s each, board power 100 W and 50 W; downlink 16e6 bit/s;
  radio latency 0; backhaul 16e6 bit/s, latency 0.

So 1e12 FLOPs take 1 s on the device (level 1) and 0.25 s on a server; 1e6 bytes take
1 s up at 0.5 W (0.5 J), 2 s up at 0.25 W (0.5 J), 0.5 s down (0.1 J received), 0.5 s
over the backhaul.  Every value below is a sum of binary fractions, hence exact.
"""
from __future__ import annotations

import copy
import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.cost import (Simulator, check_memory, evaluate, fallback_location, feasible_locations, memory_use,
                       split_fits)
from core.dag import build_dag, validate_dag
from core.instance import Instance, Placement, make_instance
from core.system import (DeviceConfig, Scenario, ServerConfig, SystemSnapshot, list_scenarios, load_scenario,
                         make_snapshot, sample_scenario, shannon_rate_bps)

T = 1e12  # FLOPs: 1 s on the device at 1 GHz
MB = 1e6  # bytes: 1 s on the uplink at 0.5 W


# --------------------------------------------------------------------------- helpers
def toy_system(*, server_up=(True, True), mem=(1e12, 1e12, 1e12), latency=(0.0, 0.0),
               dram_j_per_byte=0.0) -> SystemSnapshot:
    dev = DeviceConfig(freqs_hz=(0.5e9, 1e9), flops_per_cycle=1000.0, mem_bw_bytes_per_s=1e18,
                       mem_capacity_bytes=mem[0], kappa=1e-27, dram_j_per_byte=dram_j_per_byte,
                       tx_powers_w=(0.25, 0.5), rx_power_w=0.2, idle_power_w=0.1)
    return SystemSnapshot(
        device=dev, server_flops_per_s=[4e12, 4e12], server_mem_bw_bytes_per_s=[1e18, 1e18],
        server_load=[0.0, 0.0], server_power_w=[100.0, 50.0], mem_capacity_bytes=list(mem),
        uplink_bps=[[4e6, 8e6], [4e6, 8e6]], downlink_bps=[16e6, 16e6],
        link_latency_s=list(latency), backhaul_bps=16e6, backhaul_latency_s=0.0,
        server_up=list(server_up))


def toy_instance(names, flops, out_bytes, preds, *, system=None, in_bytes=4.0, weight_bytes=None,
                 kv_bytes=None, mem_bytes=None, kv_loc=None, kv_move_bytes=None) -> Instance:
    n = len(names)
    return Instance(names=list(names), kinds=["toy"] * n, flops=list(flops),
                    mem_bytes=list(mem_bytes or [0.0] * n),
                    weight_bytes=list(weight_bytes or [0.0] * n), out_bytes=list(out_bytes),
                    kv_bytes=list(kv_bytes or [0.0] * n), preds=[list(p) for p in preds],
                    system=system or toy_system(), in_bytes=in_bytes,
                    kv_loc=list(kv_loc or []), kv_move_bytes=list(kv_move_bytes or []))


def spans(res, inst):
    """(kind, node name, src, dst, start, finish, link) of every transfer, times rounded."""
    return [(t.kind, inst.names[t.node] if t.node >= 0 else "<input>", t.src, t.dst,
             round(t.start_s, 9), round(t.finish_s, 9), t.link) for t in res.transfers]


def times(res):
    return [(round(s, 9), round(f, 9)) for s, f in zip(res.start_s, res.finish_s)]


def assert_energy(res, *, compute, transmit, receive, idle, edge):
    assert res.compute_j == pytest.approx(compute, abs=1e-12)
    assert res.transmit_j == pytest.approx(transmit, abs=1e-12)
    assert res.receive_j == pytest.approx(receive, abs=1e-12)
    assert res.idle_j == pytest.approx(idle, abs=1e-12)
    assert res.edge_energy_j == pytest.approx(edge, abs=1e-9)
    assert res.energy_j == pytest.approx(compute + transmit + receive + idle, abs=1e-12)


# --------------------------------------------------------------------------- golden schedules
def test_golden_chain_device_edge_device():
    """(a) chain a → b → c, placed device / edge1 / device, c at the low DVFS level.

    a: 1e12 FLOPs on the device at 1 GHz: 0 → 1 s, κ·f²·cycles = 1e-27·(1e9)²·1e9 = 1 J.
    a→b: 1e6 B uplink at level 1 (0.5 W, 8e6 bit/s): 8e6/8e6 = 1 s, 1 → 2; 0.5·1 = 0.5 J.
    b: 2e12 FLOPs on edge1 (4e12 FLOP/s): 0.5 s, 2 → 2.5; edge energy 100 W·0.5 s = 50 J.
    b→c: 2e6 B downlink 16e6 bit/s: 1 s, 2.5 → 3.5; receive 0.2 W·1 s = 0.2 J.
    c: 0.5e12 FLOPs at level 0 (0.5 GHz → 0.5e12 FLOP/s): 1 s, 3.5 → 4.5;
       1e-27·(0.5e9)²·0.5e9 = 0.125 J.
    makespan = 4.5 (c is the sink, on the device).  Device busy 1 + 1 = 2 s, so
    idle = 0.1 W·(4.5 − 2) = 0.25 J.  compute = 1.125, energy = 1.125 + 0.5 + 0.2 + 0.25 = 2.075 J.
    """
    inst = toy_instance("abc", [T, 2 * T, 0.5 * T], [MB, 2 * MB, MB], [[], [0], [1]])
    pl = Placement([0, 1, 0], dvfs=[1, 1, 0], tx=[1, 1, 1])
    res = evaluate(inst, pl)
    assert times(res) == [(0, 1), (2, 2.5), (3.5, 4.5)]
    assert spans(res, inst) == [("activation", "a", 0, 1, 1, 2, "uplink"),
                                ("activation", "b", 1, 0, 2.5, 3.5, "downlink")]
    assert res.makespan_s == 4.5
    assert res.loc == [0, 1, 0]
    assert_energy(res, compute=1.125, transmit=0.5, receive=0.2, idle=0.25, edge=50.0)


def test_golden_chain_dram_energy_and_latency():
    """(a') the chain of (a), all at level 1, with DRAM energy 1e-9 J/B on 1e6 B per node and a
    radio latency of 0.125 s on edge1 (latency delays, but is not airtime: no energy).

    a: 0 → 1, 1 J + 1e-9·1e6 = 1.001 J.  a→b: 1 s airtime + 0.125 s: 1 → 2.125, 0.5 J.
    b: 2.125 → 2.625 (50 J edge).  b→c: 1 s + 0.125 s: 2.625 → 3.75, 0.2 J.
    c: 0.5e12 at 1 GHz = 0.5 s: 3.75 → 4.25, 0.5 J + 0.001 J.
    makespan 4.25; busy 1.5 s; idle 0.1·(4.25 − 1.5) = 0.275 J; compute 1.502 J.
    """
    sysm = toy_system(latency=(0.125, 0.0), dram_j_per_byte=1e-9)
    inst = toy_instance("abc", [T, 2 * T, 0.5 * T], [MB, 2 * MB, MB], [[], [0], [1]],
                        system=sysm, mem_bytes=[MB, MB, MB])
    res = evaluate(inst, [0, 1, 0])
    assert times(res) == [(0, 1), (2.125, 2.625), (3.75, 4.25)]
    assert res.makespan_s == pytest.approx(4.25)
    assert_energy(res, compute=1.502, transmit=0.5, receive=0.2, idle=0.275, edge=50.0)


DIAMOND = dict(names="abcd", flops=[T, 2 * T, 3 * T, T], out_bytes=[MB, MB, MB, MB],
               preds=[[], [0], [0], [1, 2]], in_bytes=MB)


def test_golden_diamond_branches_in_parallel():
    """(b) diamond a → {b, c} → d; b stays on the device while c runs on edge1.

    a: device 0 → 1 (1 J).  a→c: 1e6 B up at 0.5 W: 1 → 2 (0.5 J).
    b: device, 2e12 FLOPs: 1 → 3 (2 J), in parallel with the upload and with c.
    c: edge1, 3e12 FLOPs / 4e12 = 0.75 s: 2 → 2.75 (edge 100·0.75 = 75 J).
    c→d: 1e6 B down: 0.5 s, 2.75 → 3.25 (0.2·0.5 = 0.1 J).
    d: device, ready max(3, 3.25) = 3.25: 3.25 → 4.25 (1 J).
    makespan 4.25 (all-device would take 1+2+3+1 = 7 s).  Busy 4 s: idle 0.1·0.25 = 0.025 J.
    energy = 4 + 0.5 + 0.1 + 0.025 = 4.625 J.
    """
    inst = toy_instance(**DIAMOND)
    res = evaluate(inst, [0, 0, 1, 0])
    assert times(res) == [(0, 1), (1, 3), (2, 2.75), (3.25, 4.25)]
    assert spans(res, inst) == [("activation", "a", 0, 1, 1, 2, "uplink"),
                                ("activation", "c", 1, 0, 2.75, 3.25, "downlink")]
    assert res.makespan_s == 4.25
    assert_energy(res, compute=4.0, transmit=0.5, receive=0.1, idle=0.025, edge=75.0)


def test_golden_diamond_on_one_location_serialises():
    """(c) the same diamond all on one location: b and c cannot overlap.

    All on the device: a 0→1, b 1→3, c 3→6, d 6→7; makespan 7 = the sum; compute 7 J,
    no transfer, no idle (the device is busy the whole time).
    All on edge1: input 1e6 B up at the highest level (0.5 W): 0→1 (0.5 J); a 1→1.25,
    b 1.25→1.75, c 1.75→2.5 (starts when b frees the server), d 2.5→2.75;
    d's output 1e6 B down 2.75→3.25 (0.1 J); makespan 3.25, idle 0.1·3.25 = 0.325 J;
    edge energy 100 W · (0.25+0.5+0.75+0.25) s = 175 J.
    """
    inst = toy_instance(**DIAMOND)
    dev = evaluate(inst, [0, 0, 0, 0])
    assert times(dev) == [(0, 1), (1, 3), (3, 6), (6, 7)]
    assert dev.transfers == [] and dev.makespan_s == 7
    assert_energy(dev, compute=7.0, transmit=0.0, receive=0.0, idle=0.0, edge=0.0)

    edge = evaluate(inst, [1, 1, 1, 1])
    assert times(edge) == [(1, 1.25), (1.25, 1.75), (1.75, 2.5), (2.5, 2.75)]
    assert spans(edge, inst) == [("input", "<input>", 0, 1, 0, 1, "uplink"),
                                 ("output", "d", 1, 0, 2.75, 3.25, "downlink")]
    assert edge.makespan_s == 3.25
    assert_energy(edge, compute=0.0, transmit=0.5, receive=0.1, idle=0.325, edge=175.0)


def test_golden_uplink_contention_one_producer_two_servers():
    """(d) a on the device feeds b on edge1 and c on edge2: one radio, two uploads.

    a: 0 → 1 (1 J).  a→edge1: 1 → 2 (0.5 J).  a→edge2: data ready at 1 but the uplink is
    busy until 2, so 2 → 3 (0.5 J): the second upload waits 1 s.
    b: edge1 2 → 2.25 (100·0.25 = 25 J), output down 2.25 → 2.75 (0.1 J).
    c: edge2 3 → 3.25 (50·0.25 = 12.5 J), output down 3.25 → 3.75 (0.1 J).
    makespan 3.75; idle 0.1·(3.75 − 1) = 0.275 J; energy 1 + 1 + 0.2 + 0.275 = 2.475 J.
    """
    inst = toy_instance("abc", [T, T, T], [MB, MB, MB], [[], [0], [0]])
    res = evaluate(inst, [0, 1, 2])
    assert times(res) == [(0, 1), (2, 2.25), (3, 3.25)]
    assert spans(res, inst) == [("activation", "a", 0, 1, 1, 2, "uplink"),
                                ("activation", "a", 0, 2, 2, 3, "uplink"),
                                ("output", "b", 1, 0, 2.25, 2.75, "downlink"),
                                ("output", "c", 2, 0, 3.25, 3.75, "downlink")]
    assert res.makespan_s == 3.75
    assert_energy(res, compute=1.0, transmit=1.0, receive=0.2, idle=0.275, edge=37.5)


def test_golden_uplink_contention_two_device_producers():
    """(d') a and b (two sources, both on the device) both feed c on edge1.

    a: 0 → 1; its 2e6 B upload at level 1: 2 s, 1 → 3 (0.5·2 = 1 J).
    b: 1 → 2 (device after a); its 1e6 B upload at level 0 (0.25 W, 4e6 bit/s): 2 s,
       ready at 2 but the uplink is busy until 3 → 3 → 5 (0.25·2 = 0.5 J).
    c: edge1, ready 5: 5 → 5.25 (25 J); output 1e6 B down 5.25 → 5.75 (0.1 J).
    makespan 5.75; busy 2 s; idle 0.1·3.75 = 0.375 J; energy 2 + 1.5 + 0.1 + 0.375 = 3.975 J.
    """
    inst = toy_instance("abc", [T, T, T], [2 * MB, MB, MB], [[], [], [0, 1]])
    res = evaluate(inst, Placement([0, 0, 1], tx=[1, 0, 1]))
    assert times(res) == [(0, 1), (1, 2), (5, 5.25)]
    assert spans(res, inst) == [("activation", "a", 0, 1, 1, 3, "uplink"),
                                ("activation", "b", 0, 1, 3, 5, "uplink"),
                                ("output", "c", 1, 0, 5.25, 5.75, "downlink")]
    assert res.makespan_s == 5.75
    assert_energy(res, compute=2.0, transmit=1.5, receive=0.1, idle=0.375, edge=25.0)


def test_golden_kv_migration_phase():
    """(e) chain a → b → c with KV caches: a's cache is on the device (stays), b's 2e6 B cache is
    on the device but b runs on edge1 (migrated up at b's level 0: 0.25 W, 4e6 bit/s), c's 1e6 B
    cache is on edge1 but c runs on the device (migrated down).

    Reconfiguration phase, serial from 0, in node order:
      b: 2e6·8/4e6 = 4 s, 0 → 4, transmit 0.25·4 = 1 J;
      c: 1e6·8/16e6 = 0.5 s, 4 → 4.5, receive 0.2·0.5 = 0.1 J.   T_mig = 4.5.
    Then the token: a 4.5 → 5.5 (1 J); a→b up at a's level 1: 5.5 → 6.5 (0.5 J; the uplink is
    free: migrations are not in the compute phase); b 6.5 → 7 (50 J edge); b→c down
    7 → 7.5 (0.1 J); c (0.5e12, level 1) 7.5 → 8 (0.5 J).
    makespan 8; busy 1.5 s; idle 0.1·6.5 = 0.65 J.
    compute 1.5, transmit 1 + 0.5 = 1.5, receive 0.1 + 0.1 = 0.2, energy 3.85 J.
    Without the caches the same placement costs 3.5 s: the migrations add exactly
    T_mig = 4.5 s, 1 J transmit and 0.1 J receive, each charged once.
    """
    kw = dict(names="abc", flops=[T, 2 * T, 0.5 * T], out_bytes=[MB, MB, MB], preds=[[], [0], [1]])
    inst = toy_instance(**kw, kv_loc=[0, 0, 1], kv_move_bytes=[5 * MB, 2 * MB, MB])
    pl = Placement([0, 1, 0], tx=[1, 0, 1])
    res = evaluate(inst, pl)
    assert spans(res, inst) == [("migration", "b", 0, 1, 0, 4, "uplink"),
                                ("migration", "c", 1, 0, 4, 4.5, "downlink"),
                                ("activation", "a", 0, 1, 5.5, 6.5, "uplink"),
                                ("activation", "b", 1, 0, 7, 7.5, "downlink")]
    assert times(res) == [(4.5, 5.5), (6.5, 7), (7.5, 8)]
    assert res.makespan_s == 8
    assert_energy(res, compute=1.5, transmit=1.5, receive=0.2, idle=0.65, edge=50.0)

    plain = evaluate(toy_instance(**kw), pl)
    assert plain.makespan_s == 3.5
    assert res.makespan_s - plain.makespan_s == 4.5
    assert res.transmit_j - plain.transmit_j == pytest.approx(1.0)
    assert res.receive_j - plain.receive_j == pytest.approx(0.1)
    # caches already where their nodes run move nothing
    stay = evaluate(inst, Placement([0, 0, 1], tx=[1, 0, 1]))
    assert all(t.kind != "migration" for t in stay.transfers) and stay.start_s[0] == 0


def test_golden_kv_migration_over_backhaul():
    """(e') b's 1e6 B cache lives on edge2 and b runs on edge1: backhaul 8e6/16e6 = 0.5 s, 0 → 0.5,
    no device energy.  Then: a (device) 0.5 → 1.5, up 1.5 → 2.5, b 2.5 → 2.75, out down
    2.75 → 3.25; makespan 3.25; idle 0.1·2.25 = 0.225 J."""
    inst = toy_instance("ab", [T, T], [MB, MB], [[], [0]], kv_loc=[-1, 2], kv_move_bytes=[0, MB])
    res = evaluate(inst, [0, 1])
    assert spans(res, inst)[0] == ("migration", "b", 2, 1, 0, 0.5, "backhaul")
    assert res.makespan_s == 3.25
    assert_energy(res, compute=1.0, transmit=0.5, receive=0.1, idle=0.225, edge=25.0)


def test_golden_input_upload_and_output_return():
    """(f) chain a → b both on edge1, in_bytes = 1e6, a at transmit level 0.

    The token input starts on the device: uploaded at the HIGHEST power level (0.5 W, 8e6 bit/s)
    whatever the source's level: 1 s, 0 → 1, 0.5 J.  a 1 → 1.25, b 1.25 → 1.5 (edge
    100·0.5 = 50 J).  b is the sink: its 2e6 B output returns 1.5 → 2.5 (0.2 J).
    makespan 2.5 (output on the device); idle 0.1·2.5 = 0.25 J; energy 0.95 J.
    """
    inst = toy_instance("ab", [T, T], [MB, 2 * MB], [[], [0]], in_bytes=MB)
    res = evaluate(inst, Placement([1, 1], tx=[0, 0]))
    assert spans(res, inst) == [("input", "<input>", 0, 1, 0, 1, "uplink"),
                                ("output", "b", 1, 0, 1.5, 2.5, "downlink")]
    assert times(res) == [(1, 1.25), (1.25, 1.5)]
    assert res.makespan_s == 2.5
    assert_energy(res, compute=0.0, transmit=0.5, receive=0.2, idle=0.25, edge=50.0)


def test_golden_backhaul_between_servers():
    """(g) a on edge1 → b on edge2, in_bytes 1e6: input 0 → 1 (0.5 J); a 1 → 1.25; backhaul 1e6 B
    at 16e6 bit/s: 1.25 → 1.75 (no device energy, no uplink); b 1.75 → 2; output down 2 → 2.5
    (0.1 J).  makespan 2.5; idle 0.25 J; edge 100·0.25 + 50·0.25 = 37.5 J."""
    inst = toy_instance("ab", [T, T], [MB, MB], [[], [0]], in_bytes=MB)
    res = evaluate(inst, [1, 2])
    assert spans(res, inst) == [("input", "<input>", 0, 1, 0, 1, "uplink"),
                                ("activation", "a", 1, 2, 1.25, 1.75, "backhaul"),
                                ("output", "b", 2, 0, 2, 2.5, "downlink")]
    assert res.makespan_s == 2.5
    assert_energy(res, compute=0.0, transmit=0.5, receive=0.1, idle=0.25, edge=37.5)


def test_golden_input_upload_in_node_order():
    """(f') the input is uploaded when a source at that server is scheduled, in node order on
    the shared uplink (envs/cost.py, Transfers): it can queue behind an earlier node's upload.

    Sources s0 (device, feeds t on edge1) and s1 (edge2, feeds t), in_bytes 1e6.
    s0: device 0 → 1 (1 J); s0→edge1: 1 → 2 (0.5 J).
    s1 is scheduled next: its input, ready at 0, waits for the uplink: 2 → 3 (0.5 J).
    s1: edge2 3 → 3.25 (50·0.25 = 12.5 J); s1→edge1 backhaul 0.5 s: 3.25 → 3.75.
    t: edge1, ready max(2, 3.75): 3.75 → 4 (25 J); output down 4 → 4.5 (0.1 J).
    makespan 4.5; idle 0.1·3.5 = 0.35 J; energy 1 + 1 + 0.1 + 0.35 = 2.45 J.
    """
    inst = toy_instance(["s0", "s1", "t"], [T, T, T], [MB, MB, MB], [[], [], [0, 1]], in_bytes=MB)
    res = evaluate(inst, [0, 2, 1])
    assert spans(res, inst) == [("activation", "s0", 0, 1, 1, 2, "uplink"),
                                ("input", "<input>", 0, 2, 2, 3, "uplink"),
                                ("activation", "s1", 2, 1, 3.25, 3.75, "backhaul"),
                                ("output", "t", 1, 0, 4, 4.5, "downlink")]
    assert times(res) == [(0, 1), (3, 3.25), (3.75, 4)]
    assert res.makespan_s == 4.5
    assert_energy(res, compute=1.0, transmit=1.0, receive=0.1, idle=0.35, edge=37.5)


# --------------------------------------------------------------------------- properties
def realistic_system() -> SystemSnapshot:
    """Two A100 servers over the generic link (the original two-server world: a near busy one
    and a far idle one); the generic radio is what the energy re-derivation below assumes."""
    return make_snapshot(Scenario(servers=[ServerConfig(distance_km=0.15, load=0.6),
                                           ServerConfig(distance_km=0.5, load=0.1)]))


SYSTEMS = {"toy": toy_system(), "two-server-generic": realistic_system()}
size = st.floats(min_value=0.0, max_value=4e12, allow_nan=False, allow_infinity=False)
small_bytes = st.floats(min_value=0.0, max_value=4e6, allow_nan=False, allow_infinity=False)


@st.composite
def instances(draw, max_nodes: int = 7):
    """A random DAG: nodes in order, edges only from lower to higher index, random sizes,
    random existing KV caches; on the toy or a realistic (make_snapshot) system."""
    sysm = SYSTEMS[draw(st.sampled_from(sorted(SYSTEMS)))]
    n = draw(st.integers(1, max_nodes))
    preds = [sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else [] for i in range(n)]
    lists = lambda strat: draw(st.lists(strat, min_size=n, max_size=n))  # noqa: E731
    return Instance(
        names=[f"n{i}" for i in range(n)], kinds=["toy"] * n, flops=lists(size),
        mem_bytes=lists(st.floats(0.0, 1e9)), weight_bytes=lists(st.floats(0.0, 1e8)),
        out_bytes=lists(small_bytes), kv_bytes=lists(st.floats(0.0, 1e7)), preds=preds,
        system=sysm, in_bytes=draw(small_bytes),
        kv_loc=lists(st.integers(-1, sysm.num_locations - 1)), kv_move_bytes=lists(small_bytes))


@st.composite
def instance_and_placement(draw, max_nodes: int = 7):
    inst = draw(instances(max_nodes))
    n, d = inst.num_nodes, inst.system.device
    loc = draw(st.lists(st.integers(0, inst.num_locations - 1), min_size=n, max_size=n))
    dv = draw(st.lists(st.integers(0, len(d.freqs_hz) - 1), min_size=n, max_size=n))
    tx = draw(st.lists(st.integers(0, len(d.tx_powers_w) - 1), min_size=n, max_size=n))
    return inst, Placement(loc, dv, tx)


def compute_time(inst: Instance, pl: Placement, i: int) -> float:
    k = pl.loc[i]
    dv, _ = pl.levels(inst)
    return inst.dev_time[i][dv[i]] if k == 0 else inst.srv_time[i][k - 1]


PROP = settings(max_examples=150, deadline=None)


@PROP
@given(instance_and_placement())
def test_makespan_bounds(case):
    """makespan ≥ the longest compute-only path and ≥ the busy time of every location."""
    inst, pl = case
    res = evaluate(inst, pl)
    longest = [0.0] * inst.num_nodes
    busy = [0.0] * inst.num_locations
    for i in range(inst.num_nodes):
        t = compute_time(inst, pl, i)
        longest[i] = t + max((longest[p] for p in inst.preds[i]), default=0.0)
        busy[pl.loc[i]] += t
    tol = 1e-9 * max(1.0, res.makespan_s)
    assert res.makespan_s >= max(longest) - tol
    assert res.makespan_s >= max(busy) - tol


@PROP
@given(instance_and_placement())
def test_costs_finite_nonnegative_and_consistent(case):
    """Every energy term and the makespan are finite and ≥ 0; energy = sum of the breakdown;
    record=False gives the same numbers as record=True."""
    inst, pl = case
    res = evaluate(inst, pl)
    for value in (res.makespan_s, res.energy_j, res.edge_energy_j, *res.breakdown.values()):
        assert math.isfinite(value) and value >= 0.0
    assert res.energy_j == pytest.approx(sum(res.breakdown.values()), rel=1e-12, abs=1e-15)
    fast = evaluate(inst, pl, record=False)
    for key in ("makespan_s", "energy_j", "compute_j", "transmit_j", "receive_j", "idle_j", "edge_energy_j"):
        assert getattr(fast, key) == getattr(res, key), key
    assert fast.transfers == [] and fast.start_s == []


@PROP
@given(instance_and_placement())
def test_recorded_schedule_is_valid_and_explains_the_energy(case):
    """Re-derive everything from the recorded schedule: migrations serial from 0 before all
    compute; one node at a time per location in index order, for its compute time; every input
    present before a node starts; uplink transfers never overlap; makespan = the last sink
    output on the device; each energy term = the sum of its parts."""
    inst, pl = case
    res = evaluate(inst, pl)
    sysm, dev = inst.system, inst.system.device
    dv, tx = pl.levels(inst)
    eps = 1e-9 * max(1.0, res.makespan_s)
    mig = [t for t in res.transfers if t.kind == "migration"]
    t_mig = 0.0
    for t in mig:
        assert t.start_s == pytest.approx(t_mig) and t.finish_s >= t.start_s
        t_mig = t.finish_s
    assert [t.node for t in mig] == sorted(t.node for t in mig)
    assert all(t.kind != "migration" for t in res.transfers[len(mig):])
    assert {t.node for t in mig} == {i for i in range(inst.num_nodes) if inst.kv_loc[i] >= 0
                                     and inst.kv_loc[i] != pl.loc[i] and inst.kv_move_bytes[i] > 0}
    last = {}
    for i in range(inst.num_nodes):
        k = pl.loc[i]
        assert res.start_s[i] >= t_mig - eps
        assert res.finish_s[i] - res.start_s[i] == pytest.approx(compute_time(inst, pl, i), rel=1e-9, abs=1e-12)
        if k in last:
            assert res.start_s[i] >= res.finish_s[last[k]] - eps
        last[k] = i
    arrivals = {(t.node, t.dst): t for t in res.transfers if t.kind != "migration"}
    for i in range(inst.num_nodes):
        k = pl.loc[i]
        for p in inst.preds[i]:
            if pl.loc[p] == k:
                assert res.start_s[i] >= res.finish_s[p] - eps
            else:
                t = arrivals[(p, k)]
                assert t.src == pl.loc[p] and t.start_s >= res.finish_s[p] - eps
                assert res.start_s[i] >= t.finish_s - eps
        if not inst.preds[i] and k != 0:
            assert res.start_s[i] >= arrivals[(-1, k)].finish_s - eps
    up = sorted((t for t in res.transfers if t.link == "uplink" and t.kind != "migration"),
                key=lambda t: t.start_s)
    for a, b in zip(up, up[1:]):
        assert b.start_s >= a.finish_s - eps
    ends = [res.finish_s[i] if pl.loc[i] == 0 else arrivals[(i, 0)].finish_s for i in inst.sinks]
    assert res.makespan_s == pytest.approx(max(ends), rel=1e-12)
    # energy from the schedule
    tx_j = rx_j = 0.0
    for t in res.transfers:
        if t.link == "uplink":
            level = len(dev.tx_powers_w) - 1 if t.kind == "input" else tx[t.node]
            tx_j += dev.tx_powers_w[level] * t.bytes * 8 / sysm.uplink_bps[t.dst - 1][level]
        elif t.link == "downlink":
            rx_j += dev.rx_power_w * t.bytes * 8 / sysm.downlink_bps[t.src - 1]
    on_dev = [i for i in range(inst.num_nodes) if pl.loc[i] == 0]
    assert res.transmit_j == pytest.approx(tx_j, rel=1e-9, abs=1e-15)
    assert res.receive_j == pytest.approx(rx_j, rel=1e-9, abs=1e-15)
    assert res.compute_j == pytest.approx(sum(inst.dev_energy[i][dv[i]] for i in on_dev), rel=1e-9, abs=1e-15)
    busy = sum(res.finish_s[i] - res.start_s[i] for i in on_dev)
    assert res.idle_j == pytest.approx(dev.idle_power_w * (res.makespan_s - busy), rel=1e-9, abs=1e-12)
    edge = sum(sysm.server_power_w[pl.loc[i] - 1] * (res.finish_s[i] - res.start_s[i])
               for i in range(inst.num_nodes) if pl.loc[i] > 0)
    assert res.edge_energy_j == pytest.approx(edge, rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=instance_and_placement())
def test_json_round_trip_is_identity(tmp_path, case):
    """Instance and Placement saved to JSON and loaded back: same arrays, same evaluate result."""
    inst, pl = case
    inst.save(tmp_path / "inst.json")
    pl.save(tmp_path / "pl.json", inst)
    inst2, pl2 = Instance.load(tmp_path / "inst.json"), Placement.load(tmp_path / "pl.json")
    assert inst2.to_dict() == inst.to_dict()
    for key in ("flops", "mem_bytes", "weight_bytes", "out_bytes", "kv_bytes", "preds", "kv_loc",
                "kv_move_bytes", "succs", "dev_time", "dev_energy", "srv_time", "up_bps", "down_bps",
                "mem_need"):
        assert getattr(inst2, key) == getattr(inst, key), key
    assert inst2.system == inst.system and inst2.in_bytes == inst.in_bytes
    assert (pl2.loc, pl2.dvfs, pl2.tx) == (pl.loc, pl.dvfs, pl.tx)
    a, b = evaluate(inst, pl), evaluate(inst2, pl2)
    assert a == b


@settings(max_examples=80, deadline=None)
@given(instance_and_placement(), st.booleans())
def test_incremental_simulator_agrees(case, as_chain):
    """The Simulator placing one node at a time with the destinations evaluate would send to:
    partial_cost after the last node = evaluate's (makespan, energy) and result() = evaluate.
    On a chain, lazy sending (dests=None, the environment's mode) gives the same cost too."""
    inst, pl = case
    if as_chain:
        d = inst.to_dict()
        d["preds"] = [[i - 1] if i else [] for i in range(inst.num_nodes)]
        inst = Instance.from_dict(d)
    res = evaluate(inst, pl, record=False)
    dv, tx = pl.levels(inst)
    eager, lazy = Simulator(inst), Simulator(inst)
    for i in range(inst.num_nodes):
        k = pl.loc[i]
        dests = sorted({pl.loc[j] for j in inst.succs[i]} - {k}) if inst.succs[i] else ([0] if k else [])
        eager.place(i, k, dv[i], tx[i], dests)
        lazy.place(i, k, dv[i], tx[i], None)
    assert eager.partial_cost() == pytest.approx((res.makespan_s, res.energy_j), rel=1e-12)
    assert eager.result() == res
    if as_chain:
        assert lazy.partial_cost() == pytest.approx((res.makespan_s, res.energy_j), rel=1e-12)


def sim_state(sim: Simulator) -> dict:
    """Every slot of a simulator except its instance, deep-copied (to compare states)."""
    return {name: copy.deepcopy(getattr(sim, name)) for name in Simulator.__slots__ if name != "inst"}


@settings(max_examples=100, deadline=None)
@given(instance_and_placement(), st.booleans(), st.booleans(), st.booleans())
def test_probe_is_place_then_read_and_changes_nothing(case, lazy, record, shared_uplink):
    """Before each node is placed, probing every location (at random levels) leaves the
    simulator exactly as it was, and each probe equals what placing it there gives:
    start / finish / done (a sink: its output on the device) shifted by the migration
    phase, the migration phase's end, and the device energy added (compute + transmit +
    receive), all bit-for-bit."""
    inst, pl = case
    dv, tx = pl.levels(inst)
    sim = Simulator(inst, record, shared_uplink=shared_uplink)
    for i in range(inst.num_nodes):
        before = sim_state(sim)
        for k in range(inst.num_locations):
            dests = None if lazy else sorted({pl.loc[j] for j in inst.succs[i]} - {k}) if inst.succs[i] \
                else ([0] if k else [])
            probe = sim.probe(i, k, dv[i], tx[i], dests)
            assert sim_state(sim) == before
            placed = copy.deepcopy(sim)
            placed.place(i, k, dv[i], tx[i], dests)
            t0 = placed.t_mig
            done = placed.arrival[i].get(0, placed.finish[i]) if not inst.succs[i] else placed.finish[i]
            energy = (placed.compute_j + placed.tx_j + placed.rx_j) - (sim.compute_j + sim.tx_j + sim.rx_j)
            assert probe == (t0 + placed.start[i], t0 + placed.finish[i], t0 + done, energy, t0)
        k = pl.loc[i]
        sim.place(i, k, dv[i], tx[i], None if lazy else sorted({pl.loc[j] for j in inst.succs[i]} - {k})
                  if inst.succs[i] else ([0] if k else []))
    with pytest.raises(ValueError, match="index order"):
        sim.probe(0, 0, 0, 0)


def test_golden_probe():
    """Hand-worked probe on the toy system (see the module docstring): chain a (1e12 FLOPs)
    -> b (1e12 FLOPs), 1 MB outputs, a on the device (0-1 s, 1 J).  Probing b on edge1 at
    the highest levels: a's output goes up 1-2 s (0.5 J), b runs 2-2.25 s, its output
    comes back 2.25-2.75 s (0.2 W · 0.5 s = 0.1 J received): done 2.75 s, 0.6 J.  On the
    device: 1-2 s, 1 J, done 2 s."""
    inst = toy_instance("ab", [T, T], [MB, MB], [[], [0]])
    sim = Simulator(inst)
    sim.place(0, 0, 1, 1)
    assert sim.probe(1, 1, 1, 1) == (2.0, 2.25, 2.75, pytest.approx(0.6, abs=1e-15), 0.0)
    assert sim.probe(1, 0, 1, 1) == (1.0, 2.0, 2.0, pytest.approx(1.0, abs=1e-15), 0.0)


def test_partial_cost_and_unplaced():
    """After the last node, partial_cost is the final (makespan, energy); result() before then
    names how many nodes are unplaced; nodes must be placed in index order."""
    inst = toy_instance(**DIAMOND)
    res = evaluate(inst, [0, 0, 1, 0])
    sim = Simulator(inst)
    with pytest.raises(ValueError, match="index order"):
        sim.place(1, 0, 1, 1)
    for i, (k, dests) in enumerate(zip([0, 0, 1, 0], [(1,), (), (0,), ()])):
        sim.place(i, k, 1, 1, dests)
        if i == 1:
            with pytest.raises(ValueError, match="2 node\\(s\\) left unplaced"):
                sim.result()
    assert sim.partial_cost() == pytest.approx((res.makespan_s, res.energy_j))


def test_memory_helpers():
    inst = toy_instance("ab", [T, T], [MB, MB], [[], [0]], weight_bytes=[3e9, 2e9], kv_bytes=[1e9, 0],
                        system=toy_system(mem=(5e9, 2e9, 1e12)))
    assert memory_use(inst, [0, 1]) == [4e9, 2e9, 0.0]
    check_memory(inst, [0, 1])  # exactly full fits
    assert feasible_locations(inst, 1, [4e9, 0.0, 0.0]) == [False, True, True]
    down = toy_instance("ab", [T, T], [MB, MB], [[], [0]], system=toy_system(server_up=(True, False)))
    assert feasible_locations(down, 0, [0.0, 0.0, 0.0]) == [True, True, False]


def test_golden_fallback_location():
    """Device when it can take the node, else the first feasible server, else an error
    naming the node.  Node b needs 2 GB; device 5 GB, edge1 2 GB, edge2 1e12 B."""
    inst = toy_instance("ab", [T, T], [MB, MB], [[], [0]], weight_bytes=[3e9, 2e9],
                        system=toy_system(mem=(5e9, 2e9, 1e12)))
    assert fallback_location(inst, 1, [0.0, 0.0, 0.0]) == 0
    assert fallback_location(inst, 1, [4e9, 0.0, 0.0]) == 1
    assert fallback_location(inst, 1, [4e9, 1e9, 0.0]) == 2
    with pytest.raises(ValueError, match="node 'b' has no feasible location"):
        fallback_location(inst, 1, [4e9, 1e9, 1e12])


def test_golden_split_fits():
    """Chain a, b, c of 2, 2, 1 GB; device 4 GB, edge1 3 GB, edge2 down.  Prefix p on the
    device: p = 0 (0 | 5 GB) fits nowhere; p = 1 (2 | 3) fits edge1; p = 2 (4 | 1) fits
    edge1; p = 3 (5 GB on the device) does not fit; edge2 never (down)."""
    inst = toy_instance("abc", [T, T, T], [MB, MB, MB], [[], [0], [1]], weight_bytes=[2e9, 2e9, 1e9],
                        system=toy_system(mem=(4e9, 3e9, 1e12), server_up=(True, False)))
    assert split_fits(inst) == [[False, False], [True, False], [True, False], [False, False]]


# --------------------------------------------------------------------------- bad inputs
def toy_graph(overrides=None) -> nx.DiGraph:
    g = nx.DiGraph()
    for name in "abc":
        g.add_node(name, kind="toy", flops=T, weight_bytes=1e6, out_bytes=MB, kv_bytes=0.0, mem_bytes=1e6)
    g.add_edges_from([("a", "b"), ("b", "c")])
    for (node, key), value in (overrides or {}).items():
        g.nodes[node][key] = value
    return g


def test_make_instance_from_graph_matches_hand_built():
    inst = make_instance(toy_graph(), toy_system())
    assert inst.names == ["a", "b", "c"] and inst.preds == [[], [0], [1]]
    assert evaluate(inst, [0, 1, 0]).makespan_s == pytest.approx(1 + 1 + 0.25 + 0.5 + 1)


def test_make_instance_without_mem_bytes():
    """mem_bytes is optional: the roofline then reads the weights only."""
    g = toy_graph()
    for _, a in g.nodes(data=True):
        del a["mem_bytes"]
    validate_dag(g)  # accepted: mem_bytes is not a required attribute
    inst = make_instance(g, toy_system())
    assert inst.mem_bytes == inst.weight_bytes


def test_cycle_rejected():
    g = toy_graph()
    g.add_edge("c", "a")
    with pytest.raises(ValueError, match="cycle"):
        validate_dag(g)
    with pytest.raises(ValueError, match="cycle"):
        make_instance(g, toy_system())
    with pytest.raises(ValueError, match="cycle or unsorted"):
        toy_instance("ab", [T, T], [MB, MB], [[1], []])


@pytest.mark.parametrize("value, word", [(-1.0, "negative"), (math.nan, "NaN"), (math.inf, "infinite")])
@pytest.mark.parametrize("key", ["flops", "out_bytes", "weight_bytes", "kv_bytes"])
def test_bad_sizes_rejected(key, value, word):
    with pytest.raises(ValueError, match=f"'b'.*{key}.*{word}"):
        make_instance(toy_graph({("b", key): value}), toy_system())
    kw = dict(names="ab", flops=[T, T], out_bytes=[MB, MB], preds=[[], [0]])
    kw[key] = [1.0, value]
    with pytest.raises(ValueError, match=f"'b'.*{key} must be finite and >= 0"):
        toy_instance(**kw)
    with pytest.raises(ValueError, match="in_bytes"):
        toy_instance("a", [T], [MB], [[]], in_bytes=-1.0)


def test_placement_from_names_errors():
    inst = toy_instance("abc", [T, T, T], [MB, MB, MB], [[], [0], [1]])
    ok = Placement.from_names(inst, {"a": "device", "b": "edge1", "c": 0}, dvfs={"c": 0})
    assert ok.loc == [0, 1, 0] and ok.dvfs == [1, 1, 0]
    with pytest.raises(ValueError, match="unknown node 'zz'"):
        Placement.from_names(inst, {"a": 0, "b": 0, "c": 0, "zz": 0})
    with pytest.raises(ValueError, match="unknown node 'zz'"):
        Placement.from_names(inst, {"a": 0, "b": 0, "c": 0}, tx={"zz": 0})
    with pytest.raises(ValueError, match="'b': unknown location 'edge7'"):
        Placement.from_names(inst, {"a": 0, "b": "edge7", "c": 0})
    with pytest.raises(ValueError, match="'b': unknown location 5"):
        Placement.from_names(inst, {"a": 0, "b": 5, "c": 0})
    with pytest.raises(ValueError, match="'c' is left unplaced"):
        Placement.from_names(inst, {"a": 0, "b": 0})


def test_evaluate_rejects_bad_placements():
    inst = toy_instance("ab", [T, T], [MB, MB], [[], [0]], weight_bytes=[4e9, 3e9],
                        system=toy_system(mem=(6e9, 1e12, 1e12), server_up=(True, False)))
    with pytest.raises(ValueError, match="memory exceeded at device: weights \\+ KV need 7.000 GB, "
                                         "capacity 6.000 GB"):
        evaluate(inst, [0, 0])
    with pytest.raises(ValueError, match="'b': location edge2 is down"):
        evaluate(inst, [0, 2])
    with pytest.raises(ValueError, match="placement has 1 locations for 2 nodes"):
        evaluate(inst, [0])
    with pytest.raises(ValueError, match="unknown location -1"):
        evaluate(inst, [0, -1])
    with pytest.raises(ValueError, match="unknown DVFS level 2"):
        evaluate(inst, Placement([0, 1], dvfs=[2, 0]))
    with pytest.raises(ValueError, match="unknown transmit-power level -1"):
        evaluate(inst, Placement([0, 1], tx=[0, -1]))
    kv = toy_instance("ab", [T, T], [MB, MB], [[], [0]], kv_bytes=[0, 2e9], system=toy_system(mem=(1e9, 1e12, 1e12)))
    with pytest.raises(ValueError, match="memory exceeded at device"):
        evaluate(kv, [0, 0])  # weights 0, KV alone overflows
    assert evaluate(kv, [0, 1]).makespan_s > 0


def test_scenario_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("servers:\n  - {distance_km: 0.3, bandwith_hz: 1.0e6}\n")
    with pytest.raises(ValueError, match=r"servers\[0\]: unknown key\(s\) \['bandwith_hz'\]"):
        load_scenario(bad)
    top = tmp_path / "top.yaml"
    top.write_text("servers: [{}]\nbackhaul_bps_typo: 1\n")
    with pytest.raises(ValueError, match=r"scenario: unknown key\(s\) \['backhaul_bps_typo'\]"):
        load_scenario(top)
    with pytest.raises(ValueError, match="unknown scenario 'no-such-preset'; presets"):
        load_scenario("no-such-preset")
    # a missing file is an OSError (FileNotFoundError), with the path in the message
    with pytest.raises(FileNotFoundError, match="scenario file not found: .*missing.yaml"):
        load_scenario(tmp_path / "missing.yaml")
    with pytest.raises(FileNotFoundError, match="file not found: .*missing.json"):
        Instance.load(tmp_path / "missing.json")
    with pytest.raises(FileNotFoundError, match="file not found"):
        Placement.load(tmp_path / "missing.json")
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        Instance.load(junk)
    junk.write_text('{"format": "deaoff-placement/1", "loc": [0]}')
    with pytest.raises(ValueError, match="not an instance file"):
        Instance.load(junk)


# --------------------------------------------------------------------------- scenarios
def test_presets_load():
    names = list_scenarios()
    assert {"urban-5g", "wifi-campus", "lte-cell-edge", "two-edge", "city-multi-edge", "a100-dedicated"} <= set(names)
    for name in names:
        scen = load_scenario(name)
        snap = make_snapshot(scen)
        assert scen.name == name and snap.num_locations == 1 + scen.num_servers
        for rates in snap.uplink_bps:
            assert rates == sorted(rates) and all(r > 0 and math.isfinite(r) for r in rates)
    assert load_scenario("city-multi-edge").num_servers == 4


def test_sampler_is_reproducible():
    a = sample_scenario(np.random.default_rng(7))
    b = sample_scenario(np.random.default_rng(7))
    c = sample_scenario(np.random.default_rng(8))
    assert a == b and a.to_dict() == b.to_dict()
    assert a != c
    assert make_snapshot(a) == make_snapshot(b)


def test_uplink_rate_by_hand():
    """The generic link of the original world (a100-dedicated's device defaults) with a server
    at 0.3 km: 10 MHz uplink, highest power level 1 W, mean channel.

    path loss = 128.1 + 37.6·log10(0.3) = 128.1 − 37.6·0.5228787 = 108.4397592 dB
    gain g = 10^(−108.4397592/10) = 1.4322673e-11
    N0 = −174 dBm/Hz = 10^((−174 − 30)/10) W/Hz = 3.9810717e-21 W/Hz; N0·B = 3.9810717e-14 W
    SNR = 1 W · g / (N0·B) = 359.76928
    r = B·log2(1 + SNR) = 1e7 · 8.4949327 = 84,949,327.03 bit/s  (≈ 84.95 Mbit/s)
    """
    snap = make_snapshot(Scenario(servers=[ServerConfig(distance_km=0.3)]))
    assert snap.device.tx_powers_w[-1] == 1.0
    assert snap.uplink_bps[0][-1] == pytest.approx(84_949_327.03436965, rel=1e-9)
    pl_db = 128.1 + 37.6 * math.log10(0.3)
    expect = 10e6 * math.log2(1 + 1.0 * 10 ** (-pl_db / 10) / (10 ** (-20.4) * 10e6))
    assert snap.uplink_bps[0][-1] == pytest.approx(expect, rel=1e-9)
    assert shannon_rate_bps(10e6, 1.0, 10 ** (-pl_db / 10)) == pytest.approx(expect, rel=1e-12)


# --------------------------------------------------------------------------- real DAGs
@pytest.fixture(scope="module")
def llama_block():
    # the original world: 6 GB device, dedicated A100, generic 1 ms link
    return make_instance(build_dag("llama-2-7b", "block", "decode"), make_snapshot(load_scenario("a100-dedicated")))


def test_llama_block_all_device_exceeds_memory(llama_block):
    inst = llama_block
    assert inst.num_nodes == 34
    assert sum(inst.mem_need) == pytest.approx(13.54e9, rel=1e-3)
    with pytest.raises(ValueError, match=r"memory exceeded at device: weights \+ KV need 13.5\d\d GB, "
                                         r"capacity 6.000 GB"):
        evaluate(inst, [0] * inst.num_nodes)


def test_llama_block_all_edge_and_split(llama_block):
    inst = llama_block
    res = evaluate(inst, [1] * inst.num_nodes)
    assert [t.kind for t in res.transfers] == ["input", "output"]
    assert res.compute_j == 0 and res.makespan_s > 0 and res.edge_energy_j > 0
    # critical path: the chain's total server compute plus the two radio transfers
    assert res.makespan_s == pytest.approx(sum(t.finish_s - t.start_s for t in res.transfers)
                                           + sum(r[0] for r in inst.srv_time), rel=1e-9)
    # a memory-feasible split: embed and the first layers on the device, the rest on the edge
    dev_first = [0] * 10 + [1] * (inst.num_nodes - 10)
    check_memory(inst, dev_first)
    split = evaluate(inst, dev_first)
    assert split.compute_j > 0 and split.makespan_s > res.makespan_s
