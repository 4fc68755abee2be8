"""Shared edge servers: the time-sliced and the batched load model (core.load), per-user
memory, and the background users' birth-death process (core.dynamics)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.dag import build_dag
from core.dynamics import DynamicsConfig, MECProcess
from core.instance import Instance, make_instance
from core.load import (batched_step_time_s, kv_bytes_per_user, member_bytes, per_user_memory_bytes,
                       time_sliced_time_s)
from core.system import Scenario, ServerConfig, make_snapshot

# node: F = 1e8 FLOPs, W = 1e8 weight bytes, M = 1.02e8 bytes moved (U = 2e6 per user: KV + activations);
# server: 1e12 FLOP/s, 1e11 B/s
F, W, M, PEAK, BW = 1e8, 1e8, 1.02e8, 1e12, 1e11


def test_golden_time_sliced():
    """ρ = 0.5: max(1e8 / 0.5e12, 1.02e8 / 0.5e11) = max(2e-4, 2.04e-3) = 2.04 ms;
    ρ = 0: max(1e-4, 1.02e-3) = 1.02 ms."""
    assert time_sliced_time_s(F, M, 0.5, PEAK, BW) == pytest.approx(2.04e-3)
    assert time_sliced_time_s(F, M, 0.0, PEAK, BW) == pytest.approx(1.02e-3)


def test_golden_batched():
    """t = max(F·(B+1)/peak, (W + U·(B+1))/bw), U = M − W = 2e6:
    B = 0:  max(1e-4, 1.02e8/1e11)           = 1.02 ms  (= time-sliced at ρ = 0)
    B = 7:  max(8e8/1e12 = 8e-4, (1e8 + 1.6e7)/1e11 = 1.16e-3) = 1.16 ms (memory-bound: the
            weights are read once for the batch, only U is read per user)
    B = 99: max(1e10/1e12 = 0.01, (1e8 + 2e8)/1e11 = 3e-3) = 10 ms (compute-bound)
    versus a time-sliced server at the same 8 users' share, ρ = 7/8: max(8e-4, 8.16e-3) = 8.16 ms."""
    assert batched_step_time_s(F, W, M, 0, PEAK, BW) == pytest.approx(1.02e-3)
    assert batched_step_time_s(F, W, M, 0, PEAK, BW) == pytest.approx(time_sliced_time_s(F, M, 0.0, PEAK, BW))
    assert batched_step_time_s(F, W, M, 7, PEAK, BW) == pytest.approx(1.16e-3)
    assert batched_step_time_s(F, W, M, 99, PEAK, BW) == pytest.approx(0.01)
    assert time_sliced_time_s(F, M, 7 / 8, PEAK, BW) == pytest.approx(8.16e-3)
    # an embedding lookup reads less than its table: W counts as min(weight_bytes, mem_bytes)
    assert batched_step_time_s(0.0, 5e8, 4e3, 3, PEAK, BW) == pytest.approx(4e3 / BW)


def test_golden_mixed_batch():
    """Members pay their own work.  Layer: W = 1e8 B of weights, peak 1e12 FLOP/s, bw 1e11 B/s.
    A prefill member: F = 5e10 FLOPs, M = 1.5e8 B (U = 5e7 of activations); a decode member:
    F = 2e8, M = 1.02e8 (U = 2e6 of KV read).  A prefill batched with three decodes:
      compute (5e10 + 3·2e8)/1e12 = 50.6 ms, memory (1e8 + 5e7 + 3·2e6)/1e11 = 1.56 ms → 50.6 ms
    (the old copies rule, B = 3 prefills: 4·5e10/1e12 = 200 ms).  A decode batched with the
    prefill and two decodes: compute (2e8 + 5e10 + 2·2e8)/1e12 = 50.6 ms, memory
    (1e8 + 2e6 + 5e7 + 2·2e6)/1e11 = 1.56 ms → the same 50.6 ms step (copies rule: B = 3
    decodes, max(8e8/1e12, (1e8 + 4·2e6)/1e11) = 1.08 ms).  member_bytes: M − min(W, M)."""
    W = 1e8
    assert member_bytes(W, 1.5e8) == 5e7 and member_bytes(W, 1.02e8) == pytest.approx(2e6)
    assert member_bytes(5e8, 4e3) == 0.0  # an embedding lookup: its rows count as shared
    pre = batched_step_time_s(5e10, W, 1.5e8, 0, PEAK, BW, others_flops=3 * 2e8, others_bytes=3 * 2e6)
    assert pre == pytest.approx(50.6e-3)
    assert batched_step_time_s(5e10, W, 1.5e8, 3, PEAK, BW) == pytest.approx(0.2)
    dec = batched_step_time_s(2e8, W, 1.02e8, 0, PEAK, BW, others_flops=5e10 + 2 * 2e8, others_bytes=5e7 + 2 * 2e6)
    assert dec == pytest.approx(50.6e-3)
    assert batched_step_time_s(2e8, W, 1.02e8, 3, PEAK, BW) == pytest.approx(1.08e-3)
    # members equal to the user: the copies rule with B + their number
    assert batched_step_time_s(F, W, M, 2, PEAK, BW, others_flops=4 * F, others_bytes=4 * (M - W)) == \
        pytest.approx(batched_step_time_s(F, W, M, 6, PEAK, BW))
    with pytest.raises(ValueError, match="others_flops"):
        batched_step_time_s(F, W, M, 0, PEAK, BW, others_flops=-1.0)


