"""The algorithms ``train.py`` knows, by the name used on the command line."""
from __future__ import annotations

from sb3_contrib import MaskablePPO
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm

ALGOS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "dqn": DQN, "maskable_ppo": MaskablePPO}

MASKABLE = frozenset({"maskable_ppo"})
"""Algorithms that read ``action_masks()`` (rollouts and evaluation)."""

OFF_POLICY = frozenset({"dqn"})
"""Algorithms with a replay buffer (saved next to the model so a resumed run keeps it)."""


def planned_timesteps(model: BaseAlgorithm, steps: int) -> tuple[int, str]:
    """How many env steps ``model.learn(steps)`` really takes, and why.

    SB3 stops only between collection rounds: PPO collects whole rollouts of
    ``n_envs × n_steps`` steps, DQN rounds of ``n_envs × train_freq`` steps (when
    ``train_freq`` counts steps), so the run ends at the first multiple at or above
    ``steps``.  With ``train_freq`` in episodes the count is not known in advance:
    ``steps`` is returned.
    """
    from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
    from stable_baselines3.common.type_aliases import TrainFrequencyUnit

    if isinstance(model, OnPolicyAlgorithm):
        unit = model.n_steps * model.n_envs
        why = f"{type(model).__name__} collects whole rollouts of {model.n_envs} env(s) x {model.n_steps} steps"
    elif getattr(model, "train_freq", None) is not None and model.train_freq.unit == TrainFrequencyUnit.STEP:
        unit = model.train_freq.frequency * model.n_envs
        why = (f"{type(model).__name__} collects rounds of {model.n_envs} env(s) x "
               f"{model.train_freq.frequency} steps")
    else:
        return steps, "unknown"
    return -(-steps // unit) * unit, why
