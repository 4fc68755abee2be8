"""The v1 reward: the episode's true cost under the scored objective over a scale fixed at
reset; the slo objective; DeAOff's per-token references against brute force."""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import envs  # noqa: F401  (registers the environments)
from core.cost import evaluate
from core.instance import Placement
from envs.objective import slo_violated, token_cost
from envs.reference import deaoff_reference_result
from solvers.brute_force import brute_force
from solvers.clairvoyant import episode_contexts, episode_cost
from tests.test_deaoff import _feasible, random_instance

TINY = {"prompt_len": 16, "new_tokens": 3}
FEASIBLE_SEEDS = [s for s in range(40) if _feasible(random_instance(s, n=6))][:6]
"""Random 6-node instances (tests/test_deaoff.py's generator) with a feasible placement."""
STATIC = {"fading": False, "mobility": False, "load": False, "shadowing": False, "thermal": False,
          "background_users": False, "mobility_model": "random-walk"}


def all_edge_reference(inst):
    up = [k for k in range(1, inst.num_locations) if inst.system.server_up[k - 1]]
    return Placement([up[0] if up else 0] * inst.num_nodes)


def play(env_id, config, seed, policy_seed, reference_fn=all_edge_reference):
    """A random masked policy (seeded) on episode ``seed``: (return, info at the end, placements)."""
    env = gym.make(env_id, config=config, reference_fn=reference_fn)
    env.reset(seed=seed)
    u = env.unwrapped
    rng = np.random.default_rng(policy_seed)
    done, ret, placements = False, 0.0, []
    while not done:
        _, r, done, _, info = env.step(int(rng.choice(np.flatnonzero(u.action_masks()))))
        ret += r
        if info["token_done"]:
            placements.append(info["placement"])
    return ret, info, placements, u


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 50), policies=st.lists(st.integers(0, 10_000), min_size=2, max_size=4, unique=True),
       env_id=st.sampled_from(["DecoderOffload-v1", "DecoderSplit-v1"]),
       objective=st.sampled_from(["weighted", "slo"]))
def test_return_orders_policies_as_their_true_costs(seed, policies, env_id, objective):
    """On one episode (same seed), a policy with a higher true episode cost never gets a
    higher return: the return is 1 - cost / S with the same S for every policy."""
    cfg = {**TINY, "scenario": "two-edge", "objective": objective,
           "dynamics": {"outages": True, "outage_prob": 0.2}}
    runs = [play(env_id, cfg, seed, p) for p in policies]
    scales = {info["episode_scale"] for _, info, _, _ in runs}
    assert len(scales) == 1  # fixed at reset: the seed's, whatever the policy does
    for ra, ia, _, _ in runs:
        for rb, ib, _, _ in runs:
            if ia["episode_cost"] > ib["episode_cost"]:
                assert ra < rb


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 50), policy=st.integers(0, 10_000))
def test_episode_cost_is_the_yardsticks_replay(seed, policy):
    """The env's weighted episode cost equals clairvoyant.episode_cost replaying the same
    placements on the snapshots the env recorded (the yardstick and the reward agree)."""
    cfg = {**TINY, "scenario": "city-multi-edge", "latency_weight": 2.0, "energy_weight": 0.5}
    _, info, placements, u = play("DecoderOffload-v1", cfg, seed, policy)
    assert len(u.snapshots) == len(placements) == 4
    total, _ = episode_cost(u.tokens, u.snapshots, episode_contexts(16, 3), placements,
                            w_time_per_s=2.0, w_energy_per_j=0.5)
    assert info["episode_cost"] == pytest.approx(total, rel=1e-12)


def test_scale_is_the_reset_plan_and_its_own_return_is_zero():
    """With the dynamics off the conditions stay those of reset, so playing the reset plan
    (here the all-edge reference) costs exactly the scale: return 0."""
    cfg = {**TINY, "scenario": "two-edge", "dynamics": STATIC}
    env = gym.make("DecoderOffload-v1", config=cfg, reference_fn=all_edge_reference)
    env.reset(seed=4)
    done, ret = False, 0.0
    while not done:
        _, r, done, _, info = env.step(1)
        ret += r
    assert ret == pytest.approx(0.0, abs=1e-12)
    assert info["episode_cost"] == pytest.approx(info["episode_scale"], rel=1e-12)


