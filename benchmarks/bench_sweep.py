"""A 4-trial sweep run sequentially (local backend, 1 worker) and on Ray (2 workers), in one run.

    python benchmarks/bench_sweep.py [--config configs/sweeps/bench.yaml] [--workers 2] [--out DIR]

Prints both wall times, the speed-up (with and without Ray's start-up: ``ray.init`` of a
local instance plus one round-trip task), and checks that both runs gave the same numbers.
The local backend with the same number of workers runs too, with the CPU time of its
trials: CPU / wall is the parallelism the machine actually gave (2.0 on 2 idle cores),
which bounds any backend's speed-up.
Target: >= 1.7x with 2 workers on 2 cores.  On a machine shared with other
work, the load average printed next to the figures says how much of the cores were ours.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deaoff_cli.sweep import run_sweep  # noqa: E402
from deaoff_cli.sweep_config import load_config  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "configs" / "sweeps" / "bench.yaml"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", help="keep both sweeps here (default: a temporary directory)")
    args = p.parse_args()
    cfg = load_config(args.config)
    n = len(cfg.trials())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        load_before = os.getloadavg()
        quiet = lambda s: None  # noqa: E731
        t0 = time.perf_counter()
        seq = run_sweep(cfg, out / "sequential", "local", 1, log=quiet)
        seq_s = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), os.times()
        loc = run_sweep(cfg, out / "local-parallel", "local", args.workers, log=quiet)
        loc_s, c1 = time.perf_counter() - t0, os.times()
        loc_cpu = (c1.children_user + c1.children_system) - (c0.children_user + c0.children_system)
        t0 = time.perf_counter()
        par = run_sweep(cfg, out / "ray", "ray", args.workers, log=quiet)
        ray_s = time.perf_counter() - t0
        load_after = os.getloadavg()
    startup_s = par["ray_startup_s"]
    same = all([(a["trial_id"], a.get("metrics")) for a in seq["trials"]] ==
               [(b["trial_id"], b.get("metrics")) for b in other["trials"]] for other in (par, loc))
    print(f"sweep {cfg.name}: {n} trials, {os.cpu_count()} CPUs, load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after")
    print(f"sequential (local, 1 worker):    {seq_s:7.1f} s  ({seq_s / n:.1f} s per trial)")
    print(f"ray ({args.workers} workers, local instance):   {ray_s:7.1f} s  (start-up {startup_s:.1f} s)")
    print(f"local ({args.workers} workers, no Ray):          {loc_s:7.1f} s  (speed-up {seq_s / loc_s:.2f}x; "
          f"trials used {loc_cpu:.1f} CPU-s: parallelism {loc_cpu / loc_s:.2f} of {args.workers})")
    print(f"speed-up: {seq_s / ray_s:.2f}x  ({seq_s / (ray_s - startup_s):.2f}x without Ray's start-up)  "
          f"target >= 1.7x with 2 workers on 2 cores")
    print(f"same numbers on both backends: {'yes' if same else 'NO'}; failed trials: "
          f"{len(seq['failed'])} sequential, {len(loc['failed'])} local, {len(par['failed'])} ray")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
