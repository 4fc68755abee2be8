"""The handset radio model (core.radio) and how the engine accounts for it."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.cost import evaluate
from core.instance import Instance, Placement
from core.radio import (LINK_TYPES, MEASURED_UPLINK_BPS, NR_UPLINK_FIT_POINTS, RADIO_PROFILES, UE_MAX_TX_POWER_W, dbm_to_w,
                        distance_for_rate_km, extra_transfer_power_w, radio_profile, session_tail_energy_j,
                        transfer_energy_j, transfer_power_w)
from core.system import (DeviceConfig, Scenario, ServerConfig, SystemSnapshot, make_snapshot,
                         shannon_rate_bps, channel_gain)

LTE = RADIO_PROFILES["lte"]
CLASS3 = (0.05, 0.1, 0.2)  # ≈ 17, 20, 23 dBm radiated


def _radio_system(link_type: str = "lte", up_bps=(3e6, 6e6), down_bps=13e6, latency_s=0.03,
                  soc_idle_w: float = 0.3) -> SystemSnapshot:
    """One server, rates chosen by hand, powers from core.radio as make_snapshot sets them."""
    prof = RADIO_PROFILES[link_type]
    dev = DeviceConfig(freqs_hz=(1e9,), flops_per_cycle=1000.0, mem_bw_bytes_per_s=1e10, kappa=1e-27,
                       dram_j_per_byte=0.0, tx_powers_w=(0.1, 0.2), rx_power_w=0.1,
                       idle_power_w=soc_idle_w + prof.connected_wait_w)
    return SystemSnapshot(
        device=dev, server_flops_per_s=[1e12], server_mem_bw_bytes_per_s=[1e12], server_load=[0.0],
        server_power_w=[100.0], mem_capacity_bytes=[1e12, 1e12], uplink_bps=[list(up_bps)],
        downlink_bps=[down_bps], link_latency_s=[latency_s], backhaul_bps=1e9, backhaul_latency_s=0.0,
        server_up=[True],
        uplink_power_w=[[extra_transfer_power_w(prof, r, uplink=True) for r in up_bps]],
        downlink_power_w=[extra_transfer_power_w(prof, down_bps, uplink=False)],
        radio_wait_power_w=prof.connected_wait_w)


def _one_node(system: SystemSnapshot, in_bytes: float, out_bytes: float, flops: float) -> Instance:
    return Instance(names=["a"], kinds=["block"], flops=[flops], mem_bytes=[0.0], weight_bytes=[0.0],
                    out_bytes=[out_bytes], kv_bytes=[0.0], preds=[[]], system=system, in_bytes=in_bytes)


# --------------------------------------------------------------------------- golden values
def test_golden_lte_power_model():
    """Huang et al. (MobiSys 2012) LTE model with ARO lte.conf coefficients
    α_u = 438.39 mW/Mbps, α_d = 51.97 mW/Mbps, β = 1.2 W, P_tail = 1.06 W, tail 0.1 + 10 s.

    uplink at the 6 Mb/s median:   P = 0.43839·6 + 1.2 = 3.83034 W; above waiting: 2.77034 W
    downlink at the 13 Mb/s median: P = 0.05197·13 + 1.2 = 1.87561 W; above waiting: 0.81561 W
    1 MB up at 6 Mb/s: airtime 8e6/6e6 = 4/3 s, energy 4/3 · 3.83034 = 5.107120 J
    session tail: 1.06 W · 10.1 s = 10.706 J
    """
    assert transfer_power_w(LTE, 6e6, uplink=True) == pytest.approx(3.83034)
    assert extra_transfer_power_w(LTE, 6e6, uplink=True) == pytest.approx(2.77034)
    assert transfer_power_w(LTE, 13e6, uplink=False) == pytest.approx(1.87561)
    assert extra_transfer_power_w(LTE, 13e6, uplink=False) == pytest.approx(0.81561)
    assert transfer_energy_j(LTE, 1e6, 6e6, uplink=True) == pytest.approx(5.107120)
    assert session_tail_energy_j(LTE) == pytest.approx(10.706)
    wifi = RADIO_PROFILES["wifi"]  # ARO WiFi.conf: 0.403 W active, no throughput term
    assert transfer_power_w(wifi, 50e6, uplink=True) == pytest.approx(0.403)
    assert extra_transfer_power_w(wifi, 50e6, uplink=True) == 0.0


def test_golden_engine_lte_offload():
    """One node on the server over an LTE link: upload the input, compute, return the output.

    Input 750,000 B at 6 Mb/s: airtime 1.0 s, + 30 ms latency; compute 1e12 FLOPs at 1e12 FLOP/s
    = 1.0 s; output 1,625,000 B at 13 Mb/s: airtime 1.0 s, + 30 ms.  makespan = 3.06 s.
    transmit = (α_u·6 + β − P_tail)·1 s = 2.77034 J; receive = (α_d·13 + β − P_tail)·1 s = 0.81561 J;
    idle = (0.3 SoC + 1.06 radio connected)·3.06 s = 4.1616 J; total 7.74755 J.
    Cross-check by radio state: 3.83034 J (up) + 1.87561 J (down) + 1.06 W·1.06 s waiting
    (latencies + edge compute) + 0.3 W·3.06 s SoC = 7.74755 J.
    """
    inst = _one_node(_radio_system(), in_bytes=750_000, out_bytes=1_625_000, flops=1e12)
    res = evaluate(inst, Placement([1], tx=[1]))
    assert res.makespan_s == pytest.approx(3.06)
    assert res.transmit_j == pytest.approx(2.77034)
    assert res.receive_j == pytest.approx(0.81561)
    assert res.idle_j == pytest.approx(4.1616)
    assert res.energy_j == pytest.approx(7.74755)
    assert sum(res.breakdown.values()) == pytest.approx(res.energy_j, rel=1e-12)
    assert res.energy_j == pytest.approx(3.83034 + 1.87561 + 1.06 * 1.06 + 0.3 * 3.06)


def test_nr_uplink_slope_is_the_fit_of_its_points():
    """The 5g-nr α_u is the least-squares slope through NR_UPLINK_FIT_POINTS (Narayanan et al.,
    SIGCOMM 2021 artifact); printed predicted-vs-measured residuals stay within 0.45 W (the
    runs' own spread), and the profile is labelled as partly a stand-in."""
    t, p = np.array(NR_UPLINK_FIT_POINTS).T
    slope, intercept = np.polyfit(t, p, 1)
    assert slope == pytest.approx(0.0322, abs=5e-5)
    assert RADIO_PROFILES["5g-nr"].alpha_up_w_per_mbps == pytest.approx(slope, abs=5e-5)
    for r, w in zip(t, p):
        print(f"5G NSA low-band uplink {r:6.2f} Mb/s: fit {slope * r + intercept:.3f} W, measured {w:.3f} W")
        assert abs(slope * r + intercept - w) < 0.45
    assert not RADIO_PROFILES["5g-nr"].measured and RADIO_PROFILES["lte"].measured


def test_make_snapshot_wires_the_radio_model():
    """make_snapshot: powers above waiting from α·r + β − P_conn at its own Shannon rates, the
    radio's connected-mode power folded into the device's idle power once per distinct radio,
    latency from the link type, generic servers unchanged."""
    dev = DeviceConfig(tx_powers_w=CLASS3, idle_power_w=0.3)
    sc = Scenario(device=dev, servers=[ServerConfig(link_type="lte"), ServerConfig(link_type="lte"),
                                       ServerConfig(link_type="wifi"), ServerConfig()])
    snap = make_snapshot(sc)
    assert snap.radio_wait_power_w == pytest.approx(1.06 + 0.403)
    assert snap.device.idle_power_w == pytest.approx(0.3 + 1.06 + 0.403)
    assert sc.device.idle_power_w == 0.3  # the scenario's device is not modified
    for q, r in enumerate(snap.uplink_bps[0]):
        assert snap.uplink_power_w[0][q] == pytest.approx(0.43839 * r / 1e6 + 1.2 - 1.06)
    assert snap.downlink_power_w[0] == pytest.approx(0.05197 * snap.downlink_bps[0] / 1e6 + 0.14)
    assert snap.uplink_power_w[2] == [pytest.approx(0.0)] * 3
    assert snap.uplink_power_w[3] == list(CLASS3) and snap.downlink_power_w[3] == dev.rx_power_w
    assert snap.link_latency_s == [0.03, 0.03, 0.003, 1e-3]
    assert ServerConfig(link_type="lte", latency_s=0.012).latency_s == 0.012


def test_default_scenario_unchanged():
    """The generic defaults: 1 ms per transfer, p_q and P_rx, no radio waiting power."""
    snap = make_snapshot(Scenario())
    assert snap.link_latency_s == [1e-3]
    assert snap.uplink_power_w == [list(DeviceConfig().tx_powers_w)]
    assert snap.downlink_power_w == [DeviceConfig().rx_power_w]
    assert snap.device == DeviceConfig() and snap.radio_wait_power_w == 0.0


def test_distance_for_measured_medians():
    """distance_for_rate_km inverts Shannon + path loss: the mean channel at that distance gives
    the rate back (LTE 6 Mb/s, 5G 21.08 Mb/s on 10 MHz at 0.2 W)."""
    for rate in MEASURED_UPLINK_BPS.values():
        d = distance_for_rate_km(rate, 10e6, 0.2)
        assert shannon_rate_bps(10e6, 0.2, channel_gain(d)) == pytest.approx(rate, rel=1e-9)
    assert distance_for_rate_km(6e6, 10e6, 0.2) > distance_for_rate_km(21.08e6, 10e6, 0.2)


def test_power_class_3():
    assert dbm_to_w(23.0) == pytest.approx(0.19953, rel=1e-4) and UE_MAX_TX_POWER_W == 0.2
    sc = Scenario(servers=[ServerConfig(link_type="5g-nr")])  # default levels go up to 1 W
    with pytest.raises(ValueError, match="power class 3"):
        make_snapshot(sc)
    make_snapshot(Scenario(servers=[ServerConfig(link_type="wifi")]))  # not a cellular limit


def test_bad_link_type_and_profile():
    with pytest.raises(ValueError, match="unknown link_type 'nr5g'.*'lte'"):
        ServerConfig(link_type="nr5g")
    with pytest.raises(ValueError, match="unknown link_type"):
        radio_profile("x")
    assert radio_profile("generic") is None and set(LINK_TYPES) == {"generic", "lte", "5g-nr", "wifi"}
    with pytest.raises(ValueError, match="beta_w"):
        type(LTE)("bad", 0.1, 0.1, beta_w=0.5, connected_wait_w=1.0, tail_s=0.0, latency_s=0.0, measured=False)
    with pytest.raises(ValueError, match="tail_s"):
        type(LTE)("bad", 0.1, 0.1, beta_w=1.0, connected_wait_w=1.0, tail_s=-1.0, latency_s=0.0, measured=False)
    with pytest.raises(ValueError, match="server.latency_s"):
        ServerConfig(link_type="lte", latency_s=float("nan"))


# --------------------------------------------------------------------------- properties
@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(RADIO_PROFILES)), st.floats(0.1e6, 200e6), st.floats(0.0, 1e7),
       st.floats(1.0, 1e6))
