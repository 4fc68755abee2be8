"""The figures of evaluate.py: bar charts of every method and the per-token latency trace.

A method keeps one colour in every figure (:func:`method_color`); colour families mark
the groups (reds: DeAOff, greens: trained agents, blues/greys/browns: heuristics), and
the bar chart's legend names the groups.  Legends sit outside the axes, so they never
cover a bar or a line.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

GROUP_COLORS: dict[str, tuple[str, ...]] = {
    "DeAOff": ("tab:red", "darkred", "tab:orange", "salmon"),
    "trained agents": ("tab:green", "limegreen", "darkgreen", "mediumseagreen", "olive"),
    "heuristics": ("tab:blue", "tab:cyan", "tab:gray", "tab:purple", "tab:brown", "navy", "slategray"),
}
FIXED_COLORS: dict[str, str] = {
    "deaoff": "tab:red", "deaoff-oracle": "tab:red", "deaoff-relaxed": "darkred", "deaoff-static": "tab:orange",
    "all-device": "tab:blue", "all-edge": "tab:cyan", "random": "tab:gray", "greedy-eft": "tab:purple",
    "heft": "tab:brown", "neurosurgeon": "navy",
}
"""Colours of the methods evaluate.py runs, the same in the static and the agents figures."""


def method_group(name: str) -> str:
    if name.startswith("deaoff"):
        return "DeAOff"
    if name.startswith("agent"):
        return "trained agents"
    return "heuristics"


def method_color(name: str, names: Sequence[str] = ()) -> str:
    """The colour of ``name``: fixed for the known methods; an agent (or another new name)
    takes its group's colours in the order ``names`` lists them."""
    if name in FIXED_COLORS:
        return FIXED_COLORS[name]
    group = method_group(name)
    others = [n for n in names if n not in FIXED_COLORS and method_group(n) == group]
    palette = GROUP_COLORS[group]
    index = others.index(name) if name in others else 0
    return palette[index % len(palette)]


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def bar_plots(out: Path, methods: Mapping[str, Mapping[str, Any]], title: str,
              errors: Mapping[str, Mapping[str, float]] | None = None) -> None:
    """``bars.png``: mean latency and mean device energy of every method (log scale),
    with the 95% confidence interval as error bars when ``errors`` is given."""
    plt = _pyplot()
    from matplotlib.legend_handler import HandlerTuple
    from matplotlib.patches import Patch

    names = [n for n, m in methods.items() if m.get("latency_s") is not None]
    colors = [method_color(n, names) for n in names]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    ci_handle = None
    for ax, key, label in ((axes[0], "latency_s", "mean latency (ms)"),
                           (axes[1], "energy_j", "mean device energy (mJ)")):
        vals = [methods[n][key] * 1e3 for n in names]
        err = None
        if errors is not None:
            err = [errors[n][key] * 1e3 if math.isfinite(errors[n][key]) else 0.0 for n in names]
        bars = ax.bar(range(len(names)), vals, yerr=err, color=colors, capsize=3, edgecolor="black", linewidth=0.4,
                      error_kw={"elinewidth": 1.0, "ecolor": "black"})
        if err is not None and bars.errorbar is not None:
            ci_handle = bars.errorbar
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
        ax.set_ylabel(label)
        ax.set_yscale("log")
        ax.set_title(f"{label}, {title}", fontsize=10)
    handles, labels = [], []
    for group in GROUP_COLORS:
        members = [c for n, c in zip(names, colors) if method_group(n) == group]
        if members:
            handles.append(tuple(Patch(facecolor=c, edgecolor="black", linewidth=0.4) for c in dict.fromkeys(members)))
            labels.append(group)
    if ci_handle is not None:
        handles.append(ci_handle)
        labels.append("95% CI over episodes")
    fig.legend(handles, labels, loc="lower center", ncol=len(handles), fontsize=9, frameon=False,
               handler_map={tuple: HandlerTuple(ndivide=None, pad=0.0)})
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(out / "bars.png", dpi=110)
    plt.close(fig)


def _spread_by_episode(tokens: Sequence[Mapping[str, Any]], methods: set[str]) -> dict[int, float]:
    """Per episode: (max - min) / min of the methods' mean decode-token latency."""
    means: dict[int, dict[str, list[float]]] = {}
    for t in tokens:
        if t["context"] is not None and t["method"] in methods:
            means.setdefault(t["episode"], {}).setdefault(t["method"], []).append(t["latency_s"])
    spread = {}
    for ep, per_method in means.items():
        values = [float(np.mean(v)) for v in per_method.values()]
        if len(values) >= 2 and min(values) > 0:
            spread[ep] = (max(values) - min(values)) / min(values)
    return spread


