"""Solve times of DeAOff (exact two-phase and relaxed) on Llama-2-7B decode instances.

For each granularity (block: a chain of 34 nodes; sublayer: 130 nodes with residual
edges) and each number of edge servers, ``--seeds`` random systems are drawn
(``core.system.sample_scenario`` + ``make_snapshot`` with Rayleigh fading and log-normal
shadowing), with the default 4 DVFS and 4 transmit-power levels, context 512.

Columns: exact = ``solve(mode="exact")`` (block: the chain DP; sublayer: the series
cut-chain MILP; head: the general MILP; time limit ``--time-limit``); MILP = the same
without the DP (block only; ``--no-milp`` skips it);
relaxed = ``solve(mode="relaxed", exact=...)``: its phase 2 uses the exact answer's latency
bound, so the energy gap compares equal constraints; speed-up = median over instances of
exact time / relaxed time; vs MILP = the same against the exact MILP (the MILP column at
block level, where "exact" is the chain DP; the exact column at sublayer level); gap T = relaxed phase-1 makespan vs T*; gap E = relaxed energy vs
the exact optimum (inf when the relaxed placement cannot meet the bound).

``--kv-on-device`` adds the harder case where every attention node's KV cache (511 tokens)
sits on the device, so moving it costs a migration.

``--scaling`` instead runs the grid model depth (Llama-2-7B, a Llama-2-70B-class model)
× weight format (fp16, int4: Q4_0) × granularity (block, sublayer, head) × servers
(1-16), each case in a fresh subprocess: exact CPU time (``time.process_time``), status,
gap, relaxed CPU time, speed-up and energy gap against exact, whether relaxed meets the
bound, peak resident memory of the case's process (``resource.getrusage``), and how each
phase was settled; a Markdown table.  (70B fp16 at block granularity is 82 nodes and about
137 GB of weights, so the 40 GB servers' memory binds.)  The 70B shape is Llama-2-70B's published configuration:
hidden 8192, 80 layers, 64 heads, 8 KV heads, FFN 28672, vocabulary 32000 (Meta's
``params.json`` and tensor shapes, quoted in
https://datascience.stackexchange.com/questions/126942).

    python benchmarks/bench_solver.py --quick
    python benchmarks/bench_solver.py --seeds 5 --kv-on-device
    python benchmarks/bench_solver.py --scaling --seeds 2
    python benchmarks/bench_solver.py --scaling --scaling-models 70b --scaling-dtypes fp16 \
        --granularity block --scaling-servers 4 8 16 --time-limit 60

``--reference TOKENS`` instead times the environment's per-token reference: a
DecoderOffload-v1 episode at the default setting (``--env-config`` JSON overrides it) with
``report_myopic=True`` and seeded uniformly random valid actions records every instance
the env hands to ``envs.reference.deaoff_reference_result``; that sequence is then solved
again, once on fresh chain tables and once through a ``TableCache`` (the previous token's
unchanged parts reused, as the env does), in CPU time (best of ``--repeats``), and the two
answers are checked equal token by token.

    python benchmarks/bench_solver.py --reference 400
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from solvers.deaoff import solve  # noqa: E402
from core.dag import build_dag  # noqa: E402
from core.instance import Instance, make_instance  # noqa: E402
from core.models import ModelSpec, load_model_spec  # noqa: E402
from core.system import make_snapshot, sample_scenario  # noqa: E402


def _quiet_highs() -> None:
    """highspy prints a banner to the C-level stdout when the first solver object of a
    process is made, before any option can turn it off; this script prints a table to
    stdout, so it makes that first object itself with its own stdout pointed elsewhere
    (the solver library never touches the process's file descriptors)."""
    import highspy

    sys.stdout.flush()
    fd = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            highspy.Highs()
    finally:
        os.dup2(fd, 1)
        os.close(fd)


LLAMA2_70B = ModelSpec(name="llama-2-70b", arch="llama", hidden_size=8192, num_layers=80, num_heads=64,
                       num_kv_heads=8, intermediate_size=28672, vocab_size=32000, tie_word_embeddings=False)
"""Llama-2-70B's shape (module docstring for the source)."""


def make_instances(model: str | ModelSpec, granularity: str, servers: int, seeds: int,
                   kv_on_device: bool, weight_dtype: str = "fp16", first_seed: int = 0) -> list[Instance]:
    spec = model if isinstance(model, ModelSpec) else load_model_spec(model)
    graph = build_dag(spec, granularity, "decode", context_len=512, weight_dtype=weight_dtype)
    kv_loc, kv_move = {}, {}
    if kv_on_device:
        for name, attrs in graph.nodes(data=True):
            if attrs["kv_bytes"] > 0:
                kv_loc[name] = 0
                kv_move[name] = attrs["kv_bytes"] * 511 / 512  # the cache before this token
    out = []
    for seed in range(first_seed, first_seed + seeds):
        rng = np.random.default_rng(seed)
        scenario = sample_scenario(rng, num_servers=servers)
        snap = make_snapshot(scenario, fading_power=list(rng.exponential(1.0, servers)),
                             shadowing_db=[float(rng.normal(0.0, s.shadowing_std_db)) for s in scenario.servers])
        out.append(make_instance(graph, snap, kv_loc=kv_loc, kv_move_bytes=kv_move))
    return out


def _fmt_s(x: float) -> str:
    if not math.isfinite(x):
        return "-"
    return f"{x * 1e3:.1f} ms" if x < 1.0 else f"{x:.2f} s"


def _fmt_gap(x: float) -> str:
    return "inf" if not math.isfinite(x) else f"{100 * x:.2f}%"


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def run_row(insts: list[Instance], time_limit: float, milp_too: bool, verbose: bool) -> dict:
    ex_t, milp_t, rx_t, ratio, gap_t, gap_e, proven, methods = [], [], [], [], [], [], 0, set()
    ratio_milp = []
    for k, inst in enumerate(insts):
        t = time.perf_counter()
        ex = solve(inst, time_limit_s=time_limit)
        ex_t.append(time.perf_counter() - t)
        proven += ex.status in ("optimal", "dp_optimal")
        methods.add(ex.method)
        if milp_too:
            t = time.perf_counter()
            mi = solve(inst, time_limit_s=time_limit, use_dp=False)
            milp_t.append(time.perf_counter() - t)
            if abs(mi.energy_j - ex.energy_j) > 1e-6 * ex.energy_j and mi.status == "optimal":
                raise RuntimeError(f"DP and MILP disagree: {ex.energy_j} vs {mi.energy_j}")
        t = time.perf_counter()
        rx = solve(inst, mode="relaxed", exact=ex)
        rx_t.append(time.perf_counter() - t)
        ratio.append(ex_t[-1] / rx_t[-1])
        ratio_milp.append((milp_t[-1] if milp_too else ex_t[-1]) / rx_t[-1])
        gap_t.append(rx.info["phase1_gap"])
        gap_e.append(rx.gap_vs_exact if rx.gap_vs_exact is not None else float("inf"))
        if verbose:
            print(f"    seed {k}: exact {ex.status} {_fmt_s(ex_t[-1])} (gap {ex.mip_gap:.2e}), relaxed "
                  f"{_fmt_s(rx_t[-1])}, gap T {_fmt_gap(gap_t[-1])}, gap E {_fmt_gap(gap_e[-1])}, "
                  f"T* {ex.phase1_makespan_s * 1e3:.2f} ms, device nodes {ex.placement.loc.count(0)}",
                  file=sys.stderr, flush=True)
    return {"exact": _median(ex_t), "exact_max": max(ex_t), "milp": _median(milp_t), "relaxed": _median(rx_t),
            "speedup": _median(ratio), "speedup_milp": _median(ratio_milp), "gap_t": _median(gap_t), "gap_t_max": max(gap_t),
            "gap_e": _median(gap_e), "gap_e_max": max(gap_e), "proven": proven, "n": len(insts),
            "method": "/".join(sorted(methods))}


SCALING_MODELS = {"7b": "llama-2-7b", "70b": LLAMA2_70B}


def scaling_case(model: str, dtype: str, gran: str, servers: int, seed: int, time_limit: float,
                 relaxed: bool) -> dict:
    """One case of the scaling grid, measured in this process (run it in a fresh process:
    its peak resident memory is the case's).  CPU times by ``time.process_time``."""
    inst = make_instances(SCALING_MODELS[model], gran, servers, 1, False, dtype, seed)[0]
    t = time.process_time()
    try:
        ex = solve(inst, time_limit_s=time_limit)
    except ValueError as err:  # nothing fits (e.g. 70B fp16 on one or two 40 GB servers)
        return {"model": model, "dtype": dtype, "granularity": gran, "servers": servers, "seed": seed,
                "nodes": inst.num_nodes, "infeasible": str(err), "exact_cpu_s": time.process_time() - t,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    ex_cpu = time.process_time() - t
    row = {"model": model, "dtype": dtype, "granularity": gran, "servers": servers, "seed": seed,
           "nodes": inst.num_nodes, "exact_cpu_s": ex_cpu, "status": ex.status, "gap": ex.mip_gap,
           "how": "+".join(ex.solver_status), "method": ex.method}
    if relaxed:
        t = time.process_time()
        rx = solve(inst, mode="relaxed", exact=ex)
        row.update(relaxed_cpu_s=time.process_time() - t, relaxed_status=rx.status,
                   relaxed_gap=rx.gap_vs_exact if rx.gap_vs_exact is not None else float("inf"),
                   relaxed_gap_t=rx.info.get("phase1_gap", float("nan")))
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    return row


def inst_need_gb(row: dict) -> str:
    """The memory sentence of an infeasible case (from the solver's ValueError)."""
    msg = row["infeasible"]
    return msg.split(": ", 1)[-1] if "GB" in msg else msg


def run_scaling(models: list[str], dtypes: list[str], grans: list[str], servers: list[int], seeds: int,
                time_limit: float, relaxed: bool, verbose: bool) -> None:
    """The scaling grid (model depth × weight format × granularity × servers), each case in
    a fresh subprocess; prints a Markdown table (medians over the channel draws; status
    counts; the largest gap and peak memory)."""
    print(f"DeAOff exact (and relaxed) on Llama-2 decode, context 512, {seeds} channel draw(s) per row, "
          f"CPU seconds per solve (time limit {time_limit:g} s), peak resident memory per case")
    print()
    print("| model | weights | granularity | M | nodes | exact CPU (median / max) | proven | max gap | "
          "relaxed CPU | speed-up | relaxed gap E (median / max) | relaxed meets bound | peak RSS | settled by |")
    print("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
    for model in models:
        for dtype in dtypes:
            for gran in grans:
                for m in servers:
                    rows = []
                    for seed in range(seeds):
                        cmd = [sys.executable, __file__, "--scaling-case", model, dtype, gran, str(m), str(seed),
                               "--time-limit", str(time_limit)] + ([] if relaxed else ["--no-relaxed"])
                        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
                        if out.returncode != 0:
                            raise RuntimeError(f"case {model} {dtype} {gran} M={m} seed {seed} failed:\n"
                                               f"{out.stderr.strip()}")
                        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                        if verbose:
                            print(f"    {rows[-1]}", file=sys.stderr, flush=True)
                    if any("infeasible" in r for r in rows):
                        gb = inst_need_gb(rows[0])
                        print(f"| {model} | {dtype} | {gran} | {m} | {rows[0]['nodes']} | infeasible: {gb} | - | - | "
                              f"- | - | - | - | {max(r['peak_rss_mb'] for r in rows):.0f} MB | - |", flush=True)
                        continue
                    ex = [r["exact_cpu_s"] for r in rows]
                    proven = sum(r["status"] in ("optimal", "dp_optimal") for r in rows)
                    line = (f"| {model} | {dtype} | {gran} | {m} | {rows[0]['nodes']} | {_fmt_s(_median(ex))} / "
                            f"{_fmt_s(max(ex))} | {proven}/{len(rows)} | {_fmt_gap(max(r['gap'] for r in rows))} | ")
                    if relaxed:
                        rx = [r["relaxed_cpu_s"] for r in rows]
                        sp = _median([a / b for a, b in zip(ex, rx)])
                        gaps = [r["relaxed_gap"] for r in rows]
                        meets = sum(r["relaxed_status"] == "relaxed" for r in rows)
                        line += (f"{_fmt_s(_median(rx))} | {sp:.1f}x | {_fmt_gap(_median(gaps))} / "
                                 f"{_fmt_gap(max(gaps))} | {meets}/{len(rows)} | ")
                    else:
                        line += "- | - | - | - | "
                    how = sorted({r["how"] for r in rows})
                    line += f"{max(r['peak_rss_mb'] for r in rows):.0f} MB | {', '.join(how)} |"
                    print(line, flush=True)


def record_reference_calls(tokens: int, config: dict | None, seed: int = 0) -> list[tuple[Instance, dict]]:
    """The (instance, arguments) of every reference solve of a DecoderOffload-v1 run with
    ``report_myopic`` on, until ``tokens`` solves are recorded (seeded random valid actions)."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the environments)
    import envs.reference as ref

    calls: list[tuple[Instance, dict]] = []
    real = ref.deaoff_reference_result

    def recording(inst: Instance, **kw):
        calls.append((inst, kw))
        return real(inst, **kw)

    ref.deaoff_reference_result = recording  # the env imports it at call time
    try:
        env = gym.make("DecoderOffload-v1", config={**(config or {}), "report_myopic": True})
        u = env.unwrapped
        rng = np.random.default_rng(seed)
        env.reset(seed=seed)
        while len(calls) < tokens:
            allowed = np.flatnonzero(u.action_masks())
            _, _, terminated, truncated, _ = env.step(int(allowed[int(rng.random() * len(allowed))]))
            if terminated or truncated:
                env.reset()
    finally:
        ref.deaoff_reference_result = real
    return calls[:tokens]


def run_reference(tokens: int, config: dict | None, repeats: int) -> dict:
    """CPU ms per token of the recorded reference solves, on fresh tables and through a
    table cache; RuntimeError if the two answers differ on any token."""
    from envs.reference import deaoff_reference_result
    from solvers.deaoff import TableCache

    calls = record_reference_calls(tokens, config)
    out: dict = {"tokens": len(calls)}
    answers = {}
    for name, make in (("fresh", lambda: None), ("reused", TableCache)):
        best = float("inf")
        for _ in range(repeats):
            cache = make()
            got = []
            # fresh copies: an instance caches its link arrays on first use, which every
            # token of a real episode pays
            fresh = [(inst.with_token_state(inst.system), kw) for inst, kw in calls]
            t = time.process_time()
            for inst, kw in fresh:
                got.append(deaoff_reference_result(inst, **{**kw, "table_cache": cache}))
            best = min(best, time.process_time() - t)
        out[name + "_ms"] = 1e3 * best / len(calls)
        answers[name] = got
    for k, ((p1, r1), (p2, r2)) in enumerate(zip(answers["fresh"], answers["reused"])):
        if p1 != p2 or r1.makespan_s != r2.makespan_s or r1.energy_j != r2.energy_j:
            raise RuntimeError(f"token {k}: the reused tables' answer differs from the fresh tables'")
    inst = calls[0][0]
    out.update(nodes=inst.num_nodes, locations=inst.num_locations)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 seeds instead of --seeds")
    ap.add_argument("--seeds", type=int, default=5, help="random channel draws per row (default 5)")
    ap.add_argument("--servers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--granularity", nargs="+", default=["block", "sublayer"], choices=["block", "sublayer", "head"],
                    help="(default block sublayer; with --scaling block sublayer head)")
    ap.add_argument("--model", default="llama-2-7b")
    ap.add_argument("--time-limit", type=float, default=120.0, help="per exact solve, seconds (default 120)")
    ap.add_argument("--no-milp", action="store_true", help="skip the MILP-without-DP column at block level")
    ap.add_argument("--kv-on-device", action="store_true", help="also rows with every KV cache on the device")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per instance (stderr)")
    ap.add_argument("--scaling", action="store_true",
                    help="the scaling grid: --scaling-models x --scaling-dtypes x --granularity x --scaling-servers")
    ap.add_argument("--scaling-models", nargs="+", default=["7b", "70b"], choices=sorted(SCALING_MODELS))
    ap.add_argument("--scaling-dtypes", nargs="+", default=["fp16", "int4"], choices=["fp16", "int8", "int4"])
    ap.add_argument("--scaling-servers", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--no-relaxed", action="store_true", help="--scaling: time the exact solver only")
    ap.add_argument("--reference", type=int, metavar="TOKENS", default=None,
                    help="time the env's per-token reference over TOKENS recorded solves (ms/token, CPU)")
    ap.add_argument("--env-config", type=json.loads, default=None, help="--reference: env config overrides (JSON)")
    ap.add_argument("--repeats", type=int, default=5, help="--reference: timing repeats, best kept (default 5)")
    ap.add_argument("--scaling-case", nargs=5, metavar=("MODEL", "DTYPE", "GRAN", "M", "SEED"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.scaling_case:
        model, dtype, gran, m, seed = args.scaling_case
        _quiet_highs()
        row = scaling_case(model, dtype, gran, int(m), int(seed), args.time_limit, not args.no_relaxed)
        print(json.dumps(row))
        return
    for name in ("seeds", "time_limit"):
        if not getattr(args, name) > 0:
            ap.error(f"--{name.replace('_', '-')} must be > 0")
    if any(m < 1 for m in args.servers + args.scaling_servers):
        ap.error("server counts must be >= 1")
    seeds = 2 if args.quick else args.seeds
    _quiet_highs()
    if args.reference is not None:
        if args.reference < 1 or args.repeats < 1:
            ap.error("--reference and --repeats must be >= 1")
        r = run_reference(args.reference, args.env_config, args.repeats)
        print(f"DeAOff reference per env token: DecoderOffload-v1 {json.dumps(args.env_config or {})} "
              f"({r['nodes']} nodes, {r['locations']} locations), {r['tokens']} recorded solves, CPU time, "
              f"best of {args.repeats}")
        print(f"  fresh tables : {r['fresh_ms']:.3f} ms/token")
        print(f"  reused tables: {r['reused_ms']:.3f} ms/token (answers identical token by token)")
        print("  target: <= 0.25 ms/token")
        return
    if args.scaling:
        grans = args.granularity if "--granularity" in (argv if argv is not None else sys.argv) else \
            ["block", "sublayer", "head"]
        run_scaling(args.scaling_models, args.scaling_dtypes, grans, args.scaling_servers, seeds,
                    args.time_limit, not args.no_relaxed, args.verbose)
        return
    kv_cases = [False, True] if args.kv_on_device else [False]
    header = (f"{'granularity':<11} {'KV':<7} {'M':>2} {'nodes':>5} {'exact':>10} {'max':>9} {'proven':>6} "
              f"{'MILP':>9} {'relaxed':>9} {'speed-up':>8} {'vs MILP':>8} {'gap T':>7} {'max':>7} {'gap E':>7} {'max':>7}  method")
    print(f"DeAOff solve times: {args.model} decode, context 512, 4 DVFS x 4 tx levels, "
          f"{seeds} channel draws per row, medians (time limit {args.time_limit:g} s)")
    print(header)
    print("-" * len(header))
    for gran in args.granularity:
        for kv in kv_cases:
            for m in args.servers:
                insts = make_instances(args.model, gran, m, seeds, kv)
                r = run_row(insts, args.time_limit, gran == "block" and not args.no_milp, args.verbose)
                print(f"{gran:<11} {'device' if kv else 'none':<7} {m:>2} {insts[0].num_nodes:>5} "
                      f"{_fmt_s(r['exact']):>10} {_fmt_s(r['exact_max']):>9} {r['proven']:>3}/{r['n']:<2} "
                      f"{_fmt_s(r['milp']):>9} {_fmt_s(r['relaxed']):>9} {r['speedup']:>7.1f}x {r['speedup_milp']:>7.1f}x "
                      f"{_fmt_gap(r['gap_t']):>7} {_fmt_gap(r['gap_t_max']):>7} "
                      f"{_fmt_gap(r['gap_e']):>7} {_fmt_gap(r['gap_e_max']):>7}  {r['method']}", flush=True)


if __name__ == "__main__":
    main()
