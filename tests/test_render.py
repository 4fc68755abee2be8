"""The ansi render shows the placement that was chosen; masks reach users of gymnasium.make envs."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs

TINY = {"model": "gpt2", "new_tokens": 2, "prompt_len": 16}


def make(env_id: str, **kw) -> gym.Env:
    return gym.make(env_id, config=TINY, **kw)


def locations(table: str, num_nodes: int) -> list[str]:
    """The location column of the node rows of a placement table."""
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("node")) + 1
    return [line.split()[2] for line in lines[start:start + num_nodes]]


def test_split_render_shows_the_chosen_placement():
    """DecoderSplit-v0: action a = split p, server k (a = p·M + k - 1); the table after the
    step lists the first p nodes on the device and the rest on edge k, and names the token
    just done and the next one."""
    env = make("DecoderSplit-v0", render_mode="ansi")
    u = env.unwrapped
    _, info = env.reset(seed=0)
    n, m = u.num_nodes, u.num_servers
    mask = info["action_mask"].reshape(n + 1, m)
    p, k = next((p, k) for p in range(1, n) for k in range(m) if mask[p, k])
    _, _, _, _, step_info = env.step(p * m + k)
    table = env.render()
    assert locations(table, n) == ["device"] * p + [f"edge{k + 1}"] * (n - p)
    assert step_info["placement"] == [0] * p + [k + 1] * (n - p)
    assert table.startswith("token 1/3 (prefill) done") and "next: token 2/3 (context 17)" in table


def test_offload_render_keeps_the_completed_token_and_the_terminal_head():
    """DecoderOffload-v0: mid-token the placed nodes show and the rest are '-'; after the
    step that completes a token the table shows that token in full (not the next, empty
    one); after the terminal step the head is placed too."""
    env = make("DecoderOffload-v0", render_mode="ansi")
    u = env.unwrapped
    _, info = env.reset(seed=1)
    n = u.num_nodes
    assert locations(env.render(), n) == ["-"] * n
    done, chosen = False, []
    while not done:
        action = int(np.flatnonzero(info["action_mask"])[-1])  # the last feasible location: a server when up
        chosen.append(action)
        _, _, done, _, info = env.step(action)
        table = env.render()
        names = u.inst.location_names
        if info["token_done"]:
            assert locations(table, n) == [names[k] for k in info["placement"]]
            assert info["placement"] == chosen[-n:]
            assert "-" not in locations(table, n)
        else:
            placed = len(chosen) % n
            assert locations(table, n) == [names[k] for k in chosen[-placed:]] + ["-"] * (n - placed)
    assert table.rstrip().endswith("episode done") and table.startswith("token 3/3")


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_action_mask_in_info_matches_the_env_method(env_id):
    """info["action_mask"] of reset() and step() is the mask of the observation returned,
    the same as env.unwrapped.action_masks() (a gymnasium.make env has no action_masks()
    of its own: the wrappers do not forward it)."""
    env = make(env_id)
    _, info = env.reset(seed=2)
    rng = np.random.default_rng(0)
    assert not hasattr(env, "action_masks")
    done = False
    while not done:
        mask = info["action_mask"]
        assert mask.dtype == bool and mask.shape == (env.action_space.n,)
        np.testing.assert_array_equal(mask, env.unwrapped.action_masks())
        np.testing.assert_array_equal(mask, env.get_wrapper_attr("action_masks")())
        _, _, done, _, info = env.step(int(rng.choice(np.flatnonzero(mask))))
        assert not info["invalid_action"]
    assert info["action_mask"].all()  # after the last token every action is allowed


def test_maskable_ppo_reads_masks_through_the_vector_env():
    """sb3-contrib's get_action_masks (what MaskablePPO calls) reaches the env's
    action_masks() through a DummyVecEnv of gymnasium.make envs."""
    from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported
    from stable_baselines3.common.vec_env import DummyVecEnv

    vec = DummyVecEnv([lambda: make("DecoderOffload-v0")])
    vec.seed(3)
    vec.reset()
    assert is_masking_supported(vec)
    np.testing.assert_array_equal(get_action_masks(vec)[0], vec.envs[0].unwrapped.action_masks())
