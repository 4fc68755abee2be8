"""Solve times of DeAOff (exact two-phase and relaxed) on Llama-2-7B decode instances.

For each granularity (block: a chain of 34 nodes; sublayer: 130 nodes with residual
edges) and each number of edge servers, ``--seeds`` random systems are drawn
(``core.system.sample_scenario`` + ``make_snapshot`` with Rayleigh fading and log-normal
shadowing), with the default 4 DVFS and 4 transmit-power levels, context 512.

Columns: exact = ``solve(mode="exact")`` (block: the chain DP; sublayer: the MILP, time
limit ``--time-limit``); MILP = the same without the DP (block only; ``--no-milp`` skips it);
relaxed = ``solve(mode="relaxed", exact=...)``: its phase 2 uses the exact answer's latency
bound, so the energy gap compares equal constraints; speed-up = median over instances of
exact time / relaxed time; vs MILP = the same against the exact MILP (the MILP column at
block level, where "exact" is the chain DP; the exact column at sublayer level); gap T = relaxed phase-1 makespan vs T*; gap E = relaxed energy vs
the exact optimum (inf when the relaxed placement cannot meet the bound).

``--kv-on-device`` adds the harder case where every attention node's KV cache (511 tokens)
sits on the device, so moving it costs a migration.

``--scaling`` instead times the exact solver alone on a Llama-2-70B-class model (fp16
weights, block granularity: 82 nodes, about 137 GB of weights, so the 40 GB servers'
memory binds) with ``--scaling-servers`` servers: CPU time (``time.process_time``), status,
gap, how each phase was settled.  The 70B shape is Llama-2-70B's published configuration:
hidden 8192, 80 layers, 64 heads, 8 KV heads, FFN 28672, vocabulary 32000 (Meta's
``params.json`` and tensor shapes, quoted in
https://datascience.stackexchange.com/questions/126942).

    python benchmarks/bench_solver.py --quick
    python benchmarks/bench_solver.py --seeds 5 --kv-on-device
    python benchmarks/bench_solver.py --scaling --seeds 2
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
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
                   kv_on_device: bool) -> list[Instance]:
    spec = model if isinstance(model, ModelSpec) else load_model_spec(model)
    graph = build_dag(spec, granularity, "decode", context_len=512)
    kv_loc, kv_move = {}, {}
    if kv_on_device:
        for name, attrs in graph.nodes(data=True):
            if attrs["kv_bytes"] > 0:
                kv_loc[name] = 0
                kv_move[name] = attrs["kv_bytes"] * 511 / 512  # the cache before this token
    out = []
    for seed in range(seeds):
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


def run_scaling(servers: list[int], seeds: int, time_limit: float) -> None:
    """The exact solver alone on the 70B fp16 block chain (CPU time per solve)."""
    print(f"DeAOff exact on llama-2-70b (fp16, block, decode, context 512), {seeds} channel draws per "
          f"row, CPU seconds (time limit {time_limit:g} s)")
    header = f"{'M':>2} {'nodes':>5} {'median':>9} {'max':>9} {'proven':>6} {'max gap':>8}  settled by"
    print(header)
    print("-" * len(header))
    for m in servers:
        insts = make_instances(LLAMA2_70B, "block", m, seeds, False)
        times, proven, gaps, how = [], 0, [], set()
        for inst in insts:
            t = time.process_time()
            sol = solve(inst, time_limit_s=time_limit)
            times.append(time.process_time() - t)
            proven += sol.status in ("optimal", "dp_optimal")
            gaps.append(sol.mip_gap)
            how.add("+".join(sol.solver_status))
        print(f"{m:>2} {insts[0].num_nodes:>5} {_fmt_s(_median(times)):>9} {_fmt_s(max(times)):>9} "
              f"{proven:>3}/{len(insts):<2} {_fmt_gap(max(gaps)):>8}  {', '.join(sorted(how))}", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 seeds instead of --seeds")
    ap.add_argument("--seeds", type=int, default=5, help="random channel draws per row (default 5)")
    ap.add_argument("--servers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--granularity", nargs="+", default=["block", "sublayer"], choices=["block", "sublayer"])
    ap.add_argument("--model", default="llama-2-7b")
    ap.add_argument("--time-limit", type=float, default=120.0, help="per exact solve, seconds (default 120)")
    ap.add_argument("--no-milp", action="store_true", help="skip the MILP-without-DP column at block level")
    ap.add_argument("--kv-on-device", action="store_true", help="also rows with every KV cache on the device")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per instance (stderr)")
    ap.add_argument("--scaling", action="store_true", help="time the exact solver on the 70B fp16 block chain")
    ap.add_argument("--scaling-servers", type=int, nargs="+", default=[4, 8, 16])
    args = ap.parse_args(argv)
    for name in ("seeds", "time_limit"):
        if not getattr(args, name) > 0:
            ap.error(f"--{name.replace('_', '-')} must be > 0")
    if any(m < 1 for m in args.servers + args.scaling_servers):
        ap.error("server counts must be >= 1")
    seeds = 2 if args.quick else args.seeds
    _quiet_highs()
    if args.scaling:
        run_scaling(args.scaling_servers, seeds, args.time_limit)
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
