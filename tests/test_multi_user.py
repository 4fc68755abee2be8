"""The multi-user system model (core.multi) and the joint reference (solvers.joint)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.cost import evaluate
from core.multi import MultiUserSystem, User, UserConfig, fairness, placement_of
from core.system import ServerConfig, load_scenario, make_snapshot, shannon_rate_bps, channel_gain
from solvers.joint import METHODS, brute_force_joint, run_method, solve_joint


def _users(scenario, specs, include_prefill=False):
    return [User(UserConfig(**spec), scenario, include_prefill=include_prefill) for spec in specs]


@pytest.fixture(scope="module")
def multi():
    return load_scenario("multi-user")


# --------------------------------------------------------------------------- N = 1
@pytest.mark.parametrize("scenario_name", ["multi-user", "two-server"])
@pytest.mark.parametrize("prefill", [True, False])
def test_one_user_is_the_single_user_engine(scenario_name, prefill):
    """With one user every coupling term is neutral: each decision's result equals the
    single-user engine's on ``make_snapshot(scenario)`` exactly (same floats)."""
    scen = load_scenario(scenario_name)
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
    """Two gpt2 users on server 1: each sees B = 1 batched user and half the uplink
    bandwidth, its rate the Shannon rate on W/2 = 10 MHz (scenario W = 20 MHz)."""
    a, b = _users(multi, [dict(model="gpt2"), dict(model="gpt2")])
    system = MultiUserSystem(multi, [a, b])
    inst = system.instance(0, [(0, 1), (0, 1)])
    snap = inst.system
    assert snap.server_background_users == [1, 0]
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
    """two-server: server 1 time-sliced at ρ = 0.6; with three users there each gets
    (1 − 0.6)/3 of its throughput."""
    scen = load_scenario("two-server")
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


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), tight=st.booleans())
def test_joint_equals_brute_force(multi, seed, tight):
    """Two users (gpt2 / qwen chains, prefill or decode, random distances and prompts):
    the MILP's total equals exhaustive enumeration's; with tight server memory too."""
    rng = np.random.default_rng(seed)
    scen = _tight(multi, 0.6) if tight else multi
    users = [User(UserConfig(model=MODELS[int(rng.integers(2))], prompt_len=int(rng.integers(8, 200)),
                             distance_scale=float(rng.uniform(0.3, 4.0))), scen,
                  include_prefill=bool(rng.integers(2))) for _ in range(2)]
    system = MultiUserSystem(scen, users)
    exact = brute_force_joint(system)
    milp = solve_joint(system)
    assert milp.status == "optimal"
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
