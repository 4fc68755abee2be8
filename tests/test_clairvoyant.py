"""The clairvoyant yardstick (solvers.clairvoyant): the DP equals brute force over every
plan sequence of the class on tiny episodes; lower bound ≤ DP ≤ any sequence's cost."""
from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.dynamics import DynamicsConfig, MECProcess
from core.models import load_model_spec
from core.system import DeviceConfig, Scenario, ServerConfig, make_snapshot
from core.tokens import TokenModel
from solvers.clairvoyant import SplitPlan, clairvoyant_plan, episode_contexts, episode_cost, split_plans

W = dict(w_time_per_s=1.0, w_energy_per_j=0.5)
PROMPT = 64


def _world(seed: int, new_tokens: int = 2, outage_prob: float = 0.3, thermal: bool = False):
    spec = dataclasses.replace(load_model_spec("qwen2.5-0.5b"), name="tiny", num_layers=2)
    # a slow device (4 GB/s, 0.67 TFLOP/s) so that offloading, splitting and moving caches trade off
    sc = Scenario(device=DeviceConfig(mem_bw_bytes_per_s=4e9, flops_per_cycle=512.0),
                  servers=[ServerConfig(distance_km=0.3, uplink_bandwidth_hz=5e6, latency_s=0.01),
                           ServerConfig(distance_km=0.8, load=0.5, latency_s=0.02)])
    tokens = TokenModel(spec, "block", PROMPT, make_snapshot(sc))
    cfg = DynamicsConfig(outage_prob=outage_prob, outage_mean_tokens=2.0, thermal=thermal)
    snaps = MECProcess(sc, cfg).rollout(np.random.default_rng(seed), new_tokens + 1)
    return tokens, snaps, episode_contexts(PROMPT, new_tokens)


def test_split_plans_and_contexts():
    plans = split_plans(3, 2)
    assert plans[0] == SplitPlan(3, 0) and len(plans) == 3 * 2 + 1
    assert SplitPlan(1, 2).placement(3) == [0, 2, 2] and SplitPlan(3, 0).placement(3) == [0, 0, 0]
    assert episode_contexts(8, 3) == [None, 9, 10, 11]
    assert episode_contexts(8, 2, include_prefill=False) == [9, 10]
    with pytest.raises(ValueError, match="prompt_len"):
        episode_contexts(0, 2)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_dp_equals_brute_force_over_plan_sequences(seed):
    """Every sequence of split plans over 3 tokens (prefill + 2 decode), replayed as the env
    would (caches move with the plan, a failed server loses its caches): the DP's value is
    the minimum, its plans replay to that value, and LB ≤ DP ≤ every sequence."""
    tokens, snaps, ctx = _world(seed)
    res = clairvoyant_plan(tokens, snaps, ctx, **W)
    plans = split_plans(tokens.num_nodes, 2)
    costs = [episode_cost(tokens, snaps, ctx, seq, **W)[0] for seq in itertools.product(plans, repeat=len(ctx))]
    finite = [c for c in costs if math.isfinite(c)]
    assert res.cost == pytest.approx(min(finite), rel=1e-12)
    assert episode_cost(tokens, snaps, ctx, res.plans, **W)[0] == pytest.approx(res.cost, rel=1e-12)
    assert res.lower_bound <= res.cost * (1 + 1e-12)
    assert all(res.lower_bound <= c * (1 + 1e-12) for c in finite)
    assert sum(res.token_costs) == pytest.approx(res.cost) and len(res.results) == len(ctx)
    assert len(res.placements) == len(ctx) and len(res.placements[0]) == tokens.num_nodes


def test_the_yardstick_is_not_trivial_here():
    """In this world the best sequence mixes plans (offloads, then runs on the device during
    an outage, then splits) and the bound is strictly below it (seed 1: both servers are
    down at the second token)."""
    tokens, snaps, ctx = _world(1)
    res = clairvoyant_plan(tokens, snaps, ctx, **W)
    assert len({(p.split, p.server) for p in res.plans}) == 3
    assert res.plans[1] == SplitPlan(tokens.num_nodes, 0)
    assert res.lower_bound < res.cost