def test_golden_per_user_memory():
    """24 GB server, 14 GB of resident weights (a 7B model in fp16), 4 background users with a
    1 GB cache each: 24 − 14 − 4·1 = 6 GB for this user's caches.  kv_bytes_per_user: Llama-2-7B
    fp16 holds 16,384 B per token per layer · 32 layers = 524,288 B/token; 2,048 tokens = 1.07 GB."""
    assert per_user_memory_bytes(24e9, 14e9, 4, 1e9) == pytest.approx(6e9)
    assert kv_bytes_per_user(16_384 * 32, 2048) == 1_073_741_824
    with pytest.raises(ValueError, match="exceed the server"):
        per_user_memory_bytes(24e9, 14e9, 11, 1e9)


def test_batched_server_in_the_engine():
    """A batched server: srv_time from the batched formula with the snapshot's B, peak
    throughputs (no (1-ρ)), capacity for this user = capacity − B·KV_bg; B from the dynamics
    overrides the scenario's."""
    sc = Scenario(servers=[ServerConfig(peak_flops=PEAK, mem_bw_bytes_per_s=BW, mem_capacity_bytes=24e9,
                                        load_model="batched", background_users=7,
                                        background_kv_bytes_per_user=1e9),
                           ServerConfig(peak_flops=PEAK, mem_bw_bytes_per_s=BW, load=0.5)])
    snap = make_snapshot(sc)
    assert snap.mem_capacity_bytes[1:] == [pytest.approx(17e9), 40e9]
    assert snap.server_flops_per_s == [PEAK, 0.5 * PEAK]
    inst = Instance(names=["a"], kinds=["block"], flops=[F], mem_bytes=[M], weight_bytes=[W], out_bytes=[8.0],
                    kv_bytes=[1e6], preds=[[]], system=snap)
    assert inst.srv_time[0] == [pytest.approx(1.16e-3), pytest.approx(2.04e-3)]
    # B = 16 from the dynamics: max(1e8·17/1e12, (1e8 + 2e6·17)/1e11) = max(1.7e-3, 1.34e-3) = 1.7 ms
    inst16 = inst.with_token_state(make_snapshot(sc, background_users=[16, 0]))
    assert inst16.srv_time[0][0] == pytest.approx(1.7e-3)
    assert make_snapshot(sc, background_users=[3, 0]).mem_capacity_bytes[1] == pytest.approx(21e9)


def test_load_model_validation():
    with pytest.raises(ValueError, match="load_model must be one of"):
        ServerConfig(load_model="shared")
    with pytest.raises(ValueError, match="must be 0 on a batched server"):
        ServerConfig(load_model="batched", load=0.3)
    with pytest.raises(ValueError, match="needs load_model 'batched'"):
        ServerConfig(background_users=2)
    with pytest.raises(ValueError, match="integer >= 0"):
        ServerConfig(load_model="batched", background_users=-1)
    with pytest.raises(ValueError, match="exceeds mem_capacity_bytes"):
        ServerConfig(load_model="batched", background_users=50, background_kv_bytes_per_user=1e9)
    sc = Scenario(servers=[ServerConfig(load_model="batched")])
    with pytest.raises(ValueError, match="time-sliced load must be 0"):
        make_snapshot(sc, loads=[0.5])
    with pytest.raises(ValueError, match="time-sliced: background_users must be 0"):
        make_snapshot(Scenario(), background_users=[2])
    with pytest.raises(ValueError, match="background_users has 2 entries"):
        make_snapshot(sc, background_users=[1, 2])