def test_scale_does_not_depend_on_the_agent_and_a_bad_prefill_is_charged_later():
    """A prefill on the device leaves the caches there: the next tokens pay for them (the
    return falls by more than the prefill's own cost difference)."""
    cfg = {**TINY, "scenario": "two-edge", "dynamics": STATIC}
    out = {}
    for first in (0, 1):
        env = gym.make("DecoderSplit-v1", config=cfg, reference_fn=all_edge_reference)
        env.reset(seed=1)
        u = env.unwrapped
        n, m = u.num_nodes, u.num_servers
        all_edge, all_device = 0, n * m
        rewards = []
        for t in range(4):
            _, r, _, _, info = env.step(all_device if (t == 0 and first == 0) else all_edge)
            rewards.append(r)
        out[first] = (rewards, info["episode_scale"])
    assert out[0][1] == out[1][1]
    # decode token 1 after a device prefill migrates every cache: it costs more
    assert out[0][0][1] < out[1][0][1]


def test_slo_token_cost_golden():
    """slo: C = E + penalty when over the target (TTFT for the prefill, TPOT for decode).
    Prefill at 0.15 s with targets 0.2 / 0.05: no violation, C = E = 0.3.  Decode at
    0.06 s: violation, C = 0.3 + 2 = 2.3."""
    kw = dict(w_time_per_s=1.0, w_energy_per_j=1.0, ttft_target_s=0.2, tpot_target_s=0.05, slo_penalty_j=2.0)
    assert token_cost("slo", 0.15, 0.3, prefill=True, **kw) == 0.3
    assert token_cost("slo", 0.06, 0.3, prefill=False, **kw) == 2.3
    assert token_cost("weighted", 0.06, 0.3, prefill=False, **kw) == pytest.approx(0.36)
    assert not slo_violated(0.05, prefill=False, ttft_target_s=0.2, tpot_target_s=0.05)
    with pytest.raises(ValueError, match="objective"):
        token_cost("lexicographic", 0.1, 0.1, prefill=False, **kw)


def test_slo_info_counts_violations():
    cfg = {**TINY, "scenario": "two-edge", "objective": "slo", "tpot_target_s": 1e-9, "ttft_target_s": 1e-9,
           "slo_penalty_j": 3.0}
    _, info, _, _ = play("DecoderSplit-v1", cfg, 0, 0)
    assert info["episode_slo_violations"] == 4  # no token meets a 1 ns target
    assert info["slo_violation"] is True
    assert info["cost"] == pytest.approx(info["energy_j"] + 3.0)


@pytest.mark.parametrize("key,value", [("objective", "lexicographic"), ("tpot_target_s", 0.0),
                                       ("ttft_target_s", float("nan")), ("slo_penalty_j", -1.0)])
def test_bad_objective_config_is_rejected(key, value):
    with pytest.raises(ValueError, match=key):
        gym.make("DecoderSplit-v1", config={**TINY, key: value})


@pytest.mark.parametrize("seed", FEASIBLE_SEEDS)
def test_slo_reference_equals_brute_force(seed):
    """DeAOff's slo reference is the exact per-token optimum of E + penalty·[T > deadline]
    among plans within 100·T* (every level at the highest): brute force agrees."""
    inst = random_instance(seed, n=6)
    _, fastest = brute_force(inst, "makespan", levels=False)
    _, frugal = brute_force(inst, "energy", latency_bound_s=100 * fastest.makespan_s, levels=False)
    penalty = 0.5 * frugal.energy_j
    for deadline in (0.9 * fastest.makespan_s, 1.3 * fastest.makespan_s):
        _, free = brute_force(inst, "energy", latency_bound_s=100 * fastest.makespan_s, levels=False)
        best = free.energy_j + (penalty if free.makespan_s > deadline else 0.0)
        if deadline >= fastest.makespan_s:
            _, met = brute_force(inst, "energy", latency_bound_s=deadline, levels=False)
            best = min(best, met.energy_j)
        _, res = deaoff_reference_result(inst, objective="slo", deadline_s=deadline, slo_penalty_j=penalty,
                                         levels=False)
        got = res.energy_j + (penalty if res.makespan_s > deadline * (1 + 1e-9) else 0.0)
        assert got == pytest.approx(best, rel=1e-6)


@pytest.mark.parametrize("seed", FEASIBLE_SEEDS[:4])
def test_weighted_reference_equals_brute_force(seed):
    """With DeAOff's weighted-sum mode, the myopic reference is the exact weighted optimum."""
    import itertools

    from core.cost import allowed_locations, placement_fits
    inst = random_instance(seed, n=6)
    best = math.inf
    for loc in itertools.product(*allowed_locations(inst)):
        if placement_fits(inst, loc):
            r = evaluate(inst, Placement(list(loc)), record=False)
            best = min(best, 2.0 * r.makespan_s + 0.5 * r.energy_j)
    _, res = deaoff_reference_result(inst, objective="weighted", w_time_per_s=2.0, w_energy_per_j=0.5, levels=False)
    assert 2.0 * res.makespan_s + 0.5 * res.energy_j == pytest.approx(best, rel=1e-6)
