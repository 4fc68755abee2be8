"""The Gymnasium environments ``DecoderOffload-v0`` and ``DecoderSplit-v0`` (registered on
import), their rendering and the reward reference.  The physics lives in :mod:`core`."""
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