def test_energy_monotone_in_bytes_and_per_bit_falls_with_rate(link, rate, nbytes, more):
    prof = RADIO_PROFILES[link]
    for up in (True, False):
        assert transfer_energy_j(prof, nbytes + more, rate, up) > transfer_energy_j(prof, nbytes, rate, up)
        # energy per bit α + β/r never rises with the rate
        assert transfer_energy_j(prof, 1e6, rate * 1.5, up) <= transfer_energy_j(prof, 1e6, rate, up) * (1 + 1e-12)
        assert extra_transfer_power_w(prof, rate, up) >= 0.0


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["lte", "5g-nr", "wifi"]), st.floats(0.02, 1.2), st.floats(1.0, 1e6))
def test_transfer_and_table_agree_on_radio_links(link, distance_km, nbytes):
    """Instance.transfer and its vectorised twin use the same coefficients on radio links, and a
    transfer's device energy grows with its size."""
    sc = Scenario(device=DeviceConfig(tx_powers_w=CLASS3),
                  servers=[ServerConfig(link_type=link, distance_km=distance_km), ServerConfig()])
    inst = _one_node(make_snapshot(sc), 4.0, 8.0, 1e9)
    dur, dev_j = inst.transfer_table(np.array([nbytes, 2 * nbytes]))
    for src in range(3):
        for dst in range(3):
            if src == dst:
                continue
            for q in range(3):
                d, tj, rj, _ = inst.transfer(src, dst, q, nbytes)
                assert dur[0, src, dst, q] == pytest.approx(d, rel=1e-12)
                assert dev_j[0, src, dst, q] == pytest.approx(tj + rj, rel=1e-12, abs=1e-15)
                assert dev_j[1, src, dst, q] >= dev_j[0, src, dst, q]


