"""MultiUserOffload-v0 (envs.multi_user): PettingZoo API, determinism, masks, rewards."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from core.cost import evaluate
from core.multi import placement_of
from core.system import make_snapshot
from envs.multi_user import ENV_NAME, MultiUserConfig, parallel_env

SMALL = {"models": ("gpt2", "qwen2.5-0.5b"), "max_steps": 24, "mean_new_tokens": 4.0, "max_devices": 3,
         "arrival_rate_per_step": 0.5, "prompt_len_range": (8, 64)}


def test_parallel_api_test():
    env = parallel_env(SMALL)
    assert env.metadata["name"] == ENV_NAME
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "no agents present": requests that never arrived
        parallel_api_test(env, num_cycles=100)


def _rollout(seed: int, actions_seed: int):
    env = parallel_env(SMALL)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(actions_seed)
    trace = []
    while env.agents:
        acts = {}
        for a in env.agents:
            valid = np.flatnonzero(obs[a]["action_mask"])
            acts[a] = int(rng.choice(valid))
        obs, rew, term, trunc, info = env.step(acts)
        trace.append((sorted(rew.items()), sorted(term.items()),
                      [(a, o["observation"].tobytes(), o["action_mask"].tobytes()) for a, o in sorted(obs.items())]))
    return trace


def test_seeded_and_deterministic():
    a, b = _rollout(5, 1), _rollout(5, 1)
    assert a == b and len(a) > 1
    assert _rollout(6, 1) != a


def test_observations_lie_in_the_space():
    env = parallel_env(SMALL)
    obs, _ = env.reset(seed=2)
    for _ in range(10):
        if not env.agents:
            break
        for a in env.agents:
            assert env.observation_space(a).contains(obs[a]), a
            assert obs[a]["action_mask"].any()
        acts = {a: env.action_space(a).sample(mask=obs[a]["action_mask"]) for a in env.agents}
        obs, *_ = env.step(acts)


def test_one_user_reward_is_the_single_user_cost():
    """One gpt2 request, no arrivals, no fading or shadowing, distance factor 1: the reward
    of each step is −C/scale with C from the single-user engine on make_snapshot(scenario)."""
    cfg = dict(models=("gpt2",), initial_users=1, arrival_rate_per_step=0.0, max_steps=5, fading=False,
               shadowing=False, distance_scale_range=(1.0, 1.0), prompt_len_range=(32, 32), mean_new_tokens=3.0)
    env = parallel_env(cfg)
    obs, _ = env.reset(seed=0)
    (agent,) = env.agents
    user = env.users[agent]
    snap = make_snapshot(env.scenario)
    step = 0
    while env.agents:
        action = env.encode((3, 1)) if step % 2 == 0 else env.num_actions - 1
        inst = user.tm.instance(user.context, snap, user.kv_loc)
        decision = env.decode(agent, action)
        scale = env._scale[agent][0 if user.context is None else 1]
        expected = evaluate(inst, placement_of(user.n, decision))
        obs, rew, term, trunc, info = env.step({agent: action})
        assert info[agent]["makespan_s"] == expected.makespan_s
        assert rew[agent] == pytest.approx(-(expected.makespan_s + expected.energy_j) / scale, rel=1e-12)
        step += 1
    assert step == user.total_steps


def test_slo_objective_reward():
    """objective slo: each token costs E + penalty·[T > target] (TTFT for the prefill, TPOT
    for decode); the reward is −cost/scale, the scale the alone all-device slo cost; the
    violation is reported in infos."""
    cfg = dict(models=("gpt2",), initial_users=1, arrival_rate_per_step=0.0, max_steps=4, fading=False,
               shadowing=False, prompt_len_range=(32, 32), mean_new_tokens=3.0, objective="slo",
               ttft_target_s=0.08, tpot_target_s=0.02, slo_penalty_j=0.5)
    env = parallel_env(cfg)
    env.reset(seed=1)
    (agent,) = env.agents
    user = env.users[agent]
    seen = set()
    while env.agents:
        prefill = user.context is None
        scale = env._scale[agent][0 if prefill else 1]
        action = env.encode((0, 2)) if prefill else env.num_actions - 1
        _, rew, _, _, info = env.step({agent: action})
        i = info[agent]
        late = i["makespan_s"] > (0.08 if prefill else 0.02)
        assert i["slo_violation"] == late
        assert i["cost"] == pytest.approx(i["energy_j"] + (0.5 if late else 0.0), rel=1e-15)
        assert rew[agent] == pytest.approx(-i["cost"] / scale, rel=1e-12)
        seen.add(late)
    assert seen == {True, False}  # the all-device decode misses TPOT, the offloaded prefill meets TTFT
    with pytest.raises(ValueError, match="objective"):
        MultiUserConfig(objective="energy")
    with pytest.raises(ValueError, match="ttft_target_s"):
        MultiUserConfig(ttft_target_s=-1.0)


def test_masked_action_is_replaced_and_penalised():
    """A gpt2 user (14 nodes) beside qwen's 26-node action space: split 20 on server 1 does
    not exist for it, is masked, replaced by its best response and penalised."""
    env = parallel_env({**SMALL, "initial_users": 1, "arrival_rate_per_step": 0.0})
    for seed in range(50):
        obs, _ = env.reset(seed=seed)
        (agent,) = env.agents
        if env.users[agent].cfg.model == "gpt2":
            break
    action = env.encode((20, 1))
    assert obs[agent]["action_mask"][action] == 0
    _, rew, _, _, info = env.step({agent: action})
    assert info[agent]["invalid"] and info[agent]["replaced"]
    assert rew[agent] <= -env.config.invalid_action_penalty


def test_bad_input():
    with pytest.raises(ValueError, match="unknown key"):
        parallel_env({"num_users": 3})
    with pytest.raises(ValueError, match="max_devices"):
        MultiUserConfig(max_devices=0)
    with pytest.raises(ValueError, match="render_mode"):
        parallel_env(render_mode="human")
    env = parallel_env(SMALL)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="no action"):
        env.step({})
    with pytest.raises(ValueError, match="outside"):
        env.step({a: env.num_actions for a in env.agents})


def test_ansi_render():
    env = parallel_env(SMALL, render_mode="ansi")
    env.reset(seed=0)
    assert env.render().startswith("step 0")


def test_bench_multi_prints_the_tables():
    """benchmarks/bench_multi.py runs end to end on tiny settings (timings not asserted)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "benchmarks/bench_multi.py", "--users", "1,2", "--seeds", "1",
                           "--models", "gpt2", "--env-steps", "5"], cwd=root, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| 2 | ")]
    assert len(rows) == 2 + len(__import__("solvers.joint").joint.METHODS)  # methods, summary, env rate
    assert "CPU ms per agent-step" in proc.stdout
    bad = subprocess.run([sys.executable, "benchmarks/bench_multi.py", "--users", "0"], cwd=root,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--users" in bad.stderr


def test_shared_policy_view():
    """The Gymnasium view passes Gymnasium's checker; its reward per token step is the team's
    −Σ_u min(C_u, clip·scale_u) − penalties of the parallel env's step (same seed, same
    actions: every agent's first unmasked action), and MaskablePPO runs on it."""
    from gymnasium.utils.env_checker import check_env

    from envs.multi_user import SharedPolicyEnv

    cfg = {**SMALL, "max_steps": 8, "shared_reward_clip": 0.5}  # a low floor, so that it bites
    env = SharedPolicyEnv(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check_env(env, skip_render_check=True)
    env.reset(seed=4)
    total = 0.0
    while True:
        _, r, term, trunc, _ = env.step(int(np.flatnonzero(env.action_masks())[0]))
        total += r
        if term or trunc:
            break
    par = parallel_env(cfg)
    obs, _ = par.reset(seed=4)
    expected, floored = 0.0, 0
    while par.agents:
        pending = {}
        for a in list(par.agents):
            pending[a] = int(np.flatnonzero(par.observe(a, pending)["action_mask"])[0])
        obs, rew, _, _, info = par.step(pending)
        clip = par.config.shared_reward_clip
        expected -= sum(min(info[a]["cost"], clip * info[a]["scale"]) + info[a]["penalty"] for a in pending)
        floored += sum(info[a]["cost"] > clip * info[a]["scale"] for a in pending)
        for a in pending:  # the parallel env's own reward: −C/scale − penalty
            assert rew[a] == pytest.approx(-info[a]["cost"] / info[a]["scale"] - info[a]["penalty"], rel=1e-12)
    assert total == pytest.approx(expected, rel=1e-12) and floored > 0

    from sb3_contrib import MaskablePPO

    model = MaskablePPO("MultiInputPolicy", SharedPolicyEnv(cfg), n_steps=32, batch_size=16, n_epochs=1, seed=0,
                        device="cpu")
    model.learn(total_timesteps=32)
