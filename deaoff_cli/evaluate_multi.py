"""``evaluate.py multi``: many users on the shared edge, the joint reference against the
selfish optimum, the heuristics and a trained shared policy, against the number of users N.

    python evaluate.py multi --out DIR [--users 1,2,4,8,16] [--episodes 3] [--steps 8]
                             [--seed S] [--model RUN_DIR [--checkpoint final|best]]
                             [--methods joint,selfish,...] [--time-limit 10] [--env-config MAP]

For each N and each held-out episode e (seed ``2·10⁹ + 1000·S + e``, agents/seeds.py: never
seen in training nor in checkpoint selection), ``MultiUserOffload-v0`` is played with N
phones kept busy (``max_devices = initial_users = N``, ``arrival_rate_per_step = N``: a
freed phone is refilled at once, mostly) for ``--steps`` token steps, once per method.
The environment's draws (requests, channels) do not depend on the decisions, so every
method plays the same requests under the same channels.  At every token step each method
decides for all live users:

* ``joint`` (the reference): the joint MILP of ``solvers.joint`` on the live users, minimising
  Σ_u C_u under the environment's objective, with ``--time-limit`` (its status and gap are
  reported); ``joint-relaxed``: its LP relaxation, rounded and repaired;
* ``selfish`` (each user's optimum as if alone), ``greedy``, ``all-edge-nearest``,
  ``all-edge-least-loaded``, ``all-device``: the baselines of ``solvers.joint``;
* ``agent-maskable_ppo`` (``--model``): the trained shared policy, acting for the users one
  after another in arrival order with the others' choices of this step in its observation
  (the view it was trained on, ``MultiUserShared-v0``), deterministic.

Figures per (N, method), over every token step of every episode: total cost Σ_u C_u of a
token step (mean, and its ratio to the joint reference's on the same steps), per-user token
cost (mean, p95), the share of tokens over their latency target (TTFT for a prefill, TPOT
for a decode token: ``slo_violations``), Jain's index of the per-user costs of a step
(mean over steps with two or more users), decision time per step (median, max, mean), and for the
joint reference its status counts and largest gap.  Writes DIR/multi.csv, multi.json,
multi.md and multi_cost_vs_n.png (total cost and Jain's index against N).

Bad input prints one ``error:`` line and exits with status 2.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from deaoff_cli.config_io import CLIError, read_mapping

REFERENCES = ("joint", "joint-relaxed", "selfish", "greedy", "all-edge-nearest", "all-edge-least-loaded",
              "all-device")
SET_BY_USERS = ("max_devices", "initial_users", "arrival_rate_per_step", "max_steps", "max_requests")


def add_command(sub: Any) -> None:
    """Register ``multi`` on ``sub`` (evaluate.py's subparsers)."""
    mu = sub.add_parser("multi", help="many users on the shared edge: joint reference, selfish optimum, "
                                      "heuristics and a trained shared policy against N")
    mu.add_argument("--out", required=True, type=Path)
    mu.add_argument("--users", default="1,2,4,8,16", help="comma-separated numbers of users N (default 1,2,4,8,16)")
    mu.add_argument("--episodes", type=int, default=3, help="held-out episodes per N (default 3)")
    mu.add_argument("--steps", type=int, default=8, help="token steps per episode (default 8)")
    mu.add_argument("--seed", type=int, default=0, help="held-out seed S: episode e has seed 2*10^9 + 1000*S + e")
    mu.add_argument("--model", default=None, help="a train.py run directory (or model zip) of MultiUserShared-v0")
    mu.add_argument("--checkpoint", choices=("final", "best"), default="final",
                    help="which model of a run directory (default final = model.zip)")
    mu.add_argument("--methods", default=",".join(REFERENCES),
                    help=f"comma-separated reference methods (default all: {','.join(REFERENCES)})")
    mu.add_argument("--time-limit", type=float, default=10.0, help="joint MILP time limit per step, s (default 10)")
    mu.add_argument("--env-config", default=None,
                    help="MultiUserOffload-v0 config overrides (YAML/JSON file or inline mapping); "
                         f"{', '.join(SET_BY_USERS)} are set by --users and --steps")
    mu.add_argument("--no-plot", action="store_true", help="skip the PNG")
    mu.set_defaults(multi_command=True)

    def error(message: str) -> None:  # argparse's own errors: one line, status 2
        print(f"error: {mu.prog}: {message}", file=sys.stderr)
        sys.exit(2)
    mu.error = error


# --------------------------------------------------------------------------- input
def _parse(args: argparse.Namespace) -> dict[str, Any]:
    """Every check before anything runs or is written; CLIError / ValueError name the problem."""
    from agents.seeds import MAX_EPISODES, check_run_seed, held_out_seeds
    from envs.multi_user import MultiUserConfig

    try:
        users = [int(x) for x in str(args.users).split(",")]
    except ValueError:
        raise CLIError(f"--users must be comma-separated integers >= 1, got {args.users!r}") from None
    if not users or any(n < 1 for n in users) or len(set(users)) != len(users):
        raise CLIError(f"--users must be distinct integers >= 1, got {args.users!r}")
    if not 1 <= args.episodes <= MAX_EPISODES:
        raise CLIError(f"--episodes must be an integer in [1, {MAX_EPISODES}], got {args.episodes}")
    if args.steps < 1:
        raise CLIError(f"--steps must be an integer >= 1, got {args.steps}")
    check_run_seed(args.seed, "--seed")
    if not (math.isfinite(args.time_limit) and args.time_limit > 0):
        raise CLIError(f"--time-limit must be a finite number > 0, got {args.time_limit}")
    methods = [m for m in str(args.methods).split(",") if m]
    unknown = [m for m in methods if m not in REFERENCES]
    if unknown:
        raise CLIError(f"--methods: unknown {unknown}; known: {list(REFERENCES)}")
    overrides = read_mapping(args.env_config, "--env-config") if args.env_config else {}
    clash = sorted(set(overrides) & set(SET_BY_USERS))
    if clash:
        raise CLIError(f"--env-config sets {clash}: evaluate.py multi sets them from --users and --steps")
    agent = None
    base: dict[str, Any] = {}
    if args.model is not None:
        from deaoff_cli.evaluate_agents import load_agent
        from envs.multi_user_register import SHARED_ENV_ID

        agent = load_agent(args.model, 0, args.checkpoint)
        if agent.env_id != SHARED_ENV_ID:
            raise CLIError(f"--model {args.model} was trained on {agent.env_id}, not {SHARED_ENV_ID}")
        base = {k: v for k, v in agent.env_config.items() if k not in SET_BY_USERS}
    if not methods and agent is None:
        raise CLIError("nothing to evaluate: --methods is empty and no --model")
    config = {**base, **overrides}
    MultiUserConfig.from_dict(config)  # unknown keys, bad values: ValueError naming them
    if agent is not None:
        probe = _env(config, max(users), 1)
        space = agent.model.observation_space
        if space["observation"].shape != probe.observation_space(probe.possible_agents[0])["observation"].shape or \
                agent.model.action_space.n != probe.num_actions:
            raise CLIError(f"--model {args.model}: its spaces do not match this env config's "
                           "(models or scenario differ from the ones it was trained on)")
    return {"users": users, "episodes": held_out_seeds(args.seed, args.episodes), "steps": args.steps,
            "methods": methods, "agent": agent, "config": config, "time_limit_s": float(args.time_limit)}


def _env(config: Mapping[str, Any], n: int, steps: int):
    from envs.multi_user import parallel_env

    return parallel_env({**config, "max_devices": n, "initial_users": n, "arrival_rate_per_step": float(n),
                         "max_steps": steps, "max_requests": n * (steps + 1)})


# --------------------------------------------------------------------------- play
def _decide(env, method: str, agent, time_limit_s: float) -> tuple[dict[str, int], dict[str, Any]]:
    """Actions of every live agent for this token step, and what the decision cost."""
    t0 = time.perf_counter()
    meta: dict[str, Any] = {}
    if method.startswith("agent-"):
        pending: dict[str, int] = {}
        for a in env.agents:
            obs = env.observe(a, pending)
            action, _ = agent.model.predict({"observation": obs["observation"]}, action_masks=obs["action_mask"],
                                            deterministic=True)
            pending[a] = int(action)
        return pending, {"decide_s": time.perf_counter() - t0}
    from solvers.joint import run_method

    sol = run_method(env.live_system(), method, time_limit_s=time_limit_s if method == "joint" else None)
    if method in ("joint", "joint-relaxed"):
        meta.update(status=sol.status, gap=sol.gap)
    meta["decide_s"] = time.perf_counter() - t0
    return {a: env.encode(d) for a, d in zip(env.agents, sol.decisions)}, meta


def play(config: Mapping[str, Any], n: int, seeds: range, steps: int, method: str, agent, time_limit_s: float
         ) -> list[dict[str, Any]]:
    """Every token step of every episode: per-user costs and violations, decision meta."""
    out = []
    for seed in seeds:
        env = _env(config, n, steps)
        env.reset(seed=int(seed))
        step = 0
        while env.agents:
            actions, meta = _decide(env, method, agent, time_limit_s)
            _, _, _, _, infos = env.step(actions)
            acted = [a for a in actions]
            out.append({"seed": int(seed), "step": step, "costs": [infos[a]["cost"] for a in acted],
                        "violations": [bool(infos[a]["slo_violation"]) for a in acted],
                        "replaced": sum(bool(infos[a]["replaced"]) for a in acted), **meta})
            step += 1
    return out


def summarise(rows: list[dict[str, Any]], joint_totals: list[float] | None) -> dict[str, Any]:
    from core.multi import fairness

    totals = [float(sum(r["costs"])) for r in rows]
    per_user = np.concatenate([r["costs"] for r in rows])
    viol = np.concatenate([r["violations"] for r in rows])
    jains = [fairness(r["costs"])["jain"] for r in rows if len(r["costs"]) > 1]
    times = [r["decide_s"] for r in rows]
    s = {"steps": len(rows), "tokens": int(per_user.size), "total_cost": float(np.mean(totals)),
         "user_cost_mean": float(np.mean(per_user)), "user_cost_p95": float(np.percentile(per_user, 95)),
         "slo_violations": float(np.mean(viol)), "jain": float(np.mean(jains)) if jains else 1.0,
         "decide_s_mean": float(np.mean(times)), "decide_s_median": float(np.median(times)),
         "decide_s_max": float(np.max(times)),
         "replaced": int(sum(r["replaced"] for r in rows))}
    if joint_totals is not None:
        if len(joint_totals) != len(totals):
            raise RuntimeError("the methods played different token steps")
        s["vs_joint"] = float(np.sum(totals) / np.sum(joint_totals))
    statuses = [r["status"] for r in rows if "status" in r]
    if statuses:
        s["status"] = {k: statuses.count(k) for k in sorted(set(statuses))}
        s["max_gap"] = float(max(r["gap"] for r in rows if "gap" in r))
    return s


# --------------------------------------------------------------------------- report
COLUMNS = ("N", "method", "total_cost", "vs_joint", "user_cost_mean", "user_cost_p95", "slo_violations", "jain",
           "decide_s_median", "decide_s_max", "status", "max_gap", "decide_s_mean", "replaced", "steps", "tokens")


def _fmt(key: str, v: Any) -> str:
    if v is None:
        return ""
    if key == "status":
        return ", ".join(f"{k} {c}" for k, c in v.items())
    if key in ("slo_violations",):
        return f"{100 * v:.1f}%"
    if key == "vs_joint":
        return f"{v:.3f}"
    if key == "max_gap":
        return f"{100 * v:.2f}%"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def markdown(summary: list[dict[str, Any]]) -> str:
    head = ["N", "method", "total C / step", "vs joint", "per-user mean", "per-user p95", "SLO violations",
            "Jain", "decide s (median)", "decide s (max)", "joint status", "max gap"]
    keys = COLUMNS[:12]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in summary:
        lines.append("| " + " | ".join(_fmt(k, row.get(k)) for k in keys) + " |")
    return "\n".join(lines)


def plot(summary: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    methods = list(dict.fromkeys(r["method"] for r in summary))
    ns = sorted({r["N"] for r in summary})
    for m in methods:
        if m == "all-device":
            continue  # an order of magnitude above the others: it would flatten the plot
        pts = sorted((r["N"], r["total_cost"], r["jain"]) for r in summary if r["method"] == m)
        style = dict(marker="o", label=m, lw=2.5 if m in ("joint",) or m.startswith("agent") else 1.2)
        ax1.plot([p[0] for p in pts], [p[1] for p in pts], **style)
        ax2.plot([p[0] for p in pts], [p[2] for p in pts], **style)
    ax1.set(xlabel="users N", ylabel="total cost Σ_u C_u per token step", xscale="log", yscale="log")
    ax2.set(xlabel="users N", ylabel="Jain's index of per-user cost", xscale="log", ylim=(0, 1.05))
    for ax in (ax1, ax2):
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args: argparse.Namespace, command: str) -> int:
    """``evaluate.py multi``: check everything, play, print and write."""
    p = _parse(args)
    methods = list(p["methods"])
    agent = p["agent"]
    if agent is not None:
        methods.append(agent.name)
    args.out.mkdir(parents=True, exist_ok=True)
    summary = []
    print(f"MultiUserOffload-v0, {len(p['episodes'])} held-out episode(s) x {p['steps']} token steps per N "
          f"(seeds {p['episodes'].start}..{p['episodes'].stop - 1}), objective "
          f"{p['config'].get('objective', 'weighted')}", flush=True)
    for n in p["users"]:
        played = {m: play(p["config"], n, p["episodes"], p["steps"], m, agent, p["time_limit_s"]) for m in methods}
        joint = [float(sum(r["costs"])) for r in played["joint"]] if "joint" in played else None
        for m in methods:
            s = {"N": n, "method": m, **summarise(played[m], joint)}
            summary.append(s)
            print(f"N={n:<3} {m:<24} total {s['total_cost']:.4f}" +
                  (f"  x{s['vs_joint']:.3f} joint" if "vs_joint" in s else "") +
                  f"  p95 {s['user_cost_p95']:.4f}  SLO viol {100 * s['slo_violations']:.1f}%  Jain {s['jain']:.3f}"
                  f"  {s['decide_s_median']:.3f} s/step (median)", flush=True)
    md = markdown(summary)
    print("\n" + md)
    with open(args.out / "multi.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for row in summary:
            w.writerow({k: (json.dumps(row[k]) if k == "status" and k in row else row.get(k, "")) for k in COLUMNS})
    (args.out / "multi.json").write_text(json.dumps(
        {"command": command, "users": p["users"], "episodes": [p["episodes"].start, p["episodes"].stop - 1],
         "steps": p["steps"], "env_config": p["config"], "time_limit_s": p["time_limit_s"],
         "model": None if agent is None else str(agent.path), "summary": summary}, indent=1))
    (args.out / "multi.md").write_text(f"`{command}`\n\n{md}\n")
    if not args.no_plot:
        plot(summary, args.out / "multi_cost_vs_n.png")
    print(f"\nwrote {args.out}/multi.csv, multi.json, multi.md" + ("" if args.no_plot else ", multi_cost_vs_n.png"))
    return 0
