"""The Gymnasium environments ``DecoderOffload-v1`` and ``DecoderSplit-v1`` (registered on
import), their rendering and the reward reference.  The physics lives in :mod:`core`.

Action masks: ``gymnasium.make`` wraps the env, and the wrappers do not forward
``action_masks()``; call ``env.unwrapped.action_masks()`` (or
``env.get_wrapper_attr("action_masks")()``), or read ``info["action_mask"]`` from
``reset()`` and ``step()``.  SB3 vector envs and sb3-contrib's MaskablePPO find the
method by themselves (``env_method`` looks through the wrappers)."""
from __future__ import annotations

import gymnasium as gym

ENV_IDS = ("DecoderOffload-v1", "DecoderSplit-v1")


def _register() -> None:
    registry = gym.envs.registry
    if "DecoderOffload-v1" not in registry:
        gym.register(id="DecoderOffload-v1", entry_point="envs.offload_env:DecoderOffloadEnv")
    if "DecoderSplit-v1" not in registry:
        gym.register(id="DecoderSplit-v1", entry_point="envs.offload_env:DecoderSplitEnv")


_register()
from . import multi_user_register  # noqa: E402  (MultiUserShared-v0)

TRAINABLE_ENV_IDS = ENV_IDS + (multi_user_register.SHARED_ENV_ID,)
"""Every id train.py trains on: the single-user envs and the multi-user shared-policy view."""
