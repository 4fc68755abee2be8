"""Steps per CPU-second of an env (random unmasked actions) and of training an agent on it
with its configs/agents YAML, one torch thread (as train.py runs).

    python benchmarks/bench_train.py [--algo dqn] [--env DecoderSplit-v0] [--env-steps N] [--train-steps N]

CPU time (``time.process_time``) rather than wall time, so a busy machine does not
deflate the figure; wall-time rates are printed beside it.  The figures quoted in
``configs/agents/*.yaml`` come from this script.
"""
from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch

import envs  # noqa: F401  (registers the environments)
from agents.algos import ALGOS
from agents.hyperparams import load_hyperparams, to_model_kwargs


def env_rate(env_id: str, steps: int, seed: int = 0) -> tuple[float, float]:
    """(steps per CPU-second, steps per wall second) of ``env.step`` with random unmasked actions."""
    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(steps):
        action = int(rng.choice(np.flatnonzero(env.unwrapped.action_masks())))
        if env.step(action)[2]:
            env.reset()
    return steps / (time.process_time() - cpu0), steps / (time.perf_counter() - wall0)


def train_rate(algo: str, env_id: str, steps: int, seed: int = 0) -> tuple[float, float]:
    """(steps per CPU-second, steps per wall second) of ``model.learn(steps)`` on one env."""
    from stable_baselines3.common.env_util import make_vec_env

    hp = load_hyperparams(algo, env_id)
    hp.pop("n_envs", None)
    vec = make_vec_env(lambda: gym.make(env_id), n_envs=1, seed=seed)
    model = ALGOS[algo]("MultiInputPolicy", vec, seed=seed, device="cpu", **to_model_kwargs(algo, hp))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    model.learn(steps)
    return model.num_timesteps / (time.process_time() - cpu0), model.num_timesteps / (time.perf_counter() - wall0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", default="dqn", choices=list(ALGOS))
    parser.add_argument("--env", default="DecoderSplit-v0", choices=list(envs.ENV_IDS))
    parser.add_argument("--env-steps", type=int, default=3000)
    parser.add_argument("--train-steps", type=int, default=5000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cpu, wall = env_rate(args.env, args.env_steps)
    print(f"{args.env} env.step, random unmasked actions: {cpu:,.0f} steps per CPU-second "
          f"({wall:,.0f} per wall second)")
    cpu, wall = train_rate(args.algo, args.env, args.train_steps)
    print(f"{args.algo} training on {args.env} (configs/agents/{args.algo}.yaml, 1 env): {cpu:,.0f} steps per "
          f"CPU-second ({wall:,.0f} per wall second)")


if __name__ == "__main__":
    main()