@settings(max_examples=30, deadline=None)
@given(st.floats(0.1, 3.0), st.floats(0.0, 2e6), st.floats(0.0, 2e6))
def test_breakdown_adds_up_on_radio_links(soc_idle, in_bytes, out_bytes):
    inst = _one_node(_radio_system(soc_idle_w=soc_idle), in_bytes, out_bytes, 1e9)
    for loc in ([0], [1]):
        res = evaluate(inst, Placement(loc))
        assert sum(res.breakdown.values()) == pytest.approx(res.energy_j, rel=1e-12)
        assert res.energy_j > 0 and math.isfinite(res.energy_j)


# --------------------------------------------------------------------------- solvers see the same costs
def _radio_batched_instance(seed: int) -> Instance:
    """A small random chain or DAG on LTE / 5G / Wi-Fi links and batched or time-sliced servers."""
    import networkx as nx

    from core.instance import make_instance

    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 6))
    G = nx.DiGraph()
    names = [f"n{i}" for i in range(n)]
    for name in names:
        mem = float(10 ** rng.uniform(6, 9))
        G.add_node(name, kind="block", flops=float(mem * rng.uniform(0.5, 3.0)), mem_bytes=mem,
                   weight_bytes=float(mem * rng.uniform(0.5, 1.0)), out_bytes=float(10 ** rng.uniform(3, 5.5)),
                   kv_bytes=0.0)
    G.add_edges_from(zip(names, names[1:]))
    if seed % 2 and n > 3:
        G.add_edge(names[0], names[2])  # a skip edge: not a chain, the MILP path
    m = int(rng.integers(1, 3))
    servers = []
    for k in range(m):
        batched = bool(rng.random() < 0.5)
        servers.append(ServerConfig(distance_km=float(rng.uniform(0.1, 1.0)),
                                    link_type=str(rng.choice(["lte", "5g-nr", "wifi"])),
                                    load_model="batched" if batched else "time-sliced",
                                    background_users=int(rng.integers(0, 8)) if batched else 0,
                                    load=0.0 if batched else float(rng.uniform(0.0, 0.8))))
    device = DeviceConfig(freqs_hz=(0.5e9, 1.3e9), tx_powers_w=(0.1, 0.2), mem_capacity_bytes=1e12)
    return make_instance(G, make_snapshot(Scenario(device=device, servers=servers),
                                          fading_power=list(rng.exponential(1.0, m))))


@pytest.mark.parametrize("seed", range(10))
def test_deaoff_matches_brute_force_on_radio_and_batched_servers(seed):
    """The solvers read the radio powers and batched times through the instance, so DeAOff's
    exact answer still equals brute force under the engine's costs."""
    from solvers.brute_force import brute_force
    from solvers.deaoff import solve

    inst = _radio_batched_instance(seed)
    sol = solve(inst, levels=True)
    _, best_t = brute_force(inst, "makespan", levels=False)
    assert sol.phase1_makespan_s == pytest.approx(best_t.makespan_s, rel=1e-6)
    _, best_e = brute_force(inst, "energy", latency_bound_s=sol.latency_bound_s, levels=True)
    assert sol.energy_j == pytest.approx(best_e.energy_j, rel=1e-6)
    r = evaluate(inst, sol.placement)
    assert sol.energy_j == r.energy_j and sum(r.breakdown.values()) == pytest.approx(r.energy_j, rel=1e-12)
