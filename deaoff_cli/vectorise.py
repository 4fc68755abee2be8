"""How train.py steps its training envs: how many, in one process or in subprocesses, and the
hyper-parameters that keep the rollout the YAML describes.

Why: with small MLP policies the time goes to the policy, called once per vec-env step
for all envs together.  Stepping many envs in one process (``DummyVecEnv``) batches those
calls: on the 2-core machine MaskablePPO on DecoderOffload-v1 trained at 1,140 steps per
CPU-second with 1 env, 1,700 with 2, 2,970 with 8, 3,320 with 16 and 2,890 with 32
(``benchmarks/bench_train.py``).  Subprocesses (``SubprocVecEnv``, one env each) add
pickling and pipe round-trips per step; they pay only when ``env.step`` itself is slow
(DecoderSplit-v1 solves DeAOff at every step).

Rules (``--vec-env auto``, ``--n-envs`` not given):

* the backend: ``subproc`` when one ``env.step`` of this env config takes at least
  :data:`SUBPROC_MIN_STEP_S` (measured on a probe env, random unmasked actions) and the
  machine has more than one CPU; ``dummy`` otherwise;
* the number of envs: on-policy algorithms (PPO, MaskablePPO) with ``dummy`` take the
  largest divisor of the rollout R = n_steps x n_envs (as the YAML gives them) that is at
  most :data:`MAX_AUTO_ENVS` and leaves n_steps = R / n_envs >= :data:`MIN_N_STEPS`
  (never fewer envs than the YAML's); otherwise the YAML's n_envs.

Whatever the number of envs, the rollout stays the YAML's: on-policy, ``n_steps`` becomes
R / n_envs (batch_size, which divides R, is unchanged); DQN, ``train_freq`` (vec-env steps
between updates) becomes train_freq x yaml_n_envs / n_envs, so the env steps per update
are the same.  A value set explicitly (``hyperparams.n_steps`` / ``train_freq`` in
--config) is kept as given.  R not divisible by the chosen n_envs is an error naming both.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from agents.algos import OFF_POLICY
from agents.hyperparams import ConfigError

VEC_ENVS = ("auto", "dummy", "subproc")
SUBPROC_MIN_STEP_S = 1e-3
"""env.step time above which subprocesses pay (DecoderOffload-v1 ≈ 0.15 ms, DecoderSplit-v1 ≈ 1.7 ms here)."""
MAX_AUTO_ENVS = 16
MIN_N_STEPS = 64
PROBE_STEPS = 30


@dataclass
class VecPlan:
    vec_env: str
    """dummy or subproc."""
    n_envs: int
    hyperparams: dict[str, Any]
    """With n_steps / train_freq rescaled to keep the rollout."""
    note: str
    """One line for the log: what was chosen and why."""


def env_step_s(make_env, env_id: str, env_config: Mapping[str, Any], steps: int = PROBE_STEPS, seed: int = 0) -> float:
    """Mean wall time of one ``env.step`` with random unmasked actions (seeded generator)."""
    env = make_env(env_id, env_config)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    total = 0.0
    for _ in range(steps):
        mask = env.unwrapped.action_masks() if hasattr(env.unwrapped, "action_masks") else None
        action = int(rng.choice(np.flatnonzero(mask))) if mask is not None else env.action_space.sample()
        t0 = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(action)
        total += time.perf_counter() - t0
        if terminated or truncated:
            env.reset()
    env.close()
    return total / steps


def plan(algo: str, hyperparams: Mapping[str, Any], yaml_n_envs: int, n_envs: int | None, vec_env: str,
         explicit: set[str], step_s=None) -> VecPlan:
    """The vectorisation of a run (see the module docstring).  ``explicit``: hyper-parameter
    keys the user set in --config; ``step_s``: a callable measuring env.step (auto only)."""
    if vec_env not in VEC_ENVS:
        raise ConfigError(f"--vec-env must be one of {', '.join(VEC_ENVS)}, got {vec_env!r}")
    hp = dict(hyperparams)
    on_policy = algo not in OFF_POLICY
    why = vec_env
    if vec_env == "auto":
        cpus = os.cpu_count() or 1
        measured = step_s() if (step_s is not None and cpus > 1) else 0.0
        vec_env = "subproc" if measured >= SUBPROC_MIN_STEP_S else "dummy"
        why = f"auto: env.step {measured * 1e3:.2f} ms {'>=' if vec_env == 'subproc' else '<'} " \
              f"{SUBPROC_MIN_STEP_S * 1e3:g} ms, {cpus} CPUs" if measured else f"auto: {cpus} CPU"
    if on_policy:
        rollout = int(hp["n_steps"]) * yaml_n_envs
        if n_envs is None:
            n_envs = yaml_n_envs
            if vec_env == "dummy" and "n_steps" not in explicit:
                fits = [k for k in range(yaml_n_envs, MAX_AUTO_ENVS + 1) if rollout % k == 0 and rollout // k >= MIN_N_STEPS]
                n_envs = max(fits, default=yaml_n_envs)
        if "n_steps" not in explicit and n_envs != yaml_n_envs:
            if rollout % n_envs:
                raise ConfigError(f"n_envs {n_envs}: the rollout of {rollout} steps (n_steps {hp['n_steps']} x n_envs "
                                  f"{yaml_n_envs} in configs/agents/{algo}.yaml) is not a multiple of {n_envs}; "
                                  "choose a divisor or set hyperparams.n_steps")
            hp["n_steps"] = rollout // n_envs
        size = f"rollout {hp['n_steps']} x {n_envs} = {hp['n_steps'] * n_envs} steps"
    else:
        n_envs = yaml_n_envs if n_envs is None else n_envs
        freq = hp.get("train_freq", 4)
        if isinstance(freq, int) and "train_freq" not in explicit and n_envs != yaml_n_envs:
            per_update = freq * yaml_n_envs
            if per_update % n_envs:
                raise ConfigError(f"n_envs {n_envs}: train_freq {freq} x n_envs {yaml_n_envs} = {per_update} env steps "
                                  f"per update (configs/agents/{algo}.yaml) is not a multiple of {n_envs}; "
                                  "choose a divisor or set hyperparams.train_freq")
            hp["train_freq"] = per_update // n_envs
        size = f"train_freq {hp.get('train_freq', freq)} x {n_envs} envs"
    if n_envs == 1:
        vec_env = "dummy"  # one env: nothing to run in parallel
    return VecPlan(vec_env, n_envs, hp, f"{n_envs} env(s) in {'one process' if vec_env == 'dummy' else 'subprocesses'} "
                                        f"({why}), {size}")