def test_outages_shape_the_plan():
    """A seed where a server fails mid-episode: no plan of the DP uses a server while it is down,
    and some sequences of the class are infeasible (+∞)."""
    for seed in range(40):
        tokens, snaps, ctx = _world(seed, new_tokens=3, outage_prob=0.5)
        if any(not all(s.server_up) for s in snaps):
            break
    else:
        pytest.fail("no outage in 40 seeds")
    res = clairvoyant_plan(tokens, snaps, ctx, **W)
    for snap, plan in zip(snaps, res.plans):
        assert plan.server == 0 or plan.split == tokens.num_nodes or snap.server_up[plan.server - 1]
    down_t = next(t for t, s in enumerate(snaps) if not all(s.server_up))
    k = snaps[down_t].server_up.index(False) + 1
    seq = [SplitPlan(0, k)] * len(ctx)
    assert episode_cost(tokens, snaps, ctx, seq, **W)[1][down_t] == math.inf


def test_dp_is_no_worse_than_greedy_and_bound_is_per_token():
    """The myopic sequence (each token's cheapest plan given where the caches are) is one
    sequence of the class, so it costs at least the DP; each token's bound is at most the
    DP's cost of that token."""
    tokens, snaps, ctx = _world(5, new_tokens=4, outage_prob=0.1)
    res = clairvoyant_plan(tokens, snaps, ctx, **W)
    plans = split_plans(tokens.num_nodes, 2)
    greedy: list[SplitPlan] = []
    for t in range(len(ctx)):
        best = min(plans, key=lambda p: episode_cost(tokens, snaps[:t + 1], ctx[:t + 1], greedy + [p], **W)[0])
        greedy.append(best)
    assert episode_cost(tokens, snaps, ctx, greedy, **W)[0] >= res.cost * (1 - 1e-12)
    assert all(b <= c * (1 + 1e-12) for b, c in zip(res.token_bounds, res.token_costs))


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 5.0), st.floats(0.0, 5.0), st.integers(0, 10_000))
def test_bound_and_optimum_bracket_random_sequences(seed, w_t, w_e, pick):
    """For any weights and any random sequence of the class: LB ≤ DP ≤ its cost."""
    tokens, snaps, ctx = _world(seed, new_tokens=3, outage_prob=0.2, thermal=True)
    w = dict(w_time_per_s=w_t, w_energy_per_j=w_e)
    res = clairvoyant_plan(tokens, snaps, ctx, **w)
    rng = np.random.default_rng(pick)
    plans = split_plans(tokens.num_nodes, 2)
    seq = [plans[i] for i in rng.integers(0, len(plans), len(ctx))]
    c, _ = episode_cost(tokens, snaps, ctx, seq, **w)
    assert res.lower_bound <= res.cost * (1 + 1e-12) + 1e-15
    assert res.cost <= c * (1 + 1e-12) + 1e-15


def test_bad_input():
    tokens, snaps, ctx = _world(0)
    with pytest.raises(ValueError, match="one snapshot per token"):
        clairvoyant_plan(tokens, snaps[:-1], ctx, **W)
    with pytest.raises(ValueError, match="w_time_per_s"):
        clairvoyant_plan(tokens, snaps, ctx, w_time_per_s=-1.0, w_energy_per_j=0.0)
    with pytest.raises(ValueError, match="one placement per token"):
        episode_cost(tokens, snaps, ctx, [SplitPlan(0, 1)], **W)
    with pytest.raises(ValueError, match="initial_kv_loc"):
        clairvoyant_plan(tokens, snaps, ctx, initial_kv_loc=[0], **W)


@pytest.mark.parametrize("seed,outage_prob", [(0, 0.3), (5, 0.1), (7, 0.0)])
def test_fast_transitions_equal_the_engine(seed, outage_prob):
    """The additive migration phase prices every intact transition exactly: the fast DP and
    the one that evaluates every transition with the engine agree (value, bound, plans'
    cost) on 12-token episodes with outages (lost caches take the engine's path)."""
    tokens, snaps, ctx = _world(seed, new_tokens=11, outage_prob=outage_prob)
    fast = clairvoyant_plan(tokens, snaps, ctx, **W)
    slow = clairvoyant_plan(tokens, snaps, ctx, fast=False, **W)
    assert fast.cost == pytest.approx(slow.cost, rel=1e-12)
    assert fast.lower_bound == pytest.approx(slow.lower_bound, rel=1e-12)
    assert episode_cost(tokens, snaps, ctx, fast.plans, **W)[0] == pytest.approx(slow.cost, rel=1e-12)