def test_llama_decode_batched_is_slower_than_alone_and_faster_than_time_sliced():
    """On a real decode DAG: a batch of 8 costs more per step than a dedicated server but far less
    than time-slicing the server 8 ways (decode is memory-bound: weights are read once)."""
    g = build_dag("llama-2-7b", "block", "decode")

    def total(**kw):
        inst = make_instance(g, make_snapshot(Scenario(servers=[ServerConfig(**kw)])))
        return sum(t[0] for t in inst.srv_time)

    alone = total()
    batched = total(load_model="batched", background_users=7)
    sliced = total(load=7 / 8)
    assert alone < batched < sliced


@settings(max_examples=60, deadline=None)
@given(st.floats(0, 1e12), st.floats(0, 1e9), st.floats(0, 1e9), st.integers(0, 200))
def test_batched_monotone_in_users_and_bounded(flops, w, m, b):
    t0 = batched_step_time_s(flops, w, m, b, PEAK, BW)
    t1 = batched_step_time_s(flops, w, m, b + 1, PEAK, BW)
    assert t1 >= t0 >= 0
    # never slower than serving the B+1 users one after another, never faster than alone
    alone = batched_step_time_s(flops, w, m, 0, PEAK, BW)
    assert alone * (1 - 1e-12) <= t0 <= (b + 1) * alone * (1 + 1e-12) + 1e-300


# --------------------------------------------------------------------------- dynamics
def _batched_scenario(b0=2, kv=1e9, cap=24e9):
    return Scenario(servers=[ServerConfig(load_model="batched", background_users=b0, mem_capacity_bytes=cap,
                                          background_kv_bytes_per_user=kv), ServerConfig(load=0.5)])


def _trajectory(seed, cfg, scenario, steps=300):
    proc = MECProcess(scenario, cfg)
    rng = np.random.default_rng(seed)
    proc.reset(rng)
    out = []
    for _ in range(steps):
        proc.advance(rng)
        out.append(proc.background_users)
    return proc, out


def test_birth_death_seeded_bounded_and_feeds_snapshot():
    cfg = DynamicsConfig(background_users=True, user_arrival_prob=0.3, user_departure_prob=0.05,
                         max_background_users=30, outages=False)
    sc = _batched_scenario(kv=2e9)  # admission control: at most 24e9 // 2e9 = 12 users fit
    proc, a = _trajectory(7, cfg, sc)
    _, b = _trajectory(7, cfg, sc)
    assert a == b  # seeded
    users = np.array(a)
    assert users[:, 0].min() >= 0 and users[:, 0].max() <= 12 and len(set(users[:, 0])) > 3
    assert (users[:, 1] == 0).all()  # the time-sliced server has no batched users
    snap = proc.snapshot()
    assert snap.server_background_users == proc.background_users
    assert snap.server_load[0] == 0.0  # a batched server carries no time-sliced ρ
    assert snap.mem_capacity_bytes[1] == pytest.approx(24e9 - 2e9 * proc.background_users[0])


def test_birth_death_stationary_mean():
    """Without the cap binding the chain's mean is about p_arrive / p_depart = 0.1 / 0.02 = 5
    (the long-run average of a seeded run of 20,000 tokens lies within 15%)."""
    cfg = DynamicsConfig(background_users=True, user_arrival_prob=0.1, user_departure_prob=0.02,
                         max_background_users=100, fading=False, shadowing=False, mobility=False,
                         load=False, outages=False)
    _, traj = _trajectory(0, cfg, _batched_scenario(kv=0.0), steps=20_000)
    mean = np.mean([u[0] for u in traj[2000:]])
    assert mean == pytest.approx(5.0, rel=0.15)


def test_birth_death_off_keeps_trajectories():
    """Switched off: B stays at the scenario's value and no extra random draws are taken, so
    every other process follows the same seeded path as before."""
    sc = _batched_scenario()
    on_cfg = DynamicsConfig(outages=False, background_users=False)
    proc, traj = _trajectory(3, on_cfg, sc, steps=50)
    assert all(u == [2, 0] for u in traj)
    plain = Scenario(servers=[ServerConfig(), ServerConfig(load=0.5)])
    other, _ = _trajectory(3, on_cfg, plain, steps=50)
    assert np.allclose(proc.h, other.h) and np.allclose(proc.distance_km, other.distance_km)


def test_dynamics_config_validation():
    with pytest.raises(ValueError, match="user_arrival_prob"):
        DynamicsConfig(user_arrival_prob=-0.1)
    with pytest.raises(ValueError, match="probabilities"):
        DynamicsConfig(user_departure_prob=1.5)
    with pytest.raises(ValueError, match="max_background_users"):
        DynamicsConfig(max_background_users=2.5)
    with pytest.raises(ValueError, match="more background users"):
        MECProcess(_batched_scenario(b0=5), DynamicsConfig(background_users=True, max_background_users=3))
