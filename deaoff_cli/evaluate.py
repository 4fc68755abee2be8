"""Benchmark DeAOff, the classic heuristics and trained agents with the one cost engine.

    python evaluate.py static --out DIR [--quick] [--suite YAML] [--seed S]
        The paper-style table: DeAOff (exact and relaxed) against every heuristic on a
        suite of models × granularities × phases × channel conditions × servers.
    python evaluate.py agents --model RUN_DIR_OR_ZIP [--model ...] --episodes N --seed S --out DIR
        Trained agents against DeAOff-oracle, DeAOff-static and the heuristics under
        dynamic conditions (held-out seeds).

Both write a Markdown table to stdout, ``summary.json`` and CSV files and plots under --out.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

STATIC_SUITE = Path(__file__).resolve().parent.parent / "configs" / "suites" / "static.yaml"
STATIC_QUICK = Path(__file__).resolve().parent.parent / "configs" / "suites" / "static-quick.yaml"
TRADITIONAL = ("all-device", "all-edge", "random", "greedy-eft", "heft", "neurosurgeon")


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit code 2."""


# --------------------------------------------------------------------------- static mode
@dataclass
class StaticSuite:
    models: list[str]
    granularities: list[str]
    phases: list[str]
    scenarios: list[str]
    prompt_len: int = 256
    context_len: int = 512
    sublayer_time_limit_s: float = 120.0

    @classmethod
    def load(cls, path: Path) -> "StaticSuite":
        if not path.exists():
            raise UsageError(f"suite file not found: {path}")
        data = yaml.safe_load(path.read_text()) or {}
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"suite {path}: unknown key(s) {unknown}; known: {sorted(known)}")
        return cls(**data)


def _static_instances(suite: StaticSuite):
    from core.dag import build_dag
    from core.instance import make_instance
    from core.models import load_model_spec
    from core.system import load_scenario, make_snapshot

    for model in suite.models:
        spec = load_model_spec(model)
        for gran in suite.granularities:
            for phase in suite.phases:
                kw = {"context_len": suite.context_len} if phase == "decode" else {}
                graph = build_dag(spec, gran, phase, prompt_len=suite.prompt_len, **kw)
                for scen in suite.scenarios:
                    sc = load_scenario(scen)
                    inst = make_instance(graph, make_snapshot(sc))
                    sid = f"{model}/{gran}/{phase}/{scen}"
                    yield sid, {"model": model, "granularity": gran, "phase": phase, "scenario": scen,
                                "servers": sc.num_servers, "nodes": inst.num_nodes}, inst


def run_static(out: Path, quick: bool, suite_path: Path | None, seed: int, command: str) -> dict[str, Any]:
    from solvers.deaoff import solve
    from solvers.heuristics import HEURISTICS, run_heuristic

    suite = StaticSuite.load(suite_path or (STATIC_QUICK if quick else STATIC_SUITE))
    out.mkdir(parents=True, exist_ok=True)
    scenarios: list[dict[str, Any]] = []
    gantt: tuple[Any, Any, str] | None = None
    t_start = time.perf_counter()
    for sid, meta, inst in _static_instances(suite):
        limit = suite.sublayer_time_limit_s if meta["granularity"] != "block" else None
        methods: dict[str, dict[str, Any]] = {}
        exact = solve(inst, mode="exact", time_limit_s=limit)
        methods["deaoff"] = _row(exact.result, status=exact.status, gap=exact.mip_gap, wall_s=exact.wall_time_s)
        relaxed = solve(inst, mode="relaxed")
        methods["deaoff-relaxed"] = _row(relaxed.result, status=relaxed.status, wall_s=relaxed.wall_time_s)
        for name in HEURISTICS:
            try:
                t0 = time.perf_counter()
                _, res = run_heuristic(name, inst, np.random.default_rng(seed))
                methods[name] = _row(res, status="ok", wall_s=time.perf_counter() - t0)
            except ValueError as exc:  # e.g. the model does not fit the device
                methods[name] = {"latency_s": None, "energy_j": None, "status": f"infeasible: {exc}"}
        scenarios.append({"id": sid, **meta, "phase1_makespan_s": exact.phase1_makespan_s, "methods": methods})
        print(f"  {sid:<45} deaoff {exact.result.makespan_s * 1e3:9.2f} ms {exact.result.energy_j * 1e3:9.2f} mJ "
              f"[{exact.status}, {exact.wall_time_s:.2f} s]", file=sys.stderr)
        if gantt is None or (meta["granularity"] == "sublayer" and meta["phase"] == "decode"
                             and gantt[2].split("/")[1] != "sublayer"):
            gantt = (inst, exact, sid)
    summary = _summarise(scenarios, command, {"suite": suite.__dict__, "seed": seed,
                                              "wall_time_s": time.perf_counter() - t_start})
    _write_static(out, summary, gantt)
    print(_static_markdown(summary))
    return summary


