"""Sweep results: the per-trial table, the per-configuration table (mean and 95% CI over seeds),
written as CSV, JSON and Markdown, and a plot of the quality against every swept value."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from deaoff_cli.stats import ci95
from deaoff_cli.sweep_config import METRICS, SweepConfig


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def summarise(cfg: SweepConfig, records: list[dict[str, Any]], order: list[str]) -> dict[str, Any]:
    """Trials in sweep order and one row per configuration (the metrics' means and CIs over seeds)."""
    by_id = {r["trial_id"]: r for r in records}
    trials = [by_id[t] for t in order if t in by_id]
    keys = list(cfg.space)
    configs: dict[str, dict[str, Any]] = {}
    for r in trials:
        ck = json.dumps(r["params"], sort_keys=True, default=str)
        row = configs.setdefault(ck, {**{k: r["params"][k] for k in keys}, "seeds_ok": 0, "seeds_failed": 0,
                                      "_vals": {m: [] for m in METRICS}})
        if r["status"] == "ok":
            row["seeds_ok"] += 1
            for m in METRICS:
                row["_vals"][m].append(r["metrics"].get(m))
        else:
            row["seeds_failed"] += 1
    rows = []
    for row in configs.values():
        vals = row.pop("_vals")
        for m in METRICS:
            row[m], row[m + "_ci95"] = ci95(vals[m])
        rows.append(row)
    return {"name": cfg.name, "metric": cfg.metric, "swept": keys, "seeds": cfg.seeds,
            "trials": trials, "configs": rows,
            "failed": [{"trial_id": r["trial_id"], "error": r.get("error")} for r in trials if r["status"] != "ok"]}


def _fmt(x: Any, digits: int = 4) -> str:
    if isinstance(x, float):
        return "—" if not math.isfinite(x) else f"{x:.{digits}g}"
    return str(x)


def markdown(summary: dict[str, Any]) -> str:
    m = summary["metric"]
    keys = summary["swept"]
    lines = [f"## Sweep {summary['name']}: {m} of the trained agent (held-out episodes), "
             f"mean ± 95% CI over seeds {summary['seeds']}", "",
             "| " + " | ".join([*keys, m, "latency_s", "energy_j", "seeds ok", "failed"]) + " |",
             "|" + "---|" * len(keys) + "---:|---:|---:|---:|---:|"]
    for row in summary["configs"]:
        cells = [_fmt(row[k]) for k in keys]
        cells += [f"{_fmt(row[m])} ± {_fmt(row[m + '_ci95'], 2)}", _fmt(row["latency_s"]), _fmt(row["energy_j"]),
                  str(row["seeds_ok"]), str(row["seeds_failed"])]
        lines.append("| " + " | ".join(cells) + " |")
    if summary["failed"]:
        lines += ["", "Failed trials:"] + [f"- {f['trial_id']}: {f['error']}" for f in summary["failed"]]
    return "\n".join(lines)


def write(out: Path, summary: dict[str, Any]) -> None:
    (out / "results.json").write_text(json.dumps(summary, indent=1, default=float))
    trial_keys = ["trial_id", "status", "seed", *summary["swept"], *METRICS, "train_wall_s", "eval_wall_s",
                  "host", "run_dir", "error"]
    with open(out / "trials.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=trial_keys)
        w.writeheader()
        for r in summary["trials"]:
            row = {k: _cell(r.get(k)) for k in trial_keys}
            row.update({k: _cell(r["params"].get(k)) for k in summary["swept"]})
            row.update({k: (r.get("metrics") or {}).get(k) for k in METRICS})
            w.writerow(row)
    config_keys = [*summary["swept"], *(x for m in METRICS for x in (m, m + "_ci95")), "seeds_ok", "seeds_failed"]
    with open(out / "configs.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=config_keys)
        w.writeheader()
        for row in summary["configs"]:
            w.writerow({k: _cell(row[k]) for k in config_keys})
    (out / "results.md").write_text(markdown(summary) + "\n")
    plot(out / "quality.png", summary)


def plot(path: Path, summary: dict[str, Any]) -> None:
    """One panel per swept key: the metric (mean, 95% CI error bars over seeds) against its values,
    one line per combination of the other swept values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m, keys, rows = summary["metric"], summary["swept"], summary["configs"]
    panels = keys or [None]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
    for ax, key in zip(axes[0], panels):
        if key is None:
            ax.errorbar([0], [rows[0][m] if rows else np.nan], yerr=[_yerr(rows[0], m) if rows else 0], fmt="o", capsize=4)
            ax.set_xticks([0], ["all seeds"])
        else:
            values = list(dict.fromkeys(json.dumps(r[key], default=str) for r in rows))
            numeric = all(isinstance(json.loads(v), (int, float)) and not isinstance(json.loads(v), bool)
                          for v in values)
            pos = {v: (json.loads(v) if numeric else i) for i, v in enumerate(values)}
            others = [k for k in keys if k != key]
            groups: dict[str, list[dict[str, Any]]] = {}
            for r in rows:
                groups.setdefault(", ".join(f"{k.split('.')[-1]}={r[k]}" for k in others), []).append(r)
            for label, rs in groups.items():
                rs = sorted(rs, key=lambda r: pos[json.dumps(r[key], default=str)])
                ax.errorbar([pos[json.dumps(r[key], default=str)] for r in rs], [r[m] for r in rs],
                            yerr=[_yerr(r, m) for r in rs], marker="o", capsize=4, label=label or None)
            if not numeric:
                ax.set_xticks(list(pos.values()), [str(json.loads(v)) for v in values], rotation=20)
            elif len(values) > 1 and min(pos.values()) > 0 and max(pos.values()) / min(pos.values()) > 20:
                ax.set_xscale("log")
            if len(groups) > 1:
                ax.legend(fontsize=7)
            ax.set_xlabel(key)
        ax.set_ylabel(f"{m} (lower is better)")
        ax.grid(alpha=0.3)
    fig.suptitle(f"sweep {summary['name']}: mean ± 95% CI over {len(summary['seeds'])} seed(s)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _yerr(row: dict[str, Any], metric: str) -> float:
    half = row[metric + "_ci95"]
    return 0.0 if half is None or not math.isfinite(half) else half
