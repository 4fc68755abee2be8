"""Raw env.step throughput through gymnasium.make, DeAOff reference included, against
CartPole-v1 measured in the same process.

    python benchmarks/bench_env.py [--steps N] [--config JSON]

Target: DecoderOffload-v1 at >= 0.25 x CartPole's steps per second.
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
from core.instance import Placement


def steps_per_second(env: gym.Env, steps: int, masked: bool, seed: int = 0) -> tuple[float, int]:
    """Steps per second of ``env.step`` (and the ``reset`` at each episode end): only those
    calls are timed, the same way for every env, so the policy's own work (drawing an
    action among the unmasked ones) is not charged to the environment."""
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    episodes = 0
    # pre-draw uniforms so the policy costs the same for every env
    draws = rng.random(steps)
    clock = time.perf_counter
    busy = 0.0
    for n in range(steps):
        if masked:
            allowed = np.flatnonzero(env.unwrapped.action_masks())
            action = int(allowed[int(draws[n] * len(allowed))])
        else:
            action = int(draws[n] * env.action_space.n)
        t0 = clock()
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            episodes += 1
            env.reset()
        busy += clock() - t0
    return steps / busy, episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--config", type=json.loads, default=None, help="env config as JSON")
    parser.add_argument("--sb3", type=int, default=0, metavar="STEPS",
                        help="also train MaskablePPO for STEPS and report the env's share of the time")
    args = parser.parse_args()
    cart, _ = steps_per_second(gym.make("CartPole-v1"), args.steps, masked=False)
    print(f"{'env':<22}{'steps/s':>12}{'vs CartPole':>14}{'ref solves':>12}{'solve ms':>10}")
    print(f"{'CartPole-v1':<22}{cart:>12,.0f}{1.0:>14.3f}")
    for env_id in envs.ENV_IDS:
        env = gym.make(env_id, config=args.config)
        steps = args.steps if env_id == "DecoderOffload-v1" else max(args.steps // 20, 200)
        sps, _ = steps_per_second(env, steps, masked=True)
        u = env.unwrapped
        print(f"{env_id:<22}{sps:>12,.0f}{sps / cart:>14.3f}{u.ref_solves:>12}"
              f"{1e3 * u.ref_time_s / max(u.ref_solves, 1):>10.2f}")
    # the env's own cost: the same run with a trivial reference (everything on the device)
    try:
        env = gym.make("DecoderOffload-v1", config=args.config,
                       reference_fn=lambda inst: Placement([0] * inst.num_nodes))
        sps, _ = steps_per_second(env, args.steps, masked=True)
        print(f"{'  trivial reference':<22}{sps:>12,.0f}{sps / cart:>14.3f}"
              f"{'':>12}{'':>10}   (all-device plan instead of DeAOff: the env's own cost)")
    except ValueError as exc:  # the model does not fit the device in this config
        print(f"  trivial reference: not measured ({exc})")
    print("\ntarget: DecoderOffload-v1 >= 0.25 x CartPole-v1 (reference solves included)")
    if args.sb3:
        sps, share = sb3_share(args.sb3, args.config)
        print(f"\nMaskablePPO training on DecoderOffload-v1 ({args.sb3} steps, CPU, 1 env): "
              f"{sps:,.0f} steps/s; env.step (reference included) is {100 * share:.1f}% of the wall time")


class _StepTimer(gym.Wrapper):
    """Accumulates the wall time spent inside the wrapped env's step and reset."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.busy = 0.0

    def step(self, action):
        t0 = time.perf_counter()
        out = self.env.step(action)
        self.busy += time.perf_counter() - t0
        return out

    def reset(self, **kwargs):
        t0 = time.perf_counter()
        out = self.env.reset(**kwargs)
        self.busy += time.perf_counter() - t0
        return out

    def action_masks(self):
        return self.env.unwrapped.action_masks()


def sb3_share(steps: int, config: dict | None) -> tuple[float, float]:
    """Train MaskablePPO (the project's default hyperparameters) for ``steps`` and return
    (training steps/s, share of the wall time spent in the environment)."""
    import torch
    from sb3_contrib import MaskablePPO

    from agents.hyperparams import load_hyperparams, to_model_kwargs

    torch.set_num_threads(1)
    env = _StepTimer(gym.make("DecoderOffload-v1", config=config))
    hp = to_model_kwargs("maskable_ppo", load_hyperparams("maskable_ppo", "DecoderOffload-v1"))
    hp.setdefault("policy", "MultiInputPolicy")
    model = MaskablePPO(env=env, seed=0, device="cpu", verbose=0, **hp)
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps)
    wall = time.perf_counter() - t0
    return model.num_timesteps / wall, env.busy / wall


if __name__ == "__main__":
    main()
