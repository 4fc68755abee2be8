"""The Gymnasium environments ``DecoderOffload-v0`` and ``DecoderSplit-v0`` (registered on
import), their rendering and the reward reference.  The physics lives in :mod:`core`.

Action masks: ``gymnasium.make`` wraps the env, and the wrappers do not forward
``action_masks()``; call ``env.unwrapped.action_masks()`` (or
``env.get_wrapper_attr("action_masks")()``), or read ``info["action_mask"]`` from
``reset()`` and ``step()``.  SB3 vector envs and sb3-contrib's MaskablePPO find the
method by themselves (``env_method`` looks through the wrappers)."""
from __future__ import annotations

import gymnasium as gym

ENV_IDS = ("DecoderOffload-v0", "DecoderSplit-v0")


def _register() -> None:
    registry = gym.envs.registry
    if "DecoderOffload-v0" not in registry:
        gym.register(id="DecoderOffload-v0", entry_point="envs.offload_env:DecoderOffloadEnv")
    if "DecoderSplit-v0" not in registry:
        gym.register(id="DecoderSplit-v0", entry_point="envs.offload_env:DecoderSplitEnv")


_register()
