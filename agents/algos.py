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
