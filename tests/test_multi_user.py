"""The multi-user system model (core.multi) and the joint reference (solvers.joint)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.cost import evaluate
from core.load import batched_step_time_s
from core.multi import MultiUserSystem, User, UserConfig, fairness, placement_of
from core.system import Scenario, ServerConfig, load_scenario, make_snapshot, shannon_rate_bps, channel_gain
from solvers.joint import METHODS, brute_force_joint, run_method, solve_joint


def _users(scenario, specs, include_prefill=False):
    return [User(UserConfig(**spec), scenario, include_prefill=include_prefill) for spec in specs]


@pytest.fixture(scope="module")
def multi():
    return load_scenario("multi-user")


# --------------------------------------------------------------------------- N = 1
def _two_server_time_sliced() -> Scenario:
    """The original two-server world (generic link, A100s, time-sliced at ρ = 0.6 and 0.1)."""
    return Scenario(name="two-server-time-sliced", servers=[ServerConfig(distance_km=0.15, load=0.6),
                                                            ServerConfig(distance_km=0.5, load=0.1)])


@pytest.mark.parametrize("scenario_name", ["multi-user", "two-server-time-sliced"])
@pytest.mark.parametrize("prefill", [True, False])
def test_one_user_is_the_single_user_engine(scenario_name, prefill):
    """With one user every coupling term is neutral: each decision's result equals the
    single-user engine's on ``make_snapshot(scenario)`` exactly (same floats)."""
    scen = _two_server_time_sliced() if scenario_name == "two-server-time-sliced" else load_scenario(scenario_name)
    (user,) = _users(scen, [dict(model="gpt2", prompt_len=24)], include_prefill=prefill)
    system = MultiUserSystem(scen, [user])
    single_snap = make_snapshot(scen)
    for d in system.options(0):
        joint = system.evaluate([d], record=True).results[0]
        single = evaluate(user.tm.instance(user.context, single_snap, user.kv_loc), placement_of(user.n, d))
        assert joint.makespan_s == single.makespan_s and joint.energy_j == single.energy_j
        assert joint.start_s == single.start_s and joint.transfers == single.transfers


# --------------------------------------------------------------------------- coupling
def test_two_users_share_batch_and_cell(multi):
    """Two gpt2 users on server 1 at the same context: each layer's batch step is the
    batched formula with B = 1 (the other member's work equals its own), and each gets half
    the uplink bandwidth, its rate the Shannon rate on W/2 = 10 MHz (scenario W = 20 MHz)."""
    a, b = _users(multi, [dict(model="gpt2"), dict(model="gpt2")])
    system = MultiUserSystem(multi, [a, b])
    inst = system.instance(0, [(0, 1), (0, 1)])
    snap = inst.system
    assert snap.server_background_users == [0, 0]
    for i in range(a.n):
        assert inst.srv_time[i][0] == pytest.approx(batched_step_time_s(
            a.token.flops[i], a.token.weight_bytes[i], a.token.mem_bytes[i], 1, snap.server_flops_per_s[0],
            snap.server_mem_bw_bytes_per_s[0]), rel=1e-12)
    g = channel_gain(0.2)
    for q, p in enumerate(multi.device.tx_powers_w):
        assert snap.uplink_bps[0][q] == pytest.approx(shannon_rate_bps(10e6, p, g), rel=1e-12)
    alone = system.instance(0, [(0, 1), None])
    assert alone.system.uplink_bps[0][0] == pytest.approx(shannon_rate_bps(20e6, multi.device.tx_powers_w[0], g))
    # server 2 seen as if joining it alone: untouched
    assert snap.uplink_bps[1] == alone.system.uplink_bps[1]
    # sharing costs: each is slower together than alone
    together = system.evaluate([(0, 1), (0, 1)]).results[0].makespan_s
    assert together > system.evaluate([(0, 1), (a.n, 0)]).results[0].makespan_s


