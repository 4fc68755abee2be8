"""Cost-engine throughput: evaluations per second of ``core.cost.evaluate``.

Llama-2-7B decode (context 129) at ``block`` (34 nodes) and ``sublayer`` (130 nodes)
granularity on ``configs/scenarios/city-multi-edge.yaml`` (1 device + 4 edge servers), single
process.  Placements are random but seeded and pre-generated: each node draws a location
uniformly among those that are up and still have memory for it (the shared
``feasible_locations`` helper), plus a random DVFS and transmit-power level; so every
placement passes ``evaluate``'s default checks, which stay ON in the main figures.

    python benchmarks/bench_cost.py [--seconds 1.0] [--profile]

Target: >= 10,000 evaluations/s at block granularity with record=False.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.cost import evaluate, feasible_locations  # noqa: E402
from core.dag import build_dag  # noqa: E402
from core.instance import Instance, Placement, make_instance  # noqa: E402
from core.system import load_scenario, make_snapshot  # noqa: E402

TARGET_EVALS_PER_S = 10_000
NUM_PLACEMENTS = 256


def random_placements(inst: Instance, rng: np.random.Generator, count: int) -> list[Placement]:
    """Seeded memory-feasible placements with random DVFS and transmit-power levels."""
    nf, nt = len(inst.system.device.freqs_hz), len(inst.system.device.tx_powers_w)
    out = []
    for _ in range(count):
        used = [0.0] * inst.num_locations
        loc = []
        for i in range(inst.num_nodes):
            ok = [k for k, fits in enumerate(feasible_locations(inst, i, used)) if fits]
            k = int(rng.choice(ok))
            used[k] += inst.mem_need[i]
            loc.append(k)
        out.append(Placement(loc, [int(x) for x in rng.integers(0, nf, inst.num_nodes)],
                             [int(x) for x in rng.integers(0, nt, inst.num_nodes)]))
    return out


def rate(inst: Instance, placements: list[Placement], seconds: float, **kw) -> float:
    """Evaluations per second over at least ``seconds`` of wall time (after one warm-up pass)."""
    for pl in placements:
        evaluate(inst, pl, **kw)
    n, t0 = 0, time.perf_counter()
    while True:
        for pl in placements:
            evaluate(inst, pl, **kw)
        n += len(placements)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="wall time per measurement")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile", action="store_true", help="cProfile the block record=False run")
    args = ap.parse_args()

    snap = make_snapshot(load_scenario("city-multi-edge"))
    rng = np.random.default_rng(args.seed)
    rows = []
    for gran in ("block", "sublayer"):
        inst = make_instance(build_dag("llama-2-7b", gran, "decode"), snap)
        pls = random_placements(inst, rng, NUM_PLACEMENTS)
        rows.append((gran, inst.num_nodes,
                     rate(inst, pls, args.seconds, record=False),
                     rate(inst, pls, args.seconds, record=True),
                     rate(inst, pls, args.seconds, record=False, check=False)))
        if args.profile and gran == "block":
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(20):
                for pl in pls:
                    evaluate(inst, pl, record=False)
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(12)

    print(f"cost engine, llama-2-7b decode, city-multi-edge (1 device + 4 servers), "
          f"{NUM_PLACEMENTS} seeded feasible placements, single process")
    print(f"{'granularity':<12}{'nodes':>6}{'record=False':>15}{'record=True':>14}{'no check':>12}   evals/s")
    for gran, n, fast, rec, nocheck in rows:
        print(f"{gran:<12}{n:>6}{fast:>15,.0f}{rec:>14,.0f}{nocheck:>12,.0f}")
    print("('no check' = record=False, check=False: skips placement validation and the memory check)")
    block_rate = rows[0][2]
    verdict = "MET" if block_rate >= TARGET_EVALS_PER_S else "MISSED"
    print(f"target >= {TARGET_EVALS_PER_S:,} evals/s at block (record=False, checks on): "
          f"{block_rate:,.0f} -> {verdict}")


if __name__ == "__main__":
    main()
