"""The static map: where DeAOff gains over the best traditional method.

A sweep over edge class × background load × uplink rate (``MapGrid``), one decoder step
each (decode and prefill), and per point DeAOff's latency and device-energy reduction
against the **best traditional method** of that point:

    best traditional = the lowest-energy method among the traditional ones (every heuristic
    and ``latency-optimal``) whose latency meets DeAOff's own phase-2 bound (1 + slack)·T*.

``latency-optimal`` meets that bound by construction (its makespan is T*), so the best
traditional method always exists; the energy reduction is then what DeAOff's energy phase
and its joint placement buy at equal latency budget, and the latency reduction is usually
≤ 0 (DeAOff may spend up to the slack).  Every point is built from the catalogue: the
phone of the default world (``snapdragon-8-gen-3``, class-3 levels 0.05 / 0.1 / 0.2 W), one
edge server of the given class over a ``5g-nr`` link placed by
:func:`core.radio.distance_for_rate_km` so that the top level's uplink at the mean channel
is the given rate (10 MHz up, 20 MHz down), batched with B background users holding the
KV of a Llama-2-7B fp16 context of 1,024 tokens each (as the scenario presets).  One link
type for every rate isolates the rate's effect (the LTE profile's 14x higher uplink energy
per bit is not part of the sweep).
"""
from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

MAP_KV_BYTES_PER_USER = 536_870_912
"""Llama-2-7B fp16, 1,024 tokens: 2 × 32 layers × 32 heads × 128 × 2 B × 1,024 (as the presets)."""


@dataclass(frozen=True)
class MapGrid:
    """The axes of the map and the decoder step evaluated at each point."""

    edges: tuple[str, ...] = ("jetson-agx-orin-64gb", "nvidia-l4", "nvidia-t4", "nvidia-a2")
    """Edge hardware profiles (catalogue names)."""
    background_users: tuple[int, ...] = (0, 4, 16)
    """B of the batched server."""
    uplink_mbps: tuple[float, ...] = (2.0, 6.0, 21.08, 50.0)
    """Cell edge (assumed), LTE median (Huang et al. 2012), 5G median (Ookla Q3 2021), Wi-Fi-class (assumed)."""
    model: str = "llama-2-7b"
    weight_dtype: str = "int4"
    """int4 so that the model also fits the phone (3.8 GB of its 8 GiB) and every split is possible."""
    phases: tuple[str, ...] = ("decode", "prefill")
    prompt_len: int = 256
    context_len: int = 512


def map_scenario(edge: str, users: int, uplink_mbps: float):
    """The one-server scenario of a map point (see the module docstring)."""
    from core.radio import distance_for_rate_km
    from core.system import DeviceConfig, Scenario, ServerConfig

    dev = DeviceConfig(hardware="snapdragon-8-gen-3", tx_powers_w=(0.05, 0.1, 0.2))
    server = ServerConfig(hardware=edge, link_type="5g-nr", uplink_bandwidth_hz=10e6, downlink_bandwidth_hz=20e6,
                          distance_km=distance_for_rate_km(uplink_mbps * 1e6, 10e6, 0.2),
                          load_model="batched", background_users=users,
                          background_kv_bytes_per_user=MAP_KV_BYTES_PER_USER)
    return Scenario(name=f"{edge}/B={users}/{uplink_mbps:g}Mbps", device=dev, servers=[server])


def best_traditional(methods: dict[str, dict[str, Any]], bound_s: float, traditional: list[str]) -> str | None:
    """The lowest-energy traditional method whose latency meets ``bound_s`` (ties: the
    lower latency, then the name); None when none does."""
    ok = [n for n in traditional if methods[n].get("latency_s") is not None
          and methods[n]["latency_s"] <= bound_s * (1 + 1e-9)]
    if not ok:
        return None
    return min(ok, key=lambda n: (methods[n]["energy_j"], methods[n]["latency_s"], n))


def reduction_pct(ours: float, base: float) -> float:
    """100 · (1 − ours / base); 0 when the baseline is 0."""
    return 100.0 * (1.0 - ours / base) if base > 0 else 0.0


