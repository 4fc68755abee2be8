"""Raw env.step throughput through gymnasium.make, DeAOff reference included, against
CartPole-v1 measured in the same process.

    python benchmarks/bench_env.py [--steps N] [--config JSON]

Target (issue 4): DecoderOffload-v0 at >= 0.25 x CartPole's steps per second.
Actions are uniformly random among the unmasked ones (drawn from a seeded generator);
every token's DeAOff reference is solved for real (its cache rarely hits under
dynamics: the channel differs every token).
"""
from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers the environments)


def steps_per_second(env: gym.Env, steps: int, masked: bool, seed: int = 0) -> tuple[float, int]:
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    episodes = 0
    # pre-draw uniforms so the policy costs the same for every env
    draws = rng.random(steps)
    t0 = time.perf_counter()
    for n in range(steps):
        if masked:
            allowed = np.flatnonzero(env.unwrapped.action_masks())
            action = int(allowed[int(draws[n] * len(allowed))])
        else:
            action = int(draws[n] * env.action_space.n)
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            episodes += 1
            env.reset()
    return steps / (time.perf_counter() - t0), episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--config", type=json.loads, default=None, help="env config as JSON")
    args = parser.parse_args()
    cart, _ = steps_per_second(gym.make("CartPole-v1"), args.steps, masked=False)
    print(f"{'env':<22}{'steps/s':>12}{'vs CartPole':>14}{'ref solves':>12}{'solve ms':>10}")
    print(f"{'CartPole-v1':<22}{cart:>12,.0f}{1.0:>14.3f}")
    for env_id in envs.ENV_IDS:
        env = gym.make(env_id, config=args.config)
        steps = args.steps if env_id == "DecoderOffload-v0" else max(args.steps // 20, 200)
        sps, _ = steps_per_second(env, steps, masked=True)
        u = env.unwrapped
        print(f"{env_id:<22}{sps:>12,.0f}{sps / cart:>14.3f}{u.ref_solves:>12}"
              f"{1e3 * u.ref_time_s / max(u.ref_solves, 1):>10.2f}")
    print("\ntarget: DecoderOffload-v0 >= 0.25 x CartPole-v1 (reference solves included)")


if __name__ == "__main__":
    main()
