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

STATIC_SUITE = Path(__file__).resolve().parent / "configs" / "suites" / "static.yaml"
STATIC_QUICK = Path(__file__).resolve().parent / "configs" / "suites" / "static-quick.yaml"
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
    from envs.dag import build_dag
    from envs.instance import make_instance
    from envs.models import load_model_spec
    from envs.system import load_scenario, make_snapshot

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
    from baselines.deaoff import solve
    from baselines.heuristics import HEURISTICS, run_heuristic

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
    _bar_plots(out, {k: v for k, v in summary["methods"].items()}, "static suite")
    if gantt is not None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from envs.cost import evaluate
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
    args = parser.parse_args(argv)
    command = "python evaluate.py " + " ".join(shlex.quote(a) for a in argv)
    try:
        if args.mode == "static":
            run_static(args.out, args.quick, args.suite, args.seed, command)
    except (UsageError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