def test_batch_members_pay_their_own_work(multi):
    """A gpt2 prefill (prompt 200) and a gpt2 decode (prompt 20, first decode token) on
    server 1: layer i's batch step is max((F_pre + F_dec)/peak, (W + U_pre + U_dec)/bw) for
    both (each member's own work, core.load), not the prefill's work twice (the old
    copies rule, B = 1) nor the decode's twice.  With the decode at split 5, the prefill's
    layers 0..4 run alone."""
    (pre,) = _users(multi, [dict(model="gpt2", prompt_len=200)], include_prefill=True)
    (dec,) = _users(multi, [dict(model="gpt2", prompt_len=20)])
    system = MultiUserSystem(multi, [pre, dec])
    both = [(0, 1), (0, 1)]
    ip, idc = system.instance(0, both), system.instance(1, both)
    peak, bw = ip.system.server_flops_per_s[0], ip.system.server_mem_bw_bytes_per_s[0]
    P, D = pre.token, dec.token
    for i in range(pre.n):
        shared = min(P.weight_bytes[i], P.mem_bytes[i])
        u_pre, u_dec = P.mem_bytes[i] - shared, D.mem_bytes[i] - min(D.weight_bytes[i], D.mem_bytes[i])
        step = max((P.flops[i] + D.flops[i]) / peak, (shared + u_pre + u_dec) / bw)
        assert ip.srv_time[i][0] == pytest.approx(step, rel=1e-12)
        copies = batched_step_time_s(P.flops[i], P.weight_bytes[i], P.mem_bytes[i], 1, peak, bw)
        assert ip.srv_time[i][0] <= copies * (1 + 1e-12)
        if P.weight_bytes[i] <= min(P.mem_bytes[i], D.mem_bytes[i]):  # not the embedding lookup:
            assert idc.srv_time[i][0] == pytest.approx(step, rel=1e-12)  # one step for both members
    assert idc.srv_time[1][0] > batched_step_time_s(D.flops[1], D.weight_bytes[1], D.mem_bytes[1], 1, peak, bw)
    split = system.instance(0, [(0, 1), (5, 1)])
    alone = system.instance(0, [(0, 1), None])
    assert split.srv_time[:5] == alone.srv_time[:5] and split.srv_time[5][0] == pytest.approx(ip.srv_time[5][0])


def test_slo_objective_is_the_environments(multi):
    """core.multi's slo cost is envs.objective.token_cost's: E + penalty·[T > target], the
    target TTFT for a prefill and TPOT for a decode token; violations reported either way."""
    from envs.objective import token_cost

    (pre,) = _users(multi, [dict(model="gpt2")], include_prefill=True)
    (dec,) = _users(multi, [dict(model="gpt2")])
    kw = dict(ttft_target_s=0.3, tpot_target_s=0.02, slo_penalty_j=2.5)
    system = MultiUserSystem(multi, [pre, dec], objective="slo", **kw)
    for d0 in system.options(0)[::3]:
        res = system.evaluate([d0, (dec.n, 0)])
        for u, r in enumerate(res.results):
            assert res.costs[u] == pytest.approx(token_cost("slo", r.makespan_s, r.energy_j, prefill=u == 0,
                                                            w_time_per_s=1.0, w_energy_per_j=1.0, **kw), rel=1e-15)
            assert res.violations[u] == (r.makespan_s > (0.3 if u == 0 else 0.02))
    with pytest.raises(ValueError, match="objective"):
        MultiUserSystem(multi, [pre], objective="latency")
    with pytest.raises(ValueError, match="tpot_target_s"):
        MultiUserSystem(multi, [pre], objective="slo", tpot_target_s=0.0)


def test_other_model_is_a_round_robin_group(multi):
    """A gpt2 user and a qwen user on one batched server do not batch (B stays 0); each
    gets half of the server's FLOP/s and bandwidth (G = 2)."""
    a, b = _users(multi, [dict(model="gpt2"), dict(model="qwen2.5-0.5b")])
    system = MultiUserSystem(multi, [a, b])
    snap = system.instance(0, [(0, 1), (0, 1)]).system
    ref = make_snapshot(multi)
    assert snap.server_background_users == [0, 0]
    assert snap.server_flops_per_s[0] == pytest.approx(ref.server_flops_per_s[0] / 2)
    assert snap.server_mem_bw_bytes_per_s[0] == pytest.approx(ref.server_mem_bw_bytes_per_s[0] / 2)


def test_time_sliced_server_is_processor_shared():
    """The original two-server world: server 1 time-sliced at ρ = 0.6; with three users there
    each gets (1 − 0.6)/3 of its throughput."""
    scen = _two_server_time_sliced()
    users = _users(scen, [dict(model="gpt2")] * 3)
    system = MultiUserSystem(scen, users)
    snap = system.instance(1, [(0, 1)] * 3).system
    ref = make_snapshot(scen)
    assert snap.server_flops_per_s[0] == pytest.approx(ref.server_flops_per_s[0] / 3)


