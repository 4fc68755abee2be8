"""The Gymnasium environments: API conformance, determinism, masks, migrations, rewards."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from core.instance import Placement

TINY = {"prompt_len": 16, "new_tokens": 3}
VARIANTS = [
    TINY,
    {**TINY, "granularity": "sublayer", "model": "gpt2", "scenario": "urban-5g"},
    {**TINY, "scenario": "city-multi-edge", "dynamics": {"outages": True, "outage_prob": 0.3}},
    {**TINY, "include_prefill": False, "dynamics": {"fading": False, "mobility": False, "load": False}},
]


def all_edge_reference(inst):
    """A cheap stand-in reference for tests of the env mechanics: everything on the first
    server that is up, else on the device."""
    up = [k for k in range(1, inst.num_locations) if inst.system.server_up[k - 1]]
    return Placement([up[0] if up else 0] * inst.num_nodes)


def make(env_id, config, **kw):
    kw.setdefault("reference_fn", all_edge_reference)
    return gym.make(env_id, config=config, **kw)


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
@pytest.mark.parametrize("config", VARIANTS, ids=["default", "sublayer-gpt2", "outages", "static-no-prefill"])
def test_check_env(env_id, config):
    env = make(env_id, config)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)


def test_registration_is_idempotent():
    import importlib
    importlib.reload(envs)
    assert all(i in gym.envs.registry for i in envs.ENV_IDS)


def test_unknown_config_key_is_rejected():
    with pytest.raises(ValueError, match="bogus"):
        gym.make("DecoderOffload-v1", config={"bogus": 1})
    with pytest.raises(ValueError, match="spin"):
        gym.make("DecoderOffload-v1", config={"dynamics": {"spin": 1}})


def rollout(env, seed, policy_seed=0):
    rng = np.random.default_rng(policy_seed)
    obs, _ = env.reset(seed=seed)
    trace = []
    done = False
    while not done:
        mask = env.unwrapped.action_masks()
        assert mask.any()
        action = int(rng.choice(np.flatnonzero(mask)))
        obs, reward, done, truncated, info = env.step(action)
        assert not truncated
        assert env.observation_space.contains(obs)
        trace.append((action, reward, info.get("latency_s"), info.get("energy_j")))
    return trace


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_same_seed_same_trajectory(env_id):
    cfg = VARIANTS[2]
    a = rollout(make(env_id, cfg), seed=7)
    b = rollout(make(env_id, cfg), seed=7)
    c = rollout(make(env_id, cfg), seed=8)
    assert a == b
    assert a != c


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
@pytest.mark.parametrize("config", VARIANTS, ids=["default", "sublayer-gpt2", "outages", "static-no-prefill"])
def test_masked_random_rollouts_stay_in_space_and_terminate(env_id, config):
    env = make(env_id, config)
    n_tokens = config["new_tokens"] + (1 if config.get("include_prefill", True) else 0)
    per_token = 1 if env_id == "DecoderSplit-v1" else env.unwrapped.num_nodes
    for seed in range(3):
        trace = rollout(env, seed)
        assert len(trace) == n_tokens * per_token


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_rewards_telescope_to_one_minus_episode_cost_over_scale(env_id):
    """A token's rewards sum to 1/tokens - C_t / S; the return to 1 - Σ C_t / S, with the
    scale S fixed at reset."""
    env = make(env_id, {**TINY, "scenario": "two-edge"})
    rng = np.random.default_rng(3)
    env.reset(seed=3)
    scale = env.unwrapped.scale
    done, acc, ret = False, 0.0, 0.0
    tokens = 0
    while not done:
        action = int(rng.choice(np.flatnonzero(env.unwrapped.action_masks())))
        _, reward, done, _, info = env.step(action)
        assert reward == pytest.approx(sum(info["rewards"].values()), abs=1e-12)
        acc += reward
        ret += reward
        if info["token_done"]:
            assert info["scale"] == scale
            assert acc == pytest.approx(1.0 / 4 - info["cost"] / scale, rel=1e-9, abs=1e-9)
            acc = 0.0
            tokens += 1
    assert tokens == 4
    assert ret == pytest.approx(1.0 - info["episode_cost"] / scale, rel=1e-9, abs=1e-9)
    assert info["episode_cost_ratio"] == pytest.approx(info["episode_cost"] / scale)


def test_invalid_action_is_handled_deterministically():
    env = make("DecoderOffload-v1", {**TINY, "scenario": "urban-5g",
                                     "dynamics": {"outages": True, "outage_prob": 1.0, "outage_mean_tokens": 3}})
    env.reset(seed=0)
    n = env.unwrapped.num_nodes
    for _ in range(n):  # prefill all on the edge; the server then goes down
        env.step(1)
    assert list(env.unwrapped.action_masks()) == [True, False, False, False, False]  # 3 absent servers
    _, reward, _, _, info = env.step(1)
    assert info["invalid_action"] is True
    assert info["rewards"]["invalid"] == pytest.approx(-0.1)
    assert env.unwrapped.loc[0] == 0  # ran on the device instead


def test_masks_during_an_outage_and_lost_caches():
    env = make("DecoderOffload-v1", {**TINY, "scenario": "two-edge",
                                     "dynamics": {"outages": True, "outage_prob": 1.0, "outage_mean_tokens": 1,
                                                  "mobility_model": "random-walk"}})
    env.reset(seed=0)
    u = env.unwrapped
    for _ in range(u.num_nodes):
        env.step(1)  # prefill on server 1: caches of every layer there
    assert u.process.server_up == [False, False]
    assert not u.action_masks()[1:].any() and u.action_masks()[0]
    attn = [i for i, kv in enumerate(u.tokens.kv_per_token) if kv > 0]
    assert all(u.kv_loc[i] == -1 and u.lost[i] for i in attn)
    # the lost caches are rebuilt where the layer runs: extra FLOPs on the node
    decode = u.tokens.instance(u.context, u.snapshot, [-1] * u.num_nodes)
    for i in attn:
        assert u.inst.flops[i] > decode.flops[i]
        assert u.inst.kv_move_bytes[i] == pytest.approx(u.tokens.kv_per_token[i] * (u.context - 1))


def test_migration_is_charged_exactly_once():
    cfg = {**TINY, "scenario": "urban-5g", "dynamics": {"fading": False, "mobility": False, "load": False,
                                                        "shadowing": False, "thermal": False,
                                                        "background_users": False}}
    env = make("DecoderOffload-v1", cfg, render_mode="ansi")
    env.reset(seed=0)
    u = env.unwrapped
    n = u.num_nodes
    attn = [i for i, kv in enumerate(u.tokens.kv_per_token) if kv > 0]

    def token(where):
        for _ in range(n):
            _, _, _, _, info = env.step(where)
        return u.last_result, info

    token(0)                         # prefill on the device: caches there
    res1, _ = token(1)               # decode 1 on the edge: every cache migrates, once
    migrations = [t for t in res1.transfers if t.kind == "migration"]
    assert sorted(t.node for t in migrations) == attn
    ctx1 = TINY["prompt_len"] + 1
    for t in migrations:
        assert (t.src, t.dst, t.link) == (0, 1, "uplink")
        assert t.bytes == pytest.approx(u.tokens.kv_per_token[t.node] * (ctx1 - 1))
    res2, _ = token(1)               # decode 2 on the edge again: nothing to move
    assert not [t for t in res2.transfers if t.kind == "migration"]
    assert res1.makespan_s > res2.makespan_s
    assert res1.transmit_j > res2.transmit_j


def test_render_modes():
    env = make("DecoderOffload-v1", {**TINY, "dynamics": {"outages": False}}, render_mode="ansi")
    env.reset(seed=0)
    for _ in range(env.unwrapped.num_nodes + 2):
        env.step(1)
    text = env.render()
    assert "edge1" in text and "token" in text
    env = make("DecoderOffload-v1", TINY, render_mode="rgb_array")
    env.reset(seed=0)
    for _ in range(env.unwrapped.num_nodes):
        env.step(1)
    img = env.render()
    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8


def test_split_env_actions_are_prefix_cuts():
    env = make("DecoderSplit-v1", {**TINY, "scenario": "two-edge"})
    env.reset(seed=0)
    u = env.unwrapped
    n, m = u.num_nodes, u.max_servers
    assert env.action_space.n == (n + 1) * m and u.num_servers == 2 and m == 4
    assert not u.action_masks().reshape(n + 1, m)[:, 2:].any()  # absent servers 3, 4: never
    assert u.decode_action(0) == [1] * n
    assert u.decode_action(1) == [2] * n
    assert u.decode_action(3 * m + 1) == [0] * 3 + [2] * (n - 3)
    assert u.decode_action(n * m) == [0] * n