def _row(res, **extra) -> dict[str, Any]:
    return {"latency_s": res.makespan_s, "energy_j": res.energy_j, **res.breakdown,
            "edge_energy_j": res.edge_energy_j, **extra}


def _summarise(scenarios: list[dict[str, Any]], command: str, meta: dict[str, Any]) -> dict[str, Any]:
    names = list(scenarios[0]["methods"]) if scenarios else []
    per_method: dict[str, dict[str, Any]] = {}
    reductions: dict[str, dict[str, Any]] = {}
    for name in names:
        ok = [s["methods"][name] for s in scenarios if s["methods"][name]["latency_s"] is not None]
        per_method[name] = {
            "latency_s": float(np.mean([m["latency_s"] for m in ok])) if ok else None,
            "energy_j": float(np.mean([m["energy_j"] for m in ok])) if ok else None,
            "feasible_scenarios": len(ok), "scenarios": len(scenarios)}
        if name.startswith("deaoff"):
            continue
        lat, ene = [], []
        for s in scenarios:
            base, ours = s["methods"][name], s["methods"]["deaoff"]
            if base["latency_s"] is None:
                continue
            lat.append(100.0 * (1.0 - ours["latency_s"] / base["latency_s"]))
            ene.append(100.0 * (1.0 - ours["energy_j"] / base["energy_j"]) if base["energy_j"] > 0 else 0.0)
        reductions[name] = {"latency_pct_mean": _mean(lat), "latency_pct_max": max(lat) if lat else None,
                            "energy_pct_mean": _mean(ene), "energy_pct_max": max(ene) if ene else None,
                            "scenarios": len(lat)}
    return {"mode": "static", "command": command, **meta, "methods": per_method,
            "deaoff_reduction_vs": reductions, "scenarios": scenarios}


def _mean(xs: list[float]) -> float | None:
    return float(np.mean(xs)) if xs else None


def _fmt(x: float | None, scale: float = 1.0, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x * scale:.{digits}f}"


def _static_markdown(summary: dict[str, Any]) -> str:
    lines = [f"## Static suite: {len(summary['scenarios'])} scenarios", "",
             "| method | mean latency (ms) | mean device energy (mJ) | feasible | DeAOff latency reduction, mean / max (%) | DeAOff energy reduction, mean / max (%) |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, m in summary["methods"].items():
        red = summary["deaoff_reduction_vs"].get(name)
        lat = f"{_fmt(red['latency_pct_mean'], digits=1)} / {_fmt(red['latency_pct_max'], digits=1)}" if red else "—"
        ene = f"{_fmt(red['energy_pct_mean'], digits=1)} / {_fmt(red['energy_pct_max'], digits=1)}" if red else "—"
        lines.append(f"| {name} | {_fmt(m['latency_s'], 1e3)} | {_fmt(m['energy_j'], 1e3)} | "
                     f"{m['feasible_scenarios']}/{m['scenarios']} | {lat} | {ene} |")
    lines += ["", "Means are over the scenarios where the method is feasible; reductions are per-scenario "
              "1 − DeAOff / baseline, averaged over the scenarios where the baseline is feasible.", ""]
    return "\n".join(lines)


def _write_static(out: Path, summary: dict[str, Any], gantt) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    with open(out / "results.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["scenario", "model", "granularity", "phase", "scenario_preset", "servers", "nodes", "method",
                    "latency_s", "energy_j", "compute_j", "transmit_j", "receive_j", "idle_j", "edge_energy_j",
                    "status"])
        for s in summary["scenarios"]:
            for name, m in s["methods"].items():
                w.writerow([s["id"], s["model"], s["granularity"], s["phase"], s["scenario"], s["servers"], s["nodes"],
                            name] + [m.get(k) for k in ("latency_s", "energy_j", "compute_j", "transmit_j",
                                                         "receive_j", "idle_j", "edge_energy_j", "status")])
    _bar_plots(out, summary["methods"], "static suite")
    if gantt is not None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from core.cost import evaluate
        from envs.render import plot_gantt

        inst, sol, sid = gantt
        res = evaluate(inst, sol.placement)  # recorded schedule
        fig, ax = plt.subplots(figsize=(11, 4))
        plot_gantt(ax, inst, res, title=f"DeAOff schedule, {sid}: {res.makespan_s * 1e3:.2f} ms, "
                                        f"{res.energy_j * 1e3:.2f} mJ")
        fig.tight_layout()
        fig.savefig(out / "gantt_deaoff.png", dpi=110)
        plt.close(fig)