def test_shared_weights_count_once(multi):
    """Two same-model users at split 0 on one server hold its weights once and both KV
    caches; a user of another model holds its own weights."""
    a, b, c = _users(multi, [dict(model="gpt2"), dict(model="gpt2"), dict(model="qwen2.5-0.5b")])
    system = MultiUserSystem(multi, [a, b, c])
    w = sum(a.token.weight_bytes)
    kv_a, kv_b = sum(a.token.kv_bytes), sum(b.token.kv_bytes)
    used = system.memory_used([(0, 1), (0, 1), (c.n, 0)])
    assert used[0] == pytest.approx(w + kv_a + kv_b) and used[1] == 0
    used = system.memory_used([(0, 1), (0, 1), (0, 1)])
    assert used[0] == pytest.approx(w + kv_a + kv_b + sum(c.token.weight_bytes) + sum(c.token.kv_bytes))
    # user b's split 5 adds only its caches of nodes 5.. beside a at split 0
    assert system.extra_memory(1, (5, 1), [(0, 1), (5, 1), (c.n, 0)]) == pytest.approx(sum(b.token.kv_bytes[5:]))


def _tight(multi, users_gb: float):
    """multi-user with server 1 holding ``users_gb`` GB and server 2 down-sized likewise."""
    servers = [dataclasses.replace(s, mem_capacity_bytes=users_gb * 1e9) for s in multi.servers]
    return dataclasses.replace(multi, servers=servers)


def test_memory_overflow_is_refused(multi):
    scen = _tight(multi, 0.3)  # gpt2 fp16 weights ≈ 0.25 GB: one copy fits, two models do not
    a, b = _users(scen, [dict(model="gpt2"), dict(model="qwen2.5-0.5b")])
    system = MultiUserSystem(scen, [a, b])
    with pytest.raises(ValueError, match="memory exceeded at edge1"):
        system.evaluate([(0, 1), (b.n - 2, 1)])
    with pytest.raises(ValueError, match="split must be"):
        system.evaluate([(a.n + 3, 1), (b.n, 0)])
    with pytest.raises(ValueError, match="all-device decision"):
        system.evaluate([(a.n, 1), (b.n, 0)])


def test_fairness_golden():
    """Jain's index: equal costs 1; (1, 0): 1² / (2·1) = 0.5; (1, 2, 3): 36 / (3·14) = 6/7.
    p95 of (1, 2, 3) by linear interpolation: 2 + 0.9·1 = 2.9."""
    assert fairness([2.0, 2.0])["jain"] == 1.0
    assert fairness([1.0, 0.0])["jain"] == 0.5
    f = fairness([1.0, 2.0, 3.0])
    assert f["jain"] == pytest.approx(6 / 7) and f["p95"] == pytest.approx(2.9) and f["mean"] == 2.0
    with pytest.raises(ValueError):
        fairness([])


# --------------------------------------------------------------------------- joint reference
MODELS = ["gpt2", "qwen2.5-0.5b"]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), tight=st.booleans(), objective=st.sampled_from(["weighted", "slo"]))
def test_joint_equals_brute_force(multi, seed, tight, objective):
    """Two users (gpt2 / qwen chains, prefill or decode, random distances and prompts): the
    MILP's total equals exhaustive enumeration's, for both objectives (slo with targets
    drawn around the users' latencies so that both sides of the target occur); with tight
    server memory too."""
    rng = np.random.default_rng(seed)
    scen = _tight(multi, 0.6) if tight else multi
    users = [User(UserConfig(model=MODELS[int(rng.integers(2))], prompt_len=int(rng.integers(8, 200)),
                             distance_scale=float(rng.uniform(0.3, 4.0))), scen,
                  include_prefill=bool(rng.integers(2))) for _ in range(2)]
    kw = dict(objective=objective, ttft_target_s=float(rng.uniform(0.05, 0.4)),
              tpot_target_s=float(rng.uniform(0.005, 0.05)), slo_penalty_j=float(rng.uniform(0.01, 1.0)))
    system = MultiUserSystem(scen, users, **kw)
    exact = brute_force_joint(system)
    milp = solve_joint(system)
    assert milp.status == "optimal"
    assert milp.objective == pytest.approx(exact.objective, rel=1e-9)