def widest_episode(tokens: Sequence[Mapping[str, Any]], names: Sequence[str]) -> int | None:
    """The episode where the methods under comparison differ most: the largest
    (max - min) / min of their mean decode-token latency.  Compared are the agents and
    DeAOff (oracle, static); without two of them, every method but the random policy.
    (A heuristic that is always far off, e.g. all-device, would otherwise decide.)"""
    focus = {n for n in names if method_group(n) in ("trained agents", "DeAOff")}
    spread = _spread_by_episode(tokens, focus) if len(focus) >= 2 else {}
    if not spread or max(spread.values()) <= 0:
        spread = _spread_by_episode(tokens, {n for n in names if n != "random"})
    if spread:
        return max(sorted(spread), key=lambda ep: spread[ep])
    episodes = sorted({t["episode"] for t in tokens})
    return episodes[0] if episodes else None


def latency_trace(out: Path, names: Sequence[str], tokens: Sequence[Mapping[str, Any]]) -> int | None:
    """``latency_trace.png``: per-token latency of every method on the episode where they
    differ most, the random policy in its own panel (its latencies would flatten the
    others), and the uplink rate of every server.  Returns the episode shown."""
    ep = widest_episode(tokens, names)
    if ep is None:
        return None
    plt = _pyplot()
    recs = [t for t in tokens if t["episode"] == ep and t["context"] is not None]
    has_random = any(t["method"] == "random" for t in recs)
    rows = 3 if has_random else 2
    fig, axes = plt.subplots(rows, 1, figsize=(11, 2.6 * rows + 0.6), sharex=True,
                             gridspec_kw={"height_ratios": [3] + [1.3] * (rows - 1)})
    main_ax, rate_ax = axes[0], axes[-1]
    # heuristics first, then DeAOff, then the agents on top, wider lines underneath: a
    # method that matches another stays visible
    order = {"heuristics": 0, "DeAOff": 1, "trained agents": 2}
    width = {"heuristics": 1.2, "DeAOff": 2.4, "trained agents": 1.4}
    for name in sorted(names, key=lambda n: order[method_group(n)]):
        mine = [t for t in recs if t["method"] == name]
        if not mine:
            continue
        group = method_group(name)
        ax = axes[1] if name == "random" else main_ax
        ax.plot([t["token"] for t in mine], [t["latency_s"] * 1e3 for t in mine], ":" if group == "heuristics" else "-",
                marker=".", linewidth=width[group], color=method_color(name, names), label=name)
    seed = recs[0]["seed"] if recs else "?"
    main_ax.set_ylabel("latency (ms), log scale")
    main_ax.set_yscale("log")
    main_ax.set_title(f"per-token latency, held-out episode {ep} (seed {seed}): the episode where the methods "
                      "differ most", fontsize=10)
    main_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    if has_random:
        axes[1].set_ylabel("latency (ms)")
        axes[1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    reference = [t for t in recs if t["method"] == "deaoff-oracle"] or [t for t in recs if t["method"] == names[0]]
    if reference:
        rates = np.array([t["uplink_mbps"] for t in reference])
        x = [t["token"] for t in reference]
        styles = ("-", "--", "-.", ":")
        markers = ("x", "+", "1", "4")
        for k in range(rates.shape[1]):  # black and grey: the method colours stay the methods'
            shade = "black" if k % 2 == 0 else "dimgray"
            rate_ax.step(x, rates[:, k], where="mid", color=shade, linestyle=styles[k % 4],
                         label=f"edge{k + 1} uplink")
            down = [t["token"] for t in reference if not t["servers_up"][k]]
            if down:
                rate_ax.scatter(down, [0.0] * len(down), marker=markers[k % 4], color=shade, s=40, zorder=3,
                                label=f"edge{k + 1} down")
        rate_ax.set_ylabel("Mb/s at max power")
        rate_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    from matplotlib.ticker import MaxNLocator
    rate_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    rate_ax.set_xlabel("token")
    fig.tight_layout()
    fig.savefig(out / "latency_trace.png", dpi=110)
    plt.close(fig)
    return ep
