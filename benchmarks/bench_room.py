"""How much room a world leaves for planning: the clairvoyant plan against the re-planning
baselines, on the same held-out episodes as ``evaluate.py agents``.

    python benchmarks/bench_room.py [--episodes 30] [--seed 0] [--env-config JSON] [--label NAME]

Plays the myopic optimum (DeAOff on every token as it stands), the one-step lookahead and
all-device on each episode, records the episode's snapshots (the myopic run's: with
``thermal`` on, the heat of its plan) and solves the clairvoyant split-plan DP
(:func:`solvers.clairvoyant.clairvoyant_plan`) on them.  Prints one line: pooled cost of
each method and of the clairvoyant plan over the myopic optimum's, and the room below the
best of the three baselines, 1 − Σ clairvoyant / Σ best.  (``evaluate.py agents
--clairvoyant`` gives the same yardstick with every baseline; this is the quick version
for comparing worlds.)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--env-config", default="{}", help="EnvConfig overrides (inline JSON)")
    p.add_argument("--label", default="")
    args = p.parse_args(argv)
    import gymnasium as gym

    import envs  # noqa: F401
    from agents.seeds import held_out_seeds
    from envs.baselines import one_step_lookahead
    from solvers.clairvoyant import clairvoyant_plan, episode_contexts

    try:
        cfg = json.loads(args.env_config)
        env = gym.make("DecoderOffload-v1", config=cfg)
    except (ValueError, TypeError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    u = env.unwrapped
    c = u.config
    ctx = episode_contexts(c.prompt_len, c.new_tokens, c.include_prefill)
    totals = {"myopic": 0.0, "lookahead": 0.0, "all-device": 0.0, "clairvoyant": 0.0}
    t0 = time.process_time()
    for s in held_out_seeds(args.seed, args.episodes):
        for name in ("myopic", "lookahead", "all-device"):
            env.reset(seed=s)
            while u.token < u.num_tokens:
                if name == "myopic":
                    plan = u.myopic_placement
                elif name == "lookahead":
                    plan = one_step_lookahead(u)
                else:
                    from core.instance import Placement
                    plan = Placement([0] * u.num_nodes)
                totals[name] += u.play_token(plan)["cost"]
            if name == "myopic":
                snaps = list(u.snapshots)
        totals["clairvoyant"] += clairvoyant_plan(u.tokens, snaps, ctx, w_time_per_s=c.latency_weight,
                                                  w_energy_per_j=c.energy_weight).cost
    base = totals["myopic"]
    best = min(totals[k] for k in ("myopic", "lookahead", "all-device"))
    parts = " ".join(f"{k} {v / base:.4f}" for k, v in totals.items())
    print(f"{args.label or args.env_config}: {args.episodes} episodes; pooled vs myopic: {parts}; "
          f"room below the best baseline {100 * (1 - totals['clairvoyant'] / best):.2f} %; "
          f"{time.process_time() - t0:.0f} s CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
