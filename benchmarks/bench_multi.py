"""Many users on the shared edge: the joint reference against the selfish optimum and the
heuristics, and MultiUserOffload-v0's step rate, against the number of users N.

    python benchmarks/bench_multi.py [--users 1,2,4,8,16] [--seeds 3] [--models llama-3.2-1b]
                                     [--objective weighted|slo] [--time-limit 20] [--env-steps 200]
                                     [--env-only] [--plot cost_vs_n.png]

One token step per (N, seed) on the ``multi-user`` scenario (two shared batched edges over
5G NR): N requests of the given models (drawn uniformly), prompt lengths uniform in
16..512, distance factors uniform in 0.5..3, each request in its prefill with probability
1/2 and otherwise at a decode token 1..64 after its prompt (caches not yet placed: no
migration), mean channel; every draw from ``numpy.random.default_rng(seed)``.  Costs are
C = T + E (w_T = 1 /s, w_E = 1 /J) per user (``--objective slo``: C = E + 1 J per token over
its target, TTFT 200 ms / TPOT 50 ms); "total" is Σ_u C_u, averaged over the seeds;
"Jain" is Jain's index of the per-user costs (1 = equal), averaged over seeds.  The joint
reference is the MILP of ``solvers.joint`` (HiGHS, one thread; its time includes building
the model and the greedy start); its solve time is CPU time of this process
(``time.process_time``), median and max over the seeds (HiGHS's ``--time-limit`` is
wall-clock).  ``benchmarks/bench_joint.py`` times it on ``evaluate.py multi``'s steps.

Env rate: ``MultiUserOffload-v0`` kept full at N live requests (initial N, arrivals N per
step, mean 64 new tokens; the default three models), uniformly random unmasked actions; only
``step`` (which returns every agent's observation and mask) is timed, in CPU time of this
process (``time.process_time``: other jobs on the machine do not inflate it).  Printed: env
steps/s, agent-steps/s and CPU ms per agent-step; if the step cost grows linearly in N the
last is flat.  ``--env-only`` prints only this table.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.multi import MultiUserSystem, User, UserConfig, fairness  # noqa: E402
from core.system import load_scenario  # noqa: E402
from solvers.joint import METHODS, run_method  # noqa: E402


def make_system(n: int, seed: int, models: list[str], scenario: str = "multi-user",
                objective: str = "weighted") -> MultiUserSystem:
    rng = np.random.default_rng(seed)
    scen = load_scenario(scenario)
    users = []
    for _ in range(n):
        model = models[int(rng.integers(len(models)))]
        prompt = int(rng.integers(16, 513))
        scale = float(rng.uniform(0.5, 3.0))
        prefill = bool(rng.integers(2))
        user = User(UserConfig(model=model, prompt_len=prompt, new_tokens=64, distance_scale=scale), scen,
                    include_prefill=prefill)
        if not prefill:
            user.context = prompt + int(rng.integers(1, 65))
            user.refresh()
        users.append(user)
    return MultiUserSystem(scen, users, objective=objective)


def env_rate(n: int, steps: int, models: list[str] | None = None, seed: int = 0) -> tuple[float, float]:
    """(env steps per CPU second, mean live agents per step) of ``steps`` random steps at N = n."""
    from envs.multi_user import parallel_env

    cfg = {"max_devices": n, "initial_users": n, "arrival_rate_per_step": float(n), "mean_new_tokens": 64.0,
           "max_steps": 10_000, "max_requests": 10_000}
    if models:
        cfg["models"] = tuple(models)
    env = parallel_env(cfg)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    busy, live = 0.0, 0
    for _ in range(steps):
        acts = {a: int(rng.choice(np.flatnonzero(obs[a]["action_mask"]))) for a in env.agents}
        live += len(acts)
        t0 = time.process_time()
        obs, *_ = env.step(acts)
        busy += time.process_time() - t0
    return steps / busy, live / steps


def env_table(ns: list[int], steps: int) -> None:
    print(f"\nMultiUserOffload-v0 step rate (default models, random unmasked actions, {steps} steps per N, CPU time)\n")
    print("| N | live agents / step | env steps/s | agent-steps/s | CPU ms per agent-step |")
    print("|---|---|---|---|---|")
    for n in ns:
        rate, live = env_rate(n, steps)
        print(f"| {n} | {live:.1f} | {rate:.1f} | {rate * live:.1f} | {1e3 / (rate * live):.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", default="1,2,4,8,16", help="comma-separated N values")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--models", default="llama-3.2-1b", help="comma-separated model presets")
    parser.add_argument("--time-limit", type=float, default=20.0, help="joint MILP time limit (s)")
    parser.add_argument("--env-steps", type=int, default=200, help="env steps timed per N (0: skip)")
    parser.add_argument("--plot", default=None, help="write total cost and Jain's index against N to this PNG")
    parser.add_argument("--objective", default="weighted", choices=("weighted", "slo"))
    parser.add_argument("--env-only", action="store_true", help="only the environment step-rate table")
    args = parser.parse_args()
    try:
        ns = [int(x) for x in args.users.split(",")]
        if any(n < 1 for n in ns) or args.seeds < 1:
            raise ValueError
    except ValueError:
        print(f"bench_multi.py: --users must be integers >= 1 and --seeds >= 1, got {args.users!r}", file=sys.stderr)
        sys.exit(2)
    if args.env_steps < 0 or (args.env_only and args.env_steps == 0):
        print(f"bench_multi.py: --env-steps must be >= 1 with --env-only (>= 0 otherwise), got {args.env_steps}",
              file=sys.stderr)
        sys.exit(2)
    if args.env_only:
        env_table(ns, args.env_steps)
        return
    models = args.models.split(",")
    what = "C = T + E" if args.objective == "weighted" else "C = E + 1 J per token over its TTFT/TPOT target"
    print(f"multi-user scenario, models {models}, {args.seeds} seed(s) per N, {what} per user\n")
    print("| N | method | total C | per-user mean | per-user p95 | SLO violations | Jain | vs joint |")
    print("|---|---|---|---|---|---|---|---|")
    summary = []
    curves: dict[str, list[tuple[float, float]]] = {m: [] for m in METHODS}
    for n in ns:
        rows = {m: [] for m in METHODS}
        times, statuses = [], []
        for seed in range(args.seeds):
            system = make_system(n, seed, models, objective=args.objective)
            for m in METHODS:
                cpu0 = time.process_time()
                sol = run_method(system, m, time_limit_s=args.time_limit if m == "joint" else None)
                cpu_s = time.process_time() - cpu0
                rows[m].append((sol.result.total_cost, {**fairness(sol.result.costs),
                                                        "viol": float(np.mean(sol.result.violations))}))
                if m == "joint":
                    times.append(cpu_s)
                    statuses.append(sol.status if sol.status == "optimal" else f"{sol.status} gap {sol.gap:.1%}")
        joint_total = statistics.mean(t for t, _ in rows["joint"])
        for m in METHODS:
            total = statistics.mean(t for t, _ in rows[m])
            mean = statistics.mean(f["mean"] for _, f in rows[m])
            p95 = statistics.mean(f["p95"] for _, f in rows[m])
            jain = statistics.mean(f["jain"] for _, f in rows[m])
            viol = statistics.mean(f["viol"] for _, f in rows[m])
            print(f"| {n} | {m} | {total:.4f} | {mean:.4f} | {p95:.4f} | {viol * 100:.0f}% | {jain:.3f} | "
                  f"{(total / joint_total - 1) * 100:+.1f}% |")
            curves[m].append((total, jain))
        gain = 1 - joint_total / statistics.mean(t for t, _ in rows["selfish"])
        summary.append((n, gain, statistics.median(times), max(times), sorted(set(statuses))))
    print("\n| N | joint vs selfish (total) | joint solve median CPU s | max CPU s | joint status |")
    print("|---|---|---|---|---|")
    for n, gain, med, mx, st in summary:
        print(f"| {n} | {gain * 100:.1f}% lower | {med:.3f} | {mx:.3f} | {', '.join(st)} |")
    if args.env_steps:
        env_table(ns, args.env_steps)
    if args.plot:
        plot(ns, curves, args.plot)


def plot(ns: list[int], curves: dict[str, list[tuple[float, float]]], path: str) -> None:
    """The same figure as ``evaluate.py multi`` (total cost and Jain's index against N)."""
    from deaoff_cli.evaluate_multi import plot as plot_summary

    plot_summary([{"method": m, "N": n, "total_cost": c, "jain": j}
                  for m, pts in curves.items() for n, (c, j) in zip(ns, pts)], Path(path))
    print(f"plot written to {path}")


if __name__ == "__main__":
    main()