def _bar_plots(out: Path, methods: dict[str, dict[str, Any]], title: str, errors: dict | None = None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, m in methods.items() if m.get("latency_s") is not None]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, key, scale, label in ((axes[0], "latency_s", 1e3, "mean latency (ms)"),
                                  (axes[1], "energy_j", 1e3, "mean device energy (mJ)")):
        vals = [methods[n][key] * scale for n in names]
        err = None
        if errors is not None:
            err = [errors[n][key] * scale for n in names]
        colors = ["tab:red" if n.startswith("deaoff") else ("tab:green" if n.startswith("agent") else "tab:gray")
                  for n in names]
        ax.bar(range(len(names)), vals, yerr=err, color=colors, capsize=3)
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
        ax.set_ylabel(label)
        ax.set_yscale("log")
        ax.set_title(f"{label}, {title}")
    fig.tight_layout()
    fig.savefig(out / "bars.png", dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- agents mode
HELD_OUT_SEED_BASE = 1_000_000
"""Evaluation episodes use seeds HELD_OUT_SEED_BASE + 1000·seed + episode: disjoint from the
small seeds (run seed + env rank, run seed + 10_000 for periodic evaluation) used in training."""


@dataclass
class LoadedAgent:
    name: str
    algo: str
    env_id: str
    env_config: dict[str, Any]
    model: Any
    path: Path


def load_agent(spec: str, index: int) -> LoadedAgent:
    """A run directory (its best model if periodic evaluation saved one, else model.zip)
    or a model zip (its run directory's config.yaml is read for the algorithm and env)."""
    from agents import ALGOS

    path = Path(spec)
    if not path.exists():
        raise UsageError(f"model path not found: {path}")
    if path.is_dir():
        run_dir = path
        zip_path = path / "best" / "best_model.zip"
        if not zip_path.exists():
            zip_path = path / "model.zip"
        if not zip_path.exists():
            raise UsageError(f"{path} holds no model.zip (is it a run directory of train.py?)")
    else:
        zip_path = path
        run_dir = path.parent.parent if path.parent.name in ("best", "checkpoints") else path.parent
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.exists():
        raise UsageError(f"no config.yaml next to {zip_path}: cannot tell its algorithm and environment")
    cfg = yaml.safe_load(cfg_path.read_text()) or {}
    algo, env_id = cfg.get("algo"), cfg.get("env_id")
    if algo not in ALGOS:
        raise UsageError(f"{cfg_path}: unknown algorithm {algo!r}")
    try:
        model = ALGOS[algo].load(str(zip_path), device="cpu")
    except Exception as exc:  # a corrupt or foreign zip
        raise UsageError(f"cannot load {zip_path} as a {algo} model: {exc}") from None
    name = f"agent-{algo}" if index == 0 else f"agent-{algo}-{index}"
    return LoadedAgent(name, algo, env_id, dict(cfg.get("env_config") or {}), model, zip_path)


def _read_mapping(value: str, what: str) -> dict[str, Any]:
    """A YAML/JSON file, or an inline mapping starting with '{'."""
    inline = value.lstrip().startswith("{")
    if not inline and not Path(value).is_file():
        raise UsageError(f"{what}: file not found: {value}")
    try:
        data = yaml.safe_load(value if inline else Path(value).read_text())
    except yaml.YAMLError as exc:
        raise UsageError(f"{what}: not valid YAML/JSON ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{what}: expected a mapping")
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def _ci95(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% Student-t confidence interval."""
    from scipy import stats

    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if arr.size == 0:
        return float("nan"), float("nan")
    if arr.size == 1:
        return float(arr[0]), float("nan")
    half = stats.t.ppf(0.975, arr.size - 1) * arr.std(ddof=1) / math.sqrt(arr.size)
    return float(arr.mean()), float(half)


def _play_episode(method: str, env, seed: int, agent: LoadedAgent | None, heuristic=None) -> list[dict[str, Any]]:
    """One request under ``method``; returns a record per token."""
    from core.instance import Placement

    u = env.unwrapped
    obs, _ = env.reset(seed=seed)
    records: list[dict[str, Any]] = []
    static_plan: Placement | None = None
    rng = np.random.default_rng(seed)
    done = False
    while not done:
        snap = u.snapshot
        state = {"uplink_mbps": [r[-1] / 1e6 for r in snap.uplink_bps], "loads": list(snap.server_load),
                 "servers_up": list(snap.server_up)}
        fallback = False
        if agent is not None:
            info: dict[str, Any] = {}
            while not info.get("token_done"):
                if agent.algo == "maskable_ppo":
                    action, _ = agent.model.predict(obs, deterministic=True, action_masks=u.action_masks())
                else:
                    action, _ = agent.model.predict(obs, deterministic=True)
                obs, _, done, _, info = env.step(int(action))
        else:
            inst = u.inst
            if method == "deaoff-oracle":
                plan = u.ref_placement
            elif method == "deaoff-static":
                # planned once: the prefill's plan, then the first decode token's plan, kept
                if static_plan is None or u.context is None or u.token <= 1:
                    plan = static_plan = u.ref_placement
                else:
                    plan = _repair(inst, static_plan)
            else:
                try:
                    plan = heuristic(inst, rng)
                except ValueError:
                    # no plan of this kind exists right now (e.g. all-edge while every server
                    # is down): the token runs on the device, and the fallback is counted
                    plan = _repair(inst, Placement([0] * inst.num_nodes))
                    fallback = True
            info = u.play_token(plan)
            done = u.token >= u.num_tokens
        records.append({"token": info["token"], "context": info["context"], "latency_s": info["latency_s"],
                        "energy_j": info["energy_j"], "cost": info["cost"], "ref_cost": info["ref_cost"],
                        "fallback": fallback, **state})
    return records


def _repair(inst, plan):
    """Keep a stored plan; a node whose location is down or out of memory moves to the
    first feasible location (device first)."""
    from core.cost import feasible_locations
    from core.instance import Placement

    used = [0.0] * inst.num_locations
    loc = []
    for i, k in enumerate(plan.loc):
        ok = feasible_locations(inst, i, used)
        if not ok[k]:
            k = ok.index(True)
        used[k] += inst.mem_need[i]
        loc.append(k)
    return Placement(loc, plan.dvfs, plan.tx)


def run_agents(models: list[str], episodes: int, seed: int, out: Path, deadline_ms: float,
               env_config_override: str | None, command: str) -> dict[str, Any]:
    import gymnasium as gym

    import envs  # noqa: F401
    from solvers.heuristics import HEURISTICS

    if episodes < 1:
        raise UsageError(f"--episodes must be >= 1, got {episodes}")
    agents = [load_agent(m, i) for i, m in enumerate(models)]
    env_cfg = dict(agents[0].env_config) if agents else {}
    if env_config_override:
        env_cfg = _merge(env_cfg, _read_mapping(env_config_override, "--env-config"))
    # the side-by-side runs every method under the same conditions: every agent's env
    # must share the first agent's model, scenario, request length and dynamics
    out.mkdir(parents=True, exist_ok=True)
    envs_by_id: dict[str, Any] = {}

    def env_for(env_id: str):
        if env_id not in envs_by_id:
            envs_by_id[env_id] = gym.make(env_id, config=env_cfg)
        return envs_by_id[env_id]

    for a in agents:
        env = env_for(a.env_id)
        if a.model.observation_space != env.observation_space:
            raise UsageError(f"{a.path} was trained on a different observation space than {a.env_id} with this "
                             f"config: {a.model.observation_space} vs {env.observation_space}")
        if a.model.action_space != env.action_space:
            raise UsageError(f"{a.path} was trained on a different action space than {a.env_id} with this "
                             f"config: {a.model.action_space} vs {env.action_space}")
    methods: list[tuple[str, LoadedAgent | None, Any]] = [(a.name, a, None) for a in agents]
    methods += [("deaoff-oracle", None, None), ("deaoff-static", None, None)]
    methods += [(name, None, fn) for name, fn in HEURISTICS.items()]
    seeds = [HELD_OUT_SEED_BASE + 1000 * seed + ep for ep in range(episodes)]
    tokens: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    t_start = time.perf_counter()
    for name, agent, fn in methods:
        env = env_for(agent.env_id if agent else "DecoderOffload-v0")
        try:
            for ep, s in enumerate(seeds):
                for rec in _play_episode(name, env, s, agent, fn):
                    tokens.append({"method": name, "episode": ep, "seed": s, **rec})
        except ValueError as exc:  # a heuristic with no feasible plan (e.g. model too big for the device)
            tokens = [t for t in tokens if t["method"] != name]
            skipped[name] = str(exc)
            print(f"  {name}: skipped ({exc})", file=sys.stderr)
            continue
        print(f"  {name}: {episodes} episodes done ({time.perf_counter() - t_start:.1f} s)", file=sys.stderr)
    summary = _agent_summary(tokens, [m[0] for m in methods if m[0] not in skipped], deadline_ms)
    summary.update({"mode": "agents", "command": command, "episodes": episodes, "seed": seed, "seeds": seeds,
                    "env_config": env_cfg, "deadline_ms": deadline_ms, "skipped": skipped,
                    "agents": {a.name: {"path": str(a.path), "algo": a.algo, "env_id": a.env_id} for a in agents},
                    "wall_time_s": time.perf_counter() - t_start})
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    with open(out / "tokens.csv", "w", newline="") as fh:
        keys = ["method", "episode", "seed", "token", "context", "latency_s", "energy_j", "cost", "ref_cost",
                "fallback", "uplink_mbps", "loads", "servers_up"]
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for t in tokens:
            w.writerow({k: (json.dumps(t[k]) if isinstance(t[k], list) else t[k]) for k in keys})
    _agent_plots(out, summary, tokens)
    print(_agent_markdown(summary))
    return summary


def _agent_summary(tokens: list[dict[str, Any]], names: list[str], deadline_ms: float) -> dict[str, Any]:
    by = {}
    for t in tokens:
        by.setdefault((t["method"], t["episode"]), []).append(t)
    oracle = {ep: recs for (m, ep), recs in by.items() if m == "deaoff-oracle"}
    static = {ep: recs for (m, ep), recs in by.items() if m == "deaoff-static"}
    out: dict[str, Any] = {"methods": {}}
    for name in names:
        eps = sorted(ep for (m, ep) in by if m == name)
        lat, ene, vs_oracle, vs_static, ref_ratio, miss = [], [], [], [], [], []
        for ep in eps:
            recs = by[(name, ep)]
            decode = [r for r in recs if r["context"] is not None]
            lat.append(float(np.mean([r["latency_s"] for r in recs])))
            ene.append(float(np.mean([r["energy_j"] for r in recs])))
            cost = sum(r["cost"] for r in recs)
            if ep in oracle:
                vs_oracle.append(cost / sum(r["cost"] for r in oracle[ep]))
            if ep in static:
                vs_static.append(cost / sum(r["cost"] for r in static[ep]))
            ref_ratio.append(cost / sum(r["ref_cost"] for r in recs))
            if decode:
                miss.append(float(np.mean([r["latency_s"] * 1e3 > deadline_ms for r in decode])))
        entry = {}
        for key, vals in (("latency_s", lat), ("energy_j", ene), ("cost_vs_oracle", vs_oracle),
                          ("cost_vs_static", vs_static), ("cost_vs_reference", ref_ratio),
                          ("deadline_miss", miss)):
            mean, half = _ci95(vals)
            entry[key] = mean
            entry[key + "_ci95"] = half
        entry["episodes"] = len(eps)
        entry["fallback_tokens"] = int(sum(r.get("fallback", False) for ep in eps for r in by[(name, ep)]))
        out["methods"][name] = entry
    return out


def _agent_markdown(summary: dict[str, Any]) -> str:
    def pm(m, key, scale=1.0, digits=3):
        v, h = m[key], m[key + "_ci95"]
        if v is None or not math.isfinite(v):
            return "n/a"
        return f"{v * scale:.{digits}f} ± {h * scale:.{digits}f}" if math.isfinite(h) else f"{v * scale:.{digits}f}"

    lines = [f"## Agents vs DeAOff: {summary['episodes']} held-out episodes, mean ± 95% CI over episodes", "",
             f"| method | latency per token (ms) | device energy per token (mJ) | cost / DeAOff-oracle | "
             f"cost / DeAOff-static | decode tokens over {summary['deadline_ms']:g} ms |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, m in summary["methods"].items():
        lines.append(f"| {name} | {pm(m, 'latency_s', 1e3, 2)} | {pm(m, 'energy_j', 1e3, 2)} | "
                     f"{pm(m, 'cost_vs_oracle')} | {pm(m, 'cost_vs_static')} | {pm(m, 'deadline_miss', 100, 1)} % |")
    lines += ["", "cost = w_T·latency_s + w_E·energy_j summed over the request, divided by the same "
              "sum for DeAOff-oracle (re-solved every token) or DeAOff-static (planned once) on the same "
              "episode (same channel, load and outage trajectory).", ""]
    for name, m in summary["methods"].items():
        if m.get("fallback_tokens"):
            lines.append(f"- {name}: {m['fallback_tokens']} token(s) had no plan of its kind and ran on the device")
    if summary.get("skipped"):
        for name, why in summary["skipped"].items():
            lines.append(f"- {name}: not run ({why})")
    return "\n".join(lines)


def _agent_plots(out: Path, summary: dict[str, Any], tokens: list[dict[str, Any]]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = summary["methods"]
    errs = {n: {"latency_s": m["latency_s_ci95"] if math.isfinite(m["latency_s_ci95"]) else 0.0,
                "energy_j": m["energy_j_ci95"] if math.isfinite(m["energy_j_ci95"]) else 0.0}
            for n, m in methods.items()}
    _bar_plots(out, methods, "held-out episodes", errors=errs)
    # per-token latency trace of episode 0, with the uplink rate of every server
    fig, ax = plt.subplots(figsize=(11, 4.5))
    ep0 = [t for t in tokens if t["episode"] == 0]
    for name in methods:
        recs = [t for t in ep0 if t["method"] == name and t["context"] is not None]
        if not recs:
            continue
        style = "-" if name.startswith(("agent", "deaoff")) else ":"
        ax.plot([r["token"] for r in recs], [r["latency_s"] * 1e3 for r in recs], style, marker=".", label=name)
    ax.set_xlabel("token")
    ax.set_ylabel("latency (ms)")
    ax.set_yscale("log")
    ax2 = ax.twinx()
    oracle = [t for t in ep0 if t["method"] == "deaoff-oracle" and t["context"] is not None]
    if oracle:
        rates = np.array([r["uplink_mbps"] for r in oracle])
        for k in range(rates.shape[1]):
            ax2.fill_between([r["token"] for r in oracle], rates[:, k], alpha=0.12, step="mid",
                             label=f"uplink edge{k + 1} (Mb/s)")
        ax2.set_ylabel("uplink rate at max power (Mb/s)")
        ax2.legend(loc="upper right", fontsize=7)
    ax.legend(loc="upper left", fontsize=7, ncol=2)
    ax.set_title("per-token latency of one held-out episode (shaded: channel)")
    fig.tight_layout()
    fig.savefig(out / "latency_trace.png", dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    st = sub.add_parser("static", help="DeAOff vs the classic heuristics on the static suite")
    st.add_argument("--out", required=True, type=Path)
    st.add_argument("--quick", action="store_true", help="the reduced suite (under a minute)")
    st.add_argument("--suite", type=Path, default=None, help="a suite YAML (default configs/suites/static.yaml)")
    st.add_argument("--seed", type=int, default=0, help="seed of the random baseline")
    ag = sub.add_parser("agents", help="trained agents vs DeAOff-oracle, DeAOff-static and the heuristics")
    ag.add_argument("--model", action="append", default=[], help="a train.py run directory or model zip "
                    "(repeat for several agents); with none, only DeAOff and the heuristics run")
    ag.add_argument("--episodes", type=int, default=10)
    ag.add_argument("--seed", type=int, default=0)
    ag.add_argument("--out", required=True, type=Path)
    ag.add_argument("--deadline-ms", type=float, default=10.0, help="per decode token")
    ag.add_argument("--env-config", default=None, help="env config overrides (YAML/JSON file or inline)")
    from . import hardware  # calibration / predict (the hardware catalogue)
    hardware.add_commands(sub)
    args = parser.parse_args(argv)
    if hasattr(args, "hardware_command"):
        return hardware.run(args, argv)
    command = "python evaluate.py " + " ".join(shlex.quote(a) for a in argv)
    try:
        if args.mode == "static":
            run_static(args.out, args.quick, args.suite, args.seed, command)
        else:
            run_agents(args.model, args.episodes, args.seed, args.out, args.deadline_ms, args.env_config, command)
    except (UsageError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
