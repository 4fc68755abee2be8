"""Seeds: training, model selection and held-out evaluation never share an episode."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents import seeds
from agents.seeds import (HELD_OUT, MAX_ENVS, MAX_EPISODES, MODEL_SELECTION, RUN_SEEDS, TRAINING, EpisodeSeeds,
                          held_out_seeds, model_selection_seeds, training_seeds)

run_seeds = st.integers(RUN_SEEDS.start, RUN_SEEDS.stop - 1)
n_envs = st.integers(1, MAX_ENVS)
episodes = st.integers(1, MAX_EPISODES)
steps = st.one_of(st.just(0), st.integers(1, 2**62))


def _meets(a: range, b: range) -> bool:
    return a.start < b.stop and b.start < a.stop


def test_the_ranges_are_disjoint_and_in_order():
    assert TRAINING.stop <= MODEL_SELECTION.start and MODEL_SELECTION.stop <= HELD_OUT.start
    assert HELD_OUT.stop <= 2**32  # np.random.seed and SB3 accept every seed


@settings(max_examples=300, deadline=None)
@given(train_seed=run_seeds, select_seed=run_seeds, held_seed=run_seeds, envs=n_envs, eval_episodes=episodes,
       held_episodes=episodes, num_timesteps=steps)
def test_no_run_seed_makes_the_sets_meet(train_seed, select_seed, held_seed, envs, eval_episodes, held_episodes,
                                         num_timesteps):
    """For ANY run seeds (the training run's, another run's selection, the evaluation's
    --seed), any env count and episode counts, and any resumed session, the three sets of
    seeds lie in their own ranges, so they never meet.  The seed after the last
    evaluation episode (a vector env's extra reset) stays in the range too."""
    train = training_seeds(train_seed, envs, num_timesteps)
    select = model_selection_seeds(select_seed, eval_episodes)
    held = held_out_seeds(held_seed, held_episodes)
    assert train.start >= TRAINING.start and train.stop <= TRAINING.stop
    assert select.start >= MODEL_SELECTION.start and select.stop + 1 <= MODEL_SELECTION.stop
    assert held.start >= HELD_OUT.start and held.stop + 1 <= HELD_OUT.stop
    assert not _meets(train, select) and not _meets(train, held) and not _meets(select, held)
    assert len(train) == envs and len(select) == eval_episodes and len(held) == held_episodes


def test_golden_seeds():
    """Run seed 7, 2 envs, 3 episodes: training 7, 8; selection 10^9 + 7000 + (0, 1, 2);
    held out 2·10^9 + 7000 + (0, 1, 2)."""
    assert list(training_seeds(7, 2)) == [7, 8]
    assert list(model_selection_seeds(7, 3)) == [1_000_007_000, 1_000_007_001, 1_000_007_002]
    assert list(held_out_seeds(7, 3)) == [2_000_007_000, 2_000_007_001, 2_000_007_002]


def test_resumed_sessions_get_fresh_reproducible_training_seeds():
    first = training_seeds(3, 2, 0)
    again = training_seeds(3, 2, 4096)
    assert again == training_seeds(3, 2, 4096) and again != first and again != training_seeds(3, 2, 8192)


@pytest.mark.parametrize("call", [
    lambda: training_seeds(-1, 1), lambda: training_seeds(RUN_SEEDS.stop, 1), lambda: training_seeds(0, 0),
    lambda: training_seeds(0, MAX_ENVS + 1), lambda: training_seeds(1.5, 1), lambda: training_seeds(True, 1),
    lambda: model_selection_seeds(0, MAX_EPISODES + 1), lambda: held_out_seeds(0, 0),
    lambda: held_out_seeds(RUN_SEEDS.stop, 1), lambda: seeds.check_run_seed("3"),
], ids=["negative", "too-large", "no-envs", "too-many-envs", "float", "bool", "too-many-episodes", "no-episodes",
        "held-out-too-large", "string"])
def test_out_of_range_is_a_clear_error(call):
    with pytest.raises(ValueError, match="must be an integer in"):
        call()


class _SeedRecorder(gym.Env):
    """Terminates after one step; remembers each reset's seed."""

    observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(1)

    def __init__(self):
        self.seeds: list[int | None] = []

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.seeds.append(seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), 0.0, True, False, {}


def test_periodic_evaluation_plays_the_model_selection_seeds():
    """The eval env as train.py builds it (a DummyVecEnv of EpisodeSeeds, re-seeded before
    every evaluation) plays episode e with seed first + e, at every evaluation."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    inner = _SeedRecorder()
    vec = DummyVecEnv([lambda: EpisodeSeeds(inner)])
    first = model_selection_seeds(4, 3).start
    for _ in range(2):  # two evaluations
        vec.seed(first)
        vec.reset()
        for _ in range(3):
            vec.step(np.array([0]))  # each step ends an episode; the vec env resets without a seed
    # per evaluation: 3 episodes, then the vector env's reset after the last one
    expected = [first, first + 1, first + 2, first + 3]
    assert inner.seeds == expected * 2
    assert all(s in MODEL_SELECTION for s in inner.seeds)


def test_episode_seeds_without_a_first_seed_stays_unseeded():
    env = EpisodeSeeds(_SeedRecorder())
    env.reset()
    env.reset()
    assert env.unwrapped.seeds == [None, None]
