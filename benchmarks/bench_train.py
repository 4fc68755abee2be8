"""Steps per CPU-second of an env (random unmasked actions) and of training an agent on it
with its configs/agents YAML, one torch thread (as train.py runs).

    python benchmarks/bench_train.py [--algo dqn] [--env DecoderSplit-v1] [--env-steps N] [--train-steps N]
                                     [--compare-algo maskable_ppo] [--compare-steps N] [--n-envs K]
                                     [--vec-env auto|dummy|subproc]

Then training steps/s of --compare-algo on DecoderOffload-v1 and on CartPole-v1
with the same settings (configs/agents YAML for DecoderOffload-v1, the vectorisation
train.py picks, or --n-envs / --vec-env), in the same run, and the share of the training
wall time spent in env.step.  Target: DecoderOffload-v1 >= 0.9 x CartPole-v1.  CartPole
has no action masks: for MaskablePPO it gets an all-true ``action_masks()``, so both runs
do the same work per step apart from the env itself (and the Dict observation's
flattening on our side).

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


class StepTimer(gym.Wrapper):
    """Adds the wall time of every ``step`` and ``reset`` to a shared counter."""

    def __init__(self, env: gym.Env, counter: list[float]):
        super().__init__(env)
        self.counter = counter

    def step(self, action):
        t0 = time.perf_counter()
        try:
            return self.env.step(action)
        finally:
            self.counter[0] += time.perf_counter() - t0

    def reset(self, **kwargs):
        t0 = time.perf_counter()
        try:
            return self.env.reset(**kwargs)
        finally:
            self.counter[0] += time.perf_counter() - t0

    def action_masks(self):
        unwrapped = self.env.unwrapped
        if hasattr(unwrapped, "action_masks"):
            return unwrapped.action_masks()
        return np.ones(self.action_space.n, dtype=bool)


def compare_rate(algo: str, env_id: str, steps: int, n_envs: int | None, vec_env: str,
                 seed: int = 0) -> dict[str, float]:
    """Train ``algo`` with DecoderOffload-v1's settings and train.py's vectorisation on ``env_id``:
    steps per wall second and per CPU-second (main process) and the share of wall time in env.step
    (DummyVecEnv only: with subprocesses the steps run elsewhere)."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    from deaoff_cli import vectorise
    from deaoff_cli.train import make_env

    hp = load_hyperparams(algo, "DecoderOffload-v1")
    yaml_n_envs = hp.pop("n_envs", 1)
    vec = vectorise.plan(algo, hp, yaml_n_envs, n_envs, vec_env, set(),
                         step_s=lambda: vectorise.env_step_s(make_env, "DecoderOffload-v1", {}))
    counter = [0.0]
    timed = vec.vec_env == "dummy"

    def build():
        env = gym.make(env_id) if env_id == "CartPole-v1" else make_env(env_id, {})
        return StepTimer(env, counter) if timed else env

    cls = DummyVecEnv if vec.vec_env == "dummy" else SubprocVecEnv
    venv = make_vec_env(build, n_envs=vec.n_envs, seed=seed, vec_env_cls=cls)
    policy = "MultiInputPolicy" if isinstance(venv.observation_space, gym.spaces.Dict) else "MlpPolicy"
    model = ALGOS[algo](policy, venv, seed=seed, device="cpu", **to_model_kwargs(algo, vec.hyperparams))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    model.learn(steps)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    venv.close()
    return {"wall": model.num_timesteps / wall, "cpu": model.num_timesteps / cpu,
            "env_share": counter[0] / wall if timed else float("nan"), "note": vec.note}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", default="dqn", choices=list(ALGOS))
    parser.add_argument("--env", default="DecoderSplit-v1", choices=list(envs.ENV_IDS))
    parser.add_argument("--env-steps", type=int, default=3000)
    parser.add_argument("--train-steps", type=int, default=5000)
    parser.add_argument("--compare-algo", default="maskable_ppo", choices=["ppo", "maskable_ppo"])
    parser.add_argument("--compare-steps", type=int, default=16384, help="0: skip the CartPole comparison")
    parser.add_argument("--n-envs", type=int, help="comparison: training envs (default: train.py's choice)")
    parser.add_argument("--vec-env", default="auto", choices=["auto", "dummy", "subproc"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    cpu, wall = env_rate(args.env, args.env_steps)
    print(f"{args.env} env.step, random unmasked actions: {cpu:,.0f} steps per CPU-second "
          f"({wall:,.0f} per wall second)")
    cpu, wall = train_rate(args.algo, args.env, args.train_steps)
    print(f"{args.algo} training on {args.env} (configs/agents/{args.algo}.yaml, 1 env): {cpu:,.0f} steps per "
          f"CPU-second ({wall:,.0f} per wall second)")
    if args.compare_steps <= 0:
        return
    ours = compare_rate(args.compare_algo, "DecoderOffload-v1", args.compare_steps, args.n_envs, args.vec_env)
    cart = compare_rate(args.compare_algo, "CartPole-v1", args.compare_steps, args.n_envs, args.vec_env)
    print(f"\n{args.compare_algo} training, DecoderOffload-v1 settings ({ours['note']}), {args.compare_steps:,} steps:")
    for name, r in (("DecoderOffload-v1", ours), ("CartPole-v1", cart)):
        share = "" if r["env_share"] != r["env_share"] else f", env.step {100 * r['env_share']:.1f}% of the wall time"
        print(f"  {name:18s} {r['wall']:8,.0f} steps/s ({r['cpu']:,.0f} per CPU-second of the main process){share}")
    print(f"  ratio DecoderOffload-v1 / CartPole-v1: {ours['wall'] / cart['wall']:.2f} x wall, "
          f"{ours['cpu'] / cart['cpu']:.2f} x CPU  (target >= 0.9 x)")


if __name__ == "__main__":
    main()
