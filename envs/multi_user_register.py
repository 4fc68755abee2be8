"""Gymnasium registration of the parameter-sharing view of ``MultiUserOffload-v0``
(:class:`envs.multi_user.SharedPolicyEnv`) as ``MultiUserShared-v0``.  The PettingZoo
environment itself has no registry: make it with ``envs.multi_user.parallel_env()``."""
from __future__ import annotations

import gymnasium as gym

SHARED_ENV_ID = "MultiUserShared-v0"


def config_class(env_id: str):
    """The config dataclass of a trainable env id (``from_dict`` / ``to_dict``)."""
    if env_id == SHARED_ENV_ID:
        from .multi_user import MultiUserConfig
        return MultiUserConfig
    from .offload_env import EnvConfig
    return EnvConfig

if SHARED_ENV_ID not in gym.registry:
    gym.register(id=SHARED_ENV_ID, entry_point="envs.multi_user:SharedPolicyEnv")
