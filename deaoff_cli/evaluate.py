"""Benchmark DeAOff, the classic heuristics and trained agents with the one cost engine.

    python evaluate.py static --out DIR [--quick] [--suite YAML] [--seed S] [--no-map]
        The paper-style table: DeAOff (exact and relaxed) against every traditional method
        (the heuristics and latency-optimal, DeAOff's phase 1 alone) on a suite of models ×
        weight precisions × granularities × phases × scenario presets, and the map
        (deaoff_cli/static_map.py): edge class × background load × uplink rate -> DeAOff's
        latency and energy reduction against the best traditional method.
    python evaluate.py agents --model RUN_DIR_OR_ZIP [--model ...] [--checkpoint final|best]
                              --episodes N --seed S --out DIR [--deadline-ms MS] [--env-config X] [--clairvoyant]
        Trained agents against the myopic optimum, DeAOff-static and the baselines under
        dynamic conditions, on held-out episodes: episode e has seed 2*10^9 + 1000*S + e
        (agents/seeds.py), a range that training and the choice of a run's best model
        never use.  A run directory is evaluated at its final model.zip (the model the run
        ended with) unless --checkpoint best picks best/best_model.zip; the file evaluated
        is printed.

Both write a Markdown table to stdout, ``summary.json`` and CSV files and plots under --out
(created only when the evaluation succeeds).  Bad input: one ``error:`` line, exit 2.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import os
import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from deaoff_cli.config_io import CLIError, positive_finite
from deaoff_cli.evaluate_agents import (  # noqa: F401  (load_agent, DEFAULT_DEADLINE_MS re-exported)
    CHECKPOINTS, DEFAULT_DEADLINE_MS, AgentsEvalConfig, load_agent, run_agents)
from deaoff_cli.plots import bar_plots

STATIC_SUITE = Path(__file__).resolve().parent.parent / "configs" / "suites" / "static.yaml"
STATIC_QUICK = Path(__file__).resolve().parent.parent / "configs" / "suites" / "static-quick.yaml"
UsageError = CLIError
"""Bad input from the user: reported in one line, exit code 2."""


# --------------------------------------------------------------------------- static mode
GRANULARITIES = ("block", "sublayer", "head")
PHASES = ("decode", "prefill")
WEIGHT_DTYPES = ("fp16", "int8", "int4")


@dataclass
class StaticSuite:
    """A suite YAML: every model x granularity x phase x scenario is one instance."""

    models: list[str]
    """Model presets or config.json paths."""
    granularities: list[str]
    """Any of block, sublayer, head."""
    phases: list[str]
    """Any of decode, prefill."""
    scenarios: list[str]
    """Scenario presets or YAML paths."""
    prompt_len: int = 256
    """Prompt tokens."""
    context_len: int = 512
    """Context length of the decode token."""
    sublayer_time_limit_s: float = 120.0
    """MILP time limit of the exact solver on sublayer/head DAGs."""
    weight_dtypes: list[str] = dataclasses.field(default_factory=lambda: ["fp16"])
    """Weight precisions (fp16, int8, int4; quantisation scales counted, core/dag.py)."""

    @classmethod
    def load(cls, path: Path) -> "StaticSuite":
        """Read and check a suite file; every problem is one UsageError naming the file and key."""
        if not path.is_file():
            raise UsageError(f"suite file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise UsageError(f"suite {path}: not valid YAML ({' '.join(str(exc).split())})") from None
        if not isinstance(data, dict):
            raise UsageError(f"suite {path}: expected a mapping of keys, got {type(data).__name__}")
        fields = cls.__dataclass_fields__
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise UsageError(f"suite {path}: unknown key(s) {unknown}; known: {sorted(fields)}")
        required = ("models", "granularities", "phases", "scenarios")
        missing = [k for k in required if k not in data]
        if missing:
            raise UsageError(f"suite {path}: missing key(s) {missing}")
        for key in required:
            value = data[key]
            if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
                raise UsageError(f"suite {path}: {key} must be a non-empty list of names, got {value!r}")
        for key, allowed in (("granularities", GRANULARITIES), ("phases", PHASES)):
            bad = [v for v in data[key] if v not in allowed]
            if bad:
                raise UsageError(f"suite {path}: {key}: unknown {bad}; choose from {list(allowed)}")
        dtypes = data.get("weight_dtypes", ["fp16"])
        if not isinstance(dtypes, list) or not dtypes or any(d not in WEIGHT_DTYPES for d in dtypes):
            raise UsageError(f"suite {path}: weight_dtypes must be a non-empty list of {list(WEIGHT_DTYPES)}, "
                             f"got {dtypes!r}")
        for key in ("prompt_len", "context_len"):
            value = data.get(key, fields[key].default)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"suite {path}: {key} must be an integer >= 1, got {value!r}")
        try:
            positive_finite(data.get("sublayer_time_limit_s", fields["sublayer_time_limit_s"].default),
                            "sublayer_time_limit_s")
        except CLIError as exc:
            raise UsageError(f"suite {path}: {exc}") from None
        return cls(**data)

    def check_names(self) -> None:
        """Every model and scenario name resolves (before any solve or output)."""
        from core.models import load_model_spec
        from core.system import load_scenario

        for what, names, load in (("model", self.models, load_model_spec), ("scenario", self.scenarios, load_scenario)):
            for name in names:
                try:
                    load(name)
                except (ValueError, FileNotFoundError, OSError) as exc:
                    raise UsageError(f"suite: {what} {name!r}: {' '.join(str(exc).split())}") from None


def _static_instances(suite: StaticSuite):
    from core.dag import build_dag
    from core.instance import make_instance
    from core.models import load_model_spec
    from core.system import load_scenario, make_snapshot

    snapshots = {scen: (load_scenario(scen).num_servers, make_snapshot(load_scenario(scen)))
                 for scen in suite.scenarios}
    for model in suite.models:
        spec = load_model_spec(model)
        for dtype in suite.weight_dtypes:
            for gran in suite.granularities:
                for phase in suite.phases:
                    kw = {"context_len": suite.context_len} if phase == "decode" else {}
                    graph = build_dag(spec, gran, phase, prompt_len=suite.prompt_len, weight_dtype=dtype, **kw)
                    for scen in suite.scenarios:
                        servers, snap = snapshots[scen]
                        inst = make_instance(graph, snap)
                        sid = f"{model}/{dtype}/{gran}/{phase}/{scen}"
                        yield sid, {"model": model, "weight_dtype": dtype, "granularity": gran, "phase": phase,
                                    "scenario": scen, "servers": servers, "nodes": inst.num_nodes}, inst


def quiet_highs_banner() -> None:
    """HiGHS prints a banner once per process when the first ``Highs()`` is built, on the C
    stdout: build one here with file descriptor 1 pointed at /dev/null, so the Markdown
    table printed by the CLI stays clean (CLI only; the library is left alone)."""
    try:
        import highspy
    except ImportError:  # pragma: no cover - highspy is a dependency
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            with contextlib.redirect_stdout(null):
                highspy.Highs()
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def evaluate_methods(inst, limit: float | None, seed: int) -> tuple[dict[str, dict[str, Any]], Any]:
    """DeAOff (exact, relaxed) and every traditional method on one instance.  The
    ``latency-optimal`` row is the exact solve's own phase-1 placement (the baseline
    ``solvers.heuristics.latency_optimal`` computes the same phase 1, with the whole time
    limit instead of at most half of it)."""
    from core.cost import evaluate
    from solvers.deaoff import solve
    from solvers.heuristics import HEURISTICS, run_heuristic

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
    p1_timed_out = bool(exact.solver_status) and exact.solver_status[0] == "time_limit"
    proven = "optimal" if exact.method == "exact-milp" else "dp_optimal"
    # HiGHS's gap is reported per solve, the larger of the two phases: an upper bound on phase 1's
    methods["latency-optimal"] = _row(evaluate(inst, exact.phase1_placement),
                                      status="time_limit" if p1_timed_out else proven,
                                      gap=exact.mip_gap if p1_timed_out else 0.0)
    return methods, exact


def _static_case(case: tuple) -> tuple:
    """One instance of the suite (a worker of --workers): :func:`evaluate_methods`."""
    _sid, _meta, inst, limit, seed = case
    return evaluate_methods(inst, limit, seed)


def run_static(out: Path, quick: bool, suite_path: Path | None, seed: int, command: str,
               with_map: bool = True, workers: int = 1, backend: str = "local",
               address: str | None = None) -> dict[str, Any]:
    """``workers`` > 1 or ``backend`` ray: the instances are solved in parallel
    (deaoff_cli/parallel.py); the table is the same, only the per-instance wall times differ."""
    from deaoff_cli.parallel import check, parallel_map

    from .static_map import best_traditional, reduction_pct, run_map

    check(workers, backend, address)
    if seed < 0:
        raise UsageError(f"--seed must be >= 0, got {seed}")
    suite = StaticSuite.load(suite_path or (STATIC_QUICK if quick else STATIC_SUITE))
    suite.check_names()
    quiet_highs_banner()
    scenarios: list[dict[str, Any]] = []
    gantt: tuple[Any, Any, str] | None = None
    t_start = time.perf_counter()
    cases = [(sid, meta, inst, suite.sublayer_time_limit_s if meta["granularity"] != "block" else None, seed)
             for sid, meta, inst in _static_instances(suite)]

    def progress(i: int, result: tuple) -> None:
        exact = result[1]
        print(f"  {cases[i][0]:<45} deaoff {exact.result.makespan_s * 1e3:9.2f} ms "
              f"{exact.result.energy_j * 1e3:9.2f} mJ [{exact.status}, {exact.wall_time_s:.2f} s]", file=sys.stderr)

    results = parallel_map(_static_case, cases, workers, backend, address, on_result=progress)
    for (sid, meta, inst, _, _), (methods, exact) in zip(cases, results):
        trad = [n for n in methods if not n.startswith("deaoff")]
        best = best_traditional(methods, exact.latency_bound_s, trad)
        ours = methods["deaoff"]
        scenarios.append({"id": sid, **meta, "phase1_makespan_s": exact.phase1_makespan_s,
                          "latency_bound_s": exact.latency_bound_s, "best_traditional": best,
                          "vs_best_latency_pct": reduction_pct(ours["latency_s"], methods[best]["latency_s"]),
                          "vs_best_energy_pct": reduction_pct(ours["energy_j"], methods[best]["energy_j"]),
                          "methods": methods})
        if gantt is None or (meta["granularity"] == "sublayer" and meta["phase"] == "decode"
                             and gantt[2].split("/")[1] != "sublayer"):
            gantt = (inst, exact, sid)
    map_rows = None
    if with_map:
        def point(inst):
            methods, exact = evaluate_methods(inst, None, seed)
            return {"methods": methods, "bound_s": exact.latency_bound_s,
                    "edge_nodes": sum(1 for k in exact.placement.loc if k != 0)}
        map_rows = run_map(out, point, log=lambda line: print(line, file=sys.stderr))
    summary = _summarise(scenarios, command, {"suite": dataclasses.asdict(suite), "seed": seed,
                                              "wall_time_s": time.perf_counter() - t_start})
    _write_static(out, summary, gantt)
    print(_static_markdown(summary))
    if map_rows is not None:
        from .static_map import MapGrid, map_markdown
        print(map_markdown(map_rows, MapGrid()))
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
    lines += _best_markdown(summary["scenarios"])
    limited = [(s["id"], name, m.get("gap")) for s in summary["scenarios"] for name, m in s["methods"].items()
               if m.get("status") == "time_limit"]
    if limited:
        lines += [f"Time-limited solves ({len(limited)}; best incumbent at the suite's sublayer_time_limit_s, "
                  "HiGHS's relative gap):", ""]
        lines += [f"- {sid} {name}: gap {_fmt(gap, 100.0, 2)}%" for sid, name, gap in limited]
        lines.append("")
    else:
        lines += ["Every DeAOff solve finished proven optimal (no time limit hit).", ""]
    return "\n".join(lines)


def _best_markdown(scenarios: list[dict[str, Any]]) -> list[str]:
    """Per scenario preset and weight precision: DeAOff against the best traditional method
    (the lowest-energy one meeting DeAOff's latency bound), mean / min / max over the rows."""
    lines = ["### DeAOff against the best traditional method, per scenario preset and weight precision", "",
             "Best traditional = the lowest device energy among the traditional methods whose latency meets "
             "DeAOff's own bound (1 + slack)·T*.", "",
             "| preset | weights | rows | latency reduction, mean [min, max] (%) | energy reduction, mean [min, max] (%) "
             "| best traditional (count) |", "|---|---|---:|---:|---:|---|"]
    keys = list(dict.fromkeys((s["scenario"], s.get("weight_dtype", "fp16")) for s in scenarios))
    for scen, dtype in keys:
        group = [s for s in scenarios if (s["scenario"], s.get("weight_dtype", "fp16")) == (scen, dtype)]
        lat = [s["vs_best_latency_pct"] for s in group]
        ene = [s["vs_best_energy_pct"] for s in group]
        counts: dict[str, int] = {}
        for s in group:
            counts[s["best_traditional"]] = counts.get(s["best_traditional"], 0) + 1
        best = ", ".join(f"{n} ({c})" for n, c in sorted(counts.items(), key=lambda x: (-x[1], x[0])))
        lines.append(f"| {scen} | {dtype} | {len(group)} | {np.mean(lat):+.1f} [{min(lat):+.1f}, {max(lat):+.1f}] | "
                     f"{np.mean(ene):+.1f} [{min(ene):+.1f}, {max(ene):+.1f}] | {best} |")
    lines.append("")
    return lines


def _write_static(out: Path, summary: dict[str, Any], gantt) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    with open(out / "results.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["scenario", "model", "weight_dtype", "granularity", "phase", "scenario_preset", "servers", "nodes",
                    "method", "latency_s", "energy_j", "compute_j", "transmit_j", "receive_j", "idle_j",
                    "edge_energy_j", "status", "gap"])
        for s in summary["scenarios"]:
            for name, m in s["methods"].items():
                w.writerow([s["id"], s["model"], s["weight_dtype"], s["granularity"], s["phase"], s["scenario"],
                            s["servers"], s["nodes"], name]
                           + [m.get(k) for k in ("latency_s", "energy_j", "compute_j", "transmit_j", "receive_j",
                                                 "idle_j", "edge_energy_j", "status", "gap")])
    bar_plots(out, summary["methods"], "static suite")
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


