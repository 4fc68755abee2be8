"""Summary of random worlds drawn from a world distribution (core/worlds.py).

    python benchmarks/worlds_summary.py [--dist default] [--seed 0] [--n 200]

Prints the histogram of servers per world, the link types, the quantiles of the
mean-channel uplink rate at the top transmit level per link type (from
``core.system.make_snapshot``, i.e. what the cost engine sees), the distances, the
background users, and the device / server hardware counts.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.system import make_snapshot  # noqa: E402
from core.worlds import load_world_distribution, sample_worlds  # noqa: E402

QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)


def _quantiles(values: list[float], scale: float, fmt: str) -> str:
    q = np.quantile(np.asarray(values), QUANTILES) / scale
    return "  ".join(f"{int(p * 100):>3d}%={v:{fmt}}" for p, v in zip(QUANTILES, q))


def _counts(counter: Counter, total: int) -> str:
    return "\n".join(f"  {key:<24} {n:4d}  ({100 * n / total:5.1f}%)" for key, n in sorted(counter.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", default="default", help="preset name (configs/worlds) or YAML path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args(argv)
    try:
        dist = load_world_distribution(args.dist)
        worlds = sample_worlds(dist, args.seed, args.n)
    except ValueError as exc:
        print(f"worlds_summary: {exc}", file=sys.stderr)
        return 2
    if not worlds:
        print("worlds_summary: --n must be >= 1", file=sys.stderr)
        return 2
    servers = [s for w in worlds for s in w.servers]
    rates: dict[str, list[float]] = {}
    for w in worlds:
        snap = make_snapshot(w)
        for s, up in zip(w.servers, snap.uplink_bps):
            rates.setdefault(s.link_type, []).append(up[-1])
    print(f"{args.n} worlds from '{dist.name}', seed {args.seed}: {len(servers)} servers")
    print("servers per world:")
    print(_counts(Counter(w.num_servers for w in worlds), len(worlds)))
    print("link type (per world):")
    print(_counts(Counter(w.servers[0].link_type for w in worlds), len(worlds)))
    print("uplink rate at the mean channel and the top level, Mb/s (per server):")
    for link_type, values in sorted(rates.items()):
        lo, hi = dist.links[link_type].uplink_rate_bps
        print(f"  {link_type:<6} n={len(values):3d} range [{lo / 1e6:.2f}, {hi / 1e6:.2f}]: "
              f"{_quantiles(values, 1e6, '.2f')}")
    print("distance, km (per server):")
    print(f"  {_quantiles([s.distance_km for s in servers], 1.0, '.3f')}")
    print("background users B (per server):")
    print(f"  {_quantiles([float(s.background_users) for s in servers], 1.0, '.0f')}")
    print("device hardware:")
    print(_counts(Counter(w.device.hardware for w in worlds), len(worlds)))
    print("server hardware (per server):")
    print(_counts(Counter(s.hardware for s in servers), len(servers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
