"""One policy for 1 .. max_servers servers: padded spaces, presence flags, masks, extractor."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401
from agents.features import LocationExtractor
from envs.observation import OFFLOAD_LOCATION_FEATURES, SPLIT_LOCATION_FEATURES
from tests.test_reward import all_edge_reference

TINY = {"prompt_len": 16, "new_tokens": 2}
SCENARIOS = {"urban-5g": 1, "two-edge": 2, "city-multi-edge": 4}


@pytest.mark.parametrize("env_id", ["DecoderOffload-v1", "DecoderSplit-v1"])
def test_every_scenario_has_the_same_spaces_and_absent_servers_are_masked(env_id):
    spaces_seen = set()
    for scenario, m in SCENARIOS.items():
        env = gym.make(env_id, config={**TINY, "scenario": scenario}, reference_fn=all_edge_reference)
        obs, info = env.reset(seed=0)
        spaces_seen.add((repr(env.observation_space), repr(env.action_space)))
        cols = OFFLOAD_LOCATION_FEATURES if env_id == "DecoderOffload-v1" else SPLIT_LOCATION_FEATURES
        present = obs["locations"][:, cols.index("present")]
        assert present.tolist() == [1.0] * (1 + m) + [0.0] * (4 - m)
        assert not obs["locations"][1 + m:].any()  # zero rows
        mask = info["action_mask"]
        if env_id == "DecoderOffload-v1":
            assert not mask[1 + m:].any()
        else:
            assert not mask.reshape(-1, 4)[:, m:].any()
        # a random masked episode never touches an absent server
        rng = np.random.default_rng(1)
        done = False
        while not done:
            _, _, done, _, info = env.step(int(rng.choice(np.flatnonzero(env.unwrapped.action_masks()))))
            assert not info["invalid_action"]
            if info["token_done"]:
                assert max(info["placement"]) <= m
    assert len(spaces_seen) == 1


def test_too_many_servers_for_max_servers_is_one_error():
    with pytest.raises(ValueError, match="max_servers"):
        gym.make("DecoderSplit-v1", config={**TINY, "scenario": "city-multi-edge", "max_servers": 2})
    with pytest.raises(ValueError, match="max_servers"):
        gym.make("DecoderSplit-v1", config={**TINY, "max_servers": 0})


def test_extractor_ignores_absent_locations():
    """The shared per-location MLP's embedding of an absent location (presence 0) is zero,
    whatever its (padding) row holds."""
    env = gym.make("DecoderOffload-v1", config={**TINY, "scenario": "two-edge"}, reference_fn=all_edge_reference)
    obs, _ = env.reset(seed=0)
    torch.manual_seed(0)
    ext = LocationExtractor(env.observation_space, location_arch=[8], global_arch=[4])
    batch = {k: torch.as_tensor(v)[None] for k, v in obs.items()}
    out = ext(batch)
    assert out[0, 3 * 8:5 * 8].abs().sum() == 0  # locations 3, 4 (absent servers)
    noisy = {k: v.clone() for k, v in batch.items()}
    noisy["locations"][0, 3:, 1:] = 0.7  # garbage in the padding, presence still 0
    assert torch.equal(ext(noisy)[0, :5 * 8], out[0, :5 * 8])


@pytest.mark.parametrize("env_id", ["DecoderOffload-v1", "DecoderSplit-v1"])
def test_scenario_pool_draws_worlds_from_the_seed(env_id):
    """scenario_pool: each reset draws a scenario (seeded): 1, 2 and 4 servers all appear
    over a few resets, the same seed gives the same world, and every episode runs."""
    cfg = {**TINY, "scenario_pool": list(SCENARIOS)}
    env = gym.make(env_id, config=cfg, reference_fn=all_edge_reference)
    seen = {}
    for seed in range(12):
        env.reset(seed=seed)
        u = env.unwrapped
        seen[seed] = u.scenario.num_servers
        rng = np.random.default_rng(seed)
        done = False
        while not done:
            _, _, done, _, info = env.step(int(rng.choice(np.flatnonzero(u.action_masks()))))
            assert not info["invalid_action"]
            if info["token_done"]:
                assert max(info["placement"]) <= u.scenario.num_servers
    assert set(seen.values()) == {1, 2, 4}
    env.reset(seed=5)
    assert env.unwrapped.scenario.num_servers == seen[5]


def test_scenario_pool_rejects_a_world_too_big():
    with pytest.raises(ValueError, match="max_servers"):
        gym.make("DecoderOffload-v1", config={**TINY, "scenario_pool": ["two-edge", "city-multi-edge"],
                                              "max_servers": 2})
