"""Depth-free split actions (``split_grid``), the split env's model features and all-on-one
estimates, and training on several models (``model_pool``)."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from core.cost import evaluate
from core.instance import Placement
from envs.observation import log_energy, log_time

TINY = {"prompt_len": 16, "new_tokens": 3}


def test_grid_cuts_of_qwen_by_hand():
    """qwen2.5-0.5b at block granularity: embed, 24 blocks, head (26 nodes); layer l (0-based)
    has depth (l + 1) / 25.  G = 8: j = 1 -> depth 0 -> the embedding (1 node); j = 2 -> depth
    <= 1/8 -> l + 1 <= 3.125 -> 1 + 3 = 4; j = 3 -> l + 1 <= 6.25 -> 7; ... j = 8 -> l + 1 <=
    21.875 -> 22; then all 26."""
    env = gym.make("DecoderSplit-v1", config={**TINY, "split_grid": 8})
    u = env.unwrapped
    assert u.cuts == [0, 1, 4, 7, 10, 13, 16, 19, 22, 26]
    assert env.action_space.n == 10 * 4 and u.num_cuts == 10
    env.reset(seed=0)
    # action c·M + (k - 1): cut 2 (4 nodes on the device), server 1
    assert u.decode_action(2 * 4 + 0) == [0] * 4 + [1] * 22
    assert u.decode_action(9 * 4 + 3) == [0] * 26
    mask = u.action_masks()
    assert mask.shape == (40,) and not mask.reshape(10, 4)[:, u.num_servers:].any()


def test_grid_actions_are_the_same_for_every_depth():
    spaces = set()
    for model in ("gpt2", "qwen2.5-0.5b", "llama-3.2-1b"):
        env = gym.make("DecoderSplit-v1", config={**TINY, "model": model, "split_grid": 5})
        spaces.add((env.action_space.n, str(env.observation_space)))
        u = env.unwrapped
        assert u.cuts[0] == 0 and u.cuts[1] == 1 and u.cuts[-1] == u.num_nodes
        assert all(a <= b for a, b in zip(u.cuts, u.cuts[1:]))
    assert len(spaces) == 1
    full = gym.make("DecoderSplit-v1", config={**TINY, "model": "gpt2"})
    assert full.action_space.n == (14 + 1) * 4  # gpt2: 12 blocks + embed + head


def test_model_pool_draws_models_per_reset_and_needs_a_grid_for_splits():
    pool = ["gpt2", "qwen2.5-0.5b"]
    with pytest.raises(ValueError, match="split_grid >= 1"):
        gym.make("DecoderSplit-v1", config={**TINY, "model_pool": pool})
    env = gym.make("DecoderSplit-v1", config={**TINY, "model_pool": pool, "split_grid": 4})
    seen = []
    for s in range(12):
        env.reset(seed=s)
        seen.append(env.unwrapped.model_name)
    assert set(seen) == set(pool)
    env.reset(seed=5)
    first = env.unwrapped.model_name
    env.reset(seed=5)
    assert env.unwrapped.model_name == first
    per_node = gym.make("DecoderOffload-v1", config={**TINY, "model_pool": pool})  # depth-free already
    per_node.reset(seed=0)
    with pytest.raises(ValueError, match="lists an entry twice"):
        gym.make("DecoderSplit-v1", config={**TINY, "model_pool": ["gpt2", "gpt2"]})
    with pytest.raises(ValueError, match="split_grid must be an integer >= 0"):
        gym.make("DecoderSplit-v1", config={**TINY, "split_grid": -1})


def test_all_on_one_estimates_are_the_engine_costs():
    env = gym.make("DecoderSplit-v1", config={**TINY, "scenario": "two-edge", "dynamics": {"outages": False}})
    obs, _ = env.reset(seed=4)
    u = env.unwrapped
    cols = u.layout.location_features
    t, e = cols.index("est_token_time"), cols.index("est_token_energy")
    checked = 0
    for k in range(u.num_locations):
        if k and not u.inst.system.server_up[k - 1]:
            assert obs["locations"][k, t] == obs["locations"][k, e] == 1.0  # cannot take the token
            continue
        checked += 1
        res = evaluate(u.inst, Placement([k] * u.num_nodes), record=False)
        assert obs["locations"][k, t] == pytest.approx(log_time(res.makespan_s), abs=1e-6)
        assert obs["locations"][k, e] == pytest.approx(log_energy(res.energy_j), abs=1e-6)
    assert checked >= 2
    assert not obs["locations"][u.num_locations:].any()  # padding rows stay zero
    assert np.all((obs["model"] >= 0) & (obs["model"] <= 1)) and obs["model"][-1] == pytest.approx(24 / 128)


RANDOM = {**TINY, "split_grid": 4, "world_distribution": "default"}


def _world(env) -> tuple:
    u = env.unwrapped
    s = u.scenario
    return (u.model_name, s.device.hardware, tuple((sv.hardware, sv.link_type, round(sv.distance_km, 9),
                                                    sv.background_users) for sv in s.servers))


def test_random_worlds_are_drawn_from_the_seed():
    a = gym.make("DecoderSplit-v1", config=RANDOM)
    b = gym.make("DecoderSplit-v1", config=RANDOM)
    worlds = []
    for seed in range(10):
        a.reset(seed=seed)
        b.reset(seed=seed)
        assert _world(a) == _world(b)  # same seed, same world, whatever env instance
        worlds.append(_world(a))
        assert 1 <= a.unwrapped.num_servers <= 4 and a.unwrapped.world < 0
    assert len(set(worlds)) == 10
    a.reset(seed=3)
    again = _world(a)
    a.reset(seed=4)
    a.reset(seed=3)
    assert _world(a) == again


def test_random_world_share_mixes_in_the_scenario():
    never = gym.make("DecoderSplit-v1", config={**RANDOM, "random_world_share": 0.0})
    for seed in range(4):
        never.reset(seed=seed)
        assert never.unwrapped.scenario.name == "urban-5g" and never.unwrapped.world == 0
    half = gym.make("DecoderSplit-v1", config={**RANDOM, "random_world_share": 0.5})
    names = set()
    for seed in range(20):
        half.reset(seed=seed)
        names.add(half.unwrapped.scenario.name == "urban-5g")
    assert names == {True, False}
    with pytest.raises(ValueError, match="random_world_share must be a number in"):
        gym.make("DecoderSplit-v1", config={**RANDOM, "random_world_share": 1.5})
    with pytest.raises(ValueError, match="more than config.max_servers = 2"):
        gym.make("DecoderSplit-v1", config={**RANDOM, "max_servers": 2})
    with pytest.raises(ValueError, match="no-such-dist"):
        gym.make("DecoderSplit-v1", config={**RANDOM, "world_distribution": "no-such-dist"})


def test_the_shipped_random_worlds_run_config_resolves():
    """configs/runs/split-random-worlds.yaml (the README's recipe) resolves to a run whose env
    builds and whose teacher is the best-of-baselines one, with a DAgger round."""
    from deaoff_cli.train import resolve_new

    opts = {"config": "configs/runs/split-random-worlds.yaml", "algo": None, "env": None, "seed": None,
            "n_envs": None, "vec_env": None, "timesteps": None, "eval_freq": None, "eval_episodes": None,
            "env_config": None}
    cfg = resolve_new(opts)
    assert cfg.env_id == "DecoderSplit-v1" and cfg.hyperparams["pretrain_teacher"] == "best-of-baselines"
    assert cfg.hyperparams["pretrain_dagger_episodes"] == 150 and cfg.env_config["world_distribution"] == "default"
    env = gym.make(cfg.env_id, config={**cfg.env_config, **TINY})
    env.reset(seed=0)
    assert env.action_space.n == 10 * 4


def test_recipe_a_differs_only_in_the_warm_start():
    from deaoff_cli.train import read_run_config_file

    a = read_run_config_file("configs/runs/split-random-worlds-clairvoyant.yaml")
    b = read_run_config_file("configs/runs/split-random-worlds.yaml")
    assert a["env_config"] == b["env_config"] and a["hyperparams"]["pretrain_teacher"] == "clairvoyant"
    assert {k: v for k, v in a.items() if k != "hyperparams"} == {k: v for k, v in b.items() if k != "hyperparams"}
