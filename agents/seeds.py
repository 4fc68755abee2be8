"""Every env seed a run uses, from one home: three disjoint ranges.

An agent figure is honest only if the episodes it is measured on were never seen while
training, nor used to pick the checkpoint.  So the seeds fall into three ranges that
cannot meet, whatever the run seed:

| Range | Seeds | Used by |
|-------|-------|---------|
| :data:`TRAINING` | [0, 10⁹) | training env i of a run: ``run_seed + i``; after ``--resume`` a fresh base drawn from ``SeedSequence([run_seed, num_timesteps])`` (still in the range) ``+ i`` |
| :data:`MODEL_SELECTION` | [10⁹, 2·10⁹) | train.py's periodic evaluation (the best checkpoint is chosen on it): episode e ``= 10⁹ + 1000·run_seed + e``, the same episodes at every evaluation |
| :data:`HELD_OUT` | [2·10⁹, 3·10⁹) | ``evaluate.py agents --seed S``: episode e ``= 2·10⁹ + 1000·S + e`` |

Run seeds lie in :data:`RUN_SEEDS` (0 ≤ seed < 10⁶), a run has at most :data:`MAX_ENVS`
training envs and an evaluation at most :data:`MAX_EPISODES` episodes; every function
raises ``ValueError`` outside these bounds.  ``tests/test_seeds.py`` checks the ranges
are disjoint for every allowed run seed.  A run directory records the seeds it used
(``config.yaml``, key ``seeds``).  The model's own seed (network initialisation,
exploration) is the run seed itself; it seeds torch and the policy, not an env.
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

RUN_SEEDS = range(0, 1_000_000)
"""Allowed run seeds (``--seed``) of train.py, evaluate.py and main.py."""
MAX_ENVS = 1_000
"""Most training envs per run (``--n-envs``)."""
EPISODE_BLOCK = 1_000
"""Seeds reserved per run seed for one evaluation's episodes."""
MAX_EPISODES = EPISODE_BLOCK - 1
"""Most episodes per evaluation: a vector env resets once more after the last episode,
and that reset's seed must stay in the run seed's block too."""

TRAINING = range(0, 1_000_000_000)
MODEL_SELECTION = range(1_000_000_000, 2_000_000_000)
HELD_OUT = range(2_000_000_000, 3_000_000_000)
RANGES = {"training": TRAINING, "model_selection": MODEL_SELECTION, "held_out": HELD_OUT}


def _check_int(value: Any, name: str, allowed: range) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or int(value) not in allowed:
        raise ValueError(f"{name} must be an integer in [{allowed.start}, {allowed.stop - 1}], got {value!r}")
    return int(value)


def check_run_seed(seed: Any, name: str = "seed") -> int:
    """``seed`` as an int, or ValueError naming the allowed range."""
    return _check_int(seed, name, RUN_SEEDS)


def training_seeds(run_seed: int, n_envs: int, num_timesteps: int = 0) -> range:
    """Seeds of the training envs of one session (env i gets element i).

    The first session (``num_timesteps == 0``) starts at the run seed; a resumed session
    draws its base from ``SeedSequence([run_seed, num_timesteps])``, so it sees new
    episodes, reproducibly, and stays in :data:`TRAINING`.
    """
    run_seed = check_run_seed(run_seed)
    n_envs = _check_int(n_envs, "n_envs", range(1, MAX_ENVS + 1))
    num_timesteps = _check_int(num_timesteps, "num_timesteps", range(0, 2**63))
    if num_timesteps == 0:
        base = run_seed
    else:
        draw = int(np.random.SeedSequence([run_seed, num_timesteps]).generate_state(1, dtype=np.uint64)[0])
        base = draw % (len(TRAINING) - MAX_ENVS)
    return range(TRAINING.start + base, TRAINING.start + base + n_envs)


def _block(start: int, run_seed: int, episodes: int) -> range:
    run_seed = check_run_seed(run_seed)
    episodes = _check_int(episodes, "episodes", range(1, MAX_EPISODES + 1))
    first = start + EPISODE_BLOCK * run_seed
    return range(first, first + episodes)


def model_selection_seeds(run_seed: int, episodes: int) -> range:
    """Seeds of the episodes of train.py's periodic evaluation (the same at every evaluation)."""
    return _block(MODEL_SELECTION.start, run_seed, episodes)


def held_out_seeds(seed: int, episodes: int) -> range:
    """Seeds of the episodes of ``evaluate.py agents --seed seed --episodes episodes``."""
    return _block(HELD_OUT.start, seed, episodes)


def span(seeds: range) -> list[int]:
    """``[first, last]`` of a seed range, for config files."""
    return [seeds.start, seeds.stop - 1]


class EpisodeSeeds(gym.Wrapper):
    """Give every episode a seed: ``reset(seed=s)`` plays seed s, and each later
    ``reset()`` without a seed plays the previous seed + 1.

    A vector env passes a seed only to its first reset (``VecEnv.seed(s)``), then resets
    without one; with this wrapper the periodic evaluation's episode e has seed s + e,
    a seed of :func:`model_selection_seeds`, instead of a continuation of the random
    stream.  ``seeds_used`` lists every seed this env was reset with.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._next_seed: int | None = None
        self.seeds_used: list[int | None] = []

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is None and self._next_seed is not None:
            seed = self._next_seed
        self._next_seed = None if seed is None else int(seed) + 1
        self.seeds_used.append(seed)
        return self.env.reset(seed=seed, options=options)