# --------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    fields = AgentsEvalConfig.__dataclass_fields__
    defaults = argparse.Namespace(**{k: fields[k].default for k in ("checkpoint", "episodes", "seed", "deadline_ms")})
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    st = sub.add_parser("static", help="DeAOff vs the classic heuristics on the static suite")
    st.add_argument("--out", required=True, type=Path)
    st.add_argument("--quick", action="store_true", help="the reduced suite (under a minute)")
    st.add_argument("--suite", type=Path, default=None, help="a suite YAML (default configs/suites/static.yaml)")
    st.add_argument("--seed", type=int, default=0, help="seed of the random baseline")
    st.add_argument("--no-map", action="store_true", help="skip the map (edge class x background load x uplink "
                    "rate; map.png, map.csv, map.md)")
    st.add_argument("--workers", type=int, default=1, help="instances solved at once (default 1)")
    st.add_argument("--backend", default="local", help="local (default: a process pool) or ray")
    st.add_argument("--address", help="--backend ray: a Ray cluster's address (default: a local instance)")
    ag = sub.add_parser("agents",
                        help="trained agents vs the myopic optimum, DeAOff-static and the non-learned baselines")
    ag.add_argument("--model", action="append", default=[], help="a train.py run directory or model zip "
                    "(repeat for several agents); with none, only DeAOff and the heuristics run")
    ag.add_argument("--checkpoint", choices=list(CHECKPOINTS), default=defaults.checkpoint,
                    help="which model of a run directory: final = model.zip, the model the run ended with "
                         "(default); best = best/best_model.zip, chosen on the run's model-selection episodes")
    ag.add_argument("--episodes", type=int, default=defaults.episodes, help="held-out episodes per method")
    ag.add_argument("--seed", type=int, default=defaults.seed,
                    help="held-out seed S: episode e has seed 2*10^9 + 1000*S + e (agents/seeds.py)")
    ag.add_argument("--out", required=True, type=Path)
    ag.add_argument("--deadline-ms", type=float, default=defaults.deadline_ms, help="per decode token (ms)")
    ag.add_argument("--env-config", default=None, help="env config overrides (YAML/JSON file or inline mapping)")
    ag.add_argument("--clairvoyant", action="store_true", help="also solve each episode's clairvoyant plan "
                    "and report the share of its gap each method closes (weighted objective; seconds per episode)")
    ag.add_argument("--no-progress", action="store_true", help="no progress bars")
    ag.add_argument("--workers", type=int, default=1, help="methods played at once (default 1)")
    ag.add_argument("--backend", default="local", help="local (default: a process pool) or ray")
    ag.add_argument("--address", help="--backend ray: a Ray cluster's address (default: a local instance)")
    from . import hardware  # calibration / predict (the hardware catalogue)
    hardware.add_commands(sub)
    from . import evaluate_multi  # multi (many users on the shared edge)
    evaluate_multi.add_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if hasattr(args, "hardware_command"):
        from . import hardware
        return hardware.run(args, argv)
    command = "python evaluate.py " + " ".join(shlex.quote(a) for a in argv)
    try:
        if hasattr(args, "multi_command"):
            from . import evaluate_multi
            return evaluate_multi.run(args, command)
        if args.mode == "static":
            run_static(args.out, args.quick, args.suite, args.seed, command, with_map=not args.no_map,
                       workers=args.workers, backend=args.backend, address=args.address)
        else:
            run_agents(AgentsEvalConfig(out=args.out, models=args.model, episodes=args.episodes, seed=args.seed,
                                        deadline_ms=args.deadline_ms, env_config=args.env_config,
                                        checkpoint=args.checkpoint, progress=not args.no_progress,
                                        clairvoyant=args.clairvoyant, command=command, workers=args.workers,
                                        backend=args.backend, address=args.address))
    except (CLIError, ValueError, FileNotFoundError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