def run_map(out: Path, evaluate_point: Callable[[Any], dict[str, Any]], grid: MapGrid = MapGrid(),
            log: Callable[[str], None] = lambda s: None) -> list[dict[str, Any]]:
    """Evaluate every point with ``evaluate_point(inst) -> {"methods", "bound_s", ...}``,
    write ``map.csv``, ``map.md`` and ``map.png`` under ``out``; returns the rows."""
    from core.dag import build_dag
    from core.instance import make_instance
    from core.system import make_snapshot

    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for phase in grid.phases:
        kw = {"context_len": grid.context_len} if phase == "decode" else {}
        graph = build_dag(grid.model, "block", phase, prompt_len=grid.prompt_len, weight_dtype=grid.weight_dtype,
                          **kw)
        for edge in grid.edges:
            for users in grid.background_users:
                for rate in grid.uplink_mbps:
                    inst = make_instance(graph, make_snapshot(map_scenario(edge, users, rate)))
                    point = evaluate_point(inst)
                    methods, bound = point["methods"], point["bound_s"]
                    trad = [n for n in methods if not n.startswith("deaoff")]
                    best = best_traditional(methods, bound, trad)
                    ours = methods["deaoff"]
                    row = {"phase": phase, "edge": edge, "background_users": users, "uplink_mbps": rate,
                           "deaoff_latency_s": ours["latency_s"], "deaoff_energy_j": ours["energy_j"],
                           "deaoff_edge_nodes": point.get("edge_nodes"), "nodes": inst.num_nodes,
                           "best_traditional": best,
                           "best_latency_s": methods[best]["latency_s"] if best else None,
                           "best_energy_j": methods[best]["energy_j"] if best else None,
                           "latency_reduction_pct": reduction_pct(ours["latency_s"], methods[best]["latency_s"])
                           if best else None,
                           "energy_reduction_pct": reduction_pct(ours["energy_j"], methods[best]["energy_j"])
                           if best else None}
                    rows.append(row)
                    log(f"  map {phase:<7} {edge:<22} B={users:<3} {rate:6.2f} Mb/s: best {best}, "
                        f"latency {row['latency_reduction_pct']:+.1f}%, energy {row['energy_reduction_pct']:+.1f}%")
    log(f"  map: {len(rows)} points in {time.perf_counter() - t0:.1f} s")
    write_map(out, rows, grid)
    return rows


def write_map(out: Path, rows: list[dict[str, Any]], grid: MapGrid) -> None:
    out.mkdir(parents=True, exist_ok=True)
    keys = list(rows[0]) if rows else []
    with open(out / "map.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    (out / "map.md").write_text(map_markdown(rows, grid))
    _map_png(out / "map.png", rows, grid)


def map_markdown(rows: list[dict[str, Any]], grid: MapGrid) -> str:
    """One table per phase: rows edge × B, columns uplink rate, cells 'latency / energy'
    reduction (%) against the best traditional method, and that method."""
    lines = [f"## Map: DeAOff against the best traditional method ({grid.model} {grid.weight_dtype}, block)", "",
             "Cell: DeAOff's latency / device-energy reduction (%) against the lowest-energy traditional method "
             "meeting DeAOff's latency bound (1 + slack)·T*, and that method.", ""]
    for phase in grid.phases:
        lines += [f"### {phase}", "",
                  "| edge | B | " + " | ".join(f"{r:g} Mb/s" for r in grid.uplink_mbps) + " |",
                  "|---|---:|" + "---|" * len(grid.uplink_mbps)]
        for edge in grid.edges:
            for users in grid.background_users:
                cells = []
                for rate in grid.uplink_mbps:
                    r = next(x for x in rows if (x["phase"], x["edge"], x["background_users"], x["uplink_mbps"])
                             == (phase, edge, users, rate))
                    cells.append("n/a" if r["best_traditional"] is None else
                                 f"{r['latency_reduction_pct']:+.1f} / {r['energy_reduction_pct']:+.1f} "
                                 f"({r['best_traditional']})")
                lines.append(f"| {edge} | {users} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _map_png(path: Path, rows: list[dict[str, Any]], grid: MapGrid) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ylabels = [f"{e} B={b}" for e in grid.edges for b in grid.background_users]
    fig, axes = plt.subplots(len(grid.phases), 2, figsize=(12, 2.2 + 0.42 * len(ylabels) * len(grid.phases)),
                             squeeze=False)
    for i, phase in enumerate(grid.phases):
        for j, (key, label) in enumerate((("latency_reduction_pct", "latency"), ("energy_reduction_pct", "energy"))):
            z = np.full((len(ylabels), len(grid.uplink_mbps)), np.nan)
            best = [["" for _ in grid.uplink_mbps] for _ in ylabels]
            for r in rows:
                if r["phase"] != phase or r[key] is None:
                    continue
                y = grid.edges.index(r["edge"]) * len(grid.background_users) + grid.background_users.index(
                    r["background_users"])
                x = grid.uplink_mbps.index(r["uplink_mbps"])
                z[y, x] = r[key]
                best[y][x] = r["best_traditional"]
            ax = axes[i][j]
            lim = max(1.0, float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0)
            im = ax.imshow(z, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
            for y in range(z.shape[0]):
                for x in range(z.shape[1]):
                    if np.isfinite(z[y, x]):
                        ax.text(x, y, f"{z[y, x]:+.1f}\n{best[y][x]}", ha="center", va="center", fontsize=6)
            ax.set_xticks(range(len(grid.uplink_mbps)), [f"{r:g}" for r in grid.uplink_mbps])
            ax.set_yticks(range(len(ylabels)), ylabels, fontsize=7)
            ax.set_xlabel("uplink at the mean channel (Mb/s)")
            ax.set_title(f"{phase}: DeAOff {label} reduction vs best traditional (%)", fontsize=9)
            fig.colorbar(im, ax=ax, fraction=0.04)
    fig.suptitle(f"{grid.model} {grid.weight_dtype}, block DAG; best traditional = lowest energy within "
                 "DeAOff's latency bound", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
