"""The joint DeAOff MILP's solve time against N on ``evaluate.py multi``'s token steps.

    python benchmarks/bench_joint.py [--users 1,2,4,8,16] [--episodes 3] [--steps 8] [--seed 0]
                                     [--time-limit 10] [--no-relaxed]

Plays the held-out episodes of ``evaluate.py multi`` (the same environment configuration,
seeds ``2·10⁹ + 1000·S + e``, N phones kept busy, ``--steps`` token steps) with the joint
reference's decisions, and at every token step times ``solve_joint`` on the live users in
CPU seconds of this process (``time.process_time``, building the model and the greedy
start included; other jobs on the machine do not inflate it, but HiGHS's ``--time-limit``
is wall-clock).  Prints per N: the median / max CPU s, the steps solved to optimality and
those stopped at the time limit with their largest gap; and (unless ``--no-relaxed``) the
relaxed mode's CPU time and its certified gap to the LP bound (median / max).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agents.seeds import held_out_seeds  # noqa: E402
from deaoff_cli.evaluate_multi import _env  # noqa: E402
from solvers.joint import solve_joint  # noqa: E402


def run(n: int, episodes: int, steps: int, seed: int, time_limit_s: float, relaxed: bool) -> dict:
    cpu, gaps, status, rcpu, rgaps = [], [], [], [], []
    for ep in held_out_seeds(seed, episodes):
        env = _env({}, n, steps)
        env.reset(seed=int(ep))
        while env.agents:
            system = env.live_system()
            t0 = time.process_time()
            sol = solve_joint(system, time_limit_s=time_limit_s)
            cpu.append(time.process_time() - t0)
            status.append(sol.status)
            gaps.append(sol.gap)
            if relaxed:
                t0 = time.process_time()
                rel = solve_joint(system, mode="relaxed")
                rcpu.append(time.process_time() - t0)
                rgaps.append(rel.gap)
            env.step({a: env.encode(d) for a, d in zip(env.agents, sol.decisions)})
    limited = [g for g, s in zip(gaps, status) if s != "optimal"]
    return {"steps": len(cpu), "median": statistics.median(cpu), "max": max(cpu),
            "optimal": status.count("optimal"), "limited": len(limited), "gap": max(limited, default=0.0),
            "rmedian": statistics.median(rcpu) if rcpu else None, "rmax": max(rcpu) if rcpu else None,
            "rgap_med": statistics.median(rgaps) if rgaps else None, "rgap_max": max(rgaps) if rgaps else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", default="1,2,4,8,16", help="comma-separated N values")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=10.0, help="joint MILP time limit per step (wall s)")
    parser.add_argument("--no-relaxed", action="store_true", help="skip the relaxed mode")
    args = parser.parse_args()
    try:
        ns = [int(x) for x in args.users.split(",")]
        if any(n < 1 for n in ns) or args.episodes < 1 or args.steps < 1 or not args.time_limit > 0:
            raise ValueError
    except ValueError:
        print(f"bench_joint.py: --users must be integers >= 1, --episodes and --steps >= 1, --time-limit > 0; "
              f"got {args.users!r}, {args.episodes}, {args.steps}, {args.time_limit}", file=sys.stderr)
        sys.exit(2)
    import highspy

    highspy.Highs()  # its version banner, before the table
    print(f"\njoint solve on evaluate.py multi's steps ({args.episodes} episodes x {args.steps} steps per N, "
          f"time limit {args.time_limit:g} s wall; CPU s of this process)\n")
    print("| N | steps | joint CPU s median / max | optimal | at time limit (max gap) | "
          "relaxed CPU s median / max | relaxed gap median / max |")
    print("|---|---|---|---|---|---|---|")
    for n in ns:
        r = run(n, args.episodes, args.steps, args.seed, args.time_limit, not args.no_relaxed)
        rel = ("–", "–") if r["rmedian"] is None else (f"{r['rmedian']:.3f} / {r['rmax']:.3f}",
                                                       f"{r['rgap_med']:.1%} / {r['rgap_max']:.1%}")
        limited = f"{r['limited']} ({r['gap']:.1%})" if r["limited"] else "0"
        print(f"| {n} | {r['steps']} | {r['median']:.3f} / {r['max']:.3f} | {r['optimal']} | {limited} | "
              f"{rel[0]} | {rel[1]} |", flush=True)


if __name__ == "__main__":
    main()