def test_joint_equals_brute_force_same_model_batches(multi):
    """Three gpt2 users (a prefill and two decodes) on the two batched edges:
    the batch-time rows (each member's own work, per layer) give brute force's optimum, for
    both objectives."""
    rng = np.random.default_rng(11)
    users = [User(UserConfig(model="gpt2", prompt_len=int(rng.integers(16, 256)),
                             distance_scale=float(rng.uniform(0.5, 3.0))), multi,
                  include_prefill=i == 0) for i in range(3)]
    for objective in ("weighted", "slo"):
        system = MultiUserSystem(multi, users, objective=objective, tpot_target_s=0.03)
        exact = brute_force_joint(system, max_combinations=10 ** 6)
        milp = solve_joint(system)
        assert milp.objective == pytest.approx(exact.objective, rel=1e-9)


def test_joint_beats_every_baseline(multi):
    rng = np.random.default_rng(3)
    users = [User(UserConfig(model="llama-3.2-1b", prompt_len=int(rng.integers(16, 256)),
                             distance_scale=float(rng.uniform(0.5, 3.0))), multi,
                  include_prefill=bool(i % 2 == 0)) for i in range(4)]
    system = MultiUserSystem(multi, users)
    totals = {m: run_method(system, m).result.total_cost for m in METHODS}
    for m, total in totals.items():
        assert totals["joint"] <= total * (1 + 1e-9), (m, totals)
    assert totals["joint"] < totals["selfish"]  # contention in this step makes selfish lose
    relaxed = solve_joint(system, mode="relaxed")
    assert relaxed.status == "relaxed" and 0 <= relaxed.gap < 1
    lp_bound = relaxed.stats["lp_bound"]
    assert lp_bound <= totals["joint"] * (1 + 1e-9)  # the LP bound is below the optimum
    assert relaxed.objective == pytest.approx(lp_bound / (1 - relaxed.gap), rel=1e-9)
    with pytest.raises(ValueError, match="mode"):
        solve_joint(system, mode="heuristic")


def test_joint_user_weights_and_bad_input(multi):
    users = _users(multi, [dict(model="gpt2"), dict(model="gpt2")])
    system = MultiUserSystem(multi, users)
    sol = solve_joint(system, weights=[2.0, 0.5])
    assert sol.objective == pytest.approx(2.0 * sol.result.costs[0] + 0.5 * sol.result.costs[1])
    with pytest.raises(ValueError, match="user weights"):
        solve_joint(system, weights=[1.0])
    with pytest.raises(ValueError, match="unknown method"):
        run_method(system, "oracle")
    with pytest.raises(ValueError, match="time_limit_s"):
        solve_joint(system, time_limit_s=0)


def test_user_hardware_and_distance(multi):
    """A user's own phone profile and distance factor reach its snapshot; bad configs are refused."""
    (u,) = _users(multi, [dict(model="gpt2", device_hardware="apple-a17-pro", distance_scale=2.0)])
    from core.hardware import load_profile

    assert u.nominal.device.mem_bw_bytes_per_s == load_profile("apple-a17-pro").mem_bw_bytes_per_s
    assert u.distances_km == [0.4, 1.0]
    with pytest.raises(ValueError, match="distance_scale"):
        UserConfig(distance_scale=0.0)
    with pytest.raises(ValueError, match="prompt_len"):
        UserConfig(prompt_len=0)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000))
def test_fitting_options_is_fits_for_every_option(multi, seed):
    rng = np.random.default_rng(seed)
    scen = _tight(multi, float(rng.uniform(0.3, 2.0)))
    users = [User(UserConfig(model=MODELS[int(rng.integers(2))]), scen) for _ in range(3)]
    system = MultiUserSystem(scen, users)
    decisions = []
    for u in range(3):
        opts = system.options(u)
        decisions.append(opts[int(rng.integers(len(opts)))])
    for u in range(3):
        expected = []
        for d in system.options(u):
            trial = list(decisions)
            trial[u] = d
            if system.fits(u, d, trial):
                expected.append(d)
        assert system.fitting_options(u, decisions) == expected
